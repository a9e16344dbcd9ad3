//! The `invitations` table: an organisation invites an email address, with
//! a built-in role and service or project roles (`grants`, JSON). The token
//! is stored as SHA-256. Accepting is settled by [`claim`], one conditional
//! UPDATE: of any number of concurrent accepts, one wins.

use super::role_assignments::Assignment;
use super::{Named, SqlStore};
use crate::error::Result;

/// A role an invitation grants on a service (or one project of it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// The service.
    pub client_id: String,
    /// The project, or empty for the whole service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project_id: String,
    /// A role of the service's catalogue.
    pub role: String,
}

impl Grant {
    /// The assignment this grant becomes for `identity_id`.
    pub fn to_assignment(&self, identity_id: &str) -> Assignment {
        Assignment {
            identity_id: identity_id.to_owned(),
            client_id: self.client_id.clone(),
            project_id: self.project_id.clone(),
            role: self.role.clone(),
        }
    }
}

/// An invitation, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// `inv_…`.
    pub id: String,
    /// The organisation.
    pub org_id: String,
    /// The invited (normalised) email.
    pub email: String,
    /// The built-in role it grants.
    pub org_role: String,
    /// The service and project roles it grants.
    pub grants: Vec<Grant>,
    /// Who invited.
    pub invited_by: String,
    /// `pending`, `accepted` or `revoked`.
    pub state: String,
    /// When it was (re)sent.
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// Who accepted it.
    pub accepted_by: Option<String>,
}

impl Invitation {
    /// The state as people see it: a pending invitation past its expiry is
    /// `expired`.
    pub fn state_at(&self, now: i64) -> &str {
        if self.state == "pending" && self.expires_at <= now {
            "expired"
        } else {
            &self.state
        }
    }
}

const COLUMNS: &str =
    "id, org_id, email, org_role, grants, invited_by, state, created_at, expires_at, accepted_by";

fn decode(r: &Named<'_>) -> Result<Invitation> {
    Ok(Invitation {
        id: r.string("id")?,
        org_id: r.string("org_id")?,
        email: r.string("email")?,
        org_role: r.string("org_role")?,
        grants: serde_json::from_str(r.text("grants")?).unwrap_or_default(),
        invited_by: r.string("invited_by")?,
        state: r.string("state")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        accepted_by: r.opt_string("accepted_by")?,
    })
}

/// Stores a new invitation whose token hashes to `token_hash`.
pub fn insert(db: &dyn SqlStore, inv: &Invitation, token_hash: &str) -> Result<()> {
    let grants = serde_json::to_string(&inv.grants)
        .map_err(|e| crate::error::Error::Internal(format!("grants: {e}")))?;
    db.execute(
        "INSERT INTO invitations (id, org_id, email, token_hash, org_role, grants, invited_by, state, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        &[
            inv.id.as_str().into(),
            inv.org_id.as_str().into(),
            inv.email.as_str().into(),
            token_hash.into(),
            inv.org_role.as_str().into(),
            grants.into(),
            inv.invited_by.as_str().into(),
            inv.created_at.into(),
            inv.expires_at.into(),
        ],
    )?;
    Ok(())
}

/// One invitation of an organisation.
pub fn get(db: &dyn SqlStore, org_id: &str, id: &str) -> Result<Option<Invitation>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM invitations WHERE org_id = ? AND id = ?"),
        &[org_id.into(), id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// The invitation whose token hashes to this.
pub fn by_token(db: &dyn SqlStore, token_hash: &str) -> Result<Option<Invitation>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM invitations WHERE token_hash = ?"),
        &[token_hash.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// An organisation's invitations, newest first, at most `limit`.
pub fn for_org(db: &dyn SqlStore, org_id: &str, limit: i64) -> Result<Vec<Invitation>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM invitations WHERE org_id = ? ORDER BY created_at DESC, id LIMIT ?"
        ),
        &[org_id.into(), limit.into()],
    )?
    .decode(decode)
}

/// Accepts a pending, unexpired invitation for `email` as `identity_id`, in
/// one statement; `None` when it is not (any more) acceptable.
pub fn claim(
    db: &dyn SqlStore,
    token_hash: &str,
    identity_id: &str,
    email: &str,
    now: i64,
) -> Result<Option<Invitation>> {
    let rows = db.execute(
        &format!(
            "UPDATE invitations SET state = 'accepted', accepted_by = ?1, accepted_at = ?2 \
             WHERE token_hash = ?3 AND state = 'pending' AND expires_at > ?2 AND email = ?4 \
             RETURNING {COLUMNS}"
        ),
        &[
            identity_id.into(),
            now.into(),
            token_hash.into(),
            email.into(),
        ],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Revokes a pending invitation; `false` when it was not pending.
pub fn revoke(db: &dyn SqlStore, org_id: &str, id: &str) -> Result<bool> {
    let rows = db.execute(
        "UPDATE invitations SET state = 'revoked' WHERE org_id = ? AND id = ? AND state = 'pending' \
         RETURNING id",
        &[org_id.into(), id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Gives a pending (or expired) invitation a new token and expiry; the old
/// link stops working. `false` when it is accepted or revoked.
pub fn renew(
    db: &dyn SqlStore,
    org_id: &str,
    id: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool> {
    let rows = db.execute(
        "UPDATE invitations SET token_hash = ?, created_at = ?, expires_at = ? \
         WHERE org_id = ? AND id = ? AND state = 'pending' RETURNING id",
        &[
            token_hash.into(),
            now.into(),
            expires_at.into(),
            org_id.into(),
            id.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes every invitation of an organisation.
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute("DELETE FROM invitations WHERE org_id = ?", &[org_id.into()])?;
    Ok(())
}

/// The invitations sent to an address, newest first (for the export).
pub fn for_email(db: &dyn SqlStore, email: &str) -> Result<Vec<Invitation>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM invitations WHERE email = ? ORDER BY created_at DESC, id"),
        &[email.into()],
    )?
    .decode(decode)
}

/// Keeps the organisations' invitations without naming an erased person:
/// those to their address are revoked if pending and lose the address;
/// those they sent or accepted lose their id.
pub fn anonymise(db: &dyn SqlStore, identity_id: &str, email: &str, erased: &str) -> Result<()> {
    db.execute(
        "UPDATE invitations SET email = ?3, \
         state = CASE WHEN state = 'pending' THEN 'revoked' ELSE state END WHERE email = ?2",
        &[identity_id.into(), email.into(), erased.into()],
    )?;
    db.execute(
        "UPDATE invitations SET invited_by = ?2 WHERE invited_by = ?1",
        &[identity_id.into(), erased.into()],
    )?;
    db.execute(
        "UPDATE invitations SET accepted_by = ?2 WHERE accepted_by = ?1",
        &[identity_id.into(), erased.into()],
    )?;
    Ok(())
}
