//! Cross-origin reads (CORS), in one place: public metadata any origin may
//! read, and the token and userinfo endpoints, which a browser app may call
//! from an origin its client registered. Cookies never travel cross-origin:
//! no response here allows credentials.

use http::{HeaderValue, StatusCode, header};

use crate::Env;
use crate::error::{Error, Result};
use crate::oidc::clients;
use crate::web::{self, Request, Response};

/// Lets any origin read a public response (discovery, JWKS).
pub fn allow_any(res: &mut Response) {
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

/// The request's `Origin`, when it sent one.
fn origin(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| !o.is_empty())
}

/// Lets the request's origin read the response when it is among `allowed`
/// (the client's registered origins).
pub fn allow_registered(res: &mut Response, req: &Request, allowed: &[String]) {
    if let Some(o) = origin(req)
        && allowed.iter().any(|a| a == o)
    {
        allow_origin(res, o);
    }
}

fn allow_origin(res: &mut Response, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        res.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// Answers a preflight (`OPTIONS`): allowed when some client registered the
/// origin; otherwise an empty 204 that the browser treats as a refusal.
pub fn preflight(env: &Env, req: &Request) -> Result<Response> {
    preflight_for(env, req, "GET, POST")
}

/// A preflight for an API that also takes these `methods`, such as
/// `GET, POST, PATCH, DELETE`. Credentials are never allowed: only a bearer
/// token works cross-origin.
pub fn preflight_for(env: &Env, req: &Request, methods: &'static str) -> Result<Response> {
    let mut res = web::response(StatusCode::NO_CONTENT, "text/plain", Vec::new());
    let Some(o) = origin(req) else {
        return Ok(res);
    };
    if !clients::origin_allowed(env.sql, o)? {
        return Ok(res);
    }
    if HeaderValue::from_str(o).is_err() {
        return Err(Error::bad_request("bad origin"));
    }
    allow_origin(&mut res, o);
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    Ok(res)
}
