//! The `one_time_tokens` table: single-use links (email verification,
//! password reset), stored as the SHA-256 of the token.

use super::SqlStore;
use crate::error::Result;

/// A link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Whose link it is.
    pub identity_id: String,
    /// When it stops working.
    pub expires_at: i64,
    /// Whether it was used (or voided).
    pub used: bool,
}

/// Stores a new link.
pub fn insert(
    db: &dyn SqlStore,
    hash: &str,
    purpose: &str,
    identity_id: &str,
    expires_at: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO one_time_tokens (hash, purpose, identity_id, expires_at) VALUES (?, ?, ?, ?)",
        &[
            hash.into(),
            purpose.into(),
            identity_id.into(),
            expires_at.into(),
        ],
    )?;
    Ok(())
}

/// Uses a live link up, in one conditional statement: only the first of
/// any number of concurrent calls gets its identity.
pub fn spend(db: &dyn SqlStore, hash: &str, purpose: &str, now: i64) -> Result<Option<String>> {
    let rows = db.execute(
        "UPDATE one_time_tokens SET used_at = ?1 \
         WHERE hash = ?2 AND purpose = ?3 AND used_at IS NULL AND expires_at > ?1 \
         RETURNING identity_id",
        &[now.into(), hash.into(), purpose.into()],
    )?;
    rows.first().map(|r| r.string("identity_id")).transpose()
}

/// A link, whatever its state.
pub fn get(db: &dyn SqlStore, hash: &str, purpose: &str) -> Result<Option<Link>> {
    let rows = db.execute(
        "SELECT identity_id, expires_at, used_at IS NOT NULL AS used FROM one_time_tokens \
         WHERE hash = ? AND purpose = ?",
        &[hash.into(), purpose.into()],
    )?;
    rows.first()
        .map(|r| {
            Ok(Link {
                identity_id: r.string("identity_id")?,
                expires_at: r.int("expires_at")?,
                used: r.bool("used")?,
            })
        })
        .transpose()
}

/// Voids every unused link of this purpose for an identity.
pub fn void_all(db: &dyn SqlStore, purpose: &str, identity_id: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE one_time_tokens SET used_at = ? WHERE identity_id = ? AND purpose = ? AND used_at IS NULL",
        &[now.into(), identity_id.into(), purpose.into()],
    )?;
    Ok(())
}

/// Deletes at most `limit` links that expired before `before`.
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "one_time_tokens", "expires_at < ?1", before, limit)
}

/// Deletes every link of an identity (erasure).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM one_time_tokens WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}
