//! The `sessions` table: a listing of the browser sessions in key-value, so
//! that their owner can see them and end them.

use super::{Named, SqlStore};
use crate::error::Result;

/// One listed session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// The public session id (the `sid` claim).
    pub sid: String,
    /// Whose session it is.
    pub identity_id: String,
    /// The key-value key that holds the session.
    #[serde(skip)]
    pub kv_key: String,
    /// The browser's `User-Agent` at sign-in (cut to 256 characters).
    pub user_agent: String,
    /// The client address at sign-in.
    pub client_addr: String,
    /// The methods of the sign-in, space-separated.
    pub amr: String,
    /// When the session started.
    pub created_at: i64,
    /// When it was last used (to within a minute).
    pub last_seen_at: i64,
    /// When it ends unless used again.
    pub expires_at: i64,
}

fn decode(r: &Named<'_>) -> Result<Row> {
    Ok(Row {
        sid: r.string("sid")?,
        identity_id: r.string("identity_id")?,
        kv_key: r.string("kv_key")?,
        user_agent: r.string("user_agent")?,
        client_addr: r.string("client_addr")?,
        amr: r.string("amr")?,
        created_at: r.int("created_at")?,
        last_seen_at: r.int("last_seen_at")?,
        expires_at: r.int("expires_at")?,
    })
}

const COLUMNS: &str =
    "sid, identity_id, kv_key, user_agent, client_addr, amr, created_at, last_seen_at, expires_at";

/// Lists a new session.
pub fn insert(db: &dyn SqlStore, row: &Row) -> Result<()> {
    db.execute(
        &format!("INSERT INTO sessions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            row.sid.as_str().into(),
            row.identity_id.as_str().into(),
            row.kv_key.as_str().into(),
            row.user_agent.as_str().into(),
            row.client_addr.as_str().into(),
            row.amr.as_str().into(),
            row.created_at.into(),
            row.last_seen_at.into(),
            row.expires_at.into(),
        ],
    )?;
    Ok(())
}

/// Records use of a session, and what it was authenticated with.
pub fn touch(db: &dyn SqlStore, sid: &str, amr: &str, now: i64, expires_at: i64) -> Result<()> {
    db.execute(
        "UPDATE sessions SET last_seen_at = ?, expires_at = ?, amr = ? WHERE sid = ?",
        &[now.into(), expires_at.into(), amr.into(), sid.into()],
    )?;
    Ok(())
}

/// The live sessions of an identity, the most recent first.
pub fn for_identity(db: &dyn SqlStore, identity_id: &str, now: i64) -> Result<Vec<Row>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM sessions WHERE identity_id = ? AND expires_at > ? \
             ORDER BY last_seen_at DESC, sid"
        ),
        &[identity_id.into(), now.into()],
    )?
    .decode(decode)
}

/// Removes one session of an identity from the listing, returning it.
pub fn delete(db: &dyn SqlStore, identity_id: &str, sid: &str) -> Result<Option<Row>> {
    let rows = db.execute(
        &format!("DELETE FROM sessions WHERE identity_id = ? AND sid = ? RETURNING {COLUMNS}"),
        &[identity_id.into(), sid.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Removes every session of an identity but `keep` from the listing,
/// returning them.
pub fn delete_all(db: &dyn SqlStore, identity_id: &str, keep: Option<&str>) -> Result<Vec<Row>> {
    db.execute(
        &format!("DELETE FROM sessions WHERE identity_id = ? AND sid IS NOT ? RETURNING {COLUMNS}"),
        &[identity_id.into(), keep.into()],
    )?
    .decode(decode)
}

/// Removes a session from the listing by its key-value key, returning it.
pub fn delete_by_key(db: &dyn SqlStore, kv_key: &str) -> Result<Option<Row>> {
    let rows = db.execute(
        &format!("DELETE FROM sessions WHERE kv_key = ? RETURNING {COLUMNS}"),
        &[kv_key.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Deletes up to `limit` rows of sessions that ended before `before`.
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "sessions", "expires_at < ?1", before, limit)
}
