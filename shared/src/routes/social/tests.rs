//! The social component against a fake OpenID provider: discovery, JWKS
//! (ES256 and RS256 keys from jwt-simple) and the token endpoint, served
//! through a fake `HttpClient`.

use std::cell::RefCell;

use http::{HeaderMap, HeaderValue, StatusCode};
use jwt_simple::prelude::*;
use serde_json::{Map, Value as Json, json};

use crate::accounts::Auth;
use crate::error::{Error, Result};
use crate::mail::HttpClient;
use crate::session;
use crate::social::flow::{self, Outcome};
use crate::social::link;
use crate::social::{Connection, Kind, Settings};
use crate::store::{self, connections, federated_identities};
use crate::testkit::{self, World};
use crate::web::{Params, Request, Response};
use crate::{identity, password};

const NOW: i64 = 1_800_000_000;
const OP: &str = "https://op.example";
const CLIENT: &str = "lanyard-at-op";
const SECRET: &str = "op s3cret:with/odd chars";

/// What the fake provider answers, and what it was asked.
struct Fake {
    jwks: RefCell<Vec<Json>>,
    id_token: RefCell<String>,
    /// Overrides the token endpoint's answer: (status, body).
    token_answer: RefCell<Option<(u16, String)>>,
    /// Every transport call fails with this error.
    broken: RefCell<Option<Error>>,
    calls: RefCell<Vec<String>>,
    token_requests: RefCell<Vec<Request>>,
}

impl Fake {
    fn new(keys: &[&Keys]) -> Self {
        Self {
            jwks: RefCell::new(keys.iter().map(|k| k.public()).collect()),
            id_token: RefCell::new(String::new()),
            token_answer: RefCell::new(None),
            broken: RefCell::new(None),
            calls: RefCell::new(Vec::new()),
            token_requests: RefCell::new(Vec::new()),
        }
    }

    fn count(&self, path: &str) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|c| c.ends_with(path))
            .count()
    }

    fn answer(status: u16, body: Json, cache: Option<&str>) -> Response {
        let mut res = http::Response::new(body.to_string().into_bytes());
        *res.status_mut() = StatusCode::from_u16(status).unwrap();
        if let Some(cc) = cache {
            res.headers_mut()
                .insert("cache-control", HeaderValue::from_str(cc).unwrap());
        }
        res
    }
}

impl HttpClient for Fake {
    fn send(&self, req: Request) -> Result<Response> {
        if let Some(e) = self.broken.borrow().clone() {
            return Err(e);
        }
        let url = req.uri().to_string();
        self.calls.borrow_mut().push(url.clone());
        Ok(match url.strip_prefix(OP).unwrap_or("") {
            "/.well-known/openid-configuration" => Self::answer(
                200,
                json!({
                    "issuer": OP,
                    "authorization_endpoint": format!("{OP}/authorize"),
                    "token_endpoint": format!("{OP}/token"),
                    "jwks_uri": format!("{OP}/jwks"),
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                }),
                Some("public, max-age=3600"),
            ),
            "/jwks" => Self::answer(
                200,
                json!({ "keys": self.jwks.borrow().clone() }),
                Some("max-age=300"),
            ),
            "/token" => {
                self.token_requests.borrow_mut().push(req);
                match self.token_answer.borrow().clone() {
                    Some((status, body)) => {
                        let mut res = http::Response::new(body.into_bytes());
                        *res.status_mut() = StatusCode::from_u16(status).unwrap();
                        res
                    }
                    None => Self::answer(
                        200,
                        json!({
                            "access_token": "at", "token_type": "Bearer",
                            "id_token": self.id_token.borrow().clone(),
                        }),
                        None,
                    ),
                }
            }
            _ => Self::answer(404, json!({}), None),
        })
    }
}

/// A signing key of the fake provider.
enum Keys {
    Es(Box<ES256KeyPair>),
    Rs(Box<RS256KeyPair>),
}

impl Keys {
    fn es(kid: &str) -> Self {
        Keys::Es(Box::new(ES256KeyPair::generate().with_key_id(kid)))
    }

    fn rs(kid: &str) -> Self {
        let private = &crate::oidc::keys::tests::test_rs256_key().0;
        Keys::Rs(Box::new(
            RS256KeyPair::from_jwk(private).unwrap().with_key_id(kid),
        ))
    }

    fn public(&self) -> Json {
        let (jwk, kid, alg) = match self {
            Keys::Es(k) => (k.public_key().to_jwk(), k.key_id().clone(), "ES256"),
            Keys::Rs(k) => (k.public_key().to_jwk(), k.key_id().clone(), "RS256"),
        };
        let mut jwk: Json = serde_json::from_str(&jwk).unwrap();
        jwk["kid"] = kid.unwrap().into();
        jwk["alg"] = alg.into();
        jwk["use"] = "sig".into();
        jwk
    }

    fn sign(&self, claims: &Json) -> String {
        let mut custom: Map<String, Json> = claims.as_object().unwrap().clone();
        let mut c = Claims::with_custom_claims(Map::new(), Duration::from_secs(300));
        let num = |v: Option<Json>| v.and_then(|v| v.as_u64()).map(UnixTimeStamp::from_secs);
        c.issued_at = num(custom.remove("iat"));
        c.expires_at = num(custom.remove("exp"));
        c.invalid_before = None;
        c.issuer = custom
            .remove("iss")
            .and_then(|v| v.as_str().map(str::to_owned));
        c.subject = custom
            .remove("sub")
            .and_then(|v| v.as_str().map(str::to_owned));
        c.nonce = custom
            .remove("nonce")
            .and_then(|v| v.as_str().map(str::to_owned));
        c.audiences = match custom.remove("aud") {
            Some(Json::String(a)) => Some(Audiences::AsString(a)),
            Some(Json::Array(list)) => Some(Audiences::AsSet(
                list.iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect(),
            )),
            _ => None,
        };
        c.custom = custom;
        match self {
            Keys::Es(k) => k.sign(c).unwrap(),
            Keys::Rs(k) => k.sign(c).unwrap(),
        }
    }
}

fn world() -> World {
    World::with(&[
        ("op_secret", SECRET),
        (
            "profile_schema",
            r#"[{"name":"name"},{"name":"given_name"}]"#,
        ),
        ("admin_token", "an-admin-token-of-at-least-32-characters"),
    ])
}

fn connection(w: &World, id: &str, trusted: bool) -> Connection {
    let c = Connection {
        id: id.into(),
        kind: Kind::Oidc,
        name: "Example OP".into(),
        issuer: Some(OP.into()),
        client_id: CLIENT.into(),
        secret_variable: Some("op_secret".into()),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        settings: Settings {
            mapping: [
                ("name".to_owned(), "name".to_owned()),
                ("nickname".to_owned(), "nickname".to_owned()),
            ]
            .into(),
            ..Settings::default()
        },
        trusted_email: trusted,
        org_id: None,
        default_role: None,
        enabled: true,
        created_at: NOW,
        updated_at: NOW,
    };
    assert!(connections::insert(&w.sql, &c).unwrap());
    c
}

/// A sign-in started by a browser: its cookie, and the provider's URL.
struct Browser {
    cookie: HeaderMap,
    location: url::Url,
}

impl Browser {
    fn param(&self, name: &str) -> String {
        self.location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }
}

fn cookie_headers(set_cookie: &HeaderValue, extra: Option<&HeaderMap>) -> HeaderMap {
    let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
    let mut h = extra.cloned().unwrap_or_default();
    let joined = match h.get("cookie") {
        Some(v) => format!("{}; {pair}", v.to_str().unwrap()),
        None => pair.to_owned(),
    };
    h.insert("cookie", HeaderValue::from_str(&joined).unwrap());
    h
}

fn start(
    w: &World,
    fake: &Fake,
    conn: &Connection,
    signed_in: Option<(&str, &HeaderMap)>,
    at: i64,
) -> Browser {
    let env = w.env_with_http(at, fake);
    let auth = Auth::load(&w.vars).unwrap();
    let headers = signed_in.map(|(_, h)| h.clone()).unwrap_or_default();
    let started = flow::start(
        &env,
        &auth,
        conn,
        Some("/after"),
        signed_in.map(|(id, _)| id),
        &headers,
    )
    .unwrap();
    Browser {
        cookie: cookie_headers(&started.cookie, Some(&headers)),
        location: url::Url::parse(&started.location).unwrap(),
    }
}

fn callback(w: &World, fake: &Fake, b: &Browser, conn_id: &str, at: i64) -> Result<Outcome> {
    let env = w.env_with_http(at, fake);
    let auth = Auth::load(&w.vars).unwrap();
    let params = testkit::params(&[("code", "the-code"), ("state", &b.param("state"))]);
    flow::callback(&env, &auth, conn_id, &params, &b.cookie)
}

/// The standard claims of a good ID token for this browser's sign-in.
fn claims(b: &Browser, sub: &str, email: &str) -> Json {
    json!({
        "iss": OP, "aud": CLIENT, "sub": sub, "nonce": b.param("nonce"),
        "iat": NOW, "exp": NOW + 300,
        "email": email, "email_verified": true, "name": "Ada Lovelace", "nickname": "ada",
    })
}

/// A whole sign-in with the ID token `edit` makes of the good claims.
fn sign_in(
    w: &World,
    fake: &Fake,
    keys: &Keys,
    conn: &Connection,
    edit: impl Fn(&mut Json),
) -> Result<Outcome> {
    let b = start(w, fake, conn, None, NOW);
    let mut c = claims(&b, "upstream-1", "ada@example.com");
    edit(&mut c);
    *fake.id_token.borrow_mut() = keys.sign(&c);
    callback(w, fake, &b, &conn.id, NOW + 5)
}

fn session_of(w: &World, cookie: &HeaderValue) -> session::Session {
    let auth = Auth::load(&w.vars).unwrap();
    session::current(
        &w.env(NOW + 6),
        auth.policy().unwrap(),
        &cookie_headers(cookie, None),
    )
    .unwrap()
    .unwrap()
}

fn count(w: &World, table: &str) -> i64 {
    store::count_rows(&w.sql, table).unwrap()
}

#[test]
fn a_first_sign_in_creates_the_account_signed_in_through_the_connection() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", true);
    let b = start(&w, &fake, &conn, None, NOW);
    // The provider is asked for a code with PKCE, state, nonce and our callback.
    assert_eq!(b.location.path(), "/authorize");
    assert_eq!(b.param("client_id"), CLIENT);
    assert_eq!(
        b.param("redirect_uri"),
        format!("{}/social/example/callback", testkit::ISSUER)
    );
    assert_eq!(b.param("code_challenge_method"), "S256");
    assert_eq!(b.param("scope"), "openid email profile");
    assert_eq!(b.param("state").len(), 43);
    let set = b.cookie.get("cookie").unwrap().to_str().unwrap().to_owned();
    assert!(set.starts_with("__Host-lanyard_social="), "{set}");

    *fake.id_token.borrow_mut() = keys.sign(&claims(&b, "upstream-1", "Ada@Example.com"));
    let Outcome::SignedIn { cookie, return_to } =
        callback(&w, &fake, &b, "example", NOW + 5).unwrap()
    else {
        panic!("not signed in")
    };
    assert_eq!(return_to.as_deref(), Some("/after"));
    let s = session_of(&w, &cookie);
    assert_eq!(
        (s.amr.clone(), s.idp.as_deref()),
        (vec!["fed".to_owned()], Some("example"))
    );
    let who = identity::by_id(&w.sql, &s.sub).unwrap().unwrap();
    assert_eq!(who.email, "ada@example.com");
    assert!(who.email_verified, "verified upstream, trusted connection");
    assert_eq!(who.password_hash, None);
    // Mapped into the schema's attributes only (nickname is not collected).
    assert_eq!(
        Json::Object(who.attributes.clone()),
        json!({"name": "Ada Lovelace"})
    );
    let link = federated_identities::get(&w.sql, OP, "upstream-1")
        .unwrap()
        .unwrap();
    assert_eq!(
        (link.identity_id.as_str(), link.connection_id.as_str()),
        (who.id.as_str(), "example")
    );

    // The token request: the code, our callback, the PKCE verifier of the
    // challenge sent, and the secret from the variable (Basic, form-encoded).
    let req = fake.token_requests.borrow()[0].clone();
    let form = Params::parse(req.body()).unwrap();
    assert_eq!(form.one("grant_type").unwrap(), Some("authorization_code"));
    assert_eq!(form.one("code").unwrap(), Some("the-code"));
    assert_eq!(
        form.one("redirect_uri").unwrap(),
        Some(b.param("redirect_uri").as_str())
    );
    let verifier = form.one("code_verifier").unwrap().unwrap();
    assert_eq!(
        crate::crypto::b64url(&crate::crypto::sha256(verifier.as_bytes())),
        b.param("code_challenge")
    );
    use base64::Engine as _;
    let basic = req.headers()["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Basic ")
        .unwrap()
        .to_owned();
    let pair = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(basic)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(pair, format!("{CLIENT}:op+s3cret%3Awith%2Fodd+chars"));
    assert!(form.one("client_secret").unwrap().is_none());

    // A second sign-in is the same identity, and fetches neither discovery
    // nor the JWKS again (both cached).
    let calls_before = (fake.count("openid-configuration"), fake.count("/jwks"));
    assert_eq!(calls_before, (1, 1));
    let Outcome::SignedIn { cookie, .. } = sign_in(&w, &fake, &keys, &conn, |_| {}).unwrap() else {
        panic!("not signed in")
    };
    assert_eq!(session_of(&w, &cookie).sub, who.id);
    assert_eq!(
        (fake.count("openid-configuration"), fake.count("/jwks")),
        calls_before
    );
    assert_eq!(count(&w, "identities"), 1);
}

#[test]
fn rs256_tokens_verify_too_and_a_rotated_key_is_fetched_once() {
    let w = world();
    let (es, rs) = (Keys::es("es1"), Keys::rs("rs1"));
    let fake = Fake::new(&[&es]);
    let conn = connection(&w, "example", true);
    assert!(matches!(
        sign_in(&w, &fake, &es, &conn, |_| {}),
        Ok(Outcome::SignedIn { .. })
    ));
    assert_eq!(fake.count("/jwks"), 1);
    // The provider rotates to an RSA key: the cached JWKS lacks its kid, so
    // it is fetched again, once.
    fake.jwks.borrow_mut().push(rs.public());
    assert!(matches!(
        sign_in(&w, &fake, &rs, &conn, |_| {}),
        Ok(Outcome::SignedIn { .. })
    ));
    assert_eq!(fake.count("/jwks"), 2);
    // A kid it never publishes: refetched once more, then refused.
    let unknown = Keys::es("es-unknown");
    let err = sign_in(&w, &fake, &unknown, &conn, |_| {}).unwrap_err();
    assert!(
        matches!(&err, Error::Upstream(m) if m.contains("key it does not publish")),
        "{err:?}"
    );
    assert_eq!(fake.count("/jwks"), 3);
}

#[test]
fn untrustworthy_id_tokens_are_refused_and_change_nothing() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", true);
    type Edit = Box<dyn Fn(&mut Json)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "wrong iss",
            Box::new(|c| c["iss"] = "https://evil.example".into()),
            "issued by",
        ),
        (
            "wrong aud",
            Box::new(|c| c["aud"] = "someone-else".into()),
            "another application",
        ),
        (
            "azp of another",
            Box::new(|c| c["azp"] = "someone-else".into()),
            "azp",
        ),
        (
            "several audiences, no azp",
            Box::new(|c| c["aud"] = json!([CLIENT, "other"])),
            "azp",
        ),
        (
            "wrong nonce",
            Box::new(|c| c["nonce"] = "not-this-one".into()),
            "nonce",
        ),
        (
            "expired",
            Box::new(|c| c["exp"] = (NOW - 61).into()),
            "expired",
        ),
        (
            "iat far past",
            Box::new(|c| c["iat"] = (NOW - 700).into()),
            "issue time",
        ),
        (
            "iat far future",
            Box::new(|c| c["iat"] = (NOW + 700).into()),
            "issue time",
        ),
        (
            "no exp",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "expired",
        ),
        (
            "no sub",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
            "sub",
        ),
    ];
    for (what, edit, says) in cases {
        let err = sign_in(&w, &fake, &keys, &conn, edit).unwrap_err();
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains(says)),
            "{what}: {err:?}"
        );
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY, "{what}");
    }
    // Several audiences are fine with our azp; an exp within the leeway too.
    assert!(
        sign_in(&w, &fake, &keys, &conn, |c| {
            c["aud"] = json!([CLIENT, "other"]);
            c["azp"] = CLIENT.into();
            c["exp"] = (NOW - 30).into();
        })
        .is_ok()
    );
    federated_identities::delete_for_identity(
        &w.sql,
        &identity::by_email(&w.sql, "ada@example.com")
            .unwrap()
            .unwrap()
            .id,
    )
    .unwrap();

    // A signature by another key under the published kid.
    let forger = Keys::es("es1");
    let err = sign_in(&w, &fake, &forger, &conn, |_| {}).unwrap_err();
    assert!(
        matches!(&err, Error::Upstream(m) if m.contains("signature")),
        "{err:?}"
    );
    // HS256 (or anything but RS256 and ES256) is refused before any key.
    let b = start(&w, &fake, &conn, None, NOW);
    let hs = HS256Key::generate().with_key_id("es1");
    let mut c = Claims::with_custom_claims(Map::new(), Duration::from_secs(300));
    c.nonce = Some(b.param("nonce"));
    *fake.id_token.borrow_mut() = hs.authenticate(c).unwrap();
    let err = callback(&w, &fake, &b, "example", NOW + 5).unwrap_err();
    assert!(
        matches!(&err, Error::Upstream(m) if m.contains("HS256")),
        "{err:?}"
    );
    assert_eq!(count(&w, "federated_identities"), 0);
}

#[test]
fn a_state_is_taken_once_by_the_browser_that_started_it_in_time() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", true);
    let dead = |r: Result<Outcome>, says: &str| match r {
        Err(Error::DeadLink(m)) => assert!(m.contains(says), "{m}"),
        other => panic!("{says}: {other:?}"),
    };
    // Another browser (another cookie, or none) cannot finish it; the
    // rightful browser still can.
    let b = start(&w, &fake, &conn, None, NOW);
    *fake.id_token.borrow_mut() = keys.sign(&claims(&b, "upstream-1", "ada@example.com"));
    let other = start(&w, &fake, &conn, None, NOW);
    let thief = Browser {
        cookie: other.cookie.clone(),
        location: b.location.clone(),
    };
    dead(
        callback(&w, &fake, &thief, "example", NOW + 5),
        "another browser",
    );
    let cookieless = Browser {
        cookie: HeaderMap::new(),
        location: b.location.clone(),
    };
    dead(
        callback(&w, &fake, &cookieless, "example", NOW + 5),
        "another browser",
    );
    dead(
        callback(&w, &fake, &b, "other-connection", NOW + 5),
        "another browser",
    );
    // Ten callbacks with one state: one session.
    let results: Vec<_> = (0..10)
        .map(|_| callback(&w, &fake, &b, "example", NOW + 5))
        .collect();
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Ok(Outcome::SignedIn { .. })))
            .count(),
        1
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Err(Error::DeadLink(m)) if m.contains("finished already")))
            .count(),
        9
    );
    assert_eq!(count(&w, "federated_identities"), 1);
    // Too late.
    let late = start(&w, &fake, &conn, None, NOW);
    dead(
        callback(&w, &fake, &late, "example", NOW + flow::STATE_TTL + 1),
        "too long",
    );
    // Unknown.
    let mut forged = start(&w, &fake, &conn, None, NOW);
    forged.location.set_query(Some("state=made-up"));
    dead(
        callback(&w, &fake, &forged, "example", NOW + 5),
        "not one we started",
    );
}

#[test]
fn a_cancelled_sign_in_goes_back_to_the_login_page_with_a_notice() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", true);
    let b = start(&w, &fake, &conn, None, NOW);
    let uri = format!(
        "/social/example/callback?error=access_denied&state={}",
        b.param("state")
    );
    let mut req = testkit::get(&uri).build();
    *req.headers_mut() = b.cookie.clone();
    let res = crate::routes::social::handle(&w.env_with_http(NOW + 5, &fake), req);
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        "/login?social=cancelled&return_to=%2Fafter"
    );
    // The login page says so, and offers the connection again.
    let page =
        crate::routes::login::handle(&w.env(NOW), testkit::get("/login?social=cancelled").build());
    let text = String::from_utf8(page.body().clone()).unwrap();
    assert!(text.contains("You cancelled the sign-in"), "{text}");
    assert!(
        text.contains("href=\"/social/example/start\">Continue with Example OP</a>"),
        "{text}"
    );
    // Another provider error is a page naming the provider.
    let err = flow::callback(
        &w.env_with_http(NOW, &fake),
        &Auth::load(&w.vars).unwrap(),
        "example",
        &testkit::params(&[("error", "server_error")]),
        &HeaderMap::new(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Upstream(m) if m.contains("Example OP could not sign you in (server_error)")),
        "{err:?}"
    );
}

#[test]
fn a_provider_down_slow_or_answering_garbage_is_a_clear_page() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", true);
    let unavailable = |r: Result<Outcome>, says: &str| match r {
        Err(Error::Unavailable(m)) => assert!(m.contains("Example OP") && m.contains(says), "{m}"),
        other => panic!("{says}: {other:?}"),
    };
    *fake.token_answer.borrow_mut() = Some((500, "oops".into()));
    unavailable(sign_in(&w, &fake, &keys, &conn, |_| {}), "answered 500");
    *fake.token_answer.borrow_mut() = Some((200, "<html>not json</html>".into()));
    unavailable(
        sign_in(&w, &fake, &keys, &conn, |_| {}),
        "not a JSON object",
    );
    *fake.token_answer.borrow_mut() = Some((200, json!({"access_token": "x"}).to_string()));
    unavailable(
        sign_in(&w, &fake, &keys, &conn, |_| {}),
        "without an ID token",
    );
    *fake.token_answer.borrow_mut() = Some((400, json!({"error": "invalid_grant"}).to_string()));
    let err = sign_in(&w, &fake, &keys, &conn, |_| {}).unwrap_err();
    assert!(
        matches!(&err, Error::Upstream(m) if m.contains("invalid_grant")),
        "{err:?}"
    );
    *fake.token_answer.borrow_mut() = None;
    // A time-out, before anything is stored.
    let b = start(&w, &fake, &conn, None, NOW);
    *fake.broken.borrow_mut() = Some(Error::Unavailable("https://op.example timed out".into()));
    unavailable(callback(&w, &fake, &b, "example", NOW + 5), "timed out");
    // Discovery fails at the start: nothing is stored, the page says why.
    let w2 = world();
    let conn2 = connection(&w2, "example", true);
    let env = w2.env_with_http(NOW, &fake);
    let err = flow::start(
        &env,
        &Auth::load(&w2.vars).unwrap(),
        &conn2,
        None,
        None,
        &HeaderMap::new(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("timed out")),
        "{err:?}"
    );
    assert_eq!(count(&w2, "social_states"), 0);
    // A host outside allowed_outbound_hosts: a page that names it.
    *fake.broken.borrow_mut() = Some(Error::OutboundDenied(OP.into()));
    let res = crate::routes::social::handle(&env, testkit::get("/social/example/start").build());
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let text = String::from_utf8(res.body().clone()).unwrap();
    assert!(
        text.contains("https://op.example") && text.contains("allowed_outbound_hosts"),
        "{text}"
    );
    assert_eq!(count(&w, "identities"), 0);
}

#[test]
fn without_an_email_no_account_can_be_made() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", true);
    let err = sign_in(&w, &fake, &keys, &conn, |c| {
        c.as_object_mut().unwrap().remove("email");
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::Upstream(m) if m.contains("did not share an email")),
        "{err:?}"
    );
    assert_eq!(
        (count(&w, "identities"), count(&w, "federated_identities")),
        (0, 0)
    );
}

fn account_with_password(w: &World, verified: bool) -> identity::Identity {
    let auth = Auth::load(&w.vars).unwrap();
    let hash = password::hash("correct horse battery staple", auth.argon2().unwrap()).unwrap();
    let who = identity::create(&w.sql, "ada@example.com", Some(&hash), &Map::new(), NOW)
        .unwrap()
        .unwrap();
    if verified {
        identity::mark_verified(&w.sql, &who.id, NOW).unwrap();
    }
    who
}

#[test]
fn an_existing_account_is_linked_at_once_only_when_both_sides_verified_and_trusted() {
    // Both verified, connection trusted: linked, signed in as the account.
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", true);
    let ada = account_with_password(&w, true);
    let Outcome::SignedIn { cookie, .. } = sign_in(&w, &fake, &keys, &conn, |_| {}).unwrap() else {
        panic!("not linked at once")
    };
    assert_eq!(session_of(&w, &cookie).sub, ada.id);
    assert_eq!(count(&w, "identities"), 1);

    // Otherwise the password proves the account first; never a second account.
    for (trusted, local_verified, upstream_verified) in [
        (false, true, true),
        (true, false, true),
        (true, true, false),
    ] {
        let w = world();
        let conn = connection(&w, "example", trusted);
        let ada = account_with_password(&w, local_verified);
        let outcome = sign_in(&w, &fake, &keys, &conn, |c| {
            c["email_verified"] = upstream_verified.into()
        })
        .unwrap();
        let Outcome::NeedsPassword { token } = outcome else {
            panic!("{trusted} {local_verified} {upstream_verified}: {outcome:?}")
        };
        assert_eq!(
            (count(&w, "identities"), count(&w, "federated_identities")),
            (1, 0)
        );
        let env = w.env(NOW + 10);
        let auth = Auth::load(&w.vars).unwrap();
        let (_, shown) = link::pending(&env, &token).unwrap();
        assert_eq!(shown.email, "ada@example.com");
        let err = link::confirm(&env, &auth, &token, "wrong password", "1.2.3.4").unwrap_err();
        assert!(matches!(err, Error::Unauthorized(_)));
        let (who, pending) = link::confirm(
            &env,
            &auth,
            &token,
            "correct horse battery staple",
            "1.2.3.4",
        )
        .unwrap();
        assert_eq!(
            (who.id.as_str(), pending.return_to.as_deref()),
            (ada.id.as_str(), Some("/after"))
        );
        assert_eq!(
            federated_identities::get(&w.sql, OP, "upstream-1")
                .unwrap()
                .unwrap()
                .identity_id,
            ada.id
        );
        // Used once.
        assert!(matches!(
            link::confirm(
                &env,
                &auth,
                &token,
                "correct horse battery staple",
                "1.2.3.4"
            ),
            Err(Error::DeadLink(_))
        ));
        // The next sign-in is the linked account, no question asked.
        assert!(matches!(
            sign_in(&w, &fake, &keys, &conn, |_| {}),
            Ok(Outcome::SignedIn { .. })
        ));
        assert_eq!(count(&w, "identities"), 1);
    }
}

#[test]
fn the_password_proof_goes_through_the_pages() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", false);
    account_with_password(&w, true);
    let Outcome::NeedsPassword { token } = sign_in(&w, &fake, &keys, &conn, |_| {}).unwrap() else {
        panic!("no proof asked")
    };
    let env = w.env(NOW + 10);
    let res = crate::routes::social::handle(
        &env,
        testkit::get(&format!("/social/link?token={token}")).build(),
    );
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(res.body().clone()).unwrap();
    assert!(
        text.contains("Link your Example OP account") && text.contains("ada@example.com"),
        "{text}"
    );
    let csrf = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let post = |password: &str| {
        crate::routes::social::handle(
            &env,
            testkit::post("/social/link")
                .header("cookie", &format!("__Host-lanyard_csrf={csrf}"))
                .form(&[("csrf", &csrf), ("token", &token), ("password", password)])
                .build(),
        )
    };
    assert_eq!(post("wrong password").status(), StatusCode::UNAUTHORIZED);
    let res = post("correct horse battery staple");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/after");
    let set = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let session_cookie = set
        .iter()
        .find(|c| c.starts_with("__Host-lanyard_session="))
        .unwrap();
    let s = session_of(&w, &HeaderValue::from_str(session_cookie).unwrap());
    assert_eq!(
        (s.amr, s.idp.as_deref()),
        (vec!["fed".to_owned(), "pwd".to_owned()], Some("example"))
    );
    // The link page of a used link is a dead-link page.
    let res = crate::routes::social::handle(
        &env,
        testkit::get(&format!("/social/link?token={token}")).build(),
    );
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn a_signed_in_person_links_another_upstream_account_but_never_someone_elses() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", false);
    let ada = account_with_password(&w, true);
    let auth = Auth::load(&w.vars).unwrap();
    let ada_session = cookie_headers(
        &crate::testkit::signed_in(&w, auth.policy().unwrap(), &ada.id, 0, NOW),
        None,
    );
    let b = start(&w, &fake, &conn, Some((&ada.id, &ada_session)), NOW);
    // Another email upstream: linking does not care.
    *fake.id_token.borrow_mut() = keys.sign(&claims(&b, "upstream-9", "ada.at.work@example.org"));
    assert!(matches!(
        callback(&w, &fake, &b, "example", NOW + 5),
        Ok(Outcome::Linked { .. })
    ));
    assert_eq!(
        federated_identities::get(&w.sql, OP, "upstream-9")
            .unwrap()
            .unwrap()
            .identity_id,
        ada.id
    );
    // Bob cannot link Ada's upstream account to himself.
    let bob = testkit::person(&w.sql, "bob@example.com", NOW);
    let bob_session = cookie_headers(
        &crate::testkit::signed_in(&w, auth.policy().unwrap(), &bob.id, 0, NOW),
        None,
    );
    let b = start(&w, &fake, &conn, Some((&bob.id, &bob_session)), NOW);
    *fake.id_token.borrow_mut() = keys.sign(&claims(&b, "upstream-9", "ada.at.work@example.org"));
    let err = callback(&w, &fake, &b, "example", NOW + 5).unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("already linked to another account")),
        "{err:?}"
    );
    assert!(
        federated_identities::for_identity(&w.sql, &bob.id)
            .unwrap()
            .is_empty()
    );
    // link=1 without a session asks to sign in.
    let res = crate::routes::social::handle(
        &w.env(NOW),
        testkit::get("/social/example/start?link=1").build(),
    );
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn the_last_way_to_sign_in_cannot_be_unlinked() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", true);
    let Outcome::SignedIn { cookie, .. } = sign_in(&w, &fake, &keys, &conn, |_| {}).unwrap() else {
        panic!("not signed in")
    };
    let who = session_of(&w, &cookie).sub;
    let env = w.env(NOW + 10);
    let err = link::unlink(&env, &who, OP, "upstream-1").unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("only way to sign in")),
        "{err:?}"
    );
    assert_eq!(link::unlink(&env, &who, OP, "nobody"), Err(Error::NotFound));
    // With a second link, the first can go (through the page, with CSRF).
    federated_identities::insert(
        &w.sql,
        &federated_identities::FederatedIdentity {
            issuer: OP.into(),
            subject: "upstream-2".into(),
            connection_id: "example".into(),
            identity_id: who.clone(),
            email: None,
            created_at: NOW,
            last_used_at: NOW,
        },
    )
    .unwrap();
    let csrf = crate::crypto::random_token().unwrap();
    let pair = cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let unlink = |subject: &str| {
        crate::routes::social::handle(
            &env,
            testkit::post("/social/unlink")
                .header("cookie", &format!("{pair}; __Host-lanyard_csrf={csrf}"))
                .form(&[("csrf", &csrf), ("issuer", OP), ("subject", subject)])
                .build(),
        )
    };
    assert_eq!(unlink("upstream-1").status(), StatusCode::OK);
    let res = unlink("upstream-2");
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(
        String::from_utf8(res.body().clone())
            .unwrap()
            .contains("only way to sign in")
    );
    assert_eq!(
        federated_identities::for_identity(&w.sql, &who)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn the_connections_admin_api_validates_and_fills_in_presets() {
    let mut w = world();
    // Outside dev_mode, where plain http issuers are refused.
    w.set("dev_mode", Some("false"));
    let env = w.env(NOW);
    let call = |method: &str, path: &str, body: Option<Json>, token: Option<&str>| {
        let mut r = match method {
            "POST" => testkit::post(path),
            _ => testkit::get(path),
        };
        if let Some(t) = token {
            r = r.header("authorization", &format!("Bearer {t}"));
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let mut req = r.build();
        *req.method_mut() = http::Method::from_bytes(method.as_bytes()).unwrap();
        let res = crate::routes::social::handle(&env, req);
        let json: Json = serde_json::from_slice(res.body()).unwrap_or_default();
        (res.status(), json)
    };
    let admin = Some("an-admin-token-of-at-least-32-characters");
    assert_eq!(
        call("GET", "/api/admin/connections", None, None).0,
        StatusCode::UNAUTHORIZED
    );
    let (status, google) = call(
        "POST",
        "/api/admin/connections",
        Some(
            json!({"id": "google", "kind": "google", "client_id": "g.apps", "secret_variable": "op_secret",
                    "settings": {"mapping": {"name": "name"}}}),
        ),
        admin,
    );
    assert_eq!(status, StatusCode::CREATED, "{google}");
    assert_eq!(
        (
            google["issuer"].clone(),
            google["trusted_email"].clone(),
            google["scopes"].clone(),
            google["name"].clone()
        ),
        (
            json!("https://accounts.google.com"),
            json!(true),
            json!("openid email profile"),
            json!("Google")
        )
    );
    assert_eq!(call("POST", "/api/admin/connections", Some(json!({"id": "google", "kind": "google", "client_id": "g", "secret_variable": "op_secret"})), admin).0, StatusCode::CONFLICT);
    let refused = [
        (
            json!({"id": "X!", "kind": "oidc", "name": "X", "issuer": OP, "client_id": "c", "secret_variable": "op_secret"}),
            "`id`",
        ),
        (
            json!({"id": "saml", "kind": "saml", "client_id": "c", "secret_variable": "op_secret"}),
            "`kind`",
        ),
        (
            json!({"id": "plain", "kind": "oidc", "name": "P", "issuer": "http://op.example", "client_id": "c", "secret_variable": "op_secret"}),
            "https",
        ),
        (
            json!({"id": "nosecret", "kind": "oidc", "name": "P", "issuer": OP, "client_id": "c", "secret_variable": "missing_secret"}),
            "[component.social.variables] (missing_secret",
        ),
        (
            json!({"id": "map", "kind": "oidc", "name": "P", "issuer": OP, "client_id": "c", "secret_variable": "op_secret", "settings": {"mapping": {"company": "org"}}}),
            "neither an attribute",
        ),
        (
            json!({"id": "noopenid", "kind": "oidc", "name": "P", "issuer": OP, "client_id": "c", "secret_variable": "op_secret", "scopes": "email"}),
            "openid",
        ),
        (
            json!({"id": "microsoft", "kind": "microsoft", "client_id": "c", "secret_variable": "op_secret", "trusted_email": true}),
            "never trusted",
        ),
        (
            json!({"id": "apple", "kind": "apple", "client_id": "c", "secret_variable": "op_secret"}),
            "team_id",
        ),
    ];
    for (body, says) in refused {
        let (status, problem) = call("POST", "/api/admin/connections", Some(body.clone()), admin);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{body}: {problem}"
        );
    }
    let (status, _) = call(
        "POST",
        "/api/admin/connections",
        Some(
            json!({"id": "example", "kind": "oidc", "name": "Example", "issuer": OP, "client_id": "c", "secret_variable": "op_secret", "scopes": ["openid", "email"]}),
        ),
        admin,
    );
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = call("GET", "/api/admin/connections", None, admin);
    assert_eq!(list["connections"].as_array().unwrap().len(), 2);
    let (status, changed) = call(
        "PUT",
        "/api/admin/connections/example",
        Some(
            json!({"kind": "oidc", "name": "Renamed", "issuer": OP, "client_id": "c", "secret_variable": "op_secret", "enabled": false}),
        ),
        admin,
    );
    assert_eq!(
        (status, changed["name"].clone(), changed["enabled"].clone()),
        (StatusCode::OK, json!("Renamed"), json!(false))
    );
    assert_eq!(
        call("GET", "/api/admin/connections/example", None, admin).1["name"],
        "Renamed"
    );
    // Disabled: not on the login page, and its start is a dead link.
    assert_eq!(
        crate::social::connections::buttons(&env).unwrap(),
        [("google".to_owned(), "Google".to_owned())]
    );
    assert_eq!(
        crate::routes::social::handle(&env, testkit::get("/social/example/start").build()).status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call("DELETE", "/api/admin/connections/example", None, admin).0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call("GET", "/api/admin/connections/example", None, admin).0,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn cache_lifetimes_follow_max_age_within_bounds() {
    let res = |cc: Option<&str>| Fake::answer(200, json!({}), cc);
    assert_eq!(
        crate::social::oidc::cache_seconds(&res(Some("public, max-age=300"))),
        300
    );
    assert_eq!(
        crate::social::oidc::cache_seconds(&res(Some("max-age=5"))),
        60
    );
    assert_eq!(
        crate::social::oidc::cache_seconds(&res(Some("no-store"))),
        60
    );
    assert_eq!(
        crate::social::oidc::cache_seconds(&res(Some("max-age=9999999"))),
        86_400
    );
    assert_eq!(crate::social::oidc::cache_seconds(&res(None)), 3600);
}

#[test]
fn a_start_sets_the_binding_cookie_beside_the_csrf_cookie() {
    // A browser without a CSRF cookie yet gets both, the binding cookie
    // included.
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    connection(&w, "example", true);
    let res = crate::routes::social::handle(
        &w.env_with_http(NOW, &fake),
        testkit::get("/social/example/start?return_to=%2Fafter").build(),
    );
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
    assert_eq!(set.len(), 2, "{set:?}");
    assert!(
        set.iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-lanyard_csrf=")),
        "{set:?}"
    );
    let cookie = set
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with("__Host-lanyard_social="))
        .unwrap();
    assert!(
        cookie.starts_with("__Host-lanyard_social=")
            && cookie.contains("HttpOnly")
            && cookie.contains("Secure")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Max-Age=600"),
        "{cookie}"
    );
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://op.example/authorize?")
    );
}

#[test]
fn an_upstream_sign_in_still_asks_for_the_second_factor_of_a_person_who_has_one() {
    let w = world();
    let keys = Keys::es("es1");
    let fake = Fake::new(&[&keys]);
    let conn = connection(&w, "example", true);
    let Outcome::SignedIn { cookie, .. } = sign_in(&w, &fake, &keys, &conn, |_| {}).unwrap() else {
        panic!("not signed in")
    };
    let who = identity::by_id(&w.sql, &session_of(&w, &cookie).sub)
        .unwrap()
        .unwrap();
    // Ada sets up an authenticator app.
    let env = w.env(NOW);
    let shown = crate::mfa::totp::start(&env, testkit::ISSUER, &who).unwrap();
    let secret: [u8; 20] = {
        let row = crate::store::totp_secrets::get(&w.sql, &who.id)
            .unwrap()
            .unwrap();
        crate::crypto::b64url_decode(&row.secret)
            .unwrap()
            .try_into()
            .unwrap()
    };
    assert!(!shown.secret.is_empty());
    let code = crate::mfa::totp::code_at(secret, NOW).unwrap();
    crate::mfa::totp::confirm(&env, &who.id, &code).unwrap();

    // Signing in through the provider again gives no session, but a pending
    // sign-in that keeps where she was going and the connection.
    let sessions_before = count(&w, "sessions");
    let Outcome::SecondFactor { cookie } = sign_in(&w, &fake, &keys, &conn, |_| {}).unwrap() else {
        panic!("signed in without the second factor")
    };
    assert_eq!(count(&w, "sessions"), sessions_before);
    let auth = Auth::load(&w.vars).unwrap();
    let h = cookie_headers(&cookie, None);
    let later = w.env(NOW + 40);
    let pending = crate::mfa::pending::current(&later, auth.policy().unwrap(), &h)
        .unwrap()
        .expect("a pending sign-in");
    assert_eq!(
        (
            pending.amr.clone(),
            pending.idp.as_deref(),
            pending.return_to.as_deref()
        ),
        (vec!["fed".to_owned()], Some("example"), Some("/after"))
    );
    // The code finishes it: fed + otp + mfa, through the connection.
    let next = crate::mfa::totp::code_at(secret, NOW + 40).unwrap();
    assert!(crate::mfa::totp::verify(&later, &who.id, &next).unwrap());
    let device = crate::device::Device::addr("192.0.2.9");
    let set =
        crate::mfa::pending::complete(&later, auth.policy().unwrap(), &h, &pending, "otp", &device)
            .unwrap();
    let s = session::current(
        &later,
        auth.policy().unwrap(),
        &cookie_headers(&set[0], None),
    )
    .unwrap()
    .unwrap();
    assert_eq!(s.amr, ["fed", "otp", "mfa"]);
    assert_eq!(s.idp.as_deref(), Some("example"));
}
