//! The `session_clients` table: which clients got tokens in which browser
//! session (`sid`), so that the end of a session can notify each of them
//! (OpenID Connect Back-Channel and Front-Channel Logout 1.0).
//!
//! One row per (session, client). [`record`] is one idempotent upsert; the
//! end of a session takes its rows with [`take_session`] (one `DELETE …
//! RETURNING`: of two concurrent sign-outs of one session, one notifies).

use super::{Named, SqlStore};
use crate::error::Result;

/// A client that got tokens in a session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// The session (the `sid` claim).
    pub sid: String,
    /// The client.
    pub client_id: String,
    /// Whose session it is.
    pub identity_id: String,
    /// When the client first got tokens in the session.
    pub first_issued_at: i64,
    /// When it last did (as recorded).
    pub last_issued_at: i64,
}

const COLUMNS: &str = "sid, client_id, identity_id, first_issued_at, last_issued_at";

fn decode(r: &Named<'_>) -> Result<Row> {
    Ok(Row {
        sid: r.string("sid")?,
        client_id: r.string("client_id")?,
        identity_id: r.string("identity_id")?,
        first_issued_at: r.int("first_issued_at")?,
        last_issued_at: r.int("last_issued_at")?,
    })
}

/// Records that `client_id` got tokens in session `sid` of `identity_id`
/// at `now`: inserts the row, or moves its `last_issued_at`. One statement;
/// running it again is harmless. A session belongs to one person: a row of
/// another identity under the same `sid` is left as it is.
pub fn record(
    db: &dyn SqlStore,
    sid: &str,
    client_id: &str,
    identity_id: &str,
    now: i64,
) -> Result<()> {
    db.execute(
        &format!(
            "INSERT INTO session_clients ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT (sid, client_id) DO UPDATE \
             SET last_issued_at = max(last_issued_at, excluded.last_issued_at) \
             WHERE identity_id = excluded.identity_id"
        ),
        &[sid.into(), client_id.into(), identity_id.into(), now.into()],
    )?;
    Ok(())
}

/// The clients that got tokens in session `sid`, by client id.
pub fn clients_of(db: &dyn SqlStore, sid: &str) -> Result<Vec<Row>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM session_clients WHERE sid = ? ORDER BY client_id"),
        &[sid.into()],
    )?
    .decode(decode)
}

/// The sessions of `identity_id` in which some client got tokens, the most
/// recently used first.
pub fn sids_of(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<String>> {
    let rows = db.execute(
        "SELECT sid, max(last_issued_at) AS last FROM session_clients WHERE identity_id = ? \
         GROUP BY sid ORDER BY last DESC, sid",
        &[identity_id.into()],
    )?;
    rows.iter().map(|r| r.string("sid")).collect()
}

/// Every (session, client) row of `identity_id`, by session and client.
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<Row>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM session_clients WHERE identity_id = ? ORDER BY sid, client_id"
        ),
        &[identity_id.into()],
    )?
    .decode(decode)
}

/// Deletes the rows of session `sid` and returns them (in no particular
/// order): the clients to notify of its end. One statement, so that of two
/// concurrent ends of one session only one gets the rows.
pub fn take_session(db: &dyn SqlStore, sid: &str) -> Result<Vec<Row>> {
    db.execute(
        &format!("DELETE FROM session_clients WHERE sid = ? RETURNING {COLUMNS}"),
        &[sid.into()],
    )?
    .decode(decode)
}

/// Deletes the rows of every session of `identity_id` but `keep` and
/// returns them, in no particular order: the person's other sessions end
/// (the account centre), or all of them (`keep` = `None`: a password reset,
/// an administrator, erasure).
pub fn take_identity(db: &dyn SqlStore, identity_id: &str, keep: Option<&str>) -> Result<Vec<Row>> {
    db.execute(
        &format!(
            "DELETE FROM session_clients WHERE identity_id = ? AND sid IS NOT ? RETURNING {COLUMNS}"
        ),
        &[identity_id.into(), keep.into()],
    )?
    .decode(decode)
}

/// Forgets a deleted client's rows.
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM session_clients WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}

/// Deletes up to `limit` rows that no client can still need at `now`: the
/// session is no longer listed (it expired; an ended one's rows were taken
/// already), and the client's refresh-token lifetime has passed since it
/// last got tokens in it (or the client is gone).
pub fn sweep(db: &dyn SqlStore, now: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(
        db,
        "session_clients",
        "sid NOT IN (SELECT sid FROM sessions) AND last_issued_at < ?1 - coalesce(\
         (SELECT refresh_max_ttl FROM clients WHERE clients.id = session_clients.client_id), 0)",
        now,
        limit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::{count_rows, schema};

    fn db() -> SqliteSql {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        db
    }

    fn row(sid: &str, client: &str, who: &str, first: i64, last: i64) -> Row {
        Row {
            sid: sid.into(),
            client_id: client.into(),
            identity_id: who.into(),
            first_issued_at: first,
            last_issued_at: last,
        }
    }

    #[test]
    fn recording_is_an_idempotent_upsert() {
        let db = db();
        record(&db, "s1", "shop", "ada", 100).unwrap();
        record(&db, "s1", "shop", "ada", 150).unwrap();
        record(&db, "s1", "shop", "ada", 120).unwrap();
        record(&db, "s1", "blog", "ada", 130).unwrap();
        assert_eq!(
            clients_of(&db, "s1").unwrap(),
            [
                row("s1", "blog", "ada", 130, 130),
                row("s1", "shop", "ada", 100, 150)
            ]
        );
        // A sid is one person's: another identity cannot take it over.
        record(&db, "s1", "shop", "eve", 200).unwrap();
        assert_eq!(
            clients_of(&db, "s1").unwrap()[1],
            row("s1", "shop", "ada", 100, 150)
        );
        assert!(clients_of(&db, "s2").unwrap().is_empty());
    }

    #[test]
    fn a_persons_sessions_are_listed_and_taken() {
        let db = db();
        record(&db, "s1", "shop", "ada", 100).unwrap();
        record(&db, "s2", "shop", "ada", 300).unwrap();
        record(&db, "s2", "blog", "ada", 200).unwrap();
        record(&db, "s3", "shop", "bob", 400).unwrap();
        assert_eq!(sids_of(&db, "ada").unwrap(), ["s2", "s1"]);
        assert_eq!(for_identity(&db, "ada").unwrap().len(), 3);
        assert!(sids_of(&db, "nobody").unwrap().is_empty());

        // Ending a session takes its rows once.
        let mut taken = take_session(&db, "s2").unwrap();
        taken.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        assert_eq!(
            taken,
            [
                row("s2", "blog", "ada", 200, 200),
                row("s2", "shop", "ada", 300, 300)
            ]
        );
        assert!(take_session(&db, "s2").unwrap().is_empty());
        assert_eq!(sids_of(&db, "ada").unwrap(), ["s1"]);

        // Ending the person's other sessions keeps the current one's rows;
        // ending all of them leaves only other people's.
        record(&db, "s4", "shop", "ada", 500).unwrap();
        assert_eq!(
            take_identity(&db, "ada", Some("s1")).unwrap(),
            [row("s4", "shop", "ada", 500, 500)]
        );
        assert_eq!(
            take_identity(&db, "ada", None).unwrap(),
            [row("s1", "shop", "ada", 100, 100)]
        );
        assert_eq!(count_rows(&db, "session_clients").unwrap(), 1);
        delete_for_client(&db, "shop").unwrap();
        assert_eq!(count_rows(&db, "session_clients").unwrap(), 0);
    }

    #[test]
    fn the_sweep_keeps_rows_a_client_may_still_need() {
        let db = db();
        let listed = |sid: &str| {
            crate::store::sessions::insert(
                &db,
                &crate::store::sessions::Row {
                    sid: sid.into(),
                    identity_id: "ada".into(),
                    kv_key: format!("k-{sid}"),
                    user_agent: String::new(),
                    client_addr: String::new(),
                    amr: "pwd".into(),
                    created_at: 0,
                    last_seen_at: 0,
                    expires_at: 1_000_000,
                },
            )
            .unwrap()
        };
        db.execute(
            "INSERT INTO clients (id, name, refresh_max_ttl, created_at, updated_at) \
             VALUES ('shop', 'Shop', 1000, 0, 0)",
            &[],
        )
        .unwrap();
        listed("alive");
        record(&db, "alive", "shop", "ada", 100).unwrap();
        record(&db, "expired-recent", "shop", "ada", 5_000).unwrap();
        record(&db, "expired-old", "shop", "ada", 100).unwrap();
        record(&db, "expired-old", "gone", "ada", 5_000).unwrap();
        // At 5,500: "expired-old" at shop is past shop's 1,000 s, and the
        // deleted client's row has no lifetime left.
        assert_eq!(sweep(&db, 5_500, 1).unwrap(), 1);
        assert_eq!(sweep(&db, 5_500, 10).unwrap(), 1);
        let mut left: Vec<(String, String)> = ["alive", "expired-recent", "expired-old"]
            .iter()
            .flat_map(|sid| clients_of(&db, sid).unwrap())
            .map(|r| (r.sid, r.client_id))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ("alive".to_owned(), "shop".to_owned()),
                ("expired-recent".to_owned(), "shop".to_owned())
            ]
        );
        // A listed session keeps its rows however old.
        assert_eq!(sweep(&db, 1_000_000_000, 10).unwrap(), 1);
        assert_eq!(clients_of(&db, "alive").unwrap().len(), 1);
    }
}
