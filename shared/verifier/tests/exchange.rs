//! A token Lanyard issues by token exchange (RFC 8693) verifies at its
//! audience, the API it is for, and nowhere else.

// A test crate: its helpers, not only its `#[test]` functions, may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lanyard::config::Config;
use lanyard::oidc::exchange::{ACCESS_TOKEN_TYPE, GRANT_TYPE};
use lanyard::oidc::grants::{self, TokenRequest};
use lanyard::oidc::keys::Alg;
use lanyard::oidc::tokens::{self, Signer};
use lanyard::testkit::{self, ISSUER, World};
use lanyard_verifier::{Fetched, TokenKind, Verifier};
use serde_json::{Map, Value, json};

const NOW: i64 = 1_800_000_000;

#[test]
fn an_exchanged_token_verifies_at_its_audience_only() {
    let w = World::new();
    let config = Config::load(&w.vars).unwrap();
    let env = w.env(NOW);
    let (app, _) = testkit::client(
        &w.sql,
        json!({
            "client_name": "App", "client_id": "app",
            "redirect_uris": ["https://app.example/cb"],
            "grant_types": ["authorization_code", GRANT_TYPE],
            "scope": "openid invoice:read",
            "token_exchange": [{"audience": "invoices", "scope": "invoice:read"}]
        }),
        NOW,
    );
    testkit::client(
        &w.sql,
        json!({"client_name": "Invoices", "client_id": "invoices", "grant_types": ["client_credentials"]}),
        NOW,
    );
    // The person's access token at `app`, as the code grant signs it.
    let custom: Map<String, Value> = serde_json::from_value(
        json!({"client_id": "app", "scope": "openid invoice:read", "auth_time": NOW - 5}),
    )
    .unwrap();
    let claims = tokens::claims(custom, &config, "person-1", "app", NOW, 300).unwrap();
    let subject = Signer::load(&env, &config, Alg::Es256)
        .unwrap()
        .sign(claims, "at+jwt")
        .unwrap();

    let form = testkit::params(&[
        ("grant_type", GRANT_TYPE),
        ("subject_token", &subject),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("audience", "invoices"),
    ]);
    let req = TokenRequest::parse(&form).unwrap();
    let res = grants::exchange(&env, &config, &app, &req).unwrap();

    let body = testkit::jwks(&env, &config);
    let verifier = |audience: &str| {
        let body = body.clone();
        Verifier::new(ISSUER, audience, move |_: &str| {
            Ok(Fetched {
                status: 200,
                body: body.clone(),
                cache_control: None,
            })
        })
    };
    let at = NOW as u64 + 1;
    let ok = verifier("invoices")
        .verify_at::<Value>(&res.access_token, TokenKind::Access, at)
        .unwrap();
    assert_eq!(ok.sub, "person-1");
    assert_eq!(ok.claims["client_id"], "app");
    assert_eq!(ok.claims["scope"], "invoice:read");
    assert!(
        verifier("app")
            .verify_at::<Value>(&res.access_token, TokenKind::Access, at)
            .is_err(),
        "not for the client that asked"
    );
    assert!(
        verifier("invoices")
            .verify_at::<Value>(&subject, TokenKind::Access, at)
            .is_err(),
        "the subject token was never for the API"
    );
}
