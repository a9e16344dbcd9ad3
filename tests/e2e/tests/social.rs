//! Social and enterprise sign-in end to end (docs/social.md): the social
//! component on the test host, talking over outbound HTTP to fake providers
//! (`common/idp.rs`) that the host's `outbound_overrides` put behind made-up
//! host names (`idp.example`) or the real providers' (`github.com`,
//! `appleid.apple.com`, …). The tests play the browser: they start a sign-in,
//! read `state`/`nonce`/`code_challenge` off the redirect, have the fake
//! issue a code, and call the callback.

mod common;
#[path = "common/idp.rs"]
mod idp;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde_json::{Value, json as j};

use common::orgs::{
    ADMIN, PASSWORD, REDIRECT, admin, call, code_of, consent, exchange, expect, payload, pkce,
    session_cookie,
};
use common::{App, Browser, ISSUER, header, text, urlencode};
use idp::{Alg, Authz, Faults, GhUser, GitHub, Oidc, OidcConfig, Person};

/// The generic provider's issuer, a made-up host behind an override.
const IDP: &str = "https://idp.example";
const CLIENT_ID: &str = "lanyard-at-idp";
/// Characters that RFC 6749 §2.3.1 form-encodes inside HTTP Basic.
const SECRET: &str = "s3cret+with/odd=chars:and more";
const CONN: &str = "acme-idp";

// ------------------------------------------------------------------ set-up

/// The app in dev mode with the admin token, the providers' secrets, and
/// `social_outbound_host_1` = the generic provider; these overrides.
async fn app_with(overrides: &[(&str, SocketAddr)], extra: &[(&str, &str)]) -> App {
    let mut vars = vec![
        ("issuer", ISSUER),
        ("dev_mode", "true"),
        ("argon2_memory_kib", "8192"),
        ("argon2_iterations", "1"),
        ("admin_token", ADMIN),
        ("google_client_secret", SECRET),
        ("github_client_secret", SECRET),
        ("microsoft_client_secret", SECRET),
        ("social_outbound_host_1", IDP),
    ];
    vars.extend_from_slice(extra);
    App::start(&vars, overrides).await
}

/// A generic provider at [`IDP`] signing with `alg`, and the app with an
/// `oidc` connection [`CONN`] to it (`spec` merged into the defaults).
async fn generic(alg: Alg, spec: Value) -> (Oidc, App) {
    let idp = Oidc::start(OidcConfig::generic(IDP, CLIENT_ID, SECRET), alg).await;
    let app = app_with(&[("idp.example", idp.addr)], &[]).await;
    connection(
        &app,
        merge(
            j!({"id": CONN, "kind": "oidc", "name": "Acme IdP", "issuer": IDP,
                "client_id": CLIENT_ID, "secret_variable": "google_client_secret"}),
            spec,
        ),
    )
    .await;
    (idp, app)
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let Value::Object(m) = extra {
        for (k, v) in m {
            base[k] = v;
        }
    }
    base
}

/// Creates an operator connection through the admin API.
async fn connection(app: &App, spec: Value) -> Value {
    let res = admin(app, "POST", "/api/admin/connections", Some(spec)).await;
    expect(&res, StatusCode::CREATED)
}

/// A browser that has seen the login page (and holds its CSRF cookie), as
/// one that clicks "Continue with …" there. (One whose first request is the
/// start: `a_first_request_to_start_keeps_the_binding_cookie`.)
async fn fresh(app: &App) -> Browser<'_> {
    let mut b = Browser::new(app);
    b.get("/login").await;
    b
}

/// The provider URL the browser is sent to.
#[track_caller]
fn location(res: &Response<Bytes>) -> String {
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(res));
    header(res, "location").to_owned()
}

async fn start(b: &mut Browser<'_>, conn: &str, query: &str) -> String {
    let sep = if query.is_empty() { "" } else { "?" };
    let res = b.get(&format!("/social/{conn}/start{sep}{query}")).await;
    location(&res)
}

fn callback_path(conn: &str, a: &Authz) -> String {
    format!(
        "/social/{conn}/callback?code={}&state={}",
        urlencode(&a.code),
        urlencode(&a.state)
    )
}

async fn callback(b: &mut Browser<'_>, conn: &str, a: &Authz) -> Response<Bytes> {
    b.get(&callback_path(conn, a)).await
}

/// A whole sign-in at a generic provider: start, code, callback.
async fn sign_in(b: &mut Browser<'_>, idp: &Oidc, conn: &str, who: &Person) -> Response<Bytes> {
    let loc = start(b, conn, "").await;
    let a = idp.code_for(&loc, who);
    callback(b, conn, &a).await
}

/// Asserts a completed sign-in: a redirect to `to` with a new session.
#[track_caller]
fn signed_in(res: &Response<Bytes>, to: &str) -> String {
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(res));
    assert_eq!(header(res, "location"), to);
    session_cookie(res)
}

/// Asserts an error page with this status that says `says`, and no session.
#[track_caller]
fn error_page(res: &Response<Bytes>, status: StatusCode, says: &str) -> String {
    let page = text(res);
    assert_eq!(res.status(), status, "{page}");
    assert!(
        header(res, "content-type").starts_with("text/html"),
        "{:?}",
        res.headers()
    );
    assert!(page.contains(says), "expected {says:?} in:\n{page}");
    assert!(
        !res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-lanyard_session=")),
        "a session was started"
    );
    page
}

/// Nothing was created: no account, no link.
#[track_caller]
fn nothing_created(app: &App) {
    assert_eq!(app.count("SELECT count(*) FROM identities"), 0);
    assert_eq!(app.count("SELECT count(*) FROM federated_identities"), 0);
    assert_eq!(app.count("SELECT count(*) FROM pending_links"), 0);
}

/// A confidential client with consent (not first-party).
async fn client(app: &App, name: &str) -> (String, String) {
    let res = admin(
        app,
        "POST",
        "/api/admin/clients",
        Some(j!({"client_name": name, "redirect_uris": [REDIRECT],
                 "scope": "openid profile email"})),
    )
    .await;
    let b = expect(&res, StatusCode::CREATED);
    (
        b["client_id"].as_str().unwrap().to_owned(),
        b["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// The code flow of `client` for a signed-in browser, which must not be
/// sent to the login page; the ID token's claims.
async fn id_token_claims(app: &App, b: &mut Browser<'_>, client: &(String, String)) -> Value {
    let p = pkce();
    let mut res = b
        .get(&common::orgs::authorize_url(
            &client.0,
            "openid email profile",
            &p,
            "",
        ))
        .await;
    assert!(
        !header(&res, "location").starts_with("/login"),
        "sent to the login page: {}",
        header(&res, "location")
    );
    if res.status() == StatusCode::OK {
        let page = text(&res);
        res = consent(b, &page).await;
    }
    let code = code_of(&res);
    let tokens = expect(&exchange(app, client, &code, &p).await, StatusCode::OK);
    payload(tokens["id_token"].as_str().unwrap())
}

#[track_caller]
fn federated(claims: &Value, conn: &str) {
    assert_eq!(claims["idp"], conn, "{claims}");
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap_or_else(|| panic!("no amr: {claims}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(amr.contains(&"fed"), "{claims}");
}

/// The identity an upstream account is linked to.
fn linked_identity(app: &App, issuer: &str, subject: &str) -> Option<String> {
    app.db()
        .query_row(
            "SELECT identity_id FROM federated_identities WHERE issuer = ?1 AND subject = ?2",
            [issuer, subject],
            |r| r.get(0),
        )
        .ok()
}

fn identity_email_verified(app: &App, email: &str) -> (String, bool, String) {
    app.db()
        .query_row(
            "SELECT id, email_verified, attributes FROM identities WHERE email = ?1",
            [email],
            |r| Ok((r.get(0)?, r.get::<_, i64>(1)? == 1, r.get(2)?)),
        )
        .unwrap()
}

/// The signed-in person's `sub`.
async fn me(app: &App, b: &Browser<'_>) -> String {
    let cookie = format!("__Host-lanyard_session={}", b.session().unwrap());
    let res = call(app, "GET", "/api/account/me", None, Some(&cookie)).await;
    expect(&res, StatusCode::OK)["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A verified account with [`PASSWORD`] (signed up, verified, then signed out).
async fn verified_account(app: &App, email: &str) -> String {
    common::orgs::person(app, email).await.sub
}

// ------------------------------------------------------------------ sign-in and tokens

#[tokio::test]
async fn an_oidc_sign_in_makes_an_account_and_clients_see_fed_and_idp() {
    let (idp, app) = generic(Alg::Rs256, j!({"settings": {"mapping": {"name": "name"}}})).await;
    // The login page offers the connection, carrying return_to.
    let mut b = fresh(&app).await;
    let page = text(&b.get("/login?return_to=%2Fsocial%2Faccounts").await);
    assert!(page.contains("Continue with Acme IdP"), "{page}");
    assert!(
        page.contains("/social/acme-idp/start?return_to=%2Fsocial%2Faccounts"),
        "{page}"
    );

    let ada = Person::new("ada-upstream-1", "ada@example.com").with("name", "Ada Lovelace");
    let loc = start(&mut b, CONN, "return_to=%2Fsocial%2Faccounts").await;
    // The browser binding cookie is set with the redirect.
    assert!(
        b.cookies.contains_key("__Host-lanyard_social"),
        "{:?}",
        b.cookies
    );
    let a = idp.code_for(&loc, &ada);
    assert_eq!(
        a.query["redirect_uri"],
        format!("{ISSUER}/social/{CONN}/callback")
    );
    assert_eq!(a.query["scope"], "openid email profile");
    signed_in(&callback(&mut b, CONN, &a).await, "/social/accounts");

    // One account, linked, with the mapped name; not verified (untrusted connection).
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
    let (id, verified, attributes) = identity_email_verified(&app, "ada@example.com");
    assert!(
        !verified,
        "an untrusted connection's address is not verified"
    );
    assert!(attributes.contains("Ada Lovelace"), "{attributes}");
    assert_eq!(
        linked_identity(&app, IDP, "ada-upstream-1"),
        Some(id.clone())
    );
    assert_eq!(me(&app, &b).await, id);

    // The token request: client_secret_basic (form-encoded parts), PKCE, redirect_uri.
    let tr = idp.token_requests();
    assert_eq!(tr.len(), 1);
    assert_eq!(
        tr[0].basic(),
        Some((CLIENT_ID.to_owned(), SECRET.to_owned()))
    );
    assert_eq!(tr[0].form()["code"], a.code);
    assert!(!tr[0].form().contains_key("client_secret"));

    // The accounts page lists the link.
    let page = text(&b.get("/social/accounts").await);
    assert!(
        page.contains("Acme IdP") && page.contains("ada-upstream-1"),
        "{page}"
    );

    // A client's ID token says how the person signed in.
    let shop = client(&app, "Shop").await;
    let claims = id_token_claims(&app, &mut b, &shop).await;
    federated(&claims, CONN);
    assert_eq!(claims["sub"], id);

    // Single sign-on: another client needs no login either.
    let blog = client(&app, "Blog").await;
    let claims = id_token_claims(&app, &mut b, &blog).await;
    federated(&claims, CONN);

    // A second sign-in of the same upstream person: the same account, and the
    // JWKS from the cache (discovery too).
    let (jwks, discovery) = (idp.jwks_requests(), idp.discovery_requests());
    let mut b2 = fresh(&app).await;
    signed_in(&sign_in(&mut b2, &idp, CONN, &ada).await, "/");
    assert_eq!(me(&app, &b2).await, id);
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
    assert_eq!(idp.jwks_requests(), jwks, "the JWKS is cached");
    assert_eq!(idp.discovery_requests(), discovery, "discovery is cached");
    assert_eq!(jwks, 1);
}

#[tokio::test]
async fn an_es256_id_token_verifies_too() {
    let (idp, app) = generic(Alg::Es256, j!({})).await;
    let mut b = fresh(&app).await;
    let grace = Person::new("grace-es", "grace@example.com");
    signed_in(&sign_in(&mut b, &idp, CONN, &grace).await, "/");
    let (id, _, _) = identity_email_verified(&app, "grace@example.com");
    assert_eq!(linked_identity(&app, IDP, "grace-es"), Some(id));
    let claims = id_token_claims(&app, &mut b, &client(&app, "Shop").await).await;
    federated(&claims, CONN);
}

#[tokio::test]
async fn client_secret_post_is_used_when_it_is_the_only_method() {
    let mut config = OidcConfig::generic(IDP, CLIENT_ID, SECRET);
    config.auth_methods = vec!["client_secret_post".into()];
    let idp = Oidc::start(config, Alg::Rs256).await;
    let app = app_with(&[("idp.example", idp.addr)], &[]).await;
    connection(
        &app,
        j!({"id": CONN, "kind": "oidc", "name": "Acme IdP", "issuer": IDP,
            "client_id": CLIENT_ID, "secret_variable": "google_client_secret"}),
    )
    .await;
    let mut b = fresh(&app).await;
    signed_in(
        &sign_in(&mut b, &idp, CONN, &Person::new("p1", "p1@example.com")).await,
        "/",
    );
    let tr = &idp.token_requests()[0];
    assert_eq!(tr.basic(), None);
    assert_eq!(tr.form()["client_id"], CLIENT_ID);
    assert_eq!(tr.form()["client_secret"], SECRET);
}

/// Two Set-Cookie headers on one response (the binding or session cookie,
/// and the CSRF cookie of a browser without one) both reach the browser:
/// spin-sdk 5.2's conversion kept one value per header name, which lost the
/// binding cookie at the start and the session at the callback (the Spin
/// adapter now writes every header itself).
#[tokio::test]
async fn a_first_request_to_start_keeps_the_binding_cookie() {
    // An app's own "Sign in with Acme IdP" link straight to the start, in a
    // browser that has never seen a Lanyard page (no CSRF cookie yet).
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let mut b = Browser::new(&app);
    let res = b.get(&format!("/social/{CONN}/start")).await;
    let cookies: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-lanyard_social=")),
        "{cookies:?}"
    );
    let a = idp.code_for(
        &location(&res),
        &Person::new("first-1", "first@example.com"),
    );
    // Back from the provider with only the binding cookie: the session
    // cookie must survive the CSRF cookie set with it.
    b.cookies.remove("__Host-lanyard_csrf");
    signed_in(&callback(&mut b, CONN, &a).await, "/");
}

// ------------------------------------------------------------------ linking rules

/// Google (trusted_email on) with the fake behind Google's three hosts.
async fn google() -> (Oidc, App) {
    let idp = Oidc::start(OidcConfig::google(CLIENT_ID, SECRET), Alg::Rs256).await;
    let app = app_with(
        &[
            ("accounts.google.com", idp.addr),
            ("oauth2.googleapis.com", idp.addr),
            ("www.googleapis.com", idp.addr),
        ],
        &[],
    )
    .await;
    let c = connection(
        &app,
        j!({"id": "google", "kind": "google", "client_id": CLIENT_ID,
            "secret_variable": "google_client_secret"}),
    )
    .await;
    assert_eq!(c["trusted_email"], true);
    assert_eq!(c["issuer"], "https://accounts.google.com");
    (idp, app)
}

#[tokio::test]
async fn a_trusted_verified_address_links_to_the_verified_account_at_once() {
    let (idp, app) = google().await;
    let sub = verified_account(&app, "olive@example.com").await;
    let mut b = fresh(&app).await;
    let olive = Person::new("google-olive", "Olive@Example.com");
    signed_in(&sign_in(&mut b, &idp, "google", &olive).await, "/");
    assert_eq!(me(&app, &b).await, sub, "signed in as the existing account");
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
    assert_eq!(
        linked_identity(&app, "https://accounts.google.com", "google-olive"),
        Some(sub)
    );
    // Google's token endpoint on its own host, its JWKS on another.
    assert_eq!(idp.token_requests().len(), 1);
    assert_eq!(idp.jwks_requests(), 1);
    let claims = id_token_claims(&app, &mut b, &client(&app, "Shop").await).await;
    federated(&claims, "google");
}

#[tokio::test]
async fn a_new_person_at_a_trusted_connection_gets_a_verified_account() {
    let (idp, app) = google().await;
    let mut b = fresh(&app).await;
    signed_in(
        &sign_in(
            &mut b,
            &idp,
            "google",
            &Person::new("g-new", "new@example.com"),
        )
        .await,
        "/",
    );
    let (_, verified, _) = identity_email_verified(&app, "new@example.com");
    assert!(verified);
    // An unverified upstream address makes an unverified account.
    let mut b = fresh(&app).await;
    signed_in(
        &sign_in(
            &mut b,
            &idp,
            "google",
            &Person::new("g-new2", "new2@example.com").unverified(),
        )
        .await,
        "/",
    );
    let (_, verified, _) = identity_email_verified(&app, "new2@example.com");
    assert!(!verified);
}

/// Follows a NeedsPassword redirect to the link page: its token.
#[track_caller]
fn link_token(res: &Response<Bytes>) -> String {
    let to = location(res);
    assert!(to.starts_with("/social/link?token="), "{to}");
    assert!(
        !res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-lanyard_session=")),
        "signed in before the password"
    );
    to.split("token=").nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn an_untrusted_connection_asks_for_the_password_before_linking() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let sub = verified_account(&app, "olive@example.com").await;
    let shop = client(&app, "Shop").await;
    let mut b = fresh(&app).await;
    let olive = Person::new("idp-olive", "olive@example.com");
    let loc = start(&mut b, CONN, "return_to=%2Fsocial%2Faccounts").await;
    let a = idp.code_for(&loc, &olive);
    let token = link_token(&callback(&mut b, CONN, &a).await);
    assert_eq!(app.count("SELECT count(*) FROM federated_identities"), 0);
    assert_eq!(
        app.count("SELECT count(*) FROM identities"),
        1,
        "never a second account"
    );

    let page = text(&b.get(&format!("/social/link?token={token}")).await);
    assert!(
        page.contains("olive@example.com") && page.contains("Acme IdP"),
        "{page}"
    );
    // A wrong password: refused, nothing linked, the link still waits.
    let res = b
        .post(
            "/social/link",
            &[("token", &token), ("password", "not the password")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{}", text(&res));
    assert_eq!(app.count("SELECT count(*) FROM federated_identities"), 0);
    // The right one: linked, signed in with fed and pwd, on to return_to.
    let res = b
        .post("/social/link", &[("token", &token), ("password", PASSWORD)])
        .await;
    signed_in(&res, "/social/accounts");
    assert_eq!(me(&app, &b).await, sub);
    assert_eq!(linked_identity(&app, IDP, "idp-olive"), Some(sub.clone()));
    let claims = id_token_claims(&app, &mut b, &shop).await;
    federated(&claims, CONN);
    assert!(
        claims["amr"].as_array().unwrap().contains(&j!("pwd")),
        "{claims}"
    );
    // Used once.
    let res = b
        .post("/social/link", &[("token", &token), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", text(&res));
    // The next sign-in goes straight through.
    let mut b2 = fresh(&app).await;
    signed_in(&sign_in(&mut b2, &idp, CONN, &olive).await, "/");
    assert_eq!(me(&app, &b2).await, sub);
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
}

#[tokio::test]
async fn a_trusted_connection_still_asks_when_either_address_is_unverified() {
    let (idp, app) = google().await;
    // Upstream unverified, local verified.
    verified_account(&app, "olive@example.com").await;
    let mut b = fresh(&app).await;
    let res = sign_in(
        &mut b,
        &idp,
        "google",
        &Person::new("g-olive", "olive@example.com").unverified(),
    )
    .await;
    link_token(&res);
    // Apple-style "true" as a string counts as verified, but the local
    // account is unverified: the password first.
    let res = call(
        &app,
        "POST",
        "/api/account/signup",
        Some(j!({"email": "una@example.com", "password": PASSWORD})),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{}", text(&res));
    let mut b = fresh(&app).await;
    let mut una = Person::new("g-una", "una@example.com");
    una.email_verified = Some(j!("true"));
    link_token(&sign_in(&mut b, &idp, "google", &una).await);
    assert_eq!(app.count("SELECT count(*) FROM federated_identities"), 0);
    assert_eq!(
        app.count("SELECT count(*) FROM identities"),
        2,
        "never a second account"
    );
}

// ------------------------------------------------------------------ link, unlink

#[tokio::test]
async fn link_and_unlink_keep_a_way_to_sign_in() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let sub = verified_account(&app, "pat@example.com").await;
    let pat = common::orgs::login(&app, "pat@example.com").await;
    let mut b = common::orgs::browser(&app, &pat);
    b.get("/social/accounts").await;

    // Signed in with a password: link the provider.
    let loc = start(&mut b, CONN, "link=1").await;
    let a = idp.code_for(&loc, &Person::new("pat-up", "someone-else@example.com"));
    let res = callback(&mut b, CONN, &a).await;
    assert!(
        location(&res).starts_with("/social/accounts?linked="),
        "{}",
        location(&res)
    );
    assert_eq!(linked_identity(&app, IDP, "pat-up"), Some(sub.clone()));
    let page = text(&b.get(&location(&res)).await);
    assert!(page.contains("is linked to your account"), "{page}");
    // Signing in through it now is Pat, whatever the upstream address.
    let mut other = fresh(&app).await;
    signed_in(
        &sign_in(
            &mut other,
            &idp,
            CONN,
            &Person::new("pat-up", "x@example.com"),
        )
        .await,
        "/",
    );
    assert_eq!(me(&app, &other).await, sub);

    // Unlink: Pat has a password, so this is allowed.
    let res = b
        .post("/social/unlink", &[("issuer", IDP), ("subject", "pat-up")])
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    assert!(text(&res).contains("unlinked"));
    assert_eq!(linked_identity(&app, IDP, "pat-up"), None);

    // Linking without a session is refused.
    let mut anon = fresh(&app).await;
    let res = anon.get(&format!("/social/{CONN}/start?link=1")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{}", text(&res));

    // An account made by a sign-in has no password: its only link stays.
    let mut c = fresh(&app).await;
    signed_in(
        &sign_in(
            &mut c,
            &idp,
            CONN,
            &Person::new("only-up", "only@example.com"),
        )
        .await,
        "/",
    );
    let only = me(&app, &c).await;
    let res = c
        .post("/social/unlink", &[("issuer", IDP), ("subject", "only-up")])
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{}", text(&res));
    assert!(text(&res).contains("only way to sign in"), "{}", text(&res));
    assert_eq!(linked_identity(&app, IDP, "only-up"), Some(only.clone()));

    // Linking an upstream account that belongs to another account: refused.
    let loc = start(&mut b, CONN, "link=1").await;
    let a = idp.code_for(&loc, &Person::new("only-up", "only@example.com"));
    let res = callback(&mut b, CONN, &a).await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{}", text(&res));
    assert_eq!(linked_identity(&app, IDP, "only-up"), Some(only.clone()));

    // A second link: then one of the two may go, the last one not.
    let loc = start(&mut c, CONN, "link=1").await;
    let a = idp.code_for(&loc, &Person::new("only-up-2", "only2@example.com"));
    location(&callback(&mut c, CONN, &a).await);
    assert_eq!(linked_identity(&app, IDP, "only-up-2"), Some(only.clone()));
    let res = c
        .post("/social/unlink", &[("issuer", IDP), ("subject", "only-up")])
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let res = c
        .post(
            "/social/unlink",
            &[("issuer", IDP), ("subject", "only-up-2")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{}", text(&res));
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM federated_identities WHERE identity_id = '{only}'"
        )),
        1
    );
}

// ------------------------------------------------------------------ errors

#[tokio::test]
async fn cancelling_at_the_provider_goes_back_to_the_login_page() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, CONN, "return_to=%2Fsocial%2Faccounts").await;
    let state = idp::query_of(&loc)["state"].clone();
    let res = b
        .get(&format!(
            "/social/{CONN}/callback?error=access_denied&state={}",
            urlencode(&state)
        ))
        .await;
    let to = location(&res);
    assert_eq!(to, "/login?social=cancelled&return_to=%2Fsocial%2Faccounts");
    let page = text(&b.get(&to).await);
    assert!(page.to_lowercase().contains("cancel"), "{page}");
    nothing_created(&app);
    assert!(idp.token_requests().is_empty());
    // The state is spent.
    let a = Authz {
        code: "whatever".into(),
        state,
        query: Default::default(),
    };
    error_page(
        &callback(&mut b, CONN, &a).await,
        StatusCode::BAD_REQUEST,
        "finished already",
    );
}

#[tokio::test]
async fn another_provider_error_is_shown() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, CONN, "").await;
    let state = idp::query_of(&loc)["state"].clone();
    let res = b
        .get(&format!(
            "/social/{CONN}/callback?error=temporarily_unavailable&error_description=try+later&state={}",
            urlencode(&state)
        ))
        .await;
    error_page(&res, StatusCode::BAD_GATEWAY, "temporarily_unavailable");
    nothing_created(&app);
    drop(idp);
}

#[tokio::test]
async fn a_provider_that_is_down_at_the_start_stores_nothing() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    idp.set_faults(Faults {
        discovery_status: Some(503),
        ..Default::default()
    });
    let mut b = fresh(&app).await;
    let res = b.get(&format!("/social/{CONN}/start")).await;
    error_page(&res, StatusCode::SERVICE_UNAVAILABLE, "Acme IdP");
    assert_eq!(app.count("SELECT count(*) FROM social_states"), 0);
    nothing_created(&app);
}

/// Starts a sign-in, sets the fault, and calls back: the answer.
async fn with_fault(faults: Faults, alg: Alg) -> (Oidc, App, Response<Bytes>) {
    let (idp, app) = generic(alg, j!({})).await;
    let res = {
        let mut b = fresh(&app).await;
        let loc = start(&mut b, CONN, "").await;
        let a = idp.code_for(&loc, &Person::new("f-1", "f1@example.com"));
        idp.set_faults(faults);
        callback(&mut b, CONN, &a).await
    };
    (idp, app, res)
}

#[tokio::test]
async fn a_token_endpoint_answering_500_is_unavailable() {
    let (_idp, app, res) = with_fault(
        Faults {
            token_status: Some(500),
            ..Default::default()
        },
        Alg::Rs256,
    )
    .await;
    error_page(&res, StatusCode::SERVICE_UNAVAILABLE, "Acme IdP");
    nothing_created(&app);
}

#[tokio::test]
async fn a_token_endpoint_answering_garbage_is_unavailable() {
    let (_idp, app, res) = with_fault(
        Faults {
            token_garbage: true,
            ..Default::default()
        },
        Alg::Rs256,
    )
    .await;
    error_page(&res, StatusCode::SERVICE_UNAVAILABLE, "Acme IdP");
    nothing_created(&app);
}

#[tokio::test]
async fn a_token_endpoint_that_hangs_times_out() {
    let started = std::time::Instant::now();
    let (_idp, app, res) = with_fault(
        Faults {
            token_hang: Some(std::time::Duration::from_secs(25)),
            ..Default::default()
        },
        Alg::Rs256,
    )
    .await;
    let took = started.elapsed();
    error_page(&res, StatusCode::SERVICE_UNAVAILABLE, "not answering");
    assert!(
        took < std::time::Duration::from_secs(20),
        "the time-out took {took:?}"
    );
    nothing_created(&app);
}

#[tokio::test]
async fn a_token_endpoint_refusal_is_a_sign_in_failure() {
    let (_idp, app, res) = with_fault(
        Faults {
            token_status: Some(400),
            ..Default::default()
        },
        Alg::Rs256,
    )
    .await;
    error_page(&res, StatusCode::BAD_GATEWAY, "refused");
    nothing_created(&app);
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    for alg in [Alg::Rs256, Alg::Es256] {
        let (_idp, app, res) = with_fault(
            Faults {
                bad_signature: true,
                ..Default::default()
            },
            alg,
        )
        .await;
        error_page(&res, StatusCode::BAD_GATEWAY, "signature does not verify");
        nothing_created(&app);
    }
}

#[tokio::test]
async fn a_key_the_provider_does_not_publish_is_refused_after_one_refetch() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    // A first sign-in caches the JWKS.
    let mut b = fresh(&app).await;
    signed_in(
        &sign_in(&mut b, &idp, CONN, &Person::new("k-0", "k0@example.com")).await,
        "/",
    );
    assert_eq!(idp.jwks_requests(), 1);
    let mut b = fresh(&app).await;
    let loc = start(&mut b, CONN, "").await;
    let a = idp.code_for(&loc, &Person::new("k-1", "k1@example.com"));
    idp.set_faults(Faults {
        unknown_kid: true,
        ..Default::default()
    });
    error_page(
        &callback(&mut b, CONN, &a).await,
        StatusCode::BAD_GATEWAY,
        "key it does not publish",
    );
    assert_eq!(idp.jwks_requests(), 2, "refetched once");
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let (_idp, app, res) = with_fault(
        Faults {
            iss: Some("https://evil.example".into()),
            ..Default::default()
        },
        Alg::Rs256,
    )
    .await;
    error_page(&res, StatusCode::BAD_GATEWAY, "https://evil.example");
    nothing_created(&app);
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let (_idp, app, res) = with_fault(
        Faults {
            aud: Some(j!("another-app")),
            ..Default::default()
        },
        Alg::Es256,
    )
    .await;
    error_page(&res, StatusCode::BAD_GATEWAY, "another application");
    nothing_created(&app);
}

#[tokio::test]
async fn several_audiences_without_azp_are_refused() {
    let (_idp, app, res) = with_fault(
        Faults {
            aud: Some(j!([CLIENT_ID, "another-app"])),
            ..Default::default()
        },
        Alg::Rs256,
    )
    .await;
    error_page(&res, StatusCode::BAD_GATEWAY, "azp");
    nothing_created(&app);
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    let (_idp, app, res) = with_fault(
        Faults {
            nonce: Some("a-nonce-of-another-sign-in".into()),
            ..Default::default()
        },
        Alg::Rs256,
    )
    .await;
    error_page(&res, StatusCode::BAD_GATEWAY, "nonce");
    nothing_created(&app);
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let (_idp, app, res) = with_fault(
        Faults {
            expired: true,
            ..Default::default()
        },
        Alg::Rs256,
    )
    .await;
    error_page(&res, StatusCode::BAD_GATEWAY, "expired");
    nothing_created(&app);
}

#[tokio::test]
async fn an_issue_time_far_off_is_refused() {
    let (_idp, app, res) = with_fault(
        Faults {
            iat_offset: Some(-3600),
            ..Default::default()
        },
        Alg::Rs256,
    )
    .await;
    error_page(&res, StatusCode::BAD_GATEWAY, "issue time");
    nothing_created(&app);
}

#[tokio::test]
async fn a_replayed_state_is_a_dead_link_and_the_code_is_exchanged_once() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, CONN, "").await;
    let a = idp.code_for(&loc, &Person::new("r-1", "r1@example.com"));
    signed_in(&callback(&mut b, CONN, &a).await, "/");
    let res = callback(&mut b, CONN, &a).await;
    error_page(&res, StatusCode::BAD_REQUEST, "finished already");
    assert_eq!(idp.token_requests().len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
}

#[tokio::test]
async fn an_expired_state_is_a_dead_link() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, CONN, "").await;
    let a = idp.code_for(&loc, &Person::new("e-1", "e1@example.com"));
    // Eleven minutes later.
    app.db()
        .execute(
            "UPDATE social_states SET created_at = created_at - 660, expires_at = expires_at - 660",
            [],
        )
        .unwrap();
    error_page(
        &callback(&mut b, CONN, &a).await,
        StatusCode::BAD_REQUEST,
        "took too long",
    );
    assert!(idp.token_requests().is_empty());
    nothing_created(&app);
}

#[tokio::test]
async fn an_unknown_state_is_a_dead_link() {
    let (_idp, app) = generic(Alg::Rs256, j!({})).await;
    let mut b = fresh(&app).await;
    start(&mut b, CONN, "").await;
    let a = Authz {
        code: "c".into(),
        state: "not-a-state-we-made".into(),
        query: Default::default(),
    };
    error_page(
        &callback(&mut b, CONN, &a).await,
        StatusCode::BAD_REQUEST,
        "not one we started",
    );
    nothing_created(&app);
}

#[tokio::test]
async fn another_browsers_state_is_refused_and_stays_usable_by_its_own() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let mut victim = fresh(&app).await;
    let loc = start(&mut victim, CONN, "").await;
    let a = idp.code_for(&loc, &Person::new("v-1", "v1@example.com"));
    // The attacker's browser (its own binding cookie, or none at all).
    for cookies in [true, false] {
        let mut attacker = Browser::from_addr(&app, "127.0.0.2:40000");
        attacker.get("/login").await;
        if cookies {
            start(&mut attacker, CONN, "").await;
        }
        error_page(
            &callback(&mut attacker, CONN, &a).await,
            StatusCode::BAD_REQUEST,
            "another browser",
        );
    }
    nothing_created(&app);
    assert!(idp.token_requests().is_empty(), "no code exchanged");
    signed_in(&callback(&mut victim, CONN, &a).await, "/");
}

#[tokio::test]
async fn a_state_is_taken_only_by_its_own_connection() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    connection(
        &app,
        j!({"id": "other-idp", "kind": "oidc", "name": "Other", "issuer": IDP,
            "client_id": CLIENT_ID, "secret_variable": "google_client_secret"}),
    )
    .await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, CONN, "").await;
    let a = idp.code_for(&loc, &Person::new("c-1", "c1@example.com"));
    let res = callback(&mut b, "other-idp", &a).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", text(&res));
    nothing_created(&app);
    signed_in(&callback(&mut b, CONN, &a).await, "/");
}

#[tokio::test]
async fn no_email_from_the_provider_makes_no_account() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let mut b = fresh(&app).await;
    let res = sign_in(
        &mut b,
        &idp,
        CONN,
        &Person::new("ne-1", "x@example.com").without_email(),
    )
    .await;
    error_page(
        &res,
        StatusCode::BAD_GATEWAY,
        "did not share an email address",
    );
    nothing_created(&app);
}

#[tokio::test]
async fn a_provider_on_an_undeclared_host_is_named() {
    let idp = Oidc::start(
        OidcConfig::generic("https://undeclared.example", CLIENT_ID, SECRET),
        Alg::Rs256,
    )
    .await;
    let app = app_with(&[("undeclared.example", idp.addr)], &[]).await;
    connection(
        &app,
        j!({"id": "rogue", "kind": "oidc", "name": "Rogue", "issuer": "https://undeclared.example",
            "client_id": CLIENT_ID, "secret_variable": "google_client_secret"}),
    )
    .await;
    let mut b = fresh(&app).await;
    let res = b.get("/social/rogue/start").await;
    let page = error_page(&res, StatusCode::BAD_GATEWAY, "https://undeclared.example");
    assert!(page.contains("allowed_outbound_hosts"), "{page}");
    assert!(idp.seen().is_empty(), "the host let the request through");
    assert_eq!(app.count("SELECT count(*) FROM social_states"), 0);
}

#[tokio::test]
async fn a_disabled_or_unknown_connection_is_not_offered() {
    let (_idp, app) = generic(Alg::Rs256, j!({"enabled": false})).await;
    let mut b = fresh(&app).await;
    assert!(!text(&b.get("/login").await).contains("Continue with Acme IdP"));
    for id in [CONN, "nope-nope"] {
        let res = b.get(&format!("/social/{id}/start")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", text(&res));
    }
}

// ------------------------------------------------------------------ concurrency

#[tokio::test]
async fn ten_callbacks_with_one_state_make_one_session_and_one_account() {
    let (idp, app) = generic(Alg::Rs256, j!({})).await;
    let app = Arc::new(app);
    let (path, cookie) = {
        let mut b = fresh(&app).await;
        let loc = start(&mut b, CONN, "").await;
        let a = idp.code_for(&loc, &Person::new("race-1", "race@example.com"));
        // The browser's cookies: the binding and the CSRF cookie of the login page.
        let cookie = b
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        (callback_path(CONN, &a), cookie)
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, path, cookie) = (app.clone(), path.clone(), cookie.clone());
        tasks.spawn(async move {
            let req = Request::get(path.as_str())
                .header("cookie", cookie)
                .body(Bytes::new())
                .unwrap();
            app.send(req).await
        });
    }
    let mut sessions = 0;
    let mut statuses = Vec::new();
    while let Some(res) = tasks.join_next().await {
        let res = res.unwrap();
        statuses.push(res.status());
        if res
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-lanyard_session="))
        {
            sessions += 1;
        }
    }
    assert_eq!(sessions, 1, "{statuses:?}");
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::BAD_REQUEST)
            .count(),
        9,
        "{statuses:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
    assert_eq!(app.count("SELECT count(*) FROM federated_identities"), 1);
    assert_eq!(idp.token_requests().len(), 1, "the code is exchanged once");
}

// ------------------------------------------------------------------ GitHub

async fn github() -> (GitHub, App) {
    let gh = GitHub::start(CLIENT_ID, SECRET).await;
    let app = app_with(&[("github.com", gh.addr), ("api.github.com", gh.addr)], &[]).await;
    connection(
        &app,
        j!({"id": "github", "kind": "github", "client_id": CLIENT_ID,
            "secret_variable": "github_client_secret",
            "settings": {"mapping": {"name": "name"}}}),
    )
    .await;
    (gh, app)
}

#[tokio::test]
async fn github_signs_in_by_its_numeric_id_and_verified_primary_address() {
    let (gh, app) = github().await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, "github", "").await;
    assert!(
        loc.starts_with("https://github.com/login/oauth/authorize?"),
        "{loc}"
    );
    assert!(!idp::query_of(&loc).contains_key("nonce"));
    assert_eq!(idp::query_of(&loc)["scope"], "read:user user:email");
    let mut octo = GhUser::new(583231, "octocat", "octo@example.com");
    // A verified secondary and an unverified… only the verified primary counts.
    octo.emails.insert(
        0,
        j!({"email": "second@example.com", "primary": false, "verified": true}),
    );
    let a = gh.code_for(&loc, &octo);
    signed_in(&callback(&mut b, "github", &a).await, "/");
    let (id, verified, attributes) = identity_email_verified(&app, "octo@example.com");
    assert!(!verified, "github is not trusted by default");
    assert!(attributes.contains("octocat (GitHub)"), "{attributes}");
    assert_eq!(
        linked_identity(&app, "https://github.com", "583231"),
        Some(id.clone())
    );
    // The requests: the token form with PKCE, then the API with the token.
    let seen = gh.seen();
    let token = seen
        .iter()
        .find(|s| s.path == "/login/oauth/access_token")
        .unwrap();
    assert_eq!(token.header("accept"), "application/json");
    assert!(token.form().contains_key("code_verifier"));
    let user = seen.iter().find(|s| s.path == "/user").unwrap();
    assert!(user.header("authorization").starts_with("Bearer gho_"));
    assert_eq!(user.header("user-agent"), "Lanyard");
    assert_eq!(user.header("accept"), "application/vnd.github+json");
    // A renamed login keeps the link; the client sees fed and idp.
    let renamed = GhUser::new(583231, "octocat-renamed", "other@example.com");
    let mut b2 = fresh(&app).await;
    let loc = start(&mut b2, "github", "").await;
    signed_in(
        &callback(&mut b2, "github", &gh.code_for(&loc, &renamed)).await,
        "/",
    );
    assert_eq!(me(&app, &b2).await, id);
    let claims = id_token_claims(&app, &mut b2, &client(&app, "Shop").await).await;
    federated(&claims, "github");
}

#[tokio::test]
async fn github_without_a_verified_primary_address_makes_no_account() {
    let (gh, app) = github().await;
    let mut unverified = GhUser::new(7, "nov", "nov@example.com");
    unverified.emails = vec![j!({"email": "nov@example.com", "primary": true, "verified": false})];
    let mut b = fresh(&app).await;
    let loc = start(&mut b, "github", "").await;
    let res = callback(&mut b, "github", &gh.code_for(&loc, &unverified)).await;
    error_page(
        &res,
        StatusCode::BAD_GATEWAY,
        "did not share an email address",
    );
    // Addresses not shared at all (404 from /user/emails): the same.
    gh.set_emails_status(Some(404));
    let loc = start(&mut b, "github", "").await;
    let res = callback(
        &mut b,
        "github",
        &gh.code_for(&loc, &GhUser::new(8, "x", "x@example.com")),
    )
    .await;
    error_page(
        &res,
        StatusCode::BAD_GATEWAY,
        "did not share an email address",
    );
    nothing_created(&app);
}

#[tokio::test]
async fn github_refusing_the_code_is_a_sign_in_failure() {
    let (gh, app) = github().await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, "github", "").await;
    let mut a = gh.code_for(&loc, &GhUser::new(9, "y", "y@example.com"));
    a.code = "a-code-github-never-gave".into();
    let res = callback(&mut b, "github", &a).await;
    error_page(&res, StatusCode::BAD_GATEWAY, "bad_verification_code");
    nothing_created(&app);
}

// ------------------------------------------------------------------ Apple

const TEAM_ID: &str = "TEAM123456";
const KEY_ID: &str = "KEY1234567";

async fn apple() -> (Oidc, App, jwt_simple::prelude::ES256PublicKey) {
    use jwt_simple::prelude::ES256KeyPair;
    let key = ES256KeyPair::generate();
    let pem = key.to_pem().unwrap();
    let idp = Oidc::start(OidcConfig::apple("com.example.web"), Alg::Rs256).await;
    let app = app_with(
        &[("appleid.apple.com", idp.addr)],
        &[("apple_private_key", pem.as_str())],
    )
    .await;
    connection(
        &app,
        j!({"id": "apple", "kind": "apple", "client_id": "com.example.web",
            "secret_variable": "apple_private_key", "trusted_email": true,
            "settings": {"team_id": TEAM_ID, "key_id": KEY_ID,
                         "mapping": {"name": "name"}}}),
    )
    .await;
    (idp, app, key.public_key())
}

#[tokio::test]
async fn apple_posts_the_answer_with_the_name_once_and_gets_a_signed_client_secret() {
    use jwt_simple::prelude::{ECDSAP256PublicKeyLike, NoCustomClaims, VerificationOptions};
    let (idp, app, public) = apple().await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, "apple", "return_to=%2Fsocial%2Faccounts").await;
    let q = idp::query_of(&loc);
    assert_eq!(q["response_mode"], "form_post");
    assert_eq!(q["scope"], "name email");
    let mut jane = Person::new("001234.apple.sub", "jane@privaterelay.appleid.com");
    jane.email_verified = Some(j!("true"));
    let a = idp.code_for(&loc, &jane);

    // Apple's cross-site POST carries no cookie: answered with a GET of the
    // same callback.
    let body = common::form_body(&[
        ("code", &a.code),
        ("state", &a.state),
        (
            "user",
            r#"{"name":{"firstName":"Jane","lastName":"Appleseed"},"email":"ignored@example.com"}"#,
        ),
    ]);
    let res = app
        .send(
            Request::post("/social/apple/callback")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .unwrap(),
        )
        .await;
    let to = location(&res);
    assert!(to.starts_with("/social/apple/callback?"), "{to}");
    let res = b.get(&to).await;
    signed_in(&res, "/social/accounts");
    let (id, verified, attributes) = identity_email_verified(&app, "jane@privaterelay.appleid.com");
    assert!(verified, "Apple's \"true\" and a trusted connection");
    assert!(attributes.contains("Jane Appleseed"), "{attributes}");
    assert_eq!(
        linked_identity(&app, "https://appleid.apple.com", "001234.apple.sub"),
        Some(id)
    );

    // The client secret: an ES256 JWT by the operator's key, five minutes.
    let tr = idp.token_requests();
    assert_eq!(tr.len(), 1);
    let form = tr[0].form();
    assert_eq!(form["client_id"], "com.example.web");
    let secret = &form["client_secret"];
    let (header, claims) = idp::jwt_parts(secret);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], KEY_ID);
    assert_eq!(claims["iss"], TEAM_ID);
    assert_eq!(claims["sub"], "com.example.web");
    assert_eq!(claims["aud"], "https://appleid.apple.com");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    public
        .verify_token::<NoCustomClaims>(secret, Some(VerificationOptions::default()))
        .expect("signed with the operator's key");
    let claims = id_token_claims(&app, &mut b, &client(&app, "Shop").await).await;
    federated(&claims, "apple");
    // A later sign-in has no name: the account keeps the first one.
    let mut b2 = fresh(&app).await;
    let loc = start(&mut b2, "apple", "").await;
    let a = idp.code_for(&loc, &jane);
    let to = location(
        &app.send(
            Request::post("/social/apple/callback")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(common::form_body(&[("code", &a.code), ("state", &a.state)]))
                .unwrap(),
        )
        .await,
    );
    signed_in(&b2.get(&to).await, "/");
    let (_, _, attributes) = identity_email_verified(&app, "jane@privaterelay.appleid.com");
    assert!(attributes.contains("Jane Appleseed"), "{attributes}");
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
}

// ------------------------------------------------------------------ Microsoft

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

#[tokio::test]
async fn microsoft_checks_the_tenant_issuer_and_never_trusts_the_address() {
    let idp = Oidc::start(
        OidcConfig::microsoft("common", CLIENT_ID, SECRET),
        Alg::Rs256,
    )
    .await;
    let app = app_with(&[("login.microsoftonline.com", idp.addr)], &[]).await;
    connection(
        &app,
        j!({"id": "microsoft", "kind": "microsoft", "client_id": CLIENT_ID,
            "secret_variable": "microsoft_client_secret"}),
    )
    .await;
    let tenant_iss = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    // A new person: an account, linked under their tenant's issuer.
    let mut b = fresh(&app).await;
    let loc = start(&mut b, "microsoft", "").await;
    let a = idp.code_for(
        &loc,
        &Person::new("ms-sub-1", "mo@contoso.example").with("tid", TENANT),
    );
    signed_in(&callback(&mut b, "microsoft", &a).await, "/");
    let (id, verified, _) = identity_email_verified(&app, "mo@contoso.example");
    assert!(!verified, "Microsoft's address is never verified here");
    assert_eq!(linked_identity(&app, &tenant_iss, "ms-sub-1"), Some(id));
    let claims = id_token_claims(&app, &mut b, &client(&app, "Shop").await).await;
    federated(&claims, "microsoft");

    // Its address matches a verified account: the password first.
    verified_account(&app, "olive@contoso.example").await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, "microsoft", "").await;
    let a = idp.code_for(
        &loc,
        &Person::new("ms-olive", "olive@contoso.example").with("tid", TENANT),
    );
    link_token(&callback(&mut b, "microsoft", &a).await);

    // An iss that is not the token's own tenant's: refused.
    let mut b = fresh(&app).await;
    let loc = start(&mut b, "microsoft", "").await;
    let a = idp.code_for(
        &loc,
        &Person::new("ms-2", "two@contoso.example").with("tid", TENANT),
    );
    idp.set_faults(Faults {
        iss: Some(
            "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0".into(),
        ),
        ..Default::default()
    });
    error_page(
        &callback(&mut b, "microsoft", &a).await,
        StatusCode::BAD_GATEWAY,
        "not the issuer of its tenant",
    );
    assert_eq!(app.count("SELECT count(*) FROM federated_identities"), 1);
}

#[tokio::test]
async fn microsoft_refuses_a_tenant_outside_the_allow_list() {
    let idp = Oidc::start(
        OidcConfig::microsoft("organizations", CLIENT_ID, SECRET),
        Alg::Rs256,
    )
    .await;
    let app = app_with(&[("login.microsoftonline.com", idp.addr)], &[]).await;
    connection(
        &app,
        j!({"id": "contoso", "kind": "microsoft", "name": "Contoso",
            "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
            "client_id": CLIENT_ID, "secret_variable": "microsoft_client_secret",
            "settings": {"tenants": [TENANT]}}),
    )
    .await;
    let mut b = fresh(&app).await;
    let loc = start(&mut b, "contoso", "").await;
    assert!(loc.contains("/organizations/"), "{loc}");
    let stranger = "99999999-8888-7777-6666-555555555555";
    let a = idp.code_for(
        &loc,
        &Person::new("ms-x", "x@fabrikam.example").with("tid", stranger),
    );
    let page = error_page(
        &callback(&mut b, "contoso", &a).await,
        StatusCode::BAD_GATEWAY,
        stranger,
    );
    assert!(page.contains("may not sign in here"), "{page}");
    nothing_created(&app);
    let mut b = fresh(&app).await;
    let loc = start(&mut b, "contoso", "").await;
    let a = idp.code_for(
        &loc,
        &Person::new("ms-y", "y@contoso.example").with("tid", TENANT),
    );
    signed_in(&callback(&mut b, "contoso", &a).await, "/");
}

// ------------------------------------------------------------------ organisations

/// The organisation's provider and the DNS-over-HTTPS endpoint.
const ORG_IDP: &str = "https://sso.acme-corp.example";

/// The app restarted on its data (sessions and rows kept) with other variables.
async fn restart(app: &mut App, vars: &[(&str, &str)], overrides: &[(&str, SocketAddr)]) {
    use spin_test_host::{HostConfig, SpinHost, built_wasm_dir, repo_manifest};
    let env = vars
        .iter()
        .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.to_string()))
        .collect();
    app.host = SpinHost::new(HostConfig {
        manifest: repo_manifest(),
        wasm_dir: Some(built_wasm_dir()),
        data_dir: app.data.path().to_owned(),
        env,
        outbound_overrides: overrides.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
}

fn org_vars(grants: &str) -> Vec<(&'static str, String)> {
    vec![
        ("issuer", ISSUER.into()),
        ("dev_mode", "true".into()),
        ("argon2_memory_kib", "8192".into()),
        ("argon2_iterations", "1".into()),
        ("admin_token", ADMIN.into()),
        ("microsoft_client_secret", SECRET.into()),
        ("social_outbound_host_2", ORG_IDP.into()),
        ("org_secret_variables", grants.into()),
    ]
}

/// An organisation `acme` (owner `owner@acme-corp.example`) granted the
/// secret variable `microsoft_client_secret`, with a connection to
/// [`ORG_IDP`] (`default_role`) and the domain `acme-corp.example` claimed
/// for it; the DNS-over-HTTPS fake at cloudflare-dns.com.
struct OrgSetup {
    app: App,
    idp: Oidc,
    doh: idp::Doh,
    owner: common::orgs::Person,
    org_id: String,
    conn_id: String,
    txt: String,
}

async fn org_setup(default_role: &str) -> OrgSetup {
    let idp = Oidc::start(
        OidcConfig::generic(ORG_IDP, "lanyard-at-acme", SECRET),
        Alg::Rs256,
    )
    .await;
    let doh = idp::Doh::start().await;
    let overrides = [
        ("sso.acme-corp.example", idp.addr),
        ("cloudflare-dns.com", doh.addr),
    ];
    let vars = org_vars("");
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut app = App::start(&refs, &overrides).await;
    let owner = common::orgs::person(&app, "owner@acme-corp.example").await;
    let org = common::orgs::org(&app, &owner, "acme", "Acme Corp").await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    // Without the operator's grant, the variable is refused.
    let spec = j!({"issuer": ORG_IDP, "client_id": "lanyard-at-acme",
                   "secret_variable": "microsoft_client_secret", "default_role": default_role});
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/connections",
        Some(spec.clone()),
        owner.c(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", text(&res));
    // The operator grants it.
    let vars = org_vars(&format!("{org_id}=microsoft_client_secret"));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    restart(&mut app, &refs, &overrides).await;
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/connections",
        Some(spec),
        owner.c(),
    )
    .await;
    let conn = expect(&res, StatusCode::CREATED);
    let conn_id = conn["id"].as_str().unwrap().to_owned();
    assert!(conn_id.starts_with("org-acme-"), "{conn}");
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/domains",
        Some(j!({"domain": "Acme-Corp.example", "connection_id": conn_id})),
        owner.c(),
    )
    .await;
    let claim = expect(&res, StatusCode::CREATED);
    assert_eq!(claim["verified"], false);
    assert_eq!(claim["record"]["type"], "TXT");
    assert_eq!(claim["record"]["name"], "acme-corp.example");
    let txt = claim["record"]["value"].as_str().unwrap().to_owned();
    assert!(txt.starts_with("lanyard-verification="), "{claim}");
    OrgSetup {
        app,
        idp,
        doh,
        owner,
        org_id,
        conn_id,
        txt,
    }
}

async fn verify_domain(s: &OrgSetup, by: &common::orgs::Person, slug: &str) -> Response<Bytes> {
    call(
        &s.app,
        "POST",
        &format!("/api/orgs/{slug}/domains/acme-corp.example/verify"),
        None,
        by.c(),
    )
    .await
}

#[tokio::test]
async fn a_domain_is_proven_by_its_txt_record_over_dns_over_https() {
    let s = org_setup("member").await;
    // Not published yet: a 400 that says what to publish; nothing proven.
    let res = verify_domain(&s, &s.owner, "acme").await;
    let p = common::orgs::problem(&res, StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains(&s.txt), "{p}");
    // Another record at the name is not enough either.
    s.doh.set_txt("acme-corp.example", &["\"v=spf1 -all\""]);
    let res = verify_domain(&s, &s.owner, "acme").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", text(&res));
    // Published, split into two strings as a long TXT record is.
    let token = s.txt.strip_prefix("lanyard-verification=").unwrap();
    let split = format!("\"lanyard-verification=\" \"{token}\"");
    s.doh
        .set_txt("acme-corp.example", &["\"v=spf1 -all\"", split.as_str()]);
    let res = verify_domain(&s, &s.owner, "acme").await;
    let v = expect(&res, StatusCode::OK);
    assert_eq!(v["verified"], true, "{v}");
    // The lookup: name and type, JSON accepted.
    let q = s.doh.seen().last().unwrap().clone();
    assert_eq!(q.query["name"], "acme-corp.example");
    assert_eq!(q.query["type"], "TXT");
    assert_eq!(q.header("accept"), "application/dns-json");
    assert_eq!(
        s.app
            .count("SELECT count(*) FROM org_audit WHERE action = 'domain.verified'"),
        1
    );

    // Another organisation claims the domain and publishes its own record:
    // one organisation at most proves it.
    let other = common::orgs::person(&s.app, "mallory@other.example").await;
    common::orgs::org(&s.app, &other, "other", "Other").await;
    let res = call(
        &s.app,
        "POST",
        "/api/orgs/other/domains",
        Some(j!({"domain": "acme-corp.example"})),
        other.c(),
    )
    .await;
    let claim = expect(&res, StatusCode::CREATED);
    let theirs = claim["record"]["value"].as_str().unwrap().to_owned();
    let theirs = format!("\"{theirs}\"");
    s.doh.set_txt("acme-corp.example", &[theirs.as_str()]);
    let res = verify_domain(&s, &other, "other").await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{}", text(&res));
    // A public mail provider cannot be claimed at all.
    let res = call(
        &s.app,
        "POST",
        "/api/orgs/other/domains",
        Some(j!({"domain": "gmail.com"})),
        other.c(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", text(&res));
}

#[tokio::test]
async fn home_realm_discovery_and_just_in_time_membership() {
    let s = org_setup("member").await;
    let token = s.txt.strip_prefix("lanyard-verification=").unwrap();
    let record = format!("\"lanyard-verification={token}\"");
    s.doh.set_txt("acme-corp.example", &[record.as_str()]);
    expect(&verify_domain(&s, &s.owner, "acme").await, StatusCode::OK);
    let app = &s.app;

    // The login page asks for the email first.
    let mut b = fresh(app).await;
    let page = text(&b.get("/login?return_to=%2Fsocial%2Faccounts").await);
    assert!(page.contains("/login/identify"), "{page}");
    // An address elsewhere: the password form, the email filled in.
    let res = b
        .post(
            "/login/identify",
            &[
                ("email", "someone@example.com"),
                ("return_to", "/social/accounts"),
            ],
        )
        .await;
    let page = text(&res);
    assert_eq!(res.status(), StatusCode::OK, "{page}");
    assert!(!page.contains("Continue with SSO"), "{page}");
    assert!(page.contains("type=\"password\""), "{page}");
    // An address at the proven domain, with or without an account: SSO.
    let res = b
        .post(
            "/login/identify",
            &[
                ("email", "Nina@ACME-corp.example"),
                ("return_to", "/social/accounts"),
            ],
        )
        .await;
    let page = text(&res);
    assert!(page.contains("Continue with SSO"), "{page}");
    let href = page
        .split("id=\"sso-continue\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    assert!(
        href.starts_with(&format!("/social/{}/start", s.conn_id)),
        "{href}"
    );

    // Continue with SSO: the organisation's provider; a new account that
    // joins Acme as a member.
    let res = b.get(&href).await;
    let loc = location(&res);
    let a = s
        .idp
        .code_for(&loc, &Person::new("acme-nina", "nina@acme-corp.example"));
    signed_in(&callback(&mut b, &s.conn_id, &a).await, "/social/accounts");
    let nina = me(app, &b).await;
    let role: String = app
        .db()
        .query_row(
            "SELECT role FROM memberships WHERE org_id = ?1 AND identity_id = ?2",
            [&s.org_id, &nina],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(role, "member");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM org_audit WHERE action = 'member.joined' AND target = '{nina}'"
        )),
        1
    );
    // Her ID token names the organisation's connection.
    let claims = id_token_claims(app, &mut b, &client(app, "Shop").await).await;
    federated(&claims, &s.conn_id);
    // Again: still one membership.
    let mut b2 = fresh(app).await;
    signed_in(
        &sign_in(
            &mut b2,
            &s.idp,
            &s.conn_id,
            &Person::new("acme-nina", "nina@acme-corp.example"),
        )
        .await,
        "/",
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM memberships WHERE identity_id = '{nina}'"
        )),
        1
    );

    // The owner's existing account: never linked without the password, even
    // though the address is at the proven domain.
    let mut b3 = fresh(app).await;
    let res = sign_in(
        &mut b3,
        &s.idp,
        &s.conn_id,
        &Person::new("acme-owner", "owner@acme-corp.example"),
    )
    .await;
    link_token(&res);
}

#[tokio::test]
async fn an_organisation_connection_can_make_admins_and_stops_without_its_grant() {
    let mut s = org_setup("admin").await;
    let mut b = fresh(&s.app).await;
    signed_in(
        &sign_in(
            &mut b,
            &s.idp,
            &s.conn_id,
            &Person::new("acme-ada", "ada@acme-corp.example"),
        )
        .await,
        "/",
    );
    let ada = me(&s.app, &b).await;
    let role: String = s
        .app
        .db()
        .query_row(
            "SELECT role FROM memberships WHERE org_id = ?1 AND identity_id = ?2",
            [&s.org_id, &ada],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(role, "admin");
    // The operator withdraws the grant: the secret is not sent any more.
    let overrides = [
        ("sso.acme-corp.example", s.idp.addr),
        ("cloudflare-dns.com", s.doh.addr),
    ];
    let vars = org_vars("");
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    restart(&mut s.app, &refs, &overrides).await;
    let before = s.idp.token_requests().len();
    let mut b = fresh(&s.app).await;
    let res = sign_in(
        &mut b,
        &s.idp,
        &s.conn_id,
        &Person::new("acme-bob", "bob@acme-corp.example"),
    )
    .await;
    assert!(res.status().is_server_error(), "{}", text(&res));
    assert!(
        text(&res).contains("org_secret_variables"),
        "{}",
        text(&res)
    );
    assert_eq!(s.idp.token_requests().len(), before, "no secret was sent");
    assert_eq!(
        s.app
            .count("SELECT count(*) FROM identities WHERE email = 'bob@acme-corp.example'"),
        0
    );
}
