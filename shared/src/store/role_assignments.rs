//! The `role_assignments` table: roles of a service's catalogue given to a
//! member, on the whole service (`project_id` empty) or on one project.

use super::{Named, SqlStore};
use crate::error::Result;

/// One role given to one member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    /// The member.
    #[serde(rename = "sub")]
    pub identity_id: String,
    /// The service.
    pub client_id: String,
    /// The project, or empty for the whole service.
    #[serde(default)]
    pub project_id: String,
    /// The role.
    pub role: String,
}

const COLUMNS: &str = "identity_id, client_id, project_id, role";

fn decode(r: &Named<'_>) -> Result<Assignment> {
    Ok(Assignment {
        identity_id: r.string("identity_id")?,
        client_id: r.string("client_id")?,
        project_id: r.string("project_id")?,
        role: r.string("role")?,
    })
}

/// Gives a role; `false` when the member already had it.
pub fn insert(
    db: &dyn SqlStore,
    org_id: &str,
    a: &Assignment,
    granted_by: &str,
    now: i64,
) -> Result<bool> {
    let rows = db.execute(
        "INSERT INTO role_assignments (org_id, identity_id, client_id, project_id, role, granted_by, granted_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING role",
        &[
            org_id.into(),
            a.identity_id.as_str().into(),
            a.client_id.as_str().into(),
            a.project_id.as_str().into(),
            a.role.as_str().into(),
            granted_by.into(),
            now.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// Gives the roles that a pending, unexpired invitation for `email` carries
/// (its `grants`, a JSON array) to `identity_id`, in one statement, for the
/// services the organisation still has active. Safe to run any number of
/// times: the primary key keeps one row per role.
pub fn insert_from_invitation(
    db: &dyn SqlStore,
    token_hash: &str,
    identity_id: &str,
    email: &str,
    now: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO role_assignments (org_id, identity_id, client_id, project_id, role, granted_by, granted_at) \
         SELECT i.org_id, ?1, json_extract(g.value, '$.client_id'), \
                coalesce(json_extract(g.value, '$.project_id'), ''), json_extract(g.value, '$.role'), \
                i.invited_by, ?2 \
         FROM invitations i, json_each(i.grants) g \
         WHERE i.token_hash = ?3 AND i.state = 'pending' AND i.expires_at > ?2 AND i.email = ?4 \
         AND EXISTS (SELECT 1 FROM activations a WHERE a.org_id = i.org_id \
             AND a.client_id = json_extract(g.value, '$.client_id') AND a.status = 'active') \
         ON CONFLICT DO NOTHING",
        &[identity_id.into(), now.into(), token_hash.into(), email.into()],
    )?;
    Ok(())
}

/// Takes a role away; `false` when the member did not have it.
pub fn delete(db: &dyn SqlStore, org_id: &str, a: &Assignment) -> Result<bool> {
    let rows = db.execute(
        "DELETE FROM role_assignments WHERE org_id = ? AND identity_id = ? AND client_id = ? \
         AND project_id = ? AND role = ? RETURNING role",
        &[
            org_id.into(),
            a.identity_id.as_str().into(),
            a.client_id.as_str().into(),
            a.project_id.as_str().into(),
            a.role.as_str().into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// Every assignment in an organisation.
pub fn for_org(db: &dyn SqlStore, org_id: &str) -> Result<Vec<Assignment>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM role_assignments WHERE org_id = ? \
             ORDER BY identity_id, client_id, project_id, role"
        ),
        &[org_id.into()],
    )?
    .decode(decode)
}

/// One member's assignments in an organisation.
pub fn for_member(db: &dyn SqlStore, org_id: &str, identity_id: &str) -> Result<Vec<Assignment>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM role_assignments WHERE org_id = ? AND identity_id = ? \
             ORDER BY client_id, project_id, role"
        ),
        &[org_id.into(), identity_id.into()],
    )?
    .decode(decode)
}

/// Takes away all of a member's roles (they left or were removed).
pub fn delete_for_member(db: &dyn SqlStore, org_id: &str, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM role_assignments WHERE org_id = ? AND identity_id = ?",
        &[org_id.into(), identity_id.into()],
    )?;
    Ok(())
}

/// Takes away every role on a project (it was deleted).
pub fn delete_for_project(db: &dyn SqlStore, org_id: &str, project_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM role_assignments WHERE org_id = ? AND project_id = ?",
        &[org_id.into(), project_id.into()],
    )?;
    Ok(())
}

/// Deletes every assignment of an organisation.
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM role_assignments WHERE org_id = ?",
        &[org_id.into()],
    )?;
    Ok(())
}

/// Deletes every role of a client (it is deleted, or its id reused).
pub fn delete_for_client(db: &dyn SqlStore, client_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM role_assignments WHERE client_id = ?",
        &[client_id.into()],
    )?;
    Ok(())
}

/// Every role of an identity, in every organisation, with the
/// organisation (for the export).
pub fn for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<Vec<(String, Assignment)>> {
    db.execute(
        &format!(
            "SELECT org_id, {COLUMNS} FROM role_assignments WHERE identity_id = ? \
             ORDER BY org_id, client_id, project_id, role"
        ),
        &[identity_id.into()],
    )?
    .decode(|r| Ok((r.string("org_id")?, decode(r)?)))
}

/// Deletes every role of an identity, in every organisation (erasure).
pub fn delete_for_identity(db: &dyn SqlStore, identity_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM role_assignments WHERE identity_id = ?",
        &[identity_id.into()],
    )?;
    Ok(())
}

/// Replaces an erased person as the one who granted roles to others.
pub fn anonymise_granter(db: &dyn SqlStore, identity_id: &str, erased: &str) -> Result<()> {
    db.execute(
        "UPDATE role_assignments SET granted_by = ? WHERE granted_by = ?",
        &[erased.into(), identity_id.into()],
    )?;
    Ok(())
}
