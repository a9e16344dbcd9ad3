//! The `memberships` table: who belongs to which organisation, with the
//! organisation-wide built-in role (`owner`, `admin`, `member`) and a status.
//!
//! Every change that could take away an organisation's last active owner is
//! one conditional statement ([`KEEPS_AN_OWNER`]): of two owners demoting
//! each other at once, one succeeds.

use super::organisations::Organisation;
use super::{Named, SqlStore};
use crate::error::Result;

/// The change leaves the organisation (`?1`) an active owner besides the
/// member (`?2`), or the member is not an active owner.
const KEEPS_AN_OWNER: &str = "(role != 'owner' OR status != 'active' OR EXISTS (SELECT 1 FROM memberships o \
     WHERE o.org_id = ?1 AND o.identity_id != ?2 AND o.role = 'owner' AND o.status = 'active'))";

/// A membership, with the member's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The organisation.
    pub org_id: String,
    /// The member.
    pub identity_id: String,
    /// The member's email.
    pub email: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// `active` or `suspended`.
    pub status: String,
    /// When they joined.
    pub joined_at: i64,
    /// Who invited them.
    pub invited_by: Option<String>,
}

const COLUMNS: &str =
    "m.org_id, m.identity_id, i.email, m.role, m.status, m.joined_at, m.invited_by";

fn decode(r: &Named<'_>) -> Result<Membership> {
    Ok(Membership {
        org_id: r.string("org_id")?,
        identity_id: r.string("identity_id")?,
        email: r.string("email")?,
        role: r.string("role")?,
        status: r.string("status")?,
        joined_at: r.int("joined_at")?,
        invited_by: r.opt_string("invited_by")?,
    })
}

/// Adds a member unless they already are one (`false` then).
pub fn insert(
    db: &dyn SqlStore,
    org_id: &str,
    identity_id: &str,
    role: &str,
    invited_by: Option<&str>,
    now: i64,
) -> Result<bool> {
    let rows = db.execute(
        "INSERT INTO memberships (org_id, identity_id, role, status, joined_at, invited_by) \
         VALUES (?, ?, ?, 'active', ?, ?) ON CONFLICT DO NOTHING RETURNING org_id",
        &[
            org_id.into(),
            identity_id.into(),
            role.into(),
            now.into(),
            invited_by.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// Makes the holder of a pending, unexpired invitation for `email` a member
/// with the invitation's role, unless they already are one. Safe to run any
/// number of times, concurrently: the primary key keeps one row.
pub fn insert_from_invitation(
    db: &dyn SqlStore,
    token_hash: &str,
    identity_id: &str,
    email: &str,
    now: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO memberships (org_id, identity_id, role, status, joined_at, invited_by) \
         SELECT org_id, ?1, org_role, 'active', ?2, invited_by FROM invitations \
         WHERE token_hash = ?3 AND state = 'pending' AND expires_at > ?2 AND email = ?4 \
         ON CONFLICT DO NOTHING",
        &[
            identity_id.into(),
            now.into(),
            token_hash.into(),
            email.into(),
        ],
    )?;
    Ok(())
}

/// One membership.
pub fn get(db: &dyn SqlStore, org_id: &str, identity_id: &str) -> Result<Option<Membership>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM memberships m JOIN identities i ON i.id = m.identity_id \
             WHERE m.org_id = ? AND m.identity_id = ?"
        ),
        &[org_id.into(), identity_id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// An organisation's members, by email.
pub fn list(db: &dyn SqlStore, org_id: &str) -> Result<Vec<Membership>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM memberships m JOIN identities i ON i.id = m.identity_id \
             WHERE m.org_id = ? ORDER BY i.email"
        ),
        &[org_id.into()],
    )?
    .decode(decode)
}

/// The organisations a person is a member of, with their membership.
pub fn organisations_of(
    db: &dyn SqlStore,
    identity_id: &str,
) -> Result<Vec<(Organisation, Membership)>> {
    let rows = db.execute(
        &format!(
            "SELECT o.id, o.slug, o.name, o.status AS org_status, o.created_by, o.created_at, {COLUMNS} \
             FROM memberships m JOIN organisations o ON o.id = m.org_id \
             JOIN identities i ON i.id = m.identity_id WHERE m.identity_id = ? ORDER BY o.name"
        ),
        &[identity_id.into()],
    )?;
    rows.decode(|r| {
        let org = Organisation {
            id: r.string("id")?,
            slug: r.string("slug")?,
            name: r.string("name")?,
            status: r.string("org_status")?,
            created_by: r.string("created_by")?,
            created_at: r.int("created_at")?,
        };
        Ok((org, decode(r)?))
    })
}

/// Changes the built-in role, unless that would take away the last active
/// owner: `false` then (or when there is no such member).
pub fn set_role(db: &dyn SqlStore, org_id: &str, identity_id: &str, role: &str) -> Result<bool> {
    let rows = db.execute(
        &format!(
            "UPDATE memberships SET role = ?3 WHERE org_id = ?1 AND identity_id = ?2 \
             AND (?3 = 'owner' OR {KEEPS_AN_OWNER}) RETURNING role"
        ),
        &[org_id.into(), identity_id.into(), role.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Suspends or reactivates a member, unless suspending takes away the last
/// active owner: `false` then (or when there is no such member).
pub fn set_status(
    db: &dyn SqlStore,
    org_id: &str,
    identity_id: &str,
    status: &str,
) -> Result<bool> {
    let rows = db.execute(
        &format!(
            "UPDATE memberships SET status = ?3 WHERE org_id = ?1 AND identity_id = ?2 \
             AND (?3 = 'active' OR {KEEPS_AN_OWNER}) RETURNING status"
        ),
        &[org_id.into(), identity_id.into(), status.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Removes a member, unless they are the last active owner: `false` then
/// (or when there is no such member).
pub fn remove(db: &dyn SqlStore, org_id: &str, identity_id: &str) -> Result<bool> {
    let rows = db.execute(
        &format!(
            "DELETE FROM memberships WHERE org_id = ?1 AND identity_id = ?2 AND {KEEPS_AN_OWNER} \
             RETURNING role"
        ),
        &[org_id.into(), identity_id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes every membership of an organisation.
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute("DELETE FROM memberships WHERE org_id = ?", &[org_id.into()])?;
    Ok(())
}

/// The organisations of which this person is the last active owner: (id,
/// name). Erasure is refused while there are any.
pub fn sole_owner_of(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<(String, String)>> {
    db.execute(
        "SELECT o.id, o.name FROM memberships m JOIN organisations o ON o.id = m.org_id \
         WHERE m.identity_id = ?1 AND m.role = 'owner' AND m.status = 'active' \
         AND NOT EXISTS (SELECT 1 FROM memberships x WHERE x.org_id = m.org_id \
             AND x.identity_id != ?1 AND x.role = 'owner' AND x.status = 'active') \
         ORDER BY o.name",
        &[identity_id.into()],
    )?
    .decode(|r| Ok((r.string("id")?, r.string("name")?)))
}

/// The memberships of a person, with or without an organisation row
/// (erasure removes them all): (organisation id, role).
pub fn of_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<(String, String)>> {
    db.execute(
        "SELECT org_id, role FROM memberships WHERE identity_id = ? ORDER BY org_id",
        &[identity_id.into()],
    )?
    .decode(|r| Ok((r.string("org_id")?, r.string("role")?)))
}

/// Replaces an erased person as the one who invited members.
pub fn anonymise_inviter(db: &dyn SqlStore, identity_id: &str, erased: &str) -> Result<()> {
    db.execute(
        "UPDATE memberships SET invited_by = ? WHERE invited_by = ?",
        &[erased.into(), identity_id.into()],
    )?;
    Ok(())
}
