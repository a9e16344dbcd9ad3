//! The login component's passkey endpoints, called by
//! `static/js/passkeys.js` (JSON in and out, `Content-Type:
//! application/json` from this origin only):
//!
//! - `POST /login/passkey/options` and `POST /login/passkey`: a
//!   passwordless sign-in with a discoverable passkey;
//! - `POST /login/mfa/passkey/options` and `POST /login/mfa/passkey`: a
//!   passkey as the second factor of a pending sign-in.
//!
//! A finished sign-in answers `{"redirect": …}` with the session cookie;
//! errors are problem+json.

use http::{Method, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::errors::Style;
use super::login::is_local_path;
use crate::Env;
use crate::accounts::Auth;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::mfa::{passkeys, pending};
use crate::session;
use crate::web::{self, Request, Response};

const PATHS: [&str; 4] = [
    "/login/passkey/options",
    "/login/passkey",
    "/login/mfa/passkey/options",
    "/login/mfa/passkey",
];

/// Answers the passkey endpoints, `None` for any other path.
pub fn route(env: &Env, auth: &Auth, req: &Request) -> Option<Response> {
    let path = req.uri().path();
    if !PATHS.contains(&path) {
        return None;
    }
    let mut res = answer(env, auth, req, path).unwrap_or_else(|e| e.into_response(Style::Api));
    web::no_store(&mut res);
    Some(res)
}

/// The body of a finished ceremony.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Finish {
    handle: String,
    credential: Json,
    #[serde(default)]
    return_to: Option<String>,
}

fn answer(env: &Env, auth: &Auth, req: &Request, path: &str) -> Result<Response> {
    if *req.method() != Method::POST {
        return Err(Error::MethodNotAllowed("POST"));
    }
    web::same_origin(req, &auth.config.issuer)?;
    let device = Device::of(env.vars, req.headers())?;
    match path {
        "/login/passkey/options" => {
            super::account::body::<serde_json::Map<String, Json>>(req)?;
            let started = passkeys::start_sign_in(env, &auth.config)?;
            Ok(web::json(StatusCode::OK, &started.to_json()))
        }
        "/login/passkey" => {
            let b: Finish = super::account::body(req)?;
            match passkeys::finish_sign_in(env, settings(auth)?, &b.handle, &b.credential, &device)?
            {
                passkeys::SignedIn::Session(cookie) => {
                    // A new session id at every sign-in; the old one is gone.
                    session::end(env, auth.policy()?, req.headers())?;
                    let target = b.return_to.filter(|t| is_local_path(t));
                    let mut res = redirect_json(target.as_deref())?;
                    res.headers_mut().append(header::SET_COOKIE, cookie);
                    Ok(res)
                }
                passkeys::SignedIn::Unverified(email) => Err(Error::Forbidden(format!(
                    "Your passkey is right, but {email} is not verified yet. Open the link we sent you, or get a new one at /verify/resend."
                ))),
            }
        }
        "/login/mfa/passkey/options" => {
            super::account::body::<serde_json::Map<String, Json>>(req)?;
            let p = waiting(env, auth, req)?;
            let started = passkeys::start_for(env, &auth.config, &p.sub)?;
            Ok(web::json(StatusCode::OK, &started.to_json()))
        }
        _ => {
            let b: Finish = super::account::body(req)?;
            let p = waiting(env, auth, req)?;
            passkeys::finish_for(
                env,
                settings(auth)?,
                (&p.sub, &p.email),
                &b.handle,
                &b.credential,
                &device,
            )?;
            let cookies =
                pending::complete(env, auth.policy()?, req.headers(), &p, "hwk", &device)?;
            let target = p.return_to.as_deref().filter(|t| is_local_path(t));
            let mut res = redirect_json(target)?;
            for c in cookies {
                res.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(res)
        }
    }
}

/// The settings of a passkey sign-in, from the account settings.
pub(crate) fn settings<'a>(auth: &'a Auth<'a>) -> Result<passkeys::Settings<'a>> {
    Ok(passkeys::Settings {
        config: &auth.config,
        policy: auth.policy()?,
        limits: auth.limits()?,
    })
}

/// The request's pending sign-in.
fn waiting(env: &Env, auth: &Auth, req: &Request) -> Result<pending::Pending> {
    pending::current(env, auth.policy()?, req.headers())?.ok_or_else(|| {
        Error::Unauthorized("Your sign-in has expired. Sign in again with your password.".into())
    })
}

fn redirect_json(target: Option<&str>) -> Result<Response> {
    Ok(web::json(
        StatusCode::OK,
        &json!({ "redirect": target.unwrap_or("/") }),
    ))
}
