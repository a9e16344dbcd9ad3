//! End-to-end tests of organisations (docs/organisations.md): the JSON API
//! under `/api/orgs`, the operator's `/api/admin/orgs` and
//! `/api/admin/activations`, invitations, roles, activations, bearer access
//! with the `orgs` scope, and the organisation in a b2b client's tokens,
//! through the test host and the real orgs and token components.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::orgs::*;
use common::{App, ISSUER, header, json, text};
use http::{Request, Response, StatusCode};
use serde_json::{Value, json as j};

/// Registers a b2b service (catalogue: buyer, approver) under this policy;
/// returns (client_id, secret).
async fn service(app: &App, id: &str, policy: &str) -> (String, String) {
    let res = admin(
        app,
        "POST",
        "/api/admin/clients",
        Some(j!({
            "client_id": id, "client_name": format!("Service {id}"),
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile email offline_access",
            "b2b": true,
            "roles": [{"name": "buyer", "description": "Places orders"}, {"name": "approver"}],
            "activation_policy": policy,
        })),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", text(&res));
    let b = json(&res);
    assert_eq!(b["b2b"], true, "{b}");
    (
        b["client_id"].as_str().unwrap().to_owned(),
        b["client_secret"].as_str().unwrap().to_owned(),
    )
}

fn counts(app: &App) -> [i64; 4] {
    [
        app.count("SELECT count(*) FROM organisations"),
        app.count("SELECT count(*) FROM memberships"),
        app.count("SELECT count(*) FROM invitations"),
        app.count("SELECT count(*) FROM role_assignments"),
    ]
}

// ------------------------------------------------------------------ 1

#[tokio::test]
async fn a_verified_person_creates_an_organisation_and_owns_it() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    let created = org(&app, &alice, "acme", "Acme Oy").await;
    assert!(
        created["id"].as_str().unwrap().starts_with("org_"),
        "{created}"
    );
    assert_eq!(created["slug"], "acme");
    assert_eq!(created["name"], "Acme Oy");
    assert_eq!(created["status"], "active");
    assert_eq!(created["role"], "owner");

    let list = expect(
        &call(&app, "GET", "/api/orgs", None, alice.c()).await,
        StatusCode::OK,
    );
    let list = &list["organisations"];
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], created["id"]);
    assert_eq!(list[0]["role"], "owner");

    let got = expect(
        &call(&app, "GET", "/api/orgs/acme", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(got["id"], created["id"]);
    assert_eq!(got["name"], "Acme Oy");
    assert_eq!(got["role"], "owner");
    assert_eq!(got["roles"], j!([]));

    let members = expect(
        &call(&app, "GET", "/api/orgs/acme/members", None, alice.c()).await,
        StatusCode::OK,
    );
    let members = members["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["sub"], alice.sub.as_str());
    assert_eq!(members[0]["email"], "alice@example.com");
    assert_eq!(members[0]["role"], "owner");
    assert_eq!(members[0]["status"], "active");
    assert_eq!(
        app.count("SELECT count(*) FROM memberships WHERE role = 'owner'"),
        1
    );

    // Nobody signed in: 401.
    problem(
        &call(&app, "GET", "/api/orgs", None, None).await,
        StatusCode::UNAUTHORIZED,
    );

    // An unverified email (the operator unmarked it): 403, nothing made.
    let bob = person(&app, "bob@example.com").await;
    app.db()
        .execute(
            "UPDATE identities SET email_verified = 0 WHERE email = 'bob@example.com'",
            [],
        )
        .unwrap();
    let res = call(
        &app,
        "POST",
        "/api/orgs",
        Some(j!({"name": "Bob's", "slug": "bobs"})),
        bob.c(),
    )
    .await;
    assert!(
        problem(&res, StatusCode::FORBIDDEN)["detail"]
            .as_str()
            .unwrap()
            .contains("Verify")
    );
    assert_eq!(app.count("SELECT count(*) FROM organisations"), 1);
    assert_eq!(app.count("SELECT count(*) FROM memberships"), 1);
}

#[tokio::test]
async fn without_self_service_only_the_operator_creates_organisations() {
    let app = App::dev(&[("admin_token", ADMIN), ("org_self_service", "false")]).await;
    let alice = person(&app, "alice@example.com").await;
    let res = call(
        &app,
        "POST",
        "/api/orgs",
        Some(j!({"name": "Acme Oy", "slug": "acme"})),
        alice.c(),
    )
    .await;
    problem(&res, StatusCode::FORBIDDEN);
    assert_eq!(counts(&app), [0, 0, 0, 0]);

    // The operator creates it for her; she owns it.
    let res = admin(
        &app,
        "POST",
        "/api/admin/orgs",
        Some(j!({"name": "Acme Oy", "slug": "acme", "owner_email": "alice@example.com"})),
    )
    .await;
    expect(&res, StatusCode::CREATED);
    let list = expect(
        &call(&app, "GET", "/api/orgs", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(list["organisations"][0]["slug"], "acme");
    assert_eq!(list["organisations"][0]["role"], "owner");
    let all = expect(
        &admin(&app, "GET", "/api/admin/orgs", None).await,
        StatusCode::OK,
    );
    assert_eq!(all["organisations"].as_array().unwrap().len(), 1);
}

// ------------------------------------------------------------------ 2

#[tokio::test]
async fn an_invited_newcomer_signs_up_by_accepting() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    service(&app, "shop", "self_service").await;
    activate(&app, &alice, "acme", "shop").await;

    let (inv, token) = invite(
        &app,
        &alice,
        "acme",
        j!({"email": "New@Example.com", "role": "admin",
            "grants": [{"client_id": "shop", "role": "buyer"}]}),
    )
    .await;
    assert!(inv["id"].as_str().unwrap().starts_with("inv_"));
    assert_eq!(inv["email"], "new@example.com");
    assert_eq!(inv["role"], "admin");
    assert_eq!(inv["state"], "pending");
    assert_eq!(inv["grants"], j!([{"client_id": "shop", "role": "buyer"}]));
    assert_eq!(inv["invited_by"], alice.sub.as_str());

    // Not signed in, with a password: the account is made, signed in, joined.
    let res = call(
        &app,
        "POST",
        "/api/orgs/invitations/accept",
        Some(j!({"token": token, "password": PASSWORD, "name": "Newt"})),
        None,
    )
    .await;
    let body = expect(&res, StatusCode::CREATED);
    assert_eq!(body["organisation"]["slug"], "acme");
    assert_eq!(body["organisation"]["role"], "admin", "the role invited to");
    let cookie = session_cookie(&res);
    let me = expect(
        &call(&app, "GET", "/api/account/me", None, Some(&cookie)).await,
        StatusCode::OK,
    );
    assert_eq!(me["email"], "new@example.com");
    assert_eq!(me["email_verified"], true, "the click proved the address");
    assert_eq!(me["sub"], body["sub"]);
    let sub = me["sub"].as_str().unwrap();

    let got = expect(
        &call(&app, "GET", "/api/orgs/acme", None, Some(&cookie)).await,
        StatusCode::OK,
    );
    assert_eq!(got["role"], "admin");
    assert_eq!(
        got["roles"],
        j!([{"sub": sub, "client_id": "shop", "project_id": "", "role": "buyer"}])
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM memberships WHERE identity_id = '{sub}' AND role = 'admin'"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM role_assignments WHERE identity_id = '{sub}'"
        )),
        1
    );
    let invs = expect(
        &call(&app, "GET", "/api/orgs/acme/invitations", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(invs["invitations"][0]["state"], "accepted");
    // The new password works.
    login(&app, "new@example.com").await;
}

#[tokio::test]
async fn an_invited_existing_user_accepts_signed_in() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    service(&app, "shop", "self_service").await;
    activate(&app, &alice, "acme", "shop").await;
    let carol = person(&app, "carol@example.com").await;
    let (_, token) = invite(
        &app,
        &alice,
        "acme",
        j!({"email": "carol@example.com",
            "grants": [{"client_id": "shop", "role": "approver"}]}),
    )
    .await;

    // Not signed in and no password: told to sign in; with a password: the
    // account exists already.
    problem(
        &call(
            &app,
            "POST",
            "/api/orgs/invitations/accept",
            Some(j!({"token": token})),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
    );
    problem(
        &call(
            &app,
            "POST",
            "/api/orgs/invitations/accept",
            Some(j!({"token": token, "password": PASSWORD})),
            None,
        )
        .await,
        StatusCode::CONFLICT,
    );
    assert_eq!(app.count("SELECT count(*) FROM memberships"), 1);

    let res = call(
        &app,
        "POST",
        "/api/orgs/invitations/accept",
        Some(j!({"token": token})),
        carol.c(),
    )
    .await;
    let body = expect(&res, StatusCode::OK);
    assert_eq!(body["organisation"]["slug"], "acme");
    assert_eq!(body["sub"], carol.sub.as_str());

    let got = expect(
        &call(&app, "GET", "/api/orgs/acme", None, carol.c()).await,
        StatusCode::OK,
    );
    assert_eq!(got["role"], "member");
    assert_eq!(
        got["roles"],
        j!([{"sub": carol.sub, "client_id": "shop", "project_id": "", "role": "approver"}])
    );
    let list = expect(
        &call(&app, "GET", "/api/orgs", None, carol.c()).await,
        StatusCode::OK,
    );
    assert_eq!(list["organisations"][0]["slug"], "acme");
    assert_eq!(list["organisations"][0]["role"], "member");
}

// ------------------------------------------------------------------ 3

#[tokio::test]
async fn roles_at_each_scope() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    service(&app, "shop", "self_service").await;
    activate(&app, &alice, "acme", "shop").await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;

    // Built in: bob becomes admin.
    let res = call(
        &app,
        "PATCH",
        &format!("/api/orgs/acme/members/{}", bob.sub),
        Some(j!({"role": "admin"})),
        alice.c(),
    )
    .await;
    expect(&res, StatusCode::NO_CONTENT);
    let members = expect(
        &call(&app, "GET", "/api/orgs/acme/members", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(
        find(&members["members"], "sub", &bob.sub).unwrap()["role"],
        "admin"
    );
    let got = expect(
        &call(&app, "GET", "/api/orgs/acme", None, bob.c()).await,
        StatusCode::OK,
    );
    assert_eq!(got["role"], "admin");

    // The service: buyer on the whole of shop. Again: 200, nothing new.
    let grant = j!({"sub": bob.sub, "client_id": "shop", "role": "buyer"});
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/roles",
        Some(grant.clone()),
        alice.c(),
    )
    .await;
    expect(&res, StatusCode::CREATED);
    let res = call(&app, "POST", "/api/orgs/acme/roles", Some(grant), alice.c()).await;
    expect(&res, StatusCode::OK);

    // A project: approver in the Helsinki office only.
    let project = expect(
        &call(
            &app,
            "POST",
            "/api/orgs/acme/projects",
            Some(j!({"client_id": "shop", "name": "Helsinki office"})),
            alice.c(),
        )
        .await,
        StatusCode::CREATED,
    );
    let prj = project["id"].as_str().unwrap().to_owned();
    assert!(prj.starts_with("prj_"));
    let projects = expect(
        &call(&app, "GET", "/api/orgs/acme/projects", None, bob.c()).await,
        StatusCode::OK,
    );
    assert_eq!(projects["projects"][0]["name"], "Helsinki office");
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/roles",
        Some(j!({"sub": bob.sub, "client_id": "shop", "project_id": prj, "role": "approver"})),
        alice.c(),
    )
    .await;
    expect(&res, StatusCode::CREATED);

    let buyer = j!({"sub": bob.sub, "client_id": "shop", "project_id": "", "role": "buyer"});
    let approver = j!({"sub": bob.sub, "client_id": "shop", "project_id": prj, "role": "approver"});
    let roles = expect(
        &call(&app, "GET", "/api/orgs/acme/roles", None, alice.c()).await,
        StatusCode::OK,
    );
    let roles = roles["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert!(
        roles.contains(&buyer) && roles.contains(&approver),
        "{roles:?}"
    );
    let members = expect(
        &call(&app, "GET", "/api/orgs/acme/members", None, alice.c()).await,
        StatusCode::OK,
    );
    let theirs = find(&members["members"], "sub", &bob.sub).unwrap()["roles"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(theirs.len(), 2);
    assert!(theirs.contains(&buyer) && theirs.contains(&approver));
    let got = expect(
        &call(&app, "GET", "/api/orgs/acme", None, bob.c()).await,
        StatusCode::OK,
    );
    assert_eq!(got["roles"].as_array().unwrap().len(), 2);

    // DELETE removes one; a second time there is nothing to remove.
    let del = format!(
        "/api/orgs/acme/roles?sub={}&client_id=shop&role=buyer",
        bob.sub
    );
    expect(
        &call(&app, "DELETE", &del, None, alice.c()).await,
        StatusCode::NO_CONTENT,
    );
    problem(
        &call(&app, "DELETE", &del, None, alice.c()).await,
        StatusCode::NOT_FOUND,
    );
    let roles = expect(
        &call(&app, "GET", "/api/orgs/acme/roles", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(roles["roles"], j!([approver]));

    // Deleting the project takes its roles with it.
    expect(
        &call(
            &app,
            "DELETE",
            &format!("/api/orgs/acme/projects/{prj}"),
            None,
            alice.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(app.count("SELECT count(*) FROM role_assignments"), 0);
    assert_eq!(app.count("SELECT count(*) FROM projects"), 0);
}

// ------------------------------------------------------------------ 4

#[tokio::test]
async fn activation_under_each_policy() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    let acme = org(&app, &alice, "acme", "Acme Oy").await;
    let org_id = acme["id"].as_str().unwrap().to_owned();
    service(&app, "self", "self_service").await;
    service(&app, "appr", "approval").await;
    service(&app, "oponly", "operator_only").await;

    let services = expect(
        &call(&app, "GET", "/api/orgs/acme/services", None, alice.c()).await,
        StatusCode::OK,
    );
    let services = &services["services"];
    assert_eq!(services.as_array().unwrap().len(), 3, "{services}");
    for (id, policy) in [
        ("self", "self_service"),
        ("appr", "approval"),
        ("oponly", "operator_only"),
    ] {
        let s = find(services, "client_id", id).unwrap();
        assert_eq!(s["policy"], policy);
        assert_eq!(s["status"], "inactive");
        assert_eq!(s["roles"][0]["name"], "buyer");
    }

    // self_service: active at once.
    assert_eq!(
        activate(&app, &alice, "acme", "self").await["status"],
        "active"
    );

    // approval: requested; the operator sees the request and approves it.
    assert_eq!(
        activate(&app, &alice, "acme", "appr").await["status"],
        "requested"
    );
    let waiting = problem(
        &call(
            &app,
            "POST",
            "/api/orgs/acme/projects",
            Some(j!({"client_id": "appr", "name": "Not yet"})),
            alice.c(),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    assert!(
        waiting["detail"].as_str().unwrap().contains("not active"),
        "{waiting}"
    );
    let requests = expect(
        &admin(&app, "GET", "/api/admin/activations?status=requested", None).await,
        StatusCode::OK,
    );
    let requests = requests["activations"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["org_id"], org_id.as_str());
    assert_eq!(requests[0]["client_id"], "appr");
    assert_eq!(requests[0]["requested_by"], alice.sub.as_str());
    let res = admin(
        &app,
        "POST",
        &format!("/api/admin/activations/{org_id}/appr"),
        Some(j!({"status": "active"})),
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["status"], "active");
    let requests = expect(
        &admin(&app, "GET", "/api/admin/activations?status=requested", None).await,
        StatusCode::OK,
    );
    assert_eq!(requests["activations"], j!([]));

    // operator_only: refused to the organisation's admin, done by the operator.
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/services/oponly/activate",
        None,
        alice.c(),
    )
    .await;
    problem(&res, StatusCode::FORBIDDEN);
    let res = admin(
        &app,
        "POST",
        &format!("/api/admin/activations/{org_id}/oponly"),
        Some(j!({"status": "active"})),
    )
    .await;
    expect(&res, StatusCode::OK);

    let services = expect(
        &call(&app, "GET", "/api/orgs/acme/services", None, alice.c()).await,
        StatusCode::OK,
    );
    for id in ["self", "appr", "oponly"] {
        assert_eq!(
            find(&services["services"], "client_id", id).unwrap()["status"],
            "active",
            "{id}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM activations WHERE status = 'active'"),
        3
    );

    // Deactivating ends it.
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/services/self/deactivate",
        None,
        alice.c(),
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["status"], "deactivated");
}

// ------------------------------------------------------------------ 5

#[tokio::test]
async fn the_last_owner_stays_until_ownership_is_transferred() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    let me = format!("/api/orgs/acme/members/{}", alice.sub);

    problem(
        &call(&app, "DELETE", &me, None, alice.c()).await,
        StatusCode::CONFLICT,
    );
    problem(
        &call(&app, "PATCH", &me, Some(j!({"role": "admin"})), alice.c()).await,
        StatusCode::CONFLICT,
    );
    problem(
        &call(
            &app,
            "PATCH",
            &me,
            Some(j!({"status": "suspended"})),
            alice.c(),
        )
        .await,
        StatusCode::CONFLICT,
    );
    assert_eq!(
        app.count("SELECT count(*) FROM memberships WHERE role = 'owner' AND status = 'active'"),
        1
    );

    // A member cannot transfer (only owners).
    problem(
        &call(
            &app,
            "POST",
            "/api/orgs/acme/transfer",
            Some(j!({"sub": bob.sub})),
            bob.c(),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/transfer",
        Some(j!({"sub": bob.sub})),
        alice.c(),
    )
    .await;
    expect(&res, StatusCode::NO_CONTENT);
    let members = expect(
        &call(&app, "GET", "/api/orgs/acme/members", None, bob.c()).await,
        StatusCode::OK,
    );
    assert_eq!(
        find(&members["members"], "sub", &bob.sub).unwrap()["role"],
        "owner"
    );
    assert_eq!(
        find(&members["members"], "sub", &alice.sub).unwrap()["role"],
        "admin"
    );

    // Now alice may leave.
    expect(
        &call(&app, "DELETE", &me, None, alice.c()).await,
        StatusCode::NO_CONTENT,
    );
    problem(
        &call(&app, "GET", "/api/orgs/acme", None, alice.c()).await,
        StatusCode::NOT_FOUND,
    );
    let list = expect(
        &call(&app, "GET", "/api/orgs", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(list["organisations"], j!([]));
    let members = expect(
        &call(&app, "GET", "/api/orgs/acme/members", None, bob.c()).await,
        StatusCode::OK,
    );
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    // And bob, now the only owner, cannot.
    problem(
        &call(
            &app,
            "DELETE",
            &format!("/api/orgs/acme/members/{}", bob.sub),
            None,
            bob.c(),
        )
        .await,
        StatusCode::CONFLICT,
    );
}

// ------------------------------------------------------------------ 6

#[tokio::test]
async fn members_get_403_for_admin_operations() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    service(&app, "shop", "self_service").await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    let before = counts(&app);

    for (method, path, body) in [
        (
            "POST",
            "/api/orgs/acme/invitations".to_owned(),
            Some(j!({"email": "x@example.com"})),
        ),
        (
            "POST",
            "/api/orgs/acme/services/shop/activate".to_owned(),
            None,
        ),
        (
            "POST",
            "/api/orgs/acme/roles".to_owned(),
            Some(j!({"sub": bob.sub, "client_id": "shop", "role": "buyer"})),
        ),
        ("GET", "/api/orgs/acme/members".to_owned(), None),
        ("GET", "/api/orgs/acme/invitations".to_owned(), None),
        (
            "PATCH",
            "/api/orgs/acme".to_owned(),
            Some(j!({"name": "Mine now"})),
        ),
        (
            "PATCH",
            format!("/api/orgs/acme/members/{}", alice.sub),
            Some(j!({"status": "suspended"})),
        ),
        ("DELETE", "/api/orgs/acme".to_owned(), None),
        ("GET", "/api/orgs/acme/audit".to_owned(), None),
    ] {
        let res = call(&app, method, &path, body, bob.c()).await;
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            text(&res)
        );
        assert_eq!(header(&res, "content-type"), "application/problem+json");
    }
    assert_eq!(counts(&app), before);
    assert_eq!(app.count("SELECT count(*) FROM activations"), 0);
    // What a member may see.
    expect(
        &call(&app, "GET", "/api/orgs/acme", None, bob.c()).await,
        StatusCode::OK,
    );
    expect(
        &call(&app, "GET", "/api/orgs/acme/services", None, bob.c()).await,
        StatusCode::OK,
    );
    expect(
        &call(&app, "GET", "/api/orgs/acme/roles", None, bob.c()).await,
        StatusCode::OK,
    );
}

#[tokio::test]
async fn another_organisation_is_not_found_like_an_unknown_one() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    service(&app, "shop", "self_service").await;
    activate(&app, &alice, "acme", "shop").await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    let (inv, _) = invite(&app, &alice, "acme", j!({"email": "x@example.com"})).await;
    let inv = inv["id"].as_str().unwrap().to_owned();
    let prj = expect(
        &call(
            &app,
            "POST",
            "/api/orgs/acme/projects",
            Some(j!({"client_id": "shop", "name": "Site"})),
            alice.c(),
        )
        .await,
        StatusCode::CREATED,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dave = person(&app, "dave@example.com").await;
    org(&app, &dave, "globex", "Globex").await;
    let before = counts(&app);

    let routes = |slug: &str| -> Vec<(&'static str, String, Option<Value>)> {
        let o = format!("/api/orgs/{slug}");
        vec![
            ("GET", o.clone(), None),
            ("PATCH", o.clone(), Some(j!({"name": "Taken"}))),
            ("DELETE", o.clone(), None),
            ("GET", format!("{o}/members"), None),
            (
                "PATCH",
                format!("{o}/members/{}", bob.sub),
                Some(j!({"role": "admin"})),
            ),
            ("DELETE", format!("{o}/members/{}", bob.sub), None),
            ("POST", format!("{o}/transfer"), Some(j!({"sub": dave.sub}))),
            ("GET", format!("{o}/invitations"), None),
            (
                "POST",
                format!("{o}/invitations"),
                Some(j!({"email": "y@example.com"})),
            ),
            ("POST", format!("{o}/invitations/{inv}/resend"), None),
            ("DELETE", format!("{o}/invitations/{inv}"), None),
            ("GET", format!("{o}/roles"), None),
            (
                "POST",
                format!("{o}/roles"),
                Some(j!({"sub": bob.sub, "client_id": "shop", "role": "buyer"})),
            ),
            (
                "DELETE",
                format!("{o}/roles?sub={}&client_id=shop&role=buyer", bob.sub),
                None,
            ),
            ("GET", format!("{o}/services"), None),
            ("POST", format!("{o}/services/shop/activate"), None),
            ("POST", format!("{o}/services/shop/deactivate"), None),
            ("GET", format!("{o}/projects"), None),
            (
                "POST",
                format!("{o}/projects"),
                Some(j!({"client_id": "shop", "name": "Mine"})),
            ),
            ("DELETE", format!("{o}/projects/{prj}"), None),
            ("GET", format!("{o}/audit"), None),
            ("GET", format!("{o}/audit/export"), None),
        ]
    };
    let theirs = routes("acme");
    let unknown = routes("no-such-org");
    for ((method, path, body), (_, path2, body2)) in theirs.into_iter().zip(unknown) {
        let res = call(&app, method, &path, body, dave.c()).await;
        let none = call(&app, method, &path2, body2, dave.c()).await;
        let a = problem(&res, StatusCode::NOT_FOUND);
        let b = problem(&none, StatusCode::NOT_FOUND);
        assert_eq!(a, b, "{method} {path}: the same answer as an unknown slug");
    }
    assert_eq!(counts(&app), before);
    let acme = expect(
        &call(&app, "GET", "/api/orgs/acme", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(acme["name"], "Acme Oy");
    assert_eq!(
        app.count("SELECT count(*) FROM activations WHERE status = 'active'"),
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM projects"), 1);
}

// ------------------------------------------------------------------ 7

#[tokio::test]
async fn an_invitation_link_works_once() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    let (_, token) = invite(&app, &alice, "acme", j!({"email": "x@example.com"})).await;
    let res = accept(&app, &token, None).await;
    expect(&res, StatusCode::CREATED);
    let cookie = session_cookie(&res);
    let again = problem(&accept(&app, &token, None).await, StatusCode::BAD_REQUEST);
    assert!(
        again["detail"]
            .as_str()
            .unwrap()
            .contains("already been accepted"),
        "{again}"
    );
    // Not even for the person who accepted it.
    problem(
        &accept(&app, &token, Some(&cookie)).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(app.count("SELECT count(*) FROM memberships"), 2);
    assert_eq!(
        app.count("SELECT count(*) FROM identities WHERE email = 'x@example.com'"),
        1
    );
}

#[tokio::test]
async fn an_expired_invitation_is_dead() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    let (inv, token) = invite(&app, &alice, "acme", j!({"email": "y@example.com"})).await;
    // Seven days and a second pass.
    app.db()
        .execute(
            "UPDATE invitations SET expires_at = expires_at - 7 * 24 * 3600 - 1",
            [],
        )
        .unwrap();
    let res = problem(&accept(&app, &token, None).await, StatusCode::BAD_REQUEST);
    assert!(res["detail"].as_str().unwrap().contains("expired"), "{res}");
    let list = expect(
        &call(&app, "GET", "/api/orgs/acme/invitations", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(
        find(&list["invitations"], "id", inv["id"].as_str().unwrap()).unwrap()["state"],
        "expired"
    );
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
    assert_eq!(app.count("SELECT count(*) FROM memberships"), 1);
    // Sent again, it works for another seven days.
    let res = call(
        &app,
        "POST",
        &format!(
            "/api/orgs/acme/invitations/{}/resend",
            inv["id"].as_str().unwrap()
        ),
        None,
        alice.c(),
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["state"], "pending");
    let token = mailed_token(&app, "y@example.com").await;
    expect(&accept(&app, &token, None).await, StatusCode::CREATED);
}

#[tokio::test]
async fn a_revoked_invitation_is_dead() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    let (inv, token) = invite(&app, &alice, "acme", j!({"email": "z@example.com"})).await;
    let path = format!("/api/orgs/acme/invitations/{}", inv["id"].as_str().unwrap());
    expect(
        &call(&app, "DELETE", &path, None, alice.c()).await,
        StatusCode::NO_CONTENT,
    );
    problem(
        &call(&app, "DELETE", &path, None, alice.c()).await,
        StatusCode::CONFLICT,
    );
    let res = problem(&accept(&app, &token, None).await, StatusCode::BAD_REQUEST);
    assert!(
        res["detail"].as_str().unwrap().contains("withdrawn"),
        "{res}"
    );
    assert_eq!(app.count("SELECT count(*) FROM identities"), 1);
    assert_eq!(app.count("SELECT count(*) FROM memberships"), 1);
}

#[tokio::test]
async fn an_invitation_for_another_address_is_refused() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    let eve = person(&app, "eve@example.com").await;
    let (_, token) = invite(&app, &alice, "acme", j!({"email": "w@example.com"})).await;
    let before = counts(&app);
    problem(&accept(&app, &token, eve.c()).await, StatusCode::FORBIDDEN);
    assert_eq!(counts(&app), before);
    problem(
        &call(&app, "GET", "/api/orgs/acme", None, eve.c()).await,
        StatusCode::NOT_FOUND,
    );
    // The invited address, signed in but no longer verified: refused too.
    let w = person(&app, "w@example.com").await;
    app.db()
        .execute(
            "UPDATE identities SET email_verified = 0 WHERE email = 'w@example.com'",
            [],
        )
        .unwrap();
    problem(&accept(&app, &token, w.c()).await, StatusCode::FORBIDDEN);
    assert_eq!(counts(&app), before);
    app.db()
        .execute(
            "UPDATE identities SET email_verified = 1 WHERE email = 'w@example.com'",
            [],
        )
        .unwrap();
    expect(&accept(&app, &token, w.c()).await, StatusCode::OK);
}

#[tokio::test]
async fn a_resent_invitation_has_a_new_link_and_the_old_one_dies() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    let (inv, old) = invite(&app, &alice, "acme", j!({"email": "r@example.com"})).await;
    let id = inv["id"].as_str().unwrap();
    let res = call(
        &app,
        "POST",
        &format!("/api/orgs/acme/invitations/{id}/resend"),
        None,
        alice.c(),
    )
    .await;
    let again = expect(&res, StatusCode::OK);
    assert_eq!(again["id"], id);
    assert_eq!(again["state"], "pending");
    assert_eq!(app.outbox("r@example.com").await.len(), 2);
    let new = mailed_token(&app, "r@example.com").await;
    assert_ne!(new, old);
    problem(&accept(&app, &old, None).await, StatusCode::BAD_REQUEST);
    expect(&accept(&app, &new, None).await, StatusCode::CREATED);
    // Accepted: no more resending.
    problem(
        &call(
            &app,
            "POST",
            &format!("/api/orgs/acme/invitations/{id}/resend"),
            None,
            alice.c(),
        )
        .await,
        StatusCode::CONFLICT,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racing_accepts_make_one_membership() {
    let app = Arc::new(app().await);
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    service(&app, "shop", "self_service").await;
    activate(&app, &alice, "acme", "shop").await;
    let carol = person(&app, "carol@example.com").await;
    let (_, token) = invite(
        &app,
        &alice,
        "acme",
        j!({"email": "carol@example.com", "role": "admin",
            "grants": [{"client_id": "shop", "role": "buyer"},
                       {"client_id": "shop", "role": "approver"}]}),
    )
    .await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let app = app.clone();
        let token = token.clone();
        let cookie = carol.cookie.clone();
        tasks.spawn(async move {
            let res = accept(&app, &token, Some(&cookie)).await;
            (res.status(), text(&res))
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => assert!(body.contains("already been accepted"), "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(ok, 1);
    let sub = &carol.sub;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM memberships WHERE identity_id = '{sub}' AND role = 'admin'"
        )),
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM memberships"), 2);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM role_assignments WHERE identity_id = '{sub}' AND client_id = 'shop' AND role = 'buyer'"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM role_assignments WHERE identity_id = '{sub}' AND client_id = 'shop' AND role = 'approver'"
        )),
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM role_assignments"), 2);
    assert_eq!(
        app.count("SELECT count(*) FROM org_audit WHERE action = 'invitation.accepted'"),
        1
    );
}

// ------------------------------------------------------------------ 8

async fn raw(
    app: &App,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response<Bytes> {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    app.send(b.body(Bytes::from(body.to_owned())).unwrap())
        .await
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    service(&app, "shop", "self_service").await;
    service(&app, "later", "self_service").await;
    activate(&app, &alice, "acme", "shop").await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    let before = counts(&app);
    let c = alice.c();

    let cases: Vec<(&str, String, Value, StatusCode)> = vec![
        (
            "POST",
            "/api/orgs".into(),
            j!({"name": "x".repeat(101), "slug": "long"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs".into(),
            j!({"name": "   ", "slug": "blank"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs".into(),
            j!({"name": "Bad", "slug": "Bad Slug!"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs".into(),
            j!({"name": "Bad", "slug": "ab"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs".into(),
            j!({"name": "Bad", "slug": "-acme"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs".into(),
            j!({"name": "Bad", "slug": "x".repeat(41)}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs".into(),
            j!({"name": "Acme again", "slug": "acme"}),
            StatusCode::CONFLICT,
        ),
        (
            "POST",
            "/api/orgs".into(),
            j!({"name": "Admin", "slug": "admin"}),
            StatusCode::CONFLICT,
        ),
        (
            "POST",
            "/api/orgs".into(),
            j!({"name": "Extra", "slug": "extra", "owner": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs".into(),
            j!({"slug": "noname"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "PATCH",
            "/api/orgs/acme".into(),
            j!({"name": "y".repeat(101)}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/roles".into(),
            j!({"sub": bob.sub, "client_id": "shop", "role": "nope"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/roles".into(),
            j!({"sub": bob.sub, "client_id": "later", "role": "buyer"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/roles".into(),
            j!({"sub": bob.sub, "client_id": "nothing", "role": "buyer"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/roles".into(),
            j!({"sub": bob.sub, "client_id": "shop", "project_id": "prj_nope", "role": "buyer"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/roles".into(),
            j!({"sub": "not-a-member", "client_id": "shop", "role": "buyer"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/invitations".into(),
            j!({"email": "n@example.com", "grants": [{"client_id": "shop", "role": "nope"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/invitations".into(),
            j!({"email": "n@example.com", "grants": [{"client_id": "later", "role": "buyer"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/invitations".into(),
            j!({"email": "n@example.com",
                "grants": [{"client_id": "shop", "project_id": "prj_nope", "role": "buyer"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/invitations".into(),
            j!({"email": "n@example.com", "role": "superuser"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/invitations".into(),
            j!({"email": "not an address"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "PATCH",
            format!("/api/orgs/acme/members/{}", bob.sub),
            j!({"role": "superuser"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "PATCH",
            format!("/api/orgs/acme/members/{}", bob.sub),
            j!({"status": "gone"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/orgs/acme/projects".into(),
            j!({"client_id": "later", "name": "Site"}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, path, body, status) in cases {
        let res = call(&app, method, &path, Some(body.clone()), c).await;
        assert_eq!(
            res.status(),
            status,
            "{method} {path} {body}: {}",
            text(&res)
        );
        assert_eq!(
            header(&res, "content-type"),
            "application/problem+json",
            "{body}"
        );
    }

    let cookie = alice.cookie.as_str();
    let json_ct = ("content-type", "application/json");
    let origin = ("origin", ISSUER);
    let session = ("cookie", cookie);
    for (what, method, path, headers, body, status) in [
        (
            "malformed JSON",
            "POST",
            "/api/orgs",
            vec![json_ct, origin, session],
            "{not json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "not an object",
            "POST",
            "/api/orgs",
            vec![json_ct, origin, session],
            "[1, 2]",
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong content type",
            "PATCH",
            "/api/orgs/acme",
            vec![("content-type", "text/plain"), origin, session],
            "{\"name\": \"Plain\"}",
            StatusCode::BAD_REQUEST,
        ),
        (
            "a form post with the cookie",
            "POST",
            "/api/orgs",
            vec![
                ("content-type", "application/x-www-form-urlencoded"),
                session,
            ],
            "name=Form&slug=form",
            StatusCode::BAD_REQUEST,
        ),
        (
            "a bodiless session POST without the JSON type",
            "POST",
            "/api/orgs/acme/services/later/activate",
            vec![origin, session],
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            "a text/plain accept",
            "POST",
            "/api/orgs/invitations/accept",
            vec![("content-type", "text/plain"), session],
            "{\"token\": \"x\"}",
            StatusCode::BAD_REQUEST,
        ),
        (
            "another origin",
            "POST",
            "/api/orgs",
            vec![json_ct, ("origin", "https://evil.example"), session],
            "{\"name\": \"Evil\", \"slug\": \"evil\"}",
            StatusCode::FORBIDDEN,
        ),
        (
            "another origin, deleting",
            "DELETE",
            "/api/orgs/acme",
            vec![json_ct, ("origin", "https://evil.example"), session],
            "",
            StatusCode::FORBIDDEN,
        ),
        (
            "another origin, accepting",
            "POST",
            "/api/orgs/invitations/accept",
            vec![json_ct, ("origin", "https://evil.example")],
            "{\"token\": \"x\", \"password\": \"seven long words make a passphrase\"}",
            StatusCode::FORBIDDEN,
        ),
    ] {
        let res = raw(&app, method, path, &headers, body).await;
        assert_eq!(res.status(), status, "{what}: {}", text(&res));
        assert_eq!(
            header(&res, "content-type"),
            "application/problem+json",
            "{what}"
        );
    }
    assert_eq!(counts(&app), before);
    assert_eq!(app.count("SELECT count(*) FROM projects"), 0);
    assert_eq!(app.count("SELECT count(*) FROM activations"), 1);
    let acme = expect(
        &call(&app, "GET", "/api/orgs/acme", None, c).await,
        StatusCode::OK,
    );
    assert_eq!(acme["name"], "Acme Oy");
    let members = expect(
        &call(&app, "GET", "/api/orgs/acme/members", None, c).await,
        StatusCode::OK,
    );
    assert_eq!(
        find(&members["members"], "sub", &bob.sub).unwrap()["role"],
        "member"
    );
}

// ------------------------------------------------------------------ 9

#[tokio::test]
async fn a_bearer_token_with_the_orgs_scope_manages_organisations() {
    let app = app().await;
    let res = admin(
        &app,
        "POST",
        "/api/admin/clients",
        Some(j!({"client_name": "Portal", "redirect_uris": [REDIRECT],
                 "grant_types": ["authorization_code"], "scope": "openid orgs"})),
    )
    .await;
    let c = expect(&res, StatusCode::CREATED);
    let client = (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    );
    let alice = person(&app, "alice@example.com").await;
    let mut b = browser(&app, &alice);
    let with = tokens(&app, &mut b, &client, "openid orgs").await;
    assert_eq!(with["scope"], "openid orgs");
    let at = with["access_token"].as_str().unwrap();
    assert!(
        payload(at).get("org_id").is_none(),
        "a plain client's tokens name no organisation"
    );
    let without = tokens(&app, &mut b, &client, "openid").await;
    let plain = without["access_token"].as_str().unwrap();

    let list = expect(
        &bearer(&app, "GET", "/api/orgs", None, at).await,
        StatusCode::OK,
    );
    assert_eq!(list["organisations"], j!([]));
    let created = expect(
        &bearer(
            &app,
            "POST",
            "/api/orgs",
            Some(j!({"name": "Acme Oy", "slug": "acme"})),
            at,
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(created["role"], "owner");
    let renamed = expect(
        &bearer(
            &app,
            "PATCH",
            "/api/orgs/acme",
            Some(j!({"name": "Acme Group"})),
            at,
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(renamed["name"], "Acme Group");
    expect(
        &bearer(
            &app,
            "POST",
            "/api/orgs/acme/invitations",
            Some(j!({"email": "bob@example.com"})),
            at,
        )
        .await,
        StatusCode::CREATED,
    );
    let members = expect(
        &bearer(&app, "GET", "/api/orgs/acme/members", None, at).await,
        StatusCode::OK,
    );
    assert_eq!(members["members"][0]["sub"], alice.sub.as_str());
    // The session sees what the token did: the same person acted.
    let list = expect(
        &call(&app, "GET", "/api/orgs", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(list["organisations"][0]["name"], "Acme Group");

    // Without the scope: 403, for reads and writes.
    let res = bearer(&app, "GET", "/api/orgs", None, plain).await;
    assert!(
        problem(&res, StatusCode::FORBIDDEN)["detail"]
            .as_str()
            .unwrap()
            .contains("orgs")
    );
    problem(
        &bearer(
            &app,
            "POST",
            "/api/orgs",
            Some(j!({"name": "B", "slug": "bbb"})),
            plain,
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    problem(
        &bearer(&app, "GET", "/api/orgs/acme", None, plain).await,
        StatusCode::FORBIDDEN,
    );
    // A token that is not one: 401.
    problem(
        &bearer(&app, "GET", "/api/orgs", None, "not-a-token").await,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(app.count("SELECT count(*) FROM organisations"), 1);
}

// ------------------------------------------------------------------ 10

/// The organisation claims of a claim set.
fn org_claims(c: &Value) -> Value {
    j!({
        "org_id": c["org_id"], "org_slug": c["org_slug"], "org_name": c["org_name"],
        "roles": c["roles"], "project_roles": c["project_roles"],
    })
}

/// Acme with `shop` (b2b, self-service) active, alice its owner and a
/// buyer on the service.
async fn b2b_world(app: &App) -> (Person, String, (String, String)) {
    let alice = person(app, "alice@example.com").await;
    let acme = org(app, &alice, "acme", "Acme Oy").await;
    let client = service(app, "shop", "self_service").await;
    activate(app, &alice, "acme", "shop").await;
    grant(app, &alice, "acme", &alice.sub, "", "buyer").await;
    (alice, acme["id"].as_str().unwrap().to_owned(), client)
}

async fn grant(app: &App, by: &Person, slug: &str, sub: &str, project: &str, role: &str) {
    let res = call(
        app,
        "POST",
        &format!("/api/orgs/{slug}/roles"),
        Some(j!({"sub": sub, "client_id": "shop", "project_id": project, "role": role})),
        by.c(),
    )
    .await;
    expect(&res, StatusCode::CREATED);
}

#[tokio::test]
async fn b2b_tokens_carry_the_organisation_and_a_role_change_shows_at_refresh() {
    let app = app().await;
    let (alice, org_id, client) = b2b_world(&app).await;
    let prj = expect(
        &call(
            &app,
            "POST",
            "/api/orgs/acme/projects",
            Some(j!({"client_id": "shop", "name": "Helsinki office"})),
            alice.c(),
        )
        .await,
        StatusCode::CREATED,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    grant(&app, &alice, "acme", &alice.sub, &prj, "approver").await;

    let mut b = browser(&app, &alice);
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    let want = j!({
        "org_id": org_id, "org_slug": "acme", "org_name": "Acme Oy",
        "roles": ["buyer"], "project_roles": {prj.as_str(): ["approver"]},
    });
    let id_token = payload(t["id_token"].as_str().unwrap());
    assert_eq!(org_claims(&id_token), want, "ID token");
    assert_eq!(id_token["sub"], alice.sub.as_str());
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(org_claims(&payload(access)), want, "access token");
    let info = expect(
        &app.send(
            Request::get("/userinfo")
                .header("authorization", format!("Bearer {access}"))
                .body(Bytes::new())
                .unwrap(),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(org_claims(&info), want, "userinfo");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refresh_families WHERE org_id = '{org_id}'"
        )),
        1
    );

    // A role change shows at the next refresh.
    grant(&app, &alice, "acme", &alice.sub, "", "approver").await;
    let del = format!(
        "/api/orgs/acme/roles?sub={}&client_id=shop&project_id={prj}&role=approver",
        alice.sub
    );
    expect(
        &call(&app, "DELETE", &del, None, alice.c()).await,
        StatusCode::NO_CONTENT,
    );
    let res = refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await;
    let t = expect(&res, StatusCode::OK);
    let changed = j!({
        "org_id": org_id, "org_slug": "acme", "org_name": "Acme Oy",
        "roles": ["approver", "buyer"], "project_roles": {},
    });
    assert_eq!(
        org_claims(&payload(t["access_token"].as_str().unwrap())),
        changed
    );
    assert_eq!(
        org_claims(&payload(t["id_token"].as_str().unwrap())),
        changed
    );

    // A rename shows too.
    call(
        &app,
        "PATCH",
        "/api/orgs/acme",
        Some(j!({"name": "Acme Group"})),
        alice.c(),
    )
    .await;
    let res = refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await;
    let t = expect(&res, StatusCode::OK);
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["org_name"],
        "Acme Group"
    );
}

#[tokio::test]
async fn a_removed_members_refresh_is_refused_and_ends_the_family() {
    let app = app().await;
    let (alice, _, client) = b2b_world(&app).await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    grant(&app, &alice, "acme", &bob.sub, "", "buyer").await;
    let mut b = browser(&app, &bob);
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["roles"],
        j!(["buyer"])
    );
    let r0 = t["refresh_token"].as_str().unwrap().to_owned();
    let r1 = expect(&refresh(&app, &client, &r0).await, StatusCode::OK)["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    expect(
        &call(
            &app,
            "DELETE",
            &format!("/api/orgs/acme/members/{}", bob.sub),
            None,
            alice.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    refused(&refresh(&app, &client, &r1).await);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refresh_families WHERE identity_id = '{}' AND revoked_at IS NULL",
            bob.sub
        )),
        0,
        "the family is revoked"
    );
    // Back in the organisation with a role, the old family stays dead.
    let (_, token_) = invite(
        &app,
        &alice,
        "acme",
        j!({"email": "bob@example.com", "grants": [{"client_id": "shop", "role": "buyer"}]}),
    )
    .await;
    expect(&accept(&app, &token_, bob.c()).await, StatusCode::OK);
    refused(&refresh(&app, &client, &r1).await);
    refused(&refresh(&app, &client, &r0).await);
    // A new login works.
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    expect(
        &refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await,
        StatusCode::OK,
    );
}

#[tokio::test]
async fn a_member_without_a_role_cannot_sign_in_to_the_service() {
    let app = app().await;
    let (alice, _, client) = b2b_world(&app).await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    let mut b = browser(&app, &bob);
    let res = b
        .get(&authorize_url(&client.0, B2B_SCOPE, &pkce(), ""))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{}", text(&res));
    assert!(
        text(&res).contains("Ask your organisation"),
        "{}",
        text(&res)
    );
    let res = b
        .get(&authorize_url(
            &client.0,
            B2B_SCOPE,
            &pkce(),
            "&prompt=none",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        header(&res, "location").contains("error=access_denied"),
        "{}",
        header(&res, "location")
    );
    assert_eq!(app.count("SELECT count(*) FROM auth_codes"), 0);
}

#[tokio::test]
async fn a_deactivated_service_refuses_refresh_and_authorize() {
    let app = app().await;
    let (alice, _, client) = b2b_world(&app).await;
    let mut b = browser(&app, &alice);
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    let res = call(
        &app,
        "POST",
        "/api/orgs/acme/services/shop/deactivate",
        None,
        alice.c(),
    )
    .await;
    expect(&res, StatusCode::OK);
    refused(&refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await);
    let res = b
        .get(&authorize_url(&client.0, B2B_SCOPE, &pkce(), ""))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{}", text(&res));
    let res = b
        .get(&authorize_url(
            &client.0,
            B2B_SCOPE,
            &pkce(),
            "&organization=acme",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{}", text(&res));

    // Activated again: a new login works, the old family stays revoked.
    activate(&app, &alice, "acme", "shop").await;
    refused(&refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await);
    b2b_tokens(&app, &mut b, &client, "", None).await;
}

#[tokio::test]
async fn a_suspended_organisation_refuses_refresh() {
    let app = app().await;
    let (alice, org_id, client) = b2b_world(&app).await;
    let mut b = browser(&app, &alice);
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    let res = admin(
        &app,
        "POST",
        &format!("/api/admin/orgs/{org_id}/suspend"),
        None,
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["status"], "suspended");
    refused(&refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await);
    let res = b
        .get(&authorize_url(&client.0, B2B_SCOPE, &pkce(), ""))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{}", text(&res));
    // Nothing changes in it while suspended, though its members still see it.
    let got = expect(
        &call(&app, "GET", "/api/orgs/acme", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(got["status"], "suspended");
    problem(
        &call(
            &app,
            "PATCH",
            "/api/orgs/acme",
            Some(j!({"name": "Renamed"})),
            alice.c(),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    // Resumed: new logins work.
    let res = admin(
        &app,
        "POST",
        &format!("/api/admin/orgs/{org_id}/resume"),
        None,
    )
    .await;
    assert_eq!(expect(&res, StatusCode::OK)["status"], "active");
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["org_slug"],
        "acme"
    );
}

#[tokio::test]
async fn two_organisations_show_the_picker_and_organization_names_one() {
    let app = app().await;
    let (alice, acme_id, client) = b2b_world(&app).await;
    let globex = org(&app, &alice, "globex", "Globex").await;
    let globex_id = globex["id"].as_str().unwrap().to_owned();
    activate(&app, &alice, "globex", "shop").await;
    grant(&app, &alice, "globex", &alice.sub, "", "approver").await;

    let mut b = browser(&app, &alice);
    let res = b
        .get(&authorize_url(&client.0, B2B_SCOPE, &pkce(), ""))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = text(&res);
    assert!(page.contains("Which organisation?"), "{page}");
    assert!(
        page.contains("Acme Oy") && page.contains("Globex"),
        "{page}"
    );
    let mut ids = offered(&page);
    ids.sort();
    let mut both = vec![format!("org:{acme_id}"), format!("org:{globex_id}")];
    both.sort();
    assert_eq!(ids, both);

    // Picking globex: its roles.
    let t = b2b_tokens(&app, &mut b, &client, "", Some(&globex_id)).await;
    let c = payload(t["access_token"].as_str().unwrap());
    assert_eq!(c["org_id"], globex_id.as_str());
    assert_eq!(c["roles"], j!(["approver"]));
    let c = payload(t["id_token"].as_str().unwrap());
    assert_eq!(c["org_slug"], "globex");

    // organization=<slug> chooses without the picker.
    let t = b2b_tokens(&app, &mut b, &client, "&organization=acme", None).await;
    let c = payload(t["access_token"].as_str().unwrap());
    assert_eq!(c["org_id"], acme_id.as_str());
    assert_eq!(c["roles"], j!(["buyer"]));
    // With prompt=select_account the picker shows, only the named one.
    let res = b
        .get(&authorize_url(
            &client.0,
            B2B_SCOPE,
            &pkce(),
            "&organization=globex&prompt=select_account",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(offered(&text(&res)), [format!("org:{globex_id}")]);
    // One that is not hers: access_denied back to the client.
    let res = b
        .get(&authorize_url(
            &client.0,
            B2B_SCOPE,
            &pkce(),
            "&organization=initech",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        header(&res, "location").contains("error=access_denied"),
        "{}",
        header(&res, "location")
    );
    // A forged pick is refused too.
    let res = b
        .get(&authorize_url(&client.0, B2B_SCOPE, &pkce(), ""))
        .await;
    let mut fields = hidden_fields(&text(&res));
    fields.push(("org".into(), "org_forged".into()));
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let res = b.post("/authorize", &refs).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(header(&res, "location").contains("error=access_denied"));
}

// ------------------------------------------------------------------ more rules

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_racing_to_leave_leave_one_owner() {
    // Bob is invited five times: more mail than the default allows one inbox.
    let app = Arc::new(App::dev(&[("admin_token", ADMIN), ("mail_recipient_max", "20")]).await);
    let alice = person(&app, "alice@example.com").await;
    let bob = person(&app, "bob@example.com").await;
    for n in 0..5 {
        let slug = format!("race-{n}");
        org(&app, &alice, &slug, "Race").await;
        let (_, token_) = invite(
            &app,
            &alice,
            &slug,
            j!({"email": "bob@example.com", "role": "owner"}),
        )
        .await;
        expect(&accept(&app, &token_, bob.c()).await, StatusCode::OK);
        let members = expect(
            &call(
                &app,
                "GET",
                &format!("/api/orgs/{slug}/members"),
                None,
                bob.c(),
            )
            .await,
            StatusCode::OK,
        );
        assert_eq!(
            find(&members["members"], "sub", &bob.sub).unwrap()["role"],
            "owner"
        );

        let mut tasks = tokio::task::JoinSet::new();
        for p in [&alice, &bob] {
            let (app, cookie, path) = (
                app.clone(),
                p.cookie.clone(),
                format!("/api/orgs/{slug}/members/{}", p.sub),
            );
            tasks.spawn(async move {
                call(&app, "DELETE", &path, None, Some(&cookie))
                    .await
                    .status()
            });
        }
        let mut statuses = Vec::new();
        while let Some(s) = tasks.join_next().await {
            statuses.push(s.unwrap());
        }
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::NO_CONTENT, StatusCode::CONFLICT],
            "{slug}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM memberships WHERE role = 'owner' AND status = 'active'"),
        5
    );
    assert_eq!(app.count("SELECT count(*) FROM memberships"), 5);
}

#[tokio::test]
async fn a_suspended_owner_is_not_the_last_active_owner() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    let them = format!("/api/orgs/acme/members/{}", bob.sub);
    let me = format!("/api/orgs/acme/members/{}", alice.sub);
    expect(
        &call(&app, "PATCH", &them, Some(j!({"role": "owner"})), alice.c()).await,
        StatusCode::NO_CONTENT,
    );
    expect(
        &call(
            &app,
            "PATCH",
            &them,
            Some(j!({"status": "suspended"})),
            alice.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    // Suspended, bob sees nothing of it.
    problem(
        &call(&app, "GET", "/api/orgs/acme", None, bob.c()).await,
        StatusCode::NOT_FOUND,
    );
    let list = expect(
        &call(&app, "GET", "/api/orgs", None, bob.c()).await,
        StatusCode::OK,
    );
    assert_eq!(list["organisations"], j!([]));
    // Alice is the only active owner.
    problem(
        &call(&app, "DELETE", &me, None, alice.c()).await,
        StatusCode::CONFLICT,
    );
    problem(
        &call(&app, "PATCH", &me, Some(j!({"role": "member"})), alice.c()).await,
        StatusCode::CONFLICT,
    );
    problem(
        &call(
            &app,
            "POST",
            "/api/orgs/acme/transfer",
            Some(j!({"sub": bob.sub})),
            alice.c(),
        )
        .await,
        StatusCode::CONFLICT,
    );
    expect(
        &call(
            &app,
            "PATCH",
            &them,
            Some(j!({"status": "active"})),
            alice.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    expect(
        &call(&app, "DELETE", &me, None, alice.c()).await,
        StatusCode::NO_CONTENT,
    );
    let got = expect(
        &call(&app, "GET", "/api/orgs/acme", None, bob.c()).await,
        StatusCode::OK,
    );
    assert_eq!(got["role"], "owner");
}

#[tokio::test]
async fn admins_manage_members_but_not_owners() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    let carol = member(&app, &alice, "acme", "carol@example.com").await;
    let dan = member(&app, &alice, "acme", "dan@example.com").await;
    let path = |p: &Person| format!("/api/orgs/acme/members/{}", p.sub);
    expect(
        &call(
            &app,
            "PATCH",
            &path(&bob),
            Some(j!({"role": "admin"})),
            alice.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    for (method, p, body) in [
        ("PATCH", path(&alice), Some(j!({"role": "member"}))),
        ("PATCH", path(&alice), Some(j!({"status": "suspended"}))),
        ("DELETE", path(&alice), None),
        ("PATCH", path(&carol), Some(j!({"role": "owner"}))),
        (
            "POST",
            "/api/orgs/acme/transfer".into(),
            Some(j!({"sub": carol.sub})),
        ),
        (
            "POST",
            "/api/orgs/acme/invitations".into(),
            Some(j!({"email": "o@example.com", "role": "owner"})),
        ),
        ("DELETE", "/api/orgs/acme".into(), None),
    ] {
        let res = call(&app, method, &p, body, bob.c()).await;
        problem(&res, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM memberships WHERE role = 'owner'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM invitations WHERE org_role = 'owner'"),
        0
    );

    // What an admin may do: members and admins.
    expect(
        &call(
            &app,
            "PATCH",
            &path(&carol),
            Some(j!({"role": "admin"})),
            bob.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    expect(
        &call(
            &app,
            "PATCH",
            &path(&carol),
            Some(j!({"status": "suspended"})),
            bob.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    expect(
        &call(&app, "DELETE", &path(&carol), None, bob.c()).await,
        StatusCode::NO_CONTENT,
    );
    // A member leaves by themselves; a member removing another is refused.
    problem(
        &call(&app, "DELETE", &path(&bob), None, dan.c()).await,
        StatusCode::FORBIDDEN,
    );
    expect(
        &call(&app, "DELETE", &path(&dan), None, dan.c()).await,
        StatusCode::NO_CONTENT,
    );
    let members = expect(
        &call(&app, "GET", "/api/orgs/acme/members", None, alice.c()).await,
        StatusCode::OK,
    );
    let mut left: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sub"].as_str().unwrap())
        .collect();
    left.sort();
    let mut want = vec![alice.sub.as_str(), bob.sub.as_str()];
    want.sort();
    assert_eq!(left, want);
    // An unknown member: 404.
    problem(
        &call(
            &app,
            "PATCH",
            "/api/orgs/acme/members/nobody",
            Some(j!({"role": "admin"})),
            alice.c(),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn ids_of_another_organisation_are_not_found_through_ones_own() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    service(&app, "shop", "self_service").await;
    activate(&app, &alice, "acme", "shop").await;
    let dave = person(&app, "dave@example.com").await;
    org(&app, &dave, "globex", "Globex").await;
    activate(&app, &dave, "globex", "shop").await;
    let (inv, _) = invite(&app, &dave, "globex", j!({"email": "g@example.com"})).await;
    let inv = inv["id"].as_str().unwrap().to_owned();
    let prj = expect(
        &call(
            &app,
            "POST",
            "/api/orgs/globex/projects",
            Some(j!({"client_id": "shop", "name": "Globex site"})),
            dave.c(),
        )
        .await,
        StatusCode::CREATED,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    grant(&app, &dave, "globex", &dave.sub, &prj, "buyer").await;
    let before = counts(&app);

    let a = "/api/orgs/acme";
    for (method, path, body, status) in [
        (
            "PATCH",
            format!("{a}/members/{}", dave.sub),
            Some(j!({"role": "admin"})),
            StatusCode::NOT_FOUND,
        ),
        (
            "DELETE",
            format!("{a}/members/{}", dave.sub),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            format!("{a}/transfer"),
            Some(j!({"sub": dave.sub})),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            format!("{a}/invitations/{inv}/resend"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "DELETE",
            format!("{a}/invitations/{inv}"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "DELETE",
            format!("{a}/projects/{prj}"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "DELETE",
            format!(
                "{a}/roles?sub={}&client_id=shop&project_id={prj}&role=buyer",
                dave.sub
            ),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            format!("{a}/roles"),
            Some(j!({"sub": dave.sub, "client_id": "shop", "role": "buyer"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            format!("{a}/roles"),
            Some(j!({"sub": alice.sub, "client_id": "shop", "project_id": prj, "role": "buyer"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            format!("{a}/invitations"),
            Some(j!({"email": "n@example.com",
                     "grants": [{"client_id": "shop", "project_id": prj, "role": "buyer"}]})),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = call(&app, method, &path, body, alice.c()).await;
        assert_eq!(res.status(), status, "{method} {path}: {}", text(&res));
        assert_eq!(header(&res, "content-type"), "application/problem+json");
    }
    assert_eq!(counts(&app), before);
    let invs = expect(
        &call(&app, "GET", "/api/orgs/globex/invitations", None, dave.c()).await,
        StatusCode::OK,
    );
    assert_eq!(invs["invitations"][0]["state"], "pending");
    assert_eq!(app.count("SELECT count(*) FROM projects"), 1);
    let roles = expect(
        &call(&app, "GET", "/api/orgs/acme/roles", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(roles["roles"], j!([]));
}

#[tokio::test]
async fn deleting_an_organisation_ends_everything_in_it() {
    let app = app().await;
    let (alice, org_id, client) = b2b_world(&app).await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    grant(&app, &alice, "acme", &bob.sub, "", "buyer").await;
    let mut b = browser(&app, &bob);
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    let (_, pending) = invite(&app, &alice, "acme", j!({"email": "late@example.com"})).await;
    // Only the owner may.
    problem(
        &call(&app, "DELETE", "/api/orgs/acme", None, bob.c()).await,
        StatusCode::FORBIDDEN,
    );
    expect(
        &call(&app, "DELETE", "/api/orgs/acme", None, alice.c()).await,
        StatusCode::NO_CONTENT,
    );

    for p in [&alice, &bob] {
        problem(
            &call(&app, "GET", "/api/orgs/acme", None, p.c()).await,
            StatusCode::NOT_FOUND,
        );
        let list = expect(
            &call(&app, "GET", "/api/orgs", None, p.c()).await,
            StatusCode::OK,
        );
        assert_eq!(list["organisations"], j!([]));
    }
    refused(&refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await);
    problem(&accept(&app, &pending, None).await, StatusCode::BAD_REQUEST);
    for table in [
        "organisations",
        "memberships",
        "invitations",
        "role_assignments",
        "activations",
        "projects",
    ] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM {table} WHERE {} = '{org_id}'",
                if table == "organisations" {
                    "id"
                } else {
                    "org_id"
                }
            )),
            0,
            "{table}"
        );
    }
    // The slug is free again.
    org(&app, &alice, "acme", "Acme again").await;
}

#[tokio::test]
async fn a_suspended_member_loses_access_to_the_service() {
    let app = app().await;
    let (alice, _, client) = b2b_world(&app).await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    grant(&app, &alice, "acme", &bob.sub, "", "buyer").await;
    let mut b = browser(&app, &bob);
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    let path = format!("/api/orgs/acme/members/{}", bob.sub);
    expect(
        &call(
            &app,
            "PATCH",
            &path,
            Some(j!({"status": "suspended"})),
            alice.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    refused(&refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await);
    let res = b
        .get(&authorize_url(&client.0, B2B_SCOPE, &pkce(), ""))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{}", text(&res));
    expect(
        &call(
            &app,
            "PATCH",
            &path,
            Some(j!({"status": "active"})),
            alice.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["roles"],
        j!(["buyer"])
    );
}

#[tokio::test]
async fn the_operator_ends_an_activation_and_a_deleted_project_leaves_the_token() {
    let app = app().await;
    let (alice, org_id, client) = b2b_world(&app).await;
    let prj = expect(
        &call(
            &app,
            "POST",
            "/api/orgs/acme/projects",
            Some(j!({"client_id": "shop", "name": "Site"})),
            alice.c(),
        )
        .await,
        StatusCode::CREATED,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    grant(&app, &alice, "acme", &alice.sub, &prj, "approver").await;
    let mut b = browser(&app, &alice);
    let t = b2b_tokens(&app, &mut b, &client, "", None).await;
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["project_roles"],
        j!({prj.as_str(): ["approver"]})
    );
    expect(
        &call(
            &app,
            "DELETE",
            &format!("/api/orgs/acme/projects/{prj}"),
            None,
            alice.c(),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    let t = expect(
        &refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await,
        StatusCode::OK,
    );
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["project_roles"],
        j!({})
    );

    let res = admin(
        &app,
        "POST",
        &format!("/api/admin/activations/{org_id}/shop"),
        Some(j!({"status": "deactivated"})),
    )
    .await;
    expect(&res, StatusCode::OK);
    refused(&refresh(&app, &client, t["refresh_token"].as_str().unwrap()).await);
    let services = expect(
        &call(&app, "GET", "/api/orgs/acme/services", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(services["services"][0]["status"], "deactivated");

    // The operator API guards itself and validates.
    let res = app
        .send(
            Request::post(format!("/api/admin/activations/{org_id}/shop"))
                .header("content-type", "application/json")
                .body(Bytes::from(j!({"status": "active"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = admin(
        &app,
        "POST",
        &format!("/api/admin/activations/{org_id}/shop"),
        Some(j!({"status": "requested"})),
    )
    .await;
    problem(&res, StatusCode::BAD_REQUEST);
    let res = admin(
        &app,
        "POST",
        "/api/admin/activations/org_nope/shop",
        Some(j!({"status": "active"})),
    )
    .await;
    problem(&res, StatusCode::NOT_FOUND);
    problem(
        &admin(&app, "POST", "/api/admin/orgs/org_nope/suspend", None).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(
        app.count("SELECT count(*) FROM activations WHERE status = 'active'"),
        0
    );
}

#[tokio::test]
async fn the_audit_log_records_every_change_newest_first() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    service(&app, "shop", "self_service").await;
    activate(&app, &alice, "acme", "shop").await;
    let bob = member(&app, &alice, "acme", "bob@example.com").await;
    grant(&app, &alice, "acme", &bob.sub, "", "buyer").await;
    call(
        &app,
        "PATCH",
        "/api/orgs/acme",
        Some(j!({"name": "Acme Group"})),
        alice.c(),
    )
    .await;

    let audit = expect(
        &call(&app, "GET", "/api/orgs/acme/audit", None, alice.c()).await,
        StatusCode::OK,
    );
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "organisation.renamed",
            "role.granted",
            "invitation.accepted",
            "invitation.created",
            "service.activated",
            "organisation.created",
        ]
    );
    let page = expect(
        &call(&app, "GET", "/api/orgs/acme/audit?limit=2", None, alice.c()).await,
        StatusCode::OK,
    );
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let res = call(&app, "GET", "/api/orgs/acme/audit/export", None, alice.c()).await;
    let all = expect(&res, StatusCode::OK);
    assert!(
        header(&res, "content-disposition").starts_with("attachment"),
        "{:?}",
        res.headers()
    );
    assert_eq!(all["entries"].as_array().unwrap().len(), 6);
    problem(
        &call(
            &app,
            "GET",
            "/api/orgs/acme/audit?limit=many",
            None,
            alice.c(),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    problem(
        &call(&app, "GET", "/api/orgs/acme/audit/export", None, bob.c()).await,
        StatusCode::FORBIDDEN,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creations_of_one_slug_make_one_organisation() {
    let app = Arc::new(app().await);
    let alice = person(&app, "alice@example.com").await;
    let bob = person(&app, "bob@example.com").await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..10 {
        let app = app.clone();
        let cookie = if n % 2 == 0 { &alice } else { &bob }.cookie.clone();
        tasks.spawn(async move {
            let res = call(
                &app,
                "POST",
                "/api/orgs",
                Some(j!({"name": format!("Acme {n}"), "slug": "acme"})),
                Some(&cookie),
            )
            .await;
            (res.status(), text(&res))
        });
    }
    let mut created = 0;
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => assert!(body.contains("taken"), "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(counts(&app), [1, 1, 0, 0], "nothing half-made");
    assert_eq!(
        app.count("SELECT count(*) FROM memberships m JOIN organisations o ON o.id = m.org_id"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_newcomers_accepting_one_invitation_make_one_account() {
    let app = Arc::new(app().await);
    let alice = person(&app, "alice@example.com").await;
    org(&app, &alice, "acme", "Acme Oy").await;
    let (_, token_) = invite(&app, &alice, "acme", j!({"email": "new@example.com"})).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let app = app.clone();
        let token_ = token_.clone();
        tasks.spawn(async move {
            let res = accept(&app, &token_, None).await;
            (res.status(), text(&res))
        });
    }
    let mut created = 0;
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT | StatusCode::BAD_REQUEST => {}
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM identities WHERE email = 'new@example.com'"),
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM memberships"), 2);
    assert_eq!(
        app.count("SELECT count(*) FROM invitations WHERE state = 'accepted'"),
        1
    );
}

#[tokio::test]
async fn names_and_slugs_at_their_limits_are_accepted() {
    let app = app().await;
    let alice = person(&app, "alice@example.com").await;
    let name = "ä".repeat(100);
    let slug = format!("a{}9", "-".repeat(38));
    let created = org(&app, &alice, &slug, &name).await;
    assert_eq!(created["name"], name.as_str());
    assert_eq!(created["slug"], slug.as_str());
    let trimmed = org(&app, &alice, "  abc  ", "  Trimmed  ").await;
    assert_eq!(trimmed["slug"], "abc");
    assert_eq!(trimmed["name"], "Trimmed");
    expect(
        &call(&app, "GET", "/api/orgs/abc", None, alice.c()).await,
        StatusCode::OK,
    );
    problem(
        &call(
            &app,
            "POST",
            "/api/orgs",
            Some(j!({"name": "Ctl\u{7}", "slug": "ctl"})),
            alice.c(),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
}
