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
use crate::identity::{self, Identity};
use crate::oidc::clients::Client;
use crate::oidc::keys::Alg;
use crate::oidc::tokens::{self, AccessClaims, Signer};
use crate::store::{SqlStore, auth_codes, refresh_families};
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
}

fn grant_error(msg: &str) -> Error {
    Error::oauth(OAuthCode::InvalidGrant, msg)
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
    }
}

/// What a login leaves on a code or refresh family.
struct Grant {
    identity_id: String,
    scope: String,
    nonce: Option<String>,
    auth_time: i64,
    amr: String,
    sid: String,
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
    let Some(claimed) = auth_codes::claim(env.sql, &code_hash, env.now, &family_id, &access_jti)?
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
    let grant = Grant {
        identity_id: claimed.identity_id,
        scope: claimed.scope,
        nonce: claimed.nonce,
        auth_time: claimed.auth_time,
        amr: claimed.amr,
        sid: claimed.sid,
    };
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
    let next = crypto::random_token()?;
    let next_hash = crypto::hash_secret(&next);
    let rotated = refresh_families::rotate(
        env.sql,
        &presented,
        &next_hash,
        &client.id,
        lifetimes(client),
        env.now,
    )?;
    let Some(family) = rotated else {
        // Reuse of a rotated token, a token of another client, or an expired
        // family: whatever it was, the family is no longer trusted.
        refresh_families::revoke_holding(env.sql, &presented, env.now)?;
        return Err(grant_error(
            "The refresh token is invalid, expired, revoked or was used already.",
        ));
    };
    let scope = match asked {
        None => family.scope.clone(),
        Some(asked) => {
            let ok = asked
                .split_ascii_whitespace()
                .all(|s| family.scope.split_ascii_whitespace().any(|g| g == s));
            if !ok {
                return Err(Error::oauth(
                    OAuthCode::InvalidScope,
                    "A refresh may only narrow the granted scope.",
                ));
            }
            asked.to_owned()
        }
    };
    let grant = Grant {
        identity_id: family.identity_id,
        scope,
        nonce: None,
        auth_time: family.auth_time,
        amr: family.amr,
        sid: family.sid,
    };
    let mut response = issue(env, config, client, &grant, &crypto::random_id()?, None)?;
    response.refresh_token = Some(next);
    Ok(response)
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
    let who = identity::by_id(env.sql, &grant.identity_id)?
        .ok_or_else(|| grant_error("The account no longer exists."))?;
    // Each token follows the client's choice of algorithm (ES256 by default).
    let access_alg = Alg::from_name(&client.access_token_alg).unwrap_or(Alg::Es256);
    let signer = Signer::load(env, config, access_alg)?;
    let custom = AccessClaims {
        client_id: client.id.clone(),
        scope: grant.scope.clone(),
        auth_time: Some(grant.auth_time),
        sid: Some(grant.sid.clone()),
    };
    let mut claims = tokens::claims(
        custom,
        config,
        &who.id,
        &client.id,
        env.now,
        client.access_token_ttl,
    )?;
    claims.jwt_id = Some(access_jti.to_owned());
    let access_token = signer.sign(claims, "at+jwt")?;
    let scopes: Vec<&str> = grant.scope.split_ascii_whitespace().collect();
    let id_token = if scopes.contains(&"openid") {
        let alg = Alg::from_name(&client.id_token_alg).unwrap_or(Alg::Es256);
        let mut extra = user_claims(&who, &scopes);
        extra.insert("auth_time".into(), grant.auth_time.into());
        extra.insert("acr".into(), "urn:lanyard:acr:pwd".into());
        extra.insert(
            "amr".into(),
            grant
                .amr
                .split_ascii_whitespace()
                .collect::<Vec<_>>()
                .into(),
        );
        extra.insert("sid".into(), grant.sid.clone().into());
        extra.insert("at_hash".into(), tokens::at_hash(alg, &access_token).into());
        extra.remove("sub");
        let mut c = tokens::claims(
            extra,
            config,
            &who.id,
            &client.id,
            env.now,
            ID_TOKEN_TTL.min(client.access_token_ttl.max(300)),
        )?;
        c.nonce = grant.nonce.clone();
        if alg == access_alg {
            Some(signer.sign(c, "JWT")?)
        } else {
            Some(Signer::load(env, config, alg)?.sign(c, "JWT")?)
        }
    } else {
        None
    };
    let refresh_token = match family_id {
        Some(id) if scopes.contains(&"offline_access") && client.allows_grant("refresh_token") => {
            let token = crypto::random_token()?;
            let family = refresh_families::Family {
                id: id.to_owned(),
                client_id: client.id.clone(),
                identity_id: who.id.clone(),
                scope: grant.scope.clone(),
                auth_time: grant.auth_time,
                amr: grant.amr.clone(),
                sid: grant.sid.clone(),
            };
            refresh_families::insert(env.sql, &family, &crypto::hash_secret(&token), env.now)?;
            Some(token)
        }
        _ => None,
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: client.access_token_ttl,
        scope: grant.scope.clone(),
        id_token,
        refresh_token,
    })
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
