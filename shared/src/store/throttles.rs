//! The `throttles` table: attempt counters for the rate limits, keyed by a
//! hashed account or recipient, or a client address.

use super::{SqlStore, Value};
use crate::error::Result;

/// A counter's policy, as the statements need it.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts before backoff starts.
    pub max: i64,
    /// Seconds the counter lives after its first attempt.
    pub window: i64,
    /// The first wait in seconds; it doubles with each attempt over `max`.
    pub backoff: i64,
}

fn params(key: &str, p: &Policy, now: i64) -> [Value; 5] {
    [
        key.into(),
        now.into(),
        p.window.into(),
        p.max.into(),
        p.backoff.into(),
    ]
}

/// Counts one attempt unless the key is backing off, in one statement. Of any
/// number of concurrent calls, at most `max` pass within a window. `true`
/// when the attempt was counted.
pub fn count(db: &dyn SqlStore, key: &str, p: &Policy, now: i64) -> Result<bool> {
    // In DO UPDATE, columns are the row's values before this attempt. The
    // counter starts again once its window has passed; a refused attempt
    // changes nothing.
    let rows = db.execute(
        "INSERT INTO throttles (key, count, first_at, last_at, expires_at) VALUES (?1, 1, ?2, ?2, ?2 + ?3) \
         ON CONFLICT (key) DO UPDATE SET \
           count = CASE WHEN first_at + ?3 <= ?2 THEN 1 ELSE count + 1 END, \
           first_at = CASE WHEN first_at + ?3 <= ?2 THEN ?2 ELSE first_at END, \
           last_at = ?2, expires_at = ?2 + ?3 \
         WHERE first_at + ?3 <= ?2 OR count < ?4 OR last_at + min(?3, ?5 << min(count - ?4, 30)) <= ?2 \
         RETURNING count",
        &params(key, p, now),
    )?;
    Ok(!rows.is_empty())
}

/// Seconds until the key's next attempt may pass (`None`: no counter).
pub fn wait(db: &dyn SqlStore, key: &str, p: &Policy, now: i64) -> Result<Option<i64>> {
    let rows = db.execute(
        "SELECT last_at + min(?3, ?5 << min(count - ?4, 30)) - ?2 AS wait FROM throttles WHERE key = ?1",
        &params(key, p, now),
    )?;
    rows.first().map(|r| r.int("wait")).transpose()
}

/// Gives one attempt back.
pub fn refund(db: &dyn SqlStore, key: &str) -> Result<()> {
    db.execute(
        "UPDATE throttles SET count = count - 1 WHERE key = ? AND count > 0",
        &[key.into()],
    )?;
    Ok(())
}

/// Forgets a key's attempts.
pub fn clear(db: &dyn SqlStore, key: &str) -> Result<()> {
    db.execute("DELETE FROM throttles WHERE key = ?", &[key.into()])?;
    Ok(())
}

/// Deletes at most `limit` counters whose window ended by `now`.
pub fn sweep(db: &dyn SqlStore, now: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "throttles", "expires_at <= ?1", now, limit)
}
