//! Single sign-out: when Lanyard sessions end, the applications that got
//! tokens in them are told (OpenID Connect Back-Channel and Front-Channel
//! Logout 1.0), and the refresh-token families issued in them are revoked.
//!
//! Every way a session ends comes here once the session itself is gone:
//! RP-initiated logout and sign-out on Lanyard's pages ([`sessions_ended`]),
//! the account centre ending one or the other sessions, a password reset or
//! change, erasure and an administrator ([`identity_signed_out`]).
//!
//! Back-channel logout tokens are POSTed inside the request, all at once,
//! and the request waits at most [`TIME_LIMIT`] for them: an unreachable or
//! slow application never holds or fails the sign-out. A delivery that
//! fails is recorded (`store::logout_deliveries`, listed by the admin API)
//! and retried, with a newly signed token, by later sign-outs and by the
//! sweep endpoint ([`retry_due`]), at most
//! [`logout_deliveries::MAX_ATTEMPTS`] times. Front-channel logout needs the
//! browser of the session that ended: the caller renders
//! [`SignedOut::front`] as hidden iframes (only RP-initiated logout and
//! Lanyard's sign-out have that browser).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::Env;
use crate::config::Config;
use crate::crypto;
use crate::error::{Error, Result};
use crate::oidc::logout::{self, BackChannel, FrontChannel};
use crate::store::logout_deliveries::{self, Failed};
use crate::store::{refresh_families, session_clients};

/// How long a sign-out waits for the applications' answers, in all.
pub const TIME_LIMIT: Duration = Duration::from_secs(2);

/// Failed deliveries a sign-out retries besides its own, at most.
pub const RETRIES_PER_REQUEST: i64 = 4;

/// A session that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    /// Its public id (the `sid` claim).
    pub sid: String,
    /// Whose it was.
    pub identity_id: String,
}

/// What a sign-out did, and what is left to the browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedOut {
    /// Front-channel logout iframes for the page the browser is shown.
    pub front: Vec<FrontChannel>,
    /// Logout tokens the applications accepted (retries included).
    pub delivered: usize,
    /// Logout tokens that failed, recorded for a retry.
    pub failed: usize,
}

/// `ended` sessions are gone: revokes the refresh-token families issued in
/// them and tells their applications.
pub fn sessions_ended(env: &Env, ended: &[EndedSession]) -> Result<SignedOut> {
    let mut rows = Vec::new();
    for s in ended {
        refresh_families::revoke_for_session(env.sql, &s.identity_id, &s.sid, env.now)?;
        rows.extend(session_clients::take_session(env.sql, &s.sid)?);
    }
    notify(env, &rows)
}

/// Every session of `identity_id` but `keep` is gone (or going: a password
/// reset ends them by their generation): revokes the refresh-token families
/// issued in them and tells their applications, sessions that had expired
/// included (their applications may still be signed in).
pub fn identity_signed_out(env: &Env, identity_id: &str, keep: Option<&str>) -> Result<SignedOut> {
    let rows = session_clients::take_identity(env.sql, identity_id, keep)?;
    let sids: BTreeSet<&str> = rows.iter().map(|r| r.sid.as_str()).collect();
    for sid in sids {
        refresh_families::revoke_for_session(env.sql, identity_id, sid, env.now)?;
    }
    notify(env, &rows)
}

/// Retries the failed deliveries that are due (the sweep endpoint).
pub fn retry_due(env: &Env) -> Result<SignedOut> {
    notify(env, &[])
}

/// Tells the clients of `rows` and retries what is due, in one parallel
/// round bounded by [`TIME_LIMIT`].
fn notify(env: &Env, rows: &[session_clients::Row]) -> Result<SignedOut> {
    let due = logout_deliveries::claim_due(env.sql, env.now, RETRIES_PER_REQUEST)?;
    if rows.is_empty() && due.is_empty() {
        return Ok(SignedOut::default());
    }
    let config = Config::load(env.vars)?;
    let fresh = logout::notices(env, &config, rows)?;
    let again: Vec<session_clients::Row> = due
        .iter()
        .map(|d| session_clients::Row {
            sid: d.sid.clone(),
            client_id: d.client_id.clone(),
            identity_id: d.identity_id.clone(),
            first_issued_at: d.created_at,
            last_issued_at: d.created_at,
        })
        .collect();
    let retries = if again.is_empty() {
        Vec::new()
    } else {
        logout::notices(env, &config, &again)?.back
    };
    // A client deleted since, or one that no longer takes back-channel
    // logout, has nothing left to receive.
    for d in &due {
        if !retries
            .iter()
            .any(|b| b.client_id == d.client_id && b.sid == d.sid)
        {
            logout_deliveries::delivered(env.sql, &d.id)?;
        }
    }
    let all: Vec<&BackChannel> = fresh.back.iter().chain(&retries).collect();
    let mut out = SignedOut {
        front: fresh.front,
        ..SignedOut::default()
    };
    if all.is_empty() {
        return Ok(out);
    }
    let mut requests = Vec::with_capacity(all.len());
    let mut unsent = Vec::new();
    for (i, b) in all.iter().enumerate() {
        match request(b) {
            Ok(req) => requests.push((i, req)),
            Err(e) => unsent.push((i, e)),
        }
    }
    let (indices, reqs): (Vec<usize>, Vec<_>) = requests.into_iter().unzip();
    let answers = env.http.send_all(reqs, TIME_LIMIT);
    let mut results: Vec<(usize, Result<http::StatusCode>)> =
        indices.into_iter().zip(answers).collect();
    results.extend(unsent.into_iter().map(|(i, e)| (i, Err(e))));
    for (i, result) in results {
        let b = all[i];
        let error = match result {
            Ok(status) if status.is_success() => None,
            Ok(status) if status.is_redirection() => Some(format!(
                "answered {status}, a redirect, which is not followed: register the final URI"
            )),
            Ok(status) => Some(format!("answered {status}")),
            Err(e) => Some(describe(&e)),
        };
        let retry = if i < fresh.back.len() {
            None
        } else {
            due.iter()
                .find(|d| d.client_id == b.client_id && d.sid == b.sid)
        };
        match (error, retry) {
            (None, None) => out.delivered += 1,
            (None, Some(d)) => {
                logout_deliveries::delivered(env.sql, &d.id)?;
                out.delivered += 1;
            }
            (Some(e), None) => {
                let failed = Failed {
                    client_id: &b.client_id,
                    sid: &b.sid,
                    identity_id: &b.identity_id,
                    uri: &b.uri,
                    error: &e,
                };
                logout_deliveries::insert(env.sql, &crypto::random_id()?, &failed, env.now)?;
                out.failed += 1;
            }
            (Some(e), Some(d)) => {
                logout_deliveries::failed(env.sql, &d.id, &b.uri, &e)?;
                out.failed += 1;
            }
        }
    }
    Ok(out)
}

/// The POST of a logout token (§2.5): a form with the one field
/// `logout_token`.
fn request(b: &BackChannel) -> Result<http::Request<Vec<u8>>> {
    http::Request::post(b.uri.as_str())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!("logout_token={}", b.logout_token).into_bytes())
        .map_err(|e| Error::bad_request(format!("the URI is not usable: {e}")))
}

/// Why a delivery failed, for the operator.
fn describe(e: &Error) -> String {
    match e {
        Error::OutboundDenied(origin) => format!(
            "{origin} is not in allowed_outbound_hosts: add it in spin.toml (a \
             logout_outbound_host_N variable can hold it) and deploy again"
        ),
        other => other.detail(),
    }
}

#[cfg(test)]
mod tests;
