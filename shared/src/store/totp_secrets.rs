//! The `totp_secrets` table: one TOTP authenticator per identity.

use super::{Named, SqlStore};
use crate::error::Result;

/// A stored authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Whose it is.
    pub identity_id: String,
    /// The shared secret, base64url (never shown again after enrolment).
    pub secret: String,
    /// When a first code confirmed it (`None` while enrolment is pending).
    pub confirmed_at: Option<i64>,
    /// The time step of the last code accepted.
    pub last_step: i64,
    /// When enrolment started.
    pub created_at: i64,
}

fn decode(r: &Named<'_>) -> Result<Row> {
    Ok(Row {
        identity_id: r.string("identity_id")?,
        secret: r.string("secret")?,
        confirmed_at: r.opt_int("confirmed_at")?,
        last_step: r.int("last_step")?,
        created_at: r.int("created_at")?,
    })
}

/// The identity's authenticator, confirmed or not.
pub fn get(db: &dyn SqlStore, identity_id: &str) -> Result<Option<Row>> {
    db.execute(
        "SELECT identity_id, secret, confirmed_at, last_step, created_at \
         FROM totp_secrets WHERE identity_id = ?",
        &[identity_id.into()],
    )?
    .first()
    .map(|r| decode(&r))
    .transpose()
}

/// Stores a new, unconfirmed secret, replacing an unconfirmed one; `false`
/// (and nothing written) when a confirmed authenticator exists.
pub fn start(db: &dyn SqlStore, identity_id: &str, secret: &str, now: i64) -> Result<bool> {
    let rows = db.execute(
        "INSERT INTO totp_secrets (identity_id, secret, confirmed_at, last_step, created_at) \
         VALUES (?1, ?2, NULL, 0, ?3) \
         ON CONFLICT (identity_id) DO UPDATE SET secret = ?2, last_step = 0, created_at = ?3 \
         WHERE totp_secrets.confirmed_at IS NULL RETURNING 1",
        &[identity_id.into(), secret.into(), now.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Confirms the unconfirmed authenticator by a first code of time step
/// `step`; `false` when there is none to confirm (already confirmed, gone).
pub fn confirm(db: &dyn SqlStore, identity_id: &str, step: i64, now: i64) -> Result<bool> {
    let rows = db.execute(
        "UPDATE totp_secrets SET confirmed_at = ?, last_step = ? \
         WHERE identity_id = ? AND confirmed_at IS NULL RETURNING 1",
        &[now.into(), step.into(), identity_id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Accepts a code of time step `step` if no code of that step or a later
/// one was accepted before: one conditional UPDATE, so that a code works
/// once even between concurrent requests.
pub fn use_step(db: &dyn SqlStore, identity_id: &str, step: i64) -> Result<bool> {
    let rows = db.execute(
        "UPDATE totp_secrets SET last_step = ?1 \
         WHERE identity_id = ?2 AND last_step < ?1 AND confirmed_at IS NOT NULL RETURNING 1",
        &[step.into(), identity_id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Removes the identity's authenticator; `false` when it had none.
pub fn delete(db: &dyn SqlStore, identity_id: &str) -> Result<bool> {
    let rows = db.execute(
        "DELETE FROM totp_secrets WHERE identity_id = ? RETURNING 1",
        &[identity_id.into()],
    )?;
    Ok(!rows.is_empty())
}
