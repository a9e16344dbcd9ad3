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
//! slow application never holds or fails the sign-out. Only the token
//! component signs them ([`Direct`]); the others record them as due and hand
//! them to it within the same request ([`HandOver`]). A delivery that
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
use crate::oidc::clients;
use crate::oidc::logout::{self, BackChannel, FrontChannel};
use crate::store::logout_deliveries::{self, Target};
use crate::store::{auth_codes, refresh_families, session_clients};

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
        end_grants(env, &s.identity_id, &s.sid)?;
        rows.extend(session_clients::take_session(env.sql, &s.sid)?);
    }
    env.logout.tell(env, &rows)
}

/// Every session of `identity_id` but `keep` is gone (or going: a password
/// reset ends them by their generation), `listed` being those still listed
/// until now: revokes the refresh-token families and unused codes issued in
/// them and tells their applications, sessions that had expired included
/// (their applications may still be signed in).
pub fn identity_signed_out(
    env: &Env,
    identity_id: &str,
    keep: Option<&str>,
    listed: &[String],
) -> Result<SignedOut> {
    let rows = session_clients::take_identity(env.sql, identity_id, keep)?;
    let sids: BTreeSet<&str> = rows
        .iter()
        .map(|r| r.sid.as_str())
        .chain(listed.iter().map(String::as_str))
        .collect();
    for sid in sids {
        end_grants(env, identity_id, sid)?;
    }
    env.logout.tell(env, &rows)
}

/// Revokes the refresh-token families issued in a session and spends its
/// unused authorization codes, so that nothing issued in it outlives it.
fn end_grants(env: &Env, identity_id: &str, sid: &str) -> Result<()> {
    refresh_families::revoke_for_session(env.sql, identity_id, sid, env.now)?;
    auth_codes::void_for_session(env.sql, identity_id, sid, env.now)
}

/// Retries the failed deliveries that are due (the sweep endpoint, in the
/// token component).
pub fn retry_due(env: &Env) -> Result<SignedOut> {
    deliver(env, &[], RETRIES_PER_REQUEST)
}

/// Delivers what other components handed over, and what else is due, up
/// to [`HANDED_OVER_PER_REQUEST`] (the token component's
/// [`HAND_OVER_PATH`]).
pub fn deliver_handed_over(env: &Env) -> Result<SignedOut> {
    deliver(env, &[], HANDED_OVER_PER_REQUEST)
}

/// Where components without the signing keys hand logout tokens over:
/// the token component, through Spin's local service chaining (an
/// in-process request, no network; the path has no public route).
pub const HAND_OVER_URL: &str = "http://token.spin.internal/internal/logout-deliveries";
/// The path of [`HAND_OVER_URL`].
pub const HAND_OVER_PATH: &str = "/internal/logout-deliveries";
/// Deliveries one hand-over sends at most (the rest wait for the next).
pub const HANDED_OVER_PER_REQUEST: i64 = 64;

/// How a component gets the logout tokens of ended sessions to their
/// applications ([`Env::logout`]).
pub trait Courier {
    /// Tells the clients of `rows` (taken from `session_clients`).
    fn tell(&self, env: &Env, rows: &[session_clients::Row]) -> Result<SignedOut>;
}

/// Signs the logout tokens and sends them, retrying what is due on the way,
/// in one parallel round bounded by [`TIME_LIMIT`]: the token component,
/// which holds the signing keys.
pub struct Direct;

impl Courier for Direct {
    fn tell(&self, env: &Env, rows: &[session_clients::Row]) -> Result<SignedOut> {
        deliver(env, rows, RETRIES_PER_REQUEST)
    }
}

/// Hands the logout tokens to the token component: every other component.
/// None of them holds the signing keys, and none links the signing code.
pub struct HandOver;

impl Courier for HandOver {
    fn tell(&self, env: &Env, rows: &[session_clients::Row]) -> Result<SignedOut> {
        hand_over(env, rows)
    }
}

/// Records a due delivery for each client of `rows` that takes back-channel
/// logout, and asks the token component to send them now. If it cannot be
/// reached, they wait, due, for its next sign-out or sweep.
fn hand_over(env: &Env, rows: &[session_clients::Row]) -> Result<SignedOut> {
    let mut handed = Vec::new();
    for row in rows {
        let Some(client) = clients::get(env.sql, &row.client_id)? else {
            continue;
        };
        if let Some(uri) = &client.logout.backchannel_logout_uri {
            let target = Target {
                client_id: &row.client_id,
                sid: &row.sid,
                identity_id: &row.identity_id,
                uri,
            };
            let id = crypto::random_id()?;
            logout_deliveries::insert_due(env.sql, &id, &target, env.now)?;
            handed.push((id, uri.clone()));
        }
    }
    if handed.is_empty() {
        return Ok(SignedOut::default());
    }
    let req = http::Request::post(HAND_OVER_URL)
        .body(Vec::new())
        .map_err(|e| Error::Internal(format!("hand-over request: {e}")))?;
    // The token component waits TIME_LIMIT for the applications.
    let answer = env
        .http
        .send_all(vec![req], TIME_LIMIT + Duration::from_secs(1))
        .pop();
    let error = match answer {
        Some(Ok(status)) if status.is_success() => None,
        Some(Ok(status)) => Some(format!("the token component answered {status}")),
        Some(Err(Error::OutboundDenied(_))) => Some(format!(
            "{HAND_OVER_URL} is not in this component's allowed_outbound_hosts \
             (spin.toml: http://token.spin.internal)"
        )),
        Some(Err(e)) => Some(format!("the token component: {}", e.detail())),
        None => Some("the token component did not answer".into()),
    };
    // Left due for the token component's next sign-out or sweep; the
    // operator sees why.
    if let Some(e) = error {
        for (id, uri) in &handed {
            logout_deliveries::failed(env.sql, id, uri, &e)?;
        }
    }
    Ok(SignedOut::default())
}

/// Signs and sends the logout tokens of `rows`, and up to `retries` due
/// deliveries, in one parallel round bounded by [`TIME_LIMIT`].
fn deliver(env: &Env, rows: &[session_clients::Row], retries: i64) -> Result<SignedOut> {
    let due = logout_deliveries::claim_due(env.sql, env.now, retries)?;
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
                let target = Target {
                    client_id: &b.client_id,
                    sid: &b.sid,
                    identity_id: &b.identity_id,
                    uri: &b.uri,
                };
                logout_deliveries::insert_failed(
                    env.sql,
                    &crypto::random_id()?,
                    &target,
                    &e,
                    env.now,
                )?;
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
mod tests {
    use serde_json::{Value as Json, json};

    use super::*;
    use crate::store::logout_deliveries;
    use crate::store::refresh_families::{self, Family};
    use crate::testkit::{self, Posts as Rps, World};

    const NOW: i64 = 1_800_000_000;

    fn claims(form: &str) -> Json {
        let token = form.strip_prefix("logout_token=").unwrap();
        crate::oidc::tokens::unverified_payload(token).unwrap()
    }

    fn register(w: &World, id: &str, backchannel: bool) {
        let mut meta = json!({"client_name": id, "client_id": id,
                              "redirect_uris": [format!("https://{id}.example/cb")]});
        if backchannel {
            meta["backchannel_logout_uri"] = json!(format!("https://{id}.example/bc"));
        }
        testkit::client(&w.sql, meta, NOW);
    }

    /// A session `sid` of `who` in which `client` got a refresh token.
    fn signed_in(w: &World, who: &str, sid: &str, client: &str) {
        session_clients::record(&w.sql, sid, client, who, NOW - 100).unwrap();
        let family = Family {
            id: format!("{sid}-{client}"),
            client_id: client.into(),
            identity_id: who.into(),
            scope: "openid offline_access".into(),
            auth_time: NOW - 100,
            amr: "pwd".into(),
            sid: sid.into(),
            org_id: None,
            mandate_id: None,
            idp: None,
        };
        refresh_families::insert(&w.sql, &family, &format!("hash-{sid}-{client}"), NOW - 100)
            .unwrap();
    }

    fn live_families(w: &World) -> Vec<String> {
        let mut live = Vec::new();
        for who in ["ada", "bob"] {
            for f in refresh_families::for_identity(&w.sql, who).unwrap() {
                if f["revoked_at"].is_null() {
                    live.push(f["id"].as_str().unwrap().to_owned());
                }
            }
        }
        live.sort();
        live
    }

    fn ended(sid: &str, who: &str) -> EndedSession {
        EndedSession {
            sid: sid.into(),
            identity_id: who.into(),
        }
    }

    #[test]
    fn a_session_that_ends_revokes_its_families_and_tells_each_client_that_registered() {
        let w = World::new();
        register(&w, "shop", true);
        register(&w, "blog", true);
        register(&w, "quiet", false);
        for client in ["shop", "blog", "quiet"] {
            signed_in(&w, "ada", "sid-1", client);
        }
        signed_in(&w, "ada", "sid-2", "shop");
        let rps = Rps::default();
        let env = w.env_with_http(NOW, &rps);

        let out = sessions_ended(&env, &[ended("sid-1", "ada")]).unwrap();
        assert_eq!((out.delivered, out.failed), (2, 0));
        let posts = rps.take();
        let uris: Vec<&str> = posts.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(uris, ["https://blog.example/bc", "https://shop.example/bc"]);
        for ((_, form), aud) in posts.iter().zip(["blog", "shop"]) {
            let c = claims(form);
            assert_eq!(
                (c["aud"].as_str(), c["sub"].as_str(), c["sid"].as_str()),
                (Some(aud), Some("ada"), Some("sid-1"))
            );
            assert!(c["events"][crate::oidc::logout_token::EVENT].is_object());
        }
        // The other session and its family live on.
        assert_eq!(live_families(&w), ["sid-2-shop"]);
        // A session ends once: a second sign-out of it tells nobody again.
        let again = sessions_ended(&env, &[ended("sid-1", "ada")]).unwrap();
        assert_eq!(again, SignedOut::default());
        assert!(rps.take().is_empty());
    }

    #[test]
    fn every_other_session_of_a_person_ends_and_one_can_be_kept() {
        let w = World::new();
        register(&w, "shop", true);
        signed_in(&w, "ada", "laptop", "shop");
        signed_in(&w, "ada", "phone", "shop");
        signed_in(&w, "ada", "here", "shop");
        signed_in(&w, "bob", "bobs", "shop");
        // A session listed until now, whose code no client exchanged yet.
        let code = |sid: &str| auth_codes::Code {
            client_id: "shop".into(),
            identity_id: "ada".into(),
            redirect_uri: "https://shop.example/cb".into(),
            scope: "openid".into(),
            nonce: None,
            code_challenge: "c".into(),
            auth_time: NOW,
            amr: "pwd".into(),
            sid: sid.into(),
            expires_at: NOW + 60,
            org_id: None,
            mandate_id: None,
            idp: None,
        };
        auth_codes::insert(&w.sql, "tablet-code", &code("tablet")).unwrap();
        auth_codes::insert(&w.sql, "here-code", &code("here")).unwrap();
        let rps = Rps::default();
        let env = w.env_with_http(NOW, &rps);
        let out = identity_signed_out(&env, "ada", Some("here"), &["tablet".into()]).unwrap();
        let claim = |hash: &str| {
            auth_codes::claim_for_exchange(&w.sql, hash, NOW + 1, "f", "j")
                .unwrap()
                .is_some()
        };
        assert!(!claim("tablet-code"), "spent with its session");
        assert!(claim("here-code"), "the kept session's code still works");
        assert_eq!(out.delivered, 2);
        let mut sids: Vec<String> = rps
            .take()
            .iter()
            .map(|(_, f)| claims(f)["sid"].as_str().unwrap().to_owned())
            .collect();
        sids.sort();
        assert_eq!(sids, ["laptop", "phone"]);
        assert_eq!(live_families(&w), ["bobs-shop", "here-shop"]);
    }

    #[test]
    fn a_failed_delivery_is_recorded_then_retried_with_a_new_token_until_accepted() {
        let w = World::new();
        register(&w, "shop", true);
        register(&w, "blog", true);
        signed_in(&w, "ada", "sid-1", "shop");
        signed_in(&w, "ada", "sid-1", "blog");
        let rps = Rps::default();
        rps.answer(
            "shop.example",
            Err(Error::Unavailable("https://shop.example timed out".into())),
        );
        let out = sessions_ended(&w.env_with_http(NOW, &rps), &[ended("sid-1", "ada")]).unwrap();
        assert_eq!((out.delivered, out.failed), (1, 1));
        let first = rps.take();
        let recorded = logout_deliveries::list(&w.sql, 10).unwrap();
        assert_eq!(recorded.len(), 1);
        let d = &recorded[0];
        assert_eq!(
            (d.client_id.as_str(), d.sid.as_str(), d.identity_id.as_str()),
            ("shop", "sid-1", "ada")
        );
        assert_eq!(d.last_error, "https://shop.example timed out");
        assert_eq!((d.attempts, d.next_attempt_at), (1, Some(NOW + 60)));

        // Not due yet: the sweep sends nothing.
        assert_eq!(
            retry_due(&w.env_with_http(NOW + 59, &rps)).unwrap(),
            SignedOut::default()
        );
        assert!(rps.take().is_empty());

        // Due, and still failing: an error status this time.
        rps.answer("shop.example", Ok(500));
        let out = retry_due(&w.env_with_http(NOW + 60, &rps)).unwrap();
        assert_eq!(out.failed, 1);
        let d = &logout_deliveries::list(&w.sql, 10).unwrap()[0];
        assert_eq!(
            (d.attempts, d.last_error.as_str()),
            (2, "answered 500 Internal Server Error")
        );
        rps.take();

        // Accepted at the next try, with a token signed then: it is gone.
        rps.answer("shop.example", Ok(204));
        let at = d.next_attempt_at.unwrap();
        let out = retry_due(&w.env_with_http(at, &rps)).unwrap();
        assert_eq!((out.delivered, out.failed), (1, 0));
        let retried = rps.take();
        assert_eq!(retried.len(), 1);
        let (old, new) = (claims(&first[1].1), claims(&retried[0].1));
        assert_eq!(first[1].0, "https://shop.example/bc");
        assert_eq!(new["iat"], at);
        assert_ne!(old["jti"], new["jti"]);
        assert_eq!(new["sid"], "sid-1");
        assert!(logout_deliveries::list(&w.sql, 10).unwrap().is_empty());
    }

    #[test]
    fn a_sign_out_also_retries_what_is_due_and_drops_what_no_client_wants() {
        let w = World::new();
        register(&w, "shop", true);
        register(&w, "gone", true);
        signed_in(&w, "ada", "sid-1", "shop");
        signed_in(&w, "ada", "sid-1", "gone");
        signed_in(&w, "ada", "sid-2", "shop");
        let rps = Rps::default();
        rps.answer("shop.example", Err(Error::Unavailable("refused".into())));
        rps.answer("gone.example", Err(Error::Unavailable("refused".into())));
        sessions_ended(&w.env_with_http(NOW, &rps), &[ended("sid-1", "ada")]).unwrap();
        assert_eq!(logout_deliveries::list(&w.sql, 10).unwrap().len(), 2);
        rps.take();
        crate::oidc::clients::delete(&w.sql, "gone").unwrap();
        assert!(
            logout_deliveries::list(&w.sql, 10)
                .unwrap()
                .iter()
                .all(|d| d.client_id == "shop")
        );

        rps.answer("shop.example", Ok(200));
        let out =
            sessions_ended(&w.env_with_http(NOW + 120, &rps), &[ended("sid-2", "ada")]).unwrap();
        assert_eq!(out.delivered, 2);
        let sids: Vec<String> = rps
            .take()
            .iter()
            .map(|(_, f)| claims(f)["sid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(sids.len(), 2);
        assert!(sids.contains(&"sid-1".to_string()) && sids.contains(&"sid-2".to_string()));
        assert!(logout_deliveries::list(&w.sql, 10).unwrap().is_empty());
    }

    #[test]
    fn a_host_outside_allowed_outbound_hosts_is_reported_to_the_operator() {
        let w = World::new();
        register(&w, "shop", true);
        signed_in(&w, "ada", "sid-1", "shop");
        let rps = Rps::default();
        rps.answer(
            "shop.example",
            Err(Error::OutboundDenied("https://shop.example".into())),
        );
        sessions_ended(&w.env_with_http(NOW, &rps), &[ended("sid-1", "ada")]).unwrap();
        let d = &logout_deliveries::list(&w.sql, 10).unwrap()[0];
        assert!(
            d.last_error
                .starts_with("https://shop.example is not in allowed_outbound_hosts")
                && d.last_error.contains("logout_outbound_host_"),
            "{}",
            d.last_error
        );
    }

    #[test]
    fn a_redirect_is_a_failure() {
        let w = World::new();
        register(&w, "shop", true);
        signed_in(&w, "ada", "sid-1", "shop");
        let rps = Rps::default();
        rps.answer("shop.example", Ok(302));
        let out = sessions_ended(&w.env_with_http(NOW, &rps), &[ended("sid-1", "ada")]).unwrap();
        assert_eq!(out.failed, 1);
        let d = &logout_deliveries::list(&w.sql, 10).unwrap()[0];
        assert!(d.last_error.contains("redirect"), "{}", d.last_error);
    }

    #[test]
    fn without_the_keys_the_tokens_are_handed_to_the_token_component() {
        let w = World::new();
        register(&w, "shop", true);
        register(&w, "quiet", false);
        signed_in(&w, "ada", "sid-1", "shop");
        signed_in(&w, "ada", "sid-1", "quiet");
        let rps = Rps::default();
        let out = sessions_ended(&w.env_without_keys(NOW, &rps), &[ended("sid-1", "ada")]).unwrap();
        assert_eq!(out, SignedOut::default());
        assert_eq!(rps.take(), [(HAND_OVER_URL.to_owned(), String::new())]);
        assert!(live_families(&w).is_empty(), "revoked in the same step");
        let handed = logout_deliveries::list(&w.sql, 10).unwrap();
        assert_eq!(
            handed.len(),
            1,
            "only the client that takes back-channel logout"
        );
        assert_eq!(
            (
                handed[0].client_id.as_str(),
                handed[0].attempts,
                handed[0].next_attempt_at
            ),
            ("shop", 0, Some(NOW))
        );

        // The token component sends it, signed there.
        let out = deliver_handed_over(&w.env_with_http(NOW, &rps)).unwrap();
        assert_eq!((out.delivered, out.failed), (1, 0));
        let posts = rps.take();
        assert_eq!(posts[0].0, "https://shop.example/bc");
        assert_eq!(claims(&posts[0].1)["sid"], "sid-1");
        assert!(logout_deliveries::list(&w.sql, 10).unwrap().is_empty());

        // A token component out of reach: the delivery waits, due, and the
        // operator sees why.
        signed_in(&w, "ada", "sid-2", "shop");
        rps.answer(
            "token.spin.internal",
            Err(Error::OutboundDenied("http://token.spin.internal".into())),
        );
        sessions_ended(&w.env_without_keys(NOW, &rps), &[ended("sid-2", "ada")]).unwrap();
        let waiting = &logout_deliveries::list(&w.sql, 10).unwrap()[0];
        assert!(
            waiting.last_error.contains("allowed_outbound_hosts"),
            "{}",
            waiting.last_error
        );
        assert_eq!(waiting.next_attempt_at, Some(NOW));
        rps.take();
        let out = retry_due(&w.env_with_http(NOW + 1, &rps)).unwrap();
        assert_eq!(out.delivered, 1);
    }

    #[test]
    fn nothing_to_tell_sends_nothing() {
        let w = World::new();
        let rps = Rps::default();
        let out = retry_due(&w.env_with_http(NOW, &rps)).unwrap();
        assert_eq!(out, SignedOut::default());
        assert!(rps.take().is_empty());
    }
}
