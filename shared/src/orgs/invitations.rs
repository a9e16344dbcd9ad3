//! Invitations: an admin invites an email address with roles; the person
//! accepts once, signed in with that verified address or by signing up with
//! it (the click proves it).
//!
//! Accepting writes the membership and the roles first, each in one
//! statement that reads the still-pending invitation and is harmless to
//! repeat, and then claims the invitation in one conditional UPDATE. However
//! many accepts race, the primary keys keep one membership and one row per
//! role, and exactly one of them wins the claim.

use serde::Serialize;
use serde_json::json;

use super::{Access, Level, record, services};
use crate::Env;
use crate::accounts::Auth;
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::{self, Identity};
use crate::mail::{self, Mail};
use crate::store::invitations::{self as store, Grant, Invitation};
use crate::store::organisations::{self, Organisation};
use crate::store::{SqlStore, memberships, role_assignments};
use crate::throttle;

/// Invitations work for seven days.
pub const TTL: i64 = 7 * 24 * 3600;

/// The most roles one invitation may carry.
const MAX_GRANTS: usize = 50;

/// What an admin asks for.
#[derive(Debug, Clone)]
pub struct Invite {
    /// The invited address (normalised on validation).
    pub email: String,
    /// The built-in role.
    pub role: Level,
    /// Service and project roles.
    pub grants: Vec<Grant>,
}

/// An invitation as admins see it.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// `inv_…`.
    pub id: String,
    /// The invited address.
    pub email: String,
    /// The built-in role it grants.
    pub role: String,
    /// The service and project roles it grants.
    pub grants: Vec<Grant>,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub state: String,
    /// When it stops working.
    pub expires_at: i64,
    /// Who invited.
    pub invited_by: String,
}

fn view(i: Invitation, now: i64) -> View {
    View {
        state: i.state_at(now).to_owned(),
        id: i.id,
        email: i.email,
        role: i.org_role,
        grants: i.grants,
        expires_at: i.expires_at,
        invited_by: i.invited_by,
    }
}

/// The organisation's invitations, newest first (admins).
pub fn list(db: &dyn SqlStore, access: &Access, now: i64) -> Result<Vec<View>> {
    access.require(Level::Admin)?;
    Ok(store::for_org(db, &access.org.id, 500)?
        .into_iter()
        .map(|i| view(i, now))
        .collect())
}

/// Invites someone and mails them the link (admins; owners to invite
/// owners). Everything is checked before anything is written.
pub fn invite(env: &Env, auth: &Auth, access: &Access, ask: &Invite) -> Result<View> {
    access.require_to_change(Level::Admin)?;
    if ask.role == Level::Owner {
        access.require(Level::Owner)?;
    }
    let email = identity::normalise_email(&ask.email)?;
    if ask.grants.len() > MAX_GRANTS {
        return Err(Error::bad_request(format!(
            "An invitation can carry at most {MAX_GRANTS} roles."
        )));
    }
    for g in &ask.grants {
        services::check_grant(env.sql, access, g)?;
    }
    let mut grants = ask.grants.clone();
    grants.sort_by(|a, b| {
        (&a.client_id, &a.project_id, &a.role).cmp(&(&b.client_id, &b.project_id, &b.role))
    });
    grants.dedup();
    throttle::reserve(
        env.sql,
        &throttle::recipient_key(&email),
        &auth.limits()?.recipient,
        env.now,
    )?;
    let token = crypto::random_token()?;
    let inv = Invitation {
        id: format!("inv_{}", crypto::random_id()?),
        org_id: access.org.id.clone(),
        email,
        org_role: ask.role.as_str().to_owned(),
        grants,
        invited_by: access.actor().to_owned(),
        state: "pending".into(),
        created_at: env.now,
        expires_at: env.now + TTL,
        accepted_by: None,
    };
    store::insert(env.sql, &inv, &crypto::hash_secret(&token))?;
    send(env, auth, access, &inv, &token)?;
    record(
        env.sql,
        &access.org.id,
        env.now,
        access.actor(),
        "invitation.created",
        Some(&inv.id),
        None,
        Some(&json!({ "email": inv.email, "role": inv.org_role, "grants": inv.grants })),
    )?;
    Ok(view(inv, env.now))
}

fn send(env: &Env, auth: &Auth, access: &Access, inv: &Invitation, token: &str) -> Result<()> {
    let mail = Mail::invitation(
        &auth.config,
        &inv.email,
        &access.org.name,
        &access.me.email,
        token,
    )?;
    mail::send(env, &auth.config, &mail)
}

/// Sends a pending (or expired) invitation again with a new link and a new
/// expiry; the old link stops working (admins).
pub fn resend(env: &Env, auth: &Auth, access: &Access, id: &str) -> Result<View> {
    access.require_to_change(Level::Admin)?;
    let inv = store::get(env.sql, &access.org.id, id)?.ok_or(Error::NotFound)?;
    if inv.state != "pending" {
        return Err(Error::Conflict(format!(
            "This invitation is {}; invite again instead.",
            inv.state
        )));
    }
    throttle::reserve(
        env.sql,
        &throttle::recipient_key(&inv.email),
        &auth.limits()?.recipient,
        env.now,
    )?;
    let token = crypto::random_token()?;
    let expires_at = env.now + TTL;
    if !store::renew(
        env.sql,
        &access.org.id,
        id,
        &crypto::hash_secret(&token),
        env.now,
        expires_at,
    )? {
        return Err(Error::Conflict(
            "This invitation was just accepted or revoked.".into(),
        ));
    }
    let inv = Invitation {
        expires_at,
        created_at: env.now,
        ..inv
    };
    send(env, auth, access, &inv, &token)?;
    record(
        env.sql,
        &access.org.id,
        env.now,
        access.actor(),
        "invitation.resent",
        Some(id),
        None,
        Some(&json!({ "email": inv.email, "expires_at": expires_at })),
    )?;
    Ok(view(inv, env.now))
}

/// Revokes a pending invitation (admins).
pub fn revoke(db: &dyn SqlStore, access: &Access, id: &str, now: i64) -> Result<()> {
    access.require_to_change(Level::Admin)?;
    let inv = store::get(db, &access.org.id, id)?.ok_or(Error::NotFound)?;
    if !store::revoke(db, &access.org.id, id)? {
        return Err(Error::Conflict(format!(
            "This invitation is {} and cannot be revoked.",
            inv.state_at(now)
        )));
    }
    record(
        db,
        &access.org.id,
        now,
        access.actor(),
        "invitation.revoked",
        Some(id),
        Some(&json!({ "state": "pending" })),
        Some(&json!({ "state": "revoked" })),
    )
}

/// A usable invitation and its organisation, for the acceptance page; a
/// dead link otherwise, saying why.
pub fn peek(db: &dyn SqlStore, token: &str, now: i64) -> Result<(Invitation, Organisation)> {
    let inv = store::by_token(db, &crypto::hash_secret(token))?
        .ok_or_else(|| Error::DeadLink("This invitation link is not valid.".into()))?;
    match inv.state_at(now) {
        "pending" => {}
        "accepted" => {
            return Err(Error::DeadLink(
                "This invitation has already been accepted.".into(),
            ));
        }
        "revoked" => {
            return Err(Error::DeadLink("This invitation was withdrawn.".into()));
        }
        _ => {
            return Err(Error::DeadLink(
                "This invitation has expired. Ask for a new one.".into(),
            ));
        }
    }
    let org = organisations::by_id(db, &inv.org_id)?
        .ok_or_else(|| Error::DeadLink("This organisation no longer exists.".into()))?;
    Ok((inv, org))
}

/// Accepts an invitation as a signed-in person, whose verified email must
/// be the invited one.
pub fn accept(db: &dyn SqlStore, who: &Identity, token: &str, now: i64) -> Result<Organisation> {
    let (inv, org) = peek(db, token, now)?;
    if !who.email_verified || who.email != inv.email {
        return Err(Error::Forbidden(
            "This invitation was sent to another email address. Sign in with that address to accept it."
                .into(),
        ));
    }
    join(db, who, token, &inv, org, now)
}

/// Accepts an invitation by signing up with the invited email: the click
/// proves the address, so the account starts verified. Returns the new
/// identity; the caller starts its session.
pub fn accept_new(
    db: &dyn SqlStore,
    auth: &Auth,
    token: &str,
    password: &str,
    form: &crate::web::Params,
    now: i64,
) -> Result<(Identity, Organisation)> {
    let (inv, org) = peek(db, token, now)?;
    if identity::by_email(db, &inv.email)?.is_some() {
        return Err(Error::Conflict(
            "You already have an account with this address. Sign in to accept the invitation."
                .into(),
        ));
    }
    crate::password::check_policy(password)?;
    let attributes = auth.schema()?.validate(form)?;
    let hash = crate::password::hash(password, auth.argon2()?)?;
    let who =
        identity::create(db, &inv.email, Some(&hash), &attributes, now)?.ok_or_else(|| {
            Error::Conflict(
                "You already have an account with this address. Sign in to accept the invitation."
                    .into(),
            )
        })?;
    identity::mark_verified(db, &who.id, now)?;
    let who = Identity {
        email_verified: true,
        ..who
    };
    let org = join(db, &who, token, &inv, org, now)?;
    Ok((who, org))
}

fn join(
    db: &dyn SqlStore,
    who: &Identity,
    token: &str,
    inv: &Invitation,
    org: Organisation,
    now: i64,
) -> Result<Organisation> {
    let hash = crypto::hash_secret(token);
    memberships::insert_from_invitation(db, &hash, &who.id, &who.email, now)?;
    role_assignments::insert_from_invitation(db, &hash, &who.id, &who.email, now)?;
    if store::claim(db, &hash, &who.id, &who.email, now)?.is_none() {
        return Err(Error::DeadLink(
            "This invitation has already been accepted.".into(),
        ));
    }
    record(
        db,
        &org.id,
        now,
        &who.id,
        "invitation.accepted",
        Some(&inv.id),
        None,
        Some(
            &json!({ "sub": who.id, "email": who.email, "role": inv.org_role, "grants": inv.grants }),
        ),
    )?;
    Ok(org)
}
