//! The verifier against tokens signed like Lanyard signs them.

// A test crate: its helpers, not only its `#[test]` functions, may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::rc::Rc;

use jwt_simple::prelude::*;
use lanyard_verifier::{
    Actor, Fetched, LanyardClaims, Mandate, Organisation, TokenKind, Verifier, VerifyError,
};
use serde_json::{Value, json};

const ISS: &str = "https://id.example.com";
const NOW: u64 = 1_800_000_000;

fn jwks(keys: &[&ES256KeyPair]) -> Vec<u8> {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::from_str(&k.public_key().to_jwk()).unwrap())
        .collect();
    json!({ "keys": keys }).to_string().into_bytes()
}

fn token(key: &ES256KeyPair, typ: &str, aud: &str, iat: u64, ttl: u64) -> String {
    let mut c = Claims::with_custom_claims(
        json!({"client_id": aud, "scope": "openid"}),
        Duration::from_secs(ttl),
    )
    .with_issuer(ISS)
    .with_subject("user-1")
    .with_audience(aud);
    c.issued_at = Some(Duration::from_secs(iat));
    c.invalid_before = Some(Duration::from_secs(iat));
    c.expires_at = Some(Duration::from_secs(iat + ttl));
    key.sign_with_options(
        c,
        &HeaderOptions {
            signature_type: Some(typ.into()),
            ..Default::default()
        },
    )
    .unwrap()
}

fn key(kid: &str) -> ES256KeyPair {
    ES256KeyPair::generate().with_key_id(kid)
}

#[test]
fn verifies_and_types_claims() {
    let k = key("k1");
    let body = jwks(&[&k]);
    let v = Verifier::new(ISS, "app", move |_: &str| {
        Ok(Fetched {
            status: 200,
            body: body.clone(),
            cache_control: Some("public, max-age=300".into()),
        })
    });
    let t = token(&k, "at+jwt", "app", NOW, 300);
    let ok = v
        .verify_at::<Value>(&t, TokenKind::Access, NOW + 10)
        .unwrap();
    assert_eq!(ok.sub, "user-1");
    assert_eq!(ok.claims["scope"], "openid");
    // Wrong audience, wrong type, expired (beyond leeway), not yet valid.
    let other = token(&k, "at+jwt", "other", NOW, 300);
    assert!(matches!(
        v.verify_at::<Value>(&other, TokenKind::Access, NOW),
        Err(VerifyError::Invalid(_))
    ));
    assert!(v.verify_at::<Value>(&t, TokenKind::Id, NOW).is_err());
    assert!(
        v.verify_at::<Value>(&t, TokenKind::Access, NOW + 300 + 29)
            .is_ok(),
        "within leeway"
    );
    assert!(
        v.verify_at::<Value>(&t, TokenKind::Access, NOW + 300 + 31)
            .is_err()
    );
    let future = token(&k, "at+jwt", "app", NOW + 100, 300);
    assert!(
        v.verify_at::<Value>(&future, TokenKind::Access, NOW)
            .is_err()
    );
}

#[test]
fn refuses_none_hmac_and_tampering() {
    let k = key("k1");
    let body = jwks(&[&k]);
    let v = Verifier::new(ISS, "app", move |_: &str| {
        Ok(Fetched {
            status: 200,
            body: body.clone(),
            cache_control: None,
        })
    });
    let t = token(&k, "at+jwt", "app", NOW, 300);
    let parts: Vec<&str> = t.split('.').collect();
    let none = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","kid":"k1","typ":"at+jwt"}"#),
        parts[1]
    );
    assert!(matches!(
        v.verify_at::<Value>(&none, TokenKind::Access, NOW),
        Err(VerifyError::Algorithm(_))
    ));
    let hs = HS256Key::from_bytes(k.public_key().to_jwk().as_bytes()).with_key_id("k1");
    let confused = hs
        .authenticate(
            Claims::create(Duration::from_secs(60))
                .with_issuer(ISS)
                .with_audience("app"),
        )
        .unwrap();
    assert!(matches!(
        v.verify_at::<Value>(&confused, TokenKind::Access, NOW),
        Err(VerifyError::Algorithm(_))
    ));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64url(
            br#"{"sub":"admin","iss":"https://id.example.com","aud":"app","exp":1900000000}"#
        ),
        parts[2]
    );
    assert!(matches!(
        v.verify_at::<Value>(&tampered, TokenKind::Access, NOW),
        Err(VerifyError::Invalid(_))
    ));
    // EdDSA only: an ES256 token is refused by the allow-list.
    let body2 = jwks(&[&k]);
    let strict = Verifier::new(ISS, "app", move |_: &str| {
        Ok(Fetched {
            status: 200,
            body: body2.clone(),
            cache_control: None,
        })
    })
    .with_algorithms(&["EdDSA"]);
    assert!(matches!(
        strict.verify_at::<Value>(&t, TokenKind::Access, NOW),
        Err(VerifyError::Algorithm(_))
    ));
}

fn base64url(b: &[u8]) -> String {
    lanyard::crypto::b64url(b)
}

#[test]
fn caches_the_jwks_and_refetches_unknown_kids_with_a_cooldown() {
    let old = key("old");
    let new = key("new");
    let fetches = Rc::new(Cell::new(0));
    let published = Rc::new(Cell::new(false));
    let (f, p) = (fetches.clone(), published.clone());
    let (old_body, both_body) = (jwks(&[&old]), jwks(&[&old, &new]));
    let v = Verifier::new(ISS, "app", move |_: &str| {
        f.set(f.get() + 1);
        let body = if p.get() {
            both_body.clone()
        } else {
            old_body.clone()
        };
        Ok(Fetched {
            status: 200,
            body,
            cache_control: Some("max-age=600".into()),
        })
    });
    let t_old = token(&old, "at+jwt", "app", NOW, 300);
    let t_new = token(&new, "at+jwt", "app", NOW, 300);
    v.verify_at::<Value>(&t_old, TokenKind::Access, NOW)
        .unwrap();
    v.verify_at::<Value>(&t_old, TokenKind::Access, NOW + 1)
        .unwrap();
    assert_eq!(fetches.get(), 1, "cached within max-age");
    // Unknown kid: one refetch, then the cooldown holds further ones off.
    assert_eq!(
        v.verify_at::<Value>(&t_new, TokenKind::Access, NOW + 2)
            .unwrap_err(),
        VerifyError::UnknownKey
    );
    assert_eq!(fetches.get(), 1, "the cooldown since the first fetch");
    assert!(
        v.verify_at::<Value>(&t_new, TokenKind::Access, NOW + 61)
            .is_err()
    );
    assert_eq!(fetches.get(), 2);
    published.set(true);
    assert!(
        v.verify_at::<Value>(&t_new, TokenKind::Access, NOW + 62)
            .is_err(),
        "cooling down"
    );
    assert_eq!(fetches.get(), 2);
    v.verify_at::<Value>(&t_new, TokenKind::Access, NOW + 122)
        .unwrap();
    assert_eq!(fetches.get(), 3);
    // After max-age the JWKS is fetched again.
    // After max-age the JWKS is fetched again (the token itself has expired by then).
    let late = v.verify_at::<Value>(&t_old, TokenKind::Access, NOW + 122 + 600);
    assert!(matches!(late, Err(VerifyError::Invalid(_))));
    assert_eq!(fetches.get(), 4);
}

#[test]
fn the_cache_skips_repeat_verification_but_not_expiry() {
    let k = key("k1");
    let body = jwks(&[&k]);
    let v = Verifier::new(ISS, "app", move |_: &str| {
        Ok(Fetched {
            status: 200,
            body: body.clone(),
            cache_control: None,
        })
    })
    .with_cache(100);
    let t = token(&k, "at+jwt", "app", NOW, 300);
    let first = v.verify_at::<Value>(&t, TokenKind::Access, NOW).unwrap();
    let again = v
        .verify_at::<Value>(&t, TokenKind::Access, NOW + 1)
        .unwrap();
    assert_eq!(first.claims, again.claims);
    assert!(
        v.verify_at::<Value>(&t, TokenKind::Id, NOW + 1).is_err(),
        "the kind is part of the check"
    );
    assert!(
        v.verify_at::<Value>(&t, TokenKind::Access, NOW + 300 + 31)
            .is_err(),
        "expired, even though cached"
    );
    let tampered = format!("{}x", t);
    assert!(
        v.verify_at::<Value>(&tampered, TokenKind::Access, NOW)
            .is_err()
    );
}

#[test]
fn eddsa_tokens_verify_and_tampering_fails() {
    let k = Ed25519KeyPair::generate().with_key_id("ed");
    let public: Value = serde_json::from_str(&k.public_key().to_jwk()).unwrap();
    let body = json!({ "keys": [public] }).to_string().into_bytes();
    let v = Verifier::new(ISS, "app", move |_: &str| {
        Ok(Fetched {
            status: 200,
            body: body.clone(),
            cache_control: None,
        })
    });
    let mut c = Claims::with_custom_claims(json!({"scope": "openid"}), Duration::from_secs(300))
        .with_issuer(ISS)
        .with_subject("u")
        .with_audience("app");
    c.issued_at = Some(Duration::from_secs(NOW));
    c.expires_at = Some(Duration::from_secs(NOW + 300));
    let t = k
        .sign_with_options(
            c,
            &HeaderOptions {
                signature_type: Some("at+jwt".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        v.verify_at::<Value>(&t, TokenKind::Access, NOW)
            .unwrap()
            .claims["scope"],
        "openid"
    );
    let mut bytes = t.clone().into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let broken = String::from_utf8(bytes).unwrap();
    assert!(
        v.verify_at::<Value>(&broken, TokenKind::Access, NOW)
            .is_err()
    );
}

#[test]
fn rs256_id_tokens_verify_only_when_allowed() {
    let k = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa");
    let public: Value = serde_json::from_str(&k.public_key().to_jwk()).unwrap();
    let body = json!({ "keys": [public] }).to_string().into_bytes();
    let fetch = move |_: &str| {
        Ok(Fetched {
            status: 200,
            body: body.clone(),
            cache_control: None,
        })
    };
    let mut c =
        Claims::with_custom_claims(json!({"email": "a@example.com"}), Duration::from_secs(300))
            .with_issuer(ISS)
            .with_subject("u")
            .with_audience("app")
            .with_nonce("n-1");
    c.issued_at = Some(Duration::from_secs(NOW));
    c.expires_at = Some(Duration::from_secs(NOW + 300));
    let t = k
        .sign_with_options(
            c,
            &HeaderOptions {
                signature_type: Some("JWT".into()),
                ..Default::default()
            },
        )
        .unwrap();
    // Off by default: an app opts in for the clients that need RS256.
    let strict = Verifier::new(ISS, "app", fetch.clone());
    assert_eq!(
        strict
            .verify_at::<Value>(&t, TokenKind::Id, NOW)
            .unwrap_err(),
        VerifyError::Algorithm("RS256".into())
    );
    let v = Verifier::new(ISS, "app", fetch).with_algorithms(&["ES256", "EdDSA", "RS256"]);
    let ok = v.verify_at::<Value>(&t, TokenKind::Id, NOW).unwrap();
    assert_eq!((ok.sub.as_str(), ok.nonce.as_deref()), ("u", Some("n-1")));
    assert_eq!(ok.claims["email"], "a@example.com");
    assert!(v.verify_at::<Value>(&t, TokenKind::Access, NOW).is_err());
    let mut bytes = t.clone().into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let broken = String::from_utf8(bytes).unwrap();
    assert!(v.verify_at::<Value>(&broken, TokenKind::Id, NOW).is_err());
}

/// An ID token for "app" with these custom claims.
fn id_token(key: &ES256KeyPair, custom: Value) -> String {
    let mut c = Claims::with_custom_claims(custom, Duration::from_secs(300))
        .with_issuer(ISS)
        .with_subject("user-1")
        .with_audience("app")
        .with_nonce("n-1");
    c.issued_at = Some(Duration::from_secs(NOW));
    c.expires_at = Some(Duration::from_secs(NOW + 300));
    key.sign_with_options(
        c,
        &HeaderOptions {
            signature_type: Some("JWT".into()),
            ..Default::default()
        },
    )
    .unwrap()
}

fn verifier_for(k: &ES256KeyPair) -> Verifier<impl Fn(&str) -> Result<Fetched, String>> {
    let body = jwks(&[k]);
    Verifier::new(ISS, "app", move |_: &str| {
        Ok(Fetched {
            status: 200,
            body: body.clone(),
            cache_control: None,
        })
    })
}

#[test]
fn the_organisation_of_a_b2b_token_is_typed() {
    let k = key("k1");
    let t = id_token(
        &k,
        json!({
            "email": "a@example.com",
            "org_id": "org_Xb3",
            "org_slug": "acme",
            "org_name": "Acme Oy",
            "roles": ["buyer", "viewer"],
            "project_roles": { "prj_9f": ["approver"], "prj_2": [] },
        }),
    );
    // Uncached and through the cache (which converts from stored JSON).
    for v in [verifier_for(&k), verifier_for(&k).with_cache(10)] {
        for _ in 0..2 {
            let ok = v
                .verify_at::<LanyardClaims>(&t, TokenKind::Id, NOW)
                .unwrap();
            let org = ok.claims.organisation.clone().unwrap();
            assert_eq!(
                org,
                Organisation {
                    id: "org_Xb3".into(),
                    slug: "acme".into(),
                    name: "Acme Oy".into(),
                    roles: vec!["buyer".into(), "viewer".into()],
                    project_roles: [
                        ("prj_9f".to_owned(), vec!["approver".to_owned()]),
                        ("prj_2".to_owned(), vec![]),
                    ]
                    .into_iter()
                    .collect(),
                }
            );
            assert!(org.has_role("buyer") && !org.has_role("approver"));
            assert!(org.has_project_role("prj_9f", "approver"));
            assert!(org.has_project_role("prj_2", "buyer"), "service-wide");
            assert!(!org.has_project_role("prj_2", "approver"));
            // The rest keeps the other claims, without the organisation's.
            assert_eq!(ok.claims.claims["email"], "a@example.com");
            assert!(ok.claims.claims.get("org_id").is_none());
            // Serialized, the claims are the token's again.
            let back = serde_json::to_value(&ok.claims).unwrap();
            assert_eq!(back["org_slug"], "acme");
            assert_eq!(back["project_roles"]["prj_9f"][0], "approver");
            assert_eq!(back["email"], "a@example.com");
        }
    }
}

#[test]
fn a_token_without_org_id_has_no_organisation() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Mine {
        email: String,
    }
    let k = key("k1");
    let t = id_token(&k, json!({ "email": "a@example.com" }));
    let v = verifier_for(&k);
    let ok = v
        .verify_at::<LanyardClaims>(&t, TokenKind::Id, NOW)
        .unwrap();
    assert_eq!(ok.claims.organisation, None);
    assert_eq!(ok.claims.claims, json!({ "email": "a@example.com" }));
    // With the caller's own type for the rest.
    let mine = v
        .verify_at::<LanyardClaims<Mine>>(&t, TokenKind::Id, NOW)
        .unwrap();
    assert!(mine.claims.organisation.is_none());
    assert_eq!(mine.claims.claims.email, "a@example.com");
    assert_eq!(
        serde_json::to_value(&mine.claims).unwrap(),
        json!({ "email": "a@example.com" })
    );
}

#[test]
fn malformed_organisation_claims_are_refused() {
    let k = key("k1");
    let bad = [
        json!({ "org_id": "org_1", "org_name": "Acme Oy" }),
        json!({ "org_id": "org_1", "org_slug": "acme" }),
        json!({ "org_id": 7, "org_slug": "acme", "org_name": "Acme Oy" }),
        json!({ "org_id": "org_1", "org_slug": "acme", "org_name": "Acme Oy", "roles": "buyer" }),
        json!({ "org_id": "org_1", "org_slug": "acme", "org_name": "Acme Oy",
                "project_roles": ["approver"] }),
    ];
    for claims in bad {
        let t = id_token(&k, claims.clone());
        for v in [verifier_for(&k), verifier_for(&k).with_cache(10)] {
            assert!(
                matches!(
                    v.verify_at::<LanyardClaims>(&t, TokenKind::Id, NOW),
                    Err(VerifyError::Invalid(_))
                ),
                "{claims}"
            );
            // The same token is fine when the organisation is not asked for.
            assert!(v.verify_at::<Value>(&t, TokenKind::Id, NOW).is_ok());
        }
    }
    // Roles are optional next to a complete organisation.
    let t = id_token(
        &k,
        json!({ "org_id": "org_1", "org_slug": "acme", "org_name": "Acme Oy" }),
    );
    let org = verifier_for(&k)
        .verify_at::<LanyardClaims>(&t, TokenKind::Id, NOW)
        .unwrap()
        .claims
        .organisation
        .unwrap();
    assert!(org.roles.is_empty() && org.project_roles.is_empty());
}

#[test]
fn a_mandate_token_types_its_actor_and_mandate() {
    let k = key("k1");
    let t = id_token(
        &k,
        json!({
            "email": "a@example.com",
            "org_id": "org_A", "org_slug": "acme", "org_name": "Acme Oy",
            "roles": [], "project_roles": { "prj_1": ["invoice:read"] },
            "act": { "sub": "person-1", "org_id": "org_B" },
            "mandate": { "id": "mnd_1", "expires_at": 1_798_761_600u64 },
        }),
    );
    for v in [verifier_for(&k), verifier_for(&k).with_cache(10)] {
        let ok = v
            .verify_at::<LanyardClaims>(&t, TokenKind::Id, NOW)
            .unwrap();
        let org = ok.claims.organisation.clone().unwrap();
        assert_eq!(org.id, "org_A", "the principal is the organisation");
        assert!(org.has_project_role("prj_1", "invoice:read"));
        assert_eq!(
            ok.claims.act,
            Some(Actor {
                sub: "person-1".into(),
                org_id: Some("org_B".into()),
                act: None,
            })
        );
        assert_eq!(
            ok.claims.mandate,
            Some(Mandate {
                id: "mnd_1".into(),
                expires_at: 1_798_761_600,
            })
        );
        // Taken out of the rest, and put back when serialized.
        assert!(ok.claims.claims.get("act").is_none());
        assert!(ok.claims.claims.get("mandate").is_none());
        let back = serde_json::to_value(&ok.claims).unwrap();
        assert_eq!(back["act"], json!({ "sub": "person-1", "org_id": "org_B" }));
        assert_eq!(back["mandate"]["id"], "mnd_1");
        assert_eq!(back["org_id"], "org_A");
    }

    // A person named by the mandate: no agent organisation. An exchanged
    // token's actor nests the one before it.
    let t = id_token(
        &k,
        json!({
            "act": { "sub": "app", "act": { "sub": "person-1" } },
            "mandate": { "id": "mnd_2", "expires_at": 1 },
        }),
    );
    let ok = verifier_for(&k)
        .verify_at::<LanyardClaims>(&t, TokenKind::Id, NOW)
        .unwrap();
    let act = ok.claims.act.unwrap();
    assert_eq!((act.sub.as_str(), act.org_id), ("app", None));
    assert_eq!(
        act.act.map(|a| (a.sub, a.org_id)),
        Some(("person-1".to_owned(), None))
    );
    assert!(ok.claims.organisation.is_none());

    // Without them, none; a plain token serializes as it was.
    let t = id_token(&k, json!({ "email": "a@example.com" }));
    let ok = verifier_for(&k)
        .verify_at::<LanyardClaims>(&t, TokenKind::Id, NOW)
        .unwrap();
    assert_eq!(
        (ok.claims.act.clone(), ok.claims.mandate.clone()),
        (None, None)
    );
    assert_eq!(
        serde_json::to_value(&ok.claims).unwrap(),
        json!({ "email": "a@example.com" })
    );
}

#[test]
fn malformed_actor_and_mandate_claims_are_refused() {
    let k = key("k1");
    for claims in [
        json!({ "act": "person-1" }),
        json!({ "act": { "org_id": "org_B" } }),
        json!({ "act": { "sub": "person-1", "org_id": 7 } }),
        json!({ "mandate": "mnd_1" }),
        json!({ "mandate": { "id": "mnd_1" } }),
        json!({ "mandate": { "id": "mnd_1", "expires_at": "soon" } }),
    ] {
        let t = id_token(&k, claims.clone());
        let v = verifier_for(&k);
        assert!(
            matches!(
                v.verify_at::<LanyardClaims>(&t, TokenKind::Id, NOW),
                Err(VerifyError::Invalid(_))
            ),
            "{claims}"
        );
        assert!(v.verify_at::<Value>(&t, TokenKind::Id, NOW).is_ok());
    }
}
