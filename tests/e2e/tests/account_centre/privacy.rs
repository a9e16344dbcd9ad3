//! Account centre e2e tests: `privacy` — the export, erasure, the
//! last-owner refusal, the recent sign-in it needs (the host's clock moved
//! forward), and the terms at sign-up and after they change, through the
//! real components on the test host.

use http::StatusCode;
use serde_json::{Value, json as j};
use spin_test_host::{HostConfig, SpinHost, built_wasm_dir, repo_manifest};

use crate::common::orgs::*;
use crate::common::{App, ISSUER, header, json, text};

/// A client (not a b2b service) that may ask for refresh tokens.
async fn client(app: &App) -> (String, String) {
    register(
        app,
        j!({
            "client_name": "Shop",
            "redirect_uris": [REDIRECT],
            "scope": "openid profile email offline_access",
            "b2b": false,
        }),
    )
    .await
}

/// Where a string appears in the app's database: "table.column" names.
fn holding(app: &App, needle: &str) -> Vec<String> {
    let db = app.db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut found = Vec::new();
    for t in tables {
        let cols: Vec<String> = db
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .unwrap()
            .query_map([&t], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for c in cols {
            let n: i64 = db
                .query_row(
                    &format!("SELECT count(*) FROM {t} WHERE instr(CAST({c} AS TEXT), ?1) > 0"),
                    [needle],
                    |r| r.get(0),
                )
                .unwrap();
            if n > 0 {
                found.push(format!("{t}.{c}"));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_export_holds_everything_and_erasure_leaves_nothing() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    let bob = person(&app, "bob@example.com").await;
    let shop = client(&app).await;
    let mut b = browser(&app, &ada);
    let tokens = tokens(&app, &mut b, &shop, "openid email offline_access").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Ada made an organisation and handed it to Bob, who stays.
    org(&app, &ada, "acme", "Acme").await;
    let (_, invitation) = invite(&app, &ada, "acme", j!({"email": "bob@example.com"})).await;
    expect(&accept(&app, &invitation, bob.c()).await, StatusCode::OK);

    // The export, as JSON and as a download.
    let res = call(&app, "GET", "/api/account/export", None, ada.c()).await;
    let doc = expect(&res, StatusCode::OK);
    assert_eq!(doc["format"], "lanyard-export/1");
    assert_eq!(doc["identity"]["email"], "ada@example.com");
    assert_eq!(doc["identity"]["id"], ada.sub.as_str());
    assert_eq!(doc["credentials"]["password_set"], true);
    assert_eq!(doc["consents"][0]["client_id"], shop.0.as_str());
    assert_eq!(doc["refresh_tokens"][0]["client_id"], shop.0.as_str());
    assert!(!doc["sessions"].as_array().unwrap().is_empty());
    assert_eq!(doc["organisations"][0]["slug"], "acme");
    let body = doc.to_string();
    assert!(!body.contains("$argon2") && !body.contains("current_hash"));
    let res = b.get("/account/export").await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    assert_eq!(
        header(&res, "content-disposition"),
        "attachment; filename=\"lanyard-export.json\""
    );
    assert!(header(&res, "cache-control").contains("no-store"));
    assert_eq!(json(&res)["identity"]["email"], "ada@example.com");
    // Both downloads are recorded.
    let res = call(&app, "GET", "/api/account/export", None, ada.c()).await;
    let events = expect(&res, StatusCode::OK)["security_events"].clone();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "export")
            .count()
            >= 2
    );

    // Ada owns acme alone: refused, nothing changed.
    let res = call(
        &app,
        "POST",
        "/api/account/delete",
        Some(j!({"confirm": "ada@example.com"})),
        ada.c(),
    )
    .await;
    let p = problem(&res, StatusCode::CONFLICT);
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("Acme") && detail.contains("transfer ownership"),
        "{detail}"
    );
    expect(
        &call(&app, "GET", "/api/account/me", None, ada.c()).await,
        StatusCode::OK,
    );

    // Ownership to Bob; then a wrong confirmation changes nothing.
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/transfer",
        Some(j!({"sub": bob.sub})),
        ada.c(),
    )
    .await;
    assert!(res.status().is_success(), "{}", text(&res));
    let res = call(
        &app,
        "POST",
        "/api/account/delete",
        Some(j!({"confirm": "bob@example.com"})),
        ada.c(),
    )
    .await;
    problem(&res, StatusCode::BAD_REQUEST);
    // The page answers the same on its form.
    let res = b
        .post("/account/delete", &[("confirm", "bob@example.com")])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(text(&res).contains("type your email address exactly as shown"));
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM identities WHERE id = '{}'",
            ada.sub
        )),
        1
    );

    let res = call(
        &app,
        "POST",
        "/api/account/delete",
        Some(j!({"confirm": "Ada@Example.com"})),
        ada.c(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT, "{}", text(&res));
    assert!(header(&res, "set-cookie").contains("Max-Age=0"));

    // No access is left: the session cookie and the refresh token.
    let res = call(&app, "GET", "/api/account/me", None, ada.c()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = token(
        &app,
        &shop,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", text(&res));
    // No row anywhere holds her id or address.
    assert_eq!(holding(&app, &ada.sub), Vec::<String>::new());
    assert_eq!(holding(&app, "ada@example.com"), Vec::<String>::new());
    for table in ["identities", "sessions", "refresh_families", "consents"] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM {table} WHERE {} = '{}'",
                if table == "identities" {
                    "id"
                } else {
                    "identity_id"
                },
                ada.sub
            )),
            0,
            "{table}"
        );
    }
    // Bob keeps acme, and its log without her.
    let res = call(&app, "GET", "/api/orgs/acme/audit", None, bob.c()).await;
    let log = expect(&res, StatusCode::OK).to_string();
    assert!(log.contains("member.erased") && !log.contains(&ada.sub));
    // The address can sign up again, as a new person.
    let again = person(&app, "ada@example.com").await;
    assert_ne!(again.sub, ada.sub);
}

/// The app again over the same data, with other variables.
async fn restart(app: App, vars: &[(&str, &str)]) -> App {
    let App { host, data, issuer } = app;
    drop(host);
    let mut env: Vec<(String, String)> = [
        ("issuer", ISSUER),
        ("dev_mode", "true"),
        ("argon2_memory_kib", "8192"),
        ("argon2_iterations", "1"),
        ("admin_token", ADMIN),
    ]
    .iter()
    .chain(vars)
    .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.to_string()))
    .collect();
    env.dedup();
    let host = SpinHost::new(HostConfig {
        manifest: repo_manifest(),
        wasm_dir: Some(built_wasm_dir()),
        data_dir: data.path().to_owned(),
        env: env.into_iter().collect(),
        outbound_overrides: Default::default(),
        ..Default::default()
    })
    .await
    .unwrap();
    App { host, data, issuer }
}

#[tokio::test]
async fn terms_are_accepted_at_sign_up_and_again_after_they_change() {
    let app = App::dev(&[("admin_token", ADMIN), ("terms_version", "2026-01")]).await;
    // The form asks; the API refuses a sign-up without acceptance.
    let res = app.get("/signup").await;
    let page = text(&res);
    assert!(
        page.contains("name=\"accept_terms\"") && page.contains("2026-01"),
        "{page}"
    );
    let res = call(
        &app,
        "POST",
        "/api/account/signup",
        Some(j!({"email": "ada@example.com", "password": PASSWORD})),
        None,
    )
    .await;
    problem(&res, StatusCode::BAD_REQUEST);
    assert_eq!(app.count("SELECT count(*) FROM identities"), 0);
    let res = call(
        &app,
        "POST",
        "/api/account/signup",
        Some(j!({"email": "ada@example.com", "password": PASSWORD, "accept_terms": "true"})),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{}", text(&res));
    let token = mailed_token(&app, "ada@example.com").await;
    let res = call(
        &app,
        "POST",
        "/api/account/verify",
        Some(j!({"token": token})),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let ada = login(&app, "ada@example.com").await;
    let res = call(&app, "GET", "/api/account/consents", None, ada.c()).await;
    let got = expect(&res, StatusCode::OK);
    assert_eq!(got["terms_accepted"], "2026-01");
    assert_eq!(got["terms_needed"], false);
    assert_eq!(got["marketing"], false);
    // Marketing opt-in, with history.
    let res = call(
        &app,
        "POST",
        "/api/account/consents",
        Some(j!({"marketing": true})),
        ada.c(),
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["marketing"], true);
    let res = call(
        &app,
        "POST",
        "/api/account/consents",
        Some(j!({"marketing": "yes"})),
        ada.c(),
    )
    .await;
    problem(&res, StatusCode::BAD_REQUEST);
    let shop = client(&app).await;
    let p = pkce();
    let authorize = authorize_url(&shop.0, "openid", &p, "");

    // The operator publishes new terms: the next sign-in asks first.
    let app = restart(app, &[("terms_version", "2026-06")]).await;
    let mut b = browser(&app, &ada);
    // An application that asks for no interaction is told so.
    let res = b.get(&format!("{authorize}&prompt=none")).await;
    let location = header(&res, "location");
    assert!(
        location.starts_with(REDIRECT) && location.contains("error=interaction_required"),
        "{location}"
    );
    let res = b.get(&authorize).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    let to = header(&res, "location").to_owned();
    assert!(
        to.starts_with("/account/terms?return_to=%2Fauthorize"),
        "{to}"
    );
    let res = b.get("/").await;
    assert_eq!(header(&res, "location"), "/account/terms?return_to=/");
    let res = b.get(&to).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = text(&res);
    assert!(
        page.contains("2026-06") && page.contains("2026-01"),
        "{page}"
    );
    // Without the box: asked again.
    let fields = hidden_fields(&page);
    let mut refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let res = b.post("/account/terms", &refs).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    refs.push(("accept", "yes"));
    let res = b.post("/account/terms", &refs).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    let back = header(&res, "location").to_owned();
    assert!(back.starts_with("/authorize?"), "{back}");
    // On to the app (its consent first).
    let mut res = b.get(&back).await;
    if res.status() == StatusCode::OK {
        let page = text(&res);
        res = consent(&mut b, &page).await;
    }
    code_of(&res);
    let res = call(&app, "GET", "/api/account/consents", None, ada.c()).await;
    let got = expect(&res, StatusCode::OK);
    assert_eq!(got["terms_accepted"], "2026-06");
    let kinds: Vec<Value> = got["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| j!([r["kind"], r["value"]]))
        .collect();
    assert_eq!(
        kinds,
        [
            j!(["terms", "2026-01"]),
            j!(["marketing", "opt_in"]),
            j!(["terms", "2026-06"])
        ]
    );
}

#[tokio::test]
async fn erasure_needs_a_recent_sign_in() {
    let app = app().await;
    let ada = person(&app, "ada@example.com").await;
    // Still signed in six minutes later (the idle limit is longer), but the
    // sign-in is no longer recent.
    app.host.advance_clock(360);
    expect(
        &call(&app, "GET", "/api/account/me", None, ada.c()).await,
        StatusCode::OK,
    );
    let res = call(
        &app,
        "POST",
        "/api/account/delete",
        Some(j!({"confirm": "ada@example.com"})),
        ada.c(),
    )
    .await;
    let p = problem(&res, StatusCode::FORBIDDEN);
    assert_eq!(p["type"], "urn:lanyard:problem:recent-sign-in-required");
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
    // The page sends the person to confirm it is them, and back.
    let mut b = browser(&app, &ada);
    let res = b
        .post("/account/delete", &[("confirm", "ada@example.com")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    assert!(header(&res, "location").starts_with("/account/reauth?return_to="));
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
}
