//! The organisations JSON API under `/api/orgs/` (docs/organisations.md).
//!
//! A caller is either the session cookie, with `Content-Type:
//! application/json` on every change and an `Origin`, when sent, equal to
//! the issuer's (as `/api/account/`), or a bearer access token of Lanyard's
//! with the `orgs` scope, whose `sub` acts: so a customer's own application
//! can embed organisation administration. Errors are problem+json.

use http::{Method, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};

use crate::accounts::{self, Auth};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::identity::{self, Identity};
use crate::oidc::{clients, tokens};
use crate::orgs::invitations::{self, Invite};
use crate::orgs::members::{self, Change};
use crate::orgs::{self, Access, Level, Policy, mandates, services};
use crate::routes::cors;
use crate::routes::errors::Style;
use crate::social::{domains, org_sso};
use crate::store::invitations::Grant;
use crate::store::organisations::Organisation;
use crate::store::role_assignments::Assignment;
use crate::web::json_body as body;
use crate::web::{self, Params, Request, Response};
use crate::{Env, session};

/// The path prefix of the API.
pub const PREFIX: &str = "/api/orgs";

/// The scope a bearer token needs.
pub const SCOPE: &str = "orgs";

/// Routes `/api/orgs` and below. A browser app of another origin may call
/// it with a bearer token when the token's client registered that origin.
pub fn route(env: &Env, auth: &Auth, req: &Request) -> Response {
    if req.method() == Method::OPTIONS {
        return cors::preflight_for(env, req, "GET, POST, PUT, PATCH, DELETE")
            .unwrap_or_else(|e| e.into_response(Style::Api));
    }
    let mut origins = Vec::new();
    let mut res =
        serve(env, auth, req, &mut origins).unwrap_or_else(|e| e.into_response(Style::Api));
    cors::allow_registered(&mut res, req, &origins);
    res
}

fn serve(env: &Env, auth: &Auth, req: &Request, origins: &mut Vec<String>) -> Result<Response> {
    let rest = req.uri().path().strip_prefix(PREFIX).unwrap_or_default();
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let method = req.method().clone();
    if parts.as_slice() == ["invitations", "accept"] {
        return accept(env, auth, req);
    }
    let who = caller(env, auth, req, origins)?;
    let db = env.sql;
    let now = env.now;
    if parts.first() == Some(&"mandates") {
        return person_mandates(env, &who, req, &parts[1..]);
    }
    let Some((&slug, rest)) = parts.split_first() else {
        return match method {
            Method::GET => ok(&json!({ "organisations": mine(db, &who)? })),
            Method::POST => {
                let b: NewOrg = body(req)?;
                let org =
                    orgs::create_own(db, Policy::load(env.vars)?, &who, &b.name, &b.slug, now)?;
                created(&org_json(&org, "owner"))
            }
            _ => Err(Error::MethodNotAllowed("GET, POST")),
        };
    };
    let access = orgs::open(db, slug, &who)?;
    match (method, rest) {
        (Method::GET, []) => ok(&org_detail(env, &access)?),
        (Method::PATCH, []) => {
            let b: Rename = body(req)?;
            let org = orgs::rename(db, &access, &b.name, now)?;
            ok(&org_json(&org, &access.me.role))
        }
        (Method::DELETE, []) => {
            orgs::delete(db, &access, now)?;
            Ok(no_content())
        }
        (_, []) => Err(Error::MethodNotAllowed("GET, PATCH, DELETE")),
        (Method::GET, ["members"]) => ok(&json!({ "members": members::list(db, &access)? })),
        (_, ["members"]) => Err(Error::MethodNotAllowed("GET")),
        (Method::PATCH, ["members", sub]) => {
            let b: MemberPatch = body(req)?;
            let change = Change {
                role: b.role.as_deref().map(Level::parse).transpose()?,
                active: match b.status.as_deref() {
                    None => None,
                    Some("active") => Some(true),
                    Some("suspended") => Some(false),
                    Some(_) => {
                        return Err(Error::bad_request("status must be active or suspended."));
                    }
                },
            };
            members::change(db, &access, sub, change, now)?;
            Ok(no_content())
        }
        (Method::DELETE, ["members", sub]) => {
            members::remove(db, &access, sub, now)?;
            Ok(no_content())
        }
        (_, ["members", _]) => Err(Error::MethodNotAllowed("PATCH, DELETE")),
        (Method::POST, ["transfer"]) => {
            let b: Transfer = body(req)?;
            members::transfer(db, &access, &b.sub, now)?;
            Ok(no_content())
        }
        (Method::GET, ["invitations"]) => ok(&json!({
            "invitations": invitations::list(db, &access, now)?
        })),
        (Method::POST, ["invitations"]) => {
            let b: NewInvitation = body(req)?;
            let ask = Invite {
                email: b.email,
                role: Level::parse(b.role.as_deref().unwrap_or("member"))?,
                grants: b.grants,
            };
            created(&invitations::invite(env, auth, &access, &ask)?)
        }
        (_, ["invitations"]) => Err(Error::MethodNotAllowed("GET, POST")),
        (Method::POST, ["invitations", id, "resend"]) => {
            ok(&invitations::resend(env, auth, &access, id)?)
        }
        (Method::DELETE, ["invitations", id]) => {
            invitations::revoke(db, &access, id, now)?;
            Ok(no_content())
        }
        (Method::GET, ["roles"]) => ok(&json!({ "roles": services::roles(db, &access)? })),
        (Method::POST, ["roles"]) => {
            let a: Assignment = body(req)?;
            let added = services::grant(db, &access, &a, now)?;
            let status = if added {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(web::json(status, &a))
        }
        (Method::DELETE, ["roles"]) => {
            let q = Params::from_query(req)?;
            let a = Assignment {
                identity_id: q.required("sub")?.to_owned(),
                client_id: q.required("client_id")?.to_owned(),
                project_id: q.one("project_id")?.unwrap_or("").to_owned(),
                role: q.required("role")?.to_owned(),
            };
            services::revoke(db, &access, &a, now)?;
            Ok(no_content())
        }
        (_, ["roles"]) => Err(Error::MethodNotAllowed("GET, POST, DELETE")),
        (Method::GET, ["services"]) => ok(&json!({ "services": services::list(db, &access)? })),
        (Method::POST, ["services", client_id, "activate"]) => {
            let status = services::activate(db, &access, client_id, now)?;
            ok(&json!({ "client_id": client_id, "status": status }))
        }
        (Method::POST, ["services", client_id, "deactivate"]) => {
            services::deactivate(db, &access, client_id, now)?;
            ok(&json!({ "client_id": client_id, "status": "deactivated" }))
        }
        (Method::GET, ["projects"]) => ok(&json!({ "projects": services::projects(db, &access)? })),
        (Method::POST, ["projects"]) => {
            let b: NewProject = body(req)?;
            created(&services::create_project(
                db,
                &access,
                &b.client_id,
                &b.name,
                now,
            )?)
        }
        (_, ["projects"]) => Err(Error::MethodNotAllowed("GET, POST")),
        (Method::DELETE, ["projects", id]) => {
            services::delete_project(db, &access, id, now)?;
            Ok(no_content())
        }
        (Method::GET, ["mandates"]) => {
            let (given, received) = mandates::list(db, &access, now)?;
            ok(&json!({ "given": given, "received": received }))
        }
        (Method::POST, ["mandates"]) => {
            let offer: mandates::Offer = body(req)?;
            created(&mandates::offer(env, auth, &access, &offer)?)
        }
        (_, ["mandates"]) => Err(Error::MethodNotAllowed("GET, POST")),
        (Method::POST, ["mandates", id, "accept"]) => {
            let b: Delegates = optional_body(req)?;
            ok(&mandates::accept(
                db,
                &access,
                id,
                b.all_members,
                &b.delegates,
                now,
            )?)
        }
        (Method::PUT, ["mandates", id, "delegates"]) => {
            let b: Delegates = body(req)?;
            ok(&mandates::set_delegates(
                db,
                &access,
                id,
                b.all_members,
                &b.delegates,
                now,
            )?)
        }
        (Method::POST, ["mandates", id, "revoke"]) => {
            mandates::revoke(db, &access, id, now)?;
            Ok(no_content())
        }
        (Method::GET, ["connections"]) => {
            ok(&json!({ "connections": org_sso::list(db, &access)? }))
        }
        (Method::POST, ["connections"]) => {
            let spec: org_sso::Spec = body(req)?;
            created(&org_sso::create(env, &access, &spec)?)
        }
        (_, ["connections"]) => Err(Error::MethodNotAllowed("GET, POST")),
        (Method::GET, ["connections", id]) => ok(&org_sso::get(db, &access, id)?),
        (Method::PUT, ["connections", id]) => {
            let spec: org_sso::Spec = body(req)?;
            ok(&org_sso::update(env, &access, id, &spec)?)
        }
        (Method::DELETE, ["connections", id]) => {
            org_sso::delete(db, &access, id, now)?;
            Ok(no_content())
        }
        (_, ["connections", _]) => Err(Error::MethodNotAllowed("GET, PUT, DELETE")),
        (Method::GET, ["domains"]) => ok(&json!({ "domains": domains::list(db, &access)? })),
        (Method::POST, ["domains"]) => {
            let b: NewDomain = body(req)?;
            created(&domains::claim(
                db,
                &access,
                &b.domain,
                b.connection_id.as_deref(),
                now,
            )?)
        }
        (_, ["domains"]) => Err(Error::MethodNotAllowed("GET, POST")),
        (Method::POST, ["domains", domain, "verify"]) => {
            ok(&domains::verify(env, &access, domain)?)
        }
        (Method::DELETE, ["domains", domain]) => {
            domains::remove(db, &access, domain, now)?;
            Ok(no_content())
        }
        (_, ["domains", _]) => Err(Error::MethodNotAllowed("DELETE")),
        (Method::GET, ["audit"]) => {
            let q = Params::from_query(req)?;
            let number = |name: &str| -> Result<Option<i64>> {
                q.one(name)?
                    .map(|v| {
                        v.parse::<i64>()
                            .map_err(|_| Error::bad_request(format!("`{name}` must be a number.")))
                    })
                    .transpose()
            };
            let entries = orgs::audit(
                db,
                &access,
                number("before")?,
                number("limit")?.unwrap_or(50),
            )?;
            ok(&json!({ "entries": entries }))
        }
        (Method::GET, ["audit", "export"]) => {
            let entries = orgs::audit_export(db, &access)?;
            let mut res = web::json(
                StatusCode::OK,
                &json!({ "organisation": access.org, "entries": entries }),
            );
            let name = format!("attachment; filename=\"{}-audit.json\"", access.org.slug);
            if let Ok(v) = http::HeaderValue::from_str(&name) {
                res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            web::no_store(&mut res);
            Ok(res)
        }
        _ => Err(Error::NotFound),
    }
}

/// `/api/orgs/mandates/...`: the mandates naming the caller as a person.
fn person_mandates(env: &Env, who: &Identity, req: &Request, rest: &[&str]) -> Result<Response> {
    match (req.method().clone(), rest) {
        (Method::GET, []) => ok(&json!({ "mandates": mandates::mine(env.sql, who, env.now)? })),
        (Method::POST, ["accept"]) => {
            let b: Token = body(req)?;
            ok(&mandates::accept_as_person(
                env.sql, who, &b.token, env.now,
            )?)
        }
        (Method::POST, [id, "revoke"]) => {
            mandates::revoke_as_person(env.sql, who, id, env.now)?;
            Ok(no_content())
        }
        (_, []) => Err(Error::MethodNotAllowed("GET")),
        _ => Err(Error::NotFound),
    }
}

/// The person acting: a bearer token with the `orgs` scope, or the session
/// (with the JSON and origin checks on changes).
///
/// A bearer caller's client's registered origins go into `origins`, for CORS.
fn caller(env: &Env, auth: &Auth, req: &Request, origins: &mut Vec<String>) -> Result<Identity> {
    if let Some(token) = web::bearer_token(req.headers()) {
        let v = tokens::verify_access(env, &auth.config, token)
            .map_err(|_| Error::Unauthorized("The access token is invalid or expired.".into()))?;
        if let Some(client) = clients::get(env.sql, &v.claims.client_id)? {
            *origins = client.allowed_origins;
        }
        if !v.claims.scope.split_ascii_whitespace().any(|s| s == SCOPE) {
            return Err(Error::Forbidden(format!(
                "The access token lacks the `{SCOPE}` scope."
            )));
        }
        return identity::by_id(env.sql, &v.sub)?
            .ok_or_else(|| Error::Unauthorized("The account no longer exists.".into()));
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        json_request(auth, req)?;
    }
    let (who, _) = accounts::current(env, auth, req.headers())?
        .ok_or_else(|| Error::Unauthorized("Sign in first.".into()))?;
    Ok(who)
}

/// A change sent with the session cookie. A `POST` must say
/// `Content-Type: application/json`, which a cross-site form cannot send
/// without a CORS preflight (never granted here); `PATCH` and `DELETE`
/// always need one. An `Origin`, when sent, must be the issuer's.
fn json_request(auth: &Auth, req: &Request) -> Result<()> {
    if req.method() == Method::POST && !web::content_type_is(req, "application/json") {
        return Err(Error::bad_request(
            "Send a JSON body with Content-Type: application/json.",
        ));
    }
    web::same_origin(req, &auth.config.issuer)
}

/// Like [`body`], and an empty body is `T::default()`.
fn optional_body<T: DeserializeOwned + Default>(req: &Request) -> Result<T> {
    if req.body().is_empty() {
        return Ok(T::default());
    }
    body(req)
}

fn ok<T: serde::Serialize>(value: &T) -> Result<Response> {
    let mut res = web::json(StatusCode::OK, value);
    web::no_store(&mut res);
    Ok(res)
}

fn created<T: serde::Serialize>(value: &T) -> Result<Response> {
    let mut res = web::json(StatusCode::CREATED, value);
    web::no_store(&mut res);
    Ok(res)
}

fn no_content() -> Response {
    web::response(StatusCode::NO_CONTENT, "application/json", Vec::new())
}

fn org_json(org: &Organisation, role: &str) -> Json {
    json!({
        "id": org.id, "slug": org.slug, "name": org.name, "status": org.status, "role": role,
    })
}

fn mine(db: &dyn crate::store::SqlStore, who: &Identity) -> Result<Vec<Json>> {
    Ok(orgs::mine(db, who)?
        .into_iter()
        .filter(|(_, m)| m.status == "active")
        .map(|(o, m)| org_json(&o, &m.role))
        .collect())
}

fn org_detail(env: &Env, access: &Access) -> Result<Json> {
    let mut out = org_json(&access.org, &access.me.role);
    let own = crate::store::role_assignments::for_member(env.sql, &access.org.id, access.actor())?;
    out["roles"] = json!(own);
    Ok(out)
}

/// The organisation just joined, with the role the person now holds there
/// (the invitation's, or the one they already had).
fn joined(env: &Env, org: &Organisation, who: &Identity) -> Result<Json> {
    let access = orgs::open(env.sql, &org.slug, who)?;
    Ok(org_json(&access.org, &access.me.role))
}

/// `POST /api/orgs/invitations/accept`: signed in (the invited, verified
/// address), or not, with a password (and profile fields) to sign up.
fn accept(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    if req.method() != Method::POST {
        return Err(Error::MethodNotAllowed("POST"));
    }
    json_request(auth, req)?;
    let fields: Map<String, Json> = body(req)?;
    let mut text = Vec::new();
    for (k, v) in fields {
        let Json::String(s) = v else {
            return Err(Error::bad_request(format!("`{k}` must be a string.")));
        };
        text.push((k, s));
    }
    let form = Params::from_pairs(text);
    let token = form.required("token")?;
    if let Some((who, _)) = accounts::current(env, auth, req.headers())? {
        let org = invitations::accept(env.sql, &who, token, env.now)?;
        return ok(&json!({ "organisation": joined(env, &org, &who)?, "sub": who.id }));
    }
    let Some(password) = form.one("password")? else {
        return Err(Error::Unauthorized(
            "Sign in with the invited address, or send a password to create the account.".into(),
        ));
    };
    let (who, org) = invitations::accept_new(env.sql, auth, token, password, &form, env.now)?;
    let cookie = session::start(
        env,
        auth.policy()?,
        &session::New {
            sub: &who.id,
            generation: who.session_generation,
            amr: &["pwd"],
            idp: None,
            device: &Device::of(env.vars, req.headers())?,
        },
    )?;
    let mut res = web::json(
        StatusCode::CREATED,
        &json!({ "organisation": joined(env, &org, &who)?, "sub": who.id }),
    );
    res.headers_mut().append(header::SET_COOKIE, cookie);
    web::no_store(&mut res);
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    name: String,
    slug: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberPatch {
    role: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transfer {
    sub: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvitation {
    email: String,
    role: Option<String>,
    #[serde(default)]
    grants: Vec<Grant>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Delegates {
    #[serde(default)]
    all_members: bool,
    #[serde(default)]
    delegates: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Token {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDomain {
    domain: String,
    connection_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    client_id: String,
    name: String,
}
