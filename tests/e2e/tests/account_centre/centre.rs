//! Account centre e2e tests: `centre` — the profile, the email change, the
//! password change, sessions, connected apps and the activity list, through
//! the real profile component on the test host. Time is moved with the
//! host's guest clock (`advance_clock`) to test the recent-sign-in rule.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json as j};

use crate::common::orgs::*;
use crate::common::{App, Browser, header, json, text};

const NEW_PASSWORD: &str = "another seven words for the new one";

/// The account's row, as an operator would look at it.
fn account(app: &App, sub: &str) -> (String, i64, String) {
    app.db()
        .query_row(
            "SELECT email, email_verified, attributes FROM identities WHERE id = ?1",
            [sub],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

#[track_caller]
fn redirected_to(res: &Response<Bytes>, to: &str) {
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(res));
    assert_eq!(header(res, "location"), to);
}

/// The status of `/api/account/me` with a person's cookie: 200 while the
/// session lives.
async fn status(app: &App, p: &Person) -> StatusCode {
    call(app, "GET", "/api/account/me", None, p.c())
        .await
        .status()
}

fn event_kinds(events: &Value) -> Vec<String> {
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn profile_edits_meet_the_sign_up_rules() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    let mut b = browser(&app, &ada);

    let page = b.get("/account").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = text(&page);
    assert!(html.contains("ada@example.com") && html.contains("verified"));
    assert!(html.contains("value=\"Pat\""), "{html}");
    assert!(
        html.contains("href=\"/account/sessions\""),
        "the navigation"
    );

    // Too long (the default schema: an optional name of at most 200):
    // refused on the form, nothing saved.
    let before = account(&app, &ada.sub);
    let long = "x".repeat(201);
    let res = b.post("/account", &[("name", &long)]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        text(&res).contains("at most 200 characters"),
        "{}",
        text(&res)
    );
    let res = b.post("/account", &[("name", "Ada\u{7}")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(account(&app, &ada.sub), before);

    let res = b.post("/account", &[("name", "Ada Lovelace")]).await;
    redirected_to(&res, "/account?done=profile");
    let html = text(&b.get("/account?done=profile").await);
    assert!(html.contains("Your profile is saved."));
    assert!(html.contains("value=\"Ada Lovelace\""));

    // The API: the same rules, problem+json.
    let me = expect(
        &call(&app, "GET", "/api/account/profile", None, ada.c()).await,
        StatusCode::OK,
    );
    assert_eq!(me["attributes"]["name"], "Ada Lovelace");
    for bad in [
        j!({"attributes": {"name": "y".repeat(201)}}),
        j!({"attributes": {"email": "x@example.com"}}),
        j!({"attributes": {"name": 5}}),
        j!({"name": "no wrapper"}),
    ] {
        let res = call(&app, "POST", "/api/account/profile", Some(bad), ada.c()).await;
        problem(&res, StatusCode::BAD_REQUEST);
    }
    assert!(account(&app, &ada.sub).2.contains("Ada Lovelace"));
    let saved = expect(
        &call(
            &app,
            "POST",
            "/api/account/profile",
            Some(j!({"attributes": {"name": "Ada King"}})),
            ada.c(),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(saved["attributes"]["name"], "Ada King");
    // Without a session: nothing.
    let res = call(&app, "GET", "/api/account/profile", None, None).await;
    problem(&res, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count("SELECT count(*) FROM security_events WHERE kind = 'profile_changed'"),
        2
    );
}

#[tokio::test]
async fn the_new_email_replaces_the_old_only_through_the_link_sent_to_it() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    person(&app, "bob@example.com").await;
    let mut b = browser(&app, &ada);
    b.get("/account").await;

    // Asked: a link to the new address, and nothing changes before it.
    let res = b
        .post("/account/email", &[("email", "Ada@New.Example")])
        .await;
    redirected_to(&res, "/account?done=email");
    let link = app.mailed_link("ada@new.example").await;
    assert!(link.starts_with("/account/email/confirm?token="), "{link}");
    assert_eq!(account(&app, &ada.sub).0, "ada@example.com");
    let me = json(&call(&app, "GET", "/api/account/profile", None, ada.c()).await);
    assert_eq!(me["email"], "ada@example.com");

    // A taken address: the same answer, a note to that address, no link,
    // nothing changed.
    let changes = app.count("SELECT count(*) FROM email_changes");
    let res = b
        .post("/account/email", &[("email", "bob@example.com")])
        .await;
    redirected_to(&res, "/account?done=email");
    let note = &app.outbox("bob@example.com").await[0];
    assert!(note["link"].is_null(), "{note}");
    assert!(note["text"].as_str().unwrap().contains("already belongs"));
    assert_eq!(app.count("SELECT count(*) FROM email_changes"), changes);
    let res = call(
        &app,
        "POST",
        "/api/account/email",
        Some(j!({"email": "bob@example.com"})),
        ada.c(),
    )
    .await;
    let taken = expect(&res, StatusCode::ACCEPTED);
    let res = call(
        &app,
        "POST",
        "/api/account/email",
        Some(j!({"email": "free@example.com"})),
        ada.c(),
    )
    .await;
    let free = expect(&res, StatusCode::ACCEPTED);
    assert_eq!(taken["status"], free["status"]);
    assert_eq!(taken["detail"], free["detail"]);
    // Bad input: a clear error.
    let res = b
        .post("/account/email", &[("email", "not an address")])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(text(&res).contains("valid email address"));

    // The link, opened in another browser without a session: a GET shows
    // a button and changes nothing; the POST changes the address.
    let mut other = Browser::new(&app);
    let page = other.get(&link).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(text(&page).contains("ada@new.example"));
    assert_eq!(account(&app, &ada.sub).0, "ada@example.com");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let done = other
        .post("/account/email/confirm", &[("token", &token)])
        .await;
    assert_eq!(done.status(), StatusCode::OK, "{}", text(&done));
    assert!(text(&done).contains("Email changed"));
    let (email, verified, _) = account(&app, &ada.sub);
    assert_eq!((email.as_str(), verified), ("ada@new.example", 1));
    // The old address is told; the link works once; the other pending
    // change is void.
    let told = &app.outbox("ada@example.com").await[0];
    assert!(
        told["text"].as_str().unwrap().contains("ada@new.example"),
        "{told}"
    );
    let again = other
        .post("/account/email/confirm", &[("token", &token)])
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let free_link = app.mailed_link("free@example.com").await;
    assert_eq!(
        other.get(&free_link).await.status(),
        StatusCode::BAD_REQUEST
    );
    // The session goes on, and the new address signs in.
    let me = json(&call(&app, "GET", "/api/account/profile", None, ada.c()).await);
    assert_eq!(me["email"], "ada@new.example");
    login(&app, "ada@new.example").await;
    let events = json(&call(&app, "GET", "/api/account/events", None, ada.c()).await);
    assert!(event_kinds(&events).contains(&"email_changed".to_owned()));
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_a_recent_sign_in() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    let other = login(&app, "ada@example.com").await;
    let mut b = browser(&app, &ada);
    b.get("/account/password").await;
    let hash = || -> String {
        app.db()
            .query_row(
                "SELECT password_hash FROM identities WHERE id = ?1",
                [&ada.sub],
                |r| r.get(0),
            )
            .unwrap()
    };
    let before = hash();

    // A wrong current password: refused on the form, nothing changed.
    let res = b
        .post(
            "/account/password",
            &[
                ("current_password", "not my password at all"),
                ("new_password", NEW_PASSWORD),
                ("sign_out_others", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(text(&res).contains("current password is incorrect"));
    let res = call(
        &app,
        "POST",
        "/api/account/password",
        Some(j!({"current_password": "wrong wrong wrong", "new_password": NEW_PASSWORD})),
        ada.c(),
    )
    .await;
    problem(&res, StatusCode::UNAUTHORIZED);
    // A new password against the policy.
    let res = call(
        &app,
        "POST",
        "/api/account/password",
        Some(j!({"current_password": PASSWORD, "new_password": "password"})),
        ada.c(),
    )
    .await;
    problem(&res, StatusCode::BAD_REQUEST);
    assert_eq!(hash(), before);
    assert_eq!(
        call(&app, "GET", "/api/account/me", None, other.c())
            .await
            .status(),
        StatusCode::OK
    );

    // The right one: changed, and the other session has ended.
    let res = b
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("sign_out_others", "on"),
            ],
        )
        .await;
    redirected_to(&res, "/account/password?done=password");
    assert_ne!(hash(), before);
    assert_eq!(
        call(&app, "GET", "/api/account/me", None, other.c())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, "GET", "/api/account/me", None, ada.c())
            .await
            .status(),
        StatusCode::OK
    );

    // Five minutes later the sign-in is no longer recent: the API answers
    // 403 of its own type, the pages send the person to re-enter it.
    app.host.advance_clock(301);
    let res = call(
        &app,
        "POST",
        "/api/account/password",
        Some(j!({"current_password": NEW_PASSWORD, "new_password": PASSWORD})),
        ada.c(),
    )
    .await;
    let p = problem(&res, StatusCode::FORBIDDEN);
    assert_eq!(p["type"], "urn:lanyard:problem:recent-sign-in-required");
    let res = call(
        &app,
        "POST",
        "/api/account/email",
        Some(j!({"email": "new@example.com"})),
        ada.c(),
    )
    .await;
    let p = problem(&res, StatusCode::FORBIDDEN);
    assert_eq!(p["type"], "urn:lanyard:problem:recent-sign-in-required");
    let res = b
        .post("/account/email", &[("email", "new@example.com")])
        .await;
    redirected_to(&res, "/account/reauth?return_to=%2Faccount");
    let res = b
        .post(
            "/account/password",
            &[
                ("current_password", NEW_PASSWORD),
                ("new_password", PASSWORD),
            ],
        )
        .await;
    redirected_to(&res, "/account/reauth?return_to=%2Faccount%2Fpassword");
    assert_eq!(app.count("SELECT count(*) FROM email_changes"), 0);
    // The profile is not sensitive: it still saves.
    let res = b.post("/account", &[("name", "Ada")]).await;
    redirected_to(&res, "/account?done=profile");

    let events = json(&call(&app, "GET", "/api/account/events", None, ada.c()).await);
    let kinds = event_kinds(&events);
    assert!(kinds.contains(&"password_changed".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"sign_in".to_owned()), "{kinds:?}");
    let page = text(&b.get("/account/events").await);
    assert!(
        page.contains("Password changed") && page.contains("Signed in"),
        "{page}"
    );
}

#[tokio::test]
async fn sessions_are_listed_and_ended_from_another_device() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    let laptop = login(&app, "ada@example.com").await;
    let phone = login(&app, "ada@example.com").await;
    let mut b = browser(&app, &ada);

    let listed = expect(
        &call(&app, "GET", "/api/account/sessions", None, ada.c()).await,
        StatusCode::OK,
    );
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(
        sessions[0]["client_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1")
    );
    let page = text(&b.get("/account/sessions").await);
    assert!(
        page.contains("this session") && page.contains(" UTC"),
        "{page}"
    );

    // End the laptop's session on the page: its cookie stops working.
    let laptop_sid: String = {
        let me = json(&call(&app, "GET", "/api/account/sessions", None, laptop.c()).await);
        me["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == true)
            .unwrap()["sid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let res = b
        .post("/account/sessions/revoke", &[("sid", &laptop_sid)])
        .await;
    redirected_to(&res, "/account/sessions?done=session");
    assert_eq!(status(&app, &laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&app, &phone).await, StatusCode::OK);
    // Not one's own, or gone: not found.
    let res = call(
        &app,
        "DELETE",
        &format!("/api/account/sessions/{laptop_sid}"),
        None,
        ada.c(),
    )
    .await;
    problem(&res, StatusCode::NOT_FOUND);

    // Everyone else out, through the API.
    let res = call(
        &app,
        "POST",
        "/api/account/sessions/revoke-others",
        None,
        ada.c(),
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["ended"], 1);
    assert_eq!(status(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&app, &ada).await, StatusCode::OK);
    let events = json(&call(&app, "GET", "/api/account/events", None, ada.c()).await);
    assert!(event_kinds(&events).contains(&"session_revoked".to_owned()));
}

#[tokio::test]
async fn revoking_a_connected_app_ends_its_refresh_tokens() {
    let app = app().await;
    let client = register(
        &app,
        j!({"client_name": "Shop", "b2b": false, "scope": "openid profile email offline_access"}),
    )
    .await;
    let ada = person(&app, "ada@example.com").await;
    let mut b = browser(&app, &ada);
    let tokens = tokens(&app, &mut b, &client, "openid profile offline_access").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let apps = expect(
        &call(&app, "GET", "/api/account/apps", None, ada.c()).await,
        StatusCode::OK,
    );
    assert_eq!(apps["apps"][0]["client_id"], client.0.as_str());
    assert_eq!(apps["apps"][0]["name"], "Shop");
    assert!(
        apps["apps"][0]["scopes"]
            .as_array()
            .unwrap()
            .contains(&j!("offline_access"))
    );
    let page = text(&b.get("/account/apps").await);
    assert!(page.contains("Shop") && page.contains("offline_access"));

    // The refresh token works until the app is revoked on the page.
    let res = refresh(&app, &client, &refresh_token).await;
    let rotated = expect(&res, StatusCode::OK)["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = b
        .post("/account/apps/revoke", &[("client_id", &client.0)])
        .await;
    redirected_to(&res, "/account/apps?done=app");
    refused(&refresh(&app, &client, &rotated).await);
    assert_eq!(
        app.count("SELECT count(*) FROM consents"),
        0,
        "the consent is gone"
    );
    let res = call(
        &app,
        "DELETE",
        &format!("/api/account/apps/{}", client.0),
        None,
        ada.c(),
    )
    .await;
    problem(&res, StatusCode::NOT_FOUND);
    let events = json(&call(&app, "GET", "/api/account/events", None, ada.c()).await);
    let kinds = event_kinds(&events);
    assert!(
        kinds.contains(&"app_connected".to_owned()) && kinds.contains(&"app_revoked".to_owned()),
        "{kinds:?}"
    );

    // The sign-in methods: a password, no provider, no passkey.
    let methods = expect(
        &call(&app, "GET", "/api/account/methods", None, ada.c()).await,
        StatusCode::OK,
    );
    assert_eq!(methods["password"], true);
    assert_eq!(methods["passkeys"], 0);
    assert!(text(&b.get("/account/methods").await).contains("/social/accounts"));
}

#[tokio::test]
async fn an_account_without_a_password_sets_one() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    // As an account made through an upstream provider is: no password.
    app.db()
        .execute(
            "UPDATE identities SET password_hash = NULL WHERE id = ?1",
            [&ada.sub],
        )
        .unwrap();
    let mut b = browser(&app, &ada);
    let page = text(&b.get("/account/password").await);
    assert!(page.contains("Set a password") && !page.contains("current_password"));
    let res = b
        .post("/account/password", &[("new_password", "short")])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = b
        .post(
            "/account/password",
            &[("new_password", NEW_PASSWORD), ("sign_out_others", "on")],
        )
        .await;
    redirected_to(&res, "/account/password?done=password_set");
    let res = call(
        &app,
        "POST",
        "/api/account/login",
        Some(j!({"email": "ada@example.com", "password": NEW_PASSWORD})),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let page = text(&b.get("/account/events").await);
    assert!(page.contains("Password set"), "{page}");
}
