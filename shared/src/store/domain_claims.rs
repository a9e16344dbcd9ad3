//! The `domain_claims` table: organisations' claims on email domains, and
//! which claim is proven (by a DNS TXT record, see `social::domains`).
//!
//! Several organisations may claim a domain; only one claim per domain can
//! be verified, which the partial unique index `domain_claims_verified`
//! enforces: [`verify`] is one `UPDATE OR IGNORE`, so of two organisations
//! proving the same domain at once exactly one succeeds.

use serde::Serialize;

use super::{Named, SqlStore};
use crate::error::Result;

/// An organisation's claim on a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// The domain, lower-case (`example.com`).
    pub domain: String,
    /// The organisation that claims it.
    pub org_id: String,
    /// The organisation's connection its people are sent to; `None`: the
    /// organisation's first enabled connection.
    pub connection_id: Option<String>,
    /// The value of the TXT record that proves it: published, not secret.
    pub token: String,
    /// When it was proven, if it was.
    pub verified_at: Option<i64>,
    /// When it was claimed.
    pub created_at: i64,
}

const COLUMNS: &str = "domain, org_id, connection_id, token, verified_at, created_at";

fn decode(r: &Named<'_>) -> Result<Claim> {
    Ok(Claim {
        domain: r.string("domain")?,
        org_id: r.string("org_id")?,
        connection_id: r.opt_string("connection_id")?,
        token: r.string("token")?,
        verified_at: r.opt_int("verified_at")?,
        created_at: r.int("created_at")?,
    })
}

/// Stores a new claim; `false` when the organisation already claims the
/// domain (one statement: racing claims make one row).
pub fn insert(db: &dyn SqlStore, c: &Claim) -> Result<bool> {
    let rows = db.execute(
        &format!(
            "INSERT INTO domain_claims ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (domain, org_id) DO NOTHING RETURNING domain"
        ),
        &[
            c.domain.as_str().into(),
            c.org_id.as_str().into(),
            c.connection_id.as_deref().into(),
            c.token.as_str().into(),
            c.verified_at.into(),
            c.created_at.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// The organisation's claim on a domain.
pub fn get(db: &dyn SqlStore, domain: &str, org_id: &str) -> Result<Option<Claim>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM domain_claims WHERE domain = ? AND org_id = ?"),
        &[domain.into(), org_id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// An organisation's claims, by domain.
pub fn for_org(db: &dyn SqlStore, org_id: &str) -> Result<Vec<Claim>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM domain_claims WHERE org_id = ? ORDER BY domain"),
        &[org_id.into()],
    )?
    .decode(decode)
}

/// The verified claim on a domain, whoever holds it.
pub fn verified(db: &dyn SqlStore, domain: &str) -> Result<Option<Claim>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM domain_claims WHERE domain = ? AND verified_at IS NOT NULL"
        ),
        &[domain.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Marks the organisation's claim verified: the claim, or `None` when it
/// is not there, already verified, or another organisation's claim on the
/// domain is verified. One statement: `OR IGNORE` makes the partial unique
/// index skip the row instead of failing, so of racing verifications of a
/// domain one wins and the others change nothing.
pub fn verify(db: &dyn SqlStore, domain: &str, org_id: &str, now: i64) -> Result<Option<Claim>> {
    let rows = db.execute(
        &format!(
            "UPDATE OR IGNORE domain_claims SET verified_at = ? \
             WHERE domain = ? AND org_id = ? AND verified_at IS NULL RETURNING {COLUMNS}"
        ),
        &[now.into(), domain.into(), org_id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Removes the organisation's claim; the removed claim, if there was one.
pub fn delete(db: &dyn SqlStore, domain: &str, org_id: &str) -> Result<Option<Claim>> {
    let rows = db.execute(
        &format!("DELETE FROM domain_claims WHERE domain = ? AND org_id = ? RETURNING {COLUMNS}"),
        &[domain.into(), org_id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Forgets a deleted connection in the organisation's claims: they route to
/// its first enabled connection again.
pub fn forget_connection(db: &dyn SqlStore, org_id: &str, connection_id: &str) -> Result<()> {
    db.execute(
        "UPDATE domain_claims SET connection_id = NULL WHERE org_id = ? AND connection_id = ?",
        &[org_id.into(), connection_id.into()],
    )?;
    Ok(())
}

/// Deletes every claim of an organisation.
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM domain_claims WHERE org_id = ?",
        &[org_id.into()],
    )?;
    Ok(())
}

/// The SQL condition of a connection `c` that a verified claim `d` on a
/// domain sends people to: the claim's connection (or, naming none, any of
/// the organisation's), enabled, of an active organisation.
const ROUTES: &str = "d.verified_at IS NOT NULL AND c.org_id = d.org_id AND c.enabled = 1 \
     AND (d.connection_id IS NULL OR c.id = d.connection_id) \
     AND EXISTS (SELECT 1 FROM organisations o WHERE o.id = d.org_id AND o.status = 'active')";

/// The id of the connection people with an address at `domain` sign in
/// with: the one a verified claim routes to, first by id, if any.
pub fn connection_for(db: &dyn SqlStore, domain: &str) -> Result<Option<String>> {
    let rows = db.execute(
        &format!(
            "SELECT c.id AS id FROM domain_claims d JOIN connections c ON {ROUTES} \
             WHERE d.domain = ? ORDER BY c.id LIMIT 1"
        ),
        &[domain.into()],
    )?;
    rows.first().map(|r| r.string("id")).transpose()
}

/// Whether any verified domain routes to a connection: the login page asks
/// for the email first only then.
pub fn any_routed(db: &dyn SqlStore) -> Result<bool> {
    let rows = db.execute(
        &format!("SELECT 1 AS one FROM domain_claims d JOIN connections c ON {ROUTES} LIMIT 1"),
        &[],
    )?;
    Ok(!rows.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    fn claim(domain: &str, org: &str) -> Claim {
        Claim {
            domain: domain.into(),
            org_id: org.into(),
            connection_id: None,
            token: format!("t-{org}"),
            verified_at: None,
            created_at: 1,
        }
    }

    #[test]
    fn one_verified_claim_per_domain() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        assert!(insert(&db, &claim("acme.test", "org_a")).unwrap());
        assert!(!insert(&db, &claim("acme.test", "org_a")).unwrap());
        assert!(insert(&db, &claim("acme.test", "org_b")).unwrap());
        assert!(verified(&db, "acme.test").unwrap().is_none());
        let v = verify(&db, "acme.test", "org_a", 5).unwrap().unwrap();
        assert_eq!(v.verified_at, Some(5));
        assert!(verify(&db, "acme.test", "org_a", 6).unwrap().is_none());
        assert!(
            verify(&db, "acme.test", "org_b", 6).unwrap().is_none(),
            "the index keeps one verified claim"
        );
        assert_eq!(verified(&db, "acme.test").unwrap().unwrap().org_id, "org_a");
        assert_eq!(for_org(&db, "org_b").unwrap().len(), 1);
        assert!(delete(&db, "acme.test", "org_a").unwrap().is_some());
        assert!(delete(&db, "acme.test", "org_a").unwrap().is_none());
        assert!(verify(&db, "acme.test", "org_b", 7).unwrap().is_some());
        delete_for_org(&db, "org_b").unwrap();
        assert!(verified(&db, "acme.test").unwrap().is_none());
        assert!(!any_routed(&db).unwrap());
    }
}
