//! Single sign-out (issue 15): OpenID Connect Back-Channel Logout through
//! the host, to the demo application and to applications played by mock
//! servers, from RP-initiated logout, a password reset and the admin API;
//! and an application that is slow or unreachable.

use std::time::{Duration, Instant};

use common::Mock;
use common::orgs::payload;
use lanyard_verifier::{Fetched, LogoutToken, Verifier};

use super::*;

/// A confidential client named Shop whose back-channel logout endpoint is
/// `{origin}/bc`.
async fn with_backchannel(app: &App, origin: &str) -> (String, String) {
    let (id, secret) = register(
        app,
        j!({"client_name": "Shop", "redirect_uris": [REDIRECT],
            "post_logout_redirect_uris": ["https://app.example.com/bye"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile email offline_access",
            "backchannel_logout_uri": format!("{origin}/bc"),
            "backchannel_logout_session_required": true}),
    )
    .await;
    (id, secret.unwrap())
}

/// Verifies a logout token as the application `client_id` would, with the
/// app's published JWKS, at `now` (Unix seconds).
async fn verified(app: &App, client_id: &str, token: &str, now: u64) -> LogoutToken {
    let jwks = app.get("/jwks.json").await;
    let fetched = Fetched {
        status: jwks.status().as_u16(),
        body: jwks.body().to_vec(),
        cache_control: None,
    };
    Verifier::new(&app.issuer, client_id, move |_: &str| Ok(fetched.clone()))
        .verify_logout_token_at(token, now, &Default::default())
        .unwrap_or_else(|e| panic!("the logout token is refused: {e}"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The path of an absolute URL of the app.
fn local<'a>(app: &App, url: &'a str) -> &'a str {
    url.strip_prefix(app.issuer.as_str())
        .unwrap_or_else(|| panic!("{url} is not the app's"))
}

/// The demo's sign-in in browser `b`, through Lanyard: the demo calls the
/// token endpoint and the JWKS over HTTP, as any application would.
async fn demo_sign_in(b: &mut Browser<'_>) {
    let app = b.app;
    let res = b.get("/demo/login").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = b.get(local(app, header(&res, "location"))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    let res = b.get(local(app, header(&res, "location"))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));
    let page = text(&b.get("/demo").await);
    assert!(page.contains(EMAIL), "signed in to the demo: {page}");
}

async fn live_families(app: &App, client: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM refresh_families WHERE client_id = '{client}' AND revoked_at IS NULL"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_at_one_application_signs_the_person_out_of_the_demo_too() {
    let partner = Mock::start(200).await;
    let origin = format!("http://{}", partner.addr);
    let app =
        App::dev_on_loopback(&[("admin_token", ADMIN), ("logout_outbound_host_2", &origin)]).await;
    let client = with_backchannel(&app, &origin).await;
    let mut b = signed_in(&app).await;

    // One Lanyard session, two applications.
    demo_sign_in(&mut b).await;
    let tokens = tokens_for(&app, &mut b, &client).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = payload(id_token)["sid"].as_str().unwrap().to_owned();
    assert_eq!(live_families(&app, "demo").await, 1);
    assert_eq!(live_families(&app, &client.0).await, 1);

    // The person logs out at the second application.
    let res = b
        .get(&format!(
            "/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye",
            common::urlencode("https://app.example.com/bye")
        ))
        .await;
    // The demo also registered front-channel logout: the page frames it,
    // then goes on to the application.
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let page = text(&res);
    assert!(
        page.contains(&format!("{}/demo/frontchannel-logout?iss=", app.issuer)),
        "{page}"
    );
    assert!(page.contains(r#"href="https://app.example.com/bye?state=bye""#));
    assert!(
        header(&res, "content-security-policy").ends_with(&format!("frame-src {}", app.issuer))
    );

    // The second application got a valid logout token for the session.
    let sent = partner.logout_tokens();
    assert_eq!(sent.len(), 1);
    let token = verified(&app, &client.0, &sent[0], unix_now()).await;
    assert_eq!(token.sid.as_deref(), Some(sid.as_str()));
    assert_eq!(token.sub.as_deref(), payload(id_token)["sub"].as_str());

    // The demo got one over the back channel (its endpoint verified it), and
    // its next page shows it signed out.
    let page = text(&b.get("/demo").await);
    assert!(
        !page.contains(EMAIL),
        "the demo still shows the claims: {page}"
    );
    assert!(page.contains("/demo/login"), "{page}");
    let failed = json(&admin(&app, "GET", "/api/admin/logout-deliveries", None).await);
    assert_eq!(failed["deliveries"], j!([]), "every delivery was accepted");

    // Both refresh families are revoked.
    assert_eq!(live_families(&app, "demo").await, 0);
    assert_eq!(live_families(&app, &client.0).await, 0);
    let res = refresh(&app, &client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(json(&res)["error"], "invalid_grant");
    assert_eq!(
        b.get("/").await.status(),
        StatusCode::SEE_OTHER,
        "signed out of Lanyard"
    );
}

#[tokio::test]
async fn a_password_reset_and_an_administrator_send_logout_tokens() {
    let rp = Mock::start(204).await;
    let origin = format!("http://{}", rp.addr);
    let app = App::dev(&[("admin_token", ADMIN), ("logout_outbound_host_2", &origin)]).await;
    let client = with_backchannel(&app, &origin).await;
    let mut b = signed_in(&app).await;
    let first = tokens_for(&app, &mut b, &client).await;
    let first_claims = payload(first["id_token"].as_str().unwrap());
    let sub = first_claims["sub"].as_str().unwrap().to_owned();

    // A password reset, from another browser.
    let mut owner = Browser::from_addr(&app, "192.0.2.44:1000");
    owner.post("/forgot", &[("email", EMAIL)]).await;
    let link = app.mailed_link(EMAIL).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let new_password = "a brand new passphrase here";
    let done = owner
        .post("/reset", &[("token", &token), ("password", new_password)])
        .await;
    assert_eq!(done.status(), StatusCode::OK, "{}", text(&done));
    let sent = rp.logout_tokens();
    assert_eq!(sent.len(), 1, "the reset told the application");
    let told = verified(&app, &client.0, &sent[0], unix_now()).await;
    assert_eq!(told.sid.as_deref(), first_claims["sid"].as_str());
    assert_eq!(told.sub.as_deref(), Some(sub.as_str()));

    // Signed in again; then an administrator ends every session.
    let mut b = Browser::new(&app);
    let res = b
        .post("/login", &[("email", EMAIL), ("password", new_password)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let second = tokens_for(&app, &mut b, &client).await;
    let second_sid = payload(second["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/admin/identities/{sub}/sessions");
    let res = admin(&app, "DELETE", &path, None).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let body = json(&res);
    assert_eq!(body["sessions_ended"], j!([second_sid]));
    assert_eq!(body["logout_tokens"], j!({"delivered": 1, "failed": 0}));
    let sent = rp.logout_tokens();
    assert_eq!(sent.len(), 2);
    let told = verified(&app, &client.0, &sent[1], unix_now()).await;
    assert_eq!(told.sid.as_deref(), Some(second_sid.as_str()));
    assert_ne!(
        told.jti,
        verified(&app, &client.0, &sent[0], unix_now()).await.jti
    );
    assert_eq!(
        b.get("/").await.status(),
        StatusCode::SEE_OTHER,
        "signed out"
    );
    let res = refresh(&app, &client, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(json(&res)["error"], "invalid_grant");

    // Nothing left to end; an unknown person; the token is needed.
    let again = json(&admin(&app, "DELETE", &path, None).await);
    assert_eq!(again["sessions_ended"], j!([]));
    assert_eq!(rp.logout_tokens().len(), 2);
    let res = admin(
        &app,
        "DELETE",
        "/api/admin/identities/nobody/sessions",
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .send(Request::delete(path.as_str()).body(Bytes::new()).unwrap())
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_unreachable_application_does_not_hold_the_sign_out_and_is_retried() {
    // One that answers, one that takes a minute, one whose port is closed,
    // and one on a host the components may not reach.
    let fine = Mock::start(200).await;
    let slow = Mock::start(200).await;
    slow.set_delay(60);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_addr = closed.local_addr().unwrap();
    drop(closed);
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let elsewhere_origin = format!("http://{}", elsewhere.local_addr().unwrap());
    let (fine_origin, slow_origin, down_origin) = (
        format!("http://{}", fine.addr),
        format!("http://{}", slow.addr),
        format!("http://{down_addr}"),
    );
    let app = App::dev(&[
        ("admin_token", ADMIN),
        ("logout_outbound_host_1", &fine_origin),
        ("logout_outbound_host_2", &slow_origin),
        ("logout_outbound_host_3", &down_origin),
    ])
    .await;
    let mut b = signed_in(&app).await;
    let mut clients = Vec::new();
    for origin in [&fine_origin, &slow_origin, &down_origin, &elsewhere_origin] {
        let client = with_backchannel(&app, origin).await;
        tokens_for(&app, &mut b, &client).await;
        clients.push((client.0, origin.clone()));
    }
    let client_of = |origin: &str| {
        clients
            .iter()
            .find(|(_, o)| o == origin)
            .map(|(c, _)| c.clone())
            .unwrap()
    };

    let started = Instant::now();
    let res = b.post("/logout", &[]).await;
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    assert!(text(&res).contains("You are signed out."));
    // The sign-out waits two seconds for the applications, not the minute
    // the slow one takes (nor the host's own ten-second time-out).
    assert!(took < Duration::from_secs(8), "the sign-out took {took:?}");
    assert_eq!(
        b.get("/").await.status(),
        StatusCode::SEE_OTHER,
        "signed out"
    );
    assert_eq!(fine.logout_tokens().len(), 1);

    // The three failures are recorded, each with its reason, for the operator.
    let listed = json(&admin(&app, "GET", "/api/admin/logout-deliveries", None).await);
    let deliveries = listed["deliveries"].as_array().unwrap().clone();
    assert_eq!(deliveries.len(), 3, "{listed}");
    let error_of = |origin: &str| {
        let client = client_of(origin);
        let d = deliveries
            .iter()
            .find(|d| d["client_id"] == client.as_str())
            .unwrap_or_else(|| panic!("no delivery of {client}: {listed}"));
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["uri"], format!("{origin}/bc"));
        assert!(d["next_attempt_at"].is_i64());
        d["last_error"].as_str().unwrap().to_owned()
    };
    assert!(
        error_of(&slow_origin).contains("did not answer within"),
        "{listed}"
    );
    assert!(error_of(&down_origin).contains("refused"), "{listed}");
    let undeclared = error_of(&elsewhere_origin);
    assert!(
        undeclared.contains("allowed_outbound_hosts")
            && undeclared.contains("logout_outbound_host_"),
        "{undeclared}"
    );

    // Not due yet: the sweep retries nothing.
    let swept = json(&admin(&app, "POST", "/api/admin/sweep", None).await);
    assert_eq!(swept["logout_retries"], j!({"delivered": 0, "failed": 0}));

    // A minute later the slow one answers at once and the closed one is
    // back: the sweep delivers them, with newly signed tokens.
    slow.set_delay(0);
    let back = Mock::start_at(down_addr, 200).await;
    app.host.advance_clock(61);
    let swept = json(&admin(&app, "POST", "/api/admin/sweep", None).await);
    assert_eq!(
        swept["logout_retries"],
        j!({"delivered": 2, "failed": 1}),
        "{swept}"
    );
    let later = unix_now() + 61;
    for (mock, origin) in [(&slow, &slow_origin), (&back, &down_origin)] {
        let tokens = mock.logout_tokens();
        let token = verified(&app, &client_of(origin), tokens.last().unwrap(), later).await;
        assert!(token.iat + 60 >= later, "signed at the retry");
    }
    let listed = json(&admin(&app, "GET", "/api/admin/logout-deliveries", None).await);
    let left = listed["deliveries"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{listed}");
    assert_eq!(left[0]["client_id"], client_of(&elsewhere_origin).as_str());
    assert_eq!(left[0]["attempts"], 2);
    drop(elsewhere);
}

#[tokio::test]
async fn ending_a_session_in_the_account_centre_tells_its_applications() {
    let rp = Mock::start(200).await;
    let origin = format!("http://{}", rp.addr);
    let app = App::dev(&[("admin_token", ADMIN), ("logout_outbound_host_2", &origin)]).await;
    let client = with_backchannel(&app, &origin).await;
    let mut laptop = signed_in(&app).await;
    let tokens = tokens_for(&app, &mut laptop, &client).await;
    let sid = payload(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // From another device, the person ends the laptop's session. The
    // profile component hands the logout token to the token component.
    let mut phone = Browser::from_addr(&app, "192.0.2.9:1000");
    let res = phone
        .post("/login", &[("email", EMAIL), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = phone
        .post("/account/sessions/revoke", &[("sid", &sid)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(&res));

    let sent = rp.logout_tokens();
    assert_eq!(sent.len(), 1, "the application was told at once");
    let told = verified(&app, &client.0, &sent[0], unix_now()).await;
    assert_eq!(told.sid.as_deref(), Some(sid.as_str()));
    assert_eq!(
        laptop.get("/").await.status(),
        StatusCode::SEE_OTHER,
        "the laptop is signed out"
    );
    let res = refresh(&app, &client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(json(&res)["error"], "invalid_grant");
    let failed = json(&admin(&app, "GET", "/api/admin/logout-deliveries", None).await);
    assert_eq!(failed["deliveries"], j!([]));
}
