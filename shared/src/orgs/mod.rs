//! Customer organisations (docs/organisations.md): an organisation's
//! members and their built-in roles, its invitations, the services (b2b
//! clients) it activates, its projects, the roles it gives, and its audit log.
//!
//! Every rule is enforced here, whatever the surface (pages, JSON API,
//! bearer tokens, the operator's API):
//!
//! - `owner` > `admin` > `member` ([`Level`]); [`Access::require`] checks it;
//! - anything of an organisation the caller is not an active member of is
//!   [`Error::NotFound`], never `Forbidden`, so organisations cannot be
//!   enumerated ([`open`]);
//! - the last active owner cannot go: the store refuses it in the same
//!   statement as the change;
//! - everything is validated before the first write, and multi-statement
//!   changes write the new rows before the rows that make them count.

pub mod invitations;
pub mod mandates;
pub mod members;
pub mod services;

use serde_json::{Value as Json, json};

use crate::config::{self, Variables};
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::store::organisations::{self as store, Organisation};
use crate::store::{
    SqlStore, activations, connections, domain_claims, invitations as inv_store, mandate_delegates,
    mandates as mandate_store, memberships, org_audit, projects, role_assignments,
};

pub use crate::store::memberships::Membership;
pub use crate::store::org_audit::Entry;

/// Who an audit entry names when the operator acted.
pub const OPERATOR: &str = "operator";

/// Slugs that would collide with the pages' own paths.
const RESERVED_SLUGS: &[&str] = &[
    "api",
    "new",
    "join",
    "invitations",
    "mandates",
    "admin",
    "static",
    "orgs",
    "settings",
    "create",
];

/// The organisation-wide built-in roles, in order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Sees the organisation and their own roles.
    Member,
    /// Manages members, invitations, roles, projects and activations.
    Admin,
    /// Also manages owners, and may delete the organisation.
    Owner,
}

impl Level {
    /// Reads `owner`, `admin` or `member`.
    pub fn parse(s: &str) -> Result<Level> {
        match s {
            "owner" => Ok(Level::Owner),
            "admin" => Ok(Level::Admin),
            "member" => Ok(Level::Member),
            _ => Err(Error::bad_request(
                "The organisation role must be owner, admin or member.",
            )),
        }
    }

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Owner => "owner",
            Level::Admin => "admin",
            Level::Member => "member",
        }
    }
}

/// The operator's organisation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Whether people may create organisations themselves
    /// (`org_self_service`, default true).
    pub self_service: bool,
}

impl Policy {
    /// Reads `org_self_service`.
    pub fn load(vars: &dyn Variables) -> Result<Policy> {
        let self_service = match config::optional(vars, "org_self_service")?.as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(Error::config("org_self_service", "use true or false")),
        };
        Ok(Policy { self_service })
    }
}

/// An active member acting in their organisation.
#[derive(Debug, Clone)]
pub struct Access {
    /// The organisation.
    pub org: Organisation,
    /// The caller's own membership.
    pub me: Membership,
}

impl Access {
    /// The caller's built-in role.
    pub fn level(&self) -> Level {
        Level::parse(&self.me.role).unwrap_or(Level::Member)
    }

    /// Refuses with 403 unless the caller holds at least `level`.
    pub fn require(&self, level: Level) -> Result<()> {
        if self.level() < level {
            return Err(Error::Forbidden(format!(
                "This needs the {} role in {}.",
                level.as_str(),
                self.org.name
            )));
        }
        Ok(())
    }

    /// Like [`Access::require`], and refuses changes to an organisation the
    /// operator suspended.
    pub fn require_to_change(&self, level: Level) -> Result<()> {
        self.require(level)?;
        if !self.org.is_active() {
            return Err(Error::Forbidden(
                "This organisation is suspended by the operator; nothing can be changed.".into(),
            ));
        }
        Ok(())
    }

    /// The caller's subject id.
    pub fn actor(&self) -> &str {
        &self.me.identity_id
    }
}

/// The caller's access to the organisation with this slug: 404 unless they
/// are an active member of it.
pub fn open(db: &dyn SqlStore, slug: &str, who: &Identity) -> Result<Access> {
    let org = store::by_slug(db, slug)?.ok_or(Error::NotFound)?;
    let me = memberships::get(db, &org.id, &who.id)?
        .filter(|m| m.status == "active")
        .ok_or(Error::NotFound)?;
    Ok(Access { org, me })
}

/// The organisations a person belongs to, with their membership.
pub fn mine(db: &dyn SqlStore, who: &Identity) -> Result<Vec<(Organisation, Membership)>> {
    memberships::organisations_of(db, &who.id)
}

/// A validated display name: trimmed, 1–100 characters, no control characters.
pub fn check_name(raw: &str, what: &str) -> Result<String> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err(Error::bad_request(format!("Enter a {what}.")));
    }
    if len > 100 {
        return Err(Error::bad_request(format!(
            "The {what} is too long (at most 100 characters)."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::bad_request(format!(
            "The {what} cannot contain control characters."
        )));
    }
    Ok(name.to_owned())
}

/// A validated slug: 3–40 of `a-z`, `0-9` and `-`, not starting or ending
/// with `-`, and not one of the pages' own paths.
pub fn check_slug(raw: &str) -> Result<String> {
    let slug = raw.trim();
    let ok = (3..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if !ok {
        return Err(Error::bad_request(
            "The short name must be 3 to 40 lower-case letters, digits or hyphens, \
             not starting or ending with a hyphen.",
        ));
    }
    if RESERVED_SLUGS.contains(&slug) {
        return Err(Error::Conflict(format!(
            "The short name “{slug}” is taken. Choose another."
        )));
    }
    Ok(slug.to_owned())
}

/// Creates an organisation with `owner` as its owner. `actor` is the owner
/// when they create it themselves, or [`OPERATOR`].
pub fn create(
    db: &dyn SqlStore,
    owner: &Identity,
    actor: &str,
    name: &str,
    slug: &str,
    now: i64,
) -> Result<Organisation> {
    let name = check_name(name, "organisation name")?;
    let slug = check_slug(slug)?;
    let org = Organisation {
        id: format!("org_{}", crypto::random_id()?),
        slug,
        name,
        status: "active".into(),
        created_by: actor.to_owned(),
        created_at: now,
    };
    // The owner's membership first: until the organisation row exists it
    // grants nothing, and a taken slug leaves nothing behind but it, which
    // is removed again.
    memberships::insert(db, &org.id, &owner.id, "owner", None, now)?;
    if !store::insert(db, &org)? {
        memberships::delete_for_org(db, &org.id)?;
        return Err(Error::Conflict(format!(
            "The short name “{}” is taken. Choose another.",
            org.slug
        )));
    }
    record(
        db,
        &org.id,
        now,
        actor,
        "organisation.created",
        Some(&org.id),
        None,
        Some(&json!({ "name": org.name, "slug": org.slug, "owner": owner.id })),
    )?;
    Ok(org)
}

/// Creates an organisation for a signed-in person, under the operator's
/// policy: it needs a verified email, and self-service creation on.
pub fn create_own(
    db: &dyn SqlStore,
    policy: Policy,
    who: &Identity,
    name: &str,
    slug: &str,
    now: i64,
) -> Result<Organisation> {
    if !policy.self_service {
        return Err(Error::Forbidden(
            "Organisations are created by the operator here. Ask them for one.".into(),
        ));
    }
    if !who.email_verified {
        return Err(Error::Forbidden(
            "Verify your email address before you create an organisation.".into(),
        ));
    }
    create(db, who, &who.id, name, slug, now)
}

/// Renames the organisation (admins).
pub fn rename(db: &dyn SqlStore, access: &Access, name: &str, now: i64) -> Result<Organisation> {
    access.require_to_change(Level::Admin)?;
    let name = check_name(name, "organisation name")?;
    store::rename(db, &access.org.id, &name, now)?;
    record(
        db,
        &access.org.id,
        now,
        access.actor(),
        "organisation.renamed",
        Some(&access.org.id),
        Some(&json!({ "name": access.org.name })),
        Some(&json!({ "name": name })),
    )?;
    Ok(Organisation {
        name,
        ..access.org.clone()
    })
}

/// Deletes the organisation and everything in it (owners). The
/// organisation row goes first, so access ends at once.
pub fn delete(db: &dyn SqlStore, access: &Access, now: i64) -> Result<()> {
    access.require(Level::Owner)?;
    let id = &access.org.id;
    mandates::record_deletion(db, &access.org, access.actor(), now)?;
    store::delete(db, id)?;
    mandate_delegates::delete_for_org(db, id)?;
    mandate_store::delete_for_org(db, id)?;
    domain_claims::delete_for_org(db, id)?;
    connections::delete_for_org(db, id)?;
    role_assignments::delete_for_org(db, id)?;
    projects::delete_for_org(db, id)?;
    activations::delete_for_org(db, id)?;
    inv_store::delete_for_org(db, id)?;
    memberships::delete_for_org(db, id)?;
    org_audit::delete_for_org(db, id)
}

/// The operator suspends (`false`) or resumes (`true`) an organisation.
/// Suspended, it issues no tokens and its refresh tokens stop working.
pub fn set_active(db: &dyn SqlStore, org_id: &str, active: bool, now: i64) -> Result<Organisation> {
    let before = store::by_id(db, org_id)?.ok_or(Error::NotFound)?;
    let status = if active { "active" } else { "suspended" };
    store::set_status(db, org_id, status, now)?;
    record(
        db,
        org_id,
        now,
        OPERATOR,
        if active {
            "organisation.resumed"
        } else {
            "organisation.suspended"
        },
        Some(org_id),
        Some(&json!({ "status": before.status })),
        Some(&json!({ "status": status })),
    )?;
    Ok(Organisation {
        status: status.into(),
        ..before
    })
}

/// Every organisation, for the operator.
pub fn all(db: &dyn SqlStore) -> Result<Vec<Organisation>> {
    store::list(db, 1000)
}

/// Appends to the organisation's audit log.
#[allow(clippy::too_many_arguments)]
pub fn record(
    db: &dyn SqlStore,
    org_id: &str,
    now: i64,
    actor: &str,
    action: &str,
    target: Option<&str>,
    before: Option<&Json>,
    after: Option<&Json>,
) -> Result<()> {
    org_audit::insert(db, org_id, now, actor, action, target, before, after)
}

/// A page of the audit log, newest first (admins).
pub fn audit(
    db: &dyn SqlStore,
    access: &Access,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>> {
    access.require(Level::Admin)?;
    org_audit::page(db, &access.org.id, before, limit.clamp(1, 500))
}

/// The whole audit log, newest first (admins), for export.
pub fn audit_export(db: &dyn SqlStore, access: &Access) -> Result<Vec<Entry>> {
    access.require(Level::Admin)?;
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = org_audit::page(db, &access.org.id, before, 500)?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        let done = page.len() < 500;
        out.extend(page);
        if done {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod mandate_tests;
#[cfg(test)]
mod tests;
