//! Which Lanyard identity an upstream person is:
//!
//! - a known `(issuer, subject)`: its identity;
//! - else an account with the same email: linked at once only when the
//!   upstream asserts `email_verified`, the connection has `trusted_email`
//!   and the local address is verified too; otherwise a pending link that
//!   the existing account's password must confirm ([`confirm`]). A second
//!   account is never made for an address that already has one;
//! - else a new account (verified when the upstream verified the address
//!   and the connection is trusted; attributes by the connection's mapping,
//!   only those of the profile schema).

use serde_json::{Map, Value as Json};

use super::{Connection, Upstream};
use crate::Env;
use crate::accounts::{self, Auth};
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::{self, Identity, ProfileSchema};
use crate::store::federated_identities::{self, FederatedIdentity};
use crate::store::pending_links::{self, PendingLink};

/// How long a pending link waits for the password.
pub const PENDING_TTL: i64 = 600;

/// The longest attribute value taken from an upstream claim.
const MAX_ATTRIBUTE_CHARS: usize = 200;

/// What the upstream person is here.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// This identity: sign it in.
    Identity(Identity),
    /// An existing account with the same email must be proven with its
    /// password first: the pending link's token (for `/social/link`).
    NeedsPassword {
        /// The token (256 bits) of the pending link.
        token: String,
        /// The existing account's email.
        email: String,
    },
}

fn link_row(conn: &Connection, up: &Upstream, identity_id: &str, now: i64) -> FederatedIdentity {
    FederatedIdentity {
        issuer: up.issuer.clone(),
        subject: up.subject.clone(),
        connection_id: conn.id.clone(),
        identity_id: identity_id.to_owned(),
        email: up.email.clone(),
        created_at: now,
        last_used_at: now,
    }
}

fn gone() -> Error {
    Error::Upstream(
        "The account this sign-in belongs to no longer exists. Please start again.".into(),
    )
}

/// Links the upstream person to `identity_id` (one statement; of racing
/// links one row is made); refused when it belongs to another account.
pub fn link_to(
    env: &Env,
    conn: &Connection,
    up: &Upstream,
    identity_id: &str,
) -> Result<FederatedIdentity> {
    let held = federated_identities::insert(env.sql, &link_row(conn, up, identity_id, env.now))?;
    if held.identity_id != identity_id {
        return Err(Error::Conflict(format!(
            "This {} account is already linked to another account here. Sign in with it, or unlink it there first.",
            conn.name
        )));
    }
    Ok(held)
}

/// Resolves the upstream person to an identity (see the module docs).
/// `return_to` is kept on a pending link.
pub fn resolve(
    env: &Env,
    auth: &Auth,
    conn: &Connection,
    up: &Upstream,
    return_to: Option<&str>,
) -> Result<Resolved> {
    if let Some(known) = federated_identities::get(env.sql, &up.issuer, &up.subject)? {
        federated_identities::touch(
            env.sql,
            &up.issuer,
            &up.subject,
            up.email.as_deref(),
            env.now,
        )?;
        return identity::by_id(env.sql, &known.identity_id)?
            .map(Resolved::Identity)
            .ok_or_else(gone);
    }
    let email = up
        .email
        .as_deref()
        .and_then(|e| identity::normalise_email(e).ok())
        .ok_or_else(|| {
            Error::Upstream(format!(
                "{} did not share an email address, and an account here needs one. Allow {} to share your email address, then try again.",
                conn.name, conn.name
            ))
        })?;
    let trusted = up.email_verified && conn.trusted_email;
    if let Some(existing) = identity::by_email(env.sql, &email)? {
        return existing_account(env, conn, up, existing, trusted, return_to);
    }
    let attributes = mapped_attributes(auth.schema()?, conn, &up.claims);
    let Some(created) = identity::create(env.sql, &email, None, &attributes, env.now)? else {
        // Someone took the address a moment ago: it is an existing account.
        let existing = identity::by_email(env.sql, &email)?.ok_or_else(gone)?;
        return existing_account(env, conn, up, existing, trusted, return_to);
    };
    if trusted {
        identity::mark_verified(env.sql, &created.id, env.now)?;
    }
    // Of two racing first sign-ins of one upstream person, one link is
    // made; the other signs in as its identity (its own new account, with
    // no way to sign in, is left unused).
    let held = federated_identities::insert(env.sql, &link_row(conn, up, &created.id, env.now))?;
    identity::by_id(env.sql, &held.identity_id)?
        .map(Resolved::Identity)
        .ok_or_else(gone)
}

fn existing_account(
    env: &Env,
    conn: &Connection,
    up: &Upstream,
    existing: Identity,
    trusted: bool,
    return_to: Option<&str>,
) -> Result<Resolved> {
    if trusted && existing.email_verified {
        link_to(env, conn, up, &existing.id)?;
        return Ok(Resolved::Identity(existing));
    }
    let token = crypto::random_token()?;
    pending_links::insert(
        env.sql,
        &crypto::hash_secret(&token),
        &PendingLink {
            identity_id: existing.id.clone(),
            issuer: up.issuer.clone(),
            subject: up.subject.clone(),
            connection_id: conn.id.clone(),
            email: up.email.clone(),
            return_to: return_to.map(str::to_owned),
            expires_at: env.now + PENDING_TTL,
        },
    )?;
    Ok(Resolved::NeedsPassword {
        token,
        email: existing.email,
    })
}

/// A pending link, for the page that asks for the password.
pub fn pending(env: &Env, token: &str) -> Result<(PendingLink, Identity)> {
    let dead = || {
        Error::DeadLink(
            "This link request has expired or was used already. Sign in with your provider again to start over."
                .into(),
        )
    };
    let p = pending_links::peek(env.sql, &crypto::hash_secret(token), env.now)?.ok_or_else(dead)?;
    let who = identity::by_id(env.sql, &p.identity_id)?.ok_or_else(dead)?;
    Ok((p, who))
}

/// Confirms a pending link with the existing account's password (the
/// login throttles apply), uses it once, and makes the link. Returns the
/// identity to sign in, the connection id and where to go next.
pub fn confirm(
    env: &Env,
    auth: &Auth,
    token: &str,
    password: &str,
    client: &str,
) -> Result<(Identity, PendingLink)> {
    let (_, who) = pending(env, token)?;
    let proven = accounts::prove_password(env, auth, &who.email, password, client)?;
    let p = pending_links::take(env.sql, &crypto::hash_secret(token), env.now)?
        .filter(|p| p.identity_id == proven.id)
        .ok_or_else(|| {
            Error::DeadLink(
                "This link request was used already. Sign in with your provider again to start over."
                    .into(),
            )
        })?;
    let held = federated_identities::insert(
        env.sql,
        &FederatedIdentity {
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            connection_id: p.connection_id.clone(),
            identity_id: proven.id.clone(),
            email: p.email.clone(),
            created_at: env.now,
            last_used_at: env.now,
        },
    )?;
    if held.identity_id != proven.id {
        return Err(Error::Conflict(
            "This upstream account was linked to another account in the meantime.".into(),
        ));
    }
    Ok((proven, p))
}

/// The attributes of a new account: for each `attribute → claim` of the
/// connection's mapping whose attribute the profile schema collects, the
/// claim's text (trimmed, at most 200 characters, no control characters).
pub fn mapped_attributes(
    schema: &ProfileSchema,
    conn: &Connection,
    claims: &Map<String, Json>,
) -> Map<String, Json> {
    let mut out = Map::new();
    for (attribute, claim) in &conn.settings.mapping {
        let Some(def) = schema.0.iter().find(|a| &a.name == attribute) else {
            continue;
        };
        let Some(value) = claims.get(claim).and_then(Json::as_str).map(str::trim) else {
            continue;
        };
        if value.is_empty() || value.chars().any(char::is_control) {
            continue;
        }
        let max = def.max_length.min(MAX_ATTRIBUTE_CHARS);
        let value: String = value.chars().take(max).collect();
        out.insert(attribute.clone(), Json::String(value));
    }
    out
}

/// Removes one upstream link of an identity, refused when it is the last
/// way to sign in (no password and no other link).
pub fn unlink(env: &Env, identity_id: &str, issuer: &str, subject: &str) -> Result<()> {
    let links = federated_identities::for_identity(env.sql, identity_id)?;
    if !links
        .iter()
        .any(|l| l.issuer == issuer && l.subject == subject)
    {
        return Err(Error::NotFound);
    }
    if federated_identities::unlink(env.sql, identity_id, issuer, subject)? {
        return Ok(());
    }
    Err(Error::Conflict(
        "This is the only way to sign in to your account. Set a password (Forgot your password? on the sign-in page) or link another provider first."
            .into(),
    ))
}
