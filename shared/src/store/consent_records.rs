//! The `consent_records` table: the version of the terms a person accepted
//! and their marketing choices, with their history (append-only; the
//! latest row of a kind is the current choice).

use super::{Named, SqlStore};
use crate::error::Result;

/// One recorded choice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    /// Increasing id.
    pub id: i64,
    /// `terms` or `marketing`.
    pub kind: String,
    /// The terms version accepted, or `opt_in` / `opt_out`.
    pub value: String,
    /// The client address the choice came from.
    pub client_addr: String,
    /// When, in Unix seconds.
    pub at: i64,
}

const COLUMNS: &str = "id, kind, value, client_addr, at";

fn decode(r: &Named<'_>) -> Result<Record> {
    Ok(Record {
        id: r.int("id")?,
        kind: r.string("kind")?,
        value: r.string("value")?,
        client_addr: r.string("client_addr")?,
        at: r.int("at")?,
    })
}

/// Appends a choice.
pub fn insert(
    db: &dyn SqlStore,
    identity_id: &str,
    kind: &str,
    value: &str,
    client_addr: &str,
    at: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO consent_records (identity_id, kind, value, client_addr, at) VALUES (?, ?, ?, ?, ?)",
        &[
            identity_id.into(),
            kind.into(),
            value.into(),
            client_addr.into(),
            at.into(),
        ],
    )?;
    Ok(())
}

/// The current choice of a kind: the latest row, if any.
pub fn latest(db: &dyn SqlStore, identity_id: &str, kind: &str) -> Result<Option<Record>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM consent_records WHERE identity_id = ? AND kind = ? \
             ORDER BY id DESC LIMIT 1"
        ),
        &[identity_id.into(), kind.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Every choice of an identity, oldest first (the history).
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<Record>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM consent_records WHERE identity_id = ? ORDER BY id"),
        &[identity_id.into()],
    )?
    .decode(decode)
}

/// Deletes every record of an identity (erasure).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM consent_records WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}
