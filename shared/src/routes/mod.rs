//! One request router per Spin component. Each takes an [`Env`] and a request
//! and returns a response; the component crates only adapt Spin to this.

pub mod account;
pub mod account_api;
pub mod admin;
pub mod cors;
pub mod errors;
pub mod login;
pub mod login_mfa;
pub mod org_admin;
pub mod org_api;
pub mod org_pages;
pub mod orgs;
pub mod page;
pub mod passkey_login;
pub mod social;
pub mod token;

use http::Method;

use crate::error::{Error, Result};
use crate::web::{Request, Response};
use errors::Style;

/// How errors are shown for a path: OAuth JSON at the OAuth endpoints, with a
/// Bearer challenge at userinfo, problem+json under `/api/` and for
/// metadata, a page elsewhere.
pub fn style_for(path: &str) -> Style {
    use crate::oidc::discovery::paths;
    match path.split('?').next().unwrap_or(path) {
        paths::TOKEN | paths::INTROSPECT | paths::REVOKE => Style::OAuth,
        paths::USERINFO => Style::Bearer,
        paths::DISCOVERY | paths::JWKS => Style::Api,
        p if p.starts_with("/api/") => Style::Api,
        _ => Style::Page,
    }
}

/// Refuses any method but GET (and HEAD, which Spin answers like GET).
pub fn get_only(req: &Request) -> Result<()> {
    match *req.method() {
        Method::GET | Method::HEAD => Ok(()),
        _ => Err(Error::MethodNotAllowed("GET, HEAD")),
    }
}

/// The answer for a path the component does not serve.
pub fn not_found(req: &Request) -> Response {
    Error::NotFound.into_response(style_for(req.uri().path()))
}
