//! The orgs component: the organisation pages under `/orgs` ([`super::org_pages`]),
//! the JSON API under `/api/orgs` ([`super::org_api`]) and the operator's
//! organisation API ([`super::org_admin`]).

use super::{org_admin, org_api, org_pages, style_for};
use crate::Env;
use crate::accounts::Auth;
use crate::web::{Request, Response};

/// Routes a request to the orgs component.
pub fn handle(env: &Env, req: Request) -> Response {
    let path = req.uri().path();
    let result = if org_admin::serves(path) {
        org_admin::handle(env, &req)
    } else {
        Auth::load(env.vars).and_then(|auth| {
            if path == org_api::PREFIX || path.starts_with("/api/orgs/") {
                Ok(org_api::route(env, &auth, &req))
            } else {
                org_pages::route(env, &auth, &req)
            }
        })
    };
    result.unwrap_or_else(|e| e.into_response(style_for(req.uri().path())))
}
