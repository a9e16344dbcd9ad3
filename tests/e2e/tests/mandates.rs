//! End-to-end tests of mandates (docs/mandates.md): organisation A lets
//! organisation B, or one named person, act for it on a service. The JSON
//! API under `/api/orgs/{slug}/mandates` and `/api/orgs/mandates`, the
//! operator's templates and validity limit, the mandate in a b2b client's
//! tokens (`act`, `mandate`), and RFC 8693 token exchange, through the test
//! host and the real orgs and token components.

mod common;

use common::App;
use common::orgs::*;
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
    billing_with(app, id, j!({})).await
}

/// The same with more metadata.
async fn billing_with(app: &App, id: &str, more: Value) -> (String, String) {
    let mut m = j!({
        "client_id": id, "client_name": format!("Billing {id}"),
        "roles": [
            {"name": "invoice:read", "description": "Reads invoices"},
            {"name": "invoice:submit"},
            {"name": "invoice:approve"},
        ],
    });
    for (k, v) in more.as_object().unwrap() {
        m[k] = v.clone();
    }
    register(app, m).await
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
    world_with(app, j!({})).await
}

/// [`world`] with more metadata for the billing service.
async fn world_with(app: &App, more: Value) -> World {
    let alice = person(app, "alice@example.com").await;
    let acme = org(app, &alice, "acme", "Acme Oy").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = billing_with(app, BILLING, more).await;
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

// ------------------------------------------------------------------ 2

/// What a login acts as, from a claim set: the organisation, `act`,
/// `mandate` and the roles.
fn acting(c: &Value) -> Value {
    j!({
        "org_id": c["org_id"], "org_slug": c["org_slug"], "org_name": c["org_name"],
        "act": c["act"], "mandate": c["mandate"],
        "roles": c["roles"], "project_roles": c["project_roles"],
    })
}

/// What mia's login through the standard mandate `m` carries.
fn through(w: &World, m: &Value, actor: Value) -> Value {
    j!({
        "org_id": w.acme, "org_slug": "acme", "org_name": "Acme Oy",
        "act": actor,
        "mandate": {"id": m["id"], "expires_at": m["expires_at"]},
        "roles": [],
        "project_roles": {w.prj.as_str(): ["invoice:read", "invoice:submit"]},
    })
}

fn access(t: &Value) -> Value {
    payload(t["access_token"].as_str().unwrap())
}

fn refresh_token(t: &Value) -> String {
    t["refresh_token"].as_str().unwrap().to_owned()
}

/// The refresh families of this mandate that still work.
fn live_families(app: &App, mandate_id: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM refresh_families WHERE mandate_id = '{mandate_id}' AND revoked_at IS NULL"
    ))
}

/// Introspects a token as the client.
async fn introspect(app: &App, client: &(String, String), token_: &str) -> Value {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1));
    let res = app
        .send(
            http::Request::post("/introspect")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", format!("Basic {basic}"))
                .body(common::form_body(&[("token", token_)]))
                .unwrap(),
        )
        .await;
    expect(&res, StatusCode::OK)
}

/// Asserts that `/authorize` of `client` finds nothing `b` may sign in as:
/// a 403 page, and `access_denied` with `prompt=none`; no code is issued.
async fn no_context(app: &App, b: &mut common::Browser<'_>, client: &str) {
    let codes = app.count("SELECT count(*) FROM auth_codes");
    let res = b.get(&authorize_url(client, B2B_SCOPE, &pkce(), "")).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "{}",
        common::text(&res)
    );
    let res = b
        .get(&authorize_url(client, B2B_SCOPE, &pkce(), "&prompt=none"))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = common::header(&res, "location");
    assert!(location.contains("error=access_denied"), "{location}");
    assert_eq!(app.count("SELECT count(*) FROM auth_codes"), codes);
}

#[tokio::test]
async fn a_designated_member_signs_in_for_the_principal() {
    let app = app().await;
    let w = world(&app).await;
    let m = mandate(&app, &w).await;
    let want = through(&w, &m, j!({"sub": w.mia.sub, "org_id": w.ledger}));

    // The mandate is mia's only context: chosen without a picker.
    let mut b = browser(&app, &w.mia);
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    let id_token = payload(t["id_token"].as_str().unwrap());
    assert_eq!(acting(&id_token), want, "ID token");
    assert_eq!(id_token["sub"], w.mia.sub.as_str());
    let at = access(&t);
    assert_eq!(acting(&at), want, "access token");
    assert_eq!(at["sub"], w.mia.sub.as_str());
    assert!(at["project_roles"].get(&w.other_prj).is_none());
    let info = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(acting(&info), want, "userinfo");
    let about = introspect(&app, &w.client, t["access_token"].as_str().unwrap()).await;
    assert_eq!(about["active"], true);
    assert_eq!(acting(&about), want, "introspection");
    assert_eq!(live_families(&app, &id_of(&m)), 1);

    // A refresh carries it on.
    let t = expect(
        &refresh(&app, &w.client, &refresh_token(&t)).await,
        StatusCode::OK,
    );
    assert_eq!(acting(&access(&t)), want, "refreshed");

    // With a membership of her own in Ledger, the picker offers both.
    activate(&app, &w.bob, "ledger", BILLING).await;
    let res = call(
        &app,
        "POST",
        "/api/orgs/ledger/roles",
        Some(j!({"sub": w.mia.sub, "client_id": BILLING, "role": "invoice:approve"})),
        w.bob.c(),
    )
    .await;
    expect(&res, StatusCode::CREATED);
    let res = b
        .get(&authorize_url(&w.client.0, B2B_SCOPE, &pkce(), ""))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = common::text(&res);
    assert!(page.contains("Which organisation?"), "{page}");
    assert!(
        page.contains("Ledger &#38; Co on behalf of Acme Oy"),
        "{page}"
    );
    let choice = format!("mandate:{}", id_of(&m));
    assert_eq!(
        offered(&page),
        [format!("org:{}", w.ledger), choice.clone()]
    );
    let t = b2b_tokens(&app, &mut b, &w.client, "", Some(&choice)).await;
    assert_eq!(acting(&access(&t)), want, "the mandate, picked");
    assert_eq!(
        acting(&payload(t["id_token"].as_str().unwrap())),
        want,
        "the mandate, picked"
    );
    // Picking Ledger itself: her own role, no act, no mandate.
    let t = b2b_tokens(
        &app,
        &mut b,
        &w.client,
        "",
        Some(&format!("org:{}", w.ledger)),
    )
    .await;
    assert_eq!(
        acting(&access(&t)),
        j!({
            "org_id": w.ledger, "org_slug": "ledger", "org_name": "Ledger & Co",
            "act": null, "mandate": null, "roles": ["invoice:approve"], "project_roles": {},
        })
    );
    // organization=acme keeps only the mandate: chosen without the picker.
    let t = b2b_tokens(&app, &mut b, &w.client, "&organization=acme", None).await;
    assert_eq!(acting(&access(&t)), want, "organization=acme");
}

#[tokio::test]
async fn a_mandate_for_the_whole_service_grants_its_roles_there_within_the_catalogue() {
    let app = app().await;
    let w = world(&app).await;
    let m = expect(
        &offer(
            &app,
            &w.alice,
            "acme",
            j!({"agent_org": "ledger", "client_id": BILLING,
                "roles": ["invoice:read", "invoice:approve"]}),
        )
        .await,
        StatusCode::CREATED,
    );
    accept_for(&app, &w.bob, &id_of(&m), &[&w.mia.sub]).await;
    let mut b = browser(&app, &w.mia);
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    let c = access(&t);
    assert_eq!(c["roles"], j!(["invoice:approve", "invoice:read"]));
    assert_eq!(c["project_roles"], j!({}));

    // The operator drops invoice:approve from the catalogue: the next
    // refresh no longer grants it.
    let res = admin(
        &app,
        "PUT",
        &format!("/api/admin/clients/{BILLING}"),
        Some(j!({
            "client_name": "Billing", "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"], "scope": B2B_SCOPE,
            "b2b": true, "activation_policy": "self_service",
            "roles": [{"name": "invoice:read"}, {"name": "invoice:submit"}],
        })),
    )
    .await;
    expect(&res, StatusCode::OK);
    let t = expect(
        &refresh(&app, &w.client, &refresh_token(&t)).await,
        StatusCode::OK,
    );
    assert_eq!(access(&t)["roles"], j!(["invoice:read"]));
}

// ------------------------------------------------------------------ 3

#[tokio::test]
async fn a_member_who_is_not_designated_cannot_use_it() {
    let app = app().await;
    let w = world(&app).await;
    let m = mandate(&app, &w).await;
    let id = id_of(&m);
    let nia = member(&app, &w.bob, "ledger", "nia@example.com").await;
    let mut b = browser(&app, &nia);
    no_context(&app, &mut b, &w.client.0).await;
    let res = b
        .get(&authorize_url(
            &w.client.0,
            B2B_SCOPE,
            &pkce(),
            "&organization=acme",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Nor does she see it among Ledger's mandates.
    assert_eq!(mandates_of(&app, &nia, "ledger").await["received"], j!([]));

    // Ledger opens it to all members: she signs in through it.
    let res = call(
        &app,
        "PUT",
        &format!("/api/orgs/ledger/mandates/{id}/delegates"),
        Some(j!({"all_members": true, "delegates": []})),
        w.bob.c(),
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["all_members"], true);
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    assert_eq!(access(&t)["act"], j!({"sub": nia.sub, "org_id": w.ledger}));
    // And back to mia alone: nia's next refresh is refused, her family ends.
    let res = call(
        &app,
        "PUT",
        &format!("/api/orgs/ledger/mandates/{id}/delegates"),
        Some(j!({"all_members": false, "delegates": [w.mia.sub]})),
        w.bob.c(),
    )
    .await;
    expect(&res, StatusCode::OK);
    refused(&refresh(&app, &w.client, &refresh_token(&t)).await);
    assert_eq!(live_families(&app, &id), 0);
    no_context(&app, &mut b, &w.client.0).await;
    // A member who left Ledger is not one any more, designated or not.
    let mut mb = browser(&app, &w.mia);
    let t = b2b_tokens(&app, &mut mb, &w.client, "", None).await;
    let res = call(
        &app,
        "DELETE",
        &format!("/api/orgs/ledger/members/{}", w.mia.sub),
        None,
        w.mia.c(),
    )
    .await;
    expect(&res, StatusCode::NO_CONTENT);
    refused(&refresh(&app, &w.client, &refresh_token(&t)).await);
    no_context(&app, &mut mb, &w.client.0).await;
}

#[tokio::test]
async fn an_offered_mandate_grants_nothing_until_accepted() {
    let app = app().await;
    let w = world(&app).await;
    let m = expect(
        &offer(&app, &w.alice, "acme", ledger_offer(&w)).await,
        StatusCode::CREATED,
    );
    let id = id_of(&m);
    // Designated before the acceptance: still nothing.
    let res = call(
        &app,
        "PUT",
        &format!("/api/orgs/ledger/mandates/{id}/delegates"),
        Some(j!({"all_members": false, "delegates": [w.mia.sub]})),
        w.bob.c(),
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["state"], "offered");
    let mut b = browser(&app, &w.mia);
    no_context(&app, &mut b, &w.client.0).await;
    // A forged pick of it is refused too.
    let res = b
        .get(&authorize_url(
            &w.client.0,
            B2B_SCOPE,
            &pkce(),
            "&prompt=select_account",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    accept_for(&app, &w.bob, &id, &[&w.mia.sub]).await;
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    assert_eq!(access(&t)["mandate"]["id"], id.as_str());
}

#[tokio::test]
async fn a_mandate_works_only_within_its_time() {
    let app = app().await;
    let w = world(&app).await;
    let m = mandate(&app, &w).await;
    let id = id_of(&m);
    let set = |column: &str, value: i64| {
        app.db()
            .execute(
                &format!("UPDATE mandates SET {column} = ?1 WHERE id = ?2"),
                rusqlite::params![value, id],
            )
            .unwrap();
    };
    let mut b = browser(&app, &w.mia);

    // Not yet valid.
    set("not_before", now() + 3600);
    no_context(&app, &mut b, &w.client.0).await;
    set("not_before", now() - 60);

    // Ending in two minutes: no token outlives it.
    let end = now() + 120;
    set("expires_at", end);
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    let c = access(&t);
    assert_eq!(c["mandate"]["expires_at"], end);
    assert!(c["exp"].as_i64().unwrap() <= end, "{c}");
    assert!(
        payload(t["id_token"].as_str().unwrap())["exp"]
            .as_i64()
            .unwrap()
            <= end,
        "{c}"
    );
    let r0 = refresh_token(&t);
    let t = expect(&refresh(&app, &w.client, &r0).await, StatusCode::OK);
    let r1 = refresh_token(&t);

    // Expired: the refresh is refused and the family ends.
    set("expires_at", now() - 1);
    refused(&refresh(&app, &w.client, &r1).await);
    assert_eq!(live_families(&app, &id), 0);
    no_context(&app, &mut b, &w.client.0).await;
    let seen = mandates_of(&app, &w.alice, "acme").await;
    assert_eq!(seen["given"][0]["state"], "expired");
    // Ledger cannot accept it again.
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/ledger/mandates/{id}/accept"),
        None,
        w.bob.c(),
    )
    .await;
    problem(&res, StatusCode::CONFLICT);

    // Extended by the operator: the ended family stays ended.
    set("expires_at", now() + DAY);
    refused(&refresh(&app, &w.client, &r1).await);
    refused(&refresh(&app, &w.client, &r0).await);
    assert_eq!(live_families(&app, &id), 0);
    b2b_tokens(&app, &mut b, &w.client, "", None).await;
}

#[tokio::test]
async fn a_revoked_mandate_ends_the_refresh_and_the_family_stays_revoked() {
    let app = app().await;
    let w = world(&app).await;
    let mut b = browser(&app, &w.mia);
    // Revoked by the principal, then (a second one) by the agent.
    for (by, slug) in [(&w.alice, "acme"), (&w.bob, "ledger")] {
        let m = mandate(&app, &w).await;
        let id = id_of(&m);
        let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
        let r0 = refresh_token(&t);
        let t = expect(&refresh(&app, &w.client, &r0).await, StatusCode::OK);
        let r1 = refresh_token(&t);

        let path = format!("/api/orgs/{slug}/mandates/{id}/revoke");
        let res = call(&app, "POST", &path, None, by.c()).await;
        assert_eq!(
            res.status(),
            StatusCode::NO_CONTENT,
            "{}",
            common::text(&res)
        );
        refused(&refresh(&app, &w.client, &r1).await);
        assert_eq!(live_families(&app, &id), 0, "{slug}");
        refused(&refresh(&app, &w.client, &r0).await);
        no_context(&app, &mut b, &w.client.0).await;
        // The refresh token is no longer active.
        let about = introspect(&app, &w.client, &r1).await;
        assert_eq!(about["active"], false, "{about}");

        // Revoked is final: neither revoked again nor accepted.
        problem(
            &call(&app, "POST", &path, None, by.c()).await,
            StatusCode::CONFLICT,
        );
        let res = call(
            &app,
            "POST",
            &format!("/api/orgs/ledger/mandates/{id}/accept"),
            None,
            w.bob.c(),
        )
        .await;
        problem(&res, StatusCode::CONFLICT);
        let seen = mandates_of(&app, &w.mia, "ledger").await;
        assert_eq!(
            find(&seen["received"], "id", &id).unwrap()["state"],
            "revoked"
        );
        let want = vec![
            ("mandate.offered".to_owned(), w.alice.sub.clone()),
            ("mandate.accepted".to_owned(), w.bob.sub.clone()),
            ("mandate.revoked".to_owned(), by.sub.clone()),
        ];
        assert_eq!(audit_of(&app, &w.alice, "acme", &id).await, want);
        assert_eq!(audit_of(&app, &w.bob, "ledger", &id).await, want);
    }
}

#[tokio::test]
async fn the_principal_deactivating_the_service_ends_the_mandate() {
    let app = app().await;
    let w = world(&app).await;
    let m = mandate(&app, &w).await;
    let id = id_of(&m);
    let mut b = browser(&app, &w.mia);
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/acme/services/{BILLING}/deactivate"),
        None,
        w.alice.c(),
    )
    .await;
    expect(&res, StatusCode::OK);
    refused(&refresh(&app, &w.client, &refresh_token(&t)).await);
    assert_eq!(live_families(&app, &id), 0);
    no_context(&app, &mut b, &w.client.0).await;

    // Activated again: a new login works, the old family stays revoked.
    activate(&app, &w.alice, "acme", BILLING).await;
    refused(&refresh(&app, &w.client, &refresh_token(&t)).await);
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    assert_eq!(access(&t)["mandate"]["id"], id.as_str());

    // The project deleted: the mandate for it ends.
    let res = call(
        &app,
        "DELETE",
        &format!("/api/orgs/acme/projects/{}", w.prj),
        None,
        w.alice.c(),
    )
    .await;
    expect(&res, StatusCode::NO_CONTENT);
    refused(&refresh(&app, &w.client, &refresh_token(&t)).await);
    no_context(&app, &mut b, &w.client.0).await;
}

#[tokio::test]
async fn an_offer_beyond_the_principals_reach_is_refused_and_stores_nothing() {
    let app = app().await;
    let w = world(&app).await;
    // Another service Acme has activated, with a project; one it has not; a
    // plain client; a project of Ledger's own.
    register(
        &app,
        j!({"client_id": "shop", "client_name": "Shop", "roles": [{"name": "buyer"}]}),
    )
    .await;
    activate(&app, &w.alice, "acme", "shop").await;
    let shop_prj = project(&app, &w.alice, "acme", "shop", "Shop HQ").await;
    billing(&app, "crm").await;
    expect(
        &admin(
            &app,
            "POST",
            "/api/admin/clients",
            Some(j!({"client_id": "plain", "client_name": "Plain",
                     "redirect_uris": [REDIRECT], "scope": "openid"})),
        )
        .await,
        StatusCode::CREATED,
    );
    activate(&app, &w.bob, "ledger", BILLING).await;
    let ledger_prj = project(&app, &w.bob, "ledger", BILLING, "Ledger's own").await;
    let before = rows(&app);
    let t = now();

    let base = ledger_offer(&w);
    let with = |changes: Value| {
        let mut o = base.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                o.as_object_mut().unwrap().remove(k);
            } else {
                o[k] = v.clone();
            }
        }
        o
    };
    let bad = [
        // Roles outside the catalogue, or none.
        with(j!({"roles": ["invoice:delete"]})),
        with(j!({"roles": ["invoice:read", "admin"]})),
        with(j!({"roles": ["buyer"]})),
        with(j!({"roles": []})),
        with(j!({"roles": null})),
        // A project of another service, of another organisation, or none.
        with(j!({"project_id": shop_prj})),
        with(j!({"project_id": ledger_prj})),
        with(j!({"project_id": "prj_nothing"})),
        // A service Acme has not activated, a plain client, none at all.
        with(j!({"client_id": "crm", "project_id": null})),
        with(j!({"client_id": "plain", "project_id": null})),
        with(j!({"client_id": "nothing", "project_id": null})),
        with(j!({"client_id": null})),
        // The time: ending before it starts, or already over.
        with(j!({"not_before": t + DAY, "expires_at": t + 3600})),
        with(j!({"not_before": t - 2 * DAY, "expires_at": t - DAY})),
        with(j!({"expires_at": t + 366 * DAY})),
        // The agent: both, neither, itself, nobody.
        with(j!({"agent_email": "pia@example.com"})),
        with(j!({"agent_org": null})),
        with(j!({"agent_org": "acme"})),
        with(j!({"agent_org": w.acme})),
        with(j!({"agent_org": "initech"})),
        with(j!({"agent_org": null, "agent_email": "not an address"})),
        // A named person, with roles outside the catalogue: no mail either.
        with(j!({"agent_org": null, "agent_email": "pia@example.com", "roles": ["root"]})),
        // An unknown field, a template that is not there.
        with(j!({"all_members": true})),
        with(j!({"template_id": "tpl_nothing"})),
    ];
    for body in bad {
        let res = offer(&app, &w.alice, "acme", body.clone()).await;
        problem(&res, StatusCode::BAD_REQUEST);
        assert_eq!(rows(&app), before, "{body}");
    }
    assert!(app.outbox("pia@example.com").await.is_empty());

    // Not Acme's admin: a member gets 403, an outsider 404.
    let ann = member(&app, &w.alice, "acme", "ann@example.com").await;
    let before = rows(&app);
    problem(
        &offer(&app, &ann, "acme", ledger_offer(&w)).await,
        StatusCode::FORBIDDEN,
    );
    problem(
        &offer(&app, &w.bob, "acme", ledger_offer(&w)).await,
        StatusCode::NOT_FOUND,
    );
    problem(
        &offer(&app, &w.mia, "acme", ledger_offer(&w)).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(rows(&app), before);
    // A body that is not JSON.
    let res = app
        .send(
            http::Request::post("/api/orgs/acme/mandates")
                .header("content-type", "application/json")
                .header("origin", common::ISSUER)
                .header("cookie", &w.alice.cookie)
                .body(bytes::Bytes::from_static(b"{not json"))
                .unwrap(),
        )
        .await;
    problem(&res, StatusCode::BAD_REQUEST);
    assert_eq!(rows(&app), before);
    // The standard offer itself is fine.
    expect(
        &offer(&app, &w.alice, "acme", ledger_offer(&w)).await,
        StatusCode::CREATED,
    );
}

#[tokio::test]
async fn the_agent_cannot_see_or_change_the_principals_organisation() {
    let app = app().await;
    let w = world(&app).await;
    let m = mandate(&app, &w).await;
    let id = id_of(&m);
    // Another mandate of Acme's, to Globex.
    let carl = person(&app, "carl@example.com").await;
    org(&app, &carl, "globex", "Globex").await;
    let g = expect(
        &offer(
            &app,
            &w.alice,
            "acme",
            j!({"agent_org": "globex", "client_id": BILLING, "roles": ["invoice:read"]}),
        )
        .await,
        StatusCode::CREATED,
    );
    let gid = id_of(&g);
    let counts = || {
        [
            app.count("SELECT count(*) FROM memberships"),
            app.count("SELECT count(*) FROM role_assignments"),
            app.count("SELECT count(*) FROM invitations"),
            app.count("SELECT count(*) FROM projects"),
            app.count("SELECT count(*) FROM activations WHERE status = 'active'"),
            app.count("SELECT count(*) FROM mandates WHERE state = 'revoked'"),
            app.count("SELECT count(*) FROM organisations WHERE name = 'Acme Oy'"),
        ]
    };
    let before = counts();
    let unknown = problem(
        &call(&app, "GET", "/api/orgs/initech/members", None, w.bob.c()).await,
        StatusCode::NOT_FOUND,
    );
    let alice = &w.alice.sub;
    let prj = &w.prj;
    let tries: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/orgs/acme".into(), None),
        (
            "PATCH",
            "/api/orgs/acme".into(),
            Some(j!({"name": "Ours now"})),
        ),
        ("DELETE", "/api/orgs/acme".into(), None),
        ("GET", "/api/orgs/acme/members".into(), None),
        (
            "PATCH",
            format!("/api/orgs/acme/members/{alice}"),
            Some(j!({"role": "member"})),
        ),
        ("DELETE", format!("/api/orgs/acme/members/{alice}"), None),
        (
            "POST",
            "/api/orgs/acme/transfer".into(),
            Some(j!({"sub": w.mia.sub})),
        ),
        ("GET", "/api/orgs/acme/roles".into(), None),
        (
            "POST",
            "/api/orgs/acme/roles".into(),
            Some(j!({"sub": w.mia.sub, "client_id": BILLING, "role": "invoice:approve"})),
        ),
        (
            "DELETE",
            format!("/api/orgs/acme/roles?sub={alice}&client_id={BILLING}&role=invoice:read"),
            None,
        ),
        ("GET", "/api/orgs/acme/services".into(), None),
        (
            "POST",
            format!("/api/orgs/acme/services/{BILLING}/deactivate"),
            None,
        ),
        ("GET", "/api/orgs/acme/invitations".into(), None),
        (
            "POST",
            "/api/orgs/acme/invitations".into(),
            Some(j!({"email": "mole@example.com", "role": "admin"})),
        ),
        ("GET", "/api/orgs/acme/projects".into(), None),
        (
            "POST",
            "/api/orgs/acme/projects".into(),
            Some(j!({"client_id": BILLING, "name": "Mine"})),
        ),
        ("DELETE", format!("/api/orgs/acme/projects/{prj}"), None),
        ("GET", "/api/orgs/acme/audit".into(), None),
        ("GET", "/api/orgs/acme/audit/export".into(), None),
        ("GET", "/api/orgs/acme/mandates".into(), None),
        (
            "POST",
            "/api/orgs/acme/mandates".into(),
            Some(j!({"agent_org": "ledger", "client_id": BILLING, "roles": ["invoice:approve"]})),
        ),
        // Revoking or re-designating through Acme's slug.
        ("POST", format!("/api/orgs/acme/mandates/{id}/revoke"), None),
        (
            "PUT",
            format!("/api/orgs/acme/mandates/{id}/delegates"),
            Some(j!({"all_members": true, "delegates": []})),
        ),
        (
            "POST",
            format!("/api/orgs/acme/mandates/{gid}/accept"),
            None,
        ),
    ];
    for who in [&w.bob, &w.mia] {
        for (method, path, body) in &tries {
            let res = call(&app, method, path, body.clone(), who.c()).await;
            let p = problem(&res, StatusCode::NOT_FOUND);
            assert_eq!(p, unknown, "{method} {path}");
        }
    }
    // Through Ledger's own slug, only the mandates between them: Acme's
    // mandate to Globex is not found either.
    for (method, path) in [
        ("POST", format!("/api/orgs/ledger/mandates/{gid}/revoke")),
        ("POST", format!("/api/orgs/ledger/mandates/{gid}/accept")),
        ("PUT", format!("/api/orgs/ledger/mandates/{gid}/delegates")),
    ] {
        let body = (method == "PUT").then(|| j!({"all_members": true, "delegates": []}));
        let res = call(&app, method, &path, body, w.bob.c()).await;
        problem(&res, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        find(
            &mandates_of(&app, &w.bob, "ledger").await["received"],
            "id",
            &gid
        ),
        None
    );
    // Ledger designates only its own members: Acme's owner is not one.
    let res = call(
        &app,
        "PUT",
        &format!("/api/orgs/ledger/mandates/{id}/delegates"),
        Some(j!({"all_members": false, "delegates": [alice]})),
        w.bob.c(),
    )
    .await;
    problem(&res, StatusCode::BAD_REQUEST);
    // A member of Ledger cannot revoke it (403), and nothing has changed.
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/ledger/mandates/{id}/revoke"),
        None,
        w.mia.c(),
    )
    .await;
    problem(&res, StatusCode::FORBIDDEN);
    assert_eq!(counts(), before);
    let seen = mandates_of(&app, &w.alice, "acme").await;
    assert_eq!(
        find(&seen["given"], "id", &id).unwrap()["state"],
        "accepted"
    );
    assert_eq!(
        find(&seen["given"], "id", &id).unwrap()["delegates"],
        j!([w.mia.sub])
    );
}

// ------------------------------------------------------------------ 4

/// `POST /api/orgs/mandates/accept` with a mailed token.
async fn accept_link(
    app: &App,
    token_: &str,
    cookie: Option<&str>,
) -> http::Response<bytes::Bytes> {
    call(
        app,
        "POST",
        "/api/orgs/mandates/accept",
        Some(j!({"token": token_})),
        cookie,
    )
    .await
}

#[tokio::test]
async fn a_named_person_accepts_acts_for_the_organisation_and_revokes() {
    let app = app().await;
    let w = world(&app).await;
    let res = offer(
        &app,
        &w.alice,
        "acme",
        j!({"agent_email": "Pia@Example.com", "client_id": BILLING, "project_id": w.prj,
            "roles": ["invoice:read"]}),
    )
    .await;
    let m = expect(&res, StatusCode::CREATED);
    let id = id_of(&m);
    assert_eq!(m["state"], "offered");
    assert_eq!(m["agent"], j!({"org": null, "email": "pia@example.com"}));
    assert_eq!(m["delegates"], j!([]));

    // The mail, before she has an account.
    let mails = app.outbox("pia@example.com").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let link = app.mailed_link("pia@example.com").await;
    assert!(link.starts_with("/orgs/mandates/accept?token="), "{link}");
    assert!(mails[0].to_string().contains("Acme Oy"), "{}", mails[0]);
    let token_ = link.split("token=").nth(1).unwrap().to_owned();

    // She signs up and verifies; she sees the offer, but cannot use it yet.
    let pia = person(&app, "pia@example.com").await;
    let mine = expect(
        &call(&app, "GET", "/api/orgs/mandates", None, pia.c()).await,
        StatusCode::OK,
    );
    assert_eq!(mine["mandates"][0]["id"], id.as_str());
    assert_eq!(mine["mandates"][0]["state"], "offered");
    let mut b = browser(&app, &pia);
    no_context(&app, &mut b, &w.client.0).await;

    // Someone else with the link: 403, nothing accepted.
    problem(
        &accept_link(&app, &token_, w.bob.c()).await,
        StatusCode::FORBIDDEN,
    );
    problem(
        &accept_link(&app, &token_, None).await,
        StatusCode::UNAUTHORIZED,
    );
    let accepted = expect(&accept_link(&app, &token_, pia.c()).await, StatusCode::OK);
    assert_eq!(accepted["state"], "accepted");
    // The link works once.
    problem(
        &accept_link(&app, &token_, pia.c()).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(
        audit_of(&app, &w.alice, "acme", &id).await,
        vec![
            ("mandate.offered".to_owned(), w.alice.sub.clone()),
            ("mandate.accepted".to_owned(), pia.sub.clone()),
        ]
    );

    // She signs in to the service for Acme, as herself: act has no org_id.
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    let want = j!({
        "org_id": w.acme, "org_slug": "acme", "org_name": "Acme Oy",
        "act": {"sub": pia.sub},
        "mandate": {"id": id, "expires_at": m["expires_at"]},
        "roles": [],
        "project_roles": {w.prj.as_str(): ["invoice:read"]},
    });
    assert_eq!(acting(&access(&t)), want, "access token");
    let id_token = payload(t["id_token"].as_str().unwrap());
    assert_eq!(acting(&id_token), want, "ID token");
    assert_eq!(id_token["sub"], pia.sub.as_str());
    let info = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(acting(&info), want, "userinfo");

    // Only she can revoke it as a person; then her refresh is refused.
    problem(
        &call(
            &app,
            "POST",
            &format!("/api/orgs/mandates/{id}/revoke"),
            None,
            w.bob.c(),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/mandates/{id}/revoke"),
        None,
        pia.c(),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "{}",
        common::text(&res)
    );
    refused(&refresh(&app, &w.client, &refresh_token(&t)).await);
    assert_eq!(live_families(&app, &id), 0);
    no_context(&app, &mut b, &w.client.0).await;
    let mine = expect(
        &call(&app, "GET", "/api/orgs/mandates", None, pia.c()).await,
        StatusCode::OK,
    );
    assert_eq!(mine["mandates"][0]["state"], "revoked");
    assert_eq!(
        audit_of(&app, &w.alice, "acme", &id).await.last().unwrap(),
        &("mandate.revoked".to_owned(), pia.sub.clone())
    );
}

// ------------------------------------------------------------------ 5

#[tokio::test]
async fn the_operators_templates_fill_in_offers_and_its_limit_caps_them() {
    let app = app().await;
    let w = world(&app).await;
    register(
        &app,
        j!({"client_id": "shop", "client_name": "Shop", "roles": [{"name": "buyer"}]}),
    )
    .await;
    activate(&app, &w.alice, "acme", "shop").await;
    let settings = expect(
        &admin(&app, "GET", "/api/admin/settings", None).await,
        StatusCode::OK,
    );
    assert_eq!(settings, j!({"mandate_max_days": 365}));

    // A template; bad ones are refused and stored nowhere.
    let tpl = expect(
        &admin(
            &app,
            "POST",
            "/api/admin/mandate-templates",
            Some(j!({"name": "Accountant", "client_id": BILLING,
                     "roles": ["invoice:submit", "invoice:read"], "days": 90})),
        )
        .await,
        StatusCode::CREATED,
    );
    let tpl_id = id_of(&tpl);
    assert!(tpl_id.starts_with("tpl_"), "{tpl}");
    assert_eq!(tpl["roles"], j!(["invoice:read", "invoice:submit"]));
    for bad in [
        j!({"name": "X", "client_id": BILLING, "roles": ["root"], "days": 30}),
        j!({"name": "X", "client_id": BILLING, "roles": [], "days": 30}),
        j!({"name": "X", "client_id": BILLING, "roles": ["invoice:read"], "days": 0}),
        j!({"name": "X", "client_id": BILLING, "roles": ["invoice:read"], "days": 366}),
        j!({"name": "", "client_id": BILLING, "roles": ["invoice:read"], "days": 30}),
        j!({"name": "X", "client_id": "nothing", "roles": ["invoice:read"], "days": 30}),
        j!({"name": "X", "client_id": BILLING, "roles": ["invoice:read"]}),
    ] {
        let res = admin(
            &app,
            "POST",
            "/api/admin/mandate-templates",
            Some(bad.clone()),
        )
        .await;
        problem(&res, StatusCode::BAD_REQUEST);
        assert_eq!(
            app.count("SELECT count(*) FROM mandate_templates"),
            1,
            "{bad}"
        );
    }
    let list = expect(
        &admin(&app, "GET", "/api/admin/mandate-templates", None).await,
        StatusCode::OK,
    );
    assert_eq!(list["templates"].as_array().unwrap().len(), 1);
    assert_eq!(list["templates"][0]["id"], tpl_id.as_str());
    assert_eq!(list["templates"][0]["days"], 90);

    // An offer from the template: its service, roles and days.
    let m = expect(
        &offer(
            &app,
            &w.alice,
            "acme",
            j!({"agent_org": "ledger", "template_id": tpl_id}),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(m["client_id"], BILLING);
    assert_eq!(m["roles"], j!(["invoice:read", "invoice:submit"]));
    assert_eq!(m["template_id"], tpl_id.as_str());
    assert_eq!(m["project_id"], "");
    assert_eq!(
        m["expires_at"].as_i64().unwrap() - m["not_before"].as_i64().unwrap(),
        90 * DAY
    );
    let before = rows(&app);
    let t = now();
    for bad in [
        // Longer than the template's days, or for another service.
        j!({"agent_org": "ledger", "template_id": tpl_id, "expires_at": t + 91 * DAY}),
        j!({"agent_org": "ledger", "template_id": tpl_id, "client_id": "shop"}),
    ] {
        problem(
            &offer(&app, &w.alice, "acme", bad.clone()).await,
            StatusCode::BAD_REQUEST,
        );
        assert_eq!(rows(&app), before, "{bad}");
    }

    // The operator's limit, 30 days: 31 are refused, 30 are fine.
    let res = admin(
        &app,
        "PUT",
        "/api/admin/settings",
        Some(j!({"mandate_max_days": 30})),
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK), j!({"mandate_max_days": 30}));
    let base = ledger_offer(&w);
    let until = |expires_at: i64| {
        let mut o = base.clone();
        o["expires_at"] = j!(expires_at);
        o
    };
    let res = offer(&app, &w.alice, "acme", until(now() + 31 * DAY)).await;
    let p = problem(&res, StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains("30 days"), "{p}");
    assert_eq!(rows(&app), before);
    expect(
        &offer(&app, &w.alice, "acme", until(now() + 30 * DAY)).await,
        StatusCode::CREATED,
    );
    // Without an end: the limit; the template's 90 days: the limit too.
    for body in [
        ledger_offer(&w),
        j!({"agent_org": "ledger", "template_id": tpl_id}),
    ] {
        let m = expect(
            &offer(&app, &w.alice, "acme", body).await,
            StatusCode::CREATED,
        );
        assert_eq!(
            m["expires_at"].as_i64().unwrap() - m["not_before"].as_i64().unwrap(),
            30 * DAY
        );
    }
    // Out of range, or not the operator: refused, the limit stays.
    for bad in [
        j!({"mandate_max_days": 0}),
        j!({"mandate_max_days": 366}),
        j!({"mandate_max_days": "30"}),
        j!({"days": 30}),
    ] {
        let res = admin(&app, "PUT", "/api/admin/settings", Some(bad.clone())).await;
        problem(&res, StatusCode::BAD_REQUEST);
    }
    let res = call(
        &app,
        "PUT",
        "/api/admin/settings",
        Some(j!({"mandate_max_days": 365})),
        w.alice.c(),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "{}",
        common::text(&res)
    );
    assert_eq!(
        expect(
            &admin(&app, "GET", "/api/admin/settings", None).await,
            StatusCode::OK
        ),
        j!({"mandate_max_days": 30})
    );

    // The template deleted: no more offers from it; its mandates stay.
    let path = format!("/api/admin/mandate-templates/{tpl_id}");
    let res = admin(&app, "DELETE", &path, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        &admin(&app, "DELETE", &path, None).await,
        StatusCode::NOT_FOUND,
    );
    problem(
        &offer(
            &app,
            &w.alice,
            "acme",
            j!({"agent_org": "ledger", "template_id": tpl_id}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM mandates WHERE template_id = '{tpl_id}'"
        )),
        2
    );
}

// ------------------------------------------------------------------ 6

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The API the billing service exchanges tokens for.
const API: &str = "invoices-api";
/// What mia asks the billing service for.
const API_SCOPE: &str = "openid profile email offline_access invoice:read invoice:submit";

/// [`world`] where billing (its access tokens living `ttl` seconds) may
/// exchange tokens for the invoices API with `invoice:read`, and mia holds
/// the standard mandate; the API's credentials and the mandate.
async fn exchange_world(app: &App, ttl: i64) -> (World, (String, String), Value) {
    let res = admin(
        app,
        "POST",
        "/api/admin/clients",
        Some(j!({"client_id": API, "client_name": "Invoices API",
                 "grant_types": ["client_credentials"], "scope": "invoice:read"})),
    )
    .await;
    let c = expect(&res, StatusCode::CREATED);
    let api = (
        API.to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    );
    let w = world_with(
        app,
        j!({
            "grant_types": ["authorization_code", "refresh_token", "client_credentials", EXCHANGE],
            "scope": API_SCOPE,
            "access_token_ttl": ttl,
            "token_exchange": [{"audience": API, "scope": "invoice:read"}],
        }),
    )
    .await;
    let m = mandate(app, &w).await;
    (w, api, m)
}

/// A token exchange at `/token` by `client`: these fields besides the grant
/// type and the subject token's type.
async fn trade(
    app: &App,
    client: &(String, String),
    fields: &[(&str, &str)],
) -> http::Response<bytes::Bytes> {
    let mut all = vec![
        ("grant_type", EXCHANGE),
        ("subject_token_type", ACCESS_TYPE),
    ];
    all.extend_from_slice(fields);
    token(app, client, &all).await
}

#[track_caller]
fn oauth_error(res: &http::Response<bytes::Bytes>, code: &str) {
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "{}",
        common::text(res)
    );
    assert_eq!(common::json(res)["error"], code, "{}", common::text(res));
}

/// mia's access token from the billing service, through the mandate.
async fn subject_token(app: &App, w: &World) -> String {
    let mut b = browser(app, &w.mia);
    let t = b2b_tokens_for(app, &mut b, &w.client, API_SCOPE, "", None).await;
    t["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn token_exchange_narrows_a_mandated_token_to_a_registered_audience() {
    let app = app().await;
    let (w, api, m) = exchange_world(&app, 300).await;
    let subject = subject_token(&app, &w).await;
    let s = payload(&subject);
    assert_eq!(s["scope"], API_SCOPE);
    let want = through(&w, &m, j!({"sub": w.mia.sub, "org_id": w.ledger}));
    assert_eq!(acting(&s), want);

    let res = trade(
        &app,
        &w.client,
        &[
            ("subject_token", &subject),
            ("audience", API),
            ("scope", "invoice:read"),
        ],
    )
    .await;
    let t = expect(&res, StatusCode::OK);
    assert_eq!(t["issued_token_type"], ACCESS_TYPE);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "invoice:read");
    assert!(
        t.get("refresh_token").is_none() && t.get("id_token").is_none(),
        "{t}"
    );
    let c = access(&t);
    assert_eq!(c["aud"], API);
    assert_eq!(c["scope"], "invoice:read");
    assert_eq!(c["sub"], w.mia.sub.as_str());
    assert_eq!(c["client_id"], BILLING);
    assert_eq!(acting(&c), want, "the organisation, act and mandate kept");
    assert!(c["exp"].as_i64().unwrap() <= s["exp"].as_i64().unwrap());
    assert!(t["expires_in"].as_i64().unwrap() <= 300);
    assert_ne!(c["jti"], s["jti"]);
    assert!(c.get("sid").is_none(), "{c}");
    // Without a scope: every registered scope the subject token holds.
    let res = trade(
        &app,
        &w.client,
        &[("subject_token", &subject), ("audience", API)],
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["scope"], "invoice:read");

    // The API introspects what it was given.
    let about = introspect(&app, &api, t["access_token"].as_str().unwrap()).await;
    assert_eq!(about["active"], true, "{about}");
    assert_eq!(about["aud"], API);
    assert_eq!(about["sub"], w.mia.sub.as_str());

    // With the service's own client_credentials token as the actor, the
    // service is the current actor and mia's act nests inside.
    let cc = expect(
        &token(&app, &w.client, &[("grant_type", "client_credentials")]).await,
        StatusCode::OK,
    );
    let actor = cc["access_token"].as_str().unwrap();
    let res = trade(
        &app,
        &w.client,
        &[
            ("subject_token", &subject),
            ("audience", API),
            ("actor_token", actor),
            ("actor_token_type", ACCESS_TYPE),
        ],
    )
    .await;
    let c = access(&expect(&res, StatusCode::OK));
    assert_eq!(
        c["act"],
        j!({"sub": BILLING, "act": {"sub": w.mia.sub, "org_id": w.ledger}})
    );
    assert_eq!(c["sub"], w.mia.sub.as_str());
    assert_eq!(c["org_id"], w.acme.as_str());
    assert_eq!(c["mandate"], want["mandate"]);

    // Discovery lists the grant.
    let d = common::json(&app.get("/.well-known/openid-configuration").await);
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&j!(EXCHANGE)),
        "{d}"
    );
}

#[tokio::test]
async fn token_exchange_refuses_what_is_not_registered_or_not_the_clients() {
    let app = app().await;
    let (w, api, _) = exchange_world(&app, 300).await;
    let subject = subject_token(&app, &w).await;
    // Another API, registered as a client but not for billing's exchanges.
    expect(
        &admin(
            &app,
            "POST",
            "/api/admin/clients",
            Some(j!({"client_id": "reports-api", "client_name": "Reports",
                     "grant_types": ["client_credentials"], "scope": "invoice:read"})),
        )
        .await,
        StatusCode::CREATED,
    );
    let s = subject.as_str();
    // An audience not registered, unknown, or a resource instead.
    for fields in [
        vec![("subject_token", s), ("audience", "reports-api")],
        vec![("subject_token", s), ("audience", "nothing-here")],
        vec![("subject_token", s), ("audience", BILLING)],
        vec![
            ("subject_token", s),
            ("audience", API),
            ("resource", "https://api.example.com/"),
        ],
    ] {
        oauth_error(&trade(&app, &w.client, &fields).await, "invalid_target");
    }
    // A scope wider than the registration, or than the subject token.
    for scope in ["invoice:read invoice:submit", "openid", "invoice:approve"] {
        let res = trade(
            &app,
            &w.client,
            &[("subject_token", s), ("audience", API), ("scope", scope)],
        )
        .await;
        oauth_error(&res, "invalid_scope");
    }
    // Not a token of ours, a bad type, an actor that is not the client.
    let api_cc = expect(
        &token(&app, &api, &[("grant_type", "client_credentials")]).await,
        StatusCode::OK,
    );
    let api_cc = api_cc["access_token"].as_str().unwrap();
    for fields in [
        vec![("subject_token", "not-a-token"), ("audience", API)],
        vec![
            ("subject_token", s),
            ("audience", API),
            ("actor_token", api_cc),
            ("actor_token_type", ACCESS_TYPE),
        ],
        vec![
            ("subject_token", s),
            ("audience", API),
            ("actor_token", s),
            ("actor_token_type", ACCESS_TYPE),
        ],
        vec![("subject_token", s), ("audience", API), ("actor_token", s)],
        vec![("subject_token", s)],
    ] {
        oauth_error(&trade(&app, &w.client, &fields).await, "invalid_request");
    }
    let res = token(
        &app,
        &w.client,
        &[
            ("grant_type", EXCHANGE),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            ("subject_token", s),
            ("audience", API),
        ],
    )
    .await;
    oauth_error(&res, "invalid_request");

    // A subject token issued to another client: refused.
    let portal = register(
        &app,
        j!({"client_id": "portal", "client_name": "Portal", "b2b": false,
            "scope": "openid invoice:read", "grant_types": ["authorization_code"]}),
    )
    .await;
    let mut b = browser(&app, &w.mia);
    let foreign = tokens(&app, &mut b, &portal, "openid invoice:read").await;
    let foreign = foreign["access_token"].as_str().unwrap();
    let res = trade(
        &app,
        &w.client,
        &[("subject_token", foreign), ("audience", API)],
    )
    .await;
    oauth_error(&res, "invalid_request");
    // A client without the grant may not exchange at all, even its own.
    let res = trade(
        &app,
        &portal,
        &[("subject_token", foreign), ("audience", API)],
    )
    .await;
    oauth_error(&res, "unauthorized_client");

    // The subject token revoked: refused.
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", w.client.0, w.client.1));
    let res = app
        .send(
            http::Request::post("/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", format!("Basic {basic}"))
                .body(common::form_body(&[("token", s)]))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", common::text(&res));
    let res = trade(&app, &w.client, &[("subject_token", s), ("audience", API)]).await;
    oauth_error(&res, "invalid_request");
    // Still fine with a fresh one.
    let fresh = subject_token(&app, &w).await;
    let res = trade(
        &app,
        &w.client,
        &[("subject_token", &fresh), ("audience", API)],
    )
    .await;
    expect(&res, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_subject_token_is_not_exchanged() {
    let app = app().await;
    // Billing's access tokens live a minute, the shortest allowed.
    let (w, _, _) = exchange_world(&app, 60).await;
    let subject = subject_token(&app, &w).await;
    let res = trade(
        &app,
        &w.client,
        &[("subject_token", &subject), ("audience", API)],
    )
    .await;
    let t = expect(&res, StatusCode::OK);
    assert!(t["expires_in"].as_i64().unwrap() <= 60, "{t}");
    assert!(access(&t)["exp"].as_i64().unwrap() <= payload(&subject)["exp"].as_i64().unwrap());
    tokio::time::sleep(std::time::Duration::from_secs(62)).await;
    let res = trade(
        &app,
        &w.client,
        &[("subject_token", &subject), ("audience", API)],
    )
    .await;
    oauth_error(&res, "invalid_request");
}

// ------------------------------------------------------------------ more rules

#[tokio::test]
async fn a_suspended_principal_or_agent_ends_the_mandate() {
    let app = app().await;
    let w = world(&app).await;
    let m = mandate(&app, &w).await;
    let id = id_of(&m);
    let mut b = browser(&app, &w.mia);
    for org_id in [&w.acme, &w.ledger] {
        let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
        let res = admin(
            &app,
            "POST",
            &format!("/api/admin/orgs/{org_id}/suspend"),
            None,
        )
        .await;
        assert_eq!(expect(&res, StatusCode::OK)["status"], "suspended");
        refused(&refresh(&app, &w.client, &refresh_token(&t)).await);
        assert_eq!(live_families(&app, &id), 0);
        no_context(&app, &mut b, &w.client.0).await;
        let res = admin(
            &app,
            "POST",
            &format!("/api/admin/orgs/{org_id}/resume"),
            None,
        )
        .await;
        assert_eq!(expect(&res, StatusCode::OK)["status"], "active");
        refused(&refresh(&app, &w.client, &refresh_token(&t)).await);
    }
    // Resumed, both: it works again for new logins.
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    assert_eq!(access(&t)["mandate"]["id"], id.as_str());
    // organization= naming Ledger, which is not what the mandate acts for:
    // refused.
    let res = b
        .get(&authorize_url(
            &w.client.0,
            B2B_SCOPE,
            &pkce(),
            "&organization=ledger",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = common::header(&res, "location");
    assert!(location.contains("error=access_denied"), "{location}");
}

#[tokio::test]
async fn every_change_of_delegates_is_in_both_audit_logs() {
    let app = app().await;
    let w = world(&app).await;
    let m = mandate(&app, &w).await;
    let id = id_of(&m);
    let res = call(
        &app,
        "PUT",
        &format!("/api/orgs/ledger/mandates/{id}/delegates"),
        Some(j!({"all_members": true, "delegates": []})),
        w.bob.c(),
    )
    .await;
    let v = expect(&res, StatusCode::OK);
    assert_eq!(
        (v["all_members"].clone(), v["delegates"].clone()),
        (j!(true), j!([]))
    );
    let want = vec![
        ("mandate.offered".to_owned(), w.alice.sub.clone()),
        ("mandate.accepted".to_owned(), w.bob.sub.clone()),
        ("mandate.delegates_changed".to_owned(), w.bob.sub.clone()),
    ];
    assert_eq!(audit_of(&app, &w.alice, "acme", &id).await, want);
    assert_eq!(audit_of(&app, &w.bob, "ledger", &id).await, want);
    // Designating someone who is not an active member: 400, nothing changes.
    let audit = app.count("SELECT count(*) FROM org_audit");
    for delegates in [j!([w.alice.sub]), j!(["nobody"])] {
        let res = call(
            &app,
            "PUT",
            &format!("/api/orgs/ledger/mandates/{id}/delegates"),
            Some(j!({"all_members": false, "delegates": delegates})),
            w.bob.c(),
        )
        .await;
        problem(&res, StatusCode::BAD_REQUEST);
    }
    assert_eq!(app.count("SELECT count(*) FROM org_audit"), audit);
    assert_eq!(app.count("SELECT count(*) FROM mandate_delegates"), 0);
    assert_eq!(
        app.count("SELECT all_members FROM mandates"),
        1,
        "still open to all members"
    );
}

#[tokio::test]
async fn deleting_the_service_or_an_organisation_leaves_no_mandate_rows() {
    let app = app().await;
    let w = world(&app).await;
    let m = mandate(&app, &w).await;
    let mut b = browser(&app, &w.mia);
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    assert_eq!(app.count("SELECT count(*) FROM mandate_delegates"), 1);

    // The agent organisation deleted: its mandates and their delegates go.
    let res = call(&app, "DELETE", "/api/orgs/ledger", None, w.bob.c()).await;
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "{}",
        common::text(&res)
    );
    refused(&refresh(&app, &w.client, &refresh_token(&t)).await);
    assert_eq!(live_families(&app, &id_of(&m)), 0);
    assert_eq!(app.count("SELECT count(*) FROM mandates"), 0);
    assert_eq!(app.count("SELECT count(*) FROM mandate_delegates"), 0);
    assert_eq!(mandates_of(&app, &w.alice, "acme").await["given"], j!([]));

    // Again with a new Ledger; then the service deleted by the operator.
    let ledger = org(&app, &w.bob, "ledger", "Ledger & Co").await;
    let (_, token_) = invite(&app, &w.bob, "ledger", j!({"email": "mia@example.com"})).await;
    expect(&accept(&app, &token_, w.mia.c()).await, StatusCode::OK);
    let m = mandate(&app, &w).await;
    assert_eq!(m["agent"]["org"]["id"], ledger["id"]);
    b2b_tokens(&app, &mut b, &w.client, "", None).await;
    assert_eq!(app.count("SELECT count(*) FROM mandate_delegates"), 1);
    let res = admin(
        &app,
        "DELETE",
        &format!("/api/admin/clients/{BILLING}"),
        None,
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "{}",
        common::text(&res)
    );
    assert_eq!(app.count("SELECT count(*) FROM refresh_families"), 0);
    assert_eq!(app.count("SELECT count(*) FROM mandates"), 0);
    assert_eq!(
        app.count("SELECT count(*) FROM mandate_delegates"),
        0,
        "the delegates of the service's mandates go with them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_acceptances_accept_once_with_the_winners_delegates() {
    let app = std::sync::Arc::new(app().await);
    let w = world(&app).await;
    let mut members = vec![w.mia.sub.clone()];
    for n in 0..4 {
        let p = member(&app, &w.bob, "ledger", &format!("m{n}@example.com")).await;
        members.push(p.sub);
    }
    for round in 0..3 {
        let m = expect(
            &offer(&app, &w.alice, "acme", ledger_offer(&w)).await,
            StatusCode::CREATED,
        );
        let id = id_of(&m);
        let mut tasks = Vec::new();
        for sub in members.clone() {
            let app = app.clone();
            let cookie = w.bob.cookie.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let res = call(
                    &app,
                    "POST",
                    &format!("/api/orgs/ledger/mandates/{id}/accept"),
                    Some(j!({"delegates": [sub]})),
                    Some(&cookie),
                )
                .await;
                (res.status(), sub)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (status, sub) = t.await.unwrap();
            match status {
                StatusCode::OK => winners.push(sub),
                StatusCode::CONFLICT => {}
                other => panic!("{other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let seen = mandates_of(&app, &w.alice, "acme").await;
        let got = find(&seen["given"], "id", &id).unwrap();
        assert_eq!(got["state"], "accepted");
        assert_eq!(
            got["delegates"],
            j!([winners[0]]),
            "round {round}: only the accepted request's delegates"
        );
        let accepted = audit_of(&app, &w.bob, "ledger", &id)
            .await
            .into_iter()
            .filter(|(a, _)| a == "mandate.accepted")
            .count();
        assert_eq!(accepted, 1);
    }
}

#[tokio::test]
async fn introspection_of_a_mandated_refresh_token_follows_the_mandate() {
    let app = app().await;
    let w = world(&app).await;
    let m = mandate(&app, &w).await;
    let id = id_of(&m);
    let end = now() + 600;
    app.db()
        .execute(
            "UPDATE mandates SET expires_at = ?1 WHERE id = ?2",
            rusqlite::params![end, id],
        )
        .unwrap();
    let mut b = browser(&app, &w.mia);
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    let r = refresh_token(&t);
    let about = introspect(&app, &w.client, &r).await;
    assert_eq!(about["active"], true, "{about}");
    assert!(about["exp"].as_i64().unwrap() <= end, "{about}");
    assert_eq!(about["act"], j!({"sub": w.mia.sub, "org_id": w.ledger}));
    // Revoked: the refresh token is inactive at once, before any refresh.
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/acme/mandates/{id}/revoke"),
        None,
        w.alice.c(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let about = introspect(&app, &w.client, &r).await;
    assert_eq!(about, j!({"active": false}));
}

#[tokio::test]
async fn with_personal_use_just_me_is_offered_next_to_the_mandate() {
    let app = app().await;
    let w = world_with(&app, j!({"personal_use": true})).await;
    let m = mandate(&app, &w).await;
    let mut b = browser(&app, &w.mia);
    let res = b
        .get(&authorize_url(&w.client.0, B2B_SCOPE, &pkce(), ""))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = common::text(&res);
    assert!(page.contains("Just me"), "{page}");
    assert_eq!(
        offered(&page),
        [format!("mandate:{}", id_of(&m)), "personal".to_owned()]
    );
    let t = b2b_tokens(&app, &mut b, &w.client, "", Some("personal")).await;
    let c = access(&t);
    for claim in [
        "org_id",
        "org_slug",
        "org_name",
        "act",
        "mandate",
        "roles",
        "project_roles",
    ] {
        assert!(c.get(claim).is_none(), "{claim}: {c}");
    }
    expect(
        &refresh(&app, &w.client, &refresh_token(&t)).await,
        StatusCode::OK,
    );
    let t = b2b_tokens(
        &app,
        &mut b,
        &w.client,
        "",
        Some(&format!("mandate:{}", id_of(&m))),
    )
    .await;
    assert_eq!(access(&t)["org_id"], w.acme.as_str());
    // Someone with no organisation at all: just them, without a picker.
    let zed = person(&app, "zed@example.com").await;
    let mut b = browser(&app, &zed);
    let t = b2b_tokens(&app, &mut b, &w.client, "", None).await;
    assert!(access(&t).get("org_id").is_none());
    // organization=acme keeps only what acts for Acme: nothing of zed's.
    let res = b
        .get(&authorize_url(
            &w.client.0,
            B2B_SCOPE,
            &pkce(),
            "&organization=acme",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(common::header(&res, "location").contains("error=access_denied"));
}

#[tokio::test]
async fn a_named_person_may_decline_an_offer_and_the_link_dies() {
    let app = app().await;
    let w = world(&app).await;
    let pia = person(&app, "pia@example.com").await;
    let m = expect(
        &offer(
            &app,
            &w.alice,
            "acme",
            j!({"agent_email": "pia@example.com", "client_id": BILLING, "roles": ["invoice:read"]}),
        )
        .await,
        StatusCode::CREATED,
    );
    let token_ = mailed_token(&app, "pia@example.com").await;
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/mandates/{}/revoke", id_of(&m)),
        None,
        pia.c(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        &accept_link(&app, &token_, pia.c()).await,
        StatusCode::BAD_REQUEST,
    );
    let mut b = browser(&app, &pia);
    no_context(&app, &mut b, &w.client.0).await;
    // With the address unverified, she could not have accepted a new one.
    let m = expect(
        &offer(
            &app,
            &w.alice,
            "acme",
            j!({"agent_email": "pia@example.com", "client_id": BILLING, "roles": ["invoice:read"]}),
        )
        .await,
        StatusCode::CREATED,
    );
    let token_ = mailed_token(&app, "pia@example.com").await;
    app.db()
        .execute(
            "UPDATE identities SET email_verified = 0 WHERE email = 'pia@example.com'",
            [],
        )
        .unwrap();
    problem(
        &accept_link(&app, &token_, pia.c()).await,
        StatusCode::FORBIDDEN,
    );
    let mine = expect(
        &call(&app, "GET", "/api/orgs/mandates", None, pia.c()).await,
        StatusCode::OK,
    );
    assert_eq!(
        find(&mine["mandates"], "id", &id_of(&m)).unwrap()["state"],
        "offered"
    );
}
