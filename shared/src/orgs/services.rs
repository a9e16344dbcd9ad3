//! Services (b2b clients) an organisation activates, the projects it
//! creates for them, and the service and project roles it gives members.

use serde::Serialize;
use serde_json::json;

use super::{Access, Level, OPERATOR, check_name, record};
use crate::crypto;
use crate::error::{Error, Result};
use crate::oidc::clients::{self, ActivationPolicy, CatalogueRole, Client};
use crate::store::invitations::Grant;
use crate::store::projects::Project;
use crate::store::role_assignments::{self, Assignment};
use crate::store::{SqlStore, activations, memberships, organisations, projects};

/// A service as an organisation sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    /// The client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// `self_service`, `approval` or `operator_only`.
    pub policy: &'static str,
    /// Its role catalogue.
    pub roles: Vec<CatalogueRole>,
    /// `requested`, `active`, `deactivated`, or `inactive` when never asked for.
    pub status: String,
}

/// The b2b service with this client id, 404 otherwise.
fn service(db: &dyn SqlStore, client_id: &str) -> Result<Client> {
    clients::get(db, client_id)?
        .filter(|c| c.b2b)
        .ok_or(Error::NotFound)
}

/// Every b2b service, with this organisation's activation of it (members).
pub fn list(db: &dyn SqlStore, access: &Access) -> Result<Vec<Service>> {
    let mine = activations::for_org(db, &access.org.id)?;
    Ok(clients::list(db)?
        .into_iter()
        .filter(|c| c.b2b)
        .map(|c| Service {
            status: mine
                .iter()
                .find(|a| a.client_id == c.id)
                .map_or_else(|| "inactive".to_owned(), |a| a.status.clone()),
            policy: c.activation_policy.as_str(),
            client_id: c.id,
            name: c.name,
            roles: c.roles,
        })
        .collect())
}

/// An admin activates a service, within its policy: at once for
/// `self_service`, as a request for `approval`; `operator_only` is refused.
/// Returns the new status.
pub fn activate(db: &dyn SqlStore, access: &Access, client_id: &str, now: i64) -> Result<String> {
    access.require_to_change(Level::Admin)?;
    let client = service(db, client_id)?;
    let before = activations::get(db, &access.org.id, client_id)?.map(|a| a.status);
    if before.as_deref() == Some("active") {
        return Ok("active".into());
    }
    let status = match client.activation_policy {
        ActivationPolicy::SelfService => "active",
        ActivationPolicy::Approval => "requested",
        ActivationPolicy::OperatorOnly => {
            return Err(Error::Forbidden(format!(
                "{} is activated by the operator only. Ask them to activate it for you.",
                client.name
            )));
        }
    };
    activations::upsert(db, &access.org.id, client_id, status, access.actor(), now)?;
    record(
        db,
        &access.org.id,
        now,
        access.actor(),
        if status == "active" {
            "service.activated"
        } else {
            "service.requested"
        },
        Some(client_id),
        before.map(|s| json!({ "status": s })).as_ref(),
        Some(&json!({ "status": status })),
    )?;
    Ok(status.into())
}

/// An admin deactivates a service: no new tokens for it, and its refresh
/// tokens stop working at their next use.
pub fn deactivate(db: &dyn SqlStore, access: &Access, client_id: &str, now: i64) -> Result<()> {
    access.require_to_change(Level::Admin)?;
    service(db, client_id)?;
    let Some(before) = activations::get(db, &access.org.id, client_id)? else {
        return Ok(());
    };
    if before.status == "deactivated" {
        return Ok(());
    }
    activations::upsert(
        db,
        &access.org.id,
        client_id,
        "deactivated",
        access.actor(),
        now,
    )?;
    record(
        db,
        &access.org.id,
        now,
        access.actor(),
        "service.deactivated",
        Some(client_id),
        Some(&json!({ "status": before.status })),
        Some(&json!({ "status": "deactivated" })),
    )
}

/// The operator sets an activation: approves a request or activates an
/// `operator_only` service (`active`), or ends one (`deactivated`).
pub fn operator_set(
    db: &dyn SqlStore,
    org_id: &str,
    client_id: &str,
    status: &str,
    now: i64,
) -> Result<()> {
    if !["active", "deactivated"].contains(&status) {
        return Err(Error::bad_request("status must be active or deactivated."));
    }
    organisations::by_id(db, org_id)?.ok_or(Error::NotFound)?;
    service(db, client_id)?;
    let before = activations::get(db, org_id, client_id)?.map(|a| a.status);
    activations::upsert(db, org_id, client_id, status, OPERATOR, now)?;
    record(
        db,
        org_id,
        now,
        OPERATOR,
        if status == "active" {
            "service.activated"
        } else {
            "service.deactivated"
        },
        Some(client_id),
        before.map(|s| json!({ "status": s })).as_ref(),
        Some(&json!({ "status": status })),
    )
}

/// Activations waiting for the operator.
pub fn requests(db: &dyn SqlStore) -> Result<Vec<activations::Activation>> {
    activations::with_status(db, "requested", 1000)
}

/// The service, active for the organisation, 400 otherwise.
pub fn active_service(db: &dyn SqlStore, access: &Access, client_id: &str) -> Result<Client> {
    let client = clients::get(db, client_id)?
        .filter(|c| c.b2b)
        .ok_or_else(|| Error::bad_request(format!("There is no service “{client_id}”.")))?;
    let active =
        activations::get(db, &access.org.id, client_id)?.is_some_and(|a| a.status == "active");
    if !active {
        return Err(Error::bad_request(format!(
            "{} is not active for {}. Activate it first.",
            client.name, access.org.name
        )));
    }
    Ok(client)
}

/// Checks that a grant names an active service of the organisation, a role
/// of its catalogue, and (if any) a project of that service.
pub fn check_grant(db: &dyn SqlStore, access: &Access, g: &Grant) -> Result<()> {
    let client = active_service(db, access, &g.client_id)?;
    if !client.role_defined(&g.role) {
        return Err(Error::bad_request(format!(
            "{} has no role “{}”.",
            client.name, g.role
        )));
    }
    if !g.project_id.is_empty() {
        let project = projects::get(db, &access.org.id, &g.project_id)?;
        if project.is_none_or(|p| p.client_id != g.client_id) {
            return Err(Error::bad_request(format!(
                "There is no project “{}” of {} here.",
                g.project_id, client.name
            )));
        }
    }
    Ok(())
}

/// The organisation's projects (members).
pub fn projects(db: &dyn SqlStore, access: &Access) -> Result<Vec<Project>> {
    projects::for_org(db, &access.org.id)
}

/// Creates a project of an active service (admins).
pub fn create_project(
    db: &dyn SqlStore,
    access: &Access,
    client_id: &str,
    name: &str,
    now: i64,
) -> Result<Project> {
    access.require_to_change(Level::Admin)?;
    let name = check_name(name, "project name")?;
    active_service(db, access, client_id)?;
    let project = Project {
        id: format!("prj_{}", crypto::random_id()?),
        org_id: access.org.id.clone(),
        client_id: client_id.to_owned(),
        name,
        created_at: now,
    };
    if !projects::insert(db, &project)? {
        return Err(Error::Conflict(format!(
            "There is already a project “{}” for this service.",
            project.name
        )));
    }
    record(
        db,
        &access.org.id,
        now,
        access.actor(),
        "project.created",
        Some(&project.id),
        None,
        Some(&json!({ "client_id": client_id, "name": project.name })),
    )?;
    Ok(project)
}

/// Deletes a project and the roles given on it (admins). The roles go first.
pub fn delete_project(db: &dyn SqlStore, access: &Access, id: &str, now: i64) -> Result<()> {
    access.require_to_change(Level::Admin)?;
    let project = projects::get(db, &access.org.id, id)?.ok_or(Error::NotFound)?;
    role_assignments::delete_for_project(db, &access.org.id, id)?;
    projects::delete(db, &access.org.id, id)?;
    record(
        db,
        &access.org.id,
        now,
        access.actor(),
        "project.deleted",
        Some(id),
        Some(&json!({ "client_id": project.client_id, "name": project.name })),
        None,
    )
}

/// Role assignments: all of them for admins, their own for members.
pub fn roles(db: &dyn SqlStore, access: &Access) -> Result<Vec<Assignment>> {
    if access.level() >= Level::Admin {
        role_assignments::for_org(db, &access.org.id)
    } else {
        role_assignments::for_member(db, &access.org.id, access.actor())
    }
}

/// Gives a member a role of an active service, on the service or a project
/// of it (admins). `false` when they had it already.
pub fn grant(db: &dyn SqlStore, access: &Access, a: &Assignment, now: i64) -> Result<bool> {
    access.require_to_change(Level::Admin)?;
    memberships::get(db, &access.org.id, &a.identity_id)?
        .ok_or_else(|| Error::bad_request("That person is not a member of this organisation."))?;
    check_grant(
        db,
        access,
        &Grant {
            client_id: a.client_id.clone(),
            project_id: a.project_id.clone(),
            role: a.role.clone(),
        },
    )?;
    let added = role_assignments::insert(db, &access.org.id, a, access.actor(), now)?;
    if added {
        record(
            db,
            &access.org.id,
            now,
            access.actor(),
            "role.granted",
            Some(&a.identity_id),
            None,
            Some(&json!(a)),
        )?;
    }
    Ok(added)
}

/// Takes a role away (admins); 404 when the member did not have it.
pub fn revoke(db: &dyn SqlStore, access: &Access, a: &Assignment, now: i64) -> Result<()> {
    access.require_to_change(Level::Admin)?;
    if !role_assignments::delete(db, &access.org.id, a)? {
        return Err(Error::NotFound);
    }
    record(
        db,
        &access.org.id,
        now,
        access.actor(),
        "role.revoked",
        Some(&a.identity_id),
        Some(&json!(a)),
        None,
    )
}
