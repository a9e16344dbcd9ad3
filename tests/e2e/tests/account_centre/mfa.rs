//! Account centre e2e tests: `mfa` — an authenticator app (TOTP) set up
//! and confirmed, sign-in with a password and a second factor, recovery
//! codes, the refusals (a replayed code, a used recovery code, wrong codes
//! against the limit, no recent sign-in), step-up through `acr_values`, and
//! `require_mfa`. Codes are computed here from the secret Lanyard shows,
//! with `totp-rs`, at the guest's clock (moved with `advance_clock`).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::json as j;

use crate::common::orgs::*;
use crate::common::{App, Browser, ISSUER, header, json, text, urlencode};

const RECENT_TYPE: &str = "urn:lanyard:problem:recent-sign-in-required";

/// The app, with a clock offset kept beside it (the host's guest clock
/// moves only forward, by `advance`).
struct Clocked {
    app: App,
    offset: AtomicU64,
}

impl Clocked {
    async fn start(extra: &[(&str, &str)]) -> Clocked {
        let mut vars = vec![("admin_token", ADMIN)];
        vars.extend_from_slice(extra);
        Clocked {
            app: App::dev(&vars).await,
            offset: AtomicU64::new(0),
        }
    }

    fn advance(&self, seconds: u64) {
        self.app.host.advance_clock(seconds);
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }

    /// The guest's time now.
    fn now(&self) -> u64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        wall + self.offset.load(Ordering::SeqCst)
    }

    /// The code of `secret` (base32, as shown) at the guest's time.
    fn code(&self, secret: &str) -> String {
        code_at(secret, self.now())
    }

    /// Moves to the start of a fresh 30-second step, so that the next code
    /// is not one already used and does not change while the test sends it.
    fn next_step(&self) {
        let now = self.now();
        self.advance(30 - now % 30);
    }
}

/// The TOTP code (SHA-1, 6 digits, 30 s) of a base32 secret at `time`.
pub fn code_at(secret: &str, time: u64) -> String {
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("a base32 secret");
    let totp = totp_rs::Builder::new()
        .with_secret(<[u8; 20]>::try_from(bytes).expect("160 bits"))
        .build()
        .unwrap();
    totp.generate(time).to_string()
}

/// Sets up an authenticator app by the API; its secret and the recovery
/// codes made with it.
async fn enrol(c: &Clocked, p: &Person) -> (String, Vec<String>) {
    let app = &c.app;
    let started = expect(
        &call(app, "POST", "/api/account/mfa/totp", None, p.c()).await,
        StatusCode::OK,
    );
    let secret = started["secret"].as_str().unwrap().to_owned();
    c.next_step();
    let confirmed = expect(
        &call(
            app,
            "POST",
            "/api/account/mfa/totp/confirm",
            Some(j!({"code": c.code(&secret)})),
            p.c(),
        )
        .await,
        StatusCode::OK,
    );
    let codes = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// The password step by the API: the pending cookie it sets.
async fn password_step(app: &App, email: &str) -> String {
    let res = call(
        app,
        "POST",
        "/api/account/login",
        Some(j!({"email": email, "password": PASSWORD})),
        None,
    )
    .await;
    assert_eq!(
        expect(&res, StatusCode::OK)["status"],
        "second_factor_required"
    );
    assert!(
        !header(&res, "set-cookie").starts_with("__Host-lanyard_session="),
        "no session before the second factor"
    );
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("__Host-lanyard_mfa="))
        .expect("the pending cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn second_step(app: &App, pending: &str, code: &str) -> Response<Bytes> {
    call(
        app,
        "POST",
        "/api/account/login/mfa",
        Some(j!({"code": code})),
        Some(pending),
    )
    .await
}

fn count(app: &App, kind: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM security_events WHERE kind = '{kind}'"
    ))
}

#[tokio::test]
async fn an_authenticator_app_is_a_second_factor_and_each_code_works_once() {
    let c = Clocked::start(&[("login_max_failures", "3")]).await;
    let app = &c.app;
    let ada = person(app, "ada@example.com").await;

    let status = expect(
        &call(app, "GET", "/api/account/mfa", None, ada.c()).await,
        StatusCode::OK,
    );
    assert_eq!(
        status,
        j!({"totp": false, "passkeys": 0, "recovery_codes_left": 0})
    );

    // Enrolment: the secret once, with its URI and a QR code as SVG.
    let started = expect(
        &call(app, "POST", "/api/account/mfa/totp", None, ada.c()).await,
        StatusCode::OK,
    );
    let secret = started["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    let uri = started["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/") && uri.contains(&format!("secret={secret}")));
    assert!(started["qr_svg"].as_str().unwrap().starts_with("<svg "));
    // Not confirmed by a wrong code, nor by a malformed one.
    c.next_step();
    let right = c.code(&secret);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    for bad in [wrong.as_str(), "12345", "abcdef"] {
        let res = call(
            app,
            "POST",
            "/api/account/mfa/totp/confirm",
            Some(j!({"code": bad})),
            ada.c(),
        )
        .await;
        problem(&res, StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM totp_secrets WHERE confirmed_at IS NOT NULL"),
        0
    );
    let confirmed = expect(
        &call(
            app,
            "POST",
            "/api/account/mfa/totp/confirm",
            Some(j!({"code": right})),
            ada.c(),
        )
        .await,
        StatusCode::OK,
    );
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    // Stored hashed, and the secret is never shown again.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM recovery_codes WHERE hash = '{}'",
            codes[0]
        )),
        0
    );
    let status = json(&call(app, "GET", "/api/account/mfa", None, ada.c()).await);
    assert_eq!(
        status,
        j!({"totp": true, "passkeys": 0, "recovery_codes_left": 10})
    );
    let again = call(app, "POST", "/api/account/mfa/totp", None, ada.c()).await;
    problem(&again, StatusCode::CONFLICT);
    assert!(!text(&again).contains(&secret));
    assert_eq!(count(app, "mfa_added"), 1);

    // Signed out, the password alone gives no session.
    let pending = password_step(app, "ada@example.com").await;
    // The code that confirmed the enrolment is spent: a replay in its
    // window is refused.
    let res = second_step(app, &pending, &right).await;
    problem(&res, StatusCode::UNAUTHORIZED);
    c.next_step();
    let code = c.code(&secret);
    let res = second_step(app, &pending, &code).await;
    assert_eq!(expect(&res, StatusCode::OK)["status"], "signed_in");
    let cookie = session_cookie(&res);
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("__Host-lanyard_mfa=;")),
        "the pending cookie is cleared"
    );
    let me = json(&call(app, "GET", "/api/account/me", None, Some(&cookie)).await);
    assert_eq!(me["amr"], j!(["pwd", "otp", "mfa"]));
    // The pending sign-in is used up, and the code with it.
    problem(
        &second_step(app, &pending, &c.code(&secret)).await,
        StatusCode::UNAUTHORIZED,
    );
    let pending = password_step(app, "ada@example.com").await;
    problem(
        &second_step(app, &pending, &code).await,
        StatusCode::UNAUTHORIZED,
    );

    // A recovery code works once (typed in capitals, without dashes too).
    let typed = codes[0].replace('-', "").to_uppercase();
    let res = second_step(app, &pending, &typed).await;
    assert_eq!(expect(&res, StatusCode::OK)["status"], "signed_in");
    let pending = password_step(app, "ada@example.com").await;
    problem(
        &second_step(app, &pending, &codes[0]).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(count(app, "recovery_code_used"), 1);

    // Wrong codes count against the account's limit (3 here): then even a
    // right code waits.
    let pending = password_step(app, "ada@example.com").await;
    for _ in 0..3 {
        problem(
            &second_step(app, &pending, "000000").await,
            StatusCode::UNAUTHORIZED,
        );
    }
    let res = second_step(app, &pending, &codes[1]).await;
    problem(&res, StatusCode::TOO_MANY_REQUESTS);
    assert!(!header(&res, "retry-after").is_empty());
    // The password too.
    let res = call(
        app,
        "POST",
        "/api/account/login",
        Some(j!({"email": "ada@example.com", "password": PASSWORD})),
        None,
    )
    .await;
    problem(&res, StatusCode::TOO_MANY_REQUESTS);
    assert!(count(app, "sign_in_failed") >= 6);
    assert!(count(app, "sign_in") >= 3);
}

#[tokio::test]
async fn the_login_page_asks_for_the_second_factor_and_keeps_return_to() {
    let c = Clocked::start(&[]).await;
    let app = &c.app;
    let ada = person(app, "ada@example.com").await;
    let (secret, codes) = enrol(&c, &ada).await;

    let mut b = Browser::new(app);
    b.get("/login").await;
    let res = b
        .post(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("return_to", "/account/mfa"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    assert_eq!(
        header(&res, "location"),
        "/login/mfa?return_to=%2Faccount%2Fmfa"
    );
    assert!(b.session().is_none());
    let page = b.get("/login/mfa?return_to=%2Faccount%2Fmfa").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = text(&page);
    assert!(html.contains("name=\"code\"") && html.contains("autocomplete=\"one-time-code\""));
    assert!(
        !html.contains("passkey-second-factor"),
        "no passkey to offer"
    );
    // A wrong code: on the form, no session.
    let res = b.post("/login/mfa", &[("code", "000000")]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(text(&res).contains("not right"), "{}", text(&res));
    assert!(b.session().is_none());
    // Without the CSRF token: refused.
    let res = b
        .post_raw(
            "/login/mfa",
            crate::common::form_body(&[("code", "000000")]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    c.next_step();
    let res = b.post("/login/mfa", &[("code", &c.code(&secret))]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    assert_eq!(header(&res, "location"), "/account/mfa");
    assert!(b.session().is_some());
    let html = text(&b.get("/account/mfa").await);
    assert!(html.contains("An authenticator app is set up."), "{html}");
    assert!(html.contains("10 unused codes left"), "{html}");
    assert!(!html.contains(&secret), "the secret is never shown again");
    assert!(!html.contains(&codes[0]), "nor the recovery codes");

    // With nothing pending, the page sends the person to sign in.
    let mut other = Browser::new(app);
    let res = other.get("/login/mfa").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), "/login");
}

#[tokio::test]
async fn second_factor_changes_need_a_recent_sign_in() {
    let c = Clocked::start(&[]).await;
    let app = &c.app;
    let ada = person(app, "ada@example.com").await;
    let (secret, _) = enrol(&c, &ada).await;
    c.advance(301);

    for (method, path) in [
        ("DELETE", "/api/account/mfa/totp"),
        ("POST", "/api/account/mfa/recovery-codes"),
        ("POST", "/api/account/mfa/totp"),
    ] {
        let res = call(app, method, path, None, ada.c()).await;
        assert_eq!(
            problem(&res, StatusCode::FORBIDDEN)["type"],
            RECENT_TYPE,
            "{path}"
        );
    }
    // The pages send the person to re-enter and come back.
    let mut b = browser(app, &ada);
    b.get("/account/mfa").await;
    let res = b.post("/account/mfa/totp/remove", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&res, "location"),
        "/account/reauth?return_to=%2Faccount%2Fmfa"
    );
    let page = text(&b.get("/account/reauth?return_to=%2Faccount%2Fmfa").await);
    assert!(page.contains("name=\"password\"") && page.contains("name=\"code\""));
    let res = b
        .post(
            "/account/reauth",
            &[
                ("password", "not the password"),
                ("return_to", "/account/mfa"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("SELECT count(*) FROM totp_secrets"), 1);

    // Re-entry by the API with a code, then the change goes through.
    let res = call(
        app,
        "POST",
        "/api/account/reauth",
        Some(j!({"code": "000000"})),
        ada.c(),
    )
    .await;
    problem(&res, StatusCode::UNAUTHORIZED);
    c.next_step();
    let res = call(
        app,
        "POST",
        "/api/account/reauth",
        Some(j!({"code": c.code(&secret)})),
        ada.c(),
    )
    .await;
    expect(&res, StatusCode::OK);
    let renewed = expect(
        &call(
            app,
            "POST",
            "/api/account/mfa/recovery-codes",
            None,
            ada.c(),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(renewed["recovery_codes"].as_array().unwrap().len(), 10);
    expect(
        &call(app, "DELETE", "/api/account/mfa/totp", None, ada.c()).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        json(&call(app, "GET", "/api/account/mfa", None, ada.c()).await),
        j!({"totp": false, "passkeys": 0, "recovery_codes_left": 0})
    );
    // The password alone signs in again.
    login(app, "ada@example.com").await;

    // The re-entry page with the password, after the window passed again.
    c.advance(301);
    let res = b
        .post(
            "/account/reauth",
            &[("password", PASSWORD), ("return_to", "/account/mfa")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    assert_eq!(header(&res, "location"), "/account/mfa");
    let res = b.post("/account/mfa/totp", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = text(&res);
    assert!(
        html.contains("<svg ") && html.contains("id=\"totp-secret\""),
        "{html}"
    );
    for kind in ["mfa_added", "mfa_removed", "recovery_codes_renewed"] {
        assert_eq!(count(app, kind), 1, "{kind}");
    }
}

/// The query of a redirect to the client.
fn query_of(res: &Response<Bytes>) -> std::collections::HashMap<String, String> {
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(res));
    url::Url::parse(header(res, "location"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn first_party(app: &App) -> (String, String) {
    let res = admin(
        app,
        "POST",
        "/api/admin/clients",
        Some(j!({"client_name": "Shop", "redirect_uris": [REDIRECT], "first_party": true})),
    )
    .await;
    let b = expect(&res, StatusCode::CREATED);
    (
        b["client_id"].as_str().unwrap().to_owned(),
        b["client_secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn an_application_asks_for_two_factors_with_acr_values() {
    let c = Clocked::start(&[]).await;
    let app = &c.app;
    let shop = first_party(app).await;
    let disco = json(&app.get("/.well-known/openid-configuration").await);
    assert!(
        disco["acr_values_supported"]
            .as_array()
            .unwrap()
            .contains(&j!("urn:lanyard:acr:mfa"))
    );

    // Ada signed in with her password before she set up an authenticator.
    let ada = person(app, "ada@example.com").await;
    let (secret, _) = enrol(&c, &ada).await;
    let mut b = browser(app, &ada);
    // Without acr_values: a code, acr pwd.
    let t = tokens(app, &mut b, &shop, "openid").await;
    let id = payload(t["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:lanyard:acr:pwd");

    let p = pkce();
    let url = authorize_url(
        &shop.0,
        "openid",
        &p,
        "&acr_values=urn%3Aother%20urn%3Alanyard%3Aacr%3Amfa",
    );
    // prompt=none cannot ask her.
    let res = b.get(&format!("{url}&prompt=none")).await;
    assert_eq!(query_of(&res)["error"], "login_required");
    let res = b.get(&url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let step_up = header(&res, "location").to_owned();
    assert!(
        step_up.starts_with(&format!(
            "/login/mfa?step_up=1&return_to={}",
            urlencode("/authorize?")
        )),
        "{step_up}"
    );
    let page = text(&b.get(&step_up).await);
    assert!(page.contains("name=\"step_up\" value=\"1\""), "{page}");
    let back = url::Url::parse(&format!("{ISSUER}{step_up}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .unwrap()
        .1
        .into_owned();
    c.next_step();
    let res = b
        .post(
            "/login/mfa",
            &[
                ("step_up", "1"),
                ("return_to", &back),
                ("code", &c.code(&secret)),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    assert_eq!(header(&res, "location"), back);
    let res = b.get(&back).await;
    let code = code_of(&res);
    let t = expect(&exchange(app, &shop, &code, &p).await, StatusCode::OK);
    let id = payload(t["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:lanyard:acr:mfa");
    let amr: Vec<&str> = id["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(amr.contains(&"otp") && amr.contains(&"mfa"), "{amr:?}");

    // Bob has no second factor: the application hears so.
    let bob = person(app, "bob@example.com").await;
    let mut b = browser(app, &bob);
    let p = pkce();
    let url = authorize_url(
        &shop.0,
        "openid",
        &p,
        "&acr_values=urn%3Alanyard%3Aacr%3Amfa",
    );
    let res = b.get(&url).await;
    assert_eq!(query_of(&res)["error"], "unmet_authentication_requirements");
    let res = b.get(&format!("{url}&prompt=none")).await;
    assert_eq!(query_of(&res)["error"], "login_required");
}

#[tokio::test]
async fn require_mfa_has_people_enrol_before_an_application_gets_a_code() {
    let c = Clocked::start(&[("require_mfa", "true")]).await;
    let app = &c.app;
    let shop = first_party(app).await;
    let ada = person(app, "ada@example.com").await;
    let mut b = browser(app, &ada);
    let p = pkce();
    let url = authorize_url(&shop.0, "openid", &p, "");
    let res = b.get(&url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    let to = header(&res, "location").to_owned();
    assert!(
        to.starts_with(&format!(
            "/account/mfa?return_to={}",
            urlencode("/authorize?")
        )),
        "{to}"
    );
    let page = text(&b.get(&to).await);
    assert!(page.contains("id=\"mfa-required\""), "{page}");
    enrol(&c, &ada).await;
    let code = code_of(&b.get(&url).await);
    expect(&exchange(app, &shop, &code, &p).await, StatusCode::OK);

    // An invalid value is the operator's error, named.
    let broken = App::dev(&[("require_mfa", "sometimes"), ("admin_token", ADMIN)]).await;
    let shop = first_party(&broken).await;
    let bob = person(&broken, "bob@example.com").await;
    let mut b = browser(&broken, &bob);
    let res = b.get(&authorize_url(&shop.0, "openid", &pkce(), "")).await;
    assert!(res.status().is_server_error(), "{}", res.status());
    assert!(text(&res).contains("require_mfa"), "{}", text(&res));
}
