//! The `email_changes` table: a requested new email address, waiting for the
//! link mailed to it. The link's token is stored as its SHA-256; it works
//! once, within its time, by one conditional `UPDATE`.

use serde::Serialize;

use super::{Named, SqlStore};
use crate::error::Result;

/// A pending (or settled) change, as the export shows it: no token hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Whose change it is.
    pub identity_id: String,
    /// The address asked for.
    pub new_email: String,
    /// When the link stops working.
    pub expires_at: i64,
    /// When it was used or voided, if it was.
    pub used_at: Option<i64>,
}

/// What a link's token stands for, whatever its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Whose change it is.
    pub identity_id: String,
    /// The address asked for.
    pub new_email: String,
    /// When the link stops working.
    pub expires_at: i64,
    /// Whether it was used or voided.
    pub used: bool,
}

fn decode(r: &Named<'_>) -> Result<Row> {
    Ok(Row {
        identity_id: r.string("identity_id")?,
        new_email: r.string("new_email")?,
        expires_at: r.int("expires_at")?,
        used_at: r.opt_int("used_at")?,
    })
}

/// Stores a requested change under the hash of its link's token.
pub fn insert(
    db: &dyn SqlStore,
    hash: &str,
    identity_id: &str,
    new_email: &str,
    expires_at: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO email_changes (hash, identity_id, new_email, expires_at) VALUES (?, ?, ?, ?)",
        &[
            hash.into(),
            identity_id.into(),
            new_email.into(),
            expires_at.into(),
        ],
    )?;
    Ok(())
}

/// The change a token's hash names, whatever its state.
pub fn get(db: &dyn SqlStore, hash: &str) -> Result<Option<Change>> {
    let rows = db.execute(
        "SELECT identity_id, new_email, expires_at, used_at IS NOT NULL AS used \
         FROM email_changes WHERE hash = ?",
        &[hash.into()],
    )?;
    rows.first()
        .map(|r| {
            Ok(Change {
                identity_id: r.string("identity_id")?,
                new_email: r.string("new_email")?,
                expires_at: r.int("expires_at")?,
                used: r.bool("used")?,
            })
        })
        .transpose()
}

/// Uses a live link up, in one conditional statement: only the first of any
/// number of concurrent calls gets the change (identity, new address).
pub fn spend(db: &dyn SqlStore, hash: &str, now: i64) -> Result<Option<(String, String)>> {
    let rows = db.execute(
        "UPDATE email_changes SET used_at = ?1 \
         WHERE hash = ?2 AND used_at IS NULL AND expires_at > ?1 \
         RETURNING identity_id, new_email",
        &[now.into(), hash.into()],
    )?;
    rows.first()
        .map(|r| Ok((r.string("identity_id")?, r.string("new_email")?)))
        .transpose()
}

/// Voids every unused change of an identity (after one went through).
pub fn void_all(db: &dyn SqlStore, identity_id: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE email_changes SET used_at = ? WHERE identity_id = ? AND used_at IS NULL",
        &[now.into(), identity_id.into()],
    )?;
    Ok(())
}

/// The changes of an identity, newest first (for the export).
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<Row>> {
    db.execute(
        "SELECT identity_id, new_email, expires_at, used_at FROM email_changes \
         WHERE identity_id = ? ORDER BY expires_at DESC",
        &[identity_id.into()],
    )?
    .decode(decode)
}

/// Deletes every change of an identity (for erasure).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM email_changes WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}

/// Deletes at most `limit` changes whose link expired before `before`.
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "email_changes", "expires_at < ?1", before, limit)
}
