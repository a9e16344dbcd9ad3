//! The `projects` table: named sub-scopes (sites) of a service an
//! organisation has activated.

use super::{Named, SqlStore};
use crate::error::Result;

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Project {
    /// `prj_…`.
    pub id: String,
    /// The organisation.
    pub org_id: String,
    /// The service it belongs to.
    pub client_id: String,
    /// Its name, unique within the organisation and service.
    pub name: String,
    /// When it was created.
    pub created_at: i64,
}

const COLUMNS: &str = "id, org_id, client_id, name, created_at";

fn decode(r: &Named<'_>) -> Result<Project> {
    Ok(Project {
        id: r.string("id")?,
        org_id: r.string("org_id")?,
        client_id: r.string("client_id")?,
        name: r.string("name")?,
        created_at: r.int("created_at")?,
    })
}

/// Inserts a project unless the name is taken for that service (`false` then).
pub fn insert(db: &dyn SqlStore, p: &Project) -> Result<bool> {
    let rows = db.execute(
        "INSERT INTO projects (id, org_id, client_id, name, created_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT DO NOTHING RETURNING id",
        &[
            p.id.as_str().into(),
            p.org_id.as_str().into(),
            p.client_id.as_str().into(),
            p.name.as_str().into(),
            p.created_at.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// One project of an organisation.
pub fn get(db: &dyn SqlStore, org_id: &str, id: &str) -> Result<Option<Project>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM projects WHERE org_id = ? AND id = ?"),
        &[org_id.into(), id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// An organisation's projects, by service and name.
pub fn for_org(db: &dyn SqlStore, org_id: &str) -> Result<Vec<Project>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM projects WHERE org_id = ? ORDER BY client_id, name"),
        &[org_id.into()],
    )?
    .decode(decode)
}

/// Deletes a project; `false` when there was none.
pub fn delete(db: &dyn SqlStore, org_id: &str, id: &str) -> Result<bool> {
    let rows = db.execute(
        "DELETE FROM projects WHERE org_id = ? AND id = ? RETURNING id",
        &[org_id.into(), id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes every project of an organisation.
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute("DELETE FROM projects WHERE org_id = ?", &[org_id.into()])?;
    Ok(())
}

/// Deletes every project of a client (it is deleted, or its id reused).
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM projects WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}
