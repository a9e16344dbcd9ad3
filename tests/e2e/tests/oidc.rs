//! End-to-end tests of the OpenID Connect provider (issue 4): the code flow
//! with PKCE, tokens, refresh rotation, client credentials, userinfo,
//! introspection, revocation, logout and the client admin API, through the
//! test host and the real token component.

mod common;

// Single sign-out (issue 15).
#[path = "oidc/logout.rs"]
mod logout;

use bytes::Bytes;
use common::{App, Browser, ISSUER, form_body, header, json, text};
use http::{Request, StatusCode};
use jwt_simple::prelude::*;
use serde_json::{Value, json as j};

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";
const EMAIL: &str = "oidc@example.com";
const PASSWORD: &str = "correct horse battery staple";
const REDIRECT: &str = "https://app.example.com/callback";

async fn app() -> App {
    App::dev(&[("admin_token", ADMIN)]).await
}

async fn admin(app: &App, method: &str, path: &str, body: Option<Value>) -> http::Response<Bytes> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(body.map(|b| Bytes::from(b.to_string())).unwrap_or_default())
        .unwrap();
    app.send(req).await
}

/// Registers a client and returns (client_id, secret).
async fn register(app: &App, spec: Value) -> (String, Option<String>) {
    let res = admin(app, "POST", "/api/admin/clients", Some(spec)).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", text(&res));
    let body = json(&res);
    (
        body["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().map(str::to_owned),
    )
}

async fn confidential(app: &App) -> (String, String) {
    let (id, secret) = register(
        app,
        j!({"client_name": "Shop", "redirect_uris": [REDIRECT],
            "post_logout_redirect_uris": ["https://app.example.com/bye"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "scope": "openid profile email offline_access orders:read"}),
    )
    .await;
    (id, secret.unwrap())
}

async fn signed_in(app: &App) -> Browser<'_> {
    let mut b = Browser::new(app);
    b.get("/signup").await;
    b.post(
        "/signup",
        &[
            ("email", EMAIL),
            ("password", PASSWORD),
            ("name", "Olive Dell"),
        ],
    )
    .await;
    let link = app.mailed_link(EMAIL).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    b.post("/verify", &[("token", &token)]).await;
    let res = b
        .post("/login", &[("email", EMAIL), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    b
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = lanyard::crypto::random_token().unwrap();
    let challenge = lanyard::crypto::b64url(&lanyard::crypto::sha256(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

fn authorize_url(client: &str, p: &Pkce, extra: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20profile%20email%20offline_access&state=st-123&nonce=n-456&code_challenge={}&code_challenge_method=S256{extra}",
        common::urlencode(REDIRECT),
        p.challenge
    )
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Runs the browser part of the code flow (consenting if asked) and returns the code.
async fn code_for(b: &mut Browser<'_>, client: &str, p: &Pkce) -> String {
    let mut res = b.get(&authorize_url(client, p, "")).await;
    if res.status() == StatusCode::OK {
        assert!(
            text(&res).contains("Allow Shop to use your account?"),
            "{}",
            text(&res)
        );
        let page = text(&res);
        let mut fields: Vec<(String, String)> = Vec::new();
        for chunk in page.split("<input type=\"hidden\" name=\"").skip(1) {
            let name = chunk.split('"').next().unwrap().to_owned();
            let value = chunk
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .replace("&#38;", "&")
                .replace("&amp;", "&");
            if name != "csrf" {
                fields.push((name, value));
            }
        }
        fields.push(("decision".into(), "allow".into()));
        let refs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        res = b.post("/authorize", &refs).await;
    }
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    let location = header(&res, "location").to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let q = query_of(&location);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], b.app.issuer);
    q["code"].clone()
}

async fn token_request(
    app: &App,
    basic: Option<(&str, &str)>,
    fields: &[(&str, &str)],
) -> http::Response<Bytes> {
    let mut r = Request::post("/token").header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        r = r.header("authorization", basic_auth(id, secret));
    }
    app.send(r.body(form_body(fields)).unwrap()).await
}

/// `client_secret_basic` credentials.
fn basic_auth(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

async fn exchange(
    app: &App,
    client: &(String, String),
    code: &str,
    verifier: &str,
) -> http::Response<Bytes> {
    token_request(
        app,
        Some((&client.0, &client.1)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn jwks_key(app: &App, kid: &str) -> ES256PublicKey {
    ES256PublicKey::from_jwk(&published_jwk(app, kid).await.to_string()).unwrap()
}

/// What an app checks in an ID token issued to it.
fn for_client(client_id: &str) -> VerificationOptions {
    VerificationOptions {
        allowed_issuers: Some(HashSet::from([ISSUER.to_string()])),
        allowed_audiences: Some(HashSet::from([client_id.to_owned()])),
        ..Default::default()
    }
}

/// The key with this `kid` in the JWKS the app publishes.
async fn published_jwk(app: &App, kid: &str) -> Value {
    let jwks = json(&app.get("/jwks.json").await);
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("kid in JWKS")
        .clone()
}

async fn userinfo(app: &App, token: &str) -> http::Response<Bytes> {
    app.send(
        Request::get("/userinfo")
            .header("authorization", format!("Bearer {token}"))
            .body(Bytes::new())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn code_flow_with_pkce_issues_valid_tokens() {
    let app = app().await;
    let client = confidential(&app).await;
    let mut b = signed_in(&app).await;
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let res = exchange(&app, &client, &code, &p.verifier).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    assert_eq!(header(&res, "cache-control"), "no-store");
    let t = json(&res);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "openid profile email offline_access");
    assert!(t["refresh_token"].as_str().is_some());

    // The ID token verifies against the published JWKS.
    let id_token = t["id_token"].as_str().unwrap();
    let meta = Token::decode_metadata(id_token).unwrap();
    assert_eq!(meta.algorithm(), "ES256");
    let key = jwks_key(&app, meta.key_id().unwrap()).await;
    let claims = key
        .verify_token::<serde_json::Map<String, Value>>(id_token, Some(for_client(&client.0)))
        .unwrap();
    assert_eq!(claims.nonce.as_deref(), Some("n-456"));
    let sub = claims.subject.clone().unwrap();
    assert_eq!(sub.len(), 22, "a random subject, not the email");
    let c = &claims.custom;
    assert_eq!(c["email"], EMAIL);
    assert_eq!(c["email_verified"], true);
    assert_eq!(c["name"], "Olive Dell");
    assert_eq!(c["amr"], j!(["pwd"]));
    assert!(
        c["auth_time"].as_i64().is_some()
            && c["sid"].as_str().is_some()
            && c["acr"].as_str().is_some()
    );
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        c["at_hash"],
        lanyard::oidc::tokens::at_hash(lanyard::oidc::keys::Alg::Es256, access)
    );

    // The access token is an RFC 9068 JWT.
    let meta = Token::decode_metadata(access).unwrap();
    assert_eq!(meta.signature_type(), Some("at+jwt"));
    let at = key
        .verify_token::<Value>(
            access,
            Some(VerificationOptions {
                required_signature_type: Some("at+jwt".into()),
                ..Default::default()
            }),
        )
        .expect("the access token verifies against the JWKS");
    assert_eq!(at.custom["client_id"], client.0.as_str());
    assert!(at.jwt_id.is_some());

    let info = userinfo(&app, access).await;
    assert_eq!(info.status(), StatusCode::OK);
    let info = json(&info);
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["email"], EMAIL);
    // POST works too.
    let post = app
        .send(
            Request::post("/userinfo")
                .header("authorization", format!("Bearer {access}"))
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(post.status(), StatusCode::OK);
}

#[tokio::test]
async fn codes_are_single_use_bound_and_short_lived() {
    let app = app().await;
    let client = confidential(&app).await;
    let other = confidential(&app).await;
    let mut b = signed_in(&app).await;

    // Replay: the second use fails and what the first issued is revoked.
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let first = json(&exchange(&app, &client, &code, &p.verifier).await);
    let replay = exchange(&app, &client, &code, &p.verifier).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(&replay)["error"], "invalid_grant");
    assert_eq!(
        userinfo(&app, first["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let refresh = token_request(
        &app,
        Some((&client.0, &client.1)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(json(&refresh)["error"], "invalid_grant");

    // Another client cannot use the code.
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let stolen = exchange(&app, &other, &code, &p.verifier).await;
    assert_eq!(json(&stolen)["error"], "invalid_grant");

    // A wrong verifier fails.
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let wrong = exchange(&app, &client, &code, &pkce().verifier).await;
    assert_eq!(json(&wrong)["error"], "invalid_grant");

    // An expired code fails: a minute and a second pass.
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    app.db()
        .execute(
            "UPDATE auth_codes SET expires_at = expires_at - 61 WHERE used_at IS NULL",
            [],
        )
        .unwrap();
    let late = exchange(&app, &client, &code, &p.verifier).await;
    assert_eq!(json(&late)["error"], "invalid_grant");
    assert!(
        json(&late)["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn authorize_refuses_without_pkce_and_unregistered_redirects() {
    let app = app().await;
    let client = confidential(&app).await;
    let mut b = signed_in(&app).await;
    let p = pkce();
    for (url, error) in [
        (
            authorize_url(&client.0, &p, "").replace(
                &format!("&code_challenge={}&code_challenge_method=S256", p.challenge),
                "",
            ),
            "invalid_request",
        ),
        (
            authorize_url(&client.0, &p, "")
                .replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            authorize_url(&client.0, &p, "").replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url(&client.0, &p, "").replace("scope=openid", "scope=admin%20openid"),
            "invalid_scope",
        ),
        (
            authorize_url(&client.0, &p, "&scope=openid"),
            "invalid_request",
        ),
    ] {
        let res = b.get(&url).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{url}");
        let q = query_of(header(&res, "location"));
        assert_eq!(q["error"], error, "{url}");
        assert_eq!(q["state"], "st-123");
    }
    // An unregistered redirect URI: a page, and no redirect anywhere.
    let evil = authorize_url(&client.0, &p, "").replace(
        &common::urlencode(REDIRECT),
        &common::urlencode("https://evil.example/cb"),
    );
    let res = b.get(&evil).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(header(&res, "location").is_empty());
    assert!(header(&res, "content-type").starts_with("text/html"));
    assert!(text(&res).contains("not registered"));
    // An unknown client: a page too.
    let res = b.get(&authorize_url("nope", &p, "")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Without a session, prompt=none answers login_required; otherwise the login page.
    let anon = Browser::new(&app);
    let mut anon = anon;
    let res = anon
        .get(&authorize_url(&client.0, &p, "&prompt=none"))
        .await;
    assert_eq!(
        query_of(header(&res, "location"))["error"],
        "login_required"
    );
    let res = anon.get(&authorize_url(&client.0, &p, "")).await;
    assert!(header(&res, "location").starts_with("/login?return_to=%2Fauthorize%3F"));
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = app().await;
    let client = confidential(&app).await;
    let mut b = signed_in(&app).await;
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let t = json(&exchange(&app, &client, &code, &p.verifier).await);
    let r0 = t["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let app = &app;
        let client = &client;
        async move {
            token_request(
                app,
                Some((&client.0, &client.1)),
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let res = refresh(r0.clone()).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let r1 = json(&res)["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r0, r1);
    assert!(json(&res)["id_token"].as_str().is_some());
    // Reusing the old token revokes the family: the new one dies too.
    assert_eq!(json(&refresh(r0).await)["error"], "invalid_grant");
    assert_eq!(json(&refresh(r1).await)["error"], "invalid_grant");

    // Two concurrent refreshes with one token: exactly one succeeds.
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let t = json(&exchange(&app, &client, &code, &p.verifier).await);
    let r = t["refresh_token"].as_str().unwrap().to_owned();
    let (a, c) = tokio::join!(refresh(r.clone()), refresh(r.clone()));
    let ok = [a.status(), c.status()]
        .iter()
        .filter(|s| **s == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "{} / {}", text(&a), text(&c));
}

#[tokio::test]
async fn client_authentication_and_client_credentials() {
    let app = app().await;
    let client = confidential(&app).await;
    let wrong = token_request(
        &app,
        Some((&client.0, "not-the-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(&wrong)["error"], "invalid_client");

    let ok = token_request(
        &app,
        Some((&client.0, &client.1)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
        ],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK, "{}", text(&ok));
    let t = json(&ok);
    assert_eq!(t["scope"], "orders:read");
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    // client_secret_post works too.
    let post = token_request(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
        ],
    )
    .await;
    assert_eq!(post.status(), StatusCode::OK);

    let (public, secret) = register(&app, j!({"client_name": "SPA", "token_endpoint_auth_method": "none", "redirect_uris": ["https://spa.example/cb"], "allowed_origins": ["https://spa.example"]})).await;
    assert!(secret.is_none());
    let res = token_request(
        &app,
        None,
        &[("grant_type", "client_credentials"), ("client_id", &public)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(&res)["error"], "unauthorized_client");

    // Bad input is invalid_request, never a 500.
    let dup = token_request(
        &app,
        Some((&client.0, &client.1)),
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(json(&dup)["error"], "invalid_request");
    let raw = app
        .send(
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Bytes::from_static(b"grant_type=%ZZ\xff"))
                .unwrap(),
        )
        .await;
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(&raw)["error"], "invalid_request");
    let missing = token_request(&app, Some((&client.0, &client.1)), &[]).await;
    assert_eq!(json(&missing)["error"], "invalid_request");
    let unknown = token_request(
        &app,
        Some((&client.0, &client.1)),
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(json(&unknown)["error"], "unsupported_grant_type");
    let too_big = app
        .send(
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Bytes::from(vec![b'a'; 70 * 1024]))
                .unwrap(),
        )
        .await;
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&too_big)["error"], "invalid_request");

    // CORS: a registered origin may call the token endpoint.
    let pre = app
        .send(
            Request::options("/token")
                .header("origin", "https://spa.example")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(
        header(&pre, "access-control-allow-origin"),
        "https://spa.example"
    );
    let pre = app
        .send(
            Request::options("/token")
                .header("origin", "https://evil.example")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(header(&pre, "access-control-allow-origin"), "");
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused() {
    let app = app().await;
    let client = confidential(&app).await;
    let t = json(
        &token_request(
            &app,
            Some((&client.0, &client.1)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "orders:read"),
            ],
        )
        .await,
    );
    let good = t["access_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = good.split('.').collect();

    // A tampered payload.
    let mut payload: Value =
        serde_json::from_slice(&lanyard::crypto::b64url_decode(parts[1]).unwrap()).unwrap();
    payload["scope"] = "openid".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        lanyard::crypto::b64url(payload.to_string().as_bytes()),
        parts[2]
    );
    // alg: none.
    let none = format!(
        "{}.{}.",
        lanyard::crypto::b64url(br#"{"alg":"none","typ":"at+jwt"}"#),
        parts[1]
    );
    // HS256 keyed with the public key (algorithm confusion).
    let jwks = text(&app.get("/jwks.json").await);
    let hs = HS256Key::from_bytes(jwks.as_bytes());
    let confused = hs
        .authenticate(
            Claims::create(Duration::from_mins(5))
                .with_issuer(ISSUER)
                .with_subject("x"),
        )
        .unwrap();
    // Expired, but signed with the real key (read from the dev key table, as an operator could).
    let jwk: String = app
        .db()
        .query_row(
            "SELECT CAST(private_key AS TEXT) FROM signing_keys WHERE role = 'current'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let kid: String = app
        .db()
        .query_row(
            "SELECT kid FROM signing_keys WHERE role = 'current'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let key = ES256KeyPair::from_jwk(&jwk).unwrap().with_key_id(&kid);
    let mut old = Claims::with_custom_claims(
        j!({"client_id": client.0, "scope": "openid"}),
        Duration::from_secs(60),
    )
    .with_issuer(ISSUER)
    .with_subject("x")
    .with_jwt_id("old");
    let now = Clock::now_since_epoch();
    old.issued_at = Some(now - Duration::from_secs(600));
    old.expires_at = Some(now - Duration::from_secs(300));
    let expired = key
        .sign_with_options(
            old,
            &HeaderOptions {
                signature_type: Some("at+jwt".into()),
                ..Default::default()
            },
        )
        .unwrap();

    for (name, token) in [
        ("tampered", tampered),
        ("alg none", none),
        ("HS256", confused),
        ("expired", expired),
        ("garbage", "abc".into()),
    ] {
        let res = userinfo(&app, &token).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            header(&res, "www-authenticate").contains("invalid_token"),
            "{name}"
        );
        assert_eq!(
            introspect(&app, &client, &token).await["active"],
            false,
            "{name}"
        );
    }
    assert_eq!(userinfo(&app, "").await.status(), StatusCode::UNAUTHORIZED);
}

async fn introspect(app: &App, client: &(String, String), token: &str) -> Value {
    let req =
        Request::post("/introspect").header("content-type", "application/x-www-form-urlencoded");
    let req = req.header("authorization", basic_auth(&client.0, &client.1));
    json(
        &app.send(req.body(form_body(&[("token", token)])).unwrap())
            .await,
    )
}

#[tokio::test]
async fn introspection_and_revocation() {
    let app = app().await;
    let client = confidential(&app).await;
    let mut b = signed_in(&app).await;
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let t = json(&exchange(&app, &client, &code, &p.verifier).await);
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();

    let a = introspect(&app, &client, access).await;
    assert_eq!(a["active"], true);
    assert_eq!(a["client_id"], client.0.as_str());
    assert_eq!(introspect(&app, &client, refresh).await["active"], true);
    assert_eq!(introspect(&app, &client, "nonsense").await["active"], false);

    let revoke = |token: &str| {
        Request::post("/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic_auth(&client.0, &client.1))
            .body(form_body(&[("token", token)]))
            .unwrap()
    };
    assert_eq!(app.send(revoke(access)).await.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &client, access).await["active"], false);
    assert_eq!(
        userinfo(&app, access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.send(revoke(refresh)).await.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &client, refresh).await["active"], false);
    assert_eq!(app.send(revoke("unknown")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn rp_initiated_logout() {
    let app = app().await;
    let client = confidential(&app).await;
    let mut b = signed_in(&app).await;
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let t = json(&exchange(&app, &client, &code, &p.verifier).await);
    let hint = t["id_token"].as_str().unwrap();

    let bad = b
        .get(&format!(
            "/logout?id_token_hint={hint}&post_logout_redirect_uri={}",
            common::urlencode("https://evil.example/")
        ))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(header(&bad, "location").is_empty());
    assert_eq!(b.get("/").await.status(), StatusCode::OK, "still signed in");

    let res = b
        .get(&format!(
            "/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
            common::urlencode("https://app.example.com/bye")
        ))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&res, "location"),
        "https://app.example.com/bye?state=bye"
    );
    assert_eq!(
        b.get("/").await.status(),
        StatusCode::SEE_OTHER,
        "signed out"
    );
}

#[tokio::test]
async fn admin_api_needs_the_token_and_validates() {
    let app = app().await;
    let anon = app
        .send(
            Request::get("/api/admin/clients")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&anon, "content-type"), "application/problem+json");
    let bad = admin(
        &app,
        "POST",
        "/api/admin/clients",
        Some(j!({"client_name": "x", "redirect_uris": ["http://evil.example/cb"]})),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let (id, _) = confidential(&app).await;
    let list = json(&admin(&app, "GET", "/api/admin/clients", None).await);
    assert!(
        list["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id.as_str())
    );
    assert!(
        list["clients"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("secret_hash").is_none())
    );
    let put = admin(
        &app,
        "PUT",
        &format!("/api/admin/clients/{id}"),
        Some(j!({"client_name": "Shop 2", "redirect_uris": [REDIRECT]})),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(json(&put)["client_name"], "Shop 2");
    assert_eq!(
        admin(&app, "DELETE", &format!("/api/admin/clients/{id}"), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin(&app, "GET", &format!("/api/admin/clients/{id}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // Off without the variable.
    let off = App::dev(&[]).await;
    assert_eq!(
        off.send(
            Request::get("/api/admin/clients")
                .body(Bytes::new())
                .unwrap()
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_client_may_ask_for_eddsa_id_tokens() {
    let app = app().await;
    let (id, secret) = register(
        &app,
        j!({"client_name": "Shop", "redirect_uris": [REDIRECT], "first_party": true,
            "id_token_signed_response_alg": "EdDSA"}),
    )
    .await;
    let client = (id, secret.unwrap());
    let mut b = signed_in(&app).await;
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let t = json(&exchange(&app, &client, &code, &p.verifier).await);
    let id_token = t["id_token"].as_str().unwrap();
    let meta = Token::decode_metadata(id_token).unwrap();
    assert_eq!(meta.algorithm(), "EdDSA");
    let key = published_jwk(&app, meta.key_id().unwrap()).await;
    let public = Ed25519PublicKey::from_jwk(&key.to_string()).unwrap();
    let claims = public.verify_token::<Value>(id_token, None).unwrap();
    assert_eq!(claims.nonce.as_deref(), Some("n-456"));
    // The access token stays ES256, and a first-party client skips consent.
    assert_eq!(
        Token::decode_metadata(t["access_token"].as_str().unwrap())
            .unwrap()
            .algorithm(),
        "ES256"
    );
}

#[tokio::test]
async fn a_client_may_ask_for_eddsa_access_tokens() {
    let app = app().await;
    let (id, secret) = register(
        &app,
        j!({"client_name": "Shop", "redirect_uris": [REDIRECT], "first_party": true,
            "id_token_signed_response_alg": "EdDSA", "access_token_signed_response_alg": "EdDSA"}),
    )
    .await;
    let client = (id, secret.unwrap());
    let mut b = signed_in(&app).await;
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;
    let t = json(&exchange(&app, &client, &code, &p.verifier).await);
    let access = t["access_token"].as_str().unwrap();
    let meta = Token::decode_metadata(access).unwrap();
    assert_eq!(meta.algorithm(), "EdDSA");
    assert_eq!(meta.signature_type(), Some("at+jwt"));
    assert_eq!(userinfo(&app, access).await.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &client, access).await["active"], true);
    let refreshed = token_request(
        &app,
        Some((&client.0, &client.1)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    // The header cannot swap the algorithm: an EdDSA key under an ES256 header fails.
    let parts: Vec<&str> = access.split('.').collect();
    let header: Value =
        serde_json::from_slice(&lanyard::crypto::b64url_decode(parts[0]).unwrap()).unwrap();
    let mut forged = header.clone();
    forged["alg"] = "ES256".into();
    let swapped = format!(
        "{}.{}.{}",
        lanyard::crypto::b64url(forged.to_string().as_bytes()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        userinfo(&app, &swapped).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// A client assertion (RFC 7523) signed with the partner's own key.
fn client_assertion(key: &Ed25519KeyPair, client: &str, aud: &str, jti: &str) -> String {
    let claims = Claims::create(Duration::from_secs(60))
        .with_issuer(client)
        .with_subject(client)
        .with_audience(aud)
        .with_jwt_id(jti);
    key.sign(claims).unwrap()
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `client_credentials` authenticated by `assertion` (and `basic`, if given).
async fn assertion_grant(
    app: &App,
    basic: Option<(&str, &str)>,
    assertion: &str,
) -> http::Response<Bytes> {
    let fields = [
        ("grant_type", "client_credentials"),
        ("scope", "orders:read"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    token_request(app, basic, &fields).await
}

#[tokio::test]
async fn a_partner_authenticates_with_a_signed_assertion() {
    let app = app().await;
    let discovery = json(&app.get("/.well-known/openid-configuration").await);
    assert!(
        discovery["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&j!("private_key_jwt"))
    );
    assert_eq!(
        discovery["token_endpoint_auth_signing_alg_values_supported"],
        j!(["ES256", "EdDSA"])
    );

    let key = Ed25519KeyPair::generate().with_key_id("partner-1");
    let public: Value = serde_json::from_str(&key.public_key().to_jwk()).unwrap();
    let (id, secret) = register(
        &app,
        j!({"client_name": "Partner", "client_id": "partner", 
            "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [public]},
            "grant_types": ["client_credentials"], "scope": "orders:read"}),
    )
    .await;
    assert_eq!(secret, None, "no secret is issued to a key-based client");
    let listed = json(&admin(&app, "GET", "/api/admin/clients/partner", None).await);
    assert_eq!(listed["token_endpoint_auth_method"], "private_key_jwt");
    assert!(listed["jwks"]["keys"][0].get("d").is_none());

    let signed = client_assertion(&key, &id, &format!("{ISSUER}/token"), "jti-1");
    let res = assertion_grant(&app, None, &signed).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let access = json(&res)["access_token"].as_str().unwrap().to_owned();
    let header = Token::decode_metadata(&access).unwrap();
    let claims = jwks_key(&app, header.key_id().unwrap())
        .await
        .verify_token::<Value>(&access, None)
        .unwrap();
    assert_eq!(claims.custom["client_id"], "partner");
    assert_eq!(claims.custom["scope"], "orders:read");

    // The same assertion again: refused, whatever it asks for.
    let replay = assertion_grant(&app, None, &signed).await;
    assert_eq!(
        replay.status(),
        StatusCode::UNAUTHORIZED,
        "{}",
        text(&replay)
    );
    assert_eq!(json(&replay)["error"], "invalid_client");

    // Signed by someone else, or mixed with a secret: refused.
    let stranger = Ed25519KeyPair::generate().with_key_id("partner-1");
    let forged = client_assertion(&stranger, &id, ISSUER, "jti-2");
    let res = assertion_grant(&app, None, &forged).await;
    assert_eq!(json(&res)["error"], "invalid_client");
    let both = client_assertion(&key, &id, ISSUER, "jti-3");
    let res = assertion_grant(&app, Some(("partner", "guess")), &both).await;
    assert_eq!(json(&res)["error"], "invalid_request");

    // The same method authenticates introspection, with the issuer as audience.
    let introspection = client_assertion(&key, &id, ISSUER, "jti-4");
    let req = Request::post("/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("token", access.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", introspection.as_str()),
        ]))
        .unwrap();
    let res = app.send(req).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    assert_eq!(json(&res)["active"], true);
}

/// A code exchange with `offline_access` for the signed-in browser: the tokens.
async fn tokens_for(app: &App, b: &mut Browser<'_>, client: &(String, String)) -> Value {
    let p = pkce();
    let code = code_for(b, &client.0, &p).await;
    let res = exchange(app, client, &code, &p.verifier).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    json(&res)
}

async fn refresh(app: &App, client: &(String, String), token: &str) -> http::Response<Bytes> {
    token_request(
        app,
        Some((&client.0, &client.1)),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

#[tokio::test]
async fn a_password_reset_ends_refresh_families_and_codes() {
    let app = app().await;
    let client = confidential(&app).await;
    let mut b = signed_in(&app).await;
    // An attacker who signed in with the old password holds a refresh token
    // and an unused code.
    let stolen = tokens_for(&app, &mut b, &client).await;
    let p = pkce();
    let code = code_for(&mut b, &client.0, &p).await;

    let mut owner = Browser::from_addr(&app, "192.0.2.44:1000");
    owner.post("/forgot", &[("email", EMAIL)]).await;
    let link = app.mailed_link(EMAIL).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let done = owner
        .post(
            "/reset",
            &[
                ("token", &token),
                ("password", "a brand new passphrase here"),
            ],
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK, "{}", text(&done));

    let res = refresh(&app, &client, stolen["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(&res)["error"], "invalid_grant");
    let res = exchange(&app, &client, &code, &p.verifier).await;
    assert_eq!(json(&res)["error"], "invalid_grant");
}

#[tokio::test]
async fn a_deleted_client_leaves_no_grants_behind() {
    let app = app().await;
    let spec = j!({"client_name": "Shop", "client_id": "shop", "redirect_uris": [REDIRECT],
        "scope": "openid profile email offline_access"});
    let (id, secret) = register(&app, spec.clone()).await;
    let client = (id, secret.unwrap());
    let mut b = signed_in(&app).await;
    let old = tokens_for(&app, &mut b, &client).await;
    let res = admin(&app, "DELETE", "/api/admin/clients/shop", None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Someone registers `shop` again: the old refresh token is dead, and the
    // person is asked for consent afresh.
    let (id, secret) = register(&app, spec).await;
    let again = (id, secret.unwrap());
    let res = refresh(&app, &again, old["refresh_token"].as_str().unwrap()).await;
    assert_eq!(json(&res)["error"], "invalid_grant");
    let consent = b.get(&authorize_url("shop", &pkce(), "")).await;
    assert_eq!(consent.status(), StatusCode::OK);
    assert!(text(&consent).contains("Allow Shop to use your account?"));
}

#[tokio::test]
async fn the_admin_api_speaks_rfc7591_and_guards_itself() {
    let app = app().await;
    let res = admin(
        &app,
        "POST",
        "/api/admin/clients",
        Some(j!({"client_name": "Shop", "redirect_uris": [REDIRECT], "scope": "openid email"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", text(&res));
    let c = json(&res);
    assert!(c["client_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(c["client_secret"].as_str().is_some_and(|s| s.len() >= 43));
    assert_eq!(c["client_secret_expires_at"], 0);
    assert_eq!(c["client_name"], "Shop");
    assert_eq!(c["scope"], "openid email");
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        c["grant_types"],
        j!(["authorization_code", "refresh_token"])
    );
    assert_eq!(c["response_types"], j!(["code"]));
    assert!(c["client_id_issued_at"].as_i64().is_some());
    assert!(c.get("id").is_none() && c.get("client").is_none());

    // The sweep a cron job calls: it answers what it deleted.
    app.db()
        .execute(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ('gone', 1)",
            [],
        )
        .unwrap();
    let swept = admin(&app, "POST", "/api/admin/sweep", None).await;
    assert_eq!(swept.status(), StatusCode::OK, "{}", text(&swept));
    assert_eq!(json(&swept)["revoked_tokens"], 1);
    assert_eq!(app.count("SELECT count(*) FROM revoked_tokens"), 0);
    let res = admin(&app, "GET", "/api/admin/sweep", None).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Wrong tokens are throttled per address, not for everyone.
    let app = App::dev(&[("admin_token", ADMIN), ("login_address_max_failures", "3")]).await;
    let guess = |from: &'static str, token: &'static str| {
        let req = Request::get("/api/admin/clients")
            .header("authorization", format!("Bearer {token}"))
            .body(Bytes::new())
            .unwrap();
        app.send_from(req, from)
    };
    for _ in 0..3 {
        assert_eq!(
            guess("192.0.2.9:1", "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = guess("192.0.2.9:1", ADMIN).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!header(&locked, "retry-after").is_empty());
    assert_eq!(
        guess("198.51.100.1:1", ADMIN).await.status(),
        StatusCode::OK
    );
    // Successes do not add up.
    for _ in 0..5 {
        assert_eq!(
            guess("198.51.100.1:1", ADMIN).await.status(),
            StatusCode::OK
        );
    }

    // Outside dev_mode, RS256 needs its key before a client may ask for it.
    let es256 = lanyard::oidc::keys::generate(lanyard::oidc::keys::Alg::Es256)
        .unwrap()
        .0;
    let prod = App::start(
        &[
            ("issuer", ISSUER),
            ("signing_key", &es256),
            ("admin_token", ADMIN),
        ],
        &[],
    )
    .await;
    let res = admin(
        &prod,
        "POST",
        "/api/admin/clients",
        Some(j!({"client_name": "Old RP", "redirect_uris": [REDIRECT], "id_token_signed_response_alg": "RS256"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        json(&res)["detail"]
            .as_str()
            .unwrap()
            .contains("signing_key_rs256")
    );

    // A short admin token is refused, naming the variable.
    let weak = App::dev(&[("admin_token", "short-token")]).await;
    let res = weak
        .send(
            Request::get("/api/admin/clients")
                .header("authorization", "Bearer short-token")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json(&res)["variable"], "admin_token");
}

#[tokio::test]
async fn introspection_answers_only_the_client_and_its_resource_servers() {
    let app = app().await;
    let client = confidential(&app).await;
    let other = confidential(&app).await;
    let (api, api_secret) = register(
        &app,
        j!({"client_name": "Orders API", "grant_types": ["client_credentials"], "scope": "orders:read",
            "resource_server_for": [client.0]}),
    )
    .await;
    let api = (api, api_secret.unwrap());
    let mut b = signed_in(&app).await;
    let t = tokens_for(&app, &mut b, &client).await;
    let access = t["access_token"].as_str().unwrap();
    let refresh_token = t["refresh_token"].as_str().unwrap();

    assert_eq!(introspect(&app, &client, access).await["active"], true);
    assert_eq!(introspect(&app, &api, access).await["active"], true);
    // Another client learns nothing, about either token.
    assert_eq!(
        introspect(&app, &other, access).await,
        j!({"active": false})
    );
    assert_eq!(
        introspect(&app, &other, refresh_token).await,
        j!({"active": false})
    );
}

#[tokio::test]
async fn https_issuers_send_hsts_on_every_component() {
    let app = app().await;
    for path in [
        "/login",
        "/.well-known/openid-configuration",
        "/jwks.json",
        "/nowhere",
    ] {
        let res = app.get(path).await;
        assert_eq!(
            header(&res, "strict-transport-security"),
            "max-age=31536000",
            "{path}"
        );
    }
    let local = App::start(
        &[("issuer", "http://127.0.0.1:3000"), ("dev_mode", "true")],
        &[],
    )
    .await;
    let res = local.get("/login").await;
    assert!(res.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn a_store_fault_answers_503_and_a_retry_succeeds() {
    let app = app().await;
    let client = confidential(&app).await;
    let mut b = signed_in(&app).await;
    let t = tokens_for(&app, &mut b, &client).await;
    let refresh_token = t["refresh_token"].as_str().unwrap().to_owned();
    let families = app.count("SELECT count(*) FROM refresh_families");

    for (kv, sql) in [(false, true), (true, false)] {
        app.host.inject_fault(kv, sql);
        // OAuth endpoint: temporarily_unavailable, nothing rotated. (The
        // token endpoint keeps nothing in key-value.)
        if sql {
            let res = refresh(&app, &client, &refresh_token).await;
            assert_eq!(
                res.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                text(&res)
            );
            assert_eq!(json(&res)["error"], "temporarily_unavailable");
            assert_eq!(header(&res, "retry-after"), "5");
        }
        // A page: a friendly 503.
        let page = b.get("/").await;
        assert_eq!(
            page.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "kv={kv} sql={sql}"
        );
        assert!(header(&page, "content-type").starts_with("text/html"));
        assert!(text(&page).contains("Temporarily unavailable"));
        assert_eq!(header(&page, "retry-after"), "5");
        // JSON APIs: a problem document.
        let me = b.get("/api/account/me").await;
        assert_eq!(me.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&me, "content-type"), "application/problem+json");
        if sql {
            let res = admin(&app, "GET", "/api/admin/clients", None).await;
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(header(&res, "content-type"), "application/problem+json");
            let res = app.get("/jwks.json").await;
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        app.host.inject_fault(false, false);
    }

    // The fault cleared: the same requests succeed, and the refresh token
    // that met the fault still works (it was not rotated half-way).
    assert_eq!(app.count("SELECT count(*) FROM refresh_families"), families);
    let res = refresh(&app, &client, &refresh_token).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    assert_eq!(b.get("/").await.status(), StatusCode::OK);
    assert_eq!(b.get("/api/account/me").await.status(), StatusCode::OK);
    assert_eq!(app.get("/jwks.json").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_may_ask_for_rs256_id_tokens() {
    let app = app().await;
    let doc = json(&app.get("/.well-known/openid-configuration").await);
    assert!(
        doc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&j!("RS256")),
        "{doc}"
    );
    let (id, secret) = register(
        &app,
        j!({"client_name": "Shop", "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": [REDIRECT], "first_party": true,
            "scope": "openid profile email offline_access",
            "id_token_signed_response_alg": "RS256"}),
    )
    .await;
    let client = (id, secret.unwrap());
    let mut b = signed_in(&app).await;
    let t = tokens_for(&app, &mut b, &client).await;
    let id_token = t["id_token"].as_str().unwrap();
    let meta = Token::decode_metadata(id_token).unwrap();
    assert_eq!(meta.algorithm(), "RS256");

    // The dev key was made for this first RS256 token, and is published now.
    let key = published_jwk(&app, meta.key_id().unwrap()).await;
    assert_eq!(
        (&key["kty"], &key["alg"], &key["use"]),
        (&j!("RSA"), &j!("RS256"), &j!("sig"))
    );
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(key.get(private).is_none(), "{private} published");
    }
    let public = RS256PublicKey::from_jwk(&key.to_string()).unwrap();
    let claims = public
        .verify_token::<serde_json::Map<String, Value>>(id_token, Some(for_client(&client.0)))
        .unwrap();
    assert_eq!(claims.nonce.as_deref(), Some("n-456"));
    // RS256 hashes with SHA-256: at_hash is the left half of it.
    let access = t["access_token"].as_str().unwrap();
    let sha256 = lanyard::crypto::sha256(access.as_bytes());
    assert_eq!(
        claims.custom["at_hash"],
        lanyard::crypto::b64url(&sha256[..16])
    );
    // Access tokens stay ES256.
    assert_eq!(Token::decode_metadata(access).unwrap().algorithm(), "ES256");

    // The RS256 ID token is a valid id_token_hint for logout.
    let res = b
        .get(&format!(
            "/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
            common::urlencode("https://app.example.com/bye")
        ))
        .await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "not registered for it"
    );
    let res = b.get(&format!("/logout?id_token_hint={id_token}")).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    assert!(text(&res).contains("You are signed out."), "{}", text(&res));
    assert_eq!(
        b.get("/").await.status(),
        StatusCode::SEE_OTHER,
        "signed out"
    );
}

/// `app` again, on the same data, as production runs it: keys from
/// variables (fresh ones: refresh tokens and client secrets live in the
/// database), not dev_mode, whose seeding and key table add statements.
async fn in_production(app: App) -> App {
    let App {
        host, data, issuer, ..
    } = app;
    drop(host);
    let es256 = lanyard::oidc::keys::generate(lanyard::oidc::keys::Alg::Es256)
        .unwrap()
        .0;
    let env = [("issuer", ISSUER), ("signing_key", es256.as_str())]
        .iter()
        .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.to_string()))
        .collect();
    let host = spin_test_host::SpinHost::new(spin_test_host::HostConfig {
        manifest: spin_test_host::repo_manifest(),
        wasm_dir: Some(spin_test_host::built_wasm_dir()),
        data_dir: data.path().to_owned(),
        env,
        ..Default::default()
    })
    .await
    .unwrap();
    App { host, data, issuer }
}

/// The fewest SQL statements that `n` requests ran, each as the host
/// counts it: one request in 32 also sweeps dead rows
/// (`lanyard::sweep::maybe`, at random), which the fewest leaves out.
async fn fewest_statements<F, Fut>(app: &App, n: usize, mut request: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut fewest = u64::MAX;
    for _ in 0..n {
        let before = app.host.sql_statements();
        request().await;
        fewest = fewest.min(app.host.sql_statements() - before);
    }
    fewest
}

/// Issue 14: a refresh runs the schema check, the client and the rotation
/// (which carries the person, and a b2b login's organisation or mandate);
/// client_credentials the schema check and the client.
#[tokio::test]
async fn a_refresh_runs_three_statements_and_client_credentials_two() {
    let app = app().await;
    let client = confidential(&app).await;
    let mut b = signed_in(&app).await;
    let first = tokens_for(&app, &mut b, &client).await;
    drop(b);
    let app = in_production(app).await;

    let token = std::cell::RefCell::new(first["refresh_token"].as_str().unwrap().to_owned());
    let (app, client, token) = (&app, &client, &token);
    let refreshes = fewest_statements(app, 5, move || async move {
        let current = token.borrow().clone();
        let res = refresh(app, client, &current).await;
        assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
        let body = json(&res);
        assert!(body["id_token"].is_string() && body["access_token"].is_string());
        *token.borrow_mut() = body["refresh_token"].as_str().unwrap().to_owned();
    })
    .await;
    assert!(refreshes <= 3, "a refresh ran {refreshes} SQL statements");

    let own = fewest_statements(app, 5, move || async move {
        let res = token_request(
            app,
            Some((&client.0, &client.1)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    })
    .await;
    assert!(own <= 2, "client_credentials ran {own} SQL statements");
}
