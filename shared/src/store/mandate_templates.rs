//! The `mandate_templates` table: the operator's mandate presets.

use super::{Named, SqlStore};
use crate::error::{Error, Result};

/// A template: a name, a service, roles of its catalogue, a validity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Template {
    /// `tpl_…`.
    pub id: String,
    /// What people see ("Accountant").
    pub name: String,
    /// The service.
    pub client_id: String,
    /// Roles of its catalogue.
    pub roles: Vec<String>,
    /// Days a mandate made from it lasts.
    pub days: i64,
    /// When it was created.
    pub created_at: i64,
}

const COLUMNS: &str = "id, name, client_id, roles, days, created_at";

fn decode(r: &Named<'_>) -> Result<Template> {
    Ok(Template {
        id: r.string("id")?,
        name: r.string("name")?,
        client_id: r.string("client_id")?,
        roles: serde_json::from_str(r.text("roles")?).unwrap_or_default(),
        days: r.int("days")?,
        created_at: r.int("created_at")?,
    })
}

/// Stores a template.
pub fn insert(db: &dyn SqlStore, t: &Template) -> Result<()> {
    let roles =
        serde_json::to_string(&t.roles).map_err(|e| Error::Internal(format!("roles: {e}")))?;
    db.execute(
        "INSERT INTO mandate_templates (id, name, client_id, roles, days, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        &[
            t.id.as_str().into(),
            t.name.as_str().into(),
            t.client_id.as_str().into(),
            roles.into(),
            t.days.into(),
            t.created_at.into(),
        ],
    )?;
    Ok(())
}

/// One template.
pub fn get(db: &dyn SqlStore, id: &str) -> Result<Option<Template>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM mandate_templates WHERE id = ?"),
        &[id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Every template, by name.
pub fn list(db: &dyn SqlStore) -> Result<Vec<Template>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM mandate_templates ORDER BY name, id"),
        &[],
    )?
    .decode(decode)
}

/// Deletes a template; `false` when there was none.
pub fn delete(db: &dyn SqlStore, id: &str) -> Result<bool> {
    let rows = db.execute(
        "DELETE FROM mandate_templates WHERE id = ? RETURNING id",
        &[id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes the templates of a service (it is deleted, or its id reused).
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM mandate_templates WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}
