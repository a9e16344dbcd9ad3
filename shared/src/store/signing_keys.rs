//! The `signing_keys` table: the keys `dev_mode` generates, at most one
//! current and one next per algorithm. Production keys live in variables.

use serde_json::Value as Json;

use super::SqlStore;
use crate::error::{Error, Result};

/// A stored key's public half.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    /// Its `kid`.
    pub kid: String,
    /// Its JOSE algorithm name.
    pub alg: String,
    /// Its public JWK.
    pub public_jwk: Json,
}

/// The current and next keys, ES256 first, then EdDSA, then RS256, current
/// before next.
pub fn published(db: &dyn SqlStore) -> Result<Vec<StoredKey>> {
    db.execute(
        "SELECT kid, alg, public_jwk FROM signing_keys WHERE role IN ('current', 'next') \
         ORDER BY CASE alg WHEN 'ES256' THEN 0 WHEN 'EdDSA' THEN 1 ELSE 2 END, \
         CASE role WHEN 'current' THEN 0 ELSE 1 END",
        &[],
    )?
    .decode(|r| {
        Ok(StoredKey {
            kid: r.string("kid")?,
            alg: r.string("alg")?,
            public_jwk: serde_json::from_str(r.text("public_jwk")?)
                .map_err(|e| Error::Internal(format!("stored JWK unreadable: {e}")))?,
        })
    })
}

/// Stores a generated key unless its (algorithm, role) is taken: the first of
/// racing instances wins, and the others use its key.
pub fn insert(
    db: &dyn SqlStore,
    key: &StoredKey,
    role: &str,
    private_jwk: &str,
    now: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO signing_keys (kid, alg, role, private_key, public_jwk, created_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        &[
            key.kid.as_str().into(),
            key.alg.as_str().into(),
            role.into(),
            private_jwk.as_bytes().to_vec().into(),
            key.public_jwk.to_string().into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// The private JWK of the current key for an algorithm, if there is one.
pub fn current_private(db: &dyn SqlStore, alg: &str) -> Result<Option<String>> {
    let rows = db.execute(
        "SELECT private_key FROM signing_keys WHERE role = 'current' AND alg = ?",
        &[alg.into()],
    )?;
    rows.first()
        .map(|r| {
            String::from_utf8(r.blob("private_key")?.to_vec())
                .map_err(|_| Error::Internal("stored dev key is not UTF-8".into()))
        })
        .transpose()
}
