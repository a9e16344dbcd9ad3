//! The `passkeys` table: WebAuthn credentials. `passkey` is the relying
//! party's record (public key, counter) as JSON; `sign_count` is its
//! counter again, so that one conditional UPDATE can settle a use.

use serde::Serialize;

use super::{Named, SqlStore};
use crate::error::Result;

/// A stored passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The credential id, base64url.
    pub credential_id: String,
    /// Its owner.
    pub identity_id: String,
    /// The owner's WebAuthn user handle (a UUID), the same on all their
    /// passkeys.
    pub user_handle: String,
    /// The name its owner gave it.
    pub name: String,
    /// The relying party's credential record, as JSON.
    pub passkey: String,
    /// The authenticator's signature counter at the last use.
    pub sign_count: i64,
    /// When it was added.
    pub created_at: i64,
    /// When it was last used to sign in.
    pub last_used_at: Option<i64>,
}

/// What a person (and their data export) sees of a passkey: no key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The credential id, base64url.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was added.
    pub created_at: i64,
    /// When it was last used to sign in.
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str =
    "credential_id, identity_id, user_handle, name, passkey, sign_count, created_at, last_used_at";

fn decode(r: &Named<'_>) -> Result<Row> {
    Ok(Row {
        credential_id: r.string("credential_id")?,
        identity_id: r.string("identity_id")?,
        user_handle: r.string("user_handle")?,
        name: r.string("name")?,
        passkey: r.string("passkey")?,
        sign_count: r.int("sign_count")?,
        created_at: r.int("created_at")?,
        last_used_at: r.opt_int("last_used_at")?,
    })
}

fn listed(r: &Named<'_>) -> Result<Listed> {
    Ok(Listed {
        id: r.string("credential_id")?,
        name: r.string("name")?,
        created_at: r.int("created_at")?,
        last_used_at: r.opt_int("last_used_at")?,
    })
}

/// How many passkeys an identity has.
pub fn count(db: &dyn SqlStore, identity_id: &str) -> Result<i64> {
    let rows = db.execute(
        "SELECT count(*) AS n FROM passkeys WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    rows.first().map_or(Ok(0), |r| r.int("n"))
}

/// Stores a new passkey; `false` when its credential id is already stored
/// (for anyone).
pub fn insert(db: &dyn SqlStore, row: &Row) -> Result<bool> {
    let rows = db.execute(
        &format!(
            "INSERT INTO passkeys ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (credential_id) DO NOTHING RETURNING 1"
        ),
        &[
            row.credential_id.as_str().into(),
            row.identity_id.as_str().into(),
            row.user_handle.as_str().into(),
            row.name.as_str().into(),
            row.passkey.as_str().into(),
            row.sign_count.into(),
            row.created_at.into(),
            row.last_used_at.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// An identity's passkeys with their records, oldest first.
pub fn records(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<Row>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM passkeys WHERE identity_id = ? ORDER BY created_at, credential_id"
        ),
        &[identity_id.into()],
    )?
    .decode(decode)
}

/// An identity's passkeys as they are shown (and exported): name, dates and
/// credential id, never the key, oldest first.
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<Listed>> {
    db.execute(
        "SELECT credential_id, name, created_at, last_used_at FROM passkeys \
         WHERE identity_id = ? ORDER BY created_at, credential_id",
        &[identity_id.into()],
    )?
    .decode(listed)
}

/// The passkey with this credential id, whoever owns it.
pub fn by_credential(db: &dyn SqlStore, credential_id: &str) -> Result<Option<Row>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = ?"),
        &[credential_id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// The identity whose passkeys carry this user handle.
pub fn identity_of_handle(db: &dyn SqlStore, user_handle: &str) -> Result<Option<String>> {
    let rows = db.execute(
        "SELECT identity_id FROM passkeys WHERE user_handle = ? LIMIT 1",
        &[user_handle.into()],
    )?;
    rows.first().map(|r| r.string("identity_id")).transpose()
}

/// The user handle of an identity's passkeys, if it has any.
pub fn handle_of(db: &dyn SqlStore, identity_id: &str) -> Result<Option<String>> {
    let rows = db.execute(
        "SELECT user_handle FROM passkeys WHERE identity_id = ? ORDER BY created_at LIMIT 1",
        &[identity_id.into()],
    )?;
    rows.first().map(|r| r.string("user_handle")).transpose()
}

/// Records a use: the updated record, its counter and the time, only if
/// the counter is still `seen` (what the use was checked against), so that
/// of two uses checked against one counter only one is recorded. `false`
/// when another use came first.
pub fn record_use(
    db: &dyn SqlStore,
    credential_id: &str,
    passkey: &str,
    seen: i64,
    sign_count: i64,
    now: i64,
) -> Result<bool> {
    let rows = db.execute(
        "UPDATE passkeys SET passkey = ?, sign_count = ?, last_used_at = ? \
         WHERE credential_id = ? AND sign_count = ? RETURNING 1",
        &[
            passkey.into(),
            sign_count.into(),
            now.into(),
            credential_id.into(),
            seen.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// Renames an identity's passkey; `false` when it has no such passkey.
pub fn rename(
    db: &dyn SqlStore,
    identity_id: &str,
    credential_id: &str,
    name: &str,
) -> Result<bool> {
    let rows = db.execute(
        "UPDATE passkeys SET name = ? WHERE identity_id = ? AND credential_id = ? RETURNING 1",
        &[name.into(), identity_id.into(), credential_id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes an identity's passkey; `false` when it has no such passkey.
pub fn delete(db: &dyn SqlStore, identity_id: &str, credential_id: &str) -> Result<bool> {
    let rows = db.execute(
        "DELETE FROM passkeys WHERE identity_id = ? AND credential_id = ? RETURNING 1",
        &[identity_id.into(), credential_id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes every passkey of an identity (at erasure); how many.
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<usize> {
    let rows = db.execute(
        "DELETE FROM passkeys WHERE identity_id = ? RETURNING 1",
        &[identity_id.into()],
    )?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    fn row(id: &str, who: &str, at: i64) -> Row {
        Row {
            credential_id: id.into(),
            identity_id: who.into(),
            user_handle: format!("handle-{who}"),
            name: "Passkey".into(),
            passkey: "{}".into(),
            sign_count: 0,
            created_at: at,
            last_used_at: None,
        }
    }

    #[test]
    fn stored_listed_used_renamed_and_deleted_per_owner() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        assert!(insert(&db, &row("c1", "ada", 1)).unwrap());
        assert!(insert(&db, &row("c2", "ada", 2)).unwrap());
        assert!(!insert(&db, &row("c1", "bob", 3)).unwrap(), "taken id");
        assert!(insert(&db, &row("c3", "bob", 3)).unwrap());
        assert_eq!(count(&db, "ada").unwrap(), 2);
        assert_eq!(
            handle_of(&db, "ada").unwrap().as_deref(),
            Some("handle-ada")
        );
        assert_eq!(
            identity_of_handle(&db, "handle-bob").unwrap().as_deref(),
            Some("bob")
        );
        assert!(handle_of(&db, "eve").unwrap().is_none());

        assert!(record_use(&db, "c1", "{\"n\":5}", 0, 5, 10).unwrap());
        assert!(!record_use(&db, "c1", "{}", 0, 5, 11).unwrap(), "stale");
        let c1 = by_credential(&db, "c1").unwrap().unwrap();
        assert_eq!((c1.sign_count, c1.last_used_at), (5, Some(10)));

        assert!(!rename(&db, "bob", "c1", "Mine").unwrap());
        assert!(rename(&db, "ada", "c1", "Laptop").unwrap());
        let listed = for_identity(&db, "ada").unwrap();
        assert_eq!(listed[0].name, "Laptop");
        assert_eq!(listed.len(), 2);
        assert_eq!(records(&db, "ada").unwrap().len(), 2);

        assert!(!delete(&db, "bob", "c2").unwrap());
        assert!(delete(&db, "ada", "c2").unwrap());
        assert_eq!(delete_for_identity(&db, "ada").unwrap(), 1);
        assert_eq!(count(&db, "bob").unwrap(), 1);
    }
}
