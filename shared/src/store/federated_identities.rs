//! The `federated_identities` table: the upstream accounts linked to a
//! Lanyard identity, one row per (upstream issuer, upstream subject).

use super::{Named, SqlStore};
use crate::error::Result;

/// An upstream account linked to an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedIdentity {
    /// The upstream issuer (`https://github.com` for GitHub).
    pub issuer: String,
    /// The upstream subject.
    pub subject: String,
    /// The connection it was linked through.
    pub connection_id: String,
    /// The Lanyard identity.
    pub identity_id: String,
    /// The upstream email at the last sign-in, if any.
    pub email: Option<String>,
    /// When it was linked.
    pub created_at: i64,
    /// When it last signed in.
    pub last_used_at: i64,
}

const COLUMNS: &str =
    "issuer, subject, connection_id, identity_id, email, created_at, last_used_at";

fn decode(r: &Named<'_>) -> Result<FederatedIdentity> {
    Ok(FederatedIdentity {
        issuer: r.string("issuer")?,
        subject: r.string("subject")?,
        connection_id: r.string("connection_id")?,
        identity_id: r.string("identity_id")?,
        email: r.opt_string("email")?,
        created_at: r.int("created_at")?,
        last_used_at: r.int("last_used_at")?,
    })
}

/// Links an upstream account unless it is linked already, in one
/// statement: of any number of concurrent links of one upstream account,
/// one row is made. Returns the row that holds the upstream account now
/// (this one, or the one that was there), so the caller can tell whether
/// it belongs to the identity it meant.
pub fn insert(db: &dyn SqlStore, f: &FederatedIdentity) -> Result<FederatedIdentity> {
    let rows = db.execute(
        &format!(
            "INSERT INTO federated_identities ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (issuer, subject) DO NOTHING RETURNING {COLUMNS}"
        ),
        &[
            f.issuer.as_str().into(),
            f.subject.as_str().into(),
            f.connection_id.as_str().into(),
            f.identity_id.as_str().into(),
            f.email.as_deref().into(),
            f.created_at.into(),
            f.last_used_at.into(),
        ],
    )?;
    match rows.first().map(|r| decode(&r)).transpose()? {
        Some(made) => Ok(made),
        None => get(db, &f.issuer, &f.subject)?.ok_or_else(|| {
            crate::error::Error::Internal("a federated identity vanished while linking".into())
        }),
    }
}

/// The link of this upstream account, if any.
pub fn get(db: &dyn SqlStore, issuer: &str, subject: &str) -> Result<Option<FederatedIdentity>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM federated_identities WHERE issuer = ? AND subject = ?"),
        &[issuer.into(), subject.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// An identity's links, oldest first.
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<FederatedIdentity>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM federated_identities WHERE identity_id = ? \
             ORDER BY created_at, connection_id"
        ),
        &[identity_id.into()],
    )?
    .decode(decode)
}

/// Records a sign-in through a link (and the upstream email it came with).
pub fn touch(
    db: &dyn SqlStore,
    issuer: &str,
    subject: &str,
    email: Option<&str>,
    now: i64,
) -> Result<()> {
    db.execute(
        "UPDATE federated_identities SET last_used_at = ?, email = ? WHERE issuer = ? AND subject = ?",
        &[now.into(), email.into(), issuer.into(), subject.into()],
    )?;
    Ok(())
}

/// Removes one link of an identity unless it is its last way to sign in
/// (no password and no other link), in one statement, so two concurrent
/// unlinks of an identity's last two links leave one. `false` when nothing
/// was removed (no such link, or the last one).
pub fn unlink(db: &dyn SqlStore, identity_id: &str, issuer: &str, subject: &str) -> Result<bool> {
    let rows = db.execute(
        "DELETE FROM federated_identities WHERE identity_id = ?1 AND issuer = ?2 AND subject = ?3 \
         AND (EXISTS (SELECT 1 FROM identities WHERE id = ?1 AND password_hash IS NOT NULL) \
              OR EXISTS (SELECT 1 FROM federated_identities o WHERE o.identity_id = ?1 \
                         AND NOT (o.issuer = ?2 AND o.subject = ?3))) \
         RETURNING issuer",
        &[identity_id.into(), issuer.into(), subject.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes every link of an identity (the account is being deleted).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM federated_identities WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::{identities, schema};

    fn link(identity: &str, subject: &str) -> FederatedIdentity {
        FederatedIdentity {
            issuer: "https://op.example".into(),
            subject: subject.into(),
            connection_id: "example".into(),
            identity_id: identity.into(),
            email: Some("ada@example.com".into()),
            created_at: 1,
            last_used_at: 1,
        }
    }

    #[test]
    fn one_row_per_upstream_account() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        assert_eq!(
            insert(&db, &link("id-a", "s1")).unwrap().identity_id,
            "id-a"
        );
        // Another identity's attempt gets the existing row back.
        assert_eq!(
            insert(&db, &link("id-b", "s1")).unwrap().identity_id,
            "id-a"
        );
        assert_eq!(for_identity(&db, "id-a").unwrap().len(), 1);
        assert!(for_identity(&db, "id-b").unwrap().is_empty());
        touch(&db, "https://op.example", "s1", None, 9).unwrap();
        let got = get(&db, "https://op.example", "s1").unwrap().unwrap();
        assert_eq!((got.last_used_at, got.email), (9, None));
    }

    #[test]
    fn the_last_way_to_sign_in_stays() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        let no_password =
            identities::insert(&db, "id-a", "a@example.com", None, &Default::default(), 0)
                .unwrap()
                .unwrap();
        insert(&db, &link(&no_password.id, "s1")).unwrap();
        insert(&db, &link(&no_password.id, "s2")).unwrap();
        assert!(unlink(&db, "id-a", "https://op.example", "s1").unwrap());
        assert!(
            !unlink(&db, "id-a", "https://op.example", "s2").unwrap(),
            "the last link"
        );
        assert!(
            !unlink(&db, "id-a", "https://op.example", "s1").unwrap(),
            "gone already"
        );
        identities::set_password_hash(&db, "id-a", "$argon2id$x", 1).unwrap();
        assert!(
            unlink(&db, "id-a", "https://op.example", "s2").unwrap(),
            "a password remains"
        );
        insert(&db, &link("id-a", "s3")).unwrap();
        delete_for_identity(&db, "id-a").unwrap();
        assert!(for_identity(&db, "id-a").unwrap().is_empty());
    }
}
