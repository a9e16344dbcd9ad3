//! Account centre e2e tests: `passkeys` — adding a passkey, passwordless
//! sign-in, the second factor after a password, rename, delete and re-entry,
//! through the real components on the test host, answered by the same
//! software authenticator as the domain's unit tests.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json as j};

use crate::common::orgs::*;
use crate::common::{App, Browser, ISSUER, header, json, text};

#[path = "../../../../shared/src/mfa/passkey_authenticator.rs"]
mod authenticator;
use authenticator::Authenticator;

fn key(seed: u8) -> Authenticator {
    Authenticator::new(seed, "id.example.test", ISSUER)
}

/// A ceremony's options from `path` (`{}` posted; 200 expected).
async fn options(app: &App, path: &str, cookie: Option<&str>) -> Value {
    expect(
        &call(app, "POST", path, Some(j!({})), cookie).await,
        StatusCode::OK,
    )
}

/// Adds a passkey named `name` to `p`'s account.
async fn add(app: &App, p: &Person, k: &mut Authenticator, name: &str) -> Value {
    let started = options(app, "/api/account/passkeys/register/options", p.c()).await;
    let credential = k.register(&started);
    let res = call(
        app,
        "POST",
        "/api/account/passkeys/register",
        Some(j!({"handle": started["handle"], "name": name, "credential": credential})),
        p.c(),
    )
    .await;
    expect(&res, StatusCode::CREATED)["passkey"].clone()
}

/// A passwordless sign-in: the options, the authenticator's answer and the
/// finish.
async fn passkey_sign_in(app: &App, k: &mut Authenticator, return_to: &str) -> Response<Bytes> {
    let started = options(app, "/login/passkey/options", None).await;
    let credential = k.assert(&started);
    call(
        app,
        "POST",
        "/login/passkey",
        Some(j!({"handle": started["handle"], "credential": credential, "return_to": return_to})),
        None,
    )
    .await
}

fn amr_of(app: &App, sub: &str) -> Vec<String> {
    let db = app.db();
    let mut st = db
        .prepare("SELECT amr FROM sessions WHERE identity_id = ?1 ORDER BY created_at, rowid")
        .unwrap();
    st.query_map([sub], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_passkey_added_in_the_account_centre_signs_in_without_a_password() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    let list = expect(
        &call(&app, "GET", "/api/account/passkeys", None, ada.c()).await,
        StatusCode::OK,
    );
    assert_eq!(list["passkeys"], j!([]));

    // The options ask for a discoverable, user-verified credential.
    let started = options(&app, "/api/account/passkeys/register/options", ada.c()).await;
    let sel = &started["publicKey"]["authenticatorSelection"];
    assert_eq!(
        (
            sel["residentKey"].as_str(),
            sel["requireResidentKey"].as_bool()
        ),
        (Some("required"), Some(true))
    );
    assert_eq!(started["publicKey"]["rp"]["id"], "id.example.test");
    let mut k = key(1);
    let credential = k.register(&started);
    // A bad name is refused before the ceremony is used; then the right one.
    for (body, status) in [
        (
            j!({"handle": started["handle"], "name": "x".repeat(65), "credential": credential}),
            StatusCode::BAD_REQUEST,
        ),
        (
            j!({"handle": started["handle"], "name": "Laptop", "credential": {"id": 1}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            j!({"handle": "nope", "name": "Laptop", "credential": credential}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = call(
            &app,
            "POST",
            "/api/account/passkeys/register",
            Some(body),
            ada.c(),
        )
        .await;
        problem(&res, status);
    }
    assert_eq!(app.count("SELECT count(*) FROM passkeys"), 0);
    let res = call(
        &app,
        "POST",
        "/api/account/passkeys/register",
        Some(j!({"handle": started["handle"], "name": "Laptop", "credential": credential})),
        ada.c(),
    )
    .await;
    let added = expect(&res, StatusCode::CREATED);
    assert_eq!(added["passkey"]["name"], "Laptop");
    // The handle worked once.
    let again = call(
        &app,
        "POST",
        "/api/account/passkeys/register",
        Some(j!({"handle": started["handle"], "name": "Laptop", "credential": credential})),
        ada.c(),
    )
    .await;
    problem(&again, StatusCode::BAD_REQUEST);

    // The page lists it, with its script.
    let mut b = Browser::new(&app);
    b.cookies.insert(
        "__Host-lanyard_session".into(),
        ada.cookie.split_once('=').unwrap().1.into(),
    );
    let page = b.get("/account/passkeys").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = text(&page);
    assert!(
        html.contains("Laptop") && html.contains("/static/js/passkeys.js"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "no inline script");
    let js = app.get("/static/js/passkeys.js").await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(header(&js, "content-type").starts_with("text/javascript"));

    // "Sign in with a passkey" on the login page, then the sign-in itself.
    let login = text(&app.get("/login").await);
    assert!(login.contains("id=\"passkey-sign-in\"") && login.contains("/static/js/passkeys.js"));
    let res = passkey_sign_in(&app, &mut k, "/account").await;
    assert_eq!(json(&res)["redirect"], "/account", "{}", text(&res));
    let cookie = session_cookie(&res);
    let me = expect(
        &call(&app, "GET", "/api/account/me", None, Some(&cookie)).await,
        StatusCode::OK,
    );
    assert_eq!(me["sub"], ada.sub.as_str());
    assert_eq!(amr_of(&app, &ada.sub).last().unwrap(), "hwk mfa");
    let last_used: Option<i64> = app
        .db()
        .query_row("SELECT last_used_at FROM passkeys", [], |r| r.get(0))
        .unwrap();
    assert!(last_used.is_some());
    // A return_to off this site goes home instead.
    let res = passkey_sign_in(&app, &mut k, "//evil.example").await;
    assert_eq!(json(&res)["redirect"], "/");

    // A replayed answer: its state is gone; an old counter on a new state: refused.
    let started = options(&app, "/login/passkey/options", None).await;
    let old = k.assert_with(&started, 1, k.user_handle.clone().as_deref());
    let res = call(
        &app,
        "POST",
        "/login/passkey",
        Some(j!({"handle": started["handle"], "credential": old})),
        None,
    )
    .await;
    problem(&res, StatusCode::UNAUTHORIZED);
    let res = call(
        &app,
        "POST",
        "/login/passkey",
        Some(j!({"handle": started["handle"], "credential": old})),
        None,
    )
    .await;
    problem(&res, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.count("SELECT count(*) FROM security_events WHERE kind = 'sign_in_failed'"),
        1
    );
    assert!(app.count("SELECT count(*) FROM security_events WHERE kind = 'mfa_added'") == 1);
}

#[tokio::test]
async fn the_passkey_endpoints_take_json_from_this_origin_only() {
    let app = app().await;
    for path in [
        "/login/passkey/options",
        "/login/passkey",
        "/login/mfa/passkey/options",
        "/login/mfa/passkey",
    ] {
        let res = app.get(path).await;
        problem(&res, StatusCode::METHOD_NOT_ALLOWED);
        let form = http::Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from_static(b"a=b"))
            .unwrap();
        problem(&app.send(form).await, StatusCode::BAD_REQUEST);
        let other = http::Request::post(path)
            .header("content-type", "application/json")
            .header("origin", "https://evil.example")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        problem(&app.send(other).await, StatusCode::FORBIDDEN);
    }
    // No pending sign-in: no second factor to give.
    let res = call(
        &app,
        "POST",
        "/login/mfa/passkey/options",
        Some(j!({})),
        None,
    )
    .await;
    problem(&res, StatusCode::UNAUTHORIZED);
    // Unknown fields and a missing handle are refused.
    let res = call(
        &app,
        "POST",
        "/login/passkey",
        Some(j!({"credential": {}})),
        None,
    )
    .await;
    problem(&res, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_passkey_is_the_second_factor_after_the_password() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    let mut k = key(2);
    add(&app, &ada, &mut k, "Phone").await;

    // The password alone no longer signs in: the second-factor step.
    let mut b = Browser::new(&app);
    let res = b
        .post(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("return_to", "/account/passkeys"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    assert!(
        header(&res, "location").starts_with("/login/mfa"),
        "{}",
        header(&res, "location")
    );
    assert!(b.session().is_none());
    let mfa_page = text(&b.get(header(&res, "location")).await);
    assert!(
        mfa_page.contains("id=\"passkey-second-factor\""),
        "{mfa_page}"
    );
    let cookies: String = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");

    let started = options(&app, "/login/mfa/passkey/options", Some(&cookies)).await;
    assert_eq!(
        started["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Another person's passkey is not Ada's second factor.
    let bob = person(&app, "bob@example.com").await;
    let mut bobs = key(3);
    add(&app, &bob, &mut bobs, "Bob's").await;
    let wrong = bobs.assert(&started);
    let res = call(
        &app,
        "POST",
        "/login/mfa/passkey",
        Some(j!({"handle": started["handle"], "credential": wrong})),
        Some(&cookies),
    )
    .await;
    problem(&res, StatusCode::UNAUTHORIZED);

    let started = options(&app, "/login/mfa/passkey/options", Some(&cookies)).await;
    let credential = k.assert(&started);
    let res = call(
        &app,
        "POST",
        "/login/mfa/passkey",
        Some(j!({"handle": started["handle"], "credential": credential})),
        Some(&cookies),
    )
    .await;
    assert_eq!(
        expect(&res, StatusCode::OK)["redirect"],
        "/account/passkeys"
    );
    let cookie = session_cookie(&res);
    let me = expect(
        &call(&app, "GET", "/api/account/me", None, Some(&cookie)).await,
        StatusCode::OK,
    );
    assert_eq!(me["sub"], ada.sub.as_str());
    assert_eq!(amr_of(&app, &ada.sub).last().unwrap(), "pwd hwk mfa");
    // The pending sign-in is spent.
    let res = call(
        &app,
        "POST",
        "/login/mfa/passkey/options",
        Some(j!({})),
        Some(&cookies),
    )
    .await;
    problem(&res, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rename_delete_and_adding_need_what_they_need() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    let bob = person(&app, "bob@example.com").await;
    let mut k = key(4);
    let added = add(&app, &ada, &mut k, "Laptop").await;
    let id = added["id"].as_str().unwrap().to_owned();
    let path = format!("/api/account/passkeys/{id}");

    // Rename: validated, only one's own.
    let res = call(
        &app,
        "PATCH",
        &path,
        Some(j!({"name": "Work laptop"})),
        ada.c(),
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["name"], "Work laptop");
    for bad in [
        j!({"name": "a\u{1}b"}),
        j!({"name": "y".repeat(65)}),
        j!({"label": "x"}),
    ] {
        problem(
            &call(&app, "PATCH", &path, Some(bad), ada.c()).await,
            StatusCode::BAD_REQUEST,
        );
    }
    problem(
        &call(&app, "PATCH", &path, Some(j!({"name": "Mine"})), bob.c()).await,
        StatusCode::NOT_FOUND,
    );
    problem(
        &call(&app, "DELETE", &path, None, bob.c()).await,
        StatusCode::NOT_FOUND,
    );
    let name: String = app
        .db()
        .query_row("SELECT name FROM passkeys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "Work laptop");

    // Five minutes on: adding and deleting need the password or a passkey again.
    app.host.advance_clock(301);
    let res = call(
        &app,
        "POST",
        "/api/account/passkeys/register/options",
        Some(j!({})),
        ada.c(),
    )
    .await;
    assert_eq!(
        problem(&res, StatusCode::FORBIDDEN)["type"],
        "urn:lanyard:problem:recent-sign-in-required"
    );
    let res = call(&app, "DELETE", &path, None, ada.c()).await;
    problem(&res, StatusCode::FORBIDDEN);
    let mut b = Browser::new(&app);
    b.cookies.insert(
        "__Host-lanyard_session".into(),
        ada.cookie.split_once('=').unwrap().1.into(),
    );
    b.get("/account/passkeys").await;
    let res = b.post("/account/passkeys/delete", &[("id", &id)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&res, "location"),
        "/account/reauth?return_to=%2Faccount%2Fpasskeys"
    );
    assert_eq!(app.count("SELECT count(*) FROM passkeys"), 1);

    // Re-entry with the passkey (offered on the page), then the delete goes through.
    let reauth = text(
        &b.get("/account/reauth?return_to=%2Faccount%2Fpasskeys")
            .await,
    );
    assert!(reauth.contains("id=\"passkey-reauth\""), "{reauth}");
    let started = options(&app, "/api/account/passkeys/reauth/options", ada.c()).await;
    let credential = k.assert(&started);
    let res = call(
        &app,
        "POST",
        "/api/account/passkeys/reauth",
        Some(j!({"handle": started["handle"], "credential": credential, "return_to": "/account/passkeys"})),
        ada.c(),
    )
    .await;
    assert_eq!(
        expect(&res, StatusCode::OK)["redirect"],
        "/account/passkeys"
    );
    // The session has now used a passkey beside the password: two factors,
    // which an application asking for acr mfa accepts (the step-up page
    // offers this re-entry).
    let me = expect(
        &call(&app, "GET", "/api/account/me", None, ada.c()).await,
        StatusCode::OK,
    );
    assert_eq!(me["amr"], j!(["pwd", "hwk", "mfa"]));
    let res = b.post("/account/passkeys/delete", &[("id", &id)]).await;
    assert_eq!(
        header(&res, "location"),
        "/account/passkeys?done=deleted",
        "{}",
        text(&res)
    );
    assert_eq!(app.count("SELECT count(*) FROM passkeys"), 0);
    assert!(
        text(&b.get("/account/passkeys?done=deleted").await).contains("The passkey is deleted.")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM security_events WHERE kind = 'mfa_removed'"),
        1
    );
    // Gone: it signs in no more.
    let res = passkey_sign_in(&app, &mut k, "/").await;
    problem(&res, StatusCode::UNAUTHORIZED);
}
