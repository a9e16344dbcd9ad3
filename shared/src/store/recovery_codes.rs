//! The `recovery_codes` table: single-use recovery codes, SHA-256 hashed.

use super::SqlStore;
use crate::error::Result;

/// Replaces the identity's codes by these hashes: the new set is written
/// first, then the old one deleted, so that a failure half-way never leaves
/// the person without working codes.
pub fn replace(db: &dyn SqlStore, identity_id: &str, hashes: &[String], now: i64) -> Result<()> {
    if hashes.is_empty() {
        return delete_all(db, identity_id);
    }
    let marks = vec!["?"; hashes.len()].join(", ");
    let rows = vec!["(?, ?, ?, NULL)"; hashes.len()].join(", ");
    let mut params = Vec::with_capacity(hashes.len() * 3);
    for h in hashes {
        params.push(identity_id.into());
        params.push(h.as_str().into());
        params.push(now.into());
    }
    db.execute(
        &format!(
            "INSERT INTO recovery_codes (identity_id, hash, created_at, used_at) VALUES {rows}"
        ),
        &params,
    )?;
    let mut params: Vec<super::Value> = vec![identity_id.into()];
    params.extend(hashes.iter().map(|h| h.as_str().into()));
    db.execute(
        &format!("DELETE FROM recovery_codes WHERE identity_id = ? AND hash NOT IN ({marks})"),
        &params,
    )?;
    Ok(())
}

/// Spends the code with this hash if it is unused: one conditional UPDATE,
/// so that a code works once even between concurrent requests.
pub fn spend(db: &dyn SqlStore, identity_id: &str, hash: &str, now: i64) -> Result<bool> {
    let rows = db.execute(
        "UPDATE recovery_codes SET used_at = ? \
         WHERE identity_id = ? AND hash = ? AND used_at IS NULL RETURNING 1",
        &[now.into(), identity_id.into(), hash.into()],
    )?;
    Ok(!rows.is_empty())
}

/// How many unused codes the identity has.
pub fn left(db: &dyn SqlStore, identity_id: &str) -> Result<i64> {
    db.execute(
        "SELECT count(*) AS n FROM recovery_codes WHERE identity_id = ? AND used_at IS NULL",
        &[identity_id.into()],
    )?
    .first()
    .map_or(Ok(0), |r| r.int("n"))
}

/// Removes all the identity's codes.
pub fn delete_all(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM recovery_codes WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}
