//! The JSON account API for first-party SPAs and mobile apps, under
//! `/api/account/`: the same flows as the pages, with JSON bodies in and
//! `application/problem+json` errors out.
//!
//! Requests that change state must be `POST` with `Content-Type:
//! application/json` (a cross-site form cannot send that without a CORS
//! preflight, which this API never grants), and an `Origin` header, when sent,
//! must be the issuer's. So a cookie alone never authorises anything here.

use http::{Method, StatusCode, header};
use serde_json::{Map, Value as Json, json};

use crate::accounts::{self, Auth, LoggedIn, SignUp};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::web::{self, Params, Request, Response};
use crate::{Env, client_addr, session};

/// The path prefix of the API.
pub const PREFIX: &str = "/api/account/";

/// The actions of this API (the rest of `/api/account/` is the account
/// centre's, [`super::account`]).
const ACTIONS: &[&str] = &[
    "me",
    "signup",
    "login",
    "login/mfa",
    "logout",
    "verify",
    "verify/resend",
    "password/forgot",
    "password/reset",
];

/// Whether `action` (the path after [`PREFIX`]) is one of this API's.
pub fn serves(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// Routes `/api/account/*`.
pub fn route(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    let action = req.uri().path().strip_prefix(PREFIX).unwrap_or_default();
    if action == "me" {
        super::get_only(req)?;
        return me(env, auth, req);
    }
    if req.method() != Method::POST {
        return Err(Error::MethodNotAllowed("POST"));
    }
    let body = json_body(auth, req)?;
    let client = || client_addr::of(env.vars, req.headers());
    match action {
        "signup" => {
            let s = SignUp::parse(auth, &body)?;
            accounts::sign_up(env, auth, &s, &client()?)?;
            Ok(accepted())
        }
        "login" => {
            let email = body.required("email")?;
            let password = body.required("password")?;
            match accounts::log_in(env, auth, email, password, &Device::of(env.vars, req.headers())?)? {
                LoggedIn::Session(cookie) => {
                    session::end(env, auth.policy()?, req.headers())?;
                    let mut res = web::json(StatusCode::OK, &json!({ "status": "signed_in" }));
                    res.headers_mut().append(header::SET_COOKIE, cookie);
                    web::no_store(&mut res);
                    Ok(res)
                }
                LoggedIn::SecondFactor(cookie) => {
                    let mut res = web::json(
                        StatusCode::OK,
                        &json!({ "status": "second_factor_required" }),
                    );
                    res.headers_mut().append(header::SET_COOKIE, cookie);
                    web::no_store(&mut res);
                    Ok(res)
                }
                LoggedIn::Unverified(_) => {
                    Err(Error::Forbidden("The email address is not verified yet. Open the link we sent, or ask for a new one.".into()))
                }
            }
        }
        "login/mfa" => super::login_mfa::api(env, auth, req, &body),
        "logout" => {
            // Back-channel logout only: a JSON caller loads no iframes.
            let (clear, _) = session::sign_out(env, auth.policy()?, req.headers())?;
            let mut res = web::response(StatusCode::NO_CONTENT, "application/json", Vec::new());
            res.headers_mut().append(header::SET_COOKIE, clear);
            Ok(res)
        }
        "verify" => {
            accounts::verify_email(env, body.required("token")?)?;
            Ok(web::json(StatusCode::OK, &json!({ "status": "verified" })))
        }
        "verify/resend" => {
            accounts::resend_verification(env, auth, body.required("email")?, &client()?)?;
            Ok(accepted())
        }
        "password/forgot" => {
            accounts::forgot_password(env, auth, body.required("email")?, &client()?)?;
            Ok(accepted())
        }
        "password/reset" => {
            accounts::reset_password(
                env,
                auth,
                body.required("token")?,
                body.required("password")?,
            )?;
            let mut res = web::json(StatusCode::OK, &json!({ "status": "password_changed" }));
            res.headers_mut()
                .append(header::SET_COOKIE, session::clear_cookie(auth.policy()?)?);
            Ok(res)
        }
        _ => Err(Error::NotFound),
    }
}

/// 202: the request was taken; what happens next arrives by mail.
fn accepted() -> Response {
    web::json(StatusCode::ACCEPTED, &json!({ "status": "check_email" }))
}

fn me(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    let Some((who, s)) = accounts::current(env, auth, req.headers())? else {
        return Err(Error::Unauthorized("Sign in first.".into()));
    };
    let mut res = web::json(
        StatusCode::OK,
        &json!({
            "sub": who.id,
            "email": who.email,
            "email_verified": who.email_verified,
            "attributes": who.attributes,
            "auth_time": s.created_at,
            "amr": s.amr,
        }),
    );
    web::no_store(&mut res);
    Ok(res)
}

/// Reads a flat JSON object of strings into [`Params`], after checking the
/// content type and the origin.
fn json_body(auth: &Auth, req: &Request) -> Result<Params> {
    if !web::content_type_is(req, "application/json") {
        return Err(Error::bad_request(
            "Send a JSON body with Content-Type: application/json.",
        ));
    }
    web::same_origin(req, &auth.config.issuer)?;
    let map: Map<String, Json> = serde_json::from_slice(req.body())
        .map_err(|_| Error::bad_request("The body must be a JSON object."))?;
    let mut text = Vec::with_capacity(map.len());
    for (k, v) in map {
        let Json::String(s) = v else {
            return Err(Error::bad_request(format!("`{k}` must be a string.")));
        };
        if s.len() > web::MAX_PARAM_LEN {
            return Err(Error::bad_request(format!("`{k}` is too long.")));
        }
        text.push((k, s));
    }
    Ok(Params::from_pairs(text))
}
