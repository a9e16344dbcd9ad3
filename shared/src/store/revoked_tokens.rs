//! The `revoked_tokens` table: access tokens (JWTs) revoked before they
//! expire, by `jti`, kept until they would have expired.

use super::SqlStore;
use crate::error::Result;

/// Whether the token with this `jti` was revoked.
pub fn contains(db: &dyn SqlStore, jti: &str) -> Result<bool> {
    Ok(!db
        .execute(
            "SELECT 1 AS revoked FROM revoked_tokens WHERE jti = ?",
            &[jti.into()],
        )?
        .is_empty())
}

/// Revokes a token until `expires_at`; revoking twice is harmless.
pub fn insert(db: &dyn SqlStore, jti: &str, expires_at: i64) -> Result<()> {
    db.execute(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
        &[jti.into(), expires_at.into()],
    )?;
    Ok(())
}

/// Deletes at most `limit` revocations of tokens expired before `now`.
pub fn sweep(db: &dyn SqlStore, now: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "revoked_tokens", "expires_at < ?1", now, limit)
}
