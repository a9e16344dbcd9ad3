//! The `mandate_delegates` table: the members of an agent organisation
//! designated to use a mandate.

use super::SqlStore;
use crate::error::{Error, Result};

/// Makes exactly `subs` the delegates of a mandate: the new ones are added
/// first, then the others removed, each in one statement.
pub fn replace(
    db: &dyn SqlStore,
    mandate_id: &str,
    subs: &[String],
    by: &str,
    now: i64,
) -> Result<()> {
    let list = serde_json::to_string(subs).map_err(|e| Error::Internal(format!("subs: {e}")))?;
    db.execute(
        "INSERT INTO mandate_delegates (mandate_id, identity_id, added_by, added_at) \
         SELECT ?1, value, ?3, ?4 FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING",
        &[
            mandate_id.into(),
            list.as_str().into(),
            by.into(),
            now.into(),
        ],
    )?;
    db.execute(
        "DELETE FROM mandate_delegates WHERE mandate_id = ?1 \
         AND identity_id NOT IN (SELECT value FROM json_each(?2))",
        &[mandate_id.into(), list.into()],
    )?;
    Ok(())
}

/// The delegates of a mandate.
pub fn list(db: &dyn SqlStore, mandate_id: &str) -> Result<Vec<String>> {
    db.execute(
        "SELECT identity_id FROM mandate_delegates WHERE mandate_id = ? ORDER BY identity_id",
        &[mandate_id.into()],
    )?
    .decode(|r| r.string("identity_id"))
}

/// Deletes the delegates of the mandates an organisation gave or received.
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM mandate_delegates WHERE mandate_id IN \
         (SELECT id FROM mandates WHERE principal_org_id = ?1 OR agent_org_id = ?1)",
        &[org_id.into()],
    )?;
    Ok(())
}

/// Deletes the delegates of the mandates on a service (it is deleted, or
/// its id reused). Run before the mandates are deleted.
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM mandate_delegates WHERE mandate_id IN \
         (SELECT id FROM mandates WHERE client_id = ?1)",
        &[client_id.into()],
    )?;
    Ok(())
}

/// The mandates a person is a designated delegate of: (mandate id, when
/// added), for the export.
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<(String, i64)>> {
    db.execute(
        "SELECT mandate_id, added_at FROM mandate_delegates WHERE identity_id = ? ORDER BY added_at, mandate_id",
        &[identity_id.into()],
    )?
    .decode(|r| Ok((r.string("mandate_id")?, r.int("added_at")?)))
}

/// Removes a person from every mandate they are a delegate of (erasure);
/// the ids of those mandates.
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<String>> {
    db.execute(
        "DELETE FROM mandate_delegates WHERE identity_id = ? RETURNING mandate_id",
        &[identity_id.into()],
    )?
    .decode(|r| r.string("mandate_id"))
}

/// Replaces an erased person as the one who designated delegates.
pub fn anonymise_adder(db: &dyn SqlStore, identity_id: &str, erased: &str) -> Result<()> {
    db.execute(
        "UPDATE mandate_delegates SET added_by = ? WHERE added_by = ?",
        &[erased.into(), identity_id.into()],
    )?;
    Ok(())
}
