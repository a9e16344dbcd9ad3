//! The `activations` table: which b2b applications (services) an
//! organisation uses, `requested`, `active` or `deactivated`.

use super::{Named, SqlStore};
use crate::error::Result;

/// An organisation's activation of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The organisation.
    pub org_id: String,
    /// The service (a b2b client).
    pub client_id: String,
    /// `requested`, `active` or `deactivated`.
    pub status: String,
    /// Who asked for it (an identity id, or `operator`).
    pub requested_by: Option<String>,
    /// When the status last changed.
    pub updated_at: i64,
}

const COLUMNS: &str = "org_id, client_id, status, requested_by, updated_at";

fn decode(r: &Named<'_>) -> Result<Activation> {
    Ok(Activation {
        org_id: r.string("org_id")?,
        client_id: r.string("client_id")?,
        status: r.string("status")?,
        requested_by: r.opt_string("requested_by")?,
        updated_at: r.int("updated_at")?,
    })
}

/// Sets the status of an organisation's activation, creating it if needed.
pub fn upsert(
    db: &dyn SqlStore,
    org_id: &str,
    client_id: &str,
    status: &str,
    by: &str,
    now: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO activations (org_id, client_id, status, requested_by, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (org_id, client_id) \
         DO UPDATE SET status = ?3, requested_by = ?4, updated_at = ?5",
        &[
            org_id.into(),
            client_id.into(),
            status.into(),
            by.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// Moves an activation from `from` to `to`, in one statement; `false` when
/// it was not in `from`.
pub fn transition(
    db: &dyn SqlStore,
    org_id: &str,
    client_id: &str,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool> {
    let rows = db.execute(
        "UPDATE activations SET status = ?4, updated_at = ?5 \
         WHERE org_id = ?1 AND client_id = ?2 AND status = ?3 RETURNING status",
        &[
            org_id.into(),
            client_id.into(),
            from.into(),
            to.into(),
            now.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// One activation.
pub fn get(db: &dyn SqlStore, org_id: &str, client_id: &str) -> Result<Option<Activation>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM activations WHERE org_id = ? AND client_id = ?"),
        &[org_id.into(), client_id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// An organisation's activations.
pub fn for_org(db: &dyn SqlStore, org_id: &str) -> Result<Vec<Activation>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM activations WHERE org_id = ? ORDER BY client_id"),
        &[org_id.into()],
    )?
    .decode(decode)
}

/// Every activation in this status, oldest change first (the operator's queue).
pub fn with_status(db: &dyn SqlStore, status: &str, limit: i64) -> Result<Vec<Activation>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM activations WHERE status = ? ORDER BY updated_at LIMIT ?"),
        &[status.into(), limit.into()],
    )?
    .decode(decode)
}

/// Deletes every activation of an organisation.
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute("DELETE FROM activations WHERE org_id = ?", &[org_id.into()])?;
    Ok(())
}

/// Deletes every activation of a client (it is deleted, or its id reused).
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM activations WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}

/// Replaces an erased person as the one who requested activations.
pub fn anonymise_requester(db: &dyn SqlStore, identity_id: &str, erased: &str) -> Result<()> {
    db.execute(
        "UPDATE activations SET requested_by = ? WHERE requested_by = ?",
        &[erased.into(), identity_id.into()],
    )?;
    Ok(())
}
