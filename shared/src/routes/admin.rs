//! The admin API, for operators: clients (RFC 7591/7592 metadata) under
//! `/api/admin/clients`, and the sweep under `/api/admin/sweep`. The bearer
//! token is the `admin_token` variable, at least 32 characters.

use http::{Method, StatusCode};
use serde_json::json;

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::oidc::clients::{self, ClientSpec};
use crate::oidc::{grants, signout};
use crate::store::logout_deliveries;
use crate::throttle::{self, Limits};
use crate::web::{self, Request, Response};
use crate::{Env, client_addr, crypto, identity, session, sweep};

/// The prefix of the client admin API.
const CLIENTS: &str = "/api/admin/clients";
/// The admin endpoint a cron job calls to delete expired rows.
const SWEEP: &str = "/api/admin/sweep";
/// Rows per table one call of the sweep endpoint deletes at most.
const SWEEP_ROWS: i64 = 1000;

/// Outside `dev_mode`, a client may ask for RS256 ID tokens only once the
/// operator has given Lanyard an RSA key: told at registration, not at the
/// client's first login.
fn rs256_ready(env: &Env) -> Result<()> {
    if Config::load(env.vars)?.dev_mode()?
        || config::optional(env.vars, "signing_key_rs256")?.is_some()
    {
        return Ok(());
    }
    Err(Error::bad_request(
        "`id_token_signed_response_alg` RS256 needs an RSA key: set the signing_key_rs256 variable first.",
    ))
}

/// The shortest admin token accepted: a guessable one would open every client.
const ADMIN_TOKEN_MIN: usize = 32;

/// Failed back-channel logout deliveries, for the operator.
const LOGOUT_DELIVERIES: &str = "/api/admin/logout-deliveries";
/// The prefix of `/api/admin/identities/{id}/sessions[/{sid}]`.
const IDENTITIES: &str = "/api/admin/identities/";
/// Deliveries one listing shows at most.
const DELIVERIES_LISTED: i64 = 500;

/// Whether `path` belongs to the admin API.
pub fn serves(path: &str) -> bool {
    path == CLIENTS
        || path.starts_with("/api/admin/clients/")
        || path == SWEEP
        || path == LOGOUT_DELIVERIES
        || path.starts_with(IDENTITIES)
}

/// Checks the admin API's bearer token (`admin_token`); wrong tokens are
/// throttled per client address. Every admin route calls it first.
pub fn authorise(env: &Env, req: &Request) -> Result<()> {
    let expected = config::optional(env.vars, "admin_token")?.ok_or_else(|| {
        Error::Forbidden("The admin API is off: set the admin_token variable to use it.".into())
    })?;
    if expected.chars().count() < ADMIN_TOKEN_MIN {
        return Err(Error::config(
            "admin_token",
            format!(
                "use at least {ADMIN_TOKEN_MIN} random characters (openssl rand -base64 32 makes one)"
            ),
        ));
    }
    // Each attempt is counted before the comparison and given back when it
    // succeeds, so only failures add up, per client address.
    let limits = Limits::load(env.vars)?;
    let attempts = throttle::address_key("admin", &client_addr::of(env.vars, req.headers())?);
    throttle::reserve(env.sql, &attempts, &limits.address, env.now)?;
    let presented = web::bearer_token(req.headers()).unwrap_or("");
    if !crypto::ct_eq(
        crypto::sha256(presented.as_bytes()).as_slice(),
        crypto::sha256(expected.as_bytes()).as_slice(),
    ) {
        return Err(Error::Unauthorized(
            "A valid admin token is required.".into(),
        ));
    }
    throttle::refund(env.sql, &attempts)
}

/// Serves the client and sweep admin API.
pub fn handle(env: &Env, req: &Request) -> Result<Response> {
    authorise(env, req)?;
    let path = req.uri().path();
    if path == SWEEP {
        if req.method() != Method::POST {
            return Err(Error::MethodNotAllowed("POST"));
        }
        // The cron call also retries the logout deliveries that are due.
        let swept = sweep::run_configured(env, SWEEP_ROWS)?;
        let retried = signout::retry_due(env)?;
        let mut body =
            serde_json::to_value(swept).map_err(|e| Error::Internal(format!("sweep JSON: {e}")))?;
        if let Some(fields) = body.as_object_mut() {
            fields.insert(
                "logout_retries".into(),
                json!({ "delivered": retried.delivered, "failed": retried.failed }),
            );
        }
        return Ok(web::json(StatusCode::OK, &body));
    }
    if path == LOGOUT_DELIVERIES {
        if req.method() != Method::GET {
            return Err(Error::MethodNotAllowed("GET"));
        }
        let deliveries = logout_deliveries::list(env.sql, DELIVERIES_LISTED)?;
        return Ok(web::json(
            StatusCode::OK,
            &json!({ "deliveries": deliveries }),
        ));
    }
    if let Some(rest) = path.strip_prefix(IDENTITIES) {
        return end_sessions(env, req, rest);
    }
    let id = req
        .uri()
        .path()
        .strip_prefix(CLIENTS)
        .unwrap_or("")
        .trim_start_matches('/');
    let spec = || -> Result<ClientSpec> {
        let spec: ClientSpec = serde_json::from_slice(req.body())
            .map_err(|e| Error::bad_request(format!("Invalid client: {e}")))?;
        if spec.id_token_signed_response_alg.as_deref() == Some("RS256") {
            rs256_ready(env)?;
        }
        Ok(spec)
    };
    let now = env.now;
    match (req.method().clone(), id.is_empty()) {
        (Method::GET, true) => Ok(web::json(
            StatusCode::OK,
            &json!({ "clients": clients::list(env.sql)? }),
        )),
        (Method::POST, true) => {
            let (client, secret) = clients::create(env.sql, &spec()?, now)?;
            // RFC 7591 §3.2.1: the client's metadata, with its secret (shown
            // once) and the secret's expiry (0: never).
            let mut body = serde_json::to_value(&client)
                .map_err(|e| Error::Internal(format!("client JSON: {e}")))?;
            if let (Some(secret), Some(fields)) = (secret, body.as_object_mut()) {
                fields.insert("client_secret".into(), secret.into());
                fields.insert("client_secret_expires_at".into(), 0.into());
            }
            let mut res = web::json(StatusCode::CREATED, &body);
            web::no_store(&mut res);
            Ok(res)
        }
        (Method::GET, false) => Ok(web::json(
            StatusCode::OK,
            &clients::get(env.sql, id)?.ok_or(Error::NotFound)?,
        )),
        (Method::PUT, false) => Ok(web::json(
            StatusCode::OK,
            &clients::update(env.sql, id, &spec()?, now)?,
        )),
        (Method::DELETE, false) => {
            clients::delete(env.sql, id)?;
            Ok(web::response(
                StatusCode::NO_CONTENT,
                "application/json",
                Vec::new(),
            ))
        }
        (_, true) => Err(Error::MethodNotAllowed("GET, POST")),
        (_, false) => Err(Error::MethodNotAllowed("GET, PUT, DELETE")),
    }
}

/// `DELETE /api/admin/identities/{id}/sessions` ends every session of an
/// identity and everything issued in them or since (refresh tokens, unused
/// codes: a compromised account); `…/sessions/{sid}` ends one session.
/// Either way the applications are told (single sign-out), and the answer
/// says how many sessions ended and how the logout tokens fared.
fn end_sessions(env: &Env, req: &Request, rest: &str) -> Result<Response> {
    let (id, sid) = match rest.split('/').collect::<Vec<_>>().as_slice() {
        [id, "sessions"] => (*id, None),
        [id, "sessions", sid] => (*id, Some(*sid)),
        _ => return Err(Error::NotFound),
    };
    if req.method() != Method::DELETE {
        return Err(Error::MethodNotAllowed("DELETE"));
    }
    if identity::by_id(env.sql, id)?.is_none() {
        return Err(Error::NotFound);
    }
    let (ended, told) = match sid {
        None => {
            grants::end_all(env.sql, id, env.now)?;
            session::revoke_all(env, id, None)?
        }
        Some(sid) => {
            let told = session::revoke(env, id, sid)?.ok_or(Error::NotFound)?;
            (vec![sid.to_owned()], told)
        }
    };
    Ok(web::json(
        StatusCode::OK,
        &json!({
            "sessions_ended": ended,
            "logout_tokens": { "delivered": told.delivered, "failed": told.failed },
        }),
    ))
}
