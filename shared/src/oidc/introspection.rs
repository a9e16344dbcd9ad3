//! Token introspection (RFC 7662) and revocation (RFC 7009) for an
//! authenticated client.
//!
//! RFC 7662 §2.2 leaves it to policy who may learn about a token. Here it is
//! the client the token was issued to, the resource servers registered for
//! that client, and the token's audience (the API an exchanged token is for,
//! RFC 8693): anyone else hears `{"active": false}`, the same answer as for a
//! forged, expired or unknown token.

use serde_json::{Value as Json, json};

use crate::Env;
use crate::config::Config;
use crate::crypto;
use crate::error::{Error, OAuthCode, Result};
use crate::oidc::clients::Client;
use crate::oidc::tokens::OrgClaims;
use crate::oidc::{grants, tokens};
use crate::store::{org_access, refresh_families};

/// What `client` may learn about `token` (RFC 7662 §2.2).
pub fn introspect(env: &Env, config: &Config, client: &Client, token: &str) -> Result<Json> {
    if !client.confidential {
        return Err(Error::oauth(
            OAuthCode::InvalidClient,
            "Introspection needs a confidential client.",
        ));
    }
    let entitled = |issued_to: &str| {
        issued_to == client.id || client.resource_server_for.iter().any(|c| c == issued_to)
    };
    if let Ok(v) = tokens::verify_access(env, config, token)
        && (entitled(&v.claims.client_id) || v.aud == client.id)
    {
        let mut body = json!({
            "active": true, "token_type": "Bearer", "scope": v.claims.scope,
            "client_id": v.claims.client_id, "sub": v.sub, "aud": v.aud, "iss": config.issuer,
            "exp": v.exp, "iat": v.iat, "jti": v.jti,
        });
        if let (Some(org), Some(fields)) = (&v.claims.org, body.as_object_mut()) {
            fields.extend(org.members()?);
        }
        return Ok(body);
    }
    // Not an access token for this client: perhaps one of its refresh tokens.
    let live = refresh_families::live(
        env.sql,
        &crypto::hash_secret(token),
        &client.id,
        grants::lifetimes(client),
        env.now,
    )?;
    let Some((family, exp)) = live else {
        return Ok(json!({ "active": false }));
    };
    // A b2b family shows what its organisation grants now; one whose access
    // has ended is refused at its next refresh, so it is not active.
    let org = match &family.org_id {
        None => None,
        Some(org_id) => {
            match org_access::grant(env.sql, org_id, &family.identity_id, &client.id)? {
                Some(g) => Some(OrgClaims::from(g)),
                None => return Ok(json!({ "active": false })),
            }
        }
    };
    let mut body = json!({
        "active": true, "token_type": "refresh_token", "scope": family.scope,
        "client_id": family.client_id, "sub": family.identity_id, "iss": config.issuer,
        "exp": exp,
    });
    if let (Some(org), Some(fields)) = (&org, body.as_object_mut()) {
        fields.extend(org.members()?);
    }
    Ok(body)
}

/// Revokes a refresh token (its whole family) or an access token of
/// `client`. Anything else is ignored: RFC 7009 §2.2 answers the same for
/// unknown and invalid tokens.
pub fn revoke(env: &Env, config: &Config, client: &Client, token: &str) -> Result<()> {
    let hash = crypto::hash_secret(token);
    if refresh_families::revoke_current(env.sql, &hash, &client.id, env.now)? {
        return Ok(());
    }
    if let Ok(v) = tokens::verify_access(env, config, token)
        && v.claims.client_id == client.id
    {
        tokens::revoke_access(env, &v.jti, v.exp)?;
    }
    Ok(())
}
