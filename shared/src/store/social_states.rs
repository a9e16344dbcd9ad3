//! The `social_states` table: a sign-in in flight at an upstream provider.
//! The `state` sent upstream is stored as SHA-256, bound to the browser
//! that started it (the SHA-256 of its cookie), with the nonce and PKCE
//! verifier. [`take`] settles it once, in one conditional UPDATE.

use super::{Named, SqlStore};
use crate::error::Result;

/// A sign-in in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialState {
    /// The connection it goes through.
    pub connection_id: String,
    /// SHA-256 of the browser's `__Host-lanyard_social` cookie.
    pub browser_hash: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier for the token request.
    pub code_verifier: String,
    /// Where to go after the sign-in (a local path).
    pub return_to: Option<String>,
    /// The signed-in identity that links a new upstream account (`link=1`).
    pub link_identity_id: Option<String>,
    /// When it was made.
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
}

/// What a state is now, to explain why it could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The state.
    pub state: SocialState,
    /// When it was taken, if it was.
    pub used_at: Option<i64>,
}

const COLUMNS: &str = "connection_id, browser_hash, nonce, code_verifier, return_to, \
     link_identity_id, created_at, expires_at";

fn decode(r: &Named<'_>) -> Result<SocialState> {
    Ok(SocialState {
        connection_id: r.string("connection_id")?,
        browser_hash: r.string("browser_hash")?,
        nonce: r.string("nonce")?,
        code_verifier: r.string("code_verifier")?,
        return_to: r.opt_string("return_to")?,
        link_identity_id: r.opt_string("link_identity_id")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
    })
}

/// Stores a new state under the hash of its `state` value.
pub fn insert(db: &dyn SqlStore, hash: &str, s: &SocialState) -> Result<()> {
    db.execute(
        &format!("INSERT INTO social_states (hash, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            hash.into(),
            s.connection_id.as_str().into(),
            s.browser_hash.as_str().into(),
            s.nonce.as_str().into(),
            s.code_verifier.as_str().into(),
            s.return_to.as_deref().into(),
            s.link_identity_id.as_deref().into(),
            s.created_at.into(),
            s.expires_at.into(),
        ],
    )?;
    Ok(())
}

/// Takes an unused, unexpired state of this connection and browser, in one
/// statement: of any number of concurrent callbacks with one state, one
/// gets it. `None` when it cannot be taken ([`get`] tells why).
pub fn take(
    db: &dyn SqlStore,
    hash: &str,
    connection_id: &str,
    browser_hash: &str,
    now: i64,
) -> Result<Option<SocialState>> {
    let rows = db.execute(
        &format!(
            "UPDATE social_states SET used_at = ?1 WHERE hash = ?2 AND used_at IS NULL \
             AND expires_at > ?1 AND connection_id = ?3 AND browser_hash = ?4 RETURNING {COLUMNS}"
        ),
        &[
            now.into(),
            hash.into(),
            connection_id.into(),
            browser_hash.into(),
        ],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// The state under this hash, used or not.
pub fn get(db: &dyn SqlStore, hash: &str) -> Result<Option<Recorded>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS}, used_at FROM social_states WHERE hash = ?"),
        &[hash.into()],
    )?;
    rows.first()
        .map(|r| {
            Ok(Recorded {
                state: decode(&r)?,
                used_at: r.opt_int("used_at")?,
            })
        })
        .transpose()
}

/// Deletes at most `limit` states that expired before `before`.
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "social_states", "expires_at < ?1", before, limit)
}

/// Deletes the sign-ins in flight that would link to an identity (erasure).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM social_states WHERE link_identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    fn state() -> SocialState {
        SocialState {
            connection_id: "example".into(),
            browser_hash: "b1".into(),
            nonce: "n".into(),
            code_verifier: "v".into(),
            return_to: Some("/x".into()),
            link_identity_id: None,
            created_at: 10,
            expires_at: 610,
        }
    }

    #[test]
    fn taken_once_by_its_browser_for_its_connection_in_time() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        insert(&db, "h", &state()).unwrap();
        assert!(
            take(&db, "h", "example", "b2", 20).unwrap().is_none(),
            "another browser"
        );
        assert!(
            take(&db, "h", "other", "b1", 20).unwrap().is_none(),
            "another connection"
        );
        assert!(
            take(&db, "h", "example", "b1", 610).unwrap().is_none(),
            "expired"
        );
        assert_eq!(take(&db, "h", "example", "b1", 20).unwrap(), Some(state()));
        assert!(
            take(&db, "h", "example", "b1", 21).unwrap().is_none(),
            "replayed"
        );
        assert_eq!(get(&db, "h").unwrap().unwrap().used_at, Some(20));
        assert!(get(&db, "nope").unwrap().is_none());
        assert_eq!(sweep(&db, 611, 10).unwrap(), 1);
    }
}
