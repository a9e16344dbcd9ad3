//! The `security_events` table: what happened to an account, append-only,
//! for its owner to see.

use serde_json::Value as Json;

use super::{Named, SqlStore};
use crate::error::Result;

/// One event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    /// Increasing id (the page cursor).
    pub id: i64,
    /// What happened, such as `sign_in` (see [`crate::events::Kind`]).
    pub kind: String,
    /// Details of the kind (the client of a connected app, the method of a
    /// sign-in…).
    pub detail: Json,
    /// The client address of the request.
    pub client_addr: String,
    /// The browser's `User-Agent`, when there was one.
    pub user_agent: String,
    /// When, in Unix seconds.
    pub at: i64,
}

fn decode(r: &Named<'_>) -> Result<Event> {
    Ok(Event {
        id: r.int("id")?,
        kind: r.string("kind")?,
        detail: serde_json::from_str(r.text("detail")?).unwrap_or(Json::Null),
        client_addr: r.string("client_addr")?,
        user_agent: r.string("user_agent")?,
        at: r.int("at")?,
    })
}

/// Appends an event.
pub fn insert(
    db: &dyn SqlStore,
    identity_id: &str,
    kind: &str,
    detail: &Json,
    client_addr: &str,
    user_agent: &str,
    at: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO security_events (identity_id, kind, detail, client_addr, user_agent, at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            identity_id.into(),
            kind.into(),
            detail.to_string().into(),
            client_addr.into(),
            user_agent.into(),
            at.into(),
        ],
    )?;
    Ok(())
}

/// A page of an identity's events, newest first: up to `limit` with an id
/// below `before` (all, when `None`).
pub fn page(
    db: &dyn SqlStore,
    identity_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Event>> {
    db.execute(
        "SELECT id, kind, detail, client_addr, user_agent, at FROM security_events \
         WHERE identity_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        &[
            identity_id.into(),
            before.unwrap_or(i64::MAX).into(),
            limit.into(),
        ],
    )?
    .decode(decode)
}

/// Keeps an identity's events without naming the person: no identity, no
/// address, no device (for erasure).
pub fn anonymise(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "UPDATE security_events SET identity_id = NULL, client_addr = '', user_agent = '', detail = '{}' \
         WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}

/// Deletes up to `limit` events older than `before` (the retention sweep).
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "security_events", "at < ?1", before, limit)
}
