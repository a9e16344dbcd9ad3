//! The `mandates` table: principal organisation A lets an agent
//! (organisation B, or the person it names by email) act for it on a
//! service, with roles, between two times. Accepting and revoking are each
//! one conditional UPDATE: of two racing changes, one wins.

use super::{Named, SqlStore};
use crate::error::{Error, Result};

/// A mandate, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mandate {
    /// `mnd_…`.
    pub id: String,
    /// A, the organisation represented.
    pub principal_org_id: String,
    /// B, the agent organisation, if the agent is one.
    pub agent_org_id: Option<String>,
    /// The named person's (normalised) email, if the agent is a person.
    pub agent_email: Option<String>,
    /// The named person, once they accepted.
    pub agent_identity_id: Option<String>,
    /// The service.
    pub client_id: String,
    /// A project of it, or empty for the whole service.
    pub project_id: String,
    /// Roles of the service's catalogue.
    pub roles: Vec<String>,
    /// The template it was made from.
    pub template_id: Option<String>,
    /// From when it may be used.
    pub not_before: i64,
    /// Until when.
    pub expires_at: i64,
    /// `offered`, `accepted` or `revoked`.
    pub state: String,
    /// Every active member of B may use it.
    pub all_members: bool,
    /// Who offered it.
    pub created_by: String,
    /// When.
    pub created_at: i64,
    /// Who accepted it.
    pub accepted_by: Option<String>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

impl Mandate {
    /// The state as people see it: an offered or accepted mandate past its
    /// end is `expired`.
    pub fn state_at(&self, now: i64) -> &str {
        if self.state != "revoked" && self.expires_at <= now {
            "expired"
        } else {
            &self.state
        }
    }
}

const COLUMNS: &str = "id, principal_org_id, agent_org_id, agent_email, agent_identity_id, client_id, \
     project_id, roles, template_id, not_before, expires_at, state, all_members, created_by, \
     created_at, accepted_by, revoked_by";

fn decode(r: &Named<'_>) -> Result<Mandate> {
    Ok(Mandate {
        id: r.string("id")?,
        principal_org_id: r.string("principal_org_id")?,
        agent_org_id: r.opt_string("agent_org_id")?,
        agent_email: r.opt_string("agent_email")?,
        agent_identity_id: r.opt_string("agent_identity_id")?,
        client_id: r.string("client_id")?,
        project_id: r.string("project_id")?,
        roles: serde_json::from_str(r.text("roles")?).unwrap_or_default(),
        template_id: r.opt_string("template_id")?,
        not_before: r.int("not_before")?,
        expires_at: r.int("expires_at")?,
        state: r.string("state")?,
        all_members: r.bool("all_members")?,
        created_by: r.string("created_by")?,
        created_at: r.int("created_at")?,
        accepted_by: r.opt_string("accepted_by")?,
        revoked_by: r.opt_string("revoked_by")?,
    })
}

fn first(rows: &super::Rows) -> Result<Option<Mandate>> {
    rows.first().map(|r| decode(&r)).transpose()
}

/// Stores an offered mandate; `token_hash` is the named person's link.
pub fn insert(db: &dyn SqlStore, m: &Mandate, token_hash: Option<&str>) -> Result<()> {
    let roles =
        serde_json::to_string(&m.roles).map_err(|e| Error::Internal(format!("roles: {e}")))?;
    db.execute(
        "INSERT INTO mandates (id, principal_org_id, agent_org_id, agent_email, client_id, project_id, \
         roles, template_id, not_before, expires_at, state, all_members, token_hash, created_by, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'offered', 0, ?, ?, ?)",
        &[
            m.id.as_str().into(),
            m.principal_org_id.as_str().into(),
            m.agent_org_id.as_deref().into(),
            m.agent_email.as_deref().into(),
            m.client_id.as_str().into(),
            m.project_id.as_str().into(),
            roles.into(),
            m.template_id.as_deref().into(),
            m.not_before.into(),
            m.expires_at.into(),
            token_hash.into(),
            m.created_by.as_str().into(),
            m.created_at.into(),
        ],
    )?;
    Ok(())
}

/// One mandate.
pub fn get(db: &dyn SqlStore, id: &str) -> Result<Option<Mandate>> {
    first(&db.execute(
        &format!("SELECT {COLUMNS} FROM mandates WHERE id = ?"),
        &[id.into()],
    )?)
}

/// The mandate whose person's link hashes to this.
pub fn by_token(db: &dyn SqlStore, token_hash: &str) -> Result<Option<Mandate>> {
    first(&db.execute(
        &format!("SELECT {COLUMNS} FROM mandates WHERE token_hash = ?"),
        &[token_hash.into()],
    )?)
}

/// The mandates an organisation gave, newest first.
pub fn given(db: &dyn SqlStore, org_id: &str) -> Result<Vec<Mandate>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM mandates WHERE principal_org_id = ? ORDER BY created_at DESC, id LIMIT 500"
        ),
        &[org_id.into()],
    )?
    .decode(decode)
}

/// The mandates an organisation received, newest first.
pub fn received(db: &dyn SqlStore, org_id: &str) -> Result<Vec<Mandate>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM mandates WHERE agent_org_id = ? ORDER BY created_at DESC, id LIMIT 500"
        ),
        &[org_id.into()],
    )?
    .decode(decode)
}

/// The mandates naming a person: accepted by them, or offered to their
/// address.
pub fn for_person(db: &dyn SqlStore, identity_id: &str, email: &str) -> Result<Vec<Mandate>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM mandates WHERE agent_identity_id = ?1 \
             OR (agent_identity_id IS NULL AND agent_email = ?2) ORDER BY created_at DESC, id LIMIT 500"
        ),
        &[identity_id.into(), email.into()],
    )?
    .decode(decode)
}

/// B accepts an offered, unexpired mandate, in one statement; `None` when
/// it is not (any more) acceptable.
pub fn accept_by_org(
    db: &dyn SqlStore,
    id: &str,
    agent_org_id: &str,
    by: &str,
    all_members: bool,
    now: i64,
) -> Result<Option<Mandate>> {
    first(&db.execute(
        &format!(
            "UPDATE mandates SET state = 'accepted', accepted_by = ?3, accepted_at = ?4, all_members = ?5 \
             WHERE id = ?1 AND agent_org_id = ?2 AND state = 'offered' AND expires_at > ?4 \
             RETURNING {COLUMNS}"
        ),
        &[
            id.into(),
            agent_org_id.into(),
            by.into(),
            now.into(),
            all_members.into(),
        ],
    )?)
}

/// The named person accepts through their link, in one statement; `None`
/// when it is not (any more) acceptable or not for this address.
pub fn accept_by_person(
    db: &dyn SqlStore,
    token_hash: &str,
    identity_id: &str,
    email: &str,
    now: i64,
) -> Result<Option<Mandate>> {
    first(&db.execute(
        &format!(
            "UPDATE mandates SET state = 'accepted', agent_identity_id = ?2, accepted_by = ?2, accepted_at = ?4 \
             WHERE token_hash = ?1 AND agent_email = ?3 AND state = 'offered' AND expires_at > ?4 \
             RETURNING {COLUMNS}"
        ),
        &[token_hash.into(), identity_id.into(), email.into(), now.into()],
    )?)
}

/// Whether every active member of B may use an accepted mandate.
pub fn set_all_members(db: &dyn SqlStore, id: &str, all: bool) -> Result<()> {
    db.execute(
        "UPDATE mandates SET all_members = ? WHERE id = ?",
        &[all.into(), id.into()],
    )?;
    Ok(())
}

/// Revokes an offered or accepted mandate; `false` when it was revoked already.
pub fn revoke(db: &dyn SqlStore, id: &str, by: &str, now: i64) -> Result<bool> {
    let rows = db.execute(
        "UPDATE mandates SET state = 'revoked', revoked_by = ?, revoked_at = ? \
         WHERE id = ? AND state != 'revoked' RETURNING id",
        &[by.into(), now.into(), id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes the mandates an organisation gave or received (it is deleted).
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM mandates WHERE principal_org_id = ?1 OR agent_org_id = ?1",
        &[org_id.into()],
    )?;
    Ok(())
}

/// Deletes the mandates on a service (it is deleted, or its id reused).
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM mandates WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}

/// Ends the mandates whose agent is an erased person: revoked (if not
/// already), their link voided, the address and id replaced by `erased`.
/// Returns (mandate id, principal organisation) of those it changed.
pub fn erase_agent(
    db: &dyn SqlStore,
    identity_id: &str,
    email: &str,
    erased: &str,
    now: i64,
) -> Result<Vec<(String, String)>> {
    db.execute(
        "UPDATE mandates SET agent_identity_id = NULL, agent_email = ?3, token_hash = NULL, \
         revoked_at = CASE WHEN state = 'revoked' THEN revoked_at ELSE ?4 END, \
         revoked_by = CASE WHEN state = 'revoked' THEN revoked_by ELSE ?3 END, \
         state = 'revoked' \
         WHERE agent_identity_id = ?1 OR agent_email = ?2 RETURNING id, principal_org_id",
        &[identity_id.into(), email.into(), erased.into(), now.into()],
    )?
    .decode(|r| Ok((r.string("id")?, r.string("principal_org_id")?)))
}

/// Replaces an erased person as the one who offered, accepted or revoked
/// mandates.
pub fn anonymise(db: &dyn SqlStore, identity_id: &str, erased: &str) -> Result<()> {
    for column in ["created_by", "accepted_by", "revoked_by"] {
        db.execute(
            &format!("UPDATE mandates SET {column} = ?2 WHERE {column} = ?1"),
            &[identity_id.into(), erased.into()],
        )?;
    }
    Ok(())
}
