//! The `identities` table: one row per person, keyed by a random subject id,
//! with a unique normalised email.

use serde_json::{Map, Value as Json};

use super::{Named, SqlStore};
use crate::error::Result;

/// A person's account, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The stable, random subject identifier (never the email).
    pub id: String,
    /// The normalised email address.
    pub email: String,
    /// Whether the person proved they receive mail at `email`.
    pub email_verified: bool,
    /// The argon2id PHC hash, if the account has a password.
    pub password_hash: Option<String>,
    /// Profile attributes by claim name.
    pub attributes: Map<String, Json>,
    /// Sessions created under another generation are dead.
    pub session_generation: i64,
}

const COLUMNS: &str = "id, email, email_verified, password_hash, attributes, session_generation";

fn decode(r: &Named<'_>) -> Result<Identity> {
    Ok(Identity {
        id: r.string("id")?,
        email: r.string("email")?,
        email_verified: r.bool("email_verified")?,
        password_hash: r.opt_string("password_hash")?,
        attributes: serde_json::from_str(r.text("attributes")?).unwrap_or_default(),
        session_generation: r.int("session_generation")?,
    })
}

/// The identity whose id is the SQL expression `id`, as one JSON object
/// (NULL when there is none): a scalar subquery, so that a statement of
/// another table can carry the person it names (the refresh rotation and
/// the code claim). Read back with [`from_json`].
pub(super) fn json_of(id: &str) -> String {
    format!(
        "(SELECT json_object('id', i.id, 'email', i.email, 'email_verified', i.email_verified, \
             'password_hash', i.password_hash, 'attributes', i.attributes, \
             'session_generation', i.session_generation) FROM identities i WHERE i.id = {id})"
    )
}

/// The object of [`json_of`]: the columns by name, as [`decode`] reads them.
#[derive(serde::Deserialize)]
struct IdentityRow {
    id: String,
    email: String,
    email_verified: i64,
    password_hash: Option<String>,
    attributes: String,
    session_generation: i64,
}

/// Reads what [`json_of`] returned: `None` when it was NULL (no such
/// identity).
pub(super) fn from_json(json: Option<&str>) -> Result<Option<Identity>> {
    let Some(json) = json else {
        return Ok(None);
    };
    let row: IdentityRow = serde_json::from_str(json)
        .map_err(|e| crate::error::Error::Internal(format!("identity: {e}")))?;
    Ok(Some(Identity {
        id: row.id,
        email: row.email,
        email_verified: row.email_verified != 0,
        password_hash: row.password_hash,
        attributes: serde_json::from_str(&row.attributes).unwrap_or_default(),
        session_generation: row.session_generation,
    }))
}

/// Inserts an identity unless the email is taken: `None` then, in one
/// statement, so two sign-ups racing for one address create one row.
pub fn insert(
    db: &dyn SqlStore,
    id: &str,
    email: &str,
    password_hash: Option<&str>,
    attributes: &Map<String, Json>,
    now: i64,
) -> Result<Option<Identity>> {
    let attrs = Json::Object(attributes.clone()).to_string();
    let rows = db.execute(
        &format!(
            "INSERT INTO identities (id, email, password_hash, attributes, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING RETURNING {COLUMNS}"
        ),
        &[
            id.into(),
            email.into(),
            password_hash.into(),
            attrs.into(),
            now.into(),
            now.into(),
        ],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// The identity with this (normalised) email.
pub fn by_email(db: &dyn SqlStore, email: &str) -> Result<Option<Identity>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM identities WHERE email = ?"),
        &[email.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// The identity with this subject id.
pub fn by_id(db: &dyn SqlStore, id: &str) -> Result<Option<Identity>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM identities WHERE id = ?"),
        &[id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Marks the email as verified.
pub fn mark_verified(db: &dyn SqlStore, id: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE identities SET email_verified = 1, updated_at = ? WHERE id = ?",
        &[now.into(), id.into()],
    )?;
    Ok(())
}

/// Stores a re-hashed password (same password, current parameters).
pub fn set_password_hash(db: &dyn SqlStore, id: &str, hash: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE identities SET password_hash = ?, updated_at = ? WHERE id = ?",
        &[hash.into(), now.into(), id.into()],
    )?;
    Ok(())
}

/// Sets a new password and ends every existing session (the generation
/// moves on), in one statement.
pub fn reset_password(db: &dyn SqlStore, id: &str, hash: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE identities SET password_hash = ?, session_generation = session_generation + 1, \
         updated_at = ? WHERE id = ?",
        &[hash.into(), now.into(), id.into()],
    )?;
    Ok(())
}

/// Replaces the profile attributes.
pub fn set_attributes(
    db: &dyn SqlStore,
    id: &str,
    attributes: &Map<String, Json>,
    now: i64,
) -> Result<()> {
    db.execute(
        "UPDATE identities SET attributes = ?, updated_at = ? WHERE id = ?",
        &[
            Json::Object(attributes.clone()).to_string().into(),
            now.into(),
            id.into(),
        ],
    )?;
    Ok(())
}

/// Moves an identity from `old_email` to a proven `new_email` (verified),
/// in one statement that changes nothing when the new address belongs to
/// another identity by then, or the old one is no longer the identity's:
/// `false` then.
pub fn change_email(
    db: &dyn SqlStore,
    id: &str,
    old_email: &str,
    new_email: &str,
    now: i64,
) -> Result<bool> {
    let rows = db.execute(
        "UPDATE identities SET email = ?1, email_verified = 1, updated_at = ?2 \
         WHERE id = ?3 AND email = ?4 \
         AND NOT EXISTS (SELECT 1 FROM identities WHERE email = ?1) RETURNING id",
        &[new_email.into(), now.into(), id.into(), old_email.into()],
    )?;
    Ok(!rows.is_empty())
}

/// When an identity was created and last updated (for the export).
pub fn dates(db: &dyn SqlStore, id: &str) -> Result<Option<(i64, i64)>> {
    let rows = db.execute(
        "SELECT created_at, updated_at FROM identities WHERE id = ?",
        &[id.into()],
    )?;
    rows.first()
        .map(|r| Ok((r.int("created_at")?, r.int("updated_at")?)))
        .transpose()
}

/// Deletes an identity (erasure: the last step, after every row tied to it).
pub fn delete(db: &dyn SqlStore, id: &str) -> Result<()> {
    db.execute("DELETE FROM identities WHERE id = ?", &[id.into()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    /// What another table's statement carries through [`json_of`].
    fn carried(db: &SqliteSql, id: &str) -> Option<Identity> {
        let rows = db
            .execute(&format!("SELECT {} AS who", json_of("?1")), &[id.into()])
            .unwrap();
        let json = rows.first().unwrap().opt_string("who").unwrap();
        from_json(json.as_deref()).unwrap()
    }

    #[test]
    fn the_identity_carried_as_json_is_the_stored_one() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        let attributes: Map<String, Json> = serde_json::from_value(serde_json::json!({
            "name": "Ada \"the\" Lovelace", "locale": "en-GB", "nested": {"a": [1, 2]}
        }))
        .unwrap();
        let ada = insert(
            &db,
            "sub-ada",
            "ada@example.com",
            Some("$argon2id$x"),
            &attributes,
            1,
        )
        .unwrap()
        .unwrap();
        mark_verified(&db, &ada.id, 2).unwrap();
        let bob = insert(&db, "sub-bob", "bob@example.com", None, &Map::new(), 1)
            .unwrap()
            .unwrap();
        for id in [&ada.id, &bob.id] {
            assert_eq!(carried(&db, id), by_id(&db, id).unwrap(), "{id}");
        }
        assert!(carried(&db, &ada.id).unwrap().email_verified);
        assert_eq!(carried(&db, "sub-nobody"), None);
    }
}
