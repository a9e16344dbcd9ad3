//! The `pending_links` table: an upstream account whose email matches an
//! existing account that must be proven with its password before the link
//! is made. The token is stored as SHA-256 and used once ([`take`]).

use super::{Named, SqlStore};
use crate::error::Result;

/// A link waiting for the existing account's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLink {
    /// The existing account.
    pub identity_id: String,
    /// The upstream issuer.
    pub issuer: String,
    /// The upstream subject.
    pub subject: String,
    /// The connection the upstream sign-in came through.
    pub connection_id: String,
    /// The upstream email.
    pub email: Option<String>,
    /// Where to go once linked (a local path).
    pub return_to: Option<String>,
    /// When it stops working.
    pub expires_at: i64,
}

const COLUMNS: &str = "identity_id, issuer, subject, connection_id, email, return_to, expires_at";

fn decode(r: &Named<'_>) -> Result<PendingLink> {
    Ok(PendingLink {
        identity_id: r.string("identity_id")?,
        issuer: r.string("issuer")?,
        subject: r.string("subject")?,
        connection_id: r.string("connection_id")?,
        email: r.opt_string("email")?,
        return_to: r.opt_string("return_to")?,
        expires_at: r.int("expires_at")?,
    })
}

/// Stores a pending link under the hash of its token.
pub fn insert(db: &dyn SqlStore, hash: &str, p: &PendingLink) -> Result<()> {
    db.execute(
        &format!("INSERT INTO pending_links (hash, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            hash.into(),
            p.identity_id.as_str().into(),
            p.issuer.as_str().into(),
            p.subject.as_str().into(),
            p.connection_id.as_str().into(),
            p.email.as_deref().into(),
            p.return_to.as_deref().into(),
            p.expires_at.into(),
        ],
    )?;
    Ok(())
}

/// The unused, unexpired pending link under this hash (for the page before
/// the password is checked).
pub fn peek(db: &dyn SqlStore, hash: &str, now: i64) -> Result<Option<PendingLink>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM pending_links WHERE hash = ? AND used_at IS NULL AND expires_at > ?"
        ),
        &[hash.into(), now.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Uses an unused, unexpired pending link, in one statement: of two
/// concurrent uses, one gets it.
pub fn take(db: &dyn SqlStore, hash: &str, now: i64) -> Result<Option<PendingLink>> {
    let rows = db.execute(
        &format!(
            "UPDATE pending_links SET used_at = ?1 WHERE hash = ?2 AND used_at IS NULL \
             AND expires_at > ?1 RETURNING {COLUMNS}"
        ),
        &[now.into(), hash.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Deletes at most `limit` pending links that expired before `before`.
pub fn sweep(db: &dyn SqlStore, before: i64, limit: i64) -> Result<usize> {
    super::sweep_expired(db, "pending_links", "expires_at < ?1", before, limit)
}

/// Deletes the pending links of an identity or its address (erasure).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str, email: &str) -> Result<()> {
    db.execute(
        "DELETE FROM pending_links WHERE identity_id = ? OR email = ?",
        &[identity_id.into(), email.into()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    #[test]
    fn used_once_in_time() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        let p = PendingLink {
            identity_id: "id-a".into(),
            issuer: "https://op.example".into(),
            subject: "s1".into(),
            connection_id: "example".into(),
            email: Some("ada@example.com".into()),
            return_to: None,
            expires_at: 600,
        };
        insert(&db, "h", &p).unwrap();
        assert_eq!(peek(&db, "h", 10).unwrap(), Some(p.clone()));
        assert!(peek(&db, "h", 600).unwrap().is_none(), "expired");
        assert!(take(&db, "h", 600).unwrap().is_none(), "expired");
        assert_eq!(take(&db, "h", 10).unwrap(), Some(p));
        assert!(take(&db, "h", 11).unwrap().is_none(), "used");
        assert!(peek(&db, "h", 11).unwrap().is_none(), "used");
        assert_eq!(sweep(&db, 601, 10).unwrap(), 1);
    }
}
