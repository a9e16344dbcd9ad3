//! End-to-end tests of the JSON account API for SPAs and mobile apps.

mod common;

use bytes::Bytes;
use common::{App, ISSUER, header, json};
use http::{Request, StatusCode};
use serde_json::{Value, json as j};

const EMAIL: &str = "lin@example.com";
const PASSWORD: &str = "seven long words make a passphrase";

async fn call(app: &App, path: &str, body: Value, cookie: Option<&str>) -> http::Response<Bytes> {
    let mut b = Request::post(path)
        .header("content-type", "application/json")
        .header("origin", ISSUER);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    app.send(b.body(Bytes::from(body.to_string())).unwrap())
        .await
}

fn session_cookie(res: &http::Response<Bytes>) -> String {
    let set = header(res, "set-cookie");
    assert!(set.starts_with("__Host-lanyard_session="), "{set}");
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn json_journey() {
    let app = App::dev(&[]).await;
    let res = call(
        &app,
        "/api/account/signup",
        j!({"email": EMAIL, "password": PASSWORD, "name": "Lin"}),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(json(&res)["status"], "check_email");

    let early = call(
        &app,
        "/api/account/login",
        j!({"email": EMAIL, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(early.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&early, "content-type"), "application/problem+json");

    let link = app.mailed_link(EMAIL).await;
    let token = link.split("token=").nth(1).unwrap();
    assert_eq!(
        call(&app, "/api/account/verify", j!({"token": token}), None)
            .await
            .status(),
        StatusCode::OK
    );

    let wrong = call(
        &app,
        "/api/account/login",
        j!({"email": EMAIL, "password": "not it at all"}),
        None,
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(&wrong)["detail"],
        "The email or password is incorrect."
    );

    let ok = call(
        &app,
        "/api/account/login",
        j!({"email": EMAIL, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(header(&ok, "cache-control"), "no-store");
    let cookie = session_cookie(&ok);

    let me = app
        .send(
            Request::get("/api/account/me")
                .header("cookie", &cookie)
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me = json(&me);
    assert_eq!(me["email"], EMAIL);
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["attributes"]["name"], "Lin");
    assert_eq!(me["amr"], j!(["pwd"]));

    let out = call(&app, "/api/account/logout", j!({}), Some(&cookie)).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let me = app
        .send(
            Request::get("/api/account/me")
                .header("cookie", &cookie)
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // Password reset by JSON.
    assert_eq!(
        call(
            &app,
            "/api/account/password/forgot",
            j!({"email": EMAIL}),
            None
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    let link = app.mailed_link(EMAIL).await;
    let token = link.split("token=").nth(1).unwrap();
    let res = call(
        &app,
        "/api/account/password/reset",
        j!({"token": token, "password": "an entirely new passphrase"}),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(
        &app,
        "/api/account/password/reset",
        j!({"token": token, "password": "an entirely new passphrase"}),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        json(&res)["detail"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );
}

#[tokio::test]
async fn cookies_alone_and_other_origins_are_refused() {
    let app = App::dev(&[]).await;
    // A form post (what a cross-site page can send) is not JSON.
    let form = Request::post("/api/account/signup")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from_static(
            b"email=a%40example.com&password=seven+long+words+make+it",
        ))
        .unwrap();
    let res = app.send(form).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&res, "content-type"), "application/problem+json");

    let foreign = Request::post("/api/account/login")
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .body(Bytes::from(
            j!({"email": EMAIL, "password": PASSWORD}).to_string(),
        ))
        .unwrap();
    assert_eq!(app.send(foreign).await.status(), StatusCode::FORBIDDEN);

    for (body, why) in [
        ("[1,2]", "not an object"),
        ("{\"email\": 5}", "not a string"),
        ("{not json", "malformed"),
    ] {
        let raw = Request::post("/api/account/signup")
            .header("content-type", "application/json")
            .body(Bytes::from(body))
            .unwrap();
        assert_eq!(
            app.send(raw).await.status(),
            StatusCode::BAD_REQUEST,
            "{why}"
        );
    }
    let get = app
        .send(
            Request::get("/api/account/login")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(app.count("SELECT count(*) FROM identities"), 0);
}
