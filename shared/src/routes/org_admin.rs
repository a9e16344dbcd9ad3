//! The operator's organisation API (`admin_token`): organisations under
//! `/api/admin/orgs` (list, create for an existing account, suspend,
//! resume), activation requests under `/api/admin/activations`, mandate
//! templates under `/api/admin/mandate-templates` and the settings under
//! `/api/admin/settings` (`mandate_max_days`).
//! Services themselves (b2b, role catalogue, policy) are client metadata,
//! under `/api/admin/clients`.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::admin;
use crate::Env;
use crate::error::{Error, Result};
use crate::identity;
use crate::orgs::{self, OPERATOR, mandates, services};
use crate::web::json_body as body;
use crate::web::{self, Params, Request, Response};

/// The organisations prefix.
const ORGS: &str = "/api/admin/orgs";
/// The activations prefix.
const ACTIVATIONS: &str = "/api/admin/activations";

/// The mandate templates prefix.
const TEMPLATES: &str = "/api/admin/mandate-templates";
/// The settings path.
const SETTINGS: &str = "/api/admin/settings";

/// Whether `path` belongs to this API.
pub fn serves(path: &str) -> bool {
    [ORGS, ACTIVATIONS, TEMPLATES]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
        || path == SETTINGS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTemplate {
    name: String,
    client_id: String,
    roles: Vec<String>,
    days: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    mandate_max_days: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    name: String,
    slug: String,
    owner_email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetActivation {
    status: String,
}

/// Serves the operator's organisation API.
pub fn handle(env: &Env, req: &Request) -> Result<Response> {
    admin::authorise(env, req)?;
    let path = req.uri().path();
    let db = env.sql;
    let now = env.now;
    if path == SETTINGS {
        match *req.method() {
            Method::GET => {}
            Method::PUT => {
                let b: Settings = body(req)?;
                mandates::set_max_days(db, b.mandate_max_days, now)?;
            }
            _ => return Err(Error::MethodNotAllowed("GET, PUT")),
        }
        return Ok(web::json(
            StatusCode::OK,
            &json!({ "mandate_max_days": mandates::max_days(db)? }),
        ));
    }
    if let Some(rest) = path.strip_prefix(TEMPLATES) {
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        return match (req.method().clone(), parts.as_slice()) {
            (Method::GET, []) => Ok(web::json(
                StatusCode::OK,
                &json!({ "templates": mandates::templates(db)? }),
            )),
            (Method::POST, []) => {
                let b: NewTemplate = body(req)?;
                let t =
                    mandates::create_template(db, &b.name, &b.client_id, &b.roles, b.days, now)?;
                Ok(web::json(StatusCode::CREATED, &t))
            }
            (_, []) => Err(Error::MethodNotAllowed("GET, POST")),
            (Method::DELETE, [id]) => {
                mandates::delete_template(db, id)?;
                Ok(web::response(
                    StatusCode::NO_CONTENT,
                    "application/json",
                    Vec::new(),
                ))
            }
            (_, [_]) => Err(Error::MethodNotAllowed("DELETE")),
            _ => Err(Error::NotFound),
        };
    }
    if let Some(rest) = path.strip_prefix(ACTIVATIONS) {
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        return match (req.method().clone(), parts.as_slice()) {
            (Method::GET, []) => {
                let q = Params::from_query(req)?;
                if q.one("status")?.is_some_and(|s| s != "requested") {
                    return Err(Error::bad_request("Only status=requested is listed."));
                }
                let list: Vec<_> = services::requests(db)?
                    .into_iter()
                    .map(|a| {
                        json!({
                            "org_id": a.org_id, "client_id": a.client_id, "status": a.status,
                            "requested_by": a.requested_by, "updated_at": a.updated_at,
                        })
                    })
                    .collect();
                Ok(web::json(StatusCode::OK, &json!({ "activations": list })))
            }
            (Method::POST, [org_id, client_id]) => {
                let b: SetActivation = body(req)?;
                services::operator_set(db, org_id, client_id, &b.status, now)?;
                Ok(web::json(
                    StatusCode::OK,
                    &json!({ "org_id": org_id, "client_id": client_id, "status": b.status }),
                ))
            }
            (_, []) => Err(Error::MethodNotAllowed("GET")),
            (_, [_, _]) => Err(Error::MethodNotAllowed("POST")),
            _ => Err(Error::NotFound),
        };
    }
    let rest = path.strip_prefix(ORGS).unwrap_or_default();
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (req.method().clone(), parts.as_slice()) {
        (Method::GET, []) => Ok(web::json(
            StatusCode::OK,
            &json!({ "organisations": orgs::all(db)? }),
        )),
        (Method::POST, []) => {
            let b: NewOrg = body(req)?;
            let email = identity::normalise_email(&b.owner_email)?;
            let owner = identity::by_email(db, &email)?.ok_or_else(|| {
                Error::bad_request(
                    "There is no account with owner_email; the owner signs up first.",
                )
            })?;
            let org = orgs::create(db, &owner, OPERATOR, &b.name, &b.slug, now)?;
            Ok(web::json(StatusCode::CREATED, &org))
        }
        (_, []) => Err(Error::MethodNotAllowed("GET, POST")),
        (Method::POST, [id, "suspend"]) => Ok(web::json(
            StatusCode::OK,
            &orgs::set_active(db, id, false, now)?,
        )),
        (Method::POST, [id, "resume"]) => Ok(web::json(
            StatusCode::OK,
            &orgs::set_active(db, id, true, now)?,
        )),
        (_, [_, "suspend" | "resume"]) => Err(Error::MethodNotAllowed("POST")),
        _ => Err(Error::NotFound),
    }
}
