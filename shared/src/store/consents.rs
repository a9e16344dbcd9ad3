//! The `consents` table: what a person let an application have, one row per
//! (identity, client).

use super::{Named, SqlStore};
use crate::error::Result;

/// The scopes granted to a client, if any.
pub fn scopes(
    db: &dyn SqlStore,
    identity_id: &str,
    client_id: &str,
) -> Result<Option<Vec<String>>> {
    let rows = db.execute(
        "SELECT scopes FROM consents WHERE identity_id = ? AND client_id = ?",
        &[identity_id.into(), client_id.into()],
    )?;
    rows.first()
        .map(|r| {
            r.text("scopes")
                .map(|t| t.split_ascii_whitespace().map(str::to_owned).collect())
        })
        .transpose()
}

/// Stores the scopes granted (all of them, replacing what was there).
pub fn upsert(
    db: &dyn SqlStore,
    identity_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO consents (identity_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (identity_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        &[identity_id.into(), client_id.into(), scopes.join(" ").into(), now.into()],
    )?;
    Ok(())
}

/// Forgets every consent given to a client (the client is being deleted).
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM consents WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}

/// A consent: the scopes a person let a client have, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Consent {
    /// The client.
    pub client_id: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When they were (last) granted.
    pub granted_at: i64,
}

fn decode(r: &Named<'_>) -> Result<Consent> {
    Ok(Consent {
        client_id: r.string("client_id")?,
        scopes: r
            .text("scopes")?
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect(),
        granted_at: r.int("granted_at")?,
    })
}

/// The consents of an identity, the most recent first.
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<Consent>> {
    db.execute(
        "SELECT client_id, scopes, granted_at FROM consents WHERE identity_id = ? \
         ORDER BY granted_at DESC, client_id",
        &[identity_id.into()],
    )?
    .decode(decode)
}

/// Forgets the consent an identity gave a client; `true` when there was one.
pub fn delete(db: &dyn SqlStore, identity_id: &str, client_id: &str) -> Result<bool> {
    let rows = db.execute(
        "DELETE FROM consents WHERE identity_id = ? AND client_id = ? RETURNING client_id",
        &[identity_id.into(), client_id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Forgets every consent of an identity (for erasure).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM consents WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}
