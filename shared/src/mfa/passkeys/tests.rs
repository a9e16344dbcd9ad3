//! Passkeys against a software authenticator (`passkey_authenticator.rs`).

use super::authenticator::Authenticator;
use super::*;
use crate::store::{count_rows, security_events};
use crate::testkit::{self, ISSUER, World};

const NOW: i64 = 1_700_000_000;

/// The settings of the test world, as `accounts::Auth` would read them.
struct Loaded<'a> {
    config: Config<'a>,
    policy: Policy,
    limits: Limits,
}

fn auth(w: &World) -> Loaded<'_> {
    Loaded {
        config: Config::load(&w.vars).unwrap(),
        policy: Policy::load(&w.vars).unwrap(),
        limits: Limits::load(&w.vars).unwrap(),
    }
}

fn settings<'a>(a: &'a Loaded<'a>) -> Settings<'a> {
    Settings {
        config: &a.config,
        policy: &a.policy,
        limits: &a.limits,
    }
}

fn device() -> Device {
    Device::addr("192.0.2.7")
}

fn verified(w: &World, email: &str) -> Identity {
    let who = testkit::person(&w.sql, email, NOW);
    identity::mark_verified(&w.sql, &who.id, NOW).unwrap();
    identity::by_id(&w.sql, &who.id).unwrap().unwrap()
}

fn authenticator(seed: u8) -> Authenticator {
    Authenticator::new(seed, "id.example.test", ISSUER)
}

/// Registers a passkey of `key` for `who`.
fn register(w: &World, who: &Identity, key: &mut Authenticator, name: Option<&str>) -> Listed {
    let a = auth(w);
    let started = start_registration(&w.env(NOW), &a.config, who).unwrap();
    let answer = key.register(&started.options);
    finish_registration(
        &w.env(NOW + 1),
        &a.config,
        who,
        &started.handle,
        name,
        &answer,
        &device(),
    )
    .unwrap()
}

fn sign_in(w: &World, key: &mut Authenticator, at: i64) -> Result<SignedIn> {
    let a = auth(w);
    let started = start_sign_in(&w.env(at), &a.config).unwrap();
    let answer = key.assert(&started.options);
    finish_sign_in(
        &w.env(at + 1),
        settings(&a),
        &started.handle,
        &answer,
        &device(),
    )
}

#[test]
fn register_then_sign_in_without_a_password() {
    let w = World::new();
    let ada = verified(&w, "ada@example.com");
    let a = auth(&w);
    let started = start_registration(&w.env(NOW), &a.config, &ada).unwrap();
    let body = started.to_json();
    assert_eq!(body["handle"], started.handle.as_str());
    assert_eq!(body["publicKey"]["rp"]["id"], "id.example.test");
    let sel = &body["publicKey"]["authenticatorSelection"];
    assert_eq!(sel["residentKey"], "required");
    assert_eq!(sel["requireResidentKey"], true);
    assert_eq!(sel["userVerification"], "required");

    let mut key = authenticator(1);
    let answer = key.register(&started.options);
    let listed = finish_registration(
        &w.env(NOW + 1),
        &a.config,
        &ada,
        &started.handle,
        Some("  Laptop  "),
        &answer,
        &device(),
    )
    .unwrap();
    assert_eq!(listed.name, "Laptop");
    assert_eq!(rows::count(&w.sql, &ada.id).unwrap(), 1);
    let events = security_events::page(&w.sql, &ada.id, None, 10).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "mfa_added" && e.detail["method"] == "passkey")
    );

    // A second passkey: the first is excluded, and the user handle is the same.
    let started = start_registration(&w.env(NOW), &a.config, &ada).unwrap();
    let excluded = &started.options["publicKey"]["excludeCredentials"];
    assert_eq!(excluded.as_array().unwrap().len(), 1);
    assert_eq!(
        started.options["publicKey"]["user"]["id"],
        crypto::b64url(key.user_handle.as_deref().unwrap())
    );

    let cookie = match sign_in(&w, &mut key, NOW + 10).unwrap() {
        SignedIn::Session(c) => c,
        other => panic!("{other:?}"),
    };
    let pair = cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut h = http::HeaderMap::new();
    h.insert(http::header::COOKIE, pair.parse().unwrap());
    let s = session::current(&w.env(NOW + 12), &a.policy, &h)
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.sub.as_str(), s.amr.clone()),
        (ada.id.as_str(), vec!["hwk".to_owned(), "mfa".to_owned()])
    );
    let row = rows::by_credential(&w.sql, &listed.id).unwrap().unwrap();
    assert_eq!((row.sign_count, row.last_used_at), (1, Some(NOW + 11)));
    // Signing in again moves the counter on.
    assert!(matches!(
        sign_in(&w, &mut key, NOW + 20).unwrap(),
        SignedIn::Session(_)
    ));
    assert_eq!(
        rows::by_credential(&w.sql, &listed.id)
            .unwrap()
            .unwrap()
            .sign_count,
        2
    );
}

#[test]
fn an_unverified_account_gets_no_session() {
    let w = World::new();
    let bob = testkit::person(&w.sql, "bob@example.com", NOW);
    let mut key = authenticator(2);
    register(&w, &bob, &mut key, None);
    assert!(
        matches!(sign_in(&w, &mut key, NOW + 5).unwrap(), SignedIn::Unverified(e) if e == "bob@example.com")
    );
    assert_eq!(count_rows(&w.sql, "sessions").unwrap(), 0);
}

#[test]
fn a_wrong_user_handle_is_refused() {
    let w = World::new();
    let ada = verified(&w, "ada@example.com");
    let bob = verified(&w, "bob@example.com");
    let mut ada_key = authenticator(3);
    let mut bob_key = authenticator(4);
    register(&w, &ada, &mut ada_key, None);
    register(&w, &bob, &mut bob_key, None);
    let a = auth(&w);
    // Ada's passkey, claiming Bob's user handle (and no handle at all).
    for claimed in [bob_key.user_handle.clone(), Some(vec![7; 16]), None] {
        let started = start_sign_in(&w.env(NOW), &a.config).unwrap();
        ada_key.counter += 1;
        let answer = ada_key.assert_with(&started.options, ada_key.counter, claimed.as_deref());
        let err = finish_sign_in(
            &w.env(NOW + 1),
            settings(&a),
            &started.handle,
            &answer,
            &device(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
    }
    assert_eq!(count_rows(&w.sql, "sessions").unwrap(), 0);
    // As a second factor for Bob, Ada's passkey is not Bob's.
    let started = start_for(&w.env(NOW), &a.config, &bob.id).unwrap();
    let answer = ada_key.assert(&started.options);
    let err = finish_for(
        &w.env(NOW + 1),
        settings(&a),
        (&bob.id, &bob.email),
        &started.handle,
        &answer,
        &device(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
}

#[test]
fn a_replayed_or_backwards_sign_count_is_refused() {
    let w = World::new();
    let ada = verified(&w, "ada@example.com");
    let mut key = authenticator(5);
    let listed = register(&w, &ada, &mut key, None);
    let a = auth(&w);
    for _ in 0..3 {
        assert!(matches!(
            sign_in(&w, &mut key, NOW + 10).unwrap(),
            SignedIn::Session(_)
        ));
    }
    assert_eq!(
        rows::by_credential(&w.sql, &listed.id)
            .unwrap()
            .unwrap()
            .sign_count,
        3
    );
    let handle = key.user_handle.clone();
    for counter in [3, 2] {
        let started = start_sign_in(&w.env(NOW + 20), &a.config).unwrap();
        let answer = key.assert_with(&started.options, counter, handle.as_deref());
        let err = finish_sign_in(
            &w.env(NOW + 21),
            settings(&a),
            &started.handle,
            &answer,
            &device(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Unauthorized(_)), "{counter}: {err:?}");
    }
    // The same as a second factor.
    let started = start_for(&w.env(NOW + 30), &a.config, &ada.id).unwrap();
    let answer = key.assert_with(&started.options, 1, handle.as_deref());
    assert!(
        finish_for(
            &w.env(NOW + 31),
            settings(&a),
            (&ada.id, &ada.email),
            &started.handle,
            &answer,
            &device()
        )
        .is_err()
    );
    assert_eq!(
        rows::by_credential(&w.sql, &listed.id)
            .unwrap()
            .unwrap()
            .sign_count,
        3
    );
    let failed = security_events::page(&w.sql, &ada.id, None, 50).unwrap();
    assert_eq!(
        failed.iter().filter(|e| e.kind == "sign_in_failed").count(),
        3
    );
}

#[test]
fn a_second_factor_after_the_password() {
    let w = World::new();
    let ada = verified(&w, "ada@example.com");
    let mut key = authenticator(6);
    let listed = register(&w, &ada, &mut key, Some("Phone"));
    let a = auth(&w);
    let started = start_for(&w.env(NOW + 5), &a.config, &ada.id).unwrap();
    let allowed = &started.options["publicKey"]["allowCredentials"];
    assert_eq!(allowed[0]["id"], listed.id.as_str());
    let answer = key.assert(&started.options);
    finish_for(
        &w.env(NOW + 6),
        settings(&a),
        (&ada.id, &ada.email),
        &started.handle,
        &answer,
        &device(),
    )
    .unwrap();
    assert_eq!(
        rows::by_credential(&w.sql, &listed.id)
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(NOW + 6)
    );
    // Nobody without a passkey can start one.
    let bob = verified(&w, "bob@example.com");
    assert!(matches!(
        start_for(&w.env(NOW), &a.config, &bob.id),
        Err(Error::BadRequest(_))
    ));
    // Another identity's state is not Ada's.
    let started = start_for(&w.env(NOW + 7), &a.config, &ada.id).unwrap();
    let answer = key.assert(&started.options);
    assert!(matches!(
        finish_for(
            &w.env(NOW + 8),
            settings(&a),
            (&bob.id, &bob.email),
            &started.handle,
            &answer,
            &device()
        ),
        Err(Error::BadRequest(_))
    ));
}

#[test]
fn a_state_works_once_and_expires() {
    let w = World::new();
    let ada = verified(&w, "ada@example.com");
    let mut key = authenticator(7);
    register(&w, &ada, &mut key, None);
    let a = auth(&w);

    // Used twice.
    let started = start_sign_in(&w.env(NOW), &a.config).unwrap();
    let answer = key.assert(&started.options);
    assert!(
        finish_sign_in(
            &w.env(NOW + 1),
            settings(&a),
            &started.handle,
            &answer,
            &device()
        )
        .is_ok()
    );
    let err = finish_sign_in(
        &w.env(NOW + 2),
        settings(&a),
        &started.handle,
        &answer,
        &device(),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::BadRequest(ref m) if m == EXPIRED),
        "{err:?}"
    );

    // Expired.
    let started = start_sign_in(&w.env(NOW), &a.config).unwrap();
    let answer = key.assert(&started.options);
    let late = NOW + STATE_SECONDS;
    assert!(matches!(
        finish_sign_in(
            &w.env(late),
            settings(&a),
            &started.handle,
            &answer,
            &device()
        ),
        Err(Error::BadRequest(_))
    ));

    // A registration's state too, and a bad name leaves it usable.
    let started = start_registration(&w.env(NOW), &a.config, &ada).unwrap();
    let mut other = authenticator(8);
    let answer = other.register(&started.options);
    let long = "x".repeat(MAX_NAME + 1);
    for bad in [long.as_str(), "tab\there"] {
        let err = finish_registration(
            &w.env(NOW + 1),
            &a.config,
            &ada,
            &started.handle,
            Some(bad),
            &answer,
            &device(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    }
    assert_eq!(rows::count(&w.sql, &ada.id).unwrap(), 1);
    finish_registration(
        &w.env(NOW + 1),
        &a.config,
        &ada,
        &started.handle,
        None,
        &answer,
        &device(),
    )
    .unwrap();
    assert!(
        finish_registration(
            &w.env(NOW + 1),
            &a.config,
            &ada,
            &started.handle,
            None,
            &answer,
            &device()
        )
        .is_err()
    );
    let names: Vec<_> = rows::for_identity(&w.sql, &ada.id)
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, ["Passkey", "Passkey"]);

    let started = start_registration(&w.env(NOW), &a.config, &ada).unwrap();
    let answer = authenticator(9).register(&started.options);
    assert!(
        finish_registration(
            &w.env(NOW + STATE_SECONDS),
            &a.config,
            &ada,
            &started.handle,
            None,
            &answer,
            &device()
        )
        .is_err()
    );
}

#[test]
fn a_registration_is_bound_to_its_identity_and_challenge() {
    let w = World::new();
    let ada = verified(&w, "ada@example.com");
    let bob = verified(&w, "bob@example.com");
    let a = auth(&w);
    let started = start_registration(&w.env(NOW), &a.config, &ada).unwrap();
    let answer = authenticator(10).register(&started.options);
    assert!(
        finish_registration(
            &w.env(NOW + 1),
            &a.config,
            &bob,
            &started.handle,
            None,
            &answer,
            &device()
        )
        .is_err()
    );
    // Another ceremony's answer does not fit this one's challenge.
    let first = start_registration(&w.env(NOW), &a.config, &ada).unwrap();
    let second = start_registration(&w.env(NOW), &a.config, &ada).unwrap();
    let answer = authenticator(11).register(&second.options);
    assert!(matches!(
        finish_registration(
            &w.env(NOW + 1),
            &a.config,
            &ada,
            &first.handle,
            None,
            &answer,
            &device()
        ),
        Err(Error::BadRequest(_))
    ));
    assert_eq!(rows::count(&w.sql, &ada.id).unwrap(), 0);
}

#[test]
fn wrong_passkeys_count_against_the_account_limit() {
    let w = World::with(&[("login_max_failures", "2")]);
    let ada = verified(&w, "ada@example.com");
    let mut key = authenticator(12);
    register(&w, &ada, &mut key, None);
    let a = auth(&w);
    let handle = key.user_handle.clone();
    assert!(sign_in(&w, &mut key, NOW).is_ok());
    for _ in 0..2 {
        let started = start_sign_in(&w.env(NOW), &a.config).unwrap();
        let answer = key.assert_with(&started.options, 1, handle.as_deref());
        assert!(matches!(
            finish_sign_in(
                &w.env(NOW),
                settings(&a),
                &started.handle,
                &answer,
                &device()
            ),
            Err(Error::Unauthorized(_))
        ));
    }
    let err = sign_in(&w, &mut key, NOW).unwrap_err();
    assert!(matches!(err, Error::TooManyRequests { .. }), "{err:?}");
}

#[test]
fn renamed_and_deleted_only_by_their_owner() {
    let w = World::new();
    let ada = verified(&w, "ada@example.com");
    let bob = verified(&w, "bob@example.com");
    let listed = register(&w, &ada, &mut authenticator(13), None);
    let env = w.env(NOW);
    assert_eq!(
        rename(&env, &bob.id, &listed.id, Some("Mine")),
        Err(Error::NotFound)
    );
    assert_eq!(
        rename(&env, &ada.id, &listed.id, Some(" Key ")).unwrap(),
        "Key"
    );
    assert!(rename(&env, &ada.id, &listed.id, Some(&"y".repeat(65))).is_err());
    assert_eq!(
        delete(&env, &bob.id, &listed.id, &device()),
        Err(Error::NotFound)
    );
    delete(&env, &ada.id, &listed.id, &device()).unwrap();
    assert_eq!(rows::count(&w.sql, &ada.id).unwrap(), 0);
    let events = security_events::page(&w.sql, &ada.id, None, 10).unwrap();
    assert!(events.iter().any(|e| e.kind == "mfa_removed"));
}

#[test]
fn names_and_relying_party() {
    assert_eq!(validate_name(None).unwrap(), DEFAULT_NAME);
    assert_eq!(validate_name(Some("   ")).unwrap(), DEFAULT_NAME);
    assert_eq!(
        validate_name(Some(&"é".repeat(64)))
            .unwrap()
            .chars()
            .count(),
        64
    );
    assert!(validate_name(Some("a\nb")).is_err());
    let mut w = World::new();
    w.set("issuer", Some("http://127.0.0.1:3000"));
    let err = relying_party(&auth(&w).config).unwrap_err();
    assert!(
        matches!(err, Error::Config { ref name, .. } if name == "issuer"),
        "{err:?}"
    );
    w.set("issuer", Some("http://localhost:3000"));
    assert!(relying_party(&auth(&w).config).is_ok());
}
