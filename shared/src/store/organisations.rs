//! The `organisations` table: customer organisations, keyed by a random id
//! with a unique slug. Deleting one deletes this row first: every access
//! check joins it, so whatever rows are left behind grant nothing.

use super::{Named, SqlStore};
use crate::error::Result;

/// An organisation, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Organisation {
    /// `org_…`.
    pub id: String,
    /// The unique, URL-safe name.
    pub slug: String,
    /// The display name.
    pub name: String,
    /// `active` or `suspended` (by the operator).
    pub status: String,
    /// The identity that created it, or `operator`.
    pub created_by: String,
    /// When.
    pub created_at: i64,
}

impl Organisation {
    /// Whether the operator has not suspended it.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

const COLUMNS: &str = "id, slug, name, status, created_by, created_at";

fn decode(r: &Named<'_>) -> Result<Organisation> {
    Ok(Organisation {
        id: r.string("id")?,
        slug: r.string("slug")?,
        name: r.string("name")?,
        status: r.string("status")?,
        created_by: r.string("created_by")?,
        created_at: r.int("created_at")?,
    })
}

/// Inserts an organisation unless its slug is taken (`false` then), in one
/// statement: two requests racing for one slug create one row.
pub fn insert(db: &dyn SqlStore, org: &Organisation) -> Result<bool> {
    let rows = db.execute(
        "INSERT INTO organisations (id, slug, name, status, created_by, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (slug) DO NOTHING RETURNING id",
        &[
            org.id.as_str().into(),
            org.slug.as_str().into(),
            org.name.as_str().into(),
            org.status.as_str().into(),
            org.created_by.as_str().into(),
            org.created_at.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// The organisation with this slug.
pub fn by_slug(db: &dyn SqlStore, slug: &str) -> Result<Option<Organisation>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM organisations WHERE slug = ?"),
        &[slug.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// The organisation with this id.
pub fn by_id(db: &dyn SqlStore, id: &str) -> Result<Option<Organisation>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM organisations WHERE id = ?"),
        &[id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Every organisation, by slug, at most `limit`.
pub fn list(db: &dyn SqlStore, limit: i64) -> Result<Vec<Organisation>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM organisations ORDER BY slug LIMIT ?"),
        &[limit.into()],
    )?
    .decode(decode)
}

/// Renames an organisation.
pub fn rename(db: &dyn SqlStore, id: &str, name: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE organisations SET name = ?, updated_at = ? WHERE id = ?",
        &[name.into(), now.into(), id.into()],
    )?;
    Ok(())
}

/// Sets the status; `false` when there is no such organisation.
pub fn set_status(db: &dyn SqlStore, id: &str, status: &str, now: i64) -> Result<bool> {
    let rows = db.execute(
        "UPDATE organisations SET status = ?, updated_at = ? WHERE id = ? RETURNING id",
        &[status.into(), now.into(), id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes the organisation row.
pub fn delete(db: &dyn SqlStore, id: &str) -> Result<()> {
    db.execute("DELETE FROM organisations WHERE id = ?", &[id.into()])?;
    Ok(())
}

/// Replaces an erased person as the creator of organisations.
pub fn anonymise_creator(db: &dyn SqlStore, identity_id: &str, erased: &str) -> Result<()> {
    db.execute(
        "UPDATE organisations SET created_by = ? WHERE created_by = ?",
        &[erased.into(), identity_id.into()],
    )?;
    Ok(())
}
