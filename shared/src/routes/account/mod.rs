//! The profile component: the account centre. Pages under `/account` and
//! the same as JSON under `/api/account/` (docs/account.md), beside the
//! signed-out account API (sign-up, login, links) of
//! [`super::account_api`].
//!
//! Each section is a module that answers the paths it owns and `None` for
//! the others: [`centre`] (profile, email, password, sessions, apps,
//! sign-in methods, events), [`mfa`] (re-entry, TOTP, recovery codes),
//! [`passkeys`] and [`privacy`] (export, erasure, consent records).

pub mod centre;
pub mod mfa;
pub mod passkeys;
pub mod privacy;

use http::{Method, StatusCode};
use serde_json::Value as Json;

use super::errors::Style;
use super::page::Page;
use super::{account_api, not_found};
use crate::Env;
use crate::accounts::{self, Auth};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::session::Session;
use crate::web::{self, Request, Response};

/// The JSON body of an API request (see [`web::json_body`]).
pub use crate::web::json_body as body;

/// The pages' prefix.
pub const PAGES: &str = "/account";
/// The JSON API's prefix.
pub const API: &str = "/api/account/";

/// Seconds within which a sensitive change needs the password or a second
/// factor entered (at sign-in, or again at `/account/reauth`).
pub const RECENT: i64 = 300;

/// A signed-in request to the account centre.
pub struct Ctx<'a> {
    /// The request's storage, variables and time.
    pub env: &'a Env<'a>,
    /// The account settings.
    pub auth: &'a Auth<'a>,
    /// The request.
    pub req: &'a Request,
    /// The person signed in.
    pub who: Identity,
    /// Their session.
    pub session: Session,
    /// Where the request comes from.
    pub device: Device,
}

impl Ctx<'_> {
    /// Refuses a sensitive change unless the person proved who they are
    /// within [`RECENT`] seconds.
    pub fn require_recent(&self) -> Result<()> {
        if self.session.is_recent(self.env.now, RECENT) {
            Ok(())
        } else {
            Err(Error::RecentSignInRequired)
        }
    }

    /// The page context (CSRF token, product name).
    pub fn page(&self) -> Result<Page<'_>> {
        Page::new(self.auth, self.req)
    }

    /// The path and query of this request, to come back to after a detour
    /// (signing in again, re-entering the password).
    pub fn here(&self) -> String {
        self.req
            .uri()
            .path_and_query()
            .map_or(PAGES, |p| p.as_str())
            .to_owned()
    }
}

/// The detour of a page whose change needs a recent sign-in: to
/// `/account/reauth`, and back to `back` (a local path) after it.
pub fn to_reauth(back: &str) -> Result<Response> {
    web::redirect(&format!("/account/reauth?return_to={}", web::pct(back)))
}

/// A section's answer: a response, or `None` when the path is not its own.
pub type Answer = Result<Option<Response>>;

/// Routes a request to the profile component.
pub fn handle(env: &Env, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let result = Auth::load(env.vars).and_then(|auth| route(env, &auth, &req));
    result.unwrap_or_else(|e| e.into_response(super::style_for(&path)))
}

fn route(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix(API) {
        return api(env, auth, req, rest).or_else(|e| Ok(e.into_response(Style::Api)));
    }
    let rest = match path.strip_prefix(PAGES) {
        Some("") => "/",
        Some(r) if r.starts_with('/') => r,
        _ => return Ok(not_found(req)),
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::POST) {
        return Err(Error::MethodNotAllowed("GET, POST"));
    }
    // Pages that work without a session: the link that confirms a new email
    // address can be opened in another browser.
    if let Some(res) = centre::public_page(env, auth, req, rest)? {
        return Ok(res);
    }
    let Some((who, session)) = accounts::current(env, auth, req.headers())? else {
        let back = req.uri().path_and_query().map_or(PAGES, |p| p.as_str());
        return web::redirect(&format!("/login?return_to={}", web::pct(back)));
    };
    let ctx = Ctx {
        env,
        auth,
        req,
        who,
        session,
        device: Device::of(env.vars, req.headers())?,
    };
    for section in [centre::page, mfa::page, passkeys::page, privacy::page] {
        if let Some(res) = section(&ctx, rest)? {
            return Ok(res);
        }
    }
    Ok(not_found(req))
}

fn api(env: &Env, auth: &Auth, req: &Request, rest: &str) -> Result<Response> {
    // The signed-out flows (sign-up, login, links) and `me`.
    if account_api::serves(rest) {
        return account_api::route(env, auth, req);
    }
    if *req.method() != Method::GET && *req.method() != Method::HEAD {
        web::same_origin(req, &auth.config.issuer)?;
    }
    let Some((who, session)) = accounts::current(env, auth, req.headers())? else {
        return Err(Error::Unauthorized("Sign in first.".into()));
    };
    let ctx = Ctx {
        env,
        auth,
        req,
        who,
        session,
        device: Device::of(env.vars, req.headers())?,
    };
    for section in [centre::api, mfa::api, passkeys::api, privacy::api] {
        if let Some(mut res) = section(&ctx, rest)? {
            web::no_store(&mut res);
            return Ok(res);
        }
    }
    Err(Error::NotFound)
}

/// A 200 JSON answer.
pub fn ok(value: &Json) -> Answer {
    Ok(Some(web::json(StatusCode::OK, value)))
}

/// A 204 answer.
pub fn done() -> Answer {
    Ok(Some(web::response(
        StatusCode::NO_CONTENT,
        "application/json",
        Vec::new(),
    )))
}
