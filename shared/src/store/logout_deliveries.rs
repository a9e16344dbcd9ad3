//! The `logout_deliveries` table: back-channel logout tokens a client did not
//! accept, to retry and to show the operator.
//!
//! A failed delivery is [`insert`]ed after its first attempt. Retries are
//! claimed by [`claim_due`], one conditional `UPDATE … RETURNING` that also
//! moves the next attempt on, so that two requests never retry one row at
//! once and a request that dies mid-retry leaves the row scheduled. A retry
//! that succeeds deletes the row ([`delivered`]); one that fails records why
//! ([`failed`]). After [`MAX_ATTEMPTS`] the row stays, without a next
//! attempt, until [`sweep`] deletes it.

use super::{Named, SqlStore};
use crate::error::Result;

/// Attempts in all, the first included.
pub const MAX_ATTEMPTS: i64 = 5;
/// Seconds before the first retry; each later one waits four times longer
/// (1, 4, 16, 64 minutes).
pub const FIRST_RETRY_AFTER: i64 = 60;
/// How long a delivery given up on stays visible, in seconds.
pub const KEEP_GIVEN_UP: i64 = 7 * 86_400;

/// A delivery that failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// The delivery's id.
    pub id: String,
    /// The client to notify.
    pub client_id: String,
    /// The session that ended.
    pub sid: String,
    /// Whose session it was (the token's `sub`).
    pub identity_id: String,
    /// The `backchannel_logout_uri` of the last attempt.
    pub uri: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: String,
    /// When the first attempt failed.
    pub created_at: i64,
    /// When the last attempt was made.
    pub last_attempt_at: i64,
    /// When the next attempt is due; `None` once given up.
    pub next_attempt_at: Option<i64>,
}

const COLUMNS: &str = "id, client_id, sid, identity_id, uri, attempts, last_error, created_at, \
                       last_attempt_at, next_attempt_at";

fn decode(r: &Named<'_>) -> Result<Row> {
    Ok(Row {
        id: r.string("id")?,
        client_id: r.string("client_id")?,
        sid: r.string("sid")?,
        identity_id: r.string("identity_id")?,
        uri: r.string("uri")?,
        attempts: r.int("attempts")?,
        last_error: r.string("last_error")?,
        created_at: r.int("created_at")?,
        last_attempt_at: r.int("last_attempt_at")?,
        next_attempt_at: r.opt_int("next_attempt_at")?,
    })
}

/// Where a logout token goes, and for what.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The client.
    pub client_id: &'a str,
    /// The session that ended.
    pub sid: &'a str,
    /// Whose session it was.
    pub identity_id: &'a str,
    /// Its `backchannel_logout_uri`.
    pub uri: &'a str,
}

/// Records a first attempt that failed at `now` because of `error`; the
/// first retry is due [`FIRST_RETRY_AFTER`] seconds later.
pub fn insert_failed(
    db: &dyn SqlStore,
    id: &str,
    target: &Target<'_>,
    error: &str,
    now: i64,
) -> Result<()> {
    insert(db, id, target, 1, error, now, now + FIRST_RETRY_AFTER)
}

/// Records a delivery not attempted yet, due at once: a component without
/// the signing keys hands it to the token component this way.
pub fn insert_due(db: &dyn SqlStore, id: &str, target: &Target<'_>, now: i64) -> Result<()> {
    insert(db, id, target, 0, "", now, now)
}

fn insert(
    db: &dyn SqlStore,
    id: &str,
    t: &Target<'_>,
    attempts: i64,
    error: &str,
    now: i64,
    next: i64,
) -> Result<()> {
    db.execute(
        &format!(
            "INSERT INTO logout_deliveries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)"
        ),
        &[
            id.into(),
            t.client_id.into(),
            t.sid.into(),
            t.identity_id.into(),
            t.uri.into(),
            attempts.into(),
            error.into(),
            now.into(),
            next.into(),
        ],
    )?;
    Ok(())
}

/// Claims up to `limit` deliveries due at `now`, the longest waiting first:
/// counts the attempt and schedules the next one (or none, at the last), in
/// one statement. The rows are returned as claimed.
pub fn claim_due(db: &dyn SqlStore, now: i64, limit: i64) -> Result<Vec<Row>> {
    db.execute(
        &format!(
            "UPDATE logout_deliveries SET attempts = attempts + 1, last_attempt_at = ?1, \
             next_attempt_at = CASE WHEN attempts + 1 >= ?3 THEN NULL \
                                    ELSE ?1 + (?4 << (2 * attempts)) END \
             WHERE id IN (SELECT id FROM logout_deliveries WHERE next_attempt_at <= ?1 \
                          ORDER BY next_attempt_at, id LIMIT ?2) \
               AND next_attempt_at <= ?1 \
             RETURNING {COLUMNS}"
        ),
        &[
            now.into(),
            limit.into(),
            MAX_ATTEMPTS.into(),
            FIRST_RETRY_AFTER.into(),
        ],
    )?
    .decode(decode)
}

/// A retry was accepted: the delivery is done.
pub fn delivered(db: &dyn SqlStore, id: &str) -> Result<()> {
    db.execute("DELETE FROM logout_deliveries WHERE id = ?", &[id.into()])?;
    Ok(())
}

/// A retry failed: records why, and where it was sent.
pub fn failed(db: &dyn SqlStore, id: &str, uri: &str, error: &str) -> Result<()> {
    db.execute(
        "UPDATE logout_deliveries SET last_error = ?, uri = ? WHERE id = ?",
        &[error.into(), uri.into(), id.into()],
    )?;
    Ok(())
}

/// Every recorded delivery, pending and given up, the most recent attempt
/// first, at most `limit`.
pub fn list(db: &dyn SqlStore, limit: i64) -> Result<Vec<Row>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM logout_deliveries ORDER BY last_attempt_at DESC, id LIMIT ?"
        ),
        &[limit.into()],
    )?
    .decode(decode)
}

/// Forgets a deleted client's deliveries.
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM logout_deliveries WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}

/// Deletes up to `limit` deliveries given up on before `before`.
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(
        db,
        "logout_deliveries",
        "next_attempt_at IS NULL AND last_attempt_at < ?1",
        before,
        limit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::World;

    const NOW: i64 = 1_800_000_000;

    const SHOP: Target<'static> = Target {
        client_id: "shop",
        sid: "sid-1",
        identity_id: "ada",
        uri: "https://shop.example/bc",
    };

    fn failed_once(w: &World, id: &str, at: i64) {
        insert_failed(&w.sql, id, &SHOP, "refused", at).unwrap();
    }

    #[test]
    fn retries_back_off_and_stop_after_the_last_attempt() {
        let w = World::new();
        failed_once(&w, "d1", NOW);
        assert!(claim_due(&w.sql, NOW + 59, 10).unwrap().is_empty());
        let mut at = NOW + 60;
        let mut waits = Vec::new();
        for attempt in 2..=MAX_ATTEMPTS {
            let claimed = claim_due(&w.sql, at, 10).unwrap();
            assert_eq!(claimed.len(), 1, "attempt {attempt}");
            assert_eq!(claimed[0].attempts, attempt);
            // A second request at the same time finds nothing to claim.
            assert!(claim_due(&w.sql, at, 10).unwrap().is_empty());
            failed(
                &w.sql,
                "d1",
                "https://shop.example/bc2",
                &format!("try {attempt}"),
            )
            .unwrap();
            match claimed[0].next_attempt_at {
                Some(next) => {
                    waits.push(next - at);
                    at = next;
                }
                None => assert_eq!(attempt, MAX_ATTEMPTS),
            }
        }
        assert_eq!(waits, [240, 960, 3840]);
        let rows = list(&w.sql, 10).unwrap();
        assert_eq!(
            (
                rows[0].attempts,
                rows[0].next_attempt_at,
                rows[0].last_error.as_str()
            ),
            (MAX_ATTEMPTS, None, "try 5")
        );
        assert_eq!(rows[0].uri, "https://shop.example/bc2");
        assert!(claim_due(&w.sql, at + 1_000_000, 10).unwrap().is_empty());
        // Kept for the operator a week, then swept.
        assert_eq!(sweep(&w.sql, at, 10).unwrap(), 0);
        assert_eq!(sweep(&w.sql, at + 1, 10).unwrap(), 1);
    }

    #[test]
    fn a_delivery_handed_over_is_due_at_once_and_keeps_the_schedule() {
        let w = World::new();
        insert_due(&w.sql, "d1", &SHOP, NOW).unwrap();
        let claimed = claim_due(&w.sql, NOW, 10).unwrap();
        assert_eq!(
            (claimed[0].attempts, claimed[0].next_attempt_at),
            (1, Some(NOW + FIRST_RETRY_AFTER))
        );
    }

    #[test]
    fn claims_the_longest_waiting_first_up_to_the_limit_and_deletes_on_success() {
        let w = World::new();
        failed_once(&w, "late", NOW + 5);
        failed_once(&w, "early", NOW);
        failed_once(&w, "pending", NOW + 1000);
        let claimed = claim_due(&w.sql, NOW + 100, 1).unwrap();
        assert_eq!(claimed[0].id, "early");
        delivered(&w.sql, "early").unwrap();
        let ids: Vec<String> = list(&w.sql, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(!ids.contains(&"early".to_string()));
        delete_for_client(&w.sql, "shop").unwrap();
        assert!(list(&w.sql, 10).unwrap().is_empty());
    }
}
