//! Applications (OAuth clients): registration, validation, lookup and
//! authentication at the token endpoint.

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use serde_json::Value as Json;

use crate::crypto;
use crate::error::{Error, OAuthCode, Result};
use crate::oidc::assertion;
use crate::oidc::exchange::{self, Registration};
use crate::store::{
    SqlStore, activations, auth_codes, client_assertions, clients, consents, logout_deliveries,
    mandate_delegates, mandate_templates, mandates, projects, refresh_families, role_assignments,
    session_clients,
};
use crate::web::Params;

/// Grant types a client may be allowed.
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    exchange::GRANT_TYPE,
];
/// How clients may authenticate at the token, introspection and revocation
/// endpoints.
pub const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];
/// Scopes every deployment knows.
pub const STANDARD_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];
/// The organisation-wide built-in roles, which no catalogue may redefine.
pub const BUILT_IN_ROLES: &[&str] = &["owner", "admin", "member"];
/// The most roles a service's catalogue may hold.
pub const MAX_ROLES: usize = 100;

/// A role of a b2b client's catalogue (the roles organisations give their
/// members for this service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueRole {
    /// 1 to 64 characters of `a-z 0-9 : _ . -`, as it appears in tokens.
    pub name: String,
    /// What the role allows, for the people who give it (at most 200
    /// characters).
    #[serde(default)]
    pub description: String,
}

/// How an organisation comes to use a b2b client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationPolicy {
    /// An organisation's admin activates it.
    #[default]
    SelfService,
    /// An admin asks, the operator approves.
    Approval,
    /// Only the operator activates it.
    OperatorOnly,
}

impl ActivationPolicy {
    /// Every policy, in the order they are documented.
    pub const ALL: [ActivationPolicy; 3] = [Self::SelfService, Self::Approval, Self::OperatorOnly];

    /// The policy as stored and shown: `self_service`, `approval` or
    /// `operator_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfService => "self_service",
            Self::Approval => "approval",
            Self::OperatorOnly => "operator_only",
        }
    }

    /// The policy named `s`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A registered application. It serialises as RFC 7591 client metadata
/// (`client_id`, `client_name`, `scope`, …) plus Lanyard's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    /// The `client_id`.
    #[serde(rename = "client_id")]
    pub id: String,
    /// Shown on the consent page.
    #[serde(rename = "client_name")]
    pub name: String,
    /// When the client was registered (RFC 7591 `client_id_issued_at`).
    #[serde(rename = "client_id_issued_at")]
    pub created_at: i64,
    /// Confidential clients have a secret or registered keys; public ones
    /// (SPAs, mobile) have neither.
    #[serde(skip)]
    pub confidential: bool,
    /// `client_secret_basic` (which also accepts `client_secret_post`),
    /// `private_key_jwt` or `none`.
    pub token_endpoint_auth_method: String,
    /// The public keys a `private_key_jwt` client signs its assertions with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Json>,
    /// Exact redirect URIs (loopback ports may vary, RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// The response types, from the grant types (`code` with
    /// `authorization_code`, nothing else).
    pub response_types: Vec<String>,
    /// Allowed scopes (RFC 7591 `scope`, space-separated on the wire).
    #[serde(rename = "scope", serialize_with = "space_separated")]
    pub scopes: Vec<String>,
    /// Browser origins allowed to call the token, userinfo and JWKS endpoints.
    pub allowed_origins: Vec<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    /// The clients whose access tokens this one may introspect, as their
    /// resource server (besides its own).
    pub resource_server_for: Vec<String>,
    /// `ES256` (default), `EdDSA` or `RS256`.
    #[serde(rename = "id_token_signed_response_alg")]
    pub id_token_alg: String,
    /// `ES256` (default) or `EdDSA`, for access tokens.
    #[serde(rename = "access_token_signed_response_alg")]
    pub access_token_alg: String,
    /// Access-token lifetime in seconds.
    pub access_token_ttl: i64,
    /// Refresh tokens die after this long unused.
    pub refresh_idle_ttl: i64,
    /// Refresh-token families die this long after the login.
    pub refresh_max_ttl: i64,
    /// A service that organisations activate: its logins carry an
    /// organisation and the member's roles.
    pub b2b: bool,
    /// The role catalogue of a b2b client.
    pub roles: Vec<CatalogueRole>,
    /// How organisations activate a b2b client.
    pub activation_policy: ActivationPolicy,
    /// A b2b client that also serves people on their own: its logins may
    /// be for no organisation ("just me").
    pub personal_use: bool,
    /// What this client may exchange a person's access token for (RFC 8693).
    pub token_exchange: Vec<Registration>,
    /// Where the client is told that a session ended: the
    /// `backchannel_logout_*` and `frontchannel_logout_*` metadata.
    #[serde(flatten)]
    pub logout: clients::Logout,
    #[serde(skip)]
    secret_hash: Option<String>,
}

fn space_separated<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.join(" "))
}

/// What an operator sends to create or replace a client: RFC 7591 client
/// metadata, plus Lanyard's own settings (`allowed_origins`, `first_party`,
/// `access_token_signed_response_alg` and the lifetimes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Display name, shown on the consent page.
    pub client_name: String,
    /// Requested `client_id`; generated when absent. On replace, it must be
    /// the client's own (RFC 7592 §2.2).
    pub client_id: Option<String>,
    /// `client_secret_basic` (the default, RFC 7591 §2; it also accepts
    /// `client_secret_post`), `client_secret_post`, `private_key_jwt`, or
    /// `none` for a public client (SPAs, mobile apps). A secret is generated
    /// for the secret methods.
    pub token_endpoint_auth_method: Option<String>,
    /// For `private_key_jwt`: the client's public keys, a JWK Set of ES256 or
    /// EdDSA keys (RFC 7517).
    pub jwks: Option<Json>,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs (OIDC RP-Initiated Logout).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant types (default: authorization_code, refresh_token).
    pub grant_types: Option<Vec<String>>,
    /// Response types: only `code`, and only with `authorization_code`.
    pub response_types: Option<Vec<String>>,
    /// Space-separated scopes (default: `openid profile email offline_access`).
    pub scope: Option<String>,
    /// CORS origins.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Skip consent.
    #[serde(default)]
    pub first_party: bool,
    /// The clients whose access tokens this client, a resource server, may
    /// introspect (it may always introspect its own).
    #[serde(default)]
    pub resource_server_for: Vec<String>,
    /// `ES256`, `EdDSA` or `RS256`.
    pub id_token_signed_response_alg: Option<String>,
    /// `ES256` or `EdDSA` for access tokens (EdDSA verifies several times
    /// faster, natively and at the edge).
    pub access_token_signed_response_alg: Option<String>,
    /// Access-token lifetime (60 to 3600 s, default 300).
    pub access_token_ttl: Option<i64>,
    /// Refresh idle lifetime (default 14 days).
    pub refresh_idle_ttl: Option<i64>,
    /// Refresh absolute lifetime (default 90 days).
    pub refresh_max_ttl: Option<i64>,
    /// A service organisations activate (default false).
    #[serde(default)]
    pub b2b: bool,
    /// The role catalogue (only for `b2b`): at most 100 roles.
    #[serde(default)]
    pub roles: Vec<CatalogueRole>,
    /// `self_service` (default), `approval` or `operator_only` (other than
    /// the default only for `b2b`).
    pub activation_policy: Option<String>,
    /// A service that also serves people on their own, for no organisation
    /// (default false; only for `b2b`).
    #[serde(default)]
    pub personal_use: bool,
    /// RFC 8693 token exchange: the clients this one may exchange a
    /// person's access token for, and with which scopes (at most 20; needs
    /// the token-exchange grant).
    #[serde(default)]
    pub token_exchange: Vec<Registration>,
    /// OIDC Back-Channel Logout: where Lanyard POSTs a logout token when a
    /// session in which the client got tokens ends (https; http only on
    /// loopback; no fragment).
    pub backchannel_logout_uri: Option<String>,
    /// The client needs the `sid` in its logout tokens (Lanyard sends it
    /// whenever it knows it). Only with `backchannel_logout_uri`.
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// OIDC Front-Channel Logout: what Lanyard's logout page loads in a
    /// hidden iframe (the same rules).
    pub frontchannel_logout_uri: Option<String>,
    /// The client needs `iss` and `sid` on that URI. Only with
    /// `frontchannel_logout_uri`.
    #[serde(default)]
    pub frontchannel_logout_session_required: bool,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::bad_request(msg)
}

/// Whether `id` is a valid `client_id`: 3 to 64 characters of A-Z, a-z,
/// 0-9, `-`, `_` and `.`.
pub fn is_client_id(id: &str) -> bool {
    (3..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Checks a redirect URI: `https`, loopback `http` (RFC 8252 §7.3), or a
/// private-use scheme with a dot (RFC 8252 §7.1); never a fragment.
pub fn check_redirect_uri(uri: &str) -> Result<()> {
    let u = url::Url::parse(uri).map_err(|_| invalid(format!("`{uri}` is not an absolute URI")))?;
    if u.fragment().is_some() {
        return Err(invalid(format!("`{uri}` has a fragment")));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        "http" => Err(invalid(format!(
            "`{uri}` must use https (http only on loopback)"
        ))),
        s if s.contains('.') => Ok(()),
        _ => Err(invalid(format!("`{uri}` has an unsupported scheme"))),
    }
}

/// Checks a back-channel or front-channel logout URI (`name` is its
/// metadata name): an absolute `https` URI, or `http` on loopback (as for
/// redirect URIs); no fragment (Front-Channel Logout 1.0 §2), no user
/// name or password, at most 2,000 characters.
pub fn check_logout_uri(name: &str, uri: &str) -> Result<()> {
    let u = url::Url::parse(uri)
        .map_err(|_| invalid(format!("`{name}`: `{uri}` is not an absolute URI")))?;
    if uri.len() > 2000 {
        return Err(invalid(format!("`{name}` is longer than 2000 characters")));
    }
    if u.fragment().is_some() {
        return Err(invalid(format!("`{name}`: `{uri}` has a fragment")));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid(format!("`{name}`: `{uri}` carries credentials")));
    }
    match u.scheme() {
        "https" if u.host_str().is_some() => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        _ => Err(invalid(format!(
            "`{name}`: `{uri}` must use https (http only on loopback)"
        ))),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
}

/// Whether a presented redirect URI matches a registered one: exactly, except
/// that a loopback IP redirect may use any port (RFC 8252 §7.3).
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    r.scheme() == "http"
        && matches!(r.host_str(), Some("127.0.0.1" | "[::1]"))
        && r.host_str() == p.host_str()
        && p.scheme() == "http"
        && r.path() == p.path()
        && r.query() == p.query()
        && p.fragment().is_none()
        && p.username().is_empty()
}

impl ClientSpec {
    fn validate(&self) -> Result<()> {
        if self.client_name.trim().is_empty() || self.client_name.chars().count() > 100 {
            return Err(invalid("`client_name` must be 1 to 100 characters"));
        }
        for id in self.client_id.iter().chain(&self.resource_server_for) {
            if !is_client_id(id) {
                return Err(invalid(format!(
                    "`{id}`: a client_id must be 3 to 64 characters of A-Z, a-z, 0-9, - _ ."
                )));
            }
        }
        for u in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
        {
            check_redirect_uri(u)?;
        }
        let grants = self.grants();
        for g in &grants {
            if !GRANT_TYPES.contains(&g.as_str()) {
                return Err(invalid(format!("unknown grant type `{g}`")));
            }
        }
        if grants.iter().any(|g| g == "client_credentials") && !self.confidential() {
            return Err(invalid("client_credentials needs a confidential client"));
        }
        let exchanges = grants.iter().any(|g| g == exchange::GRANT_TYPE);
        if exchanges && !self.confidential() {
            return Err(invalid("token exchange needs a confidential client"));
        }
        if !self.token_exchange.is_empty() && !exchanges {
            return Err(invalid(format!(
                "`token_exchange` needs the grant type {}",
                exchange::GRANT_TYPE
            )));
        }
        exchange::check_registrations(self.client_id.as_deref(), &self.token_exchange)?;
        self.validate_logout()?;
        if let Some(types) = &self.response_types {
            let code = grants.iter().any(|g| g == "authorization_code");
            let ok = types.iter().all(|t| t == "code") && (types.is_empty() || code);
            if !ok {
                return Err(invalid(
                    "`response_types` may hold only `code`, with the authorization_code grant",
                ));
            }
        }
        if grants.iter().any(|g| g == "authorization_code") && self.redirect_uris.is_empty() {
            return Err(invalid(
                "authorization_code needs at least one redirect URI",
            ));
        }
        if self.scope.as_ref().is_some_and(|s| s.trim().is_empty()) {
            return Err(invalid("`scope` is empty"));
        }
        for s in self.scopes() {
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if !ok {
                return Err(invalid(format!("invalid scope `{s}`")));
            }
        }
        for o in &self.allowed_origins {
            let u = url::Url::parse(o).map_err(|_| invalid(format!("`{o}` is not an origin")))?;
            if u.origin().ascii_serialization() != *o {
                return Err(invalid(format!(
                    "`{o}` is not an origin (scheme://host[:port], no path)"
                )));
            }
        }
        if !AUTH_METHODS.contains(&self.auth_method()) {
            return Err(invalid(format!(
                "`token_endpoint_auth_method` must be one of {}",
                AUTH_METHODS.join(", ")
            )));
        }
        match (&self.jwks, self.auth_method() == "private_key_jwt") {
            (Some(jwks), true) => assertion::check_jwks(jwks)?,
            (None, true) => return Err(invalid("`private_key_jwt` needs `jwks`")),
            (Some(_), false) => {
                return Err(invalid("`jwks` is only for `private_key_jwt` clients"));
            }
            (None, false) => {}
        }
        // RS256 is for ID tokens of relying parties that accept nothing else.
        for (name, alg, allowed) in [
            (
                "id_token_signed_response_alg",
                &self.id_token_signed_response_alg,
                &["ES256", "EdDSA", "RS256"][..],
            ),
            (
                "access_token_signed_response_alg",
                &self.access_token_signed_response_alg,
                &["ES256", "EdDSA"][..],
            ),
        ] {
            if alg.as_ref().is_some_and(|a| !allowed.contains(&a.as_str())) {
                return Err(invalid(format!("{name} must be {}", allowed.join(" or "))));
            }
        }
        let ranges = [
            (self.access_token_ttl, 60..=3600, "access_token_ttl"),
            (self.refresh_idle_ttl, 300..=31_536_000, "refresh_idle_ttl"),
            (self.refresh_max_ttl, 300..=31_536_000, "refresh_max_ttl"),
        ];
        for (v, range, name) in ranges {
            if v.is_some_and(|v| !range.contains(&v)) {
                return Err(invalid(format!(
                    "`{name}` must be from {} to {} seconds",
                    range.start(),
                    range.end()
                )));
            }
        }
        self.validate_service()
    }

    /// The logout endpoints: valid URIs, and a `*_session_required` only
    /// with its URI.
    fn validate_logout(&self) -> Result<()> {
        for (channel, uri, session_required) in [
            (
                "backchannel",
                &self.backchannel_logout_uri,
                self.backchannel_logout_session_required,
            ),
            (
                "frontchannel",
                &self.frontchannel_logout_uri,
                self.frontchannel_logout_session_required,
            ),
        ] {
            match uri {
                Some(u) => check_logout_uri(&format!("{channel}_logout_uri"), u)?,
                None if session_required => {
                    return Err(invalid(format!(
                        "`{channel}_logout_session_required` needs `{channel}_logout_uri`"
                    )));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// The b2b settings: the catalogue and the activation policy.
    fn validate_service(&self) -> Result<()> {
        let policy = self.policy()?;
        if !self.b2b
            && (!self.roles.is_empty()
                || policy != ActivationPolicy::default()
                || self.personal_use)
        {
            return Err(invalid(
                "`roles`, `activation_policy` and `personal_use` are only for services (`b2b`: true)",
            ));
        }
        if self.roles.len() > MAX_ROLES {
            return Err(invalid(format!(
                "`roles` may hold at most {MAX_ROLES} roles"
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.roles {
            let ok = (1..=64).contains(&r.name.len())
                && r.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":_.-".contains(&b));
            if !ok {
                return Err(invalid(format!(
                    "role `{}`: a role name must be 1 to 64 characters of a-z, 0-9, : _ . -",
                    r.name
                )));
            }
            if BUILT_IN_ROLES.contains(&r.name.as_str()) {
                return Err(invalid(format!(
                    "role `{}` is built in (owner, admin and member are organisation roles)",
                    r.name
                )));
            }
            if !seen.insert(r.name.as_str()) {
                return Err(invalid(format!("role `{}` is listed twice", r.name)));
            }
            if r.description.chars().count() > 200 {
                return Err(invalid(format!(
                    "role `{}`: the description may be at most 200 characters",
                    r.name
                )));
            }
        }
        Ok(())
    }

    fn policy(&self) -> Result<ActivationPolicy> {
        match &self.activation_policy {
            None => Ok(ActivationPolicy::default()),
            Some(p) => ActivationPolicy::parse(p).ok_or_else(|| {
                invalid(format!(
                    "`activation_policy` must be self_service, approval or operator_only (not `{p}`)"
                ))
            }),
        }
    }

    fn auth_method(&self) -> &str {
        self.token_endpoint_auth_method
            .as_deref()
            .unwrap_or("client_secret_basic")
    }

    /// Confidential clients authenticate (with a secret or keys); `none`
    /// makes a public one.
    fn confidential(&self) -> bool {
        self.auth_method() != "none"
    }

    fn uses_keys(&self) -> bool {
        self.auth_method() == "private_key_jwt"
    }

    fn grants(&self) -> Vec<String> {
        self.grant_types
            .clone()
            .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()])
    }

    fn scopes(&self) -> Vec<String> {
        match &self.scope {
            Some(s) => s.split_ascii_whitespace().map(str::to_owned).collect(),
            None => STANDARD_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl ClientSpec {
    /// The settings to store, with defaults filled in.
    fn settings(&self) -> Result<clients::Settings> {
        Ok(clients::Settings {
            name: self.client_name.trim().to_owned(),
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            grant_types: self.grants(),
            scopes: self.scopes(),
            allowed_origins: self.allowed_origins.clone(),
            first_party: self.first_party,
            id_token_alg: self
                .id_token_signed_response_alg
                .clone()
                .unwrap_or_else(|| "ES256".into()),
            access_token_alg: self
                .access_token_signed_response_alg
                .clone()
                .unwrap_or_else(|| "ES256".into()),
            access_token_ttl: self.access_token_ttl.unwrap_or(300),
            refresh_idle_ttl: self.refresh_idle_ttl.unwrap_or(14 * 86_400),
            refresh_max_ttl: self.refresh_max_ttl.unwrap_or(90 * 86_400),
            jwks: self.jwks.clone(),
            resource_server_for: self.resource_server_for.clone(),
            b2b: self.b2b,
            roles: serde_json::to_string(&self.roles)
                .map_err(|e| Error::Internal(format!("roles JSON: {e}")))?,
            activation_policy: self.policy()?.as_str().to_owned(),
            personal_use: self.personal_use,
            token_exchange: serde_json::to_string(&self.token_exchange)
                .map_err(|e| Error::Internal(format!("token_exchange JSON: {e}")))?,
            logout: clients::Logout {
                backchannel_logout_uri: self.backchannel_logout_uri.clone(),
                backchannel_logout_session_required: self.backchannel_logout_session_required,
                frontchannel_logout_uri: self.frontchannel_logout_uri.clone(),
                frontchannel_logout_session_required: self.frontchannel_logout_session_required,
            },
        })
    }
}

impl TryFrom<clients::Record> for Client {
    type Error = Error;

    /// A stored client; a catalogue or policy the store cannot have been
    /// given is an internal error.
    fn try_from(r: clients::Record) -> Result<Client> {
        let s = r.settings;
        let roles: Vec<CatalogueRole> = serde_json::from_str(&s.roles)
            .map_err(|e| Error::Internal(format!("client `{}`: roles: {e}", r.id)))?;
        let token_exchange: Vec<Registration> = serde_json::from_str(&s.token_exchange)
            .map_err(|e| Error::Internal(format!("client `{}`: token_exchange: {e}", r.id)))?;
        let activation_policy = ActivationPolicy::parse(&s.activation_policy).ok_or_else(|| {
            Error::Internal(format!(
                "client `{}`: activation_policy `{}`",
                r.id, s.activation_policy
            ))
        })?;
        let token_endpoint_auth_method = match (&r.secret_hash, &s.jwks) {
            (Some(_), _) => "client_secret_basic",
            (None, Some(_)) => "private_key_jwt",
            (None, None) => "none",
        };
        let response_types = if s.grant_types.iter().any(|g| g == "authorization_code") {
            vec!["code".to_owned()]
        } else {
            Vec::new()
        };
        Ok(Client {
            id: r.id,
            name: s.name,
            created_at: r.created_at,
            confidential: r.secret_hash.is_some() || s.jwks.is_some(),
            token_endpoint_auth_method: token_endpoint_auth_method.into(),
            jwks: s.jwks,
            secret_hash: r.secret_hash,
            redirect_uris: s.redirect_uris,
            post_logout_redirect_uris: s.post_logout_redirect_uris,
            grant_types: s.grant_types,
            response_types,
            scopes: s.scopes,
            allowed_origins: s.allowed_origins,
            first_party: s.first_party,
            resource_server_for: s.resource_server_for,
            id_token_alg: s.id_token_alg,
            access_token_alg: s.access_token_alg,
            access_token_ttl: s.access_token_ttl,
            refresh_idle_ttl: s.refresh_idle_ttl,
            refresh_max_ttl: s.refresh_max_ttl,
            b2b: s.b2b,
            roles,
            activation_policy,
            personal_use: s.personal_use,
            token_exchange,
            logout: s.logout,
        })
    }
}

/// Registers a client. Returns it and, for a confidential client with a
/// secret, that secret (shown once; only the hash is kept). A taken
/// `client_id` is a conflict.
pub fn create(db: &dyn SqlStore, spec: &ClientSpec, now: i64) -> Result<(Client, Option<String>)> {
    spec.validate()?;
    let id = match &spec.client_id {
        Some(id) => id.clone(),
        None => crypto::random_id()?,
    };
    let secret = if spec.confidential() && !spec.uses_keys() {
        Some(crypto::random_token()?)
    } else {
        None
    };
    let hash = secret.as_deref().map(crypto::hash_secret);
    let record = clients::insert(db, &id, hash.as_deref(), &spec.settings()?, now)?
        .ok_or_else(|| Error::Conflict(format!("A client `{id}` exists already.")))?;
    forget_grants(db, &id)?;
    Ok((record.try_into()?, secret))
}

/// Replaces a client's settings (its id and secret stay; a `private_key_jwt`
/// client's keys are replaced, which is how they rotate).
pub fn update(db: &dyn SqlStore, id: &str, spec: &ClientSpec, now: i64) -> Result<Client> {
    spec.validate()?;
    let existing = get(db, id)?.ok_or(Error::NotFound)?;
    if spec.client_id.as_deref().is_some_and(|c| c != id) {
        return Err(invalid(
            "`client_id` must be the client's own (RFC 7592 §2.2)",
        ));
    }
    exchange::check_registrations(Some(id), &spec.token_exchange)?;
    if spec.confidential() != existing.confidential || spec.uses_keys() != existing.jwks.is_some() {
        return Err(invalid(
            "A client cannot change between public, secret and key authentication; register a new one.",
        ));
    }
    clients::update(db, id, &spec.settings()?, now)?
        .map(Client::try_from)
        .transpose()?
        .ok_or(Error::NotFound)
}

/// The `client_id` and secret of the demo client that `dev_mode` seeds.
pub const DEMO_CLIENT: (&str, &str) = ("demo", "demo-secret");

/// In `dev_mode`, registers the documented demo client (once; a no-op after).
/// It is confidential, first-party, and may return to `<issuer>/demo/callback`
/// or `http://127.0.0.1:8080/callback` (any port). It is told of ended
/// sessions at `<issuer>/demo/backchannel-logout` and
/// `<issuer>/demo/frontchannel-logout`, both with the `sid` required.
pub fn seed_demo_client(db: &dyn SqlStore, issuer: &str, now: i64) -> Result<()> {
    if get(db, DEMO_CLIENT.0)?.is_some() {
        return Ok(());
    }
    let settings = clients::Settings {
        name: "Lanyard demo".into(),
        redirect_uris: vec![
            format!("{issuer}/demo/callback"),
            "http://127.0.0.1:8080/callback".into(),
        ],
        post_logout_redirect_uris: vec![format!("{issuer}/demo"), "http://127.0.0.1:8080/".into()],
        grant_types: GRANT_TYPES.iter().map(|g| g.to_string()).collect(),
        scopes: STANDARD_SCOPES.iter().map(|s| s.to_string()).collect(),
        allowed_origins: Vec::new(),
        first_party: true,
        id_token_alg: "ES256".into(),
        access_token_alg: "ES256".into(),
        access_token_ttl: 300,
        refresh_idle_ttl: 14 * 86_400,
        refresh_max_ttl: 90 * 86_400,
        jwks: None,
        resource_server_for: Vec::new(),
        b2b: false,
        roles: "[]".into(),
        activation_policy: ActivationPolicy::default().as_str().into(),
        personal_use: false,
        token_exchange: "[]".into(),
        // The demo ends its sessions by Lanyard's `sid` on both channels.
        logout: clients::Logout {
            backchannel_logout_uri: Some(format!("{issuer}/demo/backchannel-logout")),
            backchannel_logout_session_required: true,
            frontchannel_logout_uri: Some(format!("{issuer}/demo/frontchannel-logout")),
            frontchannel_logout_session_required: true,
        },
    };
    // Racing instances: the first insert wins, the others change nothing.
    clients::insert(
        db,
        DEMO_CLIENT.0,
        Some(&crypto::hash_secret(DEMO_CLIENT.1)),
        &settings,
        now,
    )?;
    Ok(())
}

/// Whether any client allows this browser origin (for CORS preflights).
pub fn origin_allowed(db: &dyn SqlStore, origin: &str) -> Result<bool> {
    clients::any_allows_origin(db, origin)
}

/// A client by id.
pub fn get(db: &dyn SqlStore, id: &str) -> Result<Option<Client>> {
    clients::get(db, id)?.map(Client::try_from).transpose()
}

/// Every client, by id.
pub fn list(db: &dyn SqlStore) -> Result<Vec<Client>> {
    clients::all(db)?
        .into_iter()
        .map(Client::try_from)
        .collect()
}

/// Removes a client, and first everything issued to it: consents, refresh
/// families, codes and spent assertion ids. SQLite's foreign keys may be off,
/// so nothing is left to a cascade, and a client registered later under the
/// same id must not inherit any of it.
pub fn delete(db: &dyn SqlStore, id: &str) -> Result<()> {
    if get(db, id)?.is_none() {
        return Err(Error::NotFound);
    }
    forget_grants(db, id)?;
    if clients::delete(db, id)? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// Deletes what a client id holds besides its registration. Run before a
/// delete, and after a create in case an earlier delete was interrupted.
fn forget_grants(db: &dyn SqlStore, id: &str) -> Result<()> {
    consents::delete_for_client(db, id)?;
    refresh_families::delete_for_client(db, id)?;
    auth_codes::delete_for_client(db, id)?;
    client_assertions::delete_for_client(db, id)?;
    session_clients::delete_for_client(db, id)?;
    logout_deliveries::delete_for_client(db, id)?;
    // A service's organisation data: a client registered later under the
    // same id is activated by nobody and grants no roles.
    role_assignments::delete_for_client(db, id)?;
    projects::delete_for_client(db, id)?;
    mandate_delegates::delete_for_client(db, id)?;
    mandates::delete_for_client(db, id)?;
    mandate_templates::delete_for_client(db, id)?;
    activations::delete_for_client(db, id)
}

impl Client {
    /// Whether the client may use a grant type.
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// Whether the role `name` is in the client's catalogue.
    pub fn role_defined(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.name == name)
    }

    /// Whether `presented` matches one of the registered redirect URIs.
    pub fn accepts_redirect(&self, presented: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| redirect_matches(r, presented))
    }

    /// Checks a secret in constant time.
    fn secret_ok(&self, secret: &str) -> bool {
        match &self.secret_hash {
            Some(h) => crypto::ct_eq(h.as_bytes(), crypto::hash_secret(secret).as_bytes()),
            None => false,
        }
    }
}

/// Authenticates the client at the token, introspection and revocation
/// endpoints: `client_secret_basic`, `client_secret_post`, `private_key_jwt`
/// (assertions for `issuer`, checked at `now`), or `none` for a public client
/// (which then proves itself with PKCE). Exactly one method may be used.
pub fn authenticate(
    db: &dyn SqlStore,
    headers: &HeaderMap,
    form: &Params,
    issuer: &str,
    now: i64,
) -> Result<Client> {
    let fail = || Error::oauth(OAuthCode::InvalidClient, "Client authentication failed.");
    let basic = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(|b| -> Result<(String, String)> {
            let raw = base64_std(b.trim()).ok_or_else(fail)?;
            let text = String::from_utf8(raw).map_err(|_| fail())?;
            let (id, secret) = text.split_once(':').ok_or_else(fail)?;
            Ok((form_decode(id)?, form_decode(secret)?))
        })
        .transpose()?;
    let post_secret = form.one("client_secret").map_err(|_| fail())?;
    let form_id = form.one("client_id").map_err(|_| fail())?;
    let assertion_type = form.one("client_assertion_type").map_err(|_| fail())?;
    let client_assertion = form.one("client_assertion").map_err(|_| fail())?;
    if assertion_type.is_some() || client_assertion.is_some() {
        if basic.is_some() || post_secret.is_some() {
            return Err(Error::oauth(
                OAuthCode::InvalidRequest,
                "Use one client authentication method.",
            ));
        }
        if assertion_type != Some(assertion::ASSERTION_TYPE) {
            return Err(Error::oauth(
                OAuthCode::InvalidClient,
                format!(
                    "`client_assertion_type` must be {}.",
                    assertion::ASSERTION_TYPE
                ),
            ));
        }
        let signed = client_assertion.ok_or_else(|| {
            Error::oauth(OAuthCode::InvalidRequest, "`client_assertion` is missing.")
        })?;
        let id = match form_id {
            Some(id) => id.to_owned(),
            None => assertion::claimed_client(signed)?,
        };
        let client = get(db, &id)?.ok_or_else(fail)?;
        let jwks = client.jwks.as_ref().ok_or_else(fail)?;
        assertion::verify(db, &client.id, jwks, signed, issuer, now)?;
        return Ok(client);
    }
    let (id, secret) = match (basic, post_secret) {
        (Some(_), Some(_)) => {
            return Err(Error::oauth(
                OAuthCode::InvalidRequest,
                "Use one client authentication method.",
            ));
        }
        (Some((id, secret)), None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(fail());
            }
            (id, Some(secret))
        }
        (None, secret) => (
            form_id.ok_or_else(fail)?.to_owned(),
            secret.map(str::to_owned),
        ),
    };
    let client = get(db, &id)?.ok_or_else(fail)?;
    match (client.confidential, secret) {
        (true, Some(s)) if client.secret_ok(&s) => Ok(client),
        (false, None) => Ok(client),
        _ => Err(fail()),
    }
}

fn base64_std(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// RFC 6749 §2.3.1: the Basic credentials are form-urlencoded first.
fn form_decode(s: &str) -> Result<String> {
    let fail = |_| Error::oauth(OAuthCode::InvalidClient, "Client authentication failed.");
    let p = Params::parse(format!("v={s}").as_bytes()).map_err(fail)?;
    Ok(p.one("v").map_err(fail)?.unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    const ISS: &str = "https://id.example.com";

    fn spec(json: serde_json::Value) -> ClientSpec {
        serde_json::from_value(json).unwrap()
    }

    fn db() -> SqliteSql {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        db
    }

    #[test]
    fn the_seeded_demo_client_is_told_of_ended_sessions_by_sid() {
        let db = db();
        let issuer = "http://127.0.0.1:3000";
        seed_demo_client(&db, issuer, 1).unwrap();
        let demo = get(&db, DEMO_CLIENT.0).unwrap().unwrap();
        assert_eq!(
            demo.logout,
            clients::Logout {
                backchannel_logout_uri: Some(format!("{issuer}/demo/backchannel-logout")),
                backchannel_logout_session_required: true,
                frontchannel_logout_uri: Some(format!("{issuer}/demo/frontchannel-logout")),
                frontchannel_logout_session_required: true,
            }
        );
        // Valid as registered metadata, for a loopback and an https issuer.
        for iss in [issuer, ISS] {
            check_logout_uri(
                "backchannel_logout_uri",
                &format!("{iss}/demo/backchannel-logout"),
            )
            .unwrap();
            check_logout_uri(
                "frontchannel_logout_uri",
                &format!("{iss}/demo/frontchannel-logout"),
            )
            .unwrap();
        }
        // Seeding again is a no-op.
        seed_demo_client(&db, ISS, 2).unwrap();
        assert_eq!(
            get(&db, DEMO_CLIENT.0).unwrap().unwrap().logout,
            demo.logout
        );
    }

    #[test]
    fn redirect_uris_follow_rfc8252() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "com.example.app:/oauth",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "https://a.example/cb#x",
            "javascript:alert(1)",
            "/relative",
            "myapp:/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
        assert!(redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb/"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb?x=1"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51234/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51234/other"
        ));
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://localhost:1234/cb"
        ));
    }

    #[test]
    fn create_authenticate_update_delete() {
        let db = db();
        let (c, secret) = create(&db, &spec(serde_json::json!({
            "client_name": "Shop", "client_id": "shop", 
            "redirect_uris": ["https://shop.example/cb"], "grant_types": ["authorization_code", "refresh_token", "client_credentials"]
        })), 1).unwrap();
        let secret = secret.unwrap();
        assert!(c.confidential);
        assert!(create(&db, &spec(serde_json::json!({"client_name": "x", "client_id": "shop", "redirect_uris": ["https://x.example/cb"]})), 1).is_err());

        use base64::Engine as _;
        let mut h = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("shop:{secret}"));
        h.insert(
            http::header::AUTHORIZATION,
            format!("Basic {basic}").parse().unwrap(),
        );
        assert_eq!(
            authenticate(&db, &h, &Params::default(), ISS, 1)
                .unwrap()
                .id,
            "shop"
        );
        let post =
            Params::parse(format!("client_id=shop&client_secret={secret}").as_bytes()).unwrap();
        assert!(authenticate(&db, &HeaderMap::new(), &post, ISS, 1).is_ok());
        let wrong = Params::parse(b"client_id=shop&client_secret=nope").unwrap();
        assert!(matches!(
            authenticate(&db, &HeaderMap::new(), &wrong, ISS, 1),
            Err(Error::OAuth {
                code: OAuthCode::InvalidClient,
                ..
            })
        ));
        assert!(
            authenticate(
                &db,
                &HeaderMap::new(),
                &Params::parse(b"client_id=shop").unwrap(),
                ISS,
                1
            )
            .is_err(),
            "a confidential client needs its secret"
        );
        assert!(
            authenticate(&db, &h, &post, ISS, 1).is_err(),
            "two methods at once"
        );

        let mut s = spec(
            serde_json::json!({"client_name": "Shop 2", "redirect_uris": ["https://shop.example/cb2"]}),
        );
        let u = update(&db, "shop", &s, 2).unwrap();
        assert_eq!(u.redirect_uris, ["https://shop.example/cb2"]);
        s.token_endpoint_auth_method = Some("none".into());
        assert!(update(&db, "shop", &s, 3).is_err());
        delete(&db, "shop").unwrap();
        assert_eq!(delete(&db, "shop"), Err(Error::NotFound));
    }

    #[test]
    fn invalid_specs_are_refused() {
        let db = db();
        for bad in [
            serde_json::json!({"client_name": "", "redirect_uris": ["https://a.example/cb"]}),
            serde_json::json!({"client_name": "x"}),
            serde_json::json!({"client_name": "x", "redirect_uris": ["http://a.example/cb"]}),
            serde_json::json!({"client_name": "x", "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
            serde_json::json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            serde_json::json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "scope": " "}),
            serde_json::json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            serde_json::json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "allowed_origins": ["https://a.example/path"]}),
            serde_json::json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "none"}),
            serde_json::json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "access_token_ttl": 999999}),
        ] {
            assert!(create(&db, &spec(bad.clone()), 1).is_err(), "{bad}");
        }
        assert!(
            serde_json::from_value::<ClientSpec>(
                serde_json::json!({"client_name": "x", "typo": 1})
            )
            .is_err()
        );
        assert_eq!(list(&db).unwrap().len(), 0);
    }

    /// A signed client assertion, as a `private_key_jwt` client makes one.
    fn assertion(
        key: &jwt_simple::prelude::ES256KeyPair,
        iss: &str,
        aud: &str,
        jti: &str,
        secs: u64,
    ) -> String {
        use jwt_simple::prelude::*;
        let claims = Claims::create(Duration::from_secs(secs))
            .with_issuer(iss)
            .with_subject(iss)
            .with_audience(aud)
            .with_jwt_id(jti);
        key.sign(claims).unwrap()
    }

    fn assertion_form(client_id: Option<&str>, signed: &str) -> Params {
        let id = client_id
            .map(|c| format!("client_id={c}&"))
            .unwrap_or_default();
        Params::parse(
            format!("{id}client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={signed}")
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn private_key_jwt_clients_sign_single_use_assertions() {
        use jwt_simple::prelude::*;
        let db = db();
        let key = ES256KeyPair::generate().with_key_id("k1");
        let jwks: serde_json::Value =
            serde_json::from_str(&format!(r#"{{"keys":[{}]}}"#, key.public_key().to_jwk()))
                .unwrap();
        let (c, secret) = create(
            &db,
            &spec(serde_json::json!({
                "client_name": "Partner", "client_id": "partner",
                "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
                "grant_types": ["client_credentials"], "scope": "orders.read"
            })),
            1,
        )
        .unwrap();
        assert!(secret.is_none(), "a key-based client gets no secret");
        assert_eq!(c.token_endpoint_auth_method, "private_key_jwt");
        let now = Clock::now_since_epoch().as_secs() as i64;
        let h = HeaderMap::new();

        let good = assertion(&key, "partner", ISS, "a1", 60);
        assert_eq!(
            authenticate(&db, &h, &assertion_form(None, &good), ISS, now)
                .unwrap()
                .id,
            "partner"
        );
        assert!(
            matches!(
                authenticate(&db, &h, &assertion_form(None, &good), ISS, now),
                Err(Error::OAuth {
                    code: OAuthCode::InvalidClient,
                    ..
                })
            ),
            "a replayed assertion is refused"
        );
        let to_token_endpoint = assertion(&key, "partner", &format!("{ISS}/token"), "a2", 60);
        assert!(
            authenticate(
                &db,
                &h,
                &assertion_form(Some("partner"), &to_token_endpoint),
                ISS,
                now
            )
            .is_ok()
        );

        let other = ES256KeyPair::generate().with_key_id("k1");
        for (why, signed) in [
            ("another key", assertion(&other, "partner", ISS, "b1", 60)),
            (
                "another audience",
                assertion(&key, "partner", "https://elsewhere.example", "b2", 60),
            ),
            ("another issuer", assertion(&key, "shop", ISS, "b3", 60)),
            (
                "longer than ten minutes",
                assertion(&key, "partner", ISS, "b4", 3600),
            ),
            (
                "tampered",
                format!("{}x", assertion(&key, "partner", ISS, "b5", 60)),
            ),
        ] {
            assert!(
                matches!(
                    authenticate(&db, &h, &assertion_form(Some("partner"), &signed), ISS, now),
                    Err(Error::OAuth {
                        code: OAuthCode::InvalidClient,
                        ..
                    })
                ),
                "{why}"
            );
        }
        let expired = assertion(&key, "partner", ISS, "b6", 60);
        assert!(
            authenticate(&db, &h, &assertion_form(None, &expired), ISS, now + 600).is_err(),
            "expired"
        );
        let no_jti = key
            .sign(
                Claims::create(Duration::from_secs(60))
                    .with_issuer("partner")
                    .with_subject("partner")
                    .with_audience(ISS),
            )
            .unwrap();
        assert!(
            authenticate(&db, &h, &assertion_form(None, &no_jti), ISS, now).is_err(),
            "no jti"
        );
        assert!(
            authenticate(
                &db,
                &h,
                &Params::parse(b"client_id=partner&client_secret=x").unwrap(),
                ISS,
                now
            )
            .is_err(),
            "a key-based client has no secret to present"
        );
        let wrong_type = Params::parse(
            format!(
                "client_assertion_type=jwt&client_assertion={}",
                assertion(&key, "partner", ISS, "c1", 60)
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(authenticate(&db, &h, &wrong_type, ISS, now).is_err());

        // A secret client cannot switch to assertions, even with a valid JWT.
        create(&db, &spec(serde_json::json!({"client_name": "Shop", "client_id": "shop", "grant_types": ["client_credentials"]})), 1).unwrap();
        let as_shop = assertion(&key, "shop", ISS, "d1", 60);
        assert!(authenticate(&db, &h, &assertion_form(None, &as_shop), ISS, now).is_err());

        // Keys rotate by update; the method cannot change.
        let next = ES256KeyPair::generate().with_key_id("k2");
        let rotated = serde_json::json!({"keys": [
            serde_json::from_str::<serde_json::Value>(&key.public_key().to_jwk()).unwrap(),
            serde_json::from_str::<serde_json::Value>(&next.public_key().to_jwk()).unwrap(),
        ]});
        update(
            &db,
            "partner",
            &spec(serde_json::json!({
                "client_name": "Partner", "token_endpoint_auth_method": "private_key_jwt",
                "jwks": rotated, "grant_types": ["client_credentials"]
            })),
            2,
        )
        .unwrap();
        let with_next = assertion(&next, "partner", ISS, "e1", 60);
        assert!(authenticate(&db, &h, &assertion_form(None, &with_next), ISS, now).is_ok());
        assert!(
            update(
                &db,
                "partner",
                &spec(serde_json::json!({
                    "client_name": "Partner", "grant_types": ["client_credentials"]
                })),
                3
            )
            .is_err()
        );
    }

    #[test]
    fn client_keys_must_be_public_signing_keys() {
        use jwt_simple::prelude::*;
        let db = db();
        let pair = ES256KeyPair::generate();
        let public: serde_json::Value = serde_json::from_str(&pair.public_key().to_jwk()).unwrap();
        let private: serde_json::Value = serde_json::from_str(&pair.to_jwk()).unwrap();
        let base = |extra: serde_json::Value| {
            let mut v =
                serde_json::json!({"client_name": "p", "grant_types": ["client_credentials"]});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            spec(v)
        };
        for bad in [
            serde_json::json!({"token_endpoint_auth_method": "private_key_jwt"}),
            serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [private]}}),
            serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}}),
            serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": [public]}),
            serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [public, public]}}),
            serde_json::json!({"jwks": {"keys": [public]}}),
            serde_json::json!({"token_endpoint_auth_method": "none"}),
            serde_json::json!({"token_endpoint_auth_method": "tls_client_auth"}),
        ] {
            assert!(create(&db, &base(bad.clone()), 1).is_err(), "{bad}");
        }
        assert_eq!(list(&db).unwrap().len(), 0);
        assert!(create(&db, &base(serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [public]}})), 1).is_ok());
    }

    #[test]
    fn the_admin_api_speaks_rfc7591() {
        let db = db();
        let (c, secret) = create(&db, &spec(serde_json::json!({
            "client_name": "Shop", "client_id": "shop", "redirect_uris": ["https://shop.example/cb"],
            "scope": "openid email", "id_token_signed_response_alg": "EdDSA"
        })), 7).unwrap();
        assert!(secret.is_some(), "client_secret_basic is the default");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["client_id"], "shop");
        assert_eq!(json["client_name"], "Shop");
        assert_eq!(json["client_id_issued_at"], 7);
        assert_eq!(json["scope"], "openid email");
        assert_eq!(json["token_endpoint_auth_method"], "client_secret_basic");
        assert_eq!(json["response_types"], serde_json::json!(["code"]));
        assert_eq!(json["id_token_signed_response_alg"], "EdDSA");
        for gone in [
            "id",
            "name",
            "scopes",
            "confidential",
            "id_token_alg",
            "secret_hash",
        ] {
            assert!(json.get(gone).is_none(), "{gone}");
        }
        // RFC 7592 §2.2: a replacement names the client's own id.
        let other = spec(
            serde_json::json!({"client_name": "Shop", "client_id": "other", "redirect_uris": ["https://shop.example/cb"]}),
        );
        assert!(update(&db, "shop", &other, 8).is_err());
    }

    #[test]
    fn logout_uris_are_checked_kept_and_shown_under_their_metadata_names() {
        for ok in [
            "https://shop.example/logout",
            "https://shop.example:8443/bc?tenant=1",
            "http://localhost:8080/logout",
            "http://127.0.0.1/logout",
            "http://[::1]:9000/logout",
        ] {
            assert!(
                check_logout_uri("backchannel_logout_uri", ok).is_ok(),
                "{ok}"
            );
        }
        let long = format!("https://shop.example/{}", "a".repeat(2000));
        for bad in [
            "/logout",
            "http://shop.example/logout",
            "https://shop.example/logout#frag",
            "https://user:pw@shop.example/logout",
            "com.example.app:/logout",
            "javascript:alert(1)",
            long.as_str(),
        ] {
            assert!(
                check_logout_uri("frontchannel_logout_uri", bad).is_err(),
                "{bad}"
            );
        }

        let db = db();
        let base = serde_json::json!({"client_name": "Shop", "client_id": "shop", "redirect_uris": ["https://shop.example/cb"]});
        let with = |extra: serde_json::Value| {
            let mut m = base.clone();
            m.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            spec(m)
        };
        for bad in [
            serde_json::json!({"backchannel_logout_uri": "http://shop.example/bc"}),
            serde_json::json!({"frontchannel_logout_uri": "https://shop.example/fc#x"}),
            serde_json::json!({"backchannel_logout_session_required": true}),
            serde_json::json!({"frontchannel_logout_session_required": true}),
        ] {
            assert!(create(&db, &with(bad.clone()), 1).is_err(), "{bad}");
        }

        // Without them, nothing is sent and the flags are false.
        let (plain, _) = create(&db, &spec(base.clone()), 1).unwrap();
        assert_eq!(plain.logout, clients::Logout::default());
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("backchannel_logout_uri").is_none());
        assert_eq!(json["backchannel_logout_session_required"], false);
        delete(&db, "shop").unwrap();

        let (c, _) = create(
            &db,
            &with(serde_json::json!({
                "backchannel_logout_uri": "https://shop.example/bc",
                "backchannel_logout_session_required": true,
                "frontchannel_logout_uri": "https://shop.example/fc?x=1",
            })),
            2,
        )
        .unwrap();
        let stored = get(&db, "shop").unwrap().unwrap();
        assert_eq!(stored.logout, c.logout);
        assert_eq!(
            stored.logout,
            clients::Logout {
                backchannel_logout_uri: Some("https://shop.example/bc".into()),
                backchannel_logout_session_required: true,
                frontchannel_logout_uri: Some("https://shop.example/fc?x=1".into()),
                frontchannel_logout_session_required: false,
            }
        );
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["backchannel_logout_uri"], "https://shop.example/bc");
        assert_eq!(json["backchannel_logout_session_required"], true);
        assert_eq!(
            json["frontchannel_logout_uri"],
            "https://shop.example/fc?x=1"
        );
        assert_eq!(json["frontchannel_logout_session_required"], false);
        assert!(json.get("logout").is_none());
        // The metadata as shown can be sent back as it is (RFC 7592).
        let mut meta = json;
        meta.as_object_mut().unwrap().remove("client_id_issued_at");
        let again = update(&db, "shop", &spec(meta), 3).unwrap();
        assert_eq!(again.logout, stored.logout);
        // A replacement without them removes them.
        let replaced = update(&db, "shop", &spec(base), 4).unwrap();
        assert_eq!(replaced.logout, clients::Logout::default());
    }

    #[test]
    fn a_b2b_client_has_a_catalogue_and_a_policy() {
        let db = db();
        let (c, _) = create(&db, &spec(serde_json::json!({
            "client_name": "Shop", "client_id": "shop", "redirect_uris": ["https://shop.example/cb"]
        })), 1).unwrap();
        assert!(!c.b2b);
        assert!(c.roles.is_empty());
        assert_eq!(c.activation_policy, ActivationPolicy::SelfService);
        assert!(!c.personal_use);

        let body = serde_json::json!({
            "client_name": "Buying", "client_id": "buying", "redirect_uris": ["https://buy.example/cb"],
            "b2b": true, "activation_policy": "approval",
            "roles": [{"name": "buyer", "description": "Places orders"}, {"name": "orders:approve.all-x_1"}]
        });
        let (c, _) = create(&db, &spec(body), 2).unwrap();
        assert!(c.b2b);
        assert_eq!(c.activation_policy, ActivationPolicy::Approval);
        assert!(!c.personal_use, "not unless asked for");
        assert_eq!(
            c.roles[0],
            CatalogueRole {
                name: "buyer".into(),
                description: "Places orders".into()
            }
        );
        assert_eq!(c.roles[1].description, "");
        assert!(c.role_defined("buyer"));
        assert!(c.role_defined("orders:approve.all-x_1"));
        assert!(!c.role_defined("approver"));
        assert!(!c.role_defined("Buyer"));
        assert_eq!(get(&db, "buying").unwrap().unwrap(), c, "stored as created");

        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["b2b"], true);
        assert_eq!(json["activation_policy"], "approval");
        assert_eq!(json["personal_use"], false);
        assert_eq!(
            json["roles"][0],
            serde_json::json!({"name": "buyer", "description": "Places orders"})
        );

        // A replacement changes the catalogue and the policy; leaving them
        // out makes a plain client again.
        let u = update(
            &db,
            "buying",
            &spec(serde_json::json!({
                "client_name": "Buying", "redirect_uris": ["https://buy.example/cb"],
                "b2b": true, "activation_policy": "operator_only", "roles": [{"name": "approver"}],
                "personal_use": true
            })),
            3,
        )
        .unwrap();
        assert_eq!(u.activation_policy, ActivationPolicy::OperatorOnly);
        assert!(u.personal_use);
        assert_eq!(
            get(&db, "buying").unwrap().unwrap(),
            u,
            "stored as replaced"
        );
        assert_eq!(serde_json::to_value(&u).unwrap()["personal_use"], true);
        assert!(u.role_defined("approver") && !u.role_defined("buyer"));
        let plain = update(
            &db,
            "buying",
            &spec(serde_json::json!({
                "client_name": "Buying", "redirect_uris": ["https://buy.example/cb"]
            })),
            4,
        )
        .unwrap();
        assert!(!plain.b2b && plain.roles.is_empty() && !plain.personal_use);
        assert_eq!(plain.activation_policy, ActivationPolicy::SelfService);

        for p in ActivationPolicy::ALL {
            assert_eq!(ActivationPolicy::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(ActivationPolicy::parse("SelfService"), None);
    }

    #[test]
    fn bad_catalogues_and_policies_are_refused() {
        let db = db();
        let service = |extra: serde_json::Value| {
            let mut v =
                serde_json::json!({"client_name": "s", "redirect_uris": ["https://s.example/cb"]});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let many: Vec<_> = (0..=MAX_ROLES)
            .map(|i| serde_json::json!({"name": format!("r{i}")}))
            .collect();
        let long = "x".repeat(65);
        let wordy = "y".repeat(201);
        for (why, bad) in [
            (
                "roles without b2b",
                serde_json::json!({"roles": [{"name": "buyer"}]}),
            ),
            (
                "personal use without b2b",
                serde_json::json!({"personal_use": true}),
            ),
            (
                "a policy without b2b",
                serde_json::json!({"activation_policy": "approval"}),
            ),
            (
                "unknown policy",
                serde_json::json!({"b2b": true, "activation_policy": "anyone"}),
            ),
            (
                "upper case",
                serde_json::json!({"b2b": true, "roles": [{"name": "Buyer"}]}),
            ),
            (
                "a space",
                serde_json::json!({"b2b": true, "roles": [{"name": "a b"}]}),
            ),
            (
                "empty name",
                serde_json::json!({"b2b": true, "roles": [{"name": ""}]}),
            ),
            (
                "long name",
                serde_json::json!({"b2b": true, "roles": [{"name": long}]}),
            ),
            (
                "built in",
                serde_json::json!({"b2b": true, "roles": [{"name": "admin"}]}),
            ),
            (
                "owner",
                serde_json::json!({"b2b": true, "roles": [{"name": "owner"}]}),
            ),
            (
                "twice",
                serde_json::json!({"b2b": true, "roles": [{"name": "a"}, {"name": "a"}]}),
            ),
            (
                "long description",
                serde_json::json!({"b2b": true, "roles": [{"name": "a", "description": wordy}]}),
            ),
            ("too many", serde_json::json!({"b2b": true, "roles": many})),
        ] {
            let body = service(bad);
            let err = create(&db, &spec(body.clone()), 1).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{why}: {err:?}");
        }
        let err = create(
            &db,
            &spec(service(
                serde_json::json!({"b2b": true, "activation_policy": "anyone"}),
            )),
            1,
        )
        .unwrap_err();
        assert!(err.detail().contains("activation_policy"), "{err:?}");
        assert!(
            serde_json::from_value::<ClientSpec>(service(
                serde_json::json!({"b2b": true, "roles": [{"name": "a", "level": 1}]})
            ))
            .is_err(),
            "a role has a name and a description only"
        );
        assert_eq!(list(&db).unwrap().len(), 0);
        // The limits themselves are fine, and self_service is the default
        // whether named or not.
        let most: Vec<_> = (0..MAX_ROLES)
            .map(|i| serde_json::json!({"name": format!("r{i}"), "description": "d".repeat(200)}))
            .collect();
        assert!(
            create(
                &db,
                &spec(service(serde_json::json!({"b2b": true, "roles": most}))),
                1
            )
            .is_ok()
        );
        assert!(
            create(
                &db,
                &spec(service(
                    serde_json::json!({"activation_policy": "self_service"})
                )),
                1
            )
            .is_ok()
        );
        assert!(
            create(
                &db,
                &spec(service(
                    serde_json::json!({"b2b": true, "roles": [{"name": &"z".repeat(64)}]})
                )),
                1
            )
            .is_ok()
        );
    }

    #[test]
    fn a_deleted_client_leaves_nothing_for_its_successor() {
        let db = db();
        let body = serde_json::json!({"client_name": "Shop", "client_id": "shop", "redirect_uris": ["https://shop.example/cb"]});
        create(&db, &spec(body.clone()), 1).unwrap();
        let who = crate::identity::create(&db, "a@example.com", None, &Default::default(), 0)
            .unwrap()
            .unwrap()
            .id;
        db.execute(
            "INSERT INTO consents (identity_id, client_id, scopes, granted_at) VALUES (?, 'shop', 'openid', 1)",
            &[who.into()],
        )
        .unwrap();
        db.execute(
            "INSERT INTO refresh_families (id, client_id, identity_id, scope, current_hash, auth_time, amr, sid, created_at, last_used_at) \
             VALUES ('f1', 'shop', 'u1', 'openid offline_access', 'h', 1, 'pwd', 's', 1, 1)",
            &[],
        )
        .unwrap();
        delete(&db, "shop").unwrap();
        create(&db, &spec(body), 2).unwrap();
        for table in ["consents", "refresh_families"] {
            let n = db
                .execute(
                    &format!("SELECT count(*) AS n FROM {table} WHERE client_id = 'shop'"),
                    &[],
                )
                .unwrap();
            assert_eq!(n.first().unwrap().int("n").unwrap(), 0, "{table}");
        }
    }
}
