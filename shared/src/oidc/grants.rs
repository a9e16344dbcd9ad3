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
use crate::store::{SqlStore, Value};
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

fn required<'a>(form: &'a Params, name: &str) -> Result<&'a str> {
    form.one(name)
        .map_err(|_| Error::oauth(OAuthCode::InvalidRequest, format!("`{name}` is repeated")))?
        .ok_or_else(|| Error::oauth(OAuthCode::InvalidRequest, format!("`{name}` is missing")))
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

/// `grant_type=authorization_code`.
pub fn authorization_code(
    env: &Env,
    config: &Config,
    client: &Client,
    form: &Params,
) -> Result<TokenResponse> {
    if !client.allows_grant("authorization_code") {
        return Err(Error::oauth(
            OAuthCode::UnauthorizedClient,
            "this client may not use authorization_code",
        ));
    }
    let code = required(form, "code")?;
    let redirect_uri = required(form, "redirect_uri")?;
    let verifier = required(form, "code_verifier")?;
    let code_hash = crypto::hash_secret(code);
    // What this exchange will issue is fixed before the claim, and recorded by
    // it, so that a replay can find and revoke it.
    let family_id = crypto::random_id()?;
    let access_jti = crypto::random_id()?;
    let rows = env.sql.execute(
        "UPDATE auth_codes SET used_at = ?, family_id = ?, access_jti = ? WHERE hash = ? AND used_at IS NULL \
         RETURNING client_id, identity_id, redirect_uri, scope, nonce, code_challenge, auth_time, amr, sid, expires_at",
        &[env.now.into(), family_id.clone().into(), access_jti.clone().into(), code_hash.clone().into()],
    )?;
    let Some(row) = rows.first() else {
        revoke_replayed_code(env, &code_hash)?;
        return Err(grant_error("The code is invalid or has been used."));
    };
    if row.text(0)? != client.id {
        return Err(grant_error("The code was issued to another client."));
    }
    if row.int(9)? <= env.now {
        return Err(grant_error("The code has expired."));
    }
    if row.text(2)? != redirect_uri {
        return Err(grant_error(
            "redirect_uri does not match the authorization request.",
        ));
    }
    let ok_verifier = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let challenge = crypto::b64url(&crypto::sha256(verifier.as_bytes()));
    if !ok_verifier || !crypto::ct_eq(challenge.as_bytes(), row.text(5)?.as_bytes()) {
        return Err(grant_error(
            "The PKCE code_verifier does not match the code_challenge.",
        ));
    }
    let grant = Grant {
        identity_id: row.text(1)?.to_owned(),
        scope: row.text(3)?.to_owned(),
        nonce: row.opt_text(4)?.map(str::to_owned),
        auth_time: row.int(6)?,
        amr: row.text(7)?.to_owned(),
        sid: row.text(8)?.to_owned(),
    };
    issue(env, config, client, &grant, &access_jti, Some(&family_id))
}

/// A code presented again: revoke what its first use issued (RFC 6749 §4.1.2).
fn revoke_replayed_code(env: &Env, code_hash: &str) -> Result<()> {
    let rows = env.sql.execute("SELECT family_id, access_jti, expires_at FROM auth_codes WHERE hash = ? AND used_at IS NOT NULL", &[code_hash.into()])?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    if let Some(family) = row.opt_text(0)? {
        env.sql.execute(
            "UPDATE refresh_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            &[env.now.into(), family.into()],
        )?;
    }
    if let Some(jti) = row.opt_text(1)? {
        // The access token lives at most an hour past the code's expiry.
        tokens::revoke_access(env, jti, row.int(2)? + 3600)?;
    }
    Ok(())
}

/// Ends everything an identity's past logins still hold at the token
/// endpoint: its refresh-token families are revoked and its unused codes
/// spent. After a password reset, nobody who signed in before can keep
/// refreshing. Each is one statement, and running them twice is harmless.
pub fn end_all(sql: &dyn SqlStore, identity_id: &str, now: i64) -> Result<()> {
    sql.execute(
        "UPDATE refresh_families SET revoked_at = ? WHERE identity_id = ? AND revoked_at IS NULL",
        &[now.into(), identity_id.into()],
    )?;
    sql.execute(
        "UPDATE auth_codes SET used_at = ? WHERE identity_id = ? AND used_at IS NULL",
        &[now.into(), identity_id.into()],
    )?;
    Ok(())
}

/// `grant_type=refresh_token`: rotate in one UPDATE; a token that is not the
/// family's current one (a reuse, or a race lost) revokes the family.
pub fn refresh_token(
    env: &Env,
    config: &Config,
    client: &Client,
    form: &Params,
) -> Result<TokenResponse> {
    if !client.allows_grant("refresh_token") {
        return Err(Error::oauth(
            OAuthCode::UnauthorizedClient,
            "this client may not use refresh_token",
        ));
    }
    let presented = crypto::hash_secret(required(form, "refresh_token")?);
    let next = crypto::random_token()?;
    let next_hash = crypto::hash_secret(&next);
    let rows = env.sql.execute(
        "UPDATE refresh_families SET previous_hash = current_hash, current_hash = ?, generation = generation + 1, last_used_at = ? \
         WHERE current_hash = ? AND client_id = ? AND revoked_at IS NULL AND last_used_at > ? AND created_at > ? \
         RETURNING id, identity_id, scope, auth_time, amr, sid",
        &[
            next_hash.into(),
            env.now.into(),
            presented.clone().into(),
            client.id.clone().into(),
            (env.now - client.refresh_idle_ttl).into(),
            (env.now - client.refresh_max_ttl).into(),
        ],
    )?;
    let Some(row) = rows.first() else {
        // Reuse of a rotated token, a token of another client, or an expired
        // family: whatever it was, the family is no longer trusted.
        env.sql.execute(
            "UPDATE refresh_families SET revoked_at = ? WHERE (current_hash = ? OR previous_hash = ?) AND revoked_at IS NULL",
            &[env.now.into(), presented.clone().into(), presented.into()],
        )?;
        return Err(grant_error(
            "The refresh token is invalid, expired, revoked or was used already.",
        ));
    };
    let granted = row.text(2)?.to_owned();
    let scope = match form
        .one("scope")
        .map_err(|_| Error::oauth(OAuthCode::InvalidRequest, "`scope` is repeated"))?
    {
        None => granted.clone(),
        Some(asked) => {
            let ok = asked
                .split_ascii_whitespace()
                .all(|s| granted.split_ascii_whitespace().any(|g| g == s));
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
        identity_id: row.text(1)?.to_owned(),
        scope,
        nonce: None,
        auth_time: row.int(3)?,
        amr: row.text(4)?.to_owned(),
        sid: row.text(5)?.to_owned(),
    };
    let mut response = issue(env, config, client, &grant, &crypto::random_id()?, None)?;
    response.refresh_token = Some(next);
    Ok(response)
}

/// `grant_type=client_credentials`: a confidential client acting for itself.
pub fn client_credentials(
    env: &Env,
    config: &Config,
    client: &Client,
    form: &Params,
) -> Result<TokenResponse> {
    if !client.confidential || !client.allows_grant("client_credentials") {
        return Err(Error::oauth(
            OAuthCode::UnauthorizedClient,
            "client_credentials needs a confidential client allowed to use it",
        ));
    }
    let asked = form
        .one("scope")
        .map_err(|_| Error::oauth(OAuthCode::InvalidRequest, "`scope` is repeated"))?;
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
            env.sql.execute(
                "INSERT INTO refresh_families (id, client_id, identity_id, scope, current_hash, auth_time, amr, sid, created_at, last_used_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    id.into(),
                    client.id.clone().into(),
                    who.id.clone().into(),
                    grant.scope.clone().into(),
                    crypto::hash_secret(&token).into(),
                    grant.auth_time.into(),
                    grant.amr.clone().into(),
                    grant.sid.clone().into(),
                    env.now.into(),
                    Value::Integer(env.now),
                ],
            )?;
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
