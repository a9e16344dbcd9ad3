//! End-to-end tests of Lanyard's foundation: real HTTP requests through the
//! Spin-compatible host to the real `.wasm` components built from this
//! repository, routed by the repository's own `spin.toml`.

mod common;

use bytes::Bytes;
use common::{App, ISSUER, header, json};
use http::{Request, Response, StatusCode};

/// The app with these `SPIN_VARIABLE_*` values, and a fresh data directory.
async fn app(vars: &[(&str, &str)]) -> App {
    App::start(vars, &[]).await
}

async fn dev_app() -> App {
    app(&[("issuer", ISSUER), ("dev_mode", "true")]).await
}

async fn send(app: &App, req: Request<Bytes>) -> Response<Bytes> {
    app.send(req).await
}

async fn get(app: &App, path: &str) -> Response<Bytes> {
    app.get(path).await
}

#[tokio::test]
async fn discovery_lists_the_endpoints_under_the_configured_issuer() {
    let host = dev_app().await;
    let res = get(&host, "/.well-known/openid-configuration").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "application/json");
    assert_eq!(header(&res, "cache-control"), "public, max-age=300");
    let doc = json(&res);
    assert_eq!(doc["issuer"], ISSUER);
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks.json"),
        ("end_session_endpoint", "/logout"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
    ] {
        assert_eq!(doc[field], format!("{ISSUER}{path}"), "{field}");
    }
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    // Only what Lanyard can sign: a client asking for anything else is
    // refused at registration.
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA", "RS256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&"refresh_token".into())
    );
}

#[tokio::test]
async fn issuer_comes_from_the_variable() {
    let host = app(&[("issuer", "https://login.other.example/tenant-a/")]).await;
    let doc = json(&get(&host, "/.well-known/openid-configuration").await);
    assert_eq!(doc["issuer"], "https://login.other.example/tenant-a");
    assert_eq!(
        doc["jwks_uri"],
        "https://login.other.example/tenant-a/jwks.json"
    );
}

#[tokio::test]
async fn dev_mode_jwks_publishes_generated_public_keys_that_persist() {
    let host = dev_app().await;
    let res = get(&host, "/jwks.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "cache-control"), "public, max-age=300");
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    let jwks = json(&res);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(
        keys.len(),
        3,
        "the current and next ES256 keys, and the EdDSA key"
    );
    for (key, (kty, crv, alg)) in keys.iter().zip([
        ("EC", "P-256", "ES256"),
        ("EC", "P-256", "ES256"),
        ("OKP", "Ed25519", "EdDSA"),
    ]) {
        assert_eq!(key["kty"], kty);
        assert_eq!(key["crv"], crv);
        assert_eq!(key["alg"], alg);
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
        assert_eq!(
            key["x"].as_str().unwrap().len(),
            43,
            "a 32-byte base64url coordinate"
        );
        if kty == "EC" {
            assert_eq!(key["y"].as_str().unwrap().len(), 43);
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} published"
            );
        }
    }
    // A fresh instance serves the same keys: they are kept in SQLite.
    let again = json(&get(&host, "/jwks.json").await);
    assert_eq!(again, jwks);
}

#[tokio::test]
async fn production_jwks_serves_the_key_from_the_secret_variable() {
    let (private, public) = lanyard::oidc::keys::generate(lanyard::oidc::keys::Alg::Es256).unwrap();
    let host = app(&[("issuer", ISSUER), ("signing_key", &private)]).await;
    let jwks = json(&get(&host, "/jwks.json").await);
    assert_eq!(jwks["keys"], serde_json::json!([public.jwk]));
    assert!(jwks["keys"][0].get("d").is_none());
}

#[tokio::test]
async fn a_missing_required_variable_is_named() {
    // dev_mode is off by default, so the signing key must be configured.
    let host = app(&[("issuer", ISSUER)]).await;
    let res = get(&host, "/jwks.json").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(header(&res, "content-type"), "application/problem+json");
    let problem = json(&res);
    assert_eq!(problem["variable"], "signing_key");
    assert!(problem["detail"].as_str().unwrap().contains("signing_key"));

    let host = app(&[("issuer", "ftp://nope")]).await;
    let problem = json(&get(&host, "/.well-known/openid-configuration").await);
    assert_eq!(problem["variable"], "issuer");
}

#[tokio::test]
async fn unknown_routes_get_a_404_in_the_right_shape() {
    let host = dev_app().await;
    let page = get(&host, "/no/such/page").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert!(header(&page, "content-security-policy").contains("frame-ancestors 'none'"));
    assert!(String::from_utf8_lossy(page.body()).contains("Not found"));

    for path in ["/api/no/such/thing", "/api/profile/me"] {
        let api = get(&host, path).await;
        assert_eq!(api.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&api, "content-type"), "application/problem+json");
        assert_eq!(json(&api)["status"], 404);
    }
    for path in ["/social/callback", "/profile/", "/orgs/join/extra"] {
        assert_eq!(
            get(&host, path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn wrong_methods_are_refused_with_allow() {
    let host = dev_app().await;
    let res = send(
        &host,
        Request::post("/jwks.json")
            .body(Bytes::from_static(b"x"))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&res, "allow"), "GET, HEAD");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let host = app(&[("issuer", ISSUER), ("max_body_bytes", "2048")]).await;
    let big = Bytes::from(vec![b'a'; 4096]);
    // Declared length over the limit: refused before reading.
    let declared = Request::post("/api/orgs/x")
        .header("content-length", big.len())
        .body(big.clone())
        .unwrap();
    let res = send(&host, declared).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&res)["status"], 413);
    // No declared length: refused while reading.
    let streamed = Request::post("/orgs/x").body(big).unwrap();
    assert_eq!(
        send(&host, streamed).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Within the limit the request reaches the router (here: 404).
    let small = Request::post("/api/profile/x")
        .body(Bytes::from(vec![b'a'; 1000]))
        .unwrap();
    assert_eq!(send(&host, small).await.status(), StatusCode::NOT_FOUND);
    // The default limit is 64 KiB.
    let host = dev_app().await;
    let res = send(
        &host,
        Request::post("/orgs/x")
            .body(Bytes::from(vec![0u8; 65 * 1024]))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn static_assets_are_cached_and_revalidated() {
    let host = app(&[("issuer", ISSUER), ("accent_color", "#0a7f5a")]).await;
    let css = get(&host, "/static/lanyard.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(header(&css, "content-type"), "text/css; charset=utf-8");
    assert_eq!(header(&css, "cache-control"), "public, max-age=86400");
    let etag = header(&css, "etag").to_owned();
    assert!(etag.starts_with('"'));
    let revalidated = send(
        &host,
        Request::get("/static/lanyard.css")
            .header("if-none-match", &etag)
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert!(revalidated.body().is_empty());

    let logo = get(&host, "/static/logo.svg").await;
    assert_eq!(header(&logo, "content-type"), "image/svg+xml");
    let theme = get(&host, "/static/theme.css").await;
    assert!(String::from_utf8_lossy(theme.body()).contains("#0a7f5a"));
    assert_eq!(
        get(&host, "/static/missing.css").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_response_keeps_every_set_cookie_and_its_whole_body() {
    // `GET /` with a dead session and no CSRF cookie yet: the redirect to
    // the login page clears the session cookie and sets the CSRF cookie,
    // two `Set-Cookie` headers that must both reach the browser.
    let host = dev_app().await;
    let res = send(
        &host,
        Request::get("/")
            .header("cookie", "__Host-lanyard_session=dead")
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), "/login");
    let cookies: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-lanyard_session=;") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-lanyard_csrf=")),
        "{cookies:?}"
    );
    assert_eq!(
        res.headers()
            .get_all("strict-transport-security")
            .iter()
            .count(),
        1
    );

    // A body of more than one 4 KiB write arrives whole.
    let css = get(&host, "/static/lanyard.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    let file = include_bytes!("../../../static/css/lanyard.css");
    assert!(file.len() > 4096, "{}", file.len());
    assert_eq!(css.body().as_ref(), file.as_slice());
}

// ------------------------------------------------------------------ variable reads

/// A request through the host and the Spin variables it read: each
/// `variables::get` costs 20–40 µs of host time on real Spin (issue 14).
async fn reads_of(app: &App, req: Request<Bytes>) -> (Response<Bytes>, u64) {
    let before = app.host.variable_reads();
    let res = app.send(req).await;
    (res, app.host.variable_reads() - before)
}

/// A GET with an optional cookie or bearer `authorization`.
fn get_with(path: &str, header_: Option<(&str, &str)>) -> Request<Bytes> {
    let mut b = Request::get(path);
    if let Some((name, value)) = header_ {
        b = b.header(name, value);
    }
    b.body(Bytes::new()).unwrap()
}

/// A form POST with an optional cookie or `authorization`.
fn post_form(path: &str, fields: &[(&str, &str)], header_: Option<(&str, &str)>) -> Request<Bytes> {
    let mut b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some((name, value)) = header_ {
        b = b.header(name, value);
    }
    b.body(common::form_body(fields)).unwrap()
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Each route reads the Spin variables it needs and no others, each once:
/// the counts are pinned so that a new eager read fails here (issue 14).
/// Production keys come from variables, as an operator configures them.
#[tokio::test]
async fn each_route_reads_only_the_variables_it_needs() {
    use common::orgs::{self, ADMIN, PASSWORD, REDIRECT};
    use lanyard::oidc::keys::{Alg, generate};
    use serde_json::json as j;

    let mut seen: Vec<(&str, u64)> = Vec::new();
    let es256 = generate(Alg::Es256).unwrap().0;
    let eddsa = generate(Alg::EdDsa).unwrap().0;
    let prod = app(&[
        ("issuer", ISSUER),
        ("signing_key", &es256),
        ("signing_key_eddsa", &eddsa),
        ("admin_token", ADMIN),
    ])
    .await;
    for (label, path) in [
        ("discovery", "/.well-known/openid-configuration"),
        ("JWKS", "/jwks.json"),
        ("static CSS", "/static/lanyard.css"),
        ("theme CSS", "/static/theme.css"),
        ("logo", "/static/logo.svg"),
    ] {
        let (res, n) = reads_of(&prod, get_with(path, None)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        seen.push((label, n));
    }
    let res = orgs::admin(
        &prod,
        "POST",
        "/api/admin/clients",
        Some(
            j!({"client_name": "Batch", "grant_types": ["client_credentials"],
                 "redirect_uris": [], "scope": "orders:read"}),
        ),
    )
    .await;
    let client = orgs::expect(&res, StatusCode::CREATED);
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    let auth = basic(id, secret);
    let cc = [("grant_type", "client_credentials")];
    let (res, n) = reads_of(
        &prod,
        post_form("/token", &cc, Some(("authorization", &auth))),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", common::text(&res));
    seen.push(("POST /token client_credentials (ES256)", n));

    // The account flows, in dev_mode (keys from SQLite, mail to the outbox).
    let dev = orgs::app().await;
    let p = orgs::person(&dev, "reads@example.com").await;
    let (_, n) = reads_of(&dev, get_with("/login", None)).await;
    seen.push(("GET /login (page)", n));
    let mut b = common::Browser::new(&dev);
    b.get("/login").await;
    let csrf = b.cookies["__Host-lanyard_csrf"].clone();
    let cookie = format!("__Host-lanyard_csrf={csrf}");
    let (res, n) = reads_of(
        &dev,
        post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "reads@example.com"),
                ("password", PASSWORD),
            ],
            Some(("cookie", &cookie)),
        ),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        common::text(&res)
    );
    seen.push(("POST /login", n));

    let res = orgs::admin(
        &dev,
        "POST",
        "/api/admin/clients",
        Some(j!({"client_name": "Shop", "redirect_uris": [REDIRECT],
                 "grant_types": ["authorization_code", "refresh_token"],
                 "scope": "openid email offline_access", "first_party": true})),
    )
    .await;
    let client = orgs::expect(&res, StatusCode::CREATED);
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    let auth = basic(&id, &secret);
    let pkce = orgs::pkce();
    let url = orgs::authorize_url(&id, "openid email offline_access", &pkce, "");
    let (mut res, n) = reads_of(&dev, get_with(&url, Some(("cookie", &p.cookie)))).await;
    seen.push(("GET /authorize", n));
    if res.status() == StatusCode::OK {
        let mut br = orgs::browser(&dev, &p);
        br.get(&url).await;
        res = orgs::consent(&mut br, &common::text(&res)).await;
    }
    let code = orgs::code_of(&res);
    let (res, n) = reads_of(
        &dev,
        post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &pkce.verifier),
            ],
            Some(("authorization", &auth)),
        ),
    )
    .await;
    let tokens = orgs::expect(&res, StatusCode::OK);
    seen.push(("POST /token authorization_code", n));
    let (res, n) = reads_of(
        &dev,
        post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
            Some(("authorization", &auth)),
        ),
    )
    .await;
    let tokens = orgs::expect(&res, StatusCode::OK);
    seen.push(("POST /token refresh_token", n));
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let (res, n) = reads_of(
        &dev,
        get_with("/userinfo", Some(("authorization", &bearer))),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", common::text(&res));
    seen.push(("GET /userinfo", n));
    let (res, n) = reads_of(&dev, get_with("/account", Some(("cookie", &p.cookie)))).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", common::text(&res));
    seen.push(("GET /account (page)", n));
    let (res, n) = reads_of(&dev, get_with("/api/orgs", Some(("cookie", &p.cookie)))).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", common::text(&res));
    seen.push(("GET /api/orgs", n));
    let social = App::dev(&[("admin_token", ADMIN), ("github_client_secret", "s3cret")]).await;
    let res = orgs::admin(
        &social,
        "POST",
        "/api/admin/connections",
        Some(
            j!({"id": "github", "kind": "github", "client_id": "gh-client",
                 "secret_variable": "github_client_secret"}),
        ),
    )
    .await;
    orgs::expect(&res, StatusCode::CREATED);
    let (res, n) = reads_of(&social, get_with("/social/github/start", None)).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        common::text(&res)
    );
    seen.push(("GET /social/github/start", n));

    // The most each may read (a sampled sweep reads its retention on top,
    // hence the 1 of slack of the routes that sweep). Before issue 14:
    // discovery 6, JWKS 11, static files 6, client_credentials 7, pages
    // 18–20, the dev-mode token endpoint and userinfo 6.
    let most = [
        // The issuer (for the document and HSTS).
        ("discovery", 1),
        // The issuer, dev_mode, and the five key variables it publishes.
        ("JWKS", 7),
        // The issuer, for HSTS.
        ("static CSS", 1),
        // ... and accent_color.
        ("theme CSS", 2),
        // ... and logo_svg.
        ("logo", 2),
        // The issuer, dev_mode, the ES256 key alone (+ a sampled sweep).
        ("POST /token client_credentials (ES256)", 4),
        ("GET /login (page)", 5),
        ("POST /login", 15),
        ("GET /authorize", 7),
        ("POST /token authorization_code", 3),
        ("POST /token refresh_token", 3),
        ("GET /userinfo", 2),
        ("GET /account (page)", 7),
        ("GET /api/orgs", 4),
        ("GET /social/github/start", 5),
    ];
    for (label, n) in &seen {
        println!("| {label} | {n} |");
    }
    for ((label, n), (pinned, limit)) in seen.iter().zip(most) {
        assert_eq!(*label, pinned);
        assert!(*n <= limit, "{label} read {n} variables, at most {limit}");
    }
    assert_eq!(seen.len(), most.len());
    // Discovery and a static file read exactly what they need.
    assert_eq!(seen[0].1, 1, "discovery");
    assert_eq!(seen[2].1, 1, "static CSS");
}
