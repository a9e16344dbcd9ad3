//! The authorization endpoint's logic (authorization code flow with PKCE,
//! RFC 6749 §4.1, RFC 7636, OIDC Core §3.1.2).
//!
//! Until `client_id` and `redirect_uri` are proven valid, errors are shown on
//! a page ([`Reject::Page`]); after that they go back to the client
//! ([`Reject::Redirect`], RFC 6749 §4.1.2.1).
//!
//! A b2b client's login is for a context ([`choose_org`]): an organisation
//! the person is a member of, a principal organisation they act for through
//! a mandate, or (a client with `personal_use`) just themselves. It is
//! chosen silently when there is one, on a picker page when there are
//! several or `prompt=select_account` asks; the `organization` parameter
//! keeps the contexts that act for the organisation it names.

use crate::crypto;
use crate::error::{Error, OAuthCode, Result};
use crate::oidc::clients::{self, Client};
use crate::store::org_access::{self, MandateContext, OrgRef};
use crate::store::{SqlStore, auth_codes, consents};
use crate::web::Params;

/// Codes live a minute (RFC 9700 recommends short).
pub const CODE_TTL: i64 = 60;

/// The `prompt` values understood (also in the discovery document).
pub const PROMPTS: &[&str] = &["none", "login", "consent", "select_account"];

/// The `acr` of a sign-in with two factors (or a user-verified passkey).
pub const ACR_MFA: &str = "urn:lanyard:acr:mfa";
/// The `acr` of a sign-in with a password alone.
pub const ACR_PWD: &str = "urn:lanyard:acr:pwd";
/// The `acr` of a sign-in through an upstream provider alone.
pub const ACR_FED: &str = "urn:lanyard:acr:fed";
/// The `acr` values understood in `acr_values` (also in the discovery
/// document).
pub const ACR_VALUES: &[&str] = &[ACR_MFA, ACR_PWD, ACR_FED];

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The client.
    pub client: Client,
    /// The exact redirect URI presented (and registered).
    pub redirect_uri: String,
    /// Requested scopes, deduplicated, in order.
    pub scopes: Vec<String>,
    /// Echoed back to the client.
    pub state: Option<String>,
    /// Bound into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `none`, `login`, `consent`, `select_account` (any subset; `none`
    /// alone).
    pub prompt: Vec<String>,
    /// Maximum authentication age, seconds.
    pub max_age: Option<i64>,
    /// A hint for the login form.
    pub login_hint: Option<String>,
    /// For a b2b client: the organisation asked for, by id or slug.
    pub organization: Option<String>,
    /// The `acr_values` asked for that Lanyard knows, in order (others are
    /// ignored, as OIDC Core §3.1.2.1 allows).
    pub acr_values: Vec<String>,
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Reject {
    /// Shown to the person: the client or redirect URI cannot be trusted.
    Page(Error),
    /// Sent back to the client's redirect URI.
    Redirect {
        /// Where to send it.
        redirect_uri: String,
        /// The client's state.
        state: Option<String>,
        /// The OAuth error code.
        error: &'static str,
        /// For the developer.
        description: String,
    },
}

fn is_unreserved(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Validates an authorization request.
pub fn parse(db: &dyn SqlStore, params: &Params) -> std::result::Result<AuthRequest, Reject> {
    let page = |msg: String| Reject::Page(Error::bad_request(msg));
    let client_id = params
        .one("client_id")
        .map_err(Reject::Page)?
        .ok_or_else(|| {
            page("The application did not say who it is (client_id is missing).".into())
        })?;
    let client = clients::get(db, client_id)
        .map_err(Reject::Page)?
        .ok_or_else(|| page("This application is not registered here.".into()))?;
    let redirect_uri = params
        .one("redirect_uri")
        .map_err(Reject::Page)?
        .ok_or_else(|| {
            page("The application did not say where to return (redirect_uri is missing).".into())
        })?;
    if !client.accepts_redirect(redirect_uri) {
        return Err(page(
            "The application asked to return to an address it has not registered.".into(),
        ));
    }
    let redirect_uri = redirect_uri.to_owned();
    // From here on the client gets the error.
    // A repeated `state` cannot be echoed: the page, not the client, says so.
    let state = params
        .one("state")
        .map_err(Reject::Page)?
        .map(str::to_owned);
    let back = |error: &'static str, description: &str| Reject::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    let one = |name: &str| {
        params
            .one(name)
            .map_err(|_| back("invalid_request", &format!("`{name}` is repeated")))
    };
    if state.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(back("invalid_request", "state is too long"));
    }
    if one("request")?.is_some() {
        return Err(back(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if one("request_uri")?.is_some() {
        return Err(back(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match one("response_type")? {
        Some("code") => {}
        None => return Err(back("invalid_request", "response_type is missing")),
        Some(_) => {
            return Err(back(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if let Some(mode) = one("response_mode")?
        && mode != "query"
    {
        return Err(back(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    if !client.allows_grant("authorization_code") {
        return Err(back(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in one("scope")?.unwrap_or("").split_ascii_whitespace() {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    if scopes.is_empty() {
        return Err(back("invalid_scope", "scope is missing"));
    }
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(back(
            "invalid_scope",
            &format!("scope `{bad}` is not allowed for this client"),
        ));
    }
    let code_challenge = one("code_challenge")?.ok_or_else(|| {
        back(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        )
    })?;
    match one("code_challenge_method")? {
        Some("S256") => {}
        Some("plain") => {
            return Err(back(
                "invalid_request",
                "code_challenge_method=plain is not allowed; use S256",
            ));
        }
        _ => {
            return Err(back(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
    }
    if code_challenge.len() != 43 || !is_unreserved(code_challenge) {
        return Err(back(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 (43 characters)",
        ));
    }
    let nonce = one("nonce")?.map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err(back("invalid_request", "nonce is too long"));
    }
    let prompt: Vec<String> = one("prompt")?
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    if prompt.iter().any(|p| !PROMPTS.contains(&p.as_str())) {
        return Err(back(
            "invalid_request",
            "prompt may be none, login, consent or select_account",
        ));
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(back("invalid_request", "prompt=none cannot be combined"));
    }
    let max_age = match one("max_age")? {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            back(
                "invalid_request",
                "max_age must be a whole number of seconds",
            )
        })?),
    };
    let login_hint = one("login_hint")?
        .filter(|h| h.len() <= 254)
        .map(str::to_owned);
    let organization = one("organization")?.map(str::to_owned);
    if organization
        .as_ref()
        .is_some_and(|o| o.is_empty() || o.len() > 100)
    {
        return Err(back(
            "invalid_request",
            "organization must be an organisation's id or slug",
        ));
    }
    let acr_values = acr_values(one("acr_values")?);
    Ok(AuthRequest {
        acr_values,
        client,
        redirect_uri,
        scopes,
        state,
        nonce,
        code_challenge: code_challenge.to_owned(),
        prompt,
        max_age,
        login_hint,
        organization,
    })
}

/// The known values of an `acr_values` parameter (space-separated).
pub fn acr_values(param: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in param.unwrap_or("").split_ascii_whitespace() {
        if ACR_VALUES.contains(&v) && !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    out
}

impl AuthRequest {
    /// Whether the client asks for a sign-in with two factors
    /// (`acr_values=urn:lanyard:acr:mfa`).
    pub fn wants_mfa(&self) -> bool {
        self.acr_values.iter().any(|v| v == ACR_MFA)
    }

    /// Whether `prompt` contains this value.
    pub fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }

    /// The space-separated scope string.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

/// What a login to a b2b client acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// Myself, as a member of this organisation.
    Member(OrgRef),
    /// For the mandate's principal A, as its agent (a member of B, or the
    /// person it names).
    Mandate(MandateContext),
    /// Just me, for no organisation (a client with `personal_use`).
    Personal,
}

impl Context {
    /// The picker's form value: `org:<id>`, `mandate:<id>` or `personal`.
    pub fn value(&self) -> String {
        match self {
            Context::Member(o) => format!("org:{}", o.id),
            Context::Mandate(m) => format!("mandate:{}", m.mandate_id),
            Context::Personal => "personal".into(),
        }
    }

    /// The organisation the login is for: the member's, or the mandate's
    /// principal; none for "just me".
    pub fn org(&self) -> Option<&OrgRef> {
        match self {
            Context::Member(o) => Some(o),
            Context::Mandate(m) => Some(&m.principal),
            Context::Personal => None,
        }
    }

    /// The mandate, for a context that acts through one.
    pub fn mandate_id(&self) -> Option<&str> {
        match self {
            Context::Mandate(m) => Some(&m.mandate_id),
            _ => None,
        }
    }

    /// Whether the picker's answer `value` names this context. A bare
    /// organisation id (the picker's value before mandates) is `org:<id>`.
    fn answers(&self, value: &str) -> bool {
        match (self, value.split_once(':')) {
            (Context::Member(o), Some(("org", id))) => o.id == id,
            (Context::Member(o), None) => o.id == value,
            (Context::Mandate(m), Some(("mandate", id))) => m.mandate_id == id,
            (Context::Personal, None) => value == "personal",
            _ => false,
        }
    }

    /// Whether it acts for the organisation with this id or slug.
    fn acts_for(&self, key: &str) -> bool {
        self.org().is_some_and(|o| o.id == key || o.slug == key)
    }
}

/// What the organisation step of a login decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgStep {
    /// Not a b2b client: the login is for no organisation.
    NotNeeded,
    /// The login is for this context.
    Chosen(Context),
    /// The person picks one of these (the picker page): memberships by
    /// name, then mandates, then "just me".
    Pick {
        /// What the person can use the client as.
        contexts: Vec<Context>,
    },
}

/// Decides what a login of `identity_id` acts as. `picked` is the context
/// chosen on the picker page (a CSRF-checked form field, [`Context::value`]),
/// which settles it if it is one of the person's; otherwise the
/// `organization` parameter keeps those that act for the organisation it
/// names, one left is chosen, and `prompt=select_account` asks for the
/// picker whatever the number. A plain client runs no statement; a b2b one,
/// [`org_access::contexts`] and [`org_access::mandate_contexts`].
pub fn choose_org(
    db: &dyn SqlStore,
    identity_id: &str,
    req: &AuthRequest,
    picked: Option<&str>,
    now: i64,
) -> std::result::Result<OrgStep, Reject> {
    if !req.client.b2b {
        return Ok(OrgStep::NotNeeded);
    }
    let back = |error: &'static str, description: String| Reject::Redirect {
        redirect_uri: req.redirect_uri.clone(),
        state: req.state.clone(),
        error,
        description,
    };
    let client_id = &req.client.id;
    let mut all: Vec<Context> = org_access::contexts(db, identity_id, client_id)
        .map_err(Reject::Page)?
        .into_iter()
        .map(Context::Member)
        .collect();
    all.extend(
        org_access::mandate_contexts(db, identity_id, client_id, now)
            .map_err(Reject::Page)?
            .into_iter()
            .map(Context::Mandate),
    );
    if req.client.personal_use {
        all.push(Context::Personal);
    }
    if all.is_empty() {
        if req.prompts("none") {
            return Err(back(
                "access_denied",
                "The user has no organisation that uses this application.".into(),
            ));
        }
        return Err(Reject::Page(Error::Forbidden(format!(
            "You are not a member of any organisation that uses {}, or you have no role in it, \
             and no organisation has given you a mandate for it. \
             Ask your organisation's admin to give you access.",
            req.client.name
        ))));
    }
    if let Some(value) = picked {
        return all
            .into_iter()
            .find(|c| c.answers(value))
            .map(OrgStep::Chosen)
            .ok_or_else(|| {
                back(
                    "access_denied",
                    "The organisation chosen is not one the user can use this application in."
                        .into(),
                )
            });
    }
    let offered = match &req.organization {
        None => all,
        Some(key) => {
            let kept: Vec<Context> = all.into_iter().filter(|c| c.acts_for(key)).collect();
            if kept.is_empty() {
                return Err(back(
                    "access_denied",
                    format!(
                        "The user cannot use this application in the organisation `{key}` \
                         (not a member, not activated for it, no role, and no mandate)."
                    ),
                ));
            }
            kept
        }
    };
    match offered.as_slice() {
        [one] if !req.prompts("select_account") => Ok(OrgStep::Chosen(one.clone())),
        _ if req.prompts("none") => Err(back(
            "account_selection_required",
            "The user must choose an organisation.".into(),
        )),
        _ => Ok(OrgStep::Pick { contexts: offered }),
    }
}

/// Whether the person already consented to these scopes for this client.
pub fn has_consent(db: &dyn SqlStore, identity_id: &str, req: &AuthRequest) -> Result<bool> {
    if req.client.first_party {
        return Ok(true);
    }
    let granted = consents::scopes(db, identity_id, &req.client.id)?.unwrap_or_default();
    Ok(req.scopes.iter().all(|s| granted.contains(s)))
}

/// Records consent, adding these scopes to what was granted before.
pub fn grant_consent(
    db: &dyn SqlStore,
    identity_id: &str,
    req: &AuthRequest,
    now: i64,
) -> Result<()> {
    let mut all = consents::scopes(db, identity_id, &req.client.id)?.unwrap_or_default();
    for s in &req.scopes {
        if !all.contains(s) {
            all.push(s.clone());
        }
    }
    consents::upsert(db, identity_id, &req.client.id, &all, now)
}

/// The signed-in person as the code records them.
pub struct Subject<'a> {
    /// Identity id.
    pub id: &'a str,
    /// When they authenticated.
    pub auth_time: i64,
    /// How.
    pub amr: &'a [String],
    /// Session id.
    pub sid: &'a str,
    /// The upstream connection they signed in through, if any.
    pub idp: Option<&'a str>,
}

/// Issues a single-use code for the request and returns it; it records the
/// organisation of a b2b login (A, through a mandate) and the mandate.
pub fn issue_code(
    db: &dyn SqlStore,
    req: &AuthRequest,
    who: &Subject,
    context: Option<&Context>,
    now: i64,
) -> Result<String> {
    let code = crypto::random_token()?;
    let stored = auth_codes::Code {
        client_id: req.client.id.clone(),
        identity_id: who.id.to_owned(),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: who.auth_time,
        amr: who.amr.join(" "),
        sid: who.sid.to_owned(),
        expires_at: now + CODE_TTL,
        org_id: context.and_then(Context::org).map(|o| o.id.clone()),
        mandate_id: context.and_then(Context::mandate_id).map(str::to_owned),
        idp: who.idp.map(str::to_owned),
    };
    auth_codes::insert(db, &crypto::hash_secret(&code), &stored)?;
    Ok(code)
}

/// The redirect back to the client: `code` or `error`, with `state` and `iss` (RFC 9207).
pub fn redirect_url(
    redirect_uri: &str,
    issuer: &str,
    state: Option<&str>,
    pairs: &[(&str, &str)],
) -> Result<String> {
    let mut url = url::Url::parse(redirect_uri)
        .map_err(|_| Error::oauth(OAuthCode::InvalidRequest, "bad redirect_uri"))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::oidc::grants::{self, TokenRequest};
    use crate::testkit::{self, ISSUER, PKCE_CHALLENGE, PKCE_VERIFIER, World};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const CB: &str = "https://shop.example/cb";

    /// A third-party client `shop` (and what else `extra` says).
    fn client(w: &World, extra: serde_json::Value) -> Client {
        let mut meta = json!({
            "client_name": "Shop",
            "client_id": "shop",
            "redirect_uris": [CB, "http://127.0.0.1/cb"],
            "scope": "openid profile email offline_access",
        });
        for (k, v) in extra.as_object().unwrap() {
            meta[k] = v.clone();
        }
        testkit::client(&w.sql, meta, NOW).0
    }

    /// A valid request for `shop`, with `changes` replacing its parameters
    /// (an empty value removes one) and `extra` sent after them.
    fn ask(
        w: &World,
        changes: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Result<AuthRequest, Reject> {
        let mut pairs = vec![
            ("client_id", "shop"),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", "af0ifjsldkj"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in changes {
            match pairs.iter_mut().find(|(n, _)| n == k) {
                Some(pair) => pair.1 = v,
                None => pairs.push((k, v)),
            }
        }
        pairs.retain(|(_, v)| !v.is_empty());
        pairs.extend_from_slice(extra);
        parse(&w.sql, &testkit::params(&pairs))
    }

    /// The error sent back to the client, with the state it carries.
    fn sent_back<T: std::fmt::Debug>(r: Result<T, Reject>) -> (&'static str, Option<String>) {
        match r {
            Err(Reject::Redirect {
                redirect_uri,
                state,
                error,
                ..
            }) => {
                assert_eq!(redirect_uri, CB);
                (error, state)
            }
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    fn on_page<T>(r: Result<T, Reject>) -> bool {
        matches!(r, Err(Reject::Page(_)))
    }

    fn ada(w: &World) -> String {
        testkit::person(&w.sql, "ada@example.com", NOW).id
    }

    #[test]
    fn a_valid_request_is_read() {
        let w = World::new();
        client(&w, json!({}));
        let req = ask(
            &w,
            &[
                ("scope", "openid profile openid email"),
                ("prompt", "login consent select_account"),
                ("organization", "acme"),
                ("max_age", "0"),
                ("login_hint", "ada@example.com"),
                ("response_mode", "query"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(req.client.id, "shop");
        assert_eq!(req.redirect_uri, CB);
        assert_eq!(req.scope(), "openid profile email");
        assert_eq!(req.state.as_deref(), Some("af0ifjsldkj"));
        assert_eq!(req.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
        assert_eq!(req.code_challenge, PKCE_CHALLENGE);
        assert!(req.prompts("login") && req.prompts("consent") && !req.prompts("none"));
        assert!(req.prompts("select_account"));
        assert_eq!(req.organization.as_deref(), Some("acme"));
        assert_eq!(req.max_age, Some(0));
        assert_eq!(req.login_hint.as_deref(), Some("ada@example.com"));
        // state and nonce are optional; an overlong login hint is dropped.
        let long_hint = "a".repeat(255);
        let req = ask(
            &w,
            &[("state", ""), ("nonce", ""), ("login_hint", &long_hint)],
            &[],
        )
        .unwrap();
        assert_eq!((req.state, req.nonce, req.login_hint), (None, None, None));
        // A loopback redirect may use any port (RFC 8252 §7.3), and the
        // request keeps the one presented.
        let loopback = "http://127.0.0.1:53124/cb";
        assert_eq!(
            ask(&w, &[("redirect_uri", loopback)], &[])
                .unwrap()
                .redirect_uri,
            loopback
        );
    }

    #[test]
    fn until_the_client_and_redirect_uri_are_trusted_errors_stay_on_a_page() {
        let w = World::new();
        client(&w, json!({}));
        // Each also carries an error that would otherwise go back to the client.
        let bad = ("response_type", "token");
        for (why, changes, extra) in [
            ("no client_id", vec![("client_id", "")], vec![]),
            ("unknown client", vec![("client_id", "nobody")], vec![]),
            ("repeated client_id", vec![], vec![("client_id", "shop")]),
            ("no redirect_uri", vec![("redirect_uri", "")], vec![]),
            ("repeated redirect_uri", vec![], vec![("redirect_uri", CB)]),
            (
                "unregistered redirect_uri",
                vec![("redirect_uri", "https://evil.example/cb")],
                vec![],
            ),
            (
                "a trailing slash",
                vec![("redirect_uri", "https://shop.example/cb/")],
                vec![],
            ),
            (
                "an added query",
                vec![("redirect_uri", "https://shop.example/cb?x=1")],
                vec![],
            ),
            (
                "another port",
                vec![("redirect_uri", "https://shop.example:8443/cb")],
                vec![],
            ),
            (
                "loopback by name",
                vec![("redirect_uri", "http://localhost:8080/cb")],
                vec![],
            ),
            // A repeated state cannot be echoed, so the page says so.
            ("repeated state", vec![], vec![("state", "other")]),
        ] {
            let mut changes = changes;
            changes.push(bad);
            assert!(on_page(ask(&w, &changes, &extra)), "{why}");
        }
        assert!(
            !on_page(ask(&w, &[bad], &[])),
            "a trusted client gets its error"
        );
    }

    #[test]
    fn once_trusted_errors_go_back_to_the_client_with_its_state() {
        let w = World::new();
        client(&w, json!({}));
        let long = "x".repeat(1025);
        let long_nonce = "x".repeat(513);
        for (expected, changes, extra) in [
            ("invalid_request", vec![("response_type", "")], vec![]),
            (
                "unsupported_response_type",
                vec![("response_type", "token")],
                vec![],
            ),
            (
                "unsupported_response_type",
                vec![("response_type", "code id_token")],
                vec![],
            ),
            (
                "invalid_request",
                vec![("response_mode", "fragment")],
                vec![],
            ),
            ("request_not_supported", vec![("request", "eyJ")], vec![]),
            (
                "request_uri_not_supported",
                vec![("request_uri", "urn:x")],
                vec![],
            ),
            ("invalid_scope", vec![("scope", "")], vec![]),
            ("invalid_scope", vec![("scope", "openid admin")], vec![]),
            // select_account is understood (organisations), create is not.
            ("invalid_request", vec![("prompt", "create")], vec![]),
            (
                "invalid_request",
                vec![("prompt", "none select_account")],
                vec![],
            ),
            (
                "invalid_request",
                vec![("organization", "acme")],
                vec![("organization", "acme")],
            ),
            ("invalid_request", vec![("prompt", "none login")], vec![]),
            ("invalid_request", vec![("max_age", "-1")], vec![]),
            ("invalid_request", vec![("max_age", "an hour")], vec![]),
            (
                "invalid_request",
                vec![("nonce", long_nonce.as_str())],
                vec![],
            ),
            ("invalid_request", vec![], vec![("scope", "openid")]),
            ("invalid_request", vec![], vec![("nonce", "n2")]),
            ("invalid_request", vec![], vec![("response_type", "code")]),
            (
                "invalid_request",
                vec![],
                vec![("prompt", "login"), ("prompt", "consent")],
            ),
        ] {
            let why = format!("{changes:?} {extra:?}");
            let (error, state) = sent_back(ask(&w, &changes, &extra));
            assert_eq!(error, expected, "{why}");
            assert_eq!(state.as_deref(), Some("af0ifjsldkj"), "{why}");
        }
        // An overlong state is refused, and not echoed back as sent.
        let (error, _) = sent_back(ask(&w, &[("state", &long)], &[]));
        assert_eq!(error, "invalid_request");
        // A client registered without the authorization code grant.
        let w = World::new();
        client(&w, json!({ "grant_types": ["client_credentials"] }));
        assert_eq!(sent_back(ask(&w, &[], &[])).0, "unauthorized_client");
    }

    #[test]
    fn pkce_s256_is_required() {
        let w = World::new();
        client(&w, json!({}));
        let public = client(
            &w,
            json!({ "client_id": "spa", "token_endpoint_auth_method": "none" }),
        );
        assert!(!public.confidential);
        for id in ["shop", "spa"] {
            for changes in [
                vec![("code_challenge", "")],
                vec![("code_challenge_method", "")],
                vec![("code_challenge_method", "plain")],
                vec![("code_challenge_method", "s256")],
                vec![("code_challenge", &PKCE_CHALLENGE[..42])],
                vec![(
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
                )],
            ] {
                let mut changes = changes;
                changes.push(("client_id", id));
                let (error, _) = sent_back(ask(&w, &changes, &[]));
                assert_eq!(error, "invalid_request", "{id} {changes:?}");
            }
            let repeated = [("code_challenge", PKCE_CHALLENGE)];
            let (error, _) = sent_back(ask(&w, &[("client_id", id)], &repeated));
            assert_eq!(error, "invalid_request", "{id} repeated");
            assert!(ask(&w, &[("client_id", id)], &[]).is_ok());
        }
    }

    #[test]
    fn consent_is_remembered_per_client_and_adds_up() {
        let w = World::new();
        client(&w, json!({}));
        client(&w, json!({ "client_id": "blog" }));
        let ada = ada(&w);
        let profile = ask(&w, &[], &[]).unwrap();
        let email = ask(&w, &[("scope", "openid email")], &[]).unwrap();
        let both = ask(&w, &[("scope", "email profile openid")], &[]).unwrap();
        let blog = ask(&w, &[("client_id", "blog")], &[]).unwrap();
        assert!(!has_consent(&w.sql, &ada, &profile).unwrap());
        grant_consent(&w.sql, &ada, &profile, NOW).unwrap();
        assert!(has_consent(&w.sql, &ada, &profile).unwrap());
        assert!(
            !has_consent(&w.sql, &ada, &email).unwrap(),
            "email was not granted"
        );
        assert!(!has_consent(&w.sql, &ada, &blog).unwrap(), "another client");
        let bob = testkit::person(&w.sql, "bob@example.com", NOW).id;
        assert!(
            !has_consent(&w.sql, &bob, &profile).unwrap(),
            "another person"
        );
        grant_consent(&w.sql, &ada, &email, NOW + 1).unwrap();
        assert!(
            has_consent(&w.sql, &ada, &both).unwrap(),
            "both grants count"
        );
        assert!(has_consent(&w.sql, &ada, &profile).unwrap());
    }

    #[test]
    fn first_party_clients_need_no_consent() {
        let w = World::new();
        client(&w, json!({ "first_party": true }));
        let req = ask(&w, &[("scope", "openid email offline_access")], &[]).unwrap();
        assert!(has_consent(&w.sql, &ada(&w), &req).unwrap());
    }

    #[test]
    fn an_issued_code_is_exchanged_once_for_the_request_it_answers() {
        let w = World::new();
        let shop = client(&w, json!({}));
        let ada = ada(&w);
        let loopback = "http://127.0.0.1:53124/cb";
        let req = ask(
            &w,
            &[("scope", "openid email"), ("redirect_uri", loopback)],
            &[],
        )
        .unwrap();
        let amr = ["pwd".to_owned(), "mfa".to_owned()];
        let who = Subject {
            id: &ada,
            auth_time: NOW - 30,
            amr: &amr,
            sid: "sid-7",
            idp: None,
        };
        let code = issue_code(&w.sql, &req, &who, None, NOW).unwrap();
        let config = Config::load(&w.vars).unwrap();
        let exchange = |redirect_uri: &str| {
            let token = TokenRequest::AuthorizationCode {
                code: code.clone(),
                redirect_uri: redirect_uri.into(),
                code_verifier: PKCE_VERIFIER.into(),
            };
            grants::exchange(&w.env(NOW + 5), &config, &shop, &token)
        };
        let res = exchange(loopback).unwrap();
        assert_eq!(res.scope, "openid email");
        let c = crate::oidc::tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert_eq!(c["sub"], ada.as_str());
        assert_eq!(c["aud"], "shop");
        assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(c["auth_time"], NOW - 30);
        assert_eq!(c["amr"], json!(["pwd", "mfa"]));
        assert_eq!(c["acr"], "urn:lanyard:acr:mfa");
        assert_eq!(c["sid"], "sid-7");
        assert!(exchange(loopback).is_err(), "a code is single-use");

        // A sign-in through an upstream provider says so in acr too.
        let fed = ["fed".to_owned()];
        let federated = Subject {
            amr: &fed,
            idp: Some("google"),
            ..who
        };
        let code = issue_code(&w.sql, &req, &federated, None, NOW).unwrap();
        let token = TokenRequest::AuthorizationCode {
            code,
            redirect_uri: loopback.into(),
            code_verifier: PKCE_VERIFIER.into(),
        };
        let res = grants::exchange(&w.env(NOW + 5), &config, &shop, &token).unwrap();
        let c = crate::oidc::tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert_eq!(
            (c["acr"].as_str(), c["idp"].as_str()),
            (Some("urn:lanyard:acr:fed"), Some("google"))
        );

        // The code is bound to the exact redirect URI presented.
        let code = issue_code(&w.sql, &req, &who, None, NOW).unwrap();
        let token = TokenRequest::AuthorizationCode {
            code,
            redirect_uri: "http://127.0.0.1:9999/cb".into(),
            code_verifier: PKCE_VERIFIER.into(),
        };
        assert!(grants::exchange(&w.env(NOW + 5), &config, &shop, &token).is_err());
    }

    /// `shop` as a b2b client with the role `buyer`, and `ada` a buyer in
    /// the organisations named by these slugs (whose names are the slugs
    /// capitalised).
    fn service(w: &World, slugs: &[&str]) -> String {
        use crate::store::org_access::seed;
        client(w, json!({ "b2b": true, "roles": [{"name": "buyer"}] }));
        let ada = ada(w);
        for slug in slugs {
            let name = format!("{}{}", slug[..1].to_uppercase(), &slug[1..]);
            let org = seed::org(&w.sql, slug, &name);
            seed::member(&w.sql, &org, &ada);
            seed::activate(&w.sql, &org, "shop");
            seed::role(&w.sql, &org, &ada, "shop", "", "buyer");
        }
        ada
    }

    /// The organisation step for `ada` with these request parameters and
    /// picked organisation.
    fn step(
        w: &World,
        who: &str,
        changes: &[(&str, &str)],
        picked: Option<&str>,
    ) -> Result<OrgStep, Reject> {
        let req = ask(w, changes, &[]).unwrap();
        choose_org(&w.sql, who, &req, picked, NOW)
    }

    /// A context as the tests name it: a membership by its slug, a mandate
    /// by its id, or `personal`.
    fn label(c: &Context) -> String {
        match c {
            Context::Member(o) => o.slug.clone(),
            Context::Mandate(m) => m.mandate_id.clone(),
            Context::Personal => "personal".into(),
        }
    }

    fn chosen(r: Result<OrgStep, Reject>) -> String {
        match r {
            Ok(OrgStep::Chosen(c)) => label(&c),
            other => panic!("expected a choice, got {other:?}"),
        }
    }

    fn picker(r: Result<OrgStep, Reject>) -> Vec<String> {
        match r {
            Ok(OrgStep::Pick { contexts }) => contexts.iter().map(label).collect(),
            other => panic!("expected the picker, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_client_needs_no_organisation() {
        let w = World::new();
        client(&w, json!({}));
        let ada = ada(&w);
        for changes in [
            vec![],
            vec![("organization", "acme"), ("prompt", "select_account")],
        ] {
            assert_eq!(step(&w, &ada, &changes, None).unwrap(), OrgStep::NotNeeded);
        }
    }

    #[test]
    fn one_organisation_is_chosen_silently() {
        let w = World::new();
        let ada = service(&w, &["acme"]);
        assert_eq!(chosen(step(&w, &ada, &[], None)), "acme");
        assert_eq!(chosen(step(&w, &ada, &[("prompt", "none")], None)), "acme");
        assert_eq!(
            chosen(step(&w, &ada, &[("organization", "acme")], None)),
            "acme"
        );
        assert_eq!(
            chosen(step(&w, &ada, &[("organization", "org_acme")], None)),
            "acme",
            "by id"
        );
        // select_account shows the picker even for one.
        assert_eq!(
            picker(step(&w, &ada, &[("prompt", "select_account")], None)),
            ["acme"]
        );
        let (error, state) = sent_back(step(&w, &ada, &[("organization", "globex")], None));
        assert_eq!(
            (error, state.as_deref()),
            ("access_denied", Some("af0ifjsldkj"))
        );
    }

    #[test]
    fn several_organisations_need_a_choice() {
        let w = World::new();
        let ada = service(&w, &["globex", "acme"]);
        assert_eq!(picker(step(&w, &ada, &[], None)), ["acme", "globex"]);
        assert_eq!(
            sent_back(step(&w, &ada, &[("prompt", "none")], None)).0,
            "account_selection_required"
        );
        // `organization` picks one, or keeps only it on the picker.
        assert_eq!(
            chosen(step(&w, &ada, &[("organization", "globex")], None)),
            "globex"
        );
        assert_eq!(
            chosen(step(
                &w,
                &ada,
                &[("organization", "globex"), ("prompt", "none")],
                None
            )),
            "globex"
        );
        let offered = picker(step(
            &w,
            &ada,
            &[("organization", "globex"), ("prompt", "select_account")],
            None,
        ));
        assert_eq!(offered, ["globex"]);
        assert_eq!(
            sent_back(step(&w, &ada, &[("organization", "initech")], None)).0,
            "access_denied"
        );
        // The picker's answer settles it, whatever the request said; a bare
        // organisation id (the picker's value before mandates) still works.
        for changes in [
            vec![],
            vec![("prompt", "select_account")],
            vec![("organization", "globex")],
        ] {
            for value in ["org:org_acme", "org_acme"] {
                assert_eq!(
                    chosen(step(&w, &ada, &changes, Some(value))),
                    "acme",
                    "{changes:?} {value}"
                );
            }
        }
        for forged in [
            "org:org_initech",
            "org_initech",
            "org:acme",
            "mandate:org_acme",
            "mandate:mnd_1",
            "personal",
            "",
        ] {
            assert_eq!(
                sent_back(step(&w, &ada, &[], Some(forged))).0,
                "access_denied",
                "{forged}"
            );
        }
        // An organisation that is not one of hers cannot be named or picked.
        let bob = testkit::person(&w.sql, "bob@example.com", NOW).id;
        crate::store::org_access::seed::member(&w.sql, "org_acme", &bob);
        assert!(
            on_page(step(&w, &bob, &[], Some("org_acme"))),
            "a member without a role"
        );
    }

    /// On top of [`service`]'s Acme: Globex (with `shop` active) gives
    /// Ledger, where `ada` is a designated member, `buyer` through `mnd_g`;
    /// Acme names `ada` herself in `mnd_a`.
    fn mandates(w: &World, ada: &str) {
        use crate::store::org_access::seed::{self, Agent, Mandate};
        let globex = seed::org(&w.sql, "globex", "Globex");
        seed::activate(&w.sql, &globex, "shop");
        let ledger = seed::org(&w.sql, "ledger", "Ledger");
        seed::member(&w.sql, &ledger, ada);
        let m = Mandate {
            id: "mnd_g",
            principal: &globex,
            agent: Agent::Org(&ledger),
            client_id: "shop",
            project_id: "",
            roles: &["buyer"],
            not_before: NOW - 10,
            expires_at: NOW + 3600,
            all_members: false,
        };
        seed::mandate(&w.sql, &m);
        seed::delegate(&w.sql, "mnd_g", ada);
        seed::mandate(
            &w.sql,
            &Mandate {
                id: "mnd_a",
                principal: "org_acme",
                agent: Agent::Person(ada),
                ..m
            },
        );
    }

    #[test]
    fn mandates_are_contexts_and_organization_keeps_those_for_it() {
        let w = World::new();
        let ada = service(&w, &["acme"]);
        mandates(&w, &ada);
        // Memberships, then mandates by their principal's name.
        assert_eq!(
            picker(step(&w, &ada, &[], None)),
            ["acme", "mnd_a", "mnd_g"]
        );
        assert_eq!(
            sent_back(step(&w, &ada, &[("prompt", "none")], None)).0,
            "account_selection_required"
        );
        // Globex only through its mandate: chosen silently.
        for key in ["globex", "org_globex"] {
            assert_eq!(
                chosen(step(&w, &ada, &[("organization", key)], None)),
                "mnd_g"
            );
        }
        assert_eq!(
            picker(step(
                &w,
                &ada,
                &[("organization", "globex"), ("prompt", "select_account")],
                None
            )),
            ["mnd_g"]
        );
        // Acme as a member and through her own mandate: she picks.
        assert_eq!(
            picker(step(&w, &ada, &[("organization", "acme")], None)),
            ["acme", "mnd_a"]
        );
        assert_eq!(
            sent_back(step(&w, &ada, &[("organization", "ledger")], None)).0,
            "access_denied",
            "the agent organisation is not acted for"
        );
        // The picker's answers.
        assert_eq!(chosen(step(&w, &ada, &[], Some("mandate:mnd_g"))), "mnd_g");
        assert_eq!(chosen(step(&w, &ada, &[], Some("mandate:mnd_a"))), "mnd_a");
        assert_eq!(chosen(step(&w, &ada, &[], Some("org:org_acme"))), "acme");
        for forged in ["mandate:mnd_nope", "org:org_globex", "org_globex", "mnd_g"] {
            assert_eq!(
                sent_back(step(&w, &ada, &[], Some(forged))).0,
                "access_denied",
                "{forged}"
            );
        }
        // What a chosen mandate says.
        let Ok(OrgStep::Chosen(Context::Mandate(m))) =
            step(&w, &ada, &[("organization", "globex")], None)
        else {
            panic!("the mandate")
        };
        assert_eq!(
            (
                m.principal.slug.as_str(),
                m.agent.map(|b| b.slug),
                m.expires_at
            ),
            ("globex", Some("ledger".to_owned()), NOW + 3600)
        );
        // A mandate alone is enough for a person with no membership.
        let bob = testkit::person(&w.sql, "bob@example.com", NOW).id;
        crate::store::org_access::seed::member(&w.sql, "org_ledger", &bob);
        crate::store::org_access::seed::delegate(&w.sql, "mnd_g", &bob);
        assert_eq!(chosen(step(&w, &bob, &[], None)), "mnd_g");
    }

    #[test]
    fn just_me_is_offered_only_with_personal_use() {
        use crate::store::org_access::seed;
        let w = World::new();
        let ada = service(&w, &["acme"]);
        let bob = testkit::person(&w.sql, "bob@example.com", NOW).id;
        assert!(
            on_page(step(&w, &bob, &[], None)),
            "no context, no personal use"
        );
        assert_eq!(
            sent_back(step(&w, &ada, &[], Some("personal"))).0,
            "access_denied"
        );
        seed::set(&w.sql, "clients", "personal_use", "1", &[("id", "shop")]);
        // Just me, as the only context: silently; on the picker if asked.
        assert_eq!(chosen(step(&w, &bob, &[], None)), "personal");
        assert_eq!(
            chosen(step(&w, &bob, &[("prompt", "none")], None)),
            "personal"
        );
        assert_eq!(
            picker(step(&w, &bob, &[("prompt", "select_account")], None)),
            ["personal"]
        );
        assert_eq!(
            sent_back(step(&w, &bob, &[("organization", "acme")], None)).0,
            "access_denied",
            "just me acts for no organisation"
        );
        // Next to an organisation: the last choice.
        assert_eq!(picker(step(&w, &ada, &[], None)), ["acme", "personal"]);
        assert_eq!(chosen(step(&w, &ada, &[], Some("personal"))), "personal");
        assert_eq!(
            chosen(step(&w, &ada, &[("organization", "acme")], None)),
            "acme"
        );
        assert_eq!(Context::Personal.value(), "personal");
        assert_eq!(Context::Personal.org(), None);
    }

    #[test]
    fn the_code_records_the_mandate_and_its_principal() {
        let w = World::new();
        let ada = service(&w, &[]);
        mandates(&w, &ada);
        let req = ask(&w, &[("organization", "globex")], &[]).unwrap();
        let Ok(OrgStep::Chosen(context)) = choose_org(&w.sql, &ada, &req, None, NOW) else {
            panic!("one context")
        };
        assert_eq!(context.value(), "mandate:mnd_g");
        let amr = ["pwd".to_owned()];
        let who = Subject {
            id: &ada,
            auth_time: NOW,
            amr: &amr,
            sid: "sid-1",
            idp: None,
        };
        let code = issue_code(&w.sql, &req, &who, Some(&context), NOW).unwrap();
        let claimed =
            auth_codes::claim(&w.sql, &crypto::hash_secret(&code), NOW, "fam", "jti").unwrap();
        let claimed = claimed.unwrap();
        assert_eq!(
            (claimed.org_id.as_deref(), claimed.mandate_id.as_deref()),
            (Some("org_globex"), Some("mnd_g"))
        );
        // Just me records neither.
        let code = issue_code(&w.sql, &req, &who, Some(&Context::Personal), NOW).unwrap();
        let claimed = auth_codes::claim(&w.sql, &crypto::hash_secret(&code), NOW, "f2", "j2")
            .unwrap()
            .unwrap();
        assert_eq!((claimed.org_id, claimed.mandate_id), (None, None));
    }

    #[test]
    fn no_organisation_is_a_page_that_says_why() {
        let w = World::new();
        let ada = service(&w, &[]);
        match step(&w, &ada, &[], None) {
            Err(Reject::Page(Error::Forbidden(why))) => {
                assert!(why.contains("Shop") && why.contains("admin"), "{why}");
            }
            other => panic!("expected the page, got {other:?}"),
        }
        // prompt=none shows no page: the client hears it.
        assert_eq!(
            sent_back(step(&w, &ada, &[("prompt", "none")], None)).0,
            "access_denied"
        );
    }

    #[test]
    fn the_code_records_the_organisation_and_its_exchange_checks_it() {
        use crate::store::org_access::seed;
        let w = World::new();
        let ada = service(&w, &["acme"]);
        let shop = clients::get(&w.sql, "shop").unwrap().unwrap();
        let req = ask(&w, &[], &[]).unwrap();
        let OrgStep::Chosen(org) = choose_org(&w.sql, &ada, &req, None, NOW).unwrap() else {
            panic!("one organisation")
        };
        let amr = ["pwd".to_owned()];
        let who = Subject {
            id: &ada,
            auth_time: NOW,
            amr: &amr,
            sid: "sid-1",
            idp: None,
        };
        let config = Config::load(&w.vars).unwrap();
        let exchange = |code: String| {
            let token = TokenRequest::AuthorizationCode {
                code,
                redirect_uri: CB.into(),
                code_verifier: PKCE_VERIFIER.into(),
            };
            grants::exchange(&w.env(NOW + 5), &config, &shop, &token)
        };
        let code = issue_code(&w.sql, &req, &who, Some(&org), NOW).unwrap();
        let res = exchange(code).unwrap();
        let c = crate::oidc::tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert_eq!(c["org_slug"], "acme");
        // A b2b code without an organisation is refused.
        let code = issue_code(&w.sql, &req, &who, None, NOW).unwrap();
        assert!(matches!(
            exchange(code),
            Err(Error::OAuth {
                code: OAuthCode::InvalidGrant,
                ..
            })
        ));
        // Suspended in the minute between /authorize and the exchange.
        let code = issue_code(&w.sql, &req, &who, Some(&org), NOW).unwrap();
        seed::set(
            &w.sql,
            "memberships",
            "status",
            "suspended",
            &[("org_id", "org_acme")],
        );
        match exchange(code) {
            Err(Error::OAuth {
                code: OAuthCode::InvalidGrant,
                description,
            }) => {
                assert!(description.contains("organisation"), "{description}");
            }
            other => panic!("expected invalid_grant, got {other:?}"),
        }
    }

    #[test]
    fn redirect_url_appends_the_pairs_state_and_issuer() {
        let url = redirect_url(
            "https://shop.example/cb?tab=1",
            ISSUER,
            Some("a b&c=d"),
            &[("code", "xyz")],
        )
        .unwrap();
        let url = url::Url::parse(&url).unwrap();
        assert_eq!((url.host_str(), url.path()), (Some("shop.example"), "/cb"));
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let expected = [
            ("tab", "1"),
            ("code", "xyz"),
            ("state", "a b&c=d"),
            ("iss", ISSUER),
        ];
        assert_eq!(
            pairs,
            expected.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
        let url = redirect_url(CB, ISSUER, None, &[("error", "access_denied")]).unwrap();
        let url = url::Url::parse(&url).unwrap();
        assert!(!url.query_pairs().any(|(k, _)| k == "state"));
        assert!(url.query_pairs().any(|(k, v)| k == "iss" && v == ISSUER));
        assert!(redirect_url("not a url", ISSUER, None, &[]).is_err());
    }
}
