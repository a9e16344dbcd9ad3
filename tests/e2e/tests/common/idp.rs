//! Fake upstream providers for the social sign-in tests, each a small HTTP
//! server on a loopback port that the app reaches through the host's
//! `outbound_overrides` under a made-up (or the real provider's) host name:
//!
//! - [`Oidc`]: an OpenID provider with its own keys (RS256 2048-bit and
//!   ES256, chosen per test): discovery, JWKS (`Cache-Control: max-age`), an
//!   authorization page for Chromium, and a token endpoint that checks the
//!   PKCE verifier, the client's authentication and the redirect URI, and
//!   answers an ID token signed as configured, or one of the [`Faults`].
//!   Shaped as Apple (form_post, `client_secret_post` with a JWT secret that
//!   the test inspects), Google or Microsoft by its [`OidcConfig`].
//! - [`GitHub`]: OAuth 2.0 without OpenID (`/login/oauth/authorize`,
//!   `/login/oauth/access_token`, `/user`, `/user/emails`).
//! - [`Doh`]: a DNS-over-HTTPS JSON endpoint serving the TXT records the test
//!   sets.
//!
//! Tests do not visit `/authorize`: they read `state`, `nonce` and
//! `code_challenge` from the app's redirect, have the fake issue a code for
//! a [`Person`] ([`Oidc::code_for`]), and call the callback themselves.
//! Every fake records the requests it receives.
//!
//! This file depends on no other test module, so the benchmark includes it
//! too (`#[path]`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use jwt_simple::prelude::{
    ECDSAP256KeyPairLike, ES256KeyPair, JWTClaims, RS256KeyPair, RSAKeyPairLike,
};
use serde_json::{Map, Value, json};

// ------------------------------------------------------------------ plumbing

/// One request a fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// The body as a form.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// HTTP Basic credentials, each part form-decoded (RFC 6749 §2.3.1).
    pub fn basic(&self) -> Option<(String, String)> {
        let b64 = self.header("authorization").strip_prefix("Basic ")?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (id, secret) = raw.split_once(':')?;
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Some((dec(id), dec(secret)))
    }
}

pub type Answer = Response<Full<Bytes>>;

fn answer(status: u16, content_type: &str, body: impl Into<Bytes>) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap()
}

fn json_answer(status: u16, v: &Value) -> Answer {
    answer(status, "application/json", v.to_string())
}

fn oauth_error(status: u16, error: &str, description: &str) -> Answer {
    json_answer(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// Serves `handler` on a fresh loopback port (from the current runtime).
pub async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Seen) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(listener, handler)
}

/// Serves `handler` on a bound listener (from the current runtime).
pub fn serve_on<F, Fut>(listener: tokio::net::TcpListener, handler: F) -> SocketAddr
where
    F: Fn(Seen) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    use hyper::service::service_fn;
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let query = parts
                            .uri
                            .query()
                            .map(|q| {
                                url::form_urlencoded::parse(q.as_bytes())
                                    .into_owned()
                                    .collect()
                            })
                            .unwrap_or_default();
                        let seen = Seen {
                            method: parts.method,
                            path: parts.uri.path().to_owned(),
                            query,
                            headers: parts.headers,
                            body,
                        };
                        Ok::<_, std::convert::Infallible>(handler(seen).await)
                    }
                });
                let io = wasmtime_wasi_http::io::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    addr
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn random() -> String {
    lanyard::crypto::random_token().unwrap()
}

fn s256(verifier: &str) -> String {
    lanyard::crypto::b64url(&lanyard::crypto::sha256(verifier.as_bytes()))
}

/// The query parameters of a URL (or a Location header).
pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// A JWT's header and payload, unverified.
pub fn jwt_parts(jwt: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap_or_default())
            .unwrap_or_default();
        serde_json::from_slice(&b).unwrap_or(Value::Null)
    };
    (part(0), part(1))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page a browser sees at a fake's authorization endpoint: one button,
/// "Sign in as …", that sends the browser back to `redirect_uri` with a
/// fresh `code` and the `state` (a POST for `response_mode=form_post`).
fn sign_in_page(provider: &str, who: &str, query: &HashMap<String, String>, code: &str) -> Answer {
    let redirect = query.get("redirect_uri").cloned().unwrap_or_default();
    let state = query.get("state").cloned().unwrap_or_default();
    let method = if query.get("response_mode").map(String::as_str) == Some("form_post") {
        "post"
    } else {
        "get"
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{provider}</title></head>\
         <body><h1>{provider}</h1>\
         <form method=\"{method}\" action=\"{}\">\
         <input type=\"hidden\" name=\"code\" value=\"{}\">\
         <input type=\"hidden\" name=\"state\" value=\"{}\">\
         <button id=\"sign-in-as\" type=\"submit\">Sign in as {}</button></form>\
         <form method=\"{method}\" action=\"{}\">\
         <input type=\"hidden\" name=\"error\" value=\"access_denied\">\
         <input type=\"hidden\" name=\"state\" value=\"{}\">\
         <button id=\"cancel\" type=\"submit\">Cancel</button></form></body></html>",
        html_escape(&redirect),
        html_escape(code),
        html_escape(&state),
        html_escape(who),
        html_escape(&redirect),
        html_escape(&state),
    );
    answer(200, "text/html; charset=utf-8", page)
}

// ------------------------------------------------------------------ keys

/// The provider's signing keys: made once per process (RSA generation is slow).
struct Keys {
    rs: RS256KeyPair,
    es: ES256KeyPair,
    jwks: Value,
}

pub const RS_KID: &str = "fake-rs-1";
pub const ES_KID: &str = "fake-es-1";

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rs = RS256KeyPair::generate(2048).unwrap().with_key_id(RS_KID);
        let es = ES256KeyPair::generate().with_key_id(ES_KID);
        let public = |jwk: String, kid: &str, alg: &str| {
            let mut v: Value = serde_json::from_str(&jwk).unwrap();
            v["kid"] = kid.into();
            v["use"] = "sig".into();
            v["alg"] = alg.into();
            v
        };
        let jwks = json!({"keys": [
            public(rs.public_key().to_jwk(), RS_KID, "RS256"),
            public(es.public_key().to_jwk(), ES_KID, "ES256"),
        ]});
        Keys { rs, es, jwks }
    })
}

/// A JWT with exactly these claims (the custom map carries every claim).
fn sign_claims(alg: Alg, claims: &Map<String, Value>, kid: Option<&str>) -> String {
    let k = keys();
    let c = JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: claims.clone(),
    };
    match (alg, kid) {
        (Alg::Rs256, None) => k.rs.sign(c).unwrap(),
        (Alg::Es256, None) => k.es.sign(c).unwrap(),
        (Alg::Rs256, Some(kid)) => k.rs.clone().with_key_id(kid).sign(c).unwrap(),
        (Alg::Es256, Some(kid)) => ES256KeyPair::from_jwk(&k.es.to_jwk())
            .unwrap()
            .with_key_id(kid)
            .sign(c)
            .unwrap(),
    }
}

// ------------------------------------------------------------------ OpenID provider

/// The ID token's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

/// Who signs in at a fake provider.
#[derive(Clone, Debug)]
pub struct Person {
    pub sub: String,
    pub email: Option<String>,
    /// `email_verified` as the provider sends it (Apple: the string "true").
    pub email_verified: Option<Value>,
    /// Further claims (`name`, `given_name`, `tid`, …).
    pub claims: Map<String, Value>,
}

impl Person {
    /// A person with a verified address.
    pub fn new(sub: &str, email: &str) -> Person {
        Person {
            sub: sub.into(),
            email: Some(email.into()),
            email_verified: Some(Value::Bool(true)),
            claims: Map::new(),
        }
    }

    pub fn unverified(mut self) -> Person {
        self.email_verified = Some(Value::Bool(false));
        self
    }

    pub fn without_email(mut self) -> Person {
        self.email = None;
        self.email_verified = None;
        self
    }

    pub fn with(mut self, claim: &str, value: impl Into<Value>) -> Person {
        self.claims.insert(claim.into(), value.into());
        self
    }
}

/// What goes wrong at a fake OpenID provider.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Discovery answers this status.
    pub discovery_status: Option<u16>,
    /// The token endpoint answers this status (an OAuth error body).
    pub token_status: Option<u16>,
    /// The token endpoint answers 200 with a body that is not JSON.
    pub token_garbage: bool,
    /// The token endpoint waits this long before answering.
    pub token_hang: Option<Duration>,
    /// The ID token's `iss`, `aud` or `nonce` instead of the right one.
    pub iss: Option<String>,
    pub aud: Option<Value>,
    pub nonce: Option<String>,
    /// `azp` added to the ID token.
    pub azp: Option<String>,
    /// The ID token expired an hour ago.
    pub expired: bool,
    /// The ID token's `iat` this many seconds from now.
    pub iat_offset: Option<i64>,
    /// The ID token's signature does not verify.
    pub bad_signature: bool,
    /// The ID token names a key the JWKS does not have.
    pub unknown_kid: bool,
    /// The token response has no ID token.
    pub no_id_token: bool,
}

/// The shape of a fake OpenID provider.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// The issuer its discovery states (may hold Microsoft's `{tenantid}`).
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    /// `token_endpoint_auth_methods_supported`; empty: left out.
    pub auth_methods: Vec<String>,
    pub client_id: String,
    /// The expected client secret; `None`: any (recorded), as for Apple's JWT.
    pub client_secret: Option<String>,
    /// `Cache-Control: max-age` of discovery and the JWKS.
    pub max_age: u64,
    /// The name on the Chromium page.
    pub display_name: String,
}

impl OidcConfig {
    /// A generic provider at `issuer` (`https://idp.example`).
    pub fn generic(issuer: &str, client_id: &str, client_secret: &str) -> OidcConfig {
        let issuer = issuer.trim_end_matches('/');
        OidcConfig {
            issuer: issuer.into(),
            authorization_endpoint: format!("{issuer}/authorize"),
            token_endpoint: format!("{issuer}/token"),
            jwks_uri: format!("{issuer}/jwks"),
            auth_methods: vec![],
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            max_age: 300,
            display_name: "Fake IdP".into(),
        }
    }

    /// Google's layout (accounts.google.com, oauth2.googleapis.com, www.googleapis.com).
    pub fn google(client_id: &str, client_secret: &str) -> OidcConfig {
        OidcConfig {
            issuer: "https://accounts.google.com".into(),
            authorization_endpoint: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_endpoint: "https://oauth2.googleapis.com/token".into(),
            jwks_uri: "https://www.googleapis.com/oauth2/v3/certs".into(),
            auth_methods: vec!["client_secret_post".into(), "client_secret_basic".into()],
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            max_age: 300,
            display_name: "Google".into(),
        }
    }

    /// Apple's layout: `client_secret_post` with a JWT secret (checked by the test).
    pub fn apple(client_id: &str) -> OidcConfig {
        OidcConfig {
            issuer: "https://appleid.apple.com".into(),
            authorization_endpoint: "https://appleid.apple.com/auth/authorize".into(),
            token_endpoint: "https://appleid.apple.com/auth/token".into(),
            jwks_uri: "https://appleid.apple.com/auth/keys".into(),
            auth_methods: vec!["client_secret_post".into()],
            client_id: client_id.into(),
            client_secret: None,
            max_age: 300,
            display_name: "Apple".into(),
        }
    }

    /// Microsoft's multi-tenant layout, discovered at `segment` (`common`).
    pub fn microsoft(segment: &str, client_id: &str, client_secret: &str) -> OidcConfig {
        let base = format!("https://login.microsoftonline.com/{segment}");
        OidcConfig {
            issuer: "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
            authorization_endpoint: format!("{base}/oauth2/v2.0/authorize"),
            token_endpoint: format!("{base}/oauth2/v2.0/token"),
            jwks_uri: format!("{base}/discovery/v2.0/keys"),
            auth_methods: vec!["client_secret_post".into(), "client_secret_basic".into()],
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            max_age: 300,
            display_name: "Microsoft".into(),
        }
    }
}

/// A code the provider issued, waiting for the token request.
#[derive(Clone, Debug)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    person: Person,
    /// The ID token, when signed at issue time.
    id_token: Option<String>,
}

struct OidcState {
    alg: Alg,
    faults: Faults,
    codes: HashMap<String, Grant>,
    seen: Vec<Seen>,
    /// Who the Chromium page signs in.
    browser_person: Option<Person>,
    /// Sign the ID token when the code is issued, not at the token request
    /// (the benchmark: the upstream's own signing is not the app's time).
    presign: bool,
}

/// A fake OpenID provider.
#[derive(Clone)]
pub struct Oidc {
    pub addr: SocketAddr,
    pub config: Arc<OidcConfig>,
    state: Arc<Mutex<OidcState>>,
}

/// What the app's redirect to a provider asked for, and the code issued.
#[derive(Clone, Debug)]
pub struct Authz {
    pub code: String,
    pub state: String,
    pub query: HashMap<String, String>,
}

fn path_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default()
}

impl Oidc {
    pub async fn start(config: OidcConfig, alg: Alg) -> Oidc {
        Oidc::start_with(|_| config, alg).await
    }

    /// A provider whose shape depends on its own address (an issuer
    /// `http://127.0.0.1:<port>` that Chromium reaches directly).
    pub async fn start_with(config: impl FnOnce(SocketAddr) -> OidcConfig, alg: Alg) -> Oidc {
        let _ = keys();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = config(listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(OidcState {
            alg,
            faults: Faults::default(),
            codes: HashMap::new(),
            seen: Vec::new(),
            browser_person: None,
            presign: false,
        }));
        let config = Arc::new(config);
        let (c, s) = (config.clone(), state.clone());
        let addr = serve_on(listener, move |req| {
            let (c, s) = (c.clone(), s.clone());
            async move { Oidc::handle(&c, &s, req).await }
        });
        Oidc {
            addr,
            config,
            state,
        }
    }

    pub fn set_alg(&self, alg: Alg) {
        self.state.lock().unwrap().alg = alg;
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().unwrap().faults = faults;
    }

    /// Signs ID tokens when codes are issued (see `presign`).
    pub fn set_presign(&self, on: bool) {
        self.state.lock().unwrap().presign = on;
    }

    /// Who the Chromium page's button signs in.
    pub fn set_browser_person(&self, person: Person) {
        self.state.lock().unwrap().browser_person = Some(person);
    }

    /// Every request received, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests to one endpoint (a path).
    pub fn seen_at(&self, url_or_path: &str) -> Vec<Seen> {
        let path = if url_or_path.starts_with('/') {
            url_or_path.to_owned()
        } else {
            path_of(url_or_path)
        };
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    pub fn token_requests(&self) -> Vec<Seen> {
        self.seen_at(&self.config.token_endpoint.clone())
    }

    pub fn jwks_requests(&self) -> usize {
        self.seen_at(&self.config.jwks_uri.clone()).len()
    }

    pub fn discovery_requests(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.ends_with("/.well-known/openid-configuration"))
            .count()
    }

    /// Reads the app's redirect to the authorization endpoint, checks what
    /// every OpenID request must carry, and issues a code for `person`.
    #[track_caller]
    pub fn code_for(&self, location: &str, person: &Person) -> Authz {
        assert!(
            location.starts_with(&self.config.authorization_endpoint),
            "not a redirect to {}: {location}",
            self.config.authorization_endpoint
        );
        let q = query_of(location);
        assert_eq!(
            q.get("response_type").map(String::as_str),
            Some("code"),
            "{location}"
        );
        assert_eq!(
            q.get("code_challenge_method").map(String::as_str),
            Some("S256"),
            "{location}"
        );
        assert_eq!(
            q.get("client_id"),
            Some(&self.config.client_id),
            "{location}"
        );
        for p in ["state", "nonce", "code_challenge", "redirect_uri", "scope"] {
            assert!(
                q.get(p).is_some_and(|v| !v.is_empty()),
                "no {p}: {location}"
            );
        }
        let code = self.issue(&q, person.clone());
        Authz {
            code,
            state: q["state"].clone(),
            query: q,
        }
    }

    fn issue(&self, q: &HashMap<String, String>, person: Person) -> String {
        Oidc::issue_in(&self.config, &self.state, q, person)
    }

    fn issue_in(
        config: &OidcConfig,
        state: &Mutex<OidcState>,
        q: &HashMap<String, String>,
        person: Person,
    ) -> String {
        let code = format!("code-{}", random());
        let mut grant = Grant {
            client_id: q.get("client_id").cloned().unwrap_or_default(),
            redirect_uri: q.get("redirect_uri").cloned().unwrap_or_default(),
            challenge: q.get("code_challenge").cloned().unwrap_or_default(),
            nonce: q.get("nonce").cloned(),
            person,
            id_token: None,
        };
        let mut s = state.lock().unwrap();
        if s.presign {
            grant.id_token = Some(Oidc::id_token(config, s.alg, &s.faults, &grant));
        }
        s.codes.insert(code.clone(), grant);
        code
    }

    /// The ID token's claims for a grant, faults applied.
    fn id_token(config: &OidcConfig, alg: Alg, f: &Faults, g: &Grant) -> String {
        let now = now();
        let mut c = Map::new();
        let tid = g.person.claims.get("tid").and_then(Value::as_str);
        let iss = f.iss.clone().unwrap_or_else(|| match tid {
            Some(tid) => config.issuer.replace("{tenantid}", tid),
            None => config.issuer.clone(),
        });
        c.insert("iss".into(), iss.into());
        c.insert("sub".into(), g.person.sub.clone().into());
        c.insert(
            "aud".into(),
            f.aud.clone().unwrap_or_else(|| g.client_id.clone().into()),
        );
        if let Some(azp) = &f.azp {
            c.insert("azp".into(), azp.clone().into());
        }
        let iat = now + f.iat_offset.unwrap_or(0);
        let (iat, exp) = if f.expired {
            (now - 3 * 60, now - 2 * 60)
        } else {
            (iat, now + 600)
        };
        c.insert("iat".into(), iat.into());
        c.insert("exp".into(), exp.into());
        if let Some(nonce) = f.nonce.clone().or_else(|| g.nonce.clone()) {
            c.insert("nonce".into(), nonce.into());
        }
        if let Some(email) = &g.person.email {
            c.insert("email".into(), email.clone().into());
        }
        if let Some(v) = &g.person.email_verified {
            c.insert("email_verified".into(), v.clone());
        }
        for (k, v) in &g.person.claims {
            c.insert(k.clone(), v.clone());
        }
        let kid = f.unknown_kid.then_some("rotated-away");
        let token = sign_claims(alg, &c, kid);
        if !f.bad_signature {
            return token;
        }
        // The signature of other claims on these ones.
        let mut other = c.clone();
        other.insert("sub".into(), "someone-else".into());
        let forged = sign_claims(alg, &other, kid);
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[2] = forged.split('.').nth(2).unwrap();
        parts.join(".")
    }

    async fn handle(config: &OidcConfig, state: &Mutex<OidcState>, req: Seen) -> Answer {
        state.lock().unwrap().seen.push(req.clone());
        let path = req.path.as_str();
        if path.ends_with("/.well-known/openid-configuration") {
            if let Some(status) = state.lock().unwrap().faults.discovery_status {
                return answer(status, "text/plain", "discovery is down");
            }
            let mut doc = json!({
                "issuer": config.issuer,
                "authorization_endpoint": config.authorization_endpoint,
                "token_endpoint": config.token_endpoint,
                "jwks_uri": config.jwks_uri,
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "code_challenge_methods_supported": ["S256"],
            });
            if !config.auth_methods.is_empty() {
                doc["token_endpoint_auth_methods_supported"] = json!(config.auth_methods);
            }
            let mut res = json_answer(200, &doc);
            res.headers_mut().insert(
                "cache-control",
                format!("public, max-age={}", config.max_age)
                    .parse()
                    .unwrap(),
            );
            return res;
        }
        if path == path_of(&config.jwks_uri) {
            let mut res = json_answer(200, &keys().jwks);
            res.headers_mut().insert(
                "cache-control",
                format!("public, max-age={}", config.max_age)
                    .parse()
                    .unwrap(),
            );
            return res;
        }
        if path == path_of(&config.authorization_endpoint) && req.method == Method::GET {
            let person = state
                .lock()
                .unwrap()
                .browser_person
                .clone()
                .unwrap_or_else(|| Person::new("browser-person", "ada@example.com"));
            let who = person
                .claims
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| person.email.clone())
                .unwrap_or_else(|| person.sub.clone());
            let code = Oidc::issue_in(config, state, &req.query, person);
            return sign_in_page(&config.display_name, &who, &req.query, &code);
        }
        if path == path_of(&config.token_endpoint) && req.method == Method::POST {
            return Oidc::token(config, state, &req).await;
        }
        answer(404, "text/plain", "not here")
    }

    async fn token(config: &OidcConfig, state: &Mutex<OidcState>, req: &Seen) -> Answer {
        let (faults, alg) = {
            let s = state.lock().unwrap();
            (s.faults.clone(), s.alg)
        };
        if let Some(wait) = faults.token_hang {
            tokio::time::sleep(wait).await;
        }
        if let Some(status) = faults.token_status {
            return oauth_error(status, "server_error", "the fake is told to fail");
        }
        if faults.token_garbage {
            return answer(
                200,
                "text/html",
                "<html>Service temporarily unavailable</html>",
            );
        }
        let form = req.form();
        if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
            return oauth_error(400, "unsupported_grant_type", "authorization_code only");
        }
        // Client authentication: Basic, or the form when the provider says so.
        let post_only = config.auth_methods == ["client_secret_post"];
        let (id, secret) = match (
            req.basic(),
            form.get("client_id"),
            form.get("client_secret"),
        ) {
            (Some(_), _, _) if post_only => {
                return oauth_error(401, "invalid_client", "use client_secret_post");
            }
            (Some(pair), None, None) => pair,
            (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => return oauth_error(401, "invalid_client", "no client authentication"),
        };
        if id != config.client_id
            || config
                .client_secret
                .as_ref()
                .is_some_and(|expected| *expected != secret)
        {
            return oauth_error(401, "invalid_client", "wrong client id or secret");
        }
        let Some(code) = form.get("code") else {
            return oauth_error(400, "invalid_request", "no code");
        };
        // A code is used once.
        let Some(grant) = state.lock().unwrap().codes.remove(code) else {
            return oauth_error(400, "invalid_grant", "unknown or used code");
        };
        if grant.client_id != id {
            return oauth_error(400, "invalid_grant", "code of another client");
        }
        if form.get("redirect_uri") != Some(&grant.redirect_uri) {
            return oauth_error(400, "invalid_grant", "redirect_uri differs");
        }
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        if s256(&verifier) != grant.challenge {
            return oauth_error(400, "invalid_grant", "PKCE verifier does not match");
        }
        let mut body = json!({
            "access_token": format!("at-{}", random()),
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid email profile",
        });
        if !faults.no_id_token {
            body["id_token"] = match &grant.id_token {
                Some(t) => t.clone().into(),
                None => Oidc::id_token(config, alg, &faults, &grant).into(),
            };
        }
        json_answer(200, &body)
    }
}

// ------------------------------------------------------------------ GitHub

/// A GitHub user as the fake's API shows them.
#[derive(Clone, Debug)]
pub struct GhUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    /// `/user/emails`: `{email, primary, verified, visibility}`.
    pub emails: Vec<Value>,
}

impl GhUser {
    /// A user with one verified primary address.
    pub fn new(id: u64, login: &str, email: &str) -> GhUser {
        GhUser {
            id,
            login: login.into(),
            name: Some(format!("{login} (GitHub)")),
            emails: vec![
                json!({"email": email, "primary": true, "verified": true, "visibility": "private"}),
            ],
        }
    }
}

struct GhState {
    client_id: String,
    client_secret: String,
    codes: HashMap<String, (String, String, GhUser)>,
    tokens: HashMap<String, GhUser>,
    seen: Vec<Seen>,
    /// `/user/emails` answers this status instead.
    emails_status: Option<u16>,
    browser_user: Option<GhUser>,
}

/// A fake GitHub (the web part and the REST API on one server: override
/// both `github.com` and `api.github.com` to it).
#[derive(Clone)]
pub struct GitHub {
    pub addr: SocketAddr,
    state: Arc<Mutex<GhState>>,
}

impl GitHub {
    pub async fn start(client_id: &str, client_secret: &str) -> GitHub {
        let state = Arc::new(Mutex::new(GhState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            seen: Vec::new(),
            emails_status: None,
            browser_user: None,
        }));
        let s = state.clone();
        let addr = serve(move |req| {
            let s = s.clone();
            async move { GitHub::handle(&s, req) }
        })
        .await;
        GitHub { addr, state }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn set_emails_status(&self, status: Option<u16>) {
        self.state.lock().unwrap().emails_status = status;
    }

    pub fn set_browser_user(&self, user: GhUser) {
        self.state.lock().unwrap().browser_user = Some(user);
    }

    /// Reads the app's redirect to `/login/oauth/authorize` and issues a code for `user`.
    #[track_caller]
    pub fn code_for(&self, location: &str, user: &GhUser) -> Authz {
        assert!(
            location.contains("/login/oauth/authorize?"),
            "not GitHub's authorize: {location}"
        );
        let q = query_of(location);
        assert_eq!(
            q.get("client_id"),
            Some(&self.state.lock().unwrap().client_id),
            "{location}"
        );
        assert_eq!(
            q.get("code_challenge_method").map(String::as_str),
            Some("S256")
        );
        for p in ["state", "code_challenge", "redirect_uri", "scope"] {
            assert!(
                q.get(p).is_some_and(|v| !v.is_empty()),
                "no {p}: {location}"
            );
        }
        let code = format!("gh-code-{}", random());
        self.state.lock().unwrap().codes.insert(
            code.clone(),
            (
                q["redirect_uri"].clone(),
                q["code_challenge"].clone(),
                user.clone(),
            ),
        );
        Authz {
            code,
            state: q["state"].clone(),
            query: q,
        }
    }

    fn handle(state: &Mutex<GhState>, req: Seen) -> Answer {
        let mut s = state.lock().unwrap();
        s.seen.push(req.clone());
        // GitHub Enterprise Server's API layout as well as api.github.com's.
        let path = req.path.strip_prefix("/api/v3").unwrap_or(&req.path);
        match (req.method.clone(), path) {
            (Method::GET, "/login/oauth/authorize") => {
                let user = s
                    .browser_user
                    .clone()
                    .unwrap_or_else(|| GhUser::new(4242, "octo", "octo@example.com"));
                let code = format!("gh-code-{}", random());
                let q = &req.query;
                s.codes.insert(
                    code.clone(),
                    (
                        q.get("redirect_uri").cloned().unwrap_or_default(),
                        q.get("code_challenge").cloned().unwrap_or_default(),
                        user.clone(),
                    ),
                );
                sign_in_page("GitHub", &user.login, q, &code)
            }
            (Method::POST, "/login/oauth/access_token") => {
                let form = req.form();
                let refuse = |e: &str, d: &str| {
                    json_answer(200, &json!({"error": e, "error_description": d}))
                };
                if form.get("client_id") != Some(&s.client_id)
                    || form.get("client_secret") != Some(&s.client_secret)
                {
                    return refuse("incorrect_client_credentials", "wrong client");
                }
                let Some((redirect, challenge, user)) =
                    form.get("code").and_then(|c| s.codes.remove(c))
                else {
                    return refuse("bad_verification_code", "unknown or used code");
                };
                if form.get("redirect_uri") != Some(&redirect) {
                    return refuse("redirect_uri_mismatch", "redirect_uri differs");
                }
                if s256(form.get("code_verifier").map(String::as_str).unwrap_or("")) != challenge {
                    return refuse("bad_verification_code", "PKCE verifier does not match");
                }
                let token = format!("gho_{}", random());
                s.tokens.insert(token.clone(), user);
                json_answer(
                    200,
                    &json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}),
                )
            }
            (Method::GET, "/user" | "/user/emails") => {
                let user = req
                    .header("authorization")
                    .strip_prefix("Bearer ")
                    .and_then(|t| s.tokens.get(t))
                    .cloned();
                let Some(user) = user else {
                    return json_answer(401, &json!({"message": "Bad credentials"}));
                };
                if path == "/user" {
                    json_answer(
                        200,
                        &json!({
                            "id": user.id, "login": user.login, "name": user.name,
                            // The public email is never used.
                            "email": "public-profile@example.com",
                            "avatar_url": format!("https://avatars.example/{}", user.id),
                            "html_url": format!("https://github.com/{}", user.login),
                        }),
                    )
                } else if let Some(status) = s.emails_status {
                    json_answer(status, &json!({"message": "Not Found"}))
                } else {
                    json_answer(200, &Value::Array(user.emails))
                }
            }
            _ => json_answer(404, &json!({"message": "Not Found"})),
        }
    }
}

// ------------------------------------------------------------------ DNS over HTTPS

/// A DNS-over-HTTPS JSON endpoint (`GET /dns-query?name=…&type=TXT`).
#[derive(Clone)]
pub struct Doh {
    pub addr: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<String>>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Doh {
    pub async fn start() -> Doh {
        let records: Arc<Mutex<HashMap<String, Vec<String>>>> = Default::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
        let (r, s) = (records.clone(), seen.clone());
        let addr = serve(move |req| {
            let (r, s) = (r.clone(), s.clone());
            async move {
                s.lock().unwrap().push(req.clone());
                let name = req
                    .query
                    .get("name")
                    .cloned()
                    .unwrap_or_default()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                let ty = req.query.get("type").cloned().unwrap_or_default();
                let records = r.lock().unwrap().get(&name).cloned();
                let body = match records {
                    None => json!({"Status": 3, "Question": [{"name": name, "type": 16}]}),
                    Some(list) => json!({
                        "Status": 0,
                        "Question": [{"name": name, "type": 16}],
                        "Answer": list.iter().map(|data| json!({
                            "name": format!("{name}."), "type": 16, "TTL": 300, "data": data,
                        })).collect::<Vec<_>>(),
                    }),
                };
                if !ty.eq_ignore_ascii_case("TXT") && ty != "16" {
                    return json_answer(400, &json!({"error": "TXT only"}));
                }
                let mut res = json_answer(200, &body);
                res.headers_mut()
                    .insert("content-type", "application/dns-json".parse().unwrap());
                res
            }
        })
        .await;
        Doh {
            addr,
            records,
            seen,
        }
    }

    /// Publishes TXT records at `name`, each given as DNS JSON `data` (its
    /// quoted strings, such as `"\"lanyard-verification=…\""`).
    pub fn set_txt(&self, name: &str, data: &[&str]) {
        self.records.lock().unwrap().insert(
            name.to_ascii_lowercase(),
            data.iter().map(|d| (*d).to_owned()).collect(),
        );
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
