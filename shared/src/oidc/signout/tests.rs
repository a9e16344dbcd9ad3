use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Value as Json, json};

use super::*;
use crate::mail::HttpClient;
use crate::store::logout_deliveries;
use crate::store::refresh_families::{self, Family};
use crate::testkit::{self, World};

const NOW: i64 = 1_800_000_000;

/// Relying parties' back-channel endpoints: each host answers as told
/// (200 unless set), and every POST is kept.
#[derive(Default)]
struct Rps {
    answers: RefCell<HashMap<String, std::result::Result<u16, Error>>>,
    posts: RefCell<Vec<(String, String)>>,
}

impl Rps {
    fn answer(&self, host: &str, answer: std::result::Result<u16, Error>) {
        self.answers.borrow_mut().insert(host.into(), answer);
    }

    fn take(&self) -> Vec<(String, String)> {
        let mut posts = std::mem::take(&mut *self.posts.borrow_mut());
        posts.sort();
        posts
    }
}

impl HttpClient for Rps {
    fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>> {
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(
            req.headers()[http::header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        let host = req.uri().host().unwrap_or_default().to_owned();
        let body = String::from_utf8(req.body().clone()).unwrap();
        self.posts.borrow_mut().push((req.uri().to_string(), body));
        let status = self
            .answers
            .borrow()
            .get(&host)
            .cloned()
            .unwrap_or(Ok(200))?;
        let mut res = http::Response::new(Vec::new());
        *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
        Ok(res)
    }
}

fn claims(form: &str) -> Json {
    let token = form.strip_prefix("logout_token=").unwrap();
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
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
    refresh_families::insert(&w.sql, &family, &format!("hash-{sid}-{client}"), NOW - 100).unwrap();
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
    let rps = Rps::default();
    let env = w.env_with_http(NOW, &rps);
    let out = identity_signed_out(&env, "ada", Some("here")).unwrap();
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
    let out = sessions_ended(&w.env_with_http(NOW + 120, &rps), &[ended("sid-2", "ada")]).unwrap();
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
fn nothing_to_tell_sends_nothing() {
    let w = World::new();
    let rps = Rps::default();
    let out = retry_due(&w.env_with_http(NOW, &rps)).unwrap();
    assert_eq!(out, SignedOut::default());
    assert!(rps.take().is_empty());
}
