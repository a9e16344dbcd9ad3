//! The token component: OpenID Connect discovery and the JWKS.

use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::get_only;
use crate::config::Config;
use crate::error::{Result, Style};
use crate::oidc::discovery::{self, paths};
use crate::oidc::keys;
use crate::web::{self, Request, Response};
use crate::{Env, Error};

/// Metadata and keys may be cached this long by clients and CDNs. Short, so
/// that a key published as `next` reaches verifiers well before it signs.
const METADATA_MAX_AGE: u32 = 300;

/// Routes a request to the token component.
pub fn handle(env: &Env, req: Request) -> Response {
    let result = match req.uri().path() {
        paths::DISCOVERY => get_only(&req).and_then(|()| discovery_document(env)),
        paths::JWKS => get_only(&req).and_then(|()| jwks(env)),
        _ => Err(Error::NotFound),
    };
    result.unwrap_or_else(|e| e.into_response(Style::Api))
}

fn discovery_document(env: &Env) -> Result<Response> {
    let config = Config::load(env.vars)?;
    Ok(public_json(&discovery::metadata(&config)))
}

fn jwks(env: &Env) -> Result<Response> {
    let config = Config::load(env.vars)?;
    let keys: Vec<_> = keys::published(env, &config)?
        .into_iter()
        .map(|k| k.jwk)
        .collect();
    Ok(public_json(&json!({ "keys": keys })))
}

/// Public, cacheable JSON that any origin may read (no credentials).
fn public_json<T: serde::Serialize>(value: &T) -> Response {
    let mut res = web::json(StatusCode::OK, value);
    web::cache_for(&mut res, METADATA_MAX_AGE);
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}
