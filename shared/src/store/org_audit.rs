//! The `org_audit` table: every change to an organisation, append-only.

use serde_json::Value as Json;

use super::{Named, SqlStore};
use crate::error::Result;

/// One audit entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// Increasing id (the page cursor).
    pub id: i64,
    /// When, in Unix seconds.
    pub at: i64,
    /// Who: an identity id, or `operator`.
    pub actor: String,
    /// What, such as `member.role_changed`.
    pub action: String,
    /// What it was done to (a subject, a client id, an invitation id…).
    pub target: Option<String>,
    /// The state before, if any.
    pub before: Option<Json>,
    /// The state after, if any.
    pub after: Option<Json>,
}

fn json_col(r: &Named<'_>, name: &str) -> Result<Option<Json>> {
    Ok(r.opt_string(name)?
        .and_then(|s| serde_json::from_str(&s).ok()))
}

fn decode(r: &Named<'_>) -> Result<Entry> {
    Ok(Entry {
        id: r.int("id")?,
        at: r.int("at")?,
        actor: r.string("actor")?,
        action: r.string("action")?,
        target: r.opt_string("target")?,
        before: json_col(r, "before")?,
        after: json_col(r, "after")?,
    })
}

/// Appends an entry.
#[allow(clippy::too_many_arguments)]
pub fn insert(
    db: &dyn SqlStore,
    org_id: &str,
    at: i64,
    actor: &str,
    action: &str,
    target: Option<&str>,
    before: Option<&Json>,
    after: Option<&Json>,
) -> Result<()> {
    db.execute(
        "INSERT INTO org_audit (org_id, at, actor, action, target, before, after) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            org_id.into(),
            at.into(),
            actor.into(),
            action.into(),
            target.into(),
            before.map(Json::to_string).into(),
            after.map(Json::to_string).into(),
        ],
    )?;
    Ok(())
}

/// Entries older than `before` (an id; `None` for the newest), newest
/// first, at most `limit`.
pub fn page(
    db: &dyn SqlStore,
    org_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>> {
    db.execute(
        "SELECT id, at, actor, action, target, before, after FROM org_audit \
         WHERE org_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        &[
            org_id.into(),
            before.unwrap_or(i64::MAX).into(),
            limit.into(),
        ],
    )?
    .decode(decode)
}

/// Deletes an organisation's log (the organisation is gone).
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute("DELETE FROM org_audit WHERE org_id = ?", &[org_id.into()])?;
    Ok(())
}

/// Keeps every organisation's log without naming an erased person: their
/// id and address are replaced by `erased` wherever they appear (the actor,
/// the target, and inside the JSON before and after).
pub fn anonymise(db: &dyn SqlStore, identity_id: &str, email: &str, erased: &str) -> Result<()> {
    db.execute(
        "UPDATE org_audit SET \
         actor = replace(replace(actor, ?1, ?3), ?2, ?3), \
         target = replace(replace(target, ?1, ?3), ?2, ?3), \
         before = replace(replace(before, ?1, ?3), ?2, ?3), \
         after = replace(replace(after, ?1, ?3), ?2, ?3) \
         WHERE instr(actor, ?1) OR instr(actor, ?2) OR instr(coalesce(target, ''), ?1) \
         OR instr(coalesce(target, ''), ?2) OR instr(coalesce(before, ''), ?1) \
         OR instr(coalesce(before, ''), ?2) OR instr(coalesce(after, ''), ?1) \
         OR instr(coalesce(after, ''), ?2)",
        &[identity_id.into(), email.into(), erased.into()],
    )?;
    Ok(())
}
