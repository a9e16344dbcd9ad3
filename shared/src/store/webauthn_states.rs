//! The `webauthn_states` table: a WebAuthn ceremony's state between its two
//! requests, stored under the SHA-256 of a random handle given to the
//! browser, and taken once by `DELETE … RETURNING`.

use super::SqlStore;
use crate::error::Result;

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Adding a passkey to a signed-in identity.
    Register,
    /// A known identity's passkey (a second factor, a re-entry).
    Authenticate,
    /// A discoverable passkey of anyone (passwordless sign-in).
    Discover,
}

impl Purpose {
    /// The value stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Authenticate => "authenticate",
            Self::Discover => "discover",
        }
    }
}

/// A state taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The identity the ceremony is for (none for a discoverable sign-in).
    pub identity_id: Option<String>,
    /// The relying party's state, as JSON.
    pub state: String,
}

/// Stores a state under `id` (the hash of its handle) until `expires_at`.
pub fn insert(
    db: &dyn SqlStore,
    id: &str,
    identity_id: Option<&str>,
    purpose: Purpose,
    state: &str,
    expires_at: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO webauthn_states (id, identity_id, purpose, state, expires_at) \
         VALUES (?, ?, ?, ?, ?)",
        &[
            id.into(),
            identity_id.into(),
            purpose.as_str().into(),
            state.into(),
            expires_at.into(),
        ],
    )?;
    Ok(())
}

/// Takes an unexpired state of this purpose, in one statement: of any number
/// of concurrent requests with one handle, one gets it, once.
pub fn take(db: &dyn SqlStore, id: &str, purpose: Purpose, now: i64) -> Result<Option<Taken>> {
    let rows = db.execute(
        "DELETE FROM webauthn_states WHERE id = ? AND purpose = ? AND expires_at > ? \
         RETURNING identity_id, state",
        &[id.into(), purpose.as_str().into(), now.into()],
    )?;
    rows.first()
        .map(|r| {
            Ok(Taken {
                identity_id: r.opt_string("identity_id")?,
                state: r.string("state")?,
            })
        })
        .transpose()
}

/// Deletes the states of an identity (at erasure).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<usize> {
    let rows = db.execute(
        "DELETE FROM webauthn_states WHERE identity_id = ? RETURNING 1",
        &[identity_id.into()],
    )?;
    Ok(rows.len())
}

/// Deletes at most `limit` states that expired before `before`.
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "webauthn_states", "expires_at < ?1", before, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    #[test]
    fn taken_once_for_its_purpose_in_time() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        insert(&db, "h", Some("ada"), Purpose::Register, "{}", 100).unwrap();
        insert(&db, "d", None, Purpose::Discover, "{}", 100).unwrap();
        assert!(take(&db, "h", Purpose::Discover, 10).unwrap().is_none());
        assert!(
            take(&db, "h", Purpose::Register, 100).unwrap().is_none(),
            "expired"
        );
        let taken = take(&db, "h", Purpose::Register, 99).unwrap().unwrap();
        assert_eq!(taken.identity_id.as_deref(), Some("ada"));
        assert!(
            take(&db, "h", Purpose::Register, 99).unwrap().is_none(),
            "twice"
        );
        assert_eq!(sweep(&db, 101, 10).unwrap(), 1);
        assert!(take(&db, "d", Purpose::Discover, 10).unwrap().is_none());
    }
}
