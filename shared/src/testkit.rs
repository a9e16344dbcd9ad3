//! A native test kit: an [`Env`] over real SQLite (in memory, schema
//! applied) and an in-memory key-value store, variables in a map, and a
//! request builder. Domain tests run against it, with no mocks of behaviour.

// Test support (compiled only for tests or the `testkit` feature): a world
// that cannot be set up is a failed test.
#![allow(clippy::expect_used)]

use std::collections::HashMap;

use crate::Env;
use crate::config::Config;
use crate::identity::{self, Identity};
use crate::mail::{HttpClient, NoHttp};
use crate::oidc::clients::{self, Client, ClientSpec};
use crate::store::native::{MemoryKv, SqliteSql};
use crate::store::{SqlStore, schema};
use crate::web::{Params, Request};

/// The JWKS the app publishes now (`keys::published`), as the body an app
/// fetches from `/jwks.json`.
pub fn jwks(env: &Env, config: &Config) -> Vec<u8> {
    let keys: Vec<serde_json::Value> = crate::oidc::keys::published(env, config)
        .expect("the keys publish")
        .into_iter()
        .map(|k| k.jwk)
        .collect();
    serde_json::json!({ "keys": keys }).to_string().into_bytes()
}

/// The issuer of the test world.
pub const ISSUER: &str = "https://id.example.test";

/// A PKCE `code_verifier` and its S256 `code_challenge`, from RFC 7636
/// Appendix B.
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The S256 challenge of [`PKCE_VERIFIER`].
pub const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Stores and variables for one test.
pub struct World {
    /// Key-value: sessions, CSRF tokens.
    pub kv: MemoryKv,
    /// SQLite, in memory, with the schema applied.
    pub sql: SqliteSql,
    /// Spin variables.
    pub vars: HashMap<String, String>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// `dev_mode` on (generated keys, mail to the outbox), cheap argon2.
    pub fn new() -> Self {
        Self::with(&[])
    }

    /// The defaults of [`World::new`], then these variables.
    pub fn with(vars: &[(&str, &str)]) -> Self {
        let mut all: HashMap<String, String> = [
            ("issuer", ISSUER),
            ("dev_mode", "true"),
            ("argon2_memory_kib", "8192"),
            ("argon2_iterations", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in vars {
            all.insert(k.to_string(), v.to_string());
        }
        let sql = SqliteSql::in_memory().expect("an in-memory database");
        schema::ensure(&sql).expect("the schema applies");
        Self {
            kv: MemoryKv::default(),
            sql,
            vars: all,
        }
    }

    /// Sets a variable (`None` removes it).
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(v) => self.vars.insert(name.to_owned(), v.to_owned()),
            None => self.vars.remove(name),
        };
    }

    /// The environment of a request at `now`.
    pub fn env(&self, now: i64) -> Env<'_> {
        self.env_with_http(now, &NoHttp)
    }

    /// The environment of a request at `now` whose outbound HTTP goes to
    /// `http` (a fake provider).
    pub fn env_with_http<'a>(&'a self, now: i64, http: &'a dyn HttpClient) -> Env<'a> {
        Env {
            kv: &self.kv,
            sql: &self.sql,
            vars: &self.vars,
            http,
            now,
            logout: &crate::oidc::signout::Direct,
        }
    }

    /// Like [`World::env_with_http`], in a component without the signing
    /// keys (login, profile): logout tokens go through the token component.
    pub fn env_without_keys<'a>(&'a self, now: i64, http: &'a dyn HttpClient) -> Env<'a> {
        Env {
            logout: &crate::oidc::signout::HandOver,
            ..self.env_with_http(now, http)
        }
    }
}

/// A request to build: `get("/x")`, `post("/token").form(&[...])`.
pub struct Req(http::request::Builder, Vec<u8>);

/// A `GET` request.
pub fn get(path: &str) -> Req {
    Req(http::Request::get(path), Vec::new())
}

/// A `POST` request.
pub fn post(path: &str) -> Req {
    Req(http::Request::post(path), Vec::new())
}

impl Req {
    /// Adds a header.
    pub fn header(self, name: &str, value: &str) -> Req {
        Req(self.0.header(name, value), self.1)
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(self, fields: &[(&str, &str)]) -> Req {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", crate::web::pct(k), crate::web::pct(v)))
            .collect::<Vec<_>>()
            .join("&");
        Req(
            self.0
                .header("content-type", "application/x-www-form-urlencoded"),
            body.into_bytes(),
        )
    }

    /// A JSON body.
    pub fn json(self, value: &serde_json::Value) -> Req {
        Req(
            self.0.header("content-type", "application/json"),
            value.to_string().into_bytes(),
        )
    }

    /// The request.
    pub fn build(self) -> Request {
        self.0.body(self.1).expect("a valid test request")
    }
}

/// Decoded parameters, as a query string or form body would give them.
pub fn params(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Registers a client from RFC 7591 metadata; returns it and its secret.
pub fn client(
    sql: &dyn SqlStore,
    metadata: serde_json::Value,
    now: i64,
) -> (Client, Option<String>) {
    let spec: ClientSpec = serde_json::from_value(metadata).expect("valid client metadata");
    clients::create(sql, &spec, now).expect("the client registers")
}

/// Creates an identity with this email and no password.
pub fn person(sql: &dyn SqlStore, email: &str, now: i64) -> Identity {
    identity::create(sql, email, None, &Default::default(), now)
        .expect("the identity is stored")
        .expect("the email is free")
}

/// Starts a password session for an identity, as a login would, and returns
/// its `Set-Cookie` value.
pub fn signed_in(
    w: &World,
    policy: &crate::session::Policy,
    sub: &str,
    generation: i64,
    now: i64,
) -> http::HeaderValue {
    let device = crate::device::Device::addr("192.0.2.1");
    crate::session::start(
        &w.env(now),
        policy,
        &crate::session::New {
            sub,
            generation,
            amr: &["pwd"],
            idp: None,
            device: &device,
        },
    )
    .expect("a session starts")
}

/// The `name=value` of a `Set-Cookie` header, as a browser sends it back.
pub fn cookie_pair(set_cookie: &http::HeaderValue) -> String {
    let text = set_cookie.to_str().expect("a text header");
    text.split(';').next().unwrap_or(text).to_owned()
}

/// Outbound HTTP to hosts that answer as told (`200` unless set) and keep
/// every POST: the applications' back-channel logout endpoints.
#[derive(Default)]
pub struct Posts {
    answers: std::cell::RefCell<HashMap<String, Result<u16, crate::Error>>>,
    posts: std::cell::RefCell<Vec<(String, String)>>,
}

impl Posts {
    /// How `host` answers from now on: a status, or a failure to reach it.
    pub fn answer(&self, host: &str, answer: Result<u16, crate::Error>) {
        self.answers.borrow_mut().insert(host.into(), answer);
    }

    /// The requests so far (URI and body), sorted, and forgets them.
    pub fn take(&self) -> Vec<(String, String)> {
        let mut posts = std::mem::take(&mut *self.posts.borrow_mut());
        posts.sort();
        posts
    }
}

impl HttpClient for Posts {
    fn send(&self, req: http::Request<Vec<u8>>) -> crate::Result<http::Response<Vec<u8>>> {
        assert_eq!(req.method(), http::Method::POST);
        let host = req.uri().host().unwrap_or_default().to_owned();
        let body = String::from_utf8(req.body().clone()).expect("a form");
        self.posts.borrow_mut().push((req.uri().to_string(), body));
        let status = self
            .answers
            .borrow()
            .get(&host)
            .cloned()
            .unwrap_or(Ok(200))?;
        let mut res = http::Response::new(Vec::new());
        *res.status_mut() = http::StatusCode::from_u16(status).expect("a status");
        Ok(res)
    }
}
