//! Privacy (`crate::privacy` and this section's API), natively against
//! real SQLite: the export covers every table that names a person, and
//! erasure leaves no row that does. (Here rather than beside
//! `crate::privacy`, which the account flows depend on: these tests use
//! the account flows and organisations.)

use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value as Json, json};

use crate::accounts::{self, Auth, LoggedIn, SignUp};
use crate::device::Device;
use crate::error::Error;
use crate::events::{self, Kind};
use crate::identity::{self, Identity};
use crate::oidc::authorize::{self, Subject};
use crate::oidc::grants::{self, TokenRequest};
use crate::orgs::{self, Policy, invitations::Invite, members};
use crate::privacy::consent::{self, Terms};
use crate::privacy::export::{self, Coverage, TABLES};
use crate::privacy::{ERASED, erase};
use crate::store::introspect::{columns, tables};
use crate::store::role_assignments::Assignment;
use crate::store::{
    SqlStore, consents, dev_outbox, email_changes, federated_identities, mandate_delegates,
    mandates, memberships, passkeys, recovery_codes, role_assignments, security_events,
    session_clients, totp_secrets, webauthn_states,
};
use crate::testkit::{self, PKCE_CHALLENGE, PKCE_VERIFIER, World};
use crate::{Config, session, sweep};

const NOW: i64 = 1_700_000_000;
const PASSWORD: &str = "correct horse battery staple";
const CB: &str = "https://app.example/cb";

/// Whether a column holds an identity id or an email address: by the
/// naming rules of the migrations (`identity_id`, `agent_identity_id`,
/// `link_identity_id`, `…email`, `created_by` and the other `…_by`,
/// `actor`, `recipient`).
fn names_a_person(name: &str, ty: &str) -> bool {
    ty.eq_ignore_ascii_case("TEXT")
        && (name == "identity_id"
            || name.ends_with("_identity_id")
            || name.ends_with("email")
            || name.ends_with("_by")
            || name == "actor"
            || name == "recipient")
}

fn dump(db: &dyn SqlStore) -> Vec<String> {
    crate::store::introspect::dump(db).unwrap()
}

fn holding(db: &dyn SqlStore, needle: &str) -> Vec<(String, String, i64)> {
    crate::store::introspect::holding(db, needle).unwrap()
}

fn dotted<'a>(doc: &'a Json, key: &str) -> Option<&'a Json> {
    key.split('.').try_fold(doc, |v, k| v.get(k))
}

fn cookie_headers(set_cookie: &HeaderValue) -> HeaderMap {
    let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
    let mut h = HeaderMap::new();
    h.insert(http::header::COOKIE, HeaderValue::from_str(pair).unwrap());
    h
}

/// The link last mailed to `to`.
fn mailed_token(w: &World, to: &str) -> String {
    let mails = dev_outbox::newest(&w.sql, Some(to)).unwrap();
    let link = mails[0].link.clone().unwrap();
    link.split("token=").nth(1).unwrap().to_owned()
}

fn sign_up(w: &World, email: &str, extra: &[(&str, &str)]) -> crate::error::Result<()> {
    let auth = Auth::load(&w.vars).unwrap();
    let mut fields = vec![("email", email), ("password", PASSWORD)];
    fields.extend_from_slice(extra);
    let s = SignUp::parse(&auth, &testkit::params(&fields))?;
    accounts::sign_up(&w.env(NOW), &auth, &s, "192.0.2.7")
}

/// A verified person made through the real sign-up.
fn signed_up(w: &World, email: &str) -> Identity {
    sign_up(w, email, &[("accept_terms", "true"), ("marketing", "true")]).unwrap();
    let token = mailed_token(w, email);
    accounts::verify_email(&w.env(NOW), &token).unwrap();
    identity::by_email(&w.sql, email).unwrap().unwrap()
}

fn verified(w: &World, email: &str) -> Identity {
    let who = testkit::person(&w.sql, email, NOW);
    identity::mark_verified(&w.sql, &who.id, NOW).unwrap();
    identity::by_id(&w.sql, &who.id).unwrap().unwrap()
}

/// A refresh token of `who` for the client `app`, through the
/// authorization and token endpoints' code.
fn refresh_token(w: &World, who: &Identity) -> String {
    let client = testkit::client(
        &w.sql,
        json!({
            "client_name": "App",
            "client_id": "app",
            "redirect_uris": [CB],
            "scope": "openid email offline_access",
        }),
        NOW,
    )
    .0;
    let form = testkit::params(&[
        ("client_id", "app"),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "openid email offline_access"),
        ("code_challenge", PKCE_CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let ar = authorize::parse(&w.sql, &form).unwrap();
    authorize::grant_consent(&w.sql, &who.id, &ar, NOW).unwrap();
    let code = authorize::issue_code(
        &w.sql,
        &ar,
        &Subject {
            id: &who.id,
            auth_time: NOW,
            amr: &["pwd".to_owned()],
            sid: "sid-1",
            idp: None,
        },
        None,
        NOW,
    )
    .unwrap();
    let req = TokenRequest::AuthorizationCode {
        code,
        redirect_uri: CB.into(),
        code_verifier: PKCE_VERIFIER.into(),
    };
    grants::exchange(&w.env(NOW), &Config::load(&w.vars).unwrap(), &client, &req)
        .unwrap()
        .refresh_token
        .unwrap()
}

fn refresh(w: &World, token: &str, at: i64) -> crate::error::Result<grants::TokenResponse> {
    let client = crate::oidc::clients::get(&w.sql, "app").unwrap().unwrap();
    let req = TokenRequest::RefreshToken {
        refresh_token: token.into(),
        scope: None,
    };
    grants::exchange(&w.env(at), &Config::load(&w.vars).unwrap(), &client, &req)
}

/// Ada, with something in every table that can name her, and Bob beside
/// her, who must keep what is his.
struct Populated {
    w: World,
    ada: Identity,
    bob: Identity,
    session: HeaderMap,
    refresh: String,
}

fn populated() -> Populated {
    let w = World::with(&[
        ("terms_version", "2026-01"),
        ("terms_url", "https://example.com/terms"),
    ]);
    let db = &w.sql;
    let env = w.env(NOW);
    let auth = Auth::load(&w.vars).unwrap();
    let ada = signed_up(&w, "ada@example.com");
    let bob = verified(&w, "bob@example.com");

    // A session, and a sign-in recorded.
    let LoggedIn::Session(cookie) = accounts::log_in(
        &env,
        &auth,
        &ada.email,
        PASSWORD,
        &Device::addr("192.0.2.7"),
    )
    .unwrap() else {
        panic!("not signed in")
    };
    let device = Device::addr("192.0.2.7");
    events::record(
        &env,
        &ada.id,
        Kind::SignIn,
        json!({"amr": ["pwd"]}),
        &device,
    )
    .unwrap();
    events::record(
        &env,
        &bob.id,
        Kind::SignIn,
        json!({"amr": ["pwd"]}),
        &device,
    )
    .unwrap();

    // An app allowed, with a refresh token (registered first: a client
    // registered later under the same id clears the roles on it).
    let refresh = refresh_token(&w, &ada);
    // The app got tokens in one of her sessions (for single sign-out).
    session_clients::record(db, "sid-1", "app", &ada.id, NOW).unwrap();

    // An upstream account linked.
    federated_identities::insert(
        db,
        &federated_identities::FederatedIdentity {
            issuer: "https://op.example".into(),
            subject: "upstream-ada".into(),
            connection_id: "example".into(),
            identity_id: ada.id.clone(),
            email: Some(ada.email.clone()),
            created_at: NOW,
            last_used_at: NOW,
        },
    )
    .unwrap();

    // Ada made acme, invited Bob and handed ownership to him; she keeps
    // a role there, and gave Bob one. Bob owns beta, which invited her.
    let acme =
        orgs::create_own(db, Policy { self_service: true }, &ada, "Acme", "acme", NOW).unwrap();
    memberships::insert(db, &acme.id, &bob.id, "member", Some(&ada.id), NOW).unwrap();
    let as_ada = orgs::open(db, "acme", &ada).unwrap();
    members::transfer(db, &as_ada, &bob.id, NOW).unwrap();
    let role = |who: &Identity| Assignment {
        identity_id: who.id.clone(),
        client_id: "app".into(),
        project_id: String::new(),
        role: "buyer".into(),
    };
    role_assignments::insert(db, &acme.id, &role(&ada), &bob.id, NOW).unwrap();
    role_assignments::insert(db, &acme.id, &role(&bob), &ada.id, NOW).unwrap();
    let as_ada = orgs::open(db, "acme", &ada).unwrap();
    orgs::invitations::invite(
        &env,
        &auth,
        &as_ada,
        &Invite {
            email: "dee@example.com".into(),
            role: orgs::Level::Member,
            grants: vec![],
        },
    )
    .unwrap();
    let beta =
        orgs::create_own(db, Policy { self_service: true }, &bob, "Beta", "beta", NOW).unwrap();
    let as_bob = orgs::open(db, "beta", &bob).unwrap();
    orgs::invitations::invite(
        &env,
        &auth,
        &as_bob,
        &Invite {
            email: ada.email.clone(),
            role: orgs::Level::Member,
            grants: vec![],
        },
    )
    .unwrap();

    // Beta gave Ada a mandate, which she accepted; acme (Ada) gave beta
    // one, with Ada and Bob as its delegates.
    let mandate =
        |id: &str, principal: &str, agent_org: Option<&str>, email: Option<&str>, by: &str| {
            mandates::Mandate {
                id: id.into(),
                principal_org_id: principal.into(),
                agent_org_id: agent_org.map(str::to_owned),
                agent_email: email.map(str::to_owned),
                agent_identity_id: None,
                client_id: "app".into(),
                project_id: String::new(),
                roles: vec!["buyer".into()],
                template_id: None,
                not_before: NOW,
                expires_at: NOW + 86_400,
                state: "offered".into(),
                all_members: false,
                created_by: by.into(),
                created_at: NOW,
                accepted_by: None,
                revoked_by: None,
            }
        };
    mandates::insert(
        db,
        &mandate("mnd_1", &beta.id, None, Some(&ada.email), &bob.id),
        Some("mh1"),
    )
    .unwrap();
    mandates::accept_by_person(db, "mh1", &ada.id, &ada.email, NOW)
        .unwrap()
        .unwrap();
    mandates::insert(
        db,
        &mandate("mnd_2", &acme.id, Some(&beta.id), None, &ada.id),
        None,
    )
    .unwrap();
    mandate_delegates::replace(db, "mnd_2", &[ada.id.clone(), bob.id.clone()], &ada.id, NOW)
        .unwrap();

    // Second factors; a pending email change; a passkey ceremony in
    // flight; a reset link.
    consents::upsert(db, &bob.id, "app", &["openid".into()], NOW).unwrap();
    totp_secrets::start(db, &ada.id, "JBSWY3DPEHPK3PXP", NOW).unwrap();
    totp_secrets::confirm(db, &ada.id, 1, NOW).unwrap();
    recovery_codes::replace(db, &ada.id, &["rc-hash-1".into(), "rc-hash-2".into()], NOW).unwrap();
    passkeys::insert(
        db,
        &passkeys::Row {
            credential_id: "cred-1".into(),
            identity_id: ada.id.clone(),
            user_handle: "handle-1".into(),
            name: "Laptop".into(),
            passkey: r#"{"cred":{"key":"secret-key-material"}}"#.into(),
            sign_count: 0,
            created_at: NOW,
            last_used_at: None,
        },
    )
    .unwrap();
    email_changes::insert(db, "ec-hash", &ada.id, "ada.new@example.com", NOW + 3600).unwrap();
    webauthn_states::insert(
        db,
        "ws-1",
        Some(&ada.id),
        webauthn_states::Purpose::Register,
        "{}",
        NOW + 300,
    )
    .unwrap();
    accounts::forgot_password(&env, &auth, &ada.email, "192.0.2.7").unwrap();

    Populated {
        session: cookie_headers(&cookie),
        w,
        ada,
        bob,
        refresh,
    }
}

#[test]
fn every_table_that_names_a_person_is_exported_or_says_why_not() {
    let w = World::new();
    let mut naming = Vec::new();
    for t in tables(&w.sql).unwrap() {
        let cols: Vec<String> = columns(&w.sql, &t)
            .unwrap()
            .into_iter()
            .filter(|(c, ty)| names_a_person(c, ty))
            .map(|(c, _)| c)
            .collect();
        if !cols.is_empty() {
            naming.push(t.clone());
            assert!(
                TABLES.iter().any(|(name, _)| *name == t),
                "the table `{t}` holds a person ({}): add it to privacy::export::TABLES, \
                 exported under a key or not exported with a reason",
                cols.join(", ")
            );
        }
    }
    for (name, coverage) in TABLES {
        assert!(
            naming.contains(&(*name).to_owned()),
            "privacy::export::TABLES names `{name}`, which holds no person (or no longer exists)"
        );
        if let Coverage::NotExported(reason) = coverage {
            assert!(reason.len() > 20, "`{name}` needs a reason");
        }
    }
    // The keys named are there, with something in them, for a person who
    // has something in every table.
    let p = populated();
    let doc = export::export(&p.w.env(NOW + 1), &p.ada).unwrap();
    for (name, coverage) in TABLES {
        if let Coverage::Exported(key) = coverage {
            let v = dotted(&doc, key).unwrap_or_else(|| panic!("`{key}` ({name}) is missing"));
            let empty = v.is_null() || v.as_array().is_some_and(Vec::is_empty);
            assert!(!empty, "`{key}` ({name}) is empty: {v}");
        }
    }
}

#[test]
fn the_export_shows_everything_but_secrets() {
    let p = populated();
    let doc = export::export(&p.w.env(NOW + 1), &p.ada).unwrap();
    assert_eq!(doc["format"], export::FORMAT);
    assert_eq!(doc["identity"]["id"], p.ada.id.as_str());
    assert_eq!(doc["identity"]["email"], "ada@example.com");
    assert_eq!(doc["identity"]["email_verified"], true);
    assert_eq!(doc["credentials"]["password_set"], true);
    assert_eq!(doc["credentials"]["recovery_codes"]["left"], 2);
    assert_eq!(doc["credentials"]["passkeys"][0]["name"], "Laptop");
    assert!(doc["credentials"]["totp"]["confirmed_at"].is_i64());
    assert_eq!(doc["linked_identities"][0]["subject"], "upstream-ada");
    assert_eq!(doc["consents"][0]["client_id"], "app");
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(doc["organisations"][0]["slug"], "acme");
    assert_eq!(doc["organisations"][0]["role"], "admin");
    assert_eq!(doc["roles"][0]["role"], "buyer");
    assert_eq!(doc["mandates"][0]["id"], "mnd_1");
    assert_eq!(doc["delegations"][0]["mandate_id"], "mnd_2");
    assert_eq!(doc["invitations"][0]["state"], "pending");
    assert_eq!(doc["security_events"][0]["kind"], "sign_in");
    let kinds: Vec<(&str, &str)> = doc["consent_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["value"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("terms", "2026-01"), ("marketing", "opt_in")]);
    assert_eq!(
        doc["pending_email_changes"][0]["new_email"],
        "ada.new@example.com"
    );
    assert_eq!(doc["refresh_tokens"][0]["client_id"], "app");
    assert_eq!(doc["authorization_codes"][0]["client_id"], "app");

    let text = doc.to_string();
    let hash = identity::by_id(&p.w.sql, &p.ada.id)
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    for secret in [
        hash.as_str(),
        "$argon2",
        "JBSWY3DPEHPK3PXP",
        "rc-hash-1",
        "secret-key-material",
        "ec-hash",
        "mh1",
        "kv_key",
        "session:",
        "current_hash",
    ] {
        assert!(!text.contains(secret), "the export shows `{secret}`");
    }
    // Bob's export does not show Ada's sessions or events.
    let bobs = export::export(&p.w.env(NOW + 1), &p.bob).unwrap();
    assert!(!bobs["sessions"].to_string().contains(&p.ada.id));
}

#[test]
fn erasure_leaves_no_row_that_names_the_person() {
    let p = populated();
    let (w, ada, bob) = (&p.w, &p.ada, &p.bob);
    assert!(!holding(&w.sql, &ada.id).is_empty());
    assert!(!holding(&w.sql, &ada.email).is_empty());
    let bobs_events = security_events::page(&w.sql, &bob.id, None, 100).unwrap();

    erase::erase(&w.env(NOW + 10), ada, " Ada@Example.com ").unwrap();

    assert_eq!(holding(&w.sql, &ada.id), [], "rows still hold the id");
    assert_eq!(holding(&w.sql, &ada.email), [], "rows still hold the email");
    // Her access is over: the session and the refresh token.
    let auth = Auth::load(&w.vars).unwrap();
    assert!(
        accounts::current(&w.env(NOW + 11), &auth, &p.session)
            .unwrap()
            .is_none()
    );
    assert!(refresh(w, &p.refresh, NOW + 11).is_err());
    // What the organisations keep, without her.
    let acme = orgs::open(&w.sql, "acme", bob).unwrap();
    assert_eq!(acme.me.role, "owner");
    let log = orgs::audit(&w.sql, &acme, None, 100).unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "member.erased" && e.actor == ERASED)
    );
    assert!(
        log.iter()
            .any(|e| e.action == "organisation.created" && e.actor == ERASED)
    );
    assert_eq!(
        role_assignments::for_identity(&w.sql, &bob.id)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        mandates::get(&w.sql, "mnd_1").unwrap().unwrap().state,
        "revoked"
    );
    assert_eq!(
        mandate_delegates::list(&w.sql, "mnd_2").unwrap(),
        [bob.id.as_str()]
    );
    assert_eq!(
        security_events::page(&w.sql, &bob.id, None, 100).unwrap(),
        bobs_events
    );
    assert_eq!(consents::for_identity(&w.sql, &bob.id).unwrap().len(), 1);
    // The address is free again: a new person can sign up with it.
    let again = signed_up(w, "ada@example.com");
    assert_ne!(again.id, ada.id);
}

#[test]
fn the_last_owner_of_an_organisation_cannot_erase_and_nothing_changes() {
    let w = World::new();
    let ada = signed_up(&w, "ada@example.com");
    let bob = verified(&w, "bob@example.com");
    let policy = Policy { self_service: true };
    orgs::create_own(&w.sql, policy, &ada, "Acme Oy", "acme", NOW).unwrap();
    let other = orgs::create_own(&w.sql, policy, &ada, "Other", "other", NOW).unwrap();
    // Co-owned: not in the way.
    memberships::insert(&w.sql, &other.id, &bob.id, "owner", None, NOW).unwrap();
    let before = dump(&w.sql);
    let err = erase::erase(&w.env(NOW), &ada, "ada@example.com").unwrap_err();
    let Error::Conflict(msg) = err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("“Acme Oy”") && !msg.contains("Other"), "{msg}");
    assert!(msg.contains("transfer ownership") && msg.contains("delete the organisation"));
    assert_eq!(dump(&w.sql), before);
}

#[test]
fn erasure_needs_the_address_typed_again() {
    let w = World::new();
    let ada = signed_up(&w, "ada@example.com");
    let before = dump(&w.sql);
    for wrong in ["", "bob@example.com", "ada@example"] {
        assert!(matches!(
            erase::erase(&w.env(NOW), &ada, wrong),
            Err(Error::BadRequest(_))
        ));
    }
    assert_eq!(dump(&w.sql), before);
}

fn api(
    w: &World,
    now: i64,
    method: &str,
    path: &str,
    cookie: &HeaderMap,
    body: Option<Json>,
) -> http::Response<Vec<u8>> {
    let mut b = http::Request::builder().method(method).uri(path);
    for (k, v) in cookie {
        b = b.header(k, v);
    }
    let req = match body {
        Some(j) => b
            .header("content-type", "application/json")
            .body(j.to_string().into_bytes()),
        None => b.body(Vec::new()),
    }
    .unwrap();
    crate::routes::account::handle(&w.env(now), req)
}

#[test]
fn erasure_through_the_api_needs_a_recent_sign_in() {
    let w = World::new();
    let ada = signed_up(&w, "ada@example.com");
    let auth = Auth::load(&w.vars).unwrap();
    let cookie = cookie_headers(&testkit::signed_in(
        &w,
        auth.policy().unwrap(),
        &ada.id,
        0,
        NOW,
    ));
    let confirm = Some(json!({ "confirm": "ada@example.com" }));
    // Still signed in (used every few minutes), but the sign-in is old.
    for t in [60, 120, 180, 240, 301] {
        let res = api(&w, NOW + t, "GET", "/api/account/consents", &cookie, None);
        assert_eq!(res.status(), StatusCode::OK, "{t}");
    }
    let res = api(
        &w,
        NOW + 301,
        "POST",
        "/api/account/delete",
        &cookie,
        confirm.clone(),
    );
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let problem: Json = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(
        problem["type"],
        "urn:lanyard:problem:recent-sign-in-required"
    );
    assert!(identity::by_id(&w.sql, &ada.id).unwrap().is_some());

    let fresh = cookie_headers(&testkit::signed_in(
        &w,
        auth.policy().unwrap(),
        &ada.id,
        0,
        NOW + 400,
    ));
    let res = api(
        &w,
        NOW + 410,
        "POST",
        "/api/account/delete",
        &fresh,
        confirm,
    );
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cleared = res.headers()[http::header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(identity::by_id(&w.sql, &ada.id).unwrap().is_none());
    let res = api(&w, NOW + 411, "GET", "/api/account/consents", &fresh, None);
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn terms_are_accepted_at_sign_up_and_again_when_they_change() {
    let mut w = World::with(&[("terms_version", "v1")]);
    // Without the box ticked: refused, nothing made.
    let err = sign_up(&w, "ada@example.com", &[]).unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    assert!(
        identity::by_email(&w.sql, "ada@example.com")
            .unwrap()
            .is_none()
    );
    assert_eq!(crate::store::count_rows(&w.sql, "dev_outbox").unwrap(), 0);

    let ada = signed_up(&w, "ada@example.com");
    let env = w.env(NOW);
    assert_eq!(consent::terms_needed(&env, &ada.id).unwrap(), None);
    let s = consent::status(&env, &ada.id, Terms::load(&w.vars).unwrap().as_ref()).unwrap();
    assert_eq!(s.terms_accepted.as_deref(), Some("v1"));
    assert!(s.marketing && !s.terms_needed);

    w.set("terms_version", Some("v2"));
    let env = w.env(NOW + 1);
    assert_eq!(
        consent::terms_needed(&env, &ada.id)
            .unwrap()
            .unwrap()
            .version,
        "v2"
    );
    assert!(matches!(
        consent::accept_terms(&env, &ada.id, "v1", "192.0.2.7"),
        Err(Error::Conflict(_))
    ));
    consent::accept_terms(&env, &ada.id, "v2", "192.0.2.7").unwrap();
    assert_eq!(consent::terms_needed(&env, &ada.id).unwrap(), None);

    // Marketing: changes are history, repeats are not.
    consent::set_marketing(&env, &ada.id, false, "192.0.2.7").unwrap();
    consent::set_marketing(&env, &ada.id, false, "192.0.2.7").unwrap();
    consent::set_marketing(&env, &ada.id, true, "192.0.2.7").unwrap();
    let s = consent::status(&env, &ada.id, None).unwrap();
    let history: Vec<(&str, &str)> = s
        .history
        .iter()
        .map(|r| (r.kind.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        history,
        [
            ("terms", "v1"),
            ("marketing", "opt_in"),
            ("terms", "v2"),
            ("marketing", "opt_out"),
            ("marketing", "opt_in"),
        ]
    );

    // No version set: nobody is asked.
    w.set("terms_version", None);
    let bob = signed_up(&w, "bob@example.com");
    assert_eq!(consent::terms_needed(&w.env(NOW), &bob.id).unwrap(), None);
}

#[test]
fn bad_terms_variables_are_named() {
    for (name, value) in [
        ("terms_version", "a\u{7}b"),
        ("terms_url", "javascript:alert(1)"),
        ("terms_url", "//evil.example/terms"),
    ] {
        let mut w = World::with(&[("terms_version", "v1")]);
        w.set(name, Some(value));
        let err = Terms::load(&w.vars).unwrap_err();
        assert!(format!("{err:?}").contains(name), "{err:?}");
    }
}

#[test]
fn security_events_are_kept_for_the_retention_days() {
    let mut w = World::new();
    let device = Device::addr("192.0.2.7");
    for at in [NOW - 40 * 86_400, NOW - 20 * 86_400, NOW] {
        events::record(&w.env(at), "ada", Kind::SignIn, json!({}), &device).unwrap();
    }
    w.set("security_event_retention_days", Some("30"));
    let swept = sweep::run_configured(&w.env(NOW), 100).unwrap();
    assert_eq!(swept.security_events, 1);
    assert_eq!(
        security_events::page(&w.sql, "ada", None, 10)
            .unwrap()
            .len(),
        2
    );
    for bad in ["0", "3651", "a year"] {
        w.set("security_event_retention_days", Some(bad));
        assert!(sweep::retention_days(&w.vars).is_err(), "{bad}");
    }
    w.set("security_event_retention_days", None);
    assert_eq!(sweep::retention_days(&w.vars).unwrap(), 365);
    // The default keeps a year.
    assert_eq!(sweep::run(&w.sql, NOW, 100).unwrap().security_events, 0);
}

#[test]
fn a_session_ends_with_the_erasure() {
    let p = populated();
    let env = p.w.env(NOW + 1);
    let auth = Auth::load(&p.w.vars).unwrap();
    assert!(
        session::current(&env, auth.policy().unwrap(), &p.session)
            .unwrap()
            .is_some()
    );
    erase::erase(&env, &p.ada, "ada@example.com").unwrap();
    assert!(
        session::current(&env, auth.policy().unwrap(), &p.session)
            .unwrap()
            .is_none()
    );
}
