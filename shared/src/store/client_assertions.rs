//! The `client_assertions` table: the `jti` of each `private_key_jwt`
//! assertion, kept until the assertion expires, so that it is accepted once.

use super::SqlStore;
use crate::error::Result;

/// Records an assertion's `jti`; `false` when it was seen before. The INSERT
/// is the check, so two concurrent uses cannot both pass.
pub fn spend(db: &dyn SqlStore, client_id: &str, jti: &str, expires_at: i64) -> Result<bool> {
    let rows = db.execute(
        "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES (?, ?, ?) \
         ON CONFLICT (client_id, jti) DO NOTHING RETURNING jti",
        &[client_id.into(), jti.into(), expires_at.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Forgets a client's assertions (the client is being deleted).
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM client_assertions WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}

/// Deletes at most `limit` ids of assertions expired before `now`.
pub fn sweep(db: &dyn SqlStore, now: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "client_assertions", "expires_at < ?1", now, limit)
}
