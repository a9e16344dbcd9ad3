//! The token endpoint's grants: `authorization_code` (with PKCE),
//! `refresh_token` (rotation with reuse detection) and `client_credentials`.
//!
//! Every single-use step is one conditional SQL statement: the code is
//! claimed by `UPDATE … WHERE used_at IS NULL RETURNING`, and a refresh
//! token rotates by one `UPDATE` of its family row, so of two concurrent
//! requests with the same code or token exactly one succeeds.

use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::Env;
use crate::config::Config;
use crate::crypto;
use crate::error::{Error, OAuthCode, Result};
use crate::identity::Identity;
use crate::oidc::clients::Client;
use crate::oidc::exchange;
use crate::oidc::keys::Alg;
use crate::oidc::tokens::{self, AccessClaims, Actor, MandateClaims, OrgClaims, Signer};
use crate::store::org_access::{self, MandateGrant, OrgGrant};
use crate::store::{SqlStore, auth_codes, refresh_families, session_clients};
use crate::web::Params;

/// ID tokens live as long as the access token, at most an hour.
const ID_TOKEN_TTL: i64 = 3600;

/// The token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access token (a JWT, RFC 9068).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
    /// The ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// A refresh token, when `offline_access` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The type of the token issued by a token exchange (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

fn grant_error(msg: &str) -> Error {
    Error::oauth(OAuthCode::InvalidGrant, msg)
}

/// The person behind a code or family no longer exists.
fn gone() -> Error {
    grant_error("The account no longer exists.")
}

/// A token request, parsed at the edge and tagged by `grant_type` (RFC 6749
/// §4.1.3, §6 and §4.4). Client authentication is read separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// `authorization_code`: a code, the redirect URI it was issued for, and
    /// the PKCE verifier.
    AuthorizationCode {
        /// The code.
        code: String,
        /// The redirect URI of the authorization request.
        redirect_uri: String,
        /// The PKCE `code_verifier`.
        code_verifier: String,
    },
    /// `refresh_token`, optionally narrowing the scope.
    RefreshToken {
        /// The refresh token.
        refresh_token: String,
        /// A narrower scope, space-separated.
        scope: Option<String>,
    },
    /// `client_credentials`, optionally asking for some of the client's scopes.
    ClientCredentials {
        /// The scopes asked for, space-separated.
        scope: Option<String>,
    },
    /// RFC 8693 token exchange (`urn:ietf:params:oauth:grant-type:token-exchange`).
    TokenExchange(exchange::ExchangeRequest),
}

impl TokenRequest {
    /// Reads the form of a token request. A missing or repeated parameter is
    /// `invalid_request`, an unknown grant `unsupported_grant_type`.
    pub fn parse(form: &Params) -> Result<TokenRequest> {
        let one = |name: &str| -> Result<Option<String>> {
            form.one(name).map(|v| v.map(str::to_owned)).map_err(|_| {
                Error::oauth(OAuthCode::InvalidRequest, format!("`{name}` is repeated"))
            })
        };
        let required = |name: &str| -> Result<String> {
            one(name)?.ok_or_else(|| {
                Error::oauth(OAuthCode::InvalidRequest, format!("`{name}` is missing"))
            })
        };
        match required("grant_type")?.as_str() {
            "authorization_code" => Ok(TokenRequest::AuthorizationCode {
                code: required("code")?,
                redirect_uri: required("redirect_uri")?,
                code_verifier: required("code_verifier")?,
            }),
            "refresh_token" => Ok(TokenRequest::RefreshToken {
                refresh_token: required("refresh_token")?,
                scope: one("scope")?,
            }),
            "client_credentials" => Ok(TokenRequest::ClientCredentials {
                scope: one("scope")?,
            }),
            exchange::GRANT_TYPE => Ok(TokenRequest::TokenExchange(
                exchange::ExchangeRequest::parse(form)?,
            )),
            _ => Err(Error::oauth(
                OAuthCode::UnsupportedGrantType,
                "grant_type is not supported",
            )),
        }
    }
}

/// Runs a token request for an authenticated client.
pub fn exchange(
    env: &Env,
    config: &Config,
    client: &Client,
    req: &TokenRequest,
) -> Result<TokenResponse> {
    match req {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => authorization_code(env, config, client, code, redirect_uri, code_verifier),
        TokenRequest::RefreshToken {
            refresh_token: token,
            scope,
        } => refresh_token(env, config, client, token, scope.as_deref()),
        TokenRequest::ClientCredentials { scope } => {
            client_credentials(env, config, client, scope.as_deref())
        }
        TokenRequest::TokenExchange(req) => exchange::grant(env, config, client, req),
    }
}

/// What a login leaves on a code or refresh family, with its person as
/// read by the statement that claimed the code or rotated the family.
struct Grant {
    who: Identity,
    scope: String,
    nonce: Option<String>,
    auth_time: i64,
    amr: String,
    sid: String,
    /// The upstream connection of the login, if any.
    idp: Option<String>,
    /// What a b2b login acts as, as checked just now.
    acting: OrgCheck,
}

/// The organisation behind a code or refresh family, checked now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgCheck {
    /// A login for a plain client, or "just me" at a b2b client with
    /// `personal_use`: no organisation.
    Plain,
    /// What the organisation grants the person, a member, now.
    Granted(OrgGrant),
    /// What the mandate grants the person, acting for its principal, now.
    Mandated(MandateGrant),
    /// The organisation, the membership, the activation or every role in
    /// the client's catalogue is gone; or the mandate no longer works; or a
    /// b2b client's login has no organisation (the client became a service
    /// after it, or stopped serving people on their own).
    Ended,
}

impl OrgCheck {
    /// The claims of what the login acts as: the organisation (A, through
    /// a mandate), the actor and the mandate.
    pub fn claims(&self) -> (Option<OrgClaims>, Option<Actor>, Option<MandateClaims>) {
        match self {
            OrgCheck::Granted(g) => (Some(OrgClaims::from(g.clone())), None, None),
            OrgCheck::Mandated(m) => {
                let (org, act, mandate) = tokens::mandate_claims(m.clone());
                (Some(org), Some(act), Some(mandate))
            }
            OrgCheck::Plain | OrgCheck::Ended => (None, None, None),
        }
    }

    /// The organisation and mandate ids to record on a refresh family.
    fn ids(&self) -> (Option<String>, Option<String>) {
        match self {
            OrgCheck::Granted(g) => (Some(g.org.id.clone()), None),
            OrgCheck::Mandated(m) => (Some(m.grant.org.id.clone()), Some(m.mandate_id.clone())),
            OrgCheck::Plain | OrgCheck::Ended => (None, None),
        }
    }

    /// When the mandate behind it ends, if there is one.
    pub fn until(&self) -> Option<i64> {
        match self {
            OrgCheck::Mandated(m) => Some(m.expires_at),
            _ => None,
        }
    }
}

/// Checks the organisation a code or family was issued for, and the
/// mandate if it was issued through one, at `now`: one statement when there
/// is either ([`org_access::mandate_grant`] for a mandate, instead of
/// [`org_access::grant`]), none for a plain client or "just me". The code
/// exchange and the refresh read the same grants in the statement that
/// claims the code or rotates the family, and judge them with
/// [`judge_org`].
pub fn check_org(
    sql: &dyn SqlStore,
    client: &Client,
    identity_id: &str,
    org_id: Option<&str>,
    mandate_id: Option<&str>,
    now: i64,
) -> Result<OrgCheck> {
    let (granted, mandated) = match (org_id, mandate_id) {
        (Some(_), Some(mandate)) => (
            None,
            org_access::mandate_grant(sql, mandate, identity_id, &client.id, now)?,
        ),
        (Some(org), None) => (org_access::grant(sql, org, identity_id, &client.id)?, None),
        (None, _) => (None, None),
    };
    Ok(judge_org(client, org_id, mandate_id, granted, mandated))
}

/// What a login for `org_id` (through `mandate_id`, if any) acts as, given
/// what the organisation grants now (`granted`, read only for an
/// organisation without a mandate) and what the mandate grants now
/// (`mandated`, read only for a mandate).
fn judge_org(
    client: &Client,
    org_id: Option<&str>,
    mandate_id: Option<&str>,
    granted: Option<OrgGrant>,
    mandated: Option<MandateGrant>,
) -> OrgCheck {
    match (org_id, mandate_id) {
        (Some(org), Some(_)) => match mandated {
            Some(m) if m.grant.org.id == org => OrgCheck::Mandated(m),
            _ => OrgCheck::Ended,
        },
        (None, Some(_)) => OrgCheck::Ended,
        (None, None) if client.b2b && !client.personal_use => OrgCheck::Ended,
        (None, None) => OrgCheck::Plain,
        (Some(_), None) => granted.map_or(OrgCheck::Ended, OrgCheck::Granted),
    }
}

/// Whether a PKCE verifier (RFC 7636 §4.1) matches its S256 challenge, in
/// constant time.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = crypto::b64url(&crypto::sha256(verifier.as_bytes()));
    well_formed && crypto::ct_eq(computed.as_bytes(), challenge.as_bytes())
}

/// `grant_type=authorization_code`.
fn authorization_code(
    env: &Env,
    config: &Config,
    client: &Client,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<TokenResponse> {
    if !client.allows_grant("authorization_code") {
        return Err(Error::oauth(
            OAuthCode::UnauthorizedClient,
            "this client may not use authorization_code",
        ));
    }
    let code_hash = crypto::hash_secret(code);
    // What this exchange will issue is fixed before the claim, and recorded by
    // it, so that a replay can find and revoke it.
    let family_id = crypto::random_id()?;
    let access_jti = crypto::random_id()?;
    // The claim also reads the person and, for a b2b login, what the
    // organisation or mandate grants now: the exchange reads nothing else.
    let Some(auth_codes::Claimed {
        code: claimed,
        identity,
        org_grant,
        mandate_grant,
    }) = auth_codes::claim_for_exchange(env.sql, &code_hash, env.now, &family_id, &access_jti)?
    else {
        revoke_replayed_code(env, &code_hash)?;
        return Err(grant_error("The code is invalid or has been used."));
    };
    if claimed.client_id != client.id {
        return Err(grant_error("The code was issued to another client."));
    }
    if claimed.expires_at <= env.now {
        return Err(grant_error("The code has expired."));
    }
    if claimed.redirect_uri != redirect_uri {
        return Err(grant_error(
            "redirect_uri does not match the authorization request.",
        ));
    }
    if !pkce_matches(verifier, &claimed.code_challenge) {
        return Err(grant_error(
            "The PKCE code_verifier does not match the code_challenge.",
        ));
    }
    // The organisation or mandate may have changed in the minute since
    // /authorize.
    let acting = judge_org(
        client,
        claimed.org_id.as_deref(),
        claimed.mandate_id.as_deref(),
        org_grant,
        mandate_grant,
    );
    if acting == OrgCheck::Ended {
        return Err(grant_error(
            "The organisation access behind this code has ended.",
        ));
    }
    let grant = Grant {
        who: identity.ok_or_else(gone)?,
        scope: claimed.scope,
        nonce: claimed.nonce,
        auth_time: claimed.auth_time,
        amr: claimed.amr,
        sid: claimed.sid,
        idp: claimed.idp,
        acting,
    };
    // The client got tokens in this session: its end will tell the client
    // (single sign-out).
    if !grant.sid.is_empty() {
        session_clients::record(env.sql, &grant.sid, &client.id, &grant.who.id, env.now)?;
    }
    issue(env, config, client, &grant, &access_jti, Some(&family_id))
}

/// A code presented again: revoke what its first use issued (RFC 6749 §4.1.2).
fn revoke_replayed_code(env: &Env, code_hash: &str) -> Result<()> {
    let Some(issued) = auth_codes::issued_by_spent(env.sql, code_hash)? else {
        return Ok(());
    };
    if let Some(family) = &issued.family_id {
        refresh_families::revoke(env.sql, family, env.now)?;
    }
    if let Some(jti) = &issued.access_jti {
        // The access token lives at most an hour past the code's expiry.
        tokens::revoke_access(env, jti, issued.expires_at + 3600)?;
    }
    Ok(())
}

/// Ends everything an identity's past logins still hold at the token
/// endpoint: its refresh-token families are revoked and its unused codes
/// spent. After a password reset, nobody who signed in before can keep
/// refreshing. Each is one statement, and running them twice is harmless.
pub fn end_all(sql: &dyn SqlStore, identity_id: &str, now: i64) -> Result<()> {
    refresh_families::revoke_for_identity(sql, identity_id, now)?;
    auth_codes::void_for_identity(sql, identity_id, now)
}

/// A refresh token names its family: `<family id>.<256-bit secret>`. Only
/// the hash of the whole token is stored. When a token that is no longer the
/// family's current one comes back, however many rotations ago it was
/// issued, its family is known and revoked (RFC 9700 §4.14.2): an attacker
/// who rotated a stolen token twice cannot keep the family alive.
fn new_refresh_token(family_id: &str) -> Result<String> {
    Ok(format!("{family_id}.{}", crypto::random_token()?))
}

/// The family a refresh token names, if it is one of ours in that form.
fn family_of(token: &str) -> Option<&str> {
    let (family, secret) = token.split_once('.')?;
    let b64 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (family.len() == 22 && secret.len() == 43 && b64(family) && b64(secret)).then_some(family)
}

/// A client's refresh lifetimes.
pub fn lifetimes(client: &Client) -> refresh_families::Lifetimes {
    refresh_families::Lifetimes {
        idle: client.refresh_idle_ttl,
        max: client.refresh_max_ttl,
    }
}

/// `grant_type=refresh_token`: rotate in one UPDATE; a token that is not the
/// family's current one (a reuse, or a race lost) revokes the family.
fn refresh_token(
    env: &Env,
    config: &Config,
    client: &Client,
    token: &str,
    asked: Option<&str>,
) -> Result<TokenResponse> {
    if !client.allows_grant("refresh_token") {
        return Err(Error::oauth(
            OAuthCode::UnauthorizedClient,
            "this client may not use refresh_token",
        ));
    }
    let presented = crypto::hash_secret(token);
    // A refused scope must not cost the client its token: check before rotating.
    if asked.is_some()
        && let Some((family, _)) =
            refresh_families::live(env.sql, &presented, &client.id, lifetimes(client), env.now)?
    {
        narrowed(&family.scope, asked)?;
    }
    // Tokens issued before families were named in them rotate into bare ones.
    let next = match family_of(token) {
        Some(family) => new_refresh_token(family)?,
        None => crypto::random_token()?,
    };
    let next_hash = crypto::hash_secret(&next);
    // The rotation also reads the person and, for a b2b login, what the
    // organisation or mandate grants now: the refresh reads nothing else.
    let rotated = refresh_families::rotate(
        env.sql,
        &presented,
        &next_hash,
        &client.id,
        lifetimes(client),
        env.now,
    )?;
    let Some(refresh_families::Rotated {
        family,
        identity,
        org_grant,
        mandate_grant,
    }) = rotated
    else {
        // Reuse of a rotated token, a token of another client, or an expired
        // family: whatever it was, the family is no longer trusted.
        match family_of(token) {
            Some(family) => refresh_families::revoke(env.sql, family, env.now)?,
            None => refresh_families::revoke_holding(env.sql, &presented, env.now)?,
        }
        return Err(grant_error(
            "The refresh token is invalid, expired, revoked or was used already.",
        ));
    };
    let scope = narrowed(&family.scope, asked)?;
    // Every refresh re-checks the organisation or the mandate, as the
    // rotation read it; access that has ended ends the family.
    let acting = judge_org(
        client,
        family.org_id.as_deref(),
        family.mandate_id.as_deref(),
        org_grant,
        mandate_grant,
    );
    if acting == OrgCheck::Ended {
        refresh_families::revoke(env.sql, &family.id, env.now)?;
        return Err(grant_error(
            "The organisation access behind this token has ended.",
        ));
    }
    let grant = Grant {
        who: identity.ok_or_else(gone)?,
        scope,
        nonce: None,
        auth_time: family.auth_time,
        amr: family.amr,
        sid: family.sid,
        idp: family.idp,
        acting,
    };
    let mut response = issue(env, config, client, &grant, &crypto::random_id()?, None)?;
    response.refresh_token = Some(next);
    Ok(response)
}

/// The scope of a refresh: the granted one, or a part of it that was asked for.
fn narrowed(granted: &str, asked: Option<&str>) -> Result<String> {
    let Some(asked) = asked else {
        return Ok(granted.to_owned());
    };
    let ok = asked
        .split_ascii_whitespace()
        .all(|s| granted.split_ascii_whitespace().any(|g| g == s));
    if !ok {
        return Err(Error::oauth(
            OAuthCode::InvalidScope,
            "A refresh may only narrow the granted scope.",
        ));
    }
    Ok(asked.to_owned())
}

/// `grant_type=client_credentials`: a confidential client acting for itself.
fn client_credentials(
    env: &Env,
    config: &Config,
    client: &Client,
    asked: Option<&str>,
) -> Result<TokenResponse> {
    if !client.confidential || !client.allows_grant("client_credentials") {
        return Err(Error::oauth(
            OAuthCode::UnauthorizedClient,
            "client_credentials needs a confidential client allowed to use it",
        ));
    }
    let scopes: Vec<&str> = match asked {
        Some(s) => s.split_ascii_whitespace().collect(),
        None => client
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !["openid", "offline_access", "profile", "email"].contains(s))
            .collect(),
    };
    if let Some(bad) = scopes.iter().find(|s| {
        !client.scopes.iter().any(|c| c == *s) || ["openid", "offline_access"].contains(*s)
    }) {
        return Err(Error::oauth(
            OAuthCode::InvalidScope,
            format!("scope `{bad}` is not available to client_credentials"),
        ));
    }
    let scope = scopes.join(" ");
    // Each token follows the client's choice of algorithm (ES256 by default).
    let access_alg = Alg::from_name(&client.access_token_alg).unwrap_or(Alg::Es256);
    let signer = Signer::load(env, config, access_alg)?;
    let custom = AccessClaims {
        client_id: client.id.clone(),
        scope: scope.clone(),
        auth_time: None,
        sid: None,
        org: None,
        act: None,
        mandate: None,
    };
    let claims = tokens::claims(
        custom,
        config,
        &client.id,
        &client.id,
        env.now,
        client.access_token_ttl,
    )?;
    Ok(TokenResponse {
        access_token: signer.sign(claims, "at+jwt")?,
        token_type: "Bearer",
        expires_in: client.access_token_ttl,
        scope,
        id_token: None,
        refresh_token: None,
        issued_token_type: None,
    })
}

/// Signs the access token and ID token for a person's grant, and starts a
/// refresh-token family when `offline_access` was granted.
fn issue(
    env: &Env,
    config: &Config,
    client: &Client,
    grant: &Grant,
    access_jti: &str,
    family_id: Option<&str>,
) -> Result<TokenResponse> {
    let who = &grant.who;
    // Each token follows the client's choice of algorithm (ES256 by default).
    let access_alg = Alg::from_name(&client.access_token_alg).unwrap_or(Alg::Es256);
    let signer = Signer::load(env, config, access_alg)?;
    let (org, act, mandate) = grant.acting.claims();
    // No token outlives the mandate it was issued through.
    let ttl = match grant.acting.until() {
        Some(end) => client.access_token_ttl.min(end - env.now).max(1),
        None => client.access_token_ttl,
    };
    let custom = AccessClaims {
        client_id: client.id.clone(),
        scope: grant.scope.clone(),
        auth_time: Some(grant.auth_time),
        sid: Some(grant.sid.clone()),
        org: org.clone(),
        act: act.clone(),
        mandate: mandate.clone(),
    };
    let mut claims = tokens::claims(custom, config, &who.id, &client.id, env.now, ttl)?;
    claims.jwt_id = Some(access_jti.to_owned());
    let access_token = signer.sign(claims, "at+jwt")?;
    let scopes: Vec<&str> = grant.scope.split_ascii_whitespace().collect();
    let id_token = if scopes.contains(&"openid") {
        let alg = Alg::from_name(&client.id_token_alg).unwrap_or(Alg::Es256);
        let mut extra = user_claims(who, &scopes);
        extra.insert("auth_time".into(), grant.auth_time.into());
        extra.insert("acr".into(), acr(&grant.amr).into());
        extra.insert(
            "amr".into(),
            grant
                .amr
                .split_ascii_whitespace()
                .collect::<Vec<_>>()
                .into(),
        );
        extra.insert("sid".into(), grant.sid.clone().into());
        if let Some(idp) = &grant.idp {
            extra.insert("idp".into(), idp.clone().into());
        }
        extra.insert("at_hash".into(), tokens::at_hash(alg, &access_token).into());
        extra.extend(tokens::context_members(
            org.as_ref(),
            act.as_ref(),
            mandate.as_ref(),
        )?);
        extra.remove("sub");
        let mut id_ttl = ID_TOKEN_TTL.min(client.access_token_ttl.max(300));
        if let Some(end) = grant.acting.until() {
            id_ttl = id_ttl.min(end - env.now).max(1);
        }
        let mut c = tokens::claims(extra, config, &who.id, &client.id, env.now, id_ttl)?;
        c.nonce = grant.nonce.clone();
        if alg == access_alg {
            Some(signer.sign(c, "JWT")?)
        } else {
            Some(Signer::load(env, config, alg)?.sign(c, "JWT")?)
        }
    } else {
        None
    };
    let (org_id, mandate_id) = grant.acting.ids();
    let refresh_token = match family_id {
        Some(id) if scopes.contains(&"offline_access") && client.allows_grant("refresh_token") => {
            let token = new_refresh_token(id)?;
            let family = refresh_families::Family {
                id: id.to_owned(),
                client_id: client.id.clone(),
                identity_id: who.id.clone(),
                scope: grant.scope.clone(),
                auth_time: grant.auth_time,
                amr: grant.amr.clone(),
                sid: grant.sid.clone(),
                org_id: org_id.clone(),
                mandate_id: mandate_id.clone(),
                idp: grant.idp.clone(),
            };
            refresh_families::insert(env.sql, &family, &crypto::hash_secret(&token), env.now)?;
            Some(token)
        }
        _ => None,
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: grant.scope.clone(),
        id_token,
        refresh_token,
        issued_token_type: None,
    })
}

/// The authentication context class of a login, from its methods
/// (space-separated): two factors (`mfa`) or a passkey (`hwk`, always
/// user-verified) are `mfa`; a password (alone, or proving an account
/// before a link) is `pwd`; a sign-in through an upstream provider alone
/// is `fed`.
pub fn acr(amr: &str) -> &'static str {
    use crate::oidc::authorize::{ACR_FED, ACR_MFA, ACR_PWD};
    let methods: Vec<&str> = amr.split_ascii_whitespace().collect();
    if methods.contains(&"mfa") || methods.contains(&"hwk") {
        ACR_MFA
    } else if methods.contains(&"fed") && !methods.contains(&"pwd") {
        ACR_FED
    } else {
        ACR_PWD
    }
}

/// The claims about a person that these scopes release (OIDC Core §5.4).
pub fn user_claims(who: &Identity, scopes: &[&str]) -> Map<String, Json> {
    let mut out = Map::new();
    out.insert("sub".into(), who.id.clone().into());
    if scopes.contains(&"profile") {
        for (k, v) in &who.attributes {
            out.insert(k.clone(), v.clone());
        }
    }
    if scopes.contains(&"email") {
        out.insert("email".into(), who.email.clone().into());
        out.insert("email_verified".into(), who.email_verified.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::authorize::{self, CODE_TTL, Subject};
    use crate::testkit::{self, PKCE_CHALLENGE, PKCE_VERIFIER, World};
    use jwt_simple::prelude::Token;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const CB: &str = "https://app.example/cb";

    /// A confidential client `app` with these extra metadata.
    fn client(w: &World, extra: Json) -> Client {
        let mut meta = json!({
            "client_name": "App",
            "client_id": "app",
            "redirect_uris": [CB],
            "scope": "openid profile email offline_access api",
        });
        for (k, v) in extra.as_object().unwrap() {
            meta[k] = v.clone();
        }
        testkit::client(&w.sql, meta, NOW).0
    }

    /// A code for `who`, issued at `at` by the authorization endpoint.
    fn code(w: &World, client: &Client, who: &Identity, scope: &str, at: i64) -> String {
        let form = testkit::params(&[
            ("client_id", &client.id),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", scope),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        let req = authorize::parse(&w.sql, &form).unwrap();
        let subject = Subject {
            id: &who.id,
            auth_time: at - 5,
            amr: &["pwd".to_owned()],
            sid: "sid-1",
            idp: None,
        };
        authorize::issue_code(&w.sql, &req, &subject, None, at).unwrap()
    }

    fn run(w: &World, client: &Client, req: TokenRequest, at: i64) -> Result<TokenResponse> {
        exchange(&w.env(at), &Config::load(&w.vars).unwrap(), client, &req)
    }

    /// The code exchanged as the authorization request said.
    fn redeem(w: &World, client: &Client, code: &str, at: i64) -> Result<TokenResponse> {
        let req = TokenRequest::AuthorizationCode {
            code: code.into(),
            redirect_uri: CB.into(),
            code_verifier: PKCE_VERIFIER.into(),
        };
        run(w, client, req, at)
    }

    fn refresh(
        w: &World,
        client: &Client,
        token: &str,
        scope: Option<&str>,
        at: i64,
    ) -> Result<TokenResponse> {
        let req = TokenRequest::RefreshToken {
            refresh_token: token.into(),
            scope: scope.map(str::to_owned),
        };
        run(w, client, req, at)
    }

    fn verify(w: &World, token: &str, at: i64) -> Result<tokens::Verified> {
        tokens::verify_access(&w.env(at), &Config::load(&w.vars).unwrap(), token)
    }

    fn oauth<T: std::fmt::Debug>(r: Result<T>) -> OAuthCode {
        match r {
            Err(Error::OAuth { code, .. }) => code,
            other => panic!("expected an OAuth error, got {other:?}"),
        }
    }

    fn form(pairs: &[(&str, &str)]) -> Result<TokenRequest> {
        TokenRequest::parse(&testkit::params(pairs))
    }

    #[test]
    fn parse_reads_each_grant_type() {
        assert_eq!(
            form(&[
                ("grant_type", "authorization_code"),
                ("code", "c"),
                ("redirect_uri", CB),
                ("code_verifier", "v"),
            ])
            .unwrap(),
            TokenRequest::AuthorizationCode {
                code: "c".into(),
                redirect_uri: CB.into(),
                code_verifier: "v".into(),
            }
        );
        assert_eq!(
            form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "r"),
                ("scope", "openid"),
            ])
            .unwrap(),
            TokenRequest::RefreshToken {
                refresh_token: "r".into(),
                scope: Some("openid".into()),
            }
        );
        assert_eq!(
            form(&[("grant_type", "client_credentials")]).unwrap(),
            TokenRequest::ClientCredentials { scope: None }
        );
    }

    #[test]
    fn parse_refuses_missing_repeated_and_unknown_parameters() {
        let code = [
            ("grant_type", "authorization_code"),
            ("code", "c"),
            ("redirect_uri", CB),
            ("code_verifier", "v"),
        ];
        for missing in ["grant_type", "code", "redirect_uri", "code_verifier"] {
            let pairs: Vec<_> = code
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            assert_eq!(oauth(form(&pairs)), OAuthCode::InvalidRequest, "{missing}");
        }
        for repeated in ["grant_type", "code", "redirect_uri", "code_verifier"] {
            let mut pairs = code.to_vec();
            pairs.push((repeated, "again"));
            assert_eq!(oauth(form(&pairs)), OAuthCode::InvalidRequest, "{repeated}");
        }
        let pairs = [("grant_type", "refresh_token"), ("scope", "openid")];
        assert_eq!(oauth(form(&pairs)), OAuthCode::InvalidRequest);
        let pairs = [
            ("grant_type", "refresh_token"),
            ("refresh_token", "r"),
            ("scope", "a"),
            ("scope", "b"),
        ];
        assert_eq!(oauth(form(&pairs)), OAuthCode::InvalidRequest);
        let pairs = [
            ("grant_type", "client_credentials"),
            ("scope", "a"),
            ("scope", "a"),
        ];
        assert_eq!(oauth(form(&pairs)), OAuthCode::InvalidRequest);
        for grant in [
            "password",
            "implicit",
            "urn:ietf:params:oauth:grant-type:device_code",
        ] {
            let pairs = [("grant_type", grant), ("code", "c"), ("username", "u")];
            assert_eq!(
                oauth(form(&pairs)),
                OAuthCode::UnsupportedGrantType,
                "{grant}"
            );
        }
    }

    #[test]
    fn a_federated_login_carries_idp_and_amr_into_the_id_token_and_its_refreshes() {
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let form = testkit::params(&[
            ("client_id", &app.id),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid offline_access"),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        let req = authorize::parse(&w.sql, &form).unwrap();
        let subject = Subject {
            id: &ada.id,
            auth_time: NOW - 5,
            amr: &["fed".to_owned()],
            sid: "sid-1",
            idp: Some("google"),
        };
        let issued = authorize::issue_code(&w.sql, &req, &subject, None, NOW).unwrap();
        let res = redeem(&w, &app, &issued, NOW + 1).unwrap();
        let c = tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert_eq!(
            (c["idp"].clone(), c["amr"].clone()),
            (json!("google"), json!(["fed"]))
        );
        let again = refresh(&w, &app, &res.refresh_token.unwrap(), None, NOW + 2).unwrap();
        let c = tokens::unverified_payload(&again.id_token.unwrap()).unwrap();
        assert_eq!(
            (c["idp"].clone(), c["amr"].clone()),
            (json!("google"), json!(["fed"]))
        );
        // A password login has no idp.
        let code = code(&w, &app, &ada, "openid", NOW);
        let c = tokens::unverified_payload(
            &redeem(&w, &app, &code, NOW + 1).unwrap().id_token.unwrap(),
        )
        .unwrap();
        assert!(c.get("idp").is_none());
    }

    #[test]
    fn a_code_exchange_issues_verified_tokens() {
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let code = code(&w, &app, &ada, "openid email offline_access", NOW);
        let res = redeem(&w, &app, &code, NOW + 1).unwrap();
        assert_eq!(
            (res.token_type, res.expires_in, res.scope.as_str()),
            ("Bearer", 300, "openid email offline_access")
        );
        assert!(res.refresh_token.is_some());

        let access = verify(&w, &res.access_token, NOW + 1).unwrap();
        assert_eq!(
            (access.sub.as_str(), access.aud.as_str()),
            (ada.id.as_str(), "app")
        );
        assert_eq!(access.exp, NOW + 1 + 300);
        assert_eq!(
            access.claims,
            AccessClaims {
                client_id: "app".into(),
                scope: "openid email offline_access".into(),
                auth_time: Some(NOW - 5),
                sid: Some("sid-1".into()),
                org: None,
                act: None,
                mandate: None,
            }
        );

        let id_token = res.id_token.unwrap();
        let meta = Token::decode_metadata(&id_token).unwrap();
        assert_eq!(
            (meta.algorithm(), meta.signature_type()),
            ("ES256", Some("JWT"))
        );
        let hint = tokens::verify_id_token_hint(
            &w.env(NOW + 1),
            &Config::load(&w.vars).unwrap(),
            &id_token,
        )
        .unwrap();
        assert_eq!((hint.sub, hint.aud), (ada.id.clone(), "app".to_owned()));
        let c = tokens::unverified_payload(&id_token).unwrap();
        assert_eq!(c["iss"], testkit::ISSUER);
        assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(c["auth_time"], NOW - 5);
        assert_eq!(c["sid"], "sid-1");
        assert_eq!(c["amr"], json!(["pwd"]));
        assert_eq!(c["email"], "ada@example.com");
        assert_eq!(c["at_hash"], tokens::at_hash(Alg::Es256, &res.access_token));
        // An ID token is not an access token.
        assert!(verify(&w, &id_token, NOW + 1).is_err());
    }

    #[test]
    fn tokens_follow_the_scope_granted() {
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let res = redeem(&w, &app, &code(&w, &app, &ada, "openid", NOW), NOW).unwrap();
        assert!(res.id_token.is_some() && res.refresh_token.is_none());
        let c = tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert!(c.get("email").is_none(), "email needs the email scope");
        let res = redeem(
            &w,
            &app,
            &code(&w, &app, &ada, "api offline_access", NOW),
            NOW,
        )
        .unwrap();
        assert!(res.id_token.is_none() && res.refresh_token.is_some());
        // A client without the refresh_token grant gets no refresh token.
        let w = World::new();
        let app = client(&w, json!({ "grant_types": ["authorization_code"] }));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let code = code(&w, &app, &ada, "openid offline_access", NOW);
        assert!(
            redeem(&w, &app, &code, NOW)
                .unwrap()
                .refresh_token
                .is_none()
        );
    }

    #[test]
    fn tokens_follow_the_clients_algorithms() {
        let w = World::new();
        let app = client(
            &w,
            json!({
                "id_token_signed_response_alg": "EdDSA",
                "access_token_signed_response_alg": "ES256",
            }),
        );
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let res = redeem(&w, &app, &code(&w, &app, &ada, "openid", NOW), NOW).unwrap();
        let id_token = res.id_token.unwrap();
        assert_eq!(
            Token::decode_metadata(&res.access_token)
                .unwrap()
                .algorithm(),
            "ES256"
        );
        assert_eq!(
            Token::decode_metadata(&id_token).unwrap().algorithm(),
            "EdDSA"
        );
        // at_hash hashes with the ID token's algorithm (SHA-512 for EdDSA).
        let c = tokens::unverified_payload(&id_token).unwrap();
        assert_eq!(c["at_hash"], tokens::at_hash(Alg::EdDsa, &res.access_token));
        assert!(verify(&w, &res.access_token, NOW).is_ok());
        let config = Config::load(&w.vars).unwrap();
        assert!(tokens::verify_id_token_hint(&w.env(NOW), &config, &id_token).is_ok());
    }

    #[test]
    fn a_code_is_bound_to_its_client_redirect_verifier_and_minute() {
        let w = World::new();
        let app = client(&w, json!({}));
        let other = testkit::client(
            &w.sql,
            json!({ "client_name": "Other", "client_id": "other", "redirect_uris": [CB] }),
            NOW,
        )
        .0;
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let attempt = |client: &Client, redirect_uri: &str, verifier: &str, at: i64| {
            let code = code(&w, &app, &ada, "openid", NOW);
            let req = TokenRequest::AuthorizationCode {
                code: code.clone(),
                redirect_uri: redirect_uri.into(),
                code_verifier: verifier.into(),
            };
            let first = oauth(run(&w, client, req, at));
            // The failed attempt spent the code.
            let again = oauth(redeem(&w, &app, &code, NOW));
            (first, again)
        };
        let refused = (OAuthCode::InvalidGrant, OAuthCode::InvalidGrant);
        let wrong_verifier = "a".repeat(43);
        assert_eq!(attempt(&app, CB, &wrong_verifier, NOW), refused, "verifier");
        assert_eq!(attempt(&app, CB, "short", NOW), refused, "short verifier");
        // The challenge itself is no verifier (that would be PKCE plain).
        assert_eq!(attempt(&app, CB, PKCE_CHALLENGE, NOW), refused, "plain");
        let elsewhere = "https://app.example/cb2";
        assert_eq!(
            attempt(&app, elsewhere, PKCE_VERIFIER, NOW),
            refused,
            "redirect"
        );
        assert_eq!(attempt(&other, CB, PKCE_VERIFIER, NOW), refused, "client");
        let late = NOW + CODE_TTL;
        assert_eq!(attempt(&app, CB, PKCE_VERIFIER, late), refused, "expired");
        let in_time = code(&w, &app, &ada, "openid", NOW);
        assert!(redeem(&w, &app, &in_time, late - 1).is_ok());
        assert_eq!(
            oauth(redeem(&w, &app, "no-such-code", NOW)),
            OAuthCode::InvalidGrant
        );

        let no_code = client(
            &w,
            json!({ "client_id": "svc", "grant_types": ["client_credentials"] }),
        );
        let code = code(&w, &app, &ada, "openid", NOW);
        assert_eq!(
            oauth(redeem(&w, &no_code, &code, NOW)),
            OAuthCode::UnauthorizedClient
        );
    }

    #[test]
    fn a_replayed_code_revokes_what_its_first_exchange_issued() {
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let code = code(&w, &app, &ada, "openid offline_access", NOW);
        let first = redeem(&w, &app, &code, NOW).unwrap();
        assert!(verify(&w, &first.access_token, NOW + 2).is_ok());
        assert_eq!(
            oauth(redeem(&w, &app, &code, NOW + 2)),
            OAuthCode::InvalidGrant
        );
        assert_eq!(
            oauth(verify(&w, &first.access_token, NOW + 3)),
            OAuthCode::InvalidToken
        );
        let refresh_token = first.refresh_token.unwrap();
        assert_eq!(
            oauth(refresh(&w, &app, &refresh_token, None, NOW + 3)),
            OAuthCode::InvalidGrant
        );
    }

    #[test]
    fn a_token_rotated_long_ago_still_revokes_its_family() {
        // A thief rotates a stolen token twice; the owner then presents the
        // original. The family is named in every token, so it dies anyway.
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let first = code(&w, &app, &ada, "openid offline_access", NOW);
        let stolen = redeem(&w, &app, &first, NOW)
            .unwrap()
            .refresh_token
            .unwrap();
        let family = family_of(&stolen)
            .expect("the token names its family")
            .to_owned();
        let t1 = refresh(&w, &app, &stolen, None, NOW + 1)
            .unwrap()
            .refresh_token
            .unwrap();
        let t2 = refresh(&w, &app, &t1, None, NOW + 2)
            .unwrap()
            .refresh_token
            .unwrap();
        assert_eq!(family_of(&t2), Some(family.as_str()));
        assert_eq!(
            oauth(refresh(&w, &app, &stolen, None, NOW + 3)),
            OAuthCode::InvalidGrant
        );
        assert_eq!(
            oauth(refresh(&w, &app, &t2, None, NOW + 4)),
            OAuthCode::InvalidGrant,
            "the thief's current token died with the family"
        );
        // A made-up token naming the family changes nothing more: it is dead.
        assert_eq!(family_of("short.x"), None);
    }

    #[test]
    fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let first = code(&w, &app, &ada, "openid email offline_access", NOW);
        let r0 = redeem(&w, &app, &first, NOW)
            .unwrap()
            .refresh_token
            .unwrap();
        let res = refresh(&w, &app, &r0, None, NOW + 10).unwrap();
        let r1 = res.refresh_token.unwrap();
        assert_ne!(r1, r0);
        assert_eq!(res.scope, "openid email offline_access");
        let access = verify(&w, &res.access_token, NOW + 10).unwrap();
        assert_eq!(
            (access.sub, access.claims.auth_time),
            (ada.id.clone(), Some(NOW - 5))
        );
        let c = tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert_eq!(
            (c["sid"].as_str(), c["auth_time"].as_i64()),
            (Some("sid-1"), Some(NOW - 5))
        );
        assert!(
            c.get("nonce").is_none(),
            "a refreshed ID token has no nonce"
        );

        let r2 = refresh(&w, &app, &r1, None, NOW + 20)
            .unwrap()
            .refresh_token
            .unwrap();
        // r1 again: reuse. The family dies, with the token that replaced it.
        assert_eq!(
            oauth(refresh(&w, &app, &r1, None, NOW + 30)),
            OAuthCode::InvalidGrant
        );
        assert_eq!(
            oauth(refresh(&w, &app, &r2, None, NOW + 31)),
            OAuthCode::InvalidGrant
        );

        // Presented by another client, a token has leaked: its family dies too.
        let other = client(&w, json!({ "client_id": "other" }));
        let leaked = code(&w, &app, &ada, "openid offline_access", NOW);
        let r0 = redeem(&w, &app, &leaked, NOW)
            .unwrap()
            .refresh_token
            .unwrap();
        assert_eq!(
            oauth(refresh(&w, &other, &r0, None, NOW + 40)),
            OAuthCode::InvalidGrant
        );
        assert_eq!(
            oauth(refresh(&w, &app, &r0, None, NOW + 41)),
            OAuthCode::InvalidGrant
        );
    }

    #[test]
    fn a_code_or_refresh_of_a_deleted_account_issues_nothing() {
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let r0 = redeem(
            &w,
            &app,
            &code(&w, &app, &ada, "openid offline_access", NOW),
            NOW,
        )
        .unwrap()
        .refresh_token
        .unwrap();
        let unused = code(&w, &app, &ada, "openid", NOW);
        crate::store::identities::delete(&w.sql, &ada.id).unwrap();
        assert_eq!(
            oauth(refresh(&w, &app, &r0, None, NOW + 1)),
            OAuthCode::InvalidGrant
        );
        assert_eq!(
            oauth(redeem(&w, &app, &unused, NOW + 1)),
            OAuthCode::InvalidGrant
        );
    }

    #[test]
    fn a_refresh_may_only_narrow_the_scope() {
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let code = code(&w, &app, &ada, "openid email offline_access", NOW);
        let r0 = redeem(&w, &app, &code, NOW).unwrap().refresh_token.unwrap();
        for wider in ["openid profile", "api", "openid email offline_access admin"] {
            let res = refresh(&w, &app, &r0, Some(wider), NOW + 1);
            assert_eq!(oauth(res), OAuthCode::InvalidScope, "{wider}");
        }
        // Asking too much does not cost the client its token.
        let res = refresh(&w, &app, &r0, Some("email offline_access"), NOW + 2).unwrap();
        assert_eq!(res.scope, "email offline_access");
        assert!(res.id_token.is_none(), "no openid, no ID token");
        let access = verify(&w, &res.access_token, NOW + 2).unwrap();
        assert_eq!(access.claims.scope, "email offline_access");
        // The family keeps what was granted: a later refresh may ask for it all.
        let r1 = res.refresh_token.unwrap();
        let res = refresh(&w, &app, &r1, None, NOW + 3).unwrap();
        assert_eq!(res.scope, "openid email offline_access");
    }

    #[test]
    fn refresh_families_expire_when_idle_and_at_their_maximum_age() {
        let w = World::new();
        let app = client(
            &w,
            json!({ "refresh_idle_ttl": 300, "refresh_max_ttl": 900 }),
        );
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let start = |w: &World| {
            let code = code(w, &app, &ada, "openid offline_access", NOW);
            redeem(w, &app, &code, NOW).unwrap().refresh_token.unwrap()
        };
        // Idle: a family unused for its idle lifetime is dead.
        let token = start(&w);
        let token = refresh(&w, &app, &token, None, NOW + 299)
            .unwrap()
            .refresh_token
            .unwrap();
        assert_eq!(
            oauth(refresh(&w, &app, &token, None, NOW + 299 + 300)),
            OAuthCode::InvalidGrant
        );
        // Maximum: used often, it still dies 900 s after the login.
        let mut token = start(&w);
        for at in [250, 500, 750] {
            token = refresh(&w, &app, &token, None, NOW + at)
                .unwrap()
                .refresh_token
                .unwrap();
        }
        assert_eq!(
            oauth(refresh(&w, &app, &token, None, NOW + 900)),
            OAuthCode::InvalidGrant
        );
    }

    #[test]
    fn client_credentials_grants_the_clients_own_api_scopes() {
        let w = World::new();
        let (service, _) = testkit::client(
            &w.sql,
            json!({
                "client_name": "Service",
                "client_id": "service",
                "grant_types": ["client_credentials"],
                "scope": "openid api:read api:write",
            }),
            NOW,
        );
        let cc = |client: &Client, scope: Option<&str>| {
            let req = TokenRequest::ClientCredentials {
                scope: scope.map(str::to_owned),
            };
            run(&w, client, req, NOW)
        };
        let res = cc(&service, None).unwrap();
        assert_eq!(res.scope, "api:read api:write");
        assert!(res.id_token.is_none() && res.refresh_token.is_none());
        let access = verify(&w, &res.access_token, NOW).unwrap();
        assert_eq!(
            (access.sub.as_str(), access.aud.as_str()),
            ("service", "service")
        );
        assert_eq!((access.claims.auth_time, access.claims.sid), (None, None));
        assert_eq!(cc(&service, Some("api:read")).unwrap().scope, "api:read");
        for scope in ["openid", "offline_access", "api:admin", "api:read admin"] {
            assert_eq!(
                oauth(cc(&service, Some(scope))),
                OAuthCode::InvalidScope,
                "{scope}"
            );
        }
        // A confidential client that did not register the grant.
        let app = client(&w, json!({}));
        assert_eq!(oauth(cc(&app, None)), OAuthCode::UnauthorizedClient);
        // A public client, even one that lists the grant.
        let mut public = service.clone();
        public.confidential = false;
        assert_eq!(oauth(cc(&public, None)), OAuthCode::UnauthorizedClient);
    }

    /// `svc`, a b2b client with the roles `buyer`, `approver` and `viewer`;
    /// `ada` a buyer and viewer in Acme, and an approver on its project
    /// `prj_1`.
    fn b2b(w: &World) -> (Client, Identity) {
        use crate::store::org_access::seed;
        let svc = client(
            w,
            json!({
                "client_id": "svc", "b2b": true,
                "roles": [{"name": "buyer"}, {"name": "approver"}, {"name": "viewer"}]
            }),
        );
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let acme = seed::org(&w.sql, "acme", "Acme Oy");
        seed::member(&w.sql, &acme, &ada.id);
        seed::activate(&w.sql, &acme, "svc");
        seed::project(&w.sql, "prj_1", &acme, "svc");
        seed::role(&w.sql, &acme, &ada.id, "svc", "", "viewer");
        seed::role(&w.sql, &acme, &ada.id, "svc", "", "buyer");
        seed::role(&w.sql, &acme, &ada.id, "svc", "prj_1", "approver");
        (svc, ada)
    }

    /// A code for `who` at `svc` in Acme, as /authorize issues it.
    fn b2b_code(w: &World, svc: &Client, who: &Identity, scope: &str, at: i64) -> String {
        b2b_code_for(w, svc, who, scope, at, None)
    }

    /// A code for `who` at `svc` in their one context (for `organization`,
    /// if given), as /authorize issues it.
    fn b2b_code_for(
        w: &World,
        svc: &Client,
        who: &Identity,
        scope: &str,
        at: i64,
        organization: Option<&str>,
    ) -> String {
        let mut pairs = vec![
            ("client_id", svc.id.as_str()),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", scope),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        if let Some(o) = organization {
            pairs.push(("organization", o));
        }
        let req = authorize::parse(&w.sql, &testkit::params(&pairs)).unwrap();
        let authorize::OrgStep::Chosen(org) =
            authorize::choose_org(&w.sql, &who.id, &req, None, at).unwrap()
        else {
            panic!("one context")
        };
        let subject = Subject {
            id: &who.id,
            auth_time: at - 5,
            amr: &["pwd".to_owned()],
            sid: "sid-1",
            idp: None,
        };
        authorize::issue_code(&w.sql, &req, &subject, Some(&org), at).unwrap()
    }

    /// Replaces a client's metadata, as the admin API does.
    fn reregister(sql: &dyn SqlStore, id: &str, meta: Json, at: i64) -> Client {
        crate::oidc::clients::update(sql, id, &serde_json::from_value(meta).unwrap(), at).unwrap()
    }

    fn acme_claims(roles: &[&str]) -> OrgClaims {
        OrgClaims {
            org_id: "org_acme".into(),
            org_slug: "acme".into(),
            org_name: "Acme Oy".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            project_roles: [("prj_1".to_owned(), vec!["approver".to_owned()])].into(),
        }
    }

    #[test]
    fn a_b2b_login_carries_the_organisation_and_roles_in_its_tokens() {
        let w = World::new();
        let (svc, ada) = b2b(&w);
        let first = b2b_code(&w, &svc, &ada, "openid offline_access", NOW);
        let res = redeem(&w, &svc, &first, NOW).unwrap();
        let expected = acme_claims(&["buyer", "viewer"]);
        let access = verify(&w, &res.access_token, NOW).unwrap();
        assert_eq!(access.claims.org.as_ref(), Some(&expected));
        let raw = tokens::unverified_payload(&res.access_token).unwrap();
        assert_eq!(raw["org_slug"], "acme", "top-level claims");
        assert_eq!(raw["project_roles"], json!({"prj_1": ["approver"]}));
        let id = tokens::unverified_payload(res.id_token.as_ref().unwrap()).unwrap();
        for (k, v) in expected.members().unwrap() {
            assert_eq!(id[&k], v, "{k}");
        }
        // Introspection, of the access token and of the refresh token.
        let config = Config::load(&w.vars).unwrap();
        let env = w.env(NOW);
        let about =
            crate::oidc::introspection::introspect(&env, &config, &svc, &res.access_token).unwrap();
        assert_eq!(
            (about["active"].as_bool(), about["org_id"].as_str()),
            (Some(true), Some("org_acme"))
        );
        assert_eq!(about["roles"], json!(["buyer", "viewer"]));
        let refresh_token = res.refresh_token.unwrap();
        let about =
            crate::oidc::introspection::introspect(&env, &config, &svc, &refresh_token).unwrap();
        assert_eq!(about["token_type"], "refresh_token");
        assert_eq!(about["org_name"], "Acme Oy");
        assert_eq!(about["project_roles"], json!({"prj_1": ["approver"]}));
        crate::store::org_access::seed::set(
            &w.sql,
            "organisations",
            "status",
            "suspended",
            &[("id", "org_acme")],
        );
        let about =
            crate::oidc::introspection::introspect(&env, &config, &svc, &refresh_token).unwrap();
        assert_eq!(about, json!({"active": false}), "its access has ended");

        // A plain client's tokens carry nothing of it.
        let app = client(&w, json!({}));
        let res = redeem(&w, &app, &code(&w, &app, &ada, "openid", NOW), NOW).unwrap();
        assert_eq!(verify(&w, &res.access_token, NOW).unwrap().claims.org, None);
        let id = tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert!(id.get("org_id").is_none() && id.get("roles").is_none());
    }

    #[test]
    fn a_refresh_shows_role_changes_and_the_catalogue_as_it_is_now() {
        use crate::store::org_access::seed;
        let w = World::new();
        let (svc, ada) = b2b(&w);
        let code = b2b_code(&w, &svc, &ada, "openid offline_access", NOW);
        let r0 = redeem(&w, &svc, &code, NOW).unwrap().refresh_token.unwrap();
        seed::delete(&w.sql, "role_assignments", &[("role", "buyer")]);
        seed::role(&w.sql, "org_acme", &ada.id, "svc", "", "approver");
        let res = refresh(&w, &svc, &r0, None, NOW + 10).unwrap();
        let access = verify(&w, &res.access_token, NOW + 10).unwrap();
        assert_eq!(
            access.claims.org,
            Some(acme_claims(&["approver", "viewer"]))
        );
        let id = tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert_eq!(id["roles"], json!(["approver", "viewer"]));
        // The operator drops `viewer` from the catalogue.
        let svc = reregister(
            &w.sql,
            "svc",
            json!({
                "client_name": "App", "redirect_uris": [CB], "scope": "openid profile email offline_access api",
                "b2b": true, "roles": [{"name": "buyer"}, {"name": "approver"}]
            }),
            NOW + 15,
        );
        let res = refresh(&w, &svc, &res.refresh_token.unwrap(), None, NOW + 20).unwrap();
        let access = verify(&w, &res.access_token, NOW + 20).unwrap();
        assert_eq!(access.claims.org.unwrap().roles, ["approver"]);
    }

    #[test]
    fn a_refresh_is_refused_once_the_organisation_access_ends() {
        use crate::store::org_access::seed;
        type Change = fn(&World);
        let ends: [(&str, Change); 6] = [
            ("removed", |w| {
                seed::delete(&w.sql, "memberships", &[("org_id", "org_acme")])
            }),
            ("membership suspended", |w| {
                seed::set(
                    &w.sql,
                    "memberships",
                    "status",
                    "suspended",
                    &[("org_id", "org_acme")],
                )
            }),
            ("organisation suspended", |w| {
                seed::set(
                    &w.sql,
                    "organisations",
                    "status",
                    "suspended",
                    &[("id", "org_acme")],
                )
            }),
            ("organisation deleted", |w| {
                seed::delete(&w.sql, "organisations", &[("id", "org_acme")])
            }),
            ("service deactivated", |w| {
                seed::set(
                    &w.sql,
                    "activations",
                    "status",
                    "deactivated",
                    &[("org_id", "org_acme")],
                )
            }),
            ("every role taken", |w| {
                seed::delete(&w.sql, "role_assignments", &[("org_id", "org_acme")])
            }),
        ];
        for (why, end) in ends {
            let w = World::new();
            let (svc, ada) = b2b(&w);
            let first = b2b_code(&w, &svc, &ada, "openid offline_access", NOW);
            let r0 = redeem(&w, &svc, &first, NOW)
                .unwrap()
                .refresh_token
                .unwrap();
            let r1 = refresh(&w, &svc, &r0, None, NOW + 1)
                .unwrap()
                .refresh_token
                .unwrap();
            end(&w);
            match refresh(&w, &svc, &r1, None, NOW + 2) {
                Err(Error::OAuth {
                    code: OAuthCode::InvalidGrant,
                    description,
                }) => {
                    assert_eq!(
                        description, "The organisation access behind this token has ended.",
                        "{why}"
                    );
                }
                other => panic!("{why}: expected invalid_grant, got {other:?}"),
            }
            // The family is revoked: access given back does not revive it.
            let family = family_of(&r1).unwrap();
            let revoked = w
                .sql
                .execute(
                    "SELECT revoked_at FROM refresh_families WHERE id = ?",
                    &[family.into()],
                )
                .unwrap();
            assert!(
                revoked
                    .first()
                    .is_some_and(|r| r.opt_int("revoked_at").unwrap().is_some()),
                "{why}"
            );
        }
        // A plain family of a client that has since become a service has no
        // organisation to show: it ends too.
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let r0 = redeem(
            &w,
            &app,
            &code(&w, &app, &ada, "openid offline_access", NOW),
            NOW,
        )
        .unwrap()
        .refresh_token
        .unwrap();
        let app = reregister(
            &w.sql,
            "app",
            json!({
                "client_name": "App", "redirect_uris": [CB], "b2b": true, "roles": [{"name": "buyer"}]
            }),
            NOW,
        );
        assert_eq!(
            oauth(refresh(&w, &app, &r0, None, NOW + 1)),
            OAuthCode::InvalidGrant
        );
    }

    /// A store that counts the statements run through it.
    struct Counting<'a> {
        inner: &'a dyn SqlStore,
        n: std::cell::Cell<usize>,
    }

    impl SqlStore for Counting<'_> {
        fn execute(&self, sql: &str, params: &[crate::store::Value]) -> Result<crate::store::Rows> {
            self.n.set(self.n.get() + 1);
            self.inner.execute(sql, params)
        }
    }

    /// On top of [`b2b`]: Globex (A) with `svc` active and a project
    /// `prj_g`; Ledger (B) with `bob` a member, designated in `mnd_1`, which
    /// gives Ledger `approver` and `ghost` (not in the catalogue) on the
    /// whole service until NOW + 1000.
    fn mandated(w: &World) -> (Client, Identity) {
        use crate::store::org_access::seed::{self, Agent, Mandate};
        let (svc, _) = b2b(w);
        let bob = testkit::person(&w.sql, "bob@example.com", NOW);
        let globex = seed::org(&w.sql, "globex", "Globex");
        seed::activate(&w.sql, &globex, "svc");
        seed::project(&w.sql, "prj_g", &globex, "svc");
        let ledger = seed::org(&w.sql, "ledger", "Ledger & Co");
        seed::member(&w.sql, &ledger, &bob.id);
        seed::mandate(
            &w.sql,
            &Mandate {
                id: "mnd_1",
                principal: &globex,
                agent: Agent::Org(&ledger),
                client_id: "svc",
                project_id: "",
                roles: &["approver", "ghost"],
                not_before: NOW - 100,
                expires_at: NOW + 1000,
                all_members: false,
            },
        );
        seed::delegate(&w.sql, "mnd_1", &bob.id);
        (svc, bob)
    }

    fn mandate_code(w: &World, svc: &Client, who: &Identity, at: i64) -> String {
        b2b_code_for(w, svc, who, "openid offline_access", at, Some("globex"))
    }

    #[test]
    fn a_mandate_login_carries_the_principal_the_actor_and_the_mandate() {
        use crate::oidc::introspection::introspect;
        let w = World::new();
        let (svc, bob) = mandated(&w);
        let res = redeem(&w, &svc, &mandate_code(&w, &svc, &bob, NOW), NOW).unwrap();
        let access = verify(&w, &res.access_token, NOW).unwrap();
        let org = access.claims.org.clone().unwrap();
        assert_eq!(
            (
                org.org_id.as_str(),
                org.org_slug.as_str(),
                org.org_name.as_str()
            ),
            ("org_globex", "globex", "Globex")
        );
        assert_eq!(
            (org.roles, org.project_roles),
            (vec!["approver".to_owned()], Default::default())
        );
        let act = tokens::Actor {
            sub: bob.id.clone(),
            org_id: Some("org_ledger".into()),
        };
        let mandate = MandateClaims {
            id: "mnd_1".into(),
            expires_at: NOW + 1000,
        };
        assert_eq!(access.claims.act.as_ref(), Some(&act));
        assert_eq!(access.claims.mandate.as_ref(), Some(&mandate));
        assert_eq!(access.sub, bob.id, "the person is the subject");
        let id = tokens::unverified_payload(res.id_token.as_ref().unwrap()).unwrap();
        assert_eq!(id["act"], json!({"sub": bob.id, "org_id": "org_ledger"}));
        assert_eq!(
            id["mandate"],
            json!({"id": "mnd_1", "expires_at": NOW + 1000})
        );
        assert_eq!(
            (id["org_id"].clone(), id["roles"].clone()),
            (json!("org_globex"), json!(["approver"]))
        );

        // Introspection says the same, of both tokens; the refresh token's
        // exp is the mandate's end when that comes first.
        let config = Config::load(&w.vars).unwrap();
        let env = w.env(NOW);
        let about = introspect(&env, &config, &svc, &res.access_token).unwrap();
        assert_eq!(about["act"], id["act"]);
        assert_eq!(about["mandate"], id["mandate"]);
        let r0 = res.refresh_token.unwrap();
        let about = introspect(&env, &config, &svc, &r0).unwrap();
        assert_eq!(
            (about["active"].clone(), about["exp"].clone()),
            (json!(true), json!(NOW + 1000))
        );
        assert_eq!(about["act"], id["act"]);
        assert_eq!(about["org_slug"], "globex");

        // A refresh carries it on, with the mandate's roles as they are now.
        crate::store::org_access::seed::set(
            &w.sql,
            "mandates",
            "roles",
            r#"["buyer", "viewer"]"#,
            &[("id", "mnd_1")],
        );
        let res = refresh(&w, &svc, &r0, None, NOW + 10).unwrap();
        let access = verify(&w, &res.access_token, NOW + 10).unwrap();
        assert_eq!(access.claims.org.unwrap().roles, ["buyer", "viewer"]);
        assert_eq!(
            (access.claims.act, access.claims.mandate),
            (Some(act), Some(mandate))
        );

        // No token outlives the mandate: 300 s asked, 100 s left.
        let res = refresh(&w, &svc, &res.refresh_token.unwrap(), None, NOW + 900).unwrap();
        assert_eq!(res.expires_in, 100);
        assert_eq!(
            verify(&w, &res.access_token, NOW + 900).unwrap().exp,
            NOW + 1000
        );
        let id = tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert_eq!(id["exp"], NOW + 1000);
        // ... and once it has ended, neither does the family.
        let r2 = res.refresh_token.unwrap();
        let about = introspect(&w.env(NOW + 1000), &config, &svc, &r2).unwrap();
        assert_eq!(about, json!({"active": false}));
    }

    #[test]
    fn a_mandate_named_person_acts_with_no_agent_organisation() {
        use crate::store::org_access::seed::{self, Agent, Mandate};
        let w = World::new();
        let (svc, _) = mandated(&w);
        let eve = testkit::person(&w.sql, "eve@example.com", NOW);
        seed::mandate(
            &w.sql,
            &Mandate {
                id: "mnd_e",
                principal: "org_globex",
                agent: Agent::Person(&eve.id),
                client_id: "svc",
                project_id: "prj_g",
                roles: &["buyer"],
                not_before: NOW,
                expires_at: NOW + 5000,
                all_members: false,
            },
        );
        let res = redeem(&w, &svc, &mandate_code(&w, &svc, &eve, NOW), NOW).unwrap();
        let raw = tokens::unverified_payload(&res.access_token).unwrap();
        assert_eq!(raw["act"], json!({"sub": eve.id}));
        assert_eq!(raw["mandate"]["id"], "mnd_e");
        assert_eq!(raw["roles"], json!([]));
        assert_eq!(raw["project_roles"], json!({"prj_g": ["buyer"]}));
        assert_eq!(res.expires_in, 300);
    }

    #[test]
    fn a_mandate_refresh_is_refused_once_the_mandate_ends() {
        use crate::store::org_access::seed;
        type Change = fn(&World);
        let ends: [(&str, Change); 10] = [
            ("revoked", |w| {
                seed::set(&w.sql, "mandates", "state", "revoked", &[("id", "mnd_1")])
            }),
            ("back to offered", |w| {
                seed::set(&w.sql, "mandates", "state", "offered", &[("id", "mnd_1")])
            }),
            ("not designated", |w| {
                seed::delete(&w.sql, "mandate_delegates", &[("mandate_id", "mnd_1")])
            }),
            ("expired", |w| {
                seed::set(
                    &w.sql,
                    "mandates",
                    "expires_at",
                    &(NOW + 2).to_string(),
                    &[("id", "mnd_1")],
                )
            }),
            ("A's activation deactivated", |w| {
                seed::set(
                    &w.sql,
                    "activations",
                    "status",
                    "deactivated",
                    &[("org_id", "org_globex")],
                )
            }),
            ("A suspended", |w| {
                seed::set(
                    &w.sql,
                    "organisations",
                    "status",
                    "suspended",
                    &[("id", "org_globex")],
                )
            }),
            ("B suspended", |w| {
                seed::set(
                    &w.sql,
                    "organisations",
                    "status",
                    "suspended",
                    &[("id", "org_ledger")],
                )
            }),
            ("removed from B", |w| {
                seed::delete(&w.sql, "memberships", &[("org_id", "org_ledger")])
            }),
            ("project deleted", |w| {
                seed::delete(&w.sql, "projects", &[("id", "prj_g")])
            }),
            ("no role of the catalogue left", |w| {
                seed::set(
                    &w.sql,
                    "mandates",
                    "roles",
                    r#"["ghost"]"#,
                    &[("id", "mnd_1")],
                )
            }),
        ];
        for (why, end) in ends {
            let w = World::new();
            let (svc, bob) = mandated(&w);
            // On the project, so that deleting it matters.
            seed::set(
                &w.sql,
                "mandates",
                "project_id",
                "prj_g",
                &[("id", "mnd_1")],
            );
            let r0 = redeem(&w, &svc, &mandate_code(&w, &svc, &bob, NOW), NOW)
                .unwrap()
                .refresh_token
                .unwrap();
            let r1 = refresh(&w, &svc, &r0, None, NOW + 1)
                .unwrap()
                .refresh_token
                .unwrap();
            end(&w);
            match refresh(&w, &svc, &r1, None, NOW + 2) {
                Err(Error::OAuth {
                    code: OAuthCode::InvalidGrant,
                    description,
                }) => assert_eq!(
                    description, "The organisation access behind this token has ended.",
                    "{why}"
                ),
                other => panic!("{why}: expected invalid_grant, got {other:?}"),
            }
            let revoked = w
                .sql
                .execute(
                    "SELECT revoked_at FROM refresh_families WHERE id = ?",
                    &[family_of(&r1).unwrap().into()],
                )
                .unwrap();
            assert!(
                revoked
                    .first()
                    .is_some_and(|r| r.opt_int("revoked_at").unwrap().is_some()),
                "{why}: the family is revoked"
            );
            // A code issued before the end is refused at its exchange too.
            let w = World::new();
            let (svc, bob) = mandated(&w);
            seed::set(
                &w.sql,
                "mandates",
                "project_id",
                "prj_g",
                &[("id", "mnd_1")],
            );
            let code = mandate_code(&w, &svc, &bob, NOW);
            end(&w);
            assert_eq!(
                oauth(redeem(&w, &svc, &code, NOW + 2)),
                OAuthCode::InvalidGrant,
                "{why}"
            );
        }
        // A code or family naming a mandate of another principal is refused.
        let w = World::new();
        let (svc, bob) = mandated(&w);
        let check = |org: Option<&str>, mandate: Option<&str>| {
            check_org(&w.sql, &svc, &bob.id, org, mandate, NOW).unwrap()
        };
        assert!(matches!(
            check(Some("org_globex"), Some("mnd_1")),
            OrgCheck::Mandated(_)
        ));
        assert_eq!(check(Some("org_acme"), Some("mnd_1")), OrgCheck::Ended);
        assert_eq!(check(None, Some("mnd_1")), OrgCheck::Ended);
        assert_eq!(
            check(Some("org_globex"), None),
            OrgCheck::Ended,
            "not a member"
        );
    }

    /// The statements a token request runs, given its authenticated client
    /// (the endpoint adds the schema check and the client before it): with
    /// keys from variables, as in production, a code exchange claims the
    /// code and starts the family, a refresh rotates, and the person, the
    /// organisation and the mandate ride on those statements; the client's
    /// own token needs none.
    #[test]
    fn a_token_request_runs_one_statement_per_write_and_no_read() {
        use crate::oidc::keys::{self, Alg};
        let key = |alg| keys::generate(alg).unwrap().0;
        let w = World::with(&[
            ("dev_mode", "false"),
            ("signing_key", &key(Alg::Es256)),
            ("signing_key_eddsa", &key(Alg::EdDsa)),
        ]);
        let (svc, bob) = mandated(&w);
        let ada = crate::identity::by_email(&w.sql, "ada@example.com")
            .unwrap()
            .unwrap();
        let app = client(
            &w,
            json!({"grant_types": ["authorization_code", "refresh_token", "client_credentials"]}),
        );
        let config = Config::load(&w.vars).unwrap();
        let counted = |client: &Client, req: TokenRequest| {
            let counting = Counting {
                inner: &w.sql,
                n: 0.into(),
            };
            let env = Env {
                sql: &counting,
                ..w.env(NOW + 1)
            };
            let res = exchange(&env, &config, client, &req).unwrap();
            (res, counting.n.get())
        };
        let redeemed = |client: &Client, code: String| {
            counted(
                client,
                TokenRequest::AuthorizationCode {
                    code,
                    redirect_uri: CB.into(),
                    code_verifier: PKCE_VERIFIER.into(),
                },
            )
        };
        // A code exchange: the claim (with the person, the organisation or
        // the mandate), the record that the client got tokens in the session
        // (for single sign-out), then the family when offline_access was
        // granted.
        let (res, n) = redeemed(&app, code(&w, &app, &ada, "openid", NOW));
        assert!(res.refresh_token.is_none());
        assert_eq!(n, 2, "code, no refresh token");
        let plain = redeemed(&app, code(&w, &app, &ada, "openid offline_access", NOW));
        let member = redeemed(&svc, b2b_code(&w, &svc, &ada, "openid offline_access", NOW));
        let mandate = redeemed(&svc, mandate_code(&w, &svc, &bob, NOW));
        for (what, (res, n)) in [("plain", &plain), ("b2b", &member), ("mandate", &mandate)] {
            assert_eq!(*n, 3, "code, {what}");
            assert!(res.refresh_token.is_some(), "{what}");
        }

        // A refresh: the rotation alone, for every kind of login, and the
        // organisation and the mandate are in its tokens.
        for (what, client, res, org, act) in [
            ("plain", &app, &plain.0, false, false),
            ("b2b", &svc, &member.0, true, false),
            ("mandate", &svc, &mandate.0, true, true),
        ] {
            let (res, n) = counted(
                client,
                TokenRequest::RefreshToken {
                    refresh_token: res.refresh_token.clone().unwrap(),
                    scope: None,
                },
            );
            assert_eq!(n, 1, "refresh, {what}");
            assert!(res.refresh_token.is_some(), "{what}");
            let access = verify(&w, &res.access_token, NOW + 1).unwrap();
            assert_eq!(
                (access.claims.org.is_some(), access.claims.act.is_some()),
                (org, act),
                "{what}"
            );
        }

        // The client's own token.
        let (_, n) = counted(&app, TokenRequest::ClientCredentials { scope: None });
        assert_eq!(n, 0, "client_credentials");
    }

    #[test]
    fn just_me_at_a_personal_use_service_carries_no_organisation() {
        use crate::store::org_access::seed;
        let w = World::new();
        let (svc, _) = b2b(&w);
        let eve = testkit::person(&w.sql, "eve@example.com", NOW);
        seed::set(&w.sql, "clients", "personal_use", "1", &[("id", "svc")]);
        let svc = crate::oidc::clients::get(&w.sql, &svc.id).unwrap().unwrap();
        let res = redeem(
            &w,
            &svc,
            &b2b_code(&w, &svc, &eve, "openid offline_access", NOW),
            NOW,
        )
        .unwrap();
        let access = verify(&w, &res.access_token, NOW).unwrap();
        assert_eq!(
            (access.claims.org, access.claims.act, access.claims.mandate),
            (None, None, None)
        );
        let id = tokens::unverified_payload(&res.id_token.unwrap()).unwrap();
        assert!(id.get("org_id").is_none() && id.get("roles").is_none() && id.get("act").is_none());
        let r1 = refresh(&w, &svc, &res.refresh_token.unwrap(), None, NOW + 1)
            .unwrap()
            .refresh_token
            .unwrap();
        // The service stops serving people on their own: the family ends.
        seed::set(&w.sql, "clients", "personal_use", "0", &[("id", "svc")]);
        let svc = crate::oidc::clients::get(&w.sql, &svc.id).unwrap().unwrap();
        assert_eq!(
            oauth(refresh(&w, &svc, &r1, None, NOW + 2)),
            OAuthCode::InvalidGrant
        );
    }

    #[test]
    fn end_all_ends_refresh_families_and_unused_codes_of_one_identity() {
        let w = World::new();
        let app = client(&w, json!({}));
        let ada = testkit::person(&w.sql, "ada@example.com", NOW);
        let bob = testkit::person(&w.sql, "bob@example.com", NOW);
        let scope = "openid offline_access";
        let ada_refresh = redeem(&w, &app, &code(&w, &app, &ada, scope, NOW), NOW)
            .unwrap()
            .refresh_token
            .unwrap();
        let ada_code = code(&w, &app, &ada, scope, NOW);
        let bob_refresh = redeem(&w, &app, &code(&w, &app, &bob, scope, NOW), NOW)
            .unwrap()
            .refresh_token
            .unwrap();
        let bob_code = code(&w, &app, &bob, scope, NOW);
        end_all(&w.sql, &ada.id, NOW + 1).unwrap();
        end_all(&w.sql, &ada.id, NOW + 1).unwrap();
        assert_eq!(
            oauth(refresh(&w, &app, &ada_refresh, None, NOW + 2)),
            OAuthCode::InvalidGrant
        );
        assert_eq!(
            oauth(redeem(&w, &app, &ada_code, NOW + 2)),
            OAuthCode::InvalidGrant
        );
        assert!(refresh(&w, &app, &bob_refresh, None, NOW + 2).is_ok());
        assert!(redeem(&w, &app, &bob_code, NOW + 2).is_ok());
    }
}
