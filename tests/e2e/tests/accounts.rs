//! End-to-end tests of customer identities and password login (issue 3):
//! real requests through the test host to the real login component.

mod common;

use bytes::Bytes;
use common::{App, Browser, ISSUER, Mock, header, text};
use http::StatusCode;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

async fn sign_up(b: &mut Browser<'_>, email: &str, password: &str) -> http::Response<Bytes> {
    b.get("/signup").await;
    b.post(
        "/signup",
        &[
            ("email", email),
            ("password", password),
            ("name", "Ada Lovelace"),
        ],
    )
    .await
}

/// Signs up and verifies through the mailed link, as a person would.
async fn verified_account(app: &App, email: &str) {
    let mut b = Browser::new(app);
    assert_eq!(
        sign_up(&mut b, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    let link = app.mailed_link(email).await;
    let page = b.get(&link).await;
    assert_eq!(page.status(), StatusCode::OK, "{}", text(&page));
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let done = b.post("/verify", &[("token", &token)]).await;
    assert!(text(&done).contains("Email verified"), "{}", text(&done));
}

async fn log_in(b: &mut Browser<'_>, email: &str, password: &str) -> http::Response<Bytes> {
    b.post("/login", &[("email", email), ("password", password)])
        .await
}

#[tokio::test]
async fn the_whole_journey() {
    let app = App::dev(&[]).await;
    let mut b = Browser::new(&app);

    let form = b.get("/signup").await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(text(&form).contains("<label for=\"email\">Email</label>"));
    let res = sign_up(&mut b, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(text(&res).contains("Check your email"));

    // The verification mail is in the outbox, with a single-use link.
    let mails = app.outbox(EMAIL).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("Verify your email")
    );
    let link = app.mailed_link(EMAIL).await;
    assert!(link.starts_with("/verify?token="));

    // Not verified yet: the right password opens no session.
    let early = log_in(&mut b, EMAIL, PASSWORD).await;
    assert!(text(&early).contains("Verify your email first"));
    assert!(b.session().is_none());

    let token = link.split("token=").nth(1).unwrap().to_owned();
    assert!(text(&b.get(&link).await).contains("Confirm my email"));
    assert!(text(&b.post("/verify", &[("token", &token)]).await).contains("Email verified"));
    // The link works once.
    let again = b.post("/verify", &[("token", &token)]).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(text(&again).contains("already been used"));

    let res = log_in(&mut b, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), "/");
    let cookie = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-lanyard_session="))
        .unwrap()
        .clone();
    for attr in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Domain="));
    let session = b.session().unwrap();
    assert_eq!(session.len(), 43);

    let home = b.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    let body = text(&home);
    assert!(
        body.contains(EMAIL) && body.contains("Ada Lovelace") && body.contains("verified"),
        "{body}"
    );
    assert!(!body.contains(&session), "the session id is never shown");

    let out = b.post("/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::OK);
    assert!(text(&out).contains("You are signed out."));
    assert!(b.session().is_none(), "logout clears the cookie");
    // The old cookie no longer works.
    b.cookies.insert("__Host-lanyard_session".into(), session);
    let after = b.get("/").await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&after, "location"), "/login");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = App::dev(&[]).await;
    verified_account(&app, EMAIL).await;
    let mut b = Browser::new(&app);
    let wrong = log_in(&mut b, EMAIL, "not the password at all").await;
    let unknown = log_in(&mut b, "nobody@example.com", "not the password at all").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), wrong.status());
    // The form echoes the typed email; apart from that the pages are identical.
    let a = text(&wrong).replace(EMAIL, "EMAIL");
    let b2 = text(&unknown).replace("nobody@example.com", "EMAIL");
    assert_eq!(a, b2);
    assert!(a.contains("The email or password is incorrect."));
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_account_then_recover() {
    let app = App::dev(&[
        ("login_max_failures", "3"),
        ("login_backoff_seconds", "2"),
        ("login_window_seconds", "60"),
    ])
    .await;
    verified_account(&app, EMAIL).await;
    let mut b = Browser::new(&app);
    for _ in 0..3 {
        assert_eq!(
            log_in(&mut b, EMAIL, "wrong password one").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Now even the right password waits.
    let locked = log_in(&mut b, EMAIL, PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&locked, "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(text(&locked).contains("Try again in"));
    // From another address the account is still locked: it is per account.
    let mut other = Browser::from_addr(&app, "10.9.8.7:5000");
    assert_eq!(
        log_in(&mut other, EMAIL, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    tokio::time::sleep(std::time::Duration::from_secs(retry + 1)).await;
    assert_eq!(
        log_in(&mut b, EMAIL, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_client_address() {
    let app = App::dev(&[
        ("login_address_max_failures", "3"),
        ("login_backoff_seconds", "60"),
    ])
    .await;
    verified_account(&app, EMAIL).await;
    let mut attacker = Browser::from_addr(&app, "192.0.2.10:1234");
    for i in 0..3 {
        let res = log_in(
            &mut attacker,
            &format!("victim{i}@example.com"),
            "guess password",
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        log_in(&mut attacker, EMAIL, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Someone else, elsewhere, is not affected.
    let mut user = Browser::from_addr(&app, "198.51.100.20:4321");
    assert_eq!(
        log_in(&mut user, EMAIL, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn reset_ends_old_sessions_and_works_once() {
    let app = App::dev(&[]).await;
    verified_account(&app, EMAIL).await;
    let mut laptop = Browser::new(&app);
    let mut phone = Browser::from_addr(&app, "10.0.0.2:1000");
    assert_eq!(
        log_in(&mut laptop, EMAIL, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        log_in(&mut phone, EMAIL, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );

    let mut b = Browser::new(&app);
    b.get("/forgot").await;
    let sent = b.post("/forgot", &[("email", EMAIL)]).await;
    assert!(text(&sent).contains("Check your email"));
    let unknown = b.post("/forgot", &[("email", "nobody@example.com")]).await;
    assert_eq!(unknown.status(), sent.status());
    assert_eq!(
        text(&unknown).replace("nobody@example.com", "X"),
        text(&sent).replace(EMAIL, "X")
    );
    assert!(
        app.outbox("nobody@example.com").await[0]["subject"]
            .as_str()
            .unwrap()
            .contains("password reset")
    );

    let link = app.mailed_link(EMAIL).await;
    assert!(link.starts_with("/reset?token="));
    let token = link.split("token=").nth(1).unwrap().to_owned();
    assert!(text(&b.get(&link).await).contains("Choose a new password"));
    // A common password is refused on the form, and the link survives it.
    let weak = b
        .post("/reset", &[("token", &token), ("password", "password123")])
        .await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let new_password = "a brand new passphrase";
    let done = b
        .post("/reset", &[("token", &token), ("password", new_password)])
        .await;
    assert_eq!(done.status(), StatusCode::OK, "{}", text(&done));
    assert!(text(&done).contains("Password changed"));

    for browser in [&mut laptop, &mut phone] {
        let res = browser.get("/").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "old sessions are dead");
    }
    let reused = b
        .post(
            "/reset",
            &[("token", &token), ("password", "yet another passphrase")],
        )
        .await;
    assert_eq!(reused.status(), StatusCode::BAD_REQUEST);
    assert!(text(&reused).contains("already been used"));
    assert_eq!(
        log_in(&mut laptop, EMAIL, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in(&mut laptop, EMAIL, new_password).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_expired_reset_link_gives_a_clear_page() {
    let app = App::dev(&[]).await;
    verified_account(&app, EMAIL).await;
    let mut b = Browser::new(&app);
    b.post("/forgot", &[("email", EMAIL)]).await;
    let link = app.mailed_link(EMAIL).await;
    // An hour and a second pass.
    app.db().execute("UPDATE one_time_tokens SET expires_at = expires_at - 3601 WHERE purpose = 'reset_password'", []).unwrap();
    let page = b.get(&link).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(text(&page).contains("This link has expired"));
    assert!(header(&page, "content-type").starts_with("text/html"));
}

#[tokio::test]
async fn bad_sign_ups_get_clear_errors_and_leave_nothing_behind() {
    let app = App::dev(&[(
        "profile_schema",
        r#"[{"name":"name","required":true,"max_length":50}]"#,
    )])
    .await;
    let mut b = Browser::new(&app);
    b.get("/signup").await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    let long_name = "x".repeat(51);
    // (form fields, expected status, expected message)
    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("email", "not-an-email"),
                ("password", PASSWORD),
                ("name", "Ada"),
            ],
            StatusCode::BAD_REQUEST,
            "valid email",
        ),
        (
            vec![
                ("email", &long_email),
                ("password", PASSWORD),
                ("name", "Ada"),
            ],
            StatusCode::BAD_REQUEST,
            "valid email",
        ),
        (
            vec![("password", PASSWORD), ("name", "Ada")],
            StatusCode::BAD_REQUEST,
            "Enter your email",
        ),
        (
            vec![("email", EMAIL), ("name", "Ada")],
            StatusCode::BAD_REQUEST,
            "Choose a password",
        ),
        (
            vec![("email", EMAIL), ("password", "short"), ("name", "Ada")],
            StatusCode::BAD_REQUEST,
            "at least 8",
        ),
        (
            vec![
                ("email", EMAIL),
                ("password", "iloveyou123"),
                ("name", "Ada"),
            ],
            StatusCode::BAD_REQUEST,
            "most common passwords",
        ),
        (
            vec![("email", EMAIL), ("password", PASSWORD)],
            StatusCode::BAD_REQUEST,
            "Full name is required",
        ),
        (
            vec![
                ("email", EMAIL),
                ("password", PASSWORD),
                ("name", long_name.as_str()),
            ],
            StatusCode::BAD_REQUEST,
            "at most 50",
        ),
    ];
    for (fields, status, message) in cases {
        let res = b.post("/signup", &fields).await;
        assert_eq!(res.status(), status, "{fields:?}");
        assert!(text(&res).contains(message), "{fields:?}: {}", text(&res));
        assert!(
            text(&res).contains("role=\"alert\""),
            "errors are announced"
        );
    }
    // No CSRF token: 403.
    let res = b
        .post_raw(
            "/signup",
            common::form_body(&[("email", EMAIL), ("password", PASSWORD), ("name", "Ada")]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A token that is not the cookie's: 403.
    let res = b
        .post_raw(
            "/signup",
            common::form_body(&[
                ("csrf", "x"),
                ("email", EMAIL),
                ("password", PASSWORD),
                ("name", "Ada"),
            ]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Invalid UTF-8 and an oversized field: 400.
    let res = b
        .post_raw("/signup", Bytes::from_static(b"email=\xff\xfe&password=x"))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let huge = "y".repeat(5000);
    let res = b
        .post(
            "/signup",
            &[("email", EMAIL), ("password", PASSWORD), ("name", &huge)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    assert_eq!(
        app.count("SELECT count(*) FROM identities"),
        0,
        "no row was created"
    );
    assert!(app.outbox(EMAIL).await.is_empty(), "no mail was sent");
}

#[tokio::test]
async fn a_duplicate_sign_up_answers_the_same_and_mails_the_owner() {
    let app = App::dev(&[]).await;
    let mut b = Browser::new(&app);
    let first = sign_up(&mut b, EMAIL, PASSWORD).await;
    let second = sign_up(&mut b, "  ADA@example.com ", "another good passphrase").await;
    assert_eq!(first.status(), second.status());
    assert_eq!(text(&first), text(&second));
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
    let mails = app.outbox(EMAIL).await;
    assert_eq!(mails.len(), 2);
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap()
            .contains("already have")
    );
    assert!(mails[1]["subject"].as_str().unwrap().contains("Verify"));
}

#[tokio::test]
async fn tampered_unknown_and_expired_sessions_count_as_none() {
    let app = App::dev(&[("session_idle_seconds", "2"), ("session_max_seconds", "4")]).await;
    verified_account(&app, EMAIL).await;
    let mut b = Browser::new(&app);
    log_in(&mut b, EMAIL, PASSWORD).await;
    let real = b.session().unwrap();
    assert_eq!(b.get("/").await.status(), StatusCode::OK);

    let mut tampered = real.clone();
    tampered.replace_range(0..1, if real.starts_with('A') { "B" } else { "A" });
    for fake in [tampered, "x".repeat(43), "".into(), "../../etc".into()] {
        let mut other = Browser::new(&app);
        other
            .cookies
            .insert("__Host-lanyard_session".into(), fake.clone());
        let res = other.get("/").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{fake}");
        assert_eq!(header(&res, "location"), "/login");
    }

    // Idle: unused for longer than session_idle_seconds.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(b.get("/").await.status(), StatusCode::SEE_OTHER);

    // Absolute: used every second, still ends after session_max_seconds.
    log_in(&mut b, EMAIL, PASSWORD).await;
    let mut alive = 0;
    for _ in 0..6 {
        if b.get("/").await.status() == StatusCode::OK {
            alive += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    }
    assert!((2..=5).contains(&alive), "{alive}");
    assert_eq!(b.get("/").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn mail_api_failure_shows_an_error_and_keeps_the_account() {
    let mock = Mock::start(500).await;
    let app = App::start(
        &[
            ("issuer", ISSUER),
            ("argon2_memory_kib", "8192"),
            ("argon2_iterations", "1"),
            ("mail_api_token", "re_test_token"),
            ("mail_from", "Lanyard <id@example.test>"),
        ],
        &[("api.resend.com", mock.addr)],
    )
    .await;
    let mut b = Browser::new(&app);
    let res = sign_up(&mut b, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(&res).contains("could not send the email"));
    assert_eq!(
        app.count("SELECT count(*) FROM identities"),
        1,
        "the account is still there"
    );

    mock.set_status(200);
    b.get("/verify/resend").await;
    let res = b.post("/verify/resend", &[("email", EMAIL)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let requests = mock.requests.lock().unwrap().clone();
    let (parts, _) = requests.last().unwrap();
    assert_eq!(parts.uri.path(), "/emails");
    assert_eq!(parts.headers["authorization"], "Bearer re_test_token");
    let body = mock.bodies().pop().unwrap();
    assert_eq!(body["to"], EMAIL);
    assert_eq!(body["from"], "Lanyard <id@example.test>");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains(&format!("{ISSUER}/verify?token="))
    );
    // Outside dev_mode there is no outbox.
    assert_eq!(app.get("/dev/outbox").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_are_accessible_and_locked_down() {
    let app = App::dev(&[("product_name", "Acme ID"), ("accent_color", "#112233")]).await;
    for path in ["/signup", "/login", "/forgot", "/verify/resend"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let body = text(&res);
        assert!(
            body.contains("<html lang=\"en\">") && body.contains("name=\"viewport\""),
            "{path}"
        );
        assert!(body.contains("Acme ID"), "{path}: branded");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}: nothing loaded from elsewhere"
        );
        // Every input has a label.
        for id in body
            .split("<input id=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
        {
            assert!(
                body.contains(&format!("<label for=\"{id}\"")),
                "{path}: #{id} has no label"
            );
        }
        assert!(header(&res, "content-security-policy").contains("default-src 'none'"));
        assert_eq!(header(&res, "x-frame-options"), "DENY");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer");
        assert!(header(&res, "set-cookie").starts_with("__Host-lanyard_csrf="));
    }
    assert!(text(&app.get("/static/theme.css").await).contains("#112233"));
    // Signed out, the landing page sends you to sign in.
    let res = app.get("/").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), "/login");
}

/// `POST /api/account/password/forgot` as a script would send it, claiming
/// to come from `claimed` (a header anyone can send) over a connection from
/// `real`.
async fn forgot_from(app: &App, email: &str, claimed: Option<&str>, real: &str) -> StatusCode {
    let mut req = http::Request::post("/api/account/password/forgot")
        .header("content-type", "application/json")
        .header("origin", ISSUER);
    if let Some(c) = claimed {
        req = req.header("spin-client-addr", c);
    }
    let body = Bytes::from(format!(r#"{{"email":"{email}"}}"#));
    app.send_from(req.body(body).unwrap(), real).await.status()
}

#[tokio::test]
async fn a_spoofed_client_address_does_not_escape_the_limits() {
    let app = App::dev(&[("login_address_max_failures", "10")]).await;
    // A new spin-client-addr on every request, from one real address: Spin's
    // own value comes last, and that one counts.
    let mut statuses = Vec::new();
    for i in 0..14 {
        let claimed = format!("198.51.100.{i}:1");
        let email = format!("victim{i}@example.com");
        statuses.push(forgot_from(&app, &email, Some(&claimed), "203.0.113.9:5000").await);
    }
    assert_eq!(
        statuses,
        [
            vec![StatusCode::ACCEPTED; 10],
            vec![StatusCode::TOO_MANY_REQUESTS; 4]
        ]
        .concat()
    );
    // Another real address is not affected by any of it.
    assert_eq!(
        forgot_from(&app, "someone@example.com", None, "192.0.2.77:1").await,
        StatusCode::ACCEPTED
    );

    // One inbox gets at most `mail_recipient_max` (5) mails, however many
    // addresses ask.
    let mut sent = 0;
    for i in 0..8 {
        let real = format!("192.0.2.{}:4000", 100 + i);
        if forgot_from(&app, EMAIL, None, &real).await == StatusCode::ACCEPTED {
            sent += 1;
        }
    }
    assert_eq!(sent, 5);
    assert_eq!(app.outbox(EMAIL).await.len(), 5);

    // IPv6 addresses count per /64: walking through one's own prefix does not help.
    let app = App::dev(&[("login_address_max_failures", "3")]).await;
    let mut statuses = Vec::new();
    for i in 1..=5 {
        let real = format!("[2001:db8:5:6::{i}]:443");
        statuses.push(forgot_from(&app, &format!("v{i}@example.com"), None, &real).await);
    }
    assert_eq!(
        statuses,
        [
            vec![StatusCode::ACCEPTED; 3],
            vec![StatusCode::TOO_MANY_REQUESTS; 2]
        ]
        .concat()
    );
}

#[tokio::test]
async fn behind_a_proxy_the_configured_hop_is_the_client() {
    let app = App::dev(&[
        ("login_address_max_failures", "2"),
        ("client_address_header", "x-forwarded-for"),
    ])
    .await;
    let forgot = |xff: &str, email: &str| {
        http::Request::post("/api/account/password/forgot")
            .header("content-type", "application/json")
            .header("x-forwarded-for", xff)
            .body(Bytes::from(format!(r#"{{"email":"{email}"}}"#)))
            .unwrap()
    };
    // Every request comes through the proxy at 10.0.0.1; the proxy appends
    // the client it saw. What the client wrote to the left does not count.
    let mut statuses = Vec::new();
    for i in 0..3 {
        let xff = format!("198.51.100.{i}, 203.0.113.50");
        let res = app
            .send_from(forgot(&xff, &format!("a{i}@example.com")), "10.0.0.1:3000")
            .await;
        statuses.push(res.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::ACCEPTED,
            StatusCode::ACCEPTED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // Another client of the same proxy has its own budget.
    let res = app
        .send_from(forgot("203.0.113.51", "b@example.com"), "10.0.0.1:3000")
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_account_limit() {
    let app = std::sync::Arc::new(App::dev(&[]).await);
    verified_account(&app, EMAIL).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let app = app.clone();
        tasks.spawn(async move {
            let req = http::Request::post("/api/account/login")
                .header("content-type", "application/json")
                .body(Bytes::from(format!(
                    r#"{{"email":"{EMAIL}","password":"wrong guess number {i}"}}"#
                )))
                .unwrap();
            app.send(req).await.status()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    let count = |s: StatusCode| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(
        count(StatusCode::UNAUTHORIZED),
        5,
        "login_max_failures is 5"
    );
    assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), 95);
}

#[tokio::test]
async fn resending_verification_looks_the_same_for_every_address() {
    let mock = Mock::start(200).await;
    let app = App::start(
        &[
            ("issuer", ISSUER),
            ("argon2_memory_kib", "8192"),
            ("argon2_iterations", "1"),
            ("mail_api_token", "re_test_token"),
        ],
        &[("api.resend.com", mock.addr)],
    )
    .await;
    let mut b = Browser::new(&app);
    assert_eq!(
        sign_up(&mut b, EMAIL, PASSWORD).await.status(),
        StatusCode::OK
    );
    let resend = |email: &str| {
        http::Request::post("/api/account/verify/resend")
            .header("content-type", "application/json")
            .body(Bytes::from(format!(r#"{{"email":"{email}"}}"#)))
            .unwrap()
    };
    let waiting = app.send(resend(EMAIL)).await;
    let unknown = app.send(resend("nobody@example.com")).await;
    assert_eq!(waiting.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), waiting.status());
    assert_eq!(unknown.body(), waiting.body());
    // Both did the same work: one mail each.
    let to: Vec<_> = mock.bodies().iter().map(|b| b["to"].clone()).collect();
    assert_eq!(to[1..], [EMAIL, "nobody@example.com"]);
    // With the mail API down, both fail alike: nothing tells them apart.
    mock.set_status(500);
    let waiting = app.send(resend(EMAIL)).await;
    let unknown = app.send(resend("nobody@example.com")).await;
    assert_eq!(waiting.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unknown.status(), waiting.status());
    assert_eq!(unknown.body(), waiting.body());
}

#[tokio::test]
async fn the_demo_app_exists_only_in_dev_mode() {
    let app = App::start(
        &[
            ("issuer", ISSUER),
            (
                "signing_key",
                &lanyard::oidc::keys::generate(lanyard::oidc::keys::Alg::Es256)
                    .unwrap()
                    .0,
            ),
        ],
        &[],
    )
    .await;
    for path in ["/demo", "/demo/login", "/demo/callback?code=x&state=y"] {
        assert_eq!(
            app.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let kv = rusqlite::Connection::open(app.data.path().join("sqlite_key_value.db")).unwrap();
    let rows: i64 = kv
        .query_row("SELECT count(*) FROM spin_key_value", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "nothing was written");
}

#[tokio::test]
async fn the_demo_app_keeps_its_own_cookies_and_refuses_repeated_parameters() {
    let app = App::dev(&[]).await;
    let mut b = Browser::new(&app);
    let res = b.get("/demo/login").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        header(&res, "location").starts_with(&format!("{ISSUER}/authorize?")),
        "{res:?}"
    );
    // Secure and `__Host-` prefixed like Lanyard's, and never one of Lanyard's names.
    let set = header(&res, "set-cookie");
    assert!(set.starts_with("__Host-demo_state="), "{set}");
    assert!(
        set.contains("; Path=/;") && set.contains("; Secure"),
        "{set}"
    );
    let state = b.cookies["__Host-demo_state"].clone();

    let res = b
        .get(&format!(
            "/demo/callback?state={state}&state={state}&iss={}&code=x",
            common::urlencode(ISSUER)
        ))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(text(&res).contains("is repeated"), "{}", text(&res));
    let res = b
        .get(&format!(
            "/demo/callback?state={state}&iss=https%3A%2F%2Fother.example&code=x"
        ))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(text(&res).contains("another issuer"), "{}", text(&res));
}
