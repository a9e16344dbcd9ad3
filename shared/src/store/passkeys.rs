//! The `passkeys` table: WebAuthn credentials.

use super::SqlStore;
use crate::error::Result;

/// How many passkeys an identity has.
pub fn count(db: &dyn SqlStore, identity_id: &str) -> Result<i64> {
    let rows = db.execute(
        "SELECT count(*) AS n FROM passkeys WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    rows.first().map_or(Ok(0), |r| r.int("n"))
}
