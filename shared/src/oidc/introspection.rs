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
use crate::oidc::grants::{self, OrgCheck};
use crate::oidc::tokens;
use crate::store::refresh_families;

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
        if let Some(fields) = body.as_object_mut() {
            fields.extend(v.claims.context_members()?);
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
    // A b2b family shows what its organisation or mandate grants now, as a
    // refresh would check it; one whose access has ended is refused at its
    // next refresh, so it is not active. A mandate's end caps the family.
    let acting = grants::check_org(
        env.sql,
        client,
        &family.identity_id,
        family.org_id.as_deref(),
        family.mandate_id.as_deref(),
        env.now,
    )?;
    if acting == OrgCheck::Ended {
        return Ok(json!({ "active": false }));
    }
    let (org, act, mandate) = acting.claims();
    let exp = mandate.as_ref().map_or(exp, |m| exp.min(m.expires_at));
    let mut body = json!({
        "active": true, "token_type": "refresh_token", "scope": family.scope,
        "client_id": family.client_id, "sub": family.identity_id, "iss": config.issuer,
        "exp": exp,
    });
    if let Some(fields) = body.as_object_mut() {
        fields.extend(tokens::context_members(
            org.as_ref(),
            act.as_ref(),
            mandate.as_ref(),
        )?);
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
