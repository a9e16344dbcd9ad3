//! Members: their built-in roles, suspension, removal, leaving, and the
//! transfer of ownership.

use serde::Serialize;
use serde_json::json;

use super::{Access, Level, record};
use crate::error::{Error, Result};
use crate::store::role_assignments::{self, Assignment};
use crate::store::{SqlStore, memberships};

/// A member as admins see them.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// Subject id.
    pub sub: String,
    /// Email.
    pub email: String,
    /// Built-in role.
    pub role: String,
    /// `active` or `suspended`.
    pub status: String,
    /// When they joined.
    pub joined_at: i64,
    /// Their service and project roles.
    pub roles: Vec<Assignment>,
}

/// A change to a member.
#[derive(Debug, Clone, Copy, Default)]
pub struct Change {
    /// A new built-in role.
    pub role: Option<Level>,
    /// Suspend (`false`) or reactivate (`true`).
    pub active: Option<bool>,
}

const LAST_OWNER: &str =
    "An organisation always keeps an active owner. Make someone else owner first.";

/// Every member with their roles (admins).
pub fn list(db: &dyn SqlStore, access: &Access) -> Result<Vec<Member>> {
    access.require(Level::Admin)?;
    let assignments = role_assignments::for_org(db, &access.org.id)?;
    Ok(memberships::list(db, &access.org.id)?
        .into_iter()
        .map(|m| Member {
            roles: assignments
                .iter()
                .filter(|a| a.identity_id == m.identity_id)
                .cloned()
                .collect(),
            sub: m.identity_id,
            email: m.email,
            role: m.role,
            status: m.status,
            joined_at: m.joined_at,
        })
        .collect())
}

/// The member `sub` of the caller's organisation, 404 if none.
fn target(db: &dyn SqlStore, access: &Access, sub: &str) -> Result<memberships::Membership> {
    memberships::get(db, &access.org.id, sub)?.ok_or(Error::NotFound)
}

/// Whether the caller may manage this member: admins manage members and
/// admins, only owners manage owners (or make someone one).
fn may_manage(access: &Access, their_role: &str, new_role: Option<Level>) -> Result<()> {
    access.require_to_change(Level::Admin)?;
    if their_role == "owner" || new_role == Some(Level::Owner) {
        access.require(Level::Owner)?;
    }
    Ok(())
}

/// Changes a member's built-in role or status.
pub fn change(
    db: &dyn SqlStore,
    access: &Access,
    sub: &str,
    change: Change,
    now: i64,
) -> Result<()> {
    access.require_to_change(Level::Admin)?;
    let them = target(db, access, sub)?;
    may_manage(access, &them.role, change.role)?;
    let org = &access.org.id;
    if let Some(role) = change.role
        && role.as_str() != them.role
    {
        if !memberships::set_role(db, org, sub, role.as_str())? {
            return Err(Error::Conflict(LAST_OWNER.into()));
        }
        record(
            db,
            org,
            now,
            access.actor(),
            "member.role_changed",
            Some(sub),
            Some(&json!({ "role": them.role })),
            Some(&json!({ "role": role.as_str() })),
        )?;
    }
    if let Some(active) = change.active {
        let status = if active { "active" } else { "suspended" };
        if status != them.status {
            if !memberships::set_status(db, org, sub, status)? {
                return Err(Error::Conflict(LAST_OWNER.into()));
            }
            record(
                db,
                org,
                now,
                access.actor(),
                if active {
                    "member.reactivated"
                } else {
                    "member.suspended"
                },
                Some(sub),
                Some(&json!({ "status": them.status })),
                Some(&json!({ "status": status })),
            )?;
        }
    }
    Ok(())
}

/// Removes a member, or the caller leaves (`sub` is themselves). Their
/// roles go after the membership, which is what grants them.
pub fn remove(db: &dyn SqlStore, access: &Access, sub: &str, now: i64) -> Result<()> {
    let leaving = sub == access.actor();
    if !leaving {
        access.require_to_change(Level::Admin)?;
    }
    let them = target(db, access, sub)?;
    if !leaving {
        may_manage(access, &them.role, None)?;
    }
    let org = &access.org.id;
    if !memberships::remove(db, org, sub)? {
        return Err(Error::Conflict(LAST_OWNER.into()));
    }
    role_assignments::delete_for_member(db, org, sub)?;
    record(
        db,
        org,
        now,
        access.actor(),
        if leaving {
            "member.left"
        } else {
            "member.removed"
        },
        Some(sub),
        Some(&json!({ "email": them.email, "role": them.role })),
        None,
    )
}

/// Makes `sub` an owner, then the caller an admin: in that order, so the
/// organisation has an owner throughout.
pub fn transfer(db: &dyn SqlStore, access: &Access, sub: &str, now: i64) -> Result<()> {
    access.require_to_change(Level::Owner)?;
    if sub == access.actor() {
        return Err(Error::bad_request("You already own this organisation."));
    }
    let them = target(db, access, sub)?;
    if them.status != "active" {
        return Err(Error::Conflict(
            "Ownership can only go to an active member.".into(),
        ));
    }
    change(
        db,
        access,
        sub,
        Change {
            role: Some(Level::Owner),
            active: None,
        },
        now,
    )?;
    change(
        db,
        access,
        access.actor(),
        Change {
            role: Some(Level::Admin),
            active: None,
        },
        now,
    )
}
