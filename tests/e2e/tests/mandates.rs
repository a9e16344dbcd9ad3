//! End-to-end tests of mandates (docs/mandates.md): organisation A lets
//! organisation B, or one named person, act for it on a service. The JSON
//! API under `/api/orgs/{slug}/mandates` and `/api/orgs/mandates`, the
//! operator's templates and validity limit, the mandate in a b2b client's
//! tokens (`act`, `mandate`), and RFC 8693 token exchange, through the test
//! host and the real orgs and token components.

mod common;

use common::orgs::*;
use common::App;
use http::StatusCode;
use serde_json::{Value, json as j};

/// The service mandates are given on, and its catalogue.
const BILLING: &str = "billing";
const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Registers `id` as a b2b service with the invoice catalogue.
async fn billing(app: &App, id: &str) -> (String, String) {
    register(
        app,
        j!({
            "client_id": id, "client_name": format!("Billing {id}"),
            "roles": [
                {"name": "invoice:read", "description": "Reads invoices"},
                {"name": "invoice:submit"},
                {"name": "invoice:approve"},
            ],
        }),
    )
    .await
}

/// Acme (A, owned by alice) has activated `billing`, with projects
/// Helsinki (P) and Tampere; Ledger (B, owned by bob) has mia as a member.
struct World {
    alice: Person,
    acme: String,
    bob: Person,
    ledger: String,
    mia: Person,
    client: (String, String),
    /// The project the mandate is for.
    prj: String,
    /// Another project of A's.
    other_prj: String,
}

async fn world(app: &App) -> World {
    let alice = person(app, "alice@example.com").await;
    let acme = org(app, &alice, "acme", "Acme Oy").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = billing(app, BILLING).await;
    activate(app, &alice, "acme", BILLING).await;
    let prj = project(app, &alice, "acme", BILLING, "Helsinki").await;
    let other_prj = project(app, &alice, "acme", BILLING, "Tampere").await;
    let bob = person(app, "bob@example.com").await;
    let ledger = org(app, &bob, "ledger", "Ledger & Co").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mia = member(app, &bob, "ledger", "mia@example.com").await;
    World {
        alice,
        acme,
        bob,
        ledger,
        mia,
        client,
        prj,
        other_prj,
    }
}

/// `POST /api/orgs/{slug}/mandates` by `by`.
async fn offer(app: &App, by: &Person, slug: &str, body: Value) -> http::Response<bytes::Bytes> {
    call(
        app,
        "POST",
        &format!("/api/orgs/{slug}/mandates"),
        Some(body),
        by.c(),
    )
    .await
}

/// The standard offer: Ledger may read and submit invoices on Helsinki.
fn ledger_offer(w: &World) -> Value {
    j!({
        "agent_org": "ledger", "client_id": BILLING, "project_id": w.prj,
        "roles": ["invoice:submit", "invoice:read"],
    })
}

/// Ledger's admin accepts `id`, designating these members.
async fn accept_for(app: &App, by: &Person, id: &str, delegates: &[&str]) -> Value {
    let res = call(
        app,
        "POST",
        &format!("/api/orgs/ledger/mandates/{id}/accept"),
        Some(j!({"delegates": delegates})),
        by.c(),
    )
    .await;
    expect(&res, StatusCode::OK)
}

/// Acme offers the standard mandate, Ledger accepts it for mia; the mandate.
async fn mandate(app: &App, w: &World) -> Value {
    let m = expect(
        &offer(app, &w.alice, "acme", ledger_offer(w)).await,
        StatusCode::CREATED,
    );
    accept_for(app, &w.bob, m["id"].as_str().unwrap(), &[&w.mia.sub]).await
}

/// `GET /api/orgs/{slug}/mandates` as `who`.
async fn mandates_of(app: &App, who: &Person, slug: &str) -> Value {
    expect(
        &call(
            app,
            "GET",
            &format!("/api/orgs/{slug}/mandates"),
            None,
            who.c(),
        )
        .await,
        StatusCode::OK,
    )
}

/// The audit entries of `slug` about `target`, oldest first, as
/// (action, actor).
async fn audit_of(app: &App, who: &Person, slug: &str, target: &str) -> Vec<(String, String)> {
    let res = call(
        app,
        "GET",
        &format!("/api/orgs/{slug}/audit"),
        None,
        who.c(),
    )
    .await;
    let mut entries: Vec<(String, String)> = expect(&res, StatusCode::OK)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == target)
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    entries.reverse();
    entries
}

fn rows(app: &App) -> [i64; 3] {
    [
        app.count("SELECT count(*) FROM mandates"),
        app.count("SELECT count(*) FROM mandate_delegates"),
        app.count("SELECT count(*) FROM org_audit"),
    ]
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

// ------------------------------------------------------------------ 1

#[tokio::test]
async fn an_organisation_offers_a_mandate_and_the_agent_accepts_it() {
    let app = app().await;
    let w = world(&app).await;

    let res = offer(&app, &w.alice, "acme", ledger_offer(&w)).await;
    let m = expect(&res, StatusCode::CREATED);
    let id = id_of(&m);
    assert!(id.starts_with("mnd_"), "{m}");
    assert_eq!(m["state"], "offered");
    assert_eq!(
        m["principal"],
        j!({"id": w.acme, "slug": "acme", "name": "Acme Oy"})
    );
    assert_eq!(
        m["agent"],
        j!({"org": {"id": w.ledger, "slug": "ledger", "name": "Ledger & Co"}, "email": null})
    );
    assert_eq!(m["client_id"], BILLING);
    assert_eq!(m["project_id"], w.prj.as_str());
    assert_eq!(m["roles"], j!(["invoice:read", "invoice:submit"]));
    assert_eq!(m["all_members"], false);
    assert_eq!(m["delegates"], j!([]));
    // Valid from now for the operator's default limit, 365 days.
    let nb = m["not_before"].as_i64().unwrap();
    assert!((now() - nb).abs() < 60, "{m}");
    assert_eq!(m["expires_at"].as_i64().unwrap() - nb, 365 * DAY);

    // Offered: Ledger's admin sees it, mia (not designated) does not.
    let seen = mandates_of(&app, &w.bob, "ledger").await;
    assert_eq!(seen["given"], j!([]));
    assert_eq!(seen["received"][0]["id"], id.as_str());
    assert_eq!(seen["received"][0]["state"], "offered");
    let seen = mandates_of(&app, &w.mia, "ledger").await;
    assert_eq!(seen, j!({"given": [], "received": []}));

    // A member of Ledger cannot accept it; Ledger's admin does, for mia.
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/ledger/mandates/{id}/accept"),
        Some(j!({"delegates": [w.mia.sub]})),
        w.mia.c(),
    )
    .await;
    problem(&res, StatusCode::FORBIDDEN);
    // Nor can Acme, the side that offered it.
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/acme/mandates/{id}/accept"),
        Some(j!({"all_members": true})),
        w.alice.c(),
    )
    .await;
    problem(&res, StatusCode::FORBIDDEN);
    let accepted = accept_for(&app, &w.bob, &id, &[&w.mia.sub]).await;
    assert_eq!(accepted["state"], "accepted");
    assert_eq!(accepted["delegates"], j!([w.mia.sub]));
    assert_eq!(accepted["all_members"], false);
    // Accepting twice: 409.
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/ledger/mandates/{id}/accept"),
        None,
        w.bob.c(),
    )
    .await;
    problem(&res, StatusCode::CONFLICT);

    // Both audit logs show the offer and the acceptance, by who did them.
    let want = vec![
        ("mandate.offered".to_owned(), w.alice.sub.clone()),
        ("mandate.accepted".to_owned(), w.bob.sub.clone()),
    ];
    assert_eq!(audit_of(&app, &w.alice, "acme", &id).await, want);
    assert_eq!(audit_of(&app, &w.bob, "ledger", &id).await, want);

    // mia, designated, sees it under received; Acme under given.
    let seen = mandates_of(&app, &w.mia, "ledger").await;
    assert_eq!(seen["given"], j!([]));
    let received = seen["received"].as_array().unwrap();
    assert_eq!(received.len(), 1, "{seen}");
    assert_eq!(received[0]["id"], id.as_str());
    assert_eq!(received[0]["state"], "accepted");
    assert_eq!(received[0]["principal"]["slug"], "acme");
    assert_eq!(received[0]["roles"], j!(["invoice:read", "invoice:submit"]));
    let seen = mandates_of(&app, &w.alice, "acme").await;
    assert_eq!(seen["received"], j!([]));
    assert_eq!(seen["given"][0]["id"], id.as_str());
    assert_eq!(seen["given"][0]["state"], "accepted");
    assert_eq!(seen["given"][0]["delegates"], j!([w.mia.sub]));
}
