//! Every refusal of Back-Channel Logout 1.0 §2.6, one token each, made by
//! hand (ring signs any header and claims), and Lanyard's own logout tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use serde_json::{Value, json};

use super::*;

const ISS: &str = "https://id.example.com";
const AUD: &str = "shop";
const NOW: u64 = 1_800_000_000;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A P-256 key and its public JWK under `kid`.
struct Es256 {
    pair: EcdsaKeyPair,
    kid: String,
}

impl Es256 {
    fn new(kid: &str) -> Es256 {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Es256 {
            pair,
            kid: kid.into(),
        }
    }

    fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        })
    }

    /// A JWS of exactly this header and these claims.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    fn header(&self) -> Value {
        json!({"alg": "ES256", "typ": "logout+jwt", "kid": self.kid})
    }
}

fn claims() -> Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "iat": NOW,
        "exp": NOW + 120,
        "jti": "jti-1",
        "sub": "person-1",
        "sid": "sid-1",
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

fn verifier(keys: Vec<Value>) -> Verifier<impl Fn(&str) -> Result<Fetched, String>> {
    let body = json!({ "keys": keys }).to_string().into_bytes();
    Verifier::new(ISS, AUD, move |_: &str| {
        Ok(Fetched {
            status: 200,
            body: body.clone(),
            cache_control: Some("max-age=300".into()),
        })
    })
}

/// A change to `claims()`.
type Edit = fn(&mut Map<String, Value>);

/// `claims()` changed by `edit`, signed by `key` with its usual header.
fn token_with(key: &Es256, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut c = claims();
    edit(c.as_object_mut().unwrap());
    key.sign(&key.header(), &c)
}

fn refusal<F: Fn(&str) -> Result<Fetched, String>>(
    v: &Verifier<F>,
    token: &str,
    at: u64,
) -> String {
    match v.verify_logout_token_at(token, at, &LogoutOptions::default()) {
        Ok(t) => panic!("accepted: {t:?}"),
        Err(VerifyError::Invalid(why)) => why,
        Err(other) => format!("{other:?}"),
    }
}

#[test]
fn a_valid_logout_token_is_accepted_and_typed() {
    let k = Es256::new("k1");
    let v = verifier(vec![k.jwk()]);
    let t = v
        .verify_logout_token_at(&token_with(&k, |_| {}), NOW + 5, &LogoutOptions::default())
        .unwrap();
    assert_eq!(
        t,
        LogoutToken {
            iss: ISS.into(),
            sub: Some("person-1".into()),
            sid: Some("sid-1".into()),
            jti: "jti-1".into(),
            iat: NOW,
            exp: Some(NOW + 120),
            remember_until: NOW + 120 + 30,
        }
    );
    assert_eq!(t.replay_key(), format!("{ISS}#jti-1"));
    // aud as an array; sid alone; sub alone; no exp (Back-Channel Logout
    // 1.0 as first published had none); the typ with its prefix, any case.
    let opts = LogoutOptions::default();
    for edit in [
        |c: &mut Map<String, Value>| {
            c.insert("aud".into(), json!(["other", AUD]));
        },
        |c: &mut Map<String, Value>| {
            c.remove("sub");
        },
        |c: &mut Map<String, Value>| {
            c.remove("sid");
        },
        |c: &mut Map<String, Value>| {
            c.remove("exp");
        },
    ] {
        let token = token_with(&k, edit);
        assert!(v.verify_logout_token_at(&token, NOW, &opts).is_ok());
    }
    for typ in ["application/logout+jwt", "Logout+JWT"] {
        let header = json!({"alg": "ES256", "typ": typ, "kid": "k1"});
        let token = k.sign(&header, &claims());
        assert!(
            v.verify_logout_token_at(&token, NOW, &opts).is_ok(),
            "{typ}"
        );
    }
    let no_exp = v
        .verify_logout_token_at(&token_with(&k, |c| drop(c.remove("exp"))), NOW, &opts)
        .unwrap();
    assert_eq!((no_exp.exp, no_exp.remember_until), (None, NOW + 180 + 30));
}

#[test]
fn forged_tampered_and_unsigned_tokens_are_refused() {
    let k = Es256::new("k1");
    let v = verifier(vec![k.jwk()]);
    // Signed by another key that claims the published kid.
    let forger = Es256::new("k1");
    let forged = token_with(&forger, |_| {});
    assert_eq!(refusal(&v, &forged, NOW), "signature mismatch");
    // A valid signature over other claims.
    let good = token_with(&k, |_| {});
    let mut tampered = claims();
    tampered["sub"] = json!("eve");
    let payload = b64(tampered.to_string().as_bytes());
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[1] = &payload;
    assert_eq!(refusal(&v, &parts.join("."), NOW), "signature mismatch");
    // alg none, HMAC with the public key as secret, an unknown kid.
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "logout+jwt", "kid": "k1"})
            .to_string()
            .as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    assert_eq!(refusal(&v, &none, NOW), "Algorithm(\"none\")");
    let hs = k.sign(
        &json!({"alg": "HS256", "typ": "logout+jwt", "kid": "k1"}),
        &claims(),
    );
    assert_eq!(refusal(&v, &hs, NOW), "Algorithm(\"HS256\")");
    let unknown = Es256::new("k9");
    assert_eq!(
        refusal(&v, &token_with(&unknown, |_| {}), NOW),
        "UnknownKey"
    );
}

#[test]
fn a_key_is_used_only_with_its_own_algorithm() {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed.public_key().as_ref())});
    let v = verifier(vec![jwk]);
    // An EdDSA signature under a header that says ES256 names the EdDSA key.
    let header = json!({"alg": "ES256", "typ": "logout+jwt", "kid": "ed"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let token = format!("{input}.{}", b64(ed.sign(input.as_bytes()).as_ref()));
    assert_eq!(refusal(&v, &token, NOW), "Algorithm(\"ES256\")");
    // The same signature under its own algorithm passes.
    let header = json!({"alg": "EdDSA", "typ": "logout+jwt", "kid": "ed"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let token = format!("{input}.{}", b64(ed.sign(input.as_bytes()).as_ref()));
    assert!(
        v.verify_logout_token_at(&token, NOW, &LogoutOptions::default())
            .is_ok()
    );
}

#[test]
fn the_type_must_be_logout_jwt() {
    let k = Es256::new("k1");
    let v = verifier(vec![k.jwk()]);
    for header in [
        json!({"alg": "ES256", "typ": "JWT", "kid": "k1"}),
        json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}),
        json!({"alg": "ES256", "typ": "secevent+jwt", "kid": "k1"}),
        json!({"alg": "ES256", "kid": "k1"}),
    ] {
        assert_eq!(
            refusal(&v, &k.sign(&header, &claims()), NOW),
            "unexpected token type (not logout+jwt)",
            "{header}"
        );
    }
}

#[test]
fn issuer_and_audience_must_be_ours() {
    let k = Es256::new("k1");
    let v = verifier(vec![k.jwk()]);
    let cases: [(Edit, &str); 5] = [
        (
            |c| drop(c.insert("iss".into(), json!("https://evil.example"))),
            "wrong issuer",
        ),
        (|c| drop(c.remove("iss")), "wrong issuer"),
        (
            |c| drop(c.insert("aud".into(), json!("other"))),
            "wrong audience",
        ),
        (
            |c| drop(c.insert("aud".into(), json!(["a", "b"]))),
            "wrong audience",
        ),
        (|c| drop(c.remove("aud")), "wrong audience"),
    ];
    for (edit, why) in cases {
        assert_eq!(refusal(&v, &token_with(&k, edit), NOW), why);
    }
}

#[test]
fn iat_must_be_fresh_and_exp_ahead() {
    let k = Es256::new("k1");
    let v = verifier(vec![k.jwk()]);
    let t = token_with(&k, |c| drop(c.remove("exp")));
    let opts = LogoutOptions::default();
    // 180 s of age plus 30 s of leeway, no more.
    assert!(v.verify_logout_token_at(&t, NOW + 210, &opts).is_ok());
    assert_eq!(refusal(&v, &t, NOW + 211), "stale: issued too long ago");
    let short = LogoutOptions {
        max_age: 60,
        ..LogoutOptions::default()
    };
    assert!(v.verify_logout_token_at(&t, NOW + 91, &short).is_err());
    // Issued in the future: within the leeway, fine; beyond it, refused.
    assert!(v.verify_logout_token_at(&t, NOW - 30, &opts).is_ok());
    assert_eq!(refusal(&v, &t, NOW - 31), "issued in the future");
    // exp, when present, with the leeway.
    let t = token_with(&k, |c| drop(c.insert("exp".into(), json!(NOW + 10))));
    assert!(v.verify_logout_token_at(&t, NOW + 40, &opts).is_ok());
    assert_eq!(refusal(&v, &t, NOW + 41), "expired");
    // nbf, when present.
    let t = token_with(&k, |c| drop(c.insert("nbf".into(), json!(NOW + 100))));
    assert_eq!(refusal(&v, &t, NOW), "not valid yet");
    // iat is required and numeric.
    assert_eq!(
        refusal(&v, &token_with(&k, |c| drop(c.remove("iat"))), NOW),
        "no iat"
    );
    let t = token_with(&k, |c| drop(c.insert("iat".into(), json!("now"))));
    assert_eq!(refusal(&v, &t, NOW), "iat is not a numeric date");
}

#[test]
fn a_nonce_is_refused() {
    let k = Es256::new("k1");
    let v = verifier(vec![k.jwk()]);
    for nonce in [json!("n-1"), json!(""), Value::Null] {
        let t = token_with(&k, |c| drop(c.insert("nonce".into(), nonce)));
        assert_eq!(
            refusal(&v, &t, NOW),
            "a logout token must not carry a nonce"
        );
    }
}

#[test]
fn events_must_hold_the_backchannel_logout_event_as_an_object() {
    let k = Es256::new("k1");
    let v = verifier(vec![k.jwk()]);
    let why = "events does not hold the back-channel logout event as an object";
    for events in [
        None,
        Some(json!({})),
        Some(json!({"http://schemas.openid.net/event/other": {}})),
        Some(json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" })),
        Some(json!({ BACKCHANNEL_LOGOUT_EVENT: [] })),
        // The array form of early drafts.
        Some(json!([BACKCHANNEL_LOGOUT_EVENT])),
    ] {
        let t = token_with(&k, |c| {
            c.remove("events");
            if let Some(e) = events.clone() {
                c.insert("events".into(), e);
            }
        });
        assert_eq!(refusal(&v, &t, NOW), why, "{events:?}");
    }
    // Other events beside it, and members in its object, are fine.
    let t = token_with(&k, |c| {
        c.insert(
            "events".into(),
            json!({ BACKCHANNEL_LOGOUT_EVENT: {"reason": "x"}, "urn:other": {} }),
        );
    });
    assert!(
        v.verify_logout_token_at(&t, NOW, &LogoutOptions::default())
            .is_ok()
    );
}

#[test]
fn sid_or_sub_and_a_jti_are_required() {
    let k = Es256::new("k1");
    let v = verifier(vec![k.jwk()]);
    let t = token_with(&k, |c| {
        c.remove("sid");
        c.remove("sub");
    });
    assert_eq!(refusal(&v, &t, NOW), "neither sid nor sub");
    let t = token_with(&k, |c| drop(c.insert("sid".into(), json!(""))));
    assert_eq!(refusal(&v, &t, NOW), "sid is not a non-empty string");
    assert_eq!(
        refusal(&v, &token_with(&k, |c| drop(c.remove("jti"))), NOW),
        "no jti"
    );
    let t = token_with(&k, |c| drop(c.insert("jti".into(), json!(7))));
    assert_eq!(refusal(&v, &t, NOW), "jti is not a non-empty string");
    // A client that ends sessions only by sid can insist on one.
    let sid_only = LogoutOptions {
        require_sid: true,
        ..LogoutOptions::default()
    };
    let t = token_with(&k, |c| drop(c.remove("sid")));
    assert_eq!(
        v.verify_logout_token_at(&t, NOW, &sid_only),
        Err(VerifyError::Invalid("no sid".into()))
    );
}

#[test]
fn a_replayed_jti_is_refused_through_the_guard() {
    let k = Es256::new("k1");
    let v = verifier(vec![k.jwk()]);
    let seen = SeenJtis::new(100);
    let opts = LogoutOptions::default();
    let t = token_with(&k, |_| {});
    assert!(v.verify_logout_token_once_at(&t, NOW, &opts, &seen).is_ok());
    assert_eq!(
        v.verify_logout_token_once_at(&t, NOW + 1, &opts, &seen),
        Err(VerifyError::Invalid(
            "replayed logout token (jti seen before)".into()
        ))
    );
    // Another jti is another token; a forged one never reaches the guard.
    let other = token_with(&k, |c| drop(c.insert("jti".into(), json!("jti-2"))));
    assert!(
        v.verify_logout_token_once_at(&other, NOW + 1, &opts, &seen)
            .is_ok()
    );
    let forged = token_with(&Es256::new("k1"), |c| {
        c.insert("jti".into(), json!("jti-3"));
    });
    assert!(
        v.verify_logout_token_once_at(&forged, NOW, &opts, &seen)
            .is_err()
    );
    let third = token_with(&k, |c| drop(c.insert("jti".into(), json!("jti-3"))));
    assert!(
        v.verify_logout_token_once_at(&third, NOW, &opts, &seen)
            .is_ok()
    );
    // Once the token is stale the freshness check refuses it anyway.
    assert!(
        v.verify_logout_token_once_at(&t, NOW + 400, &opts, &seen)
            .is_err()
    );
}

#[test]
fn seen_jtis_forget_what_can_no_longer_pass_and_stay_bounded() {
    let seen = SeenJtis::new(2);
    assert!(seen.first_use("a", NOW + 10, NOW));
    assert!(!seen.first_use("a", NOW + 10, NOW + 10));
    assert!(seen.first_use("b", NOW + 20, NOW));
    // Full of live ids: the one forgotten soonest ("a") makes room.
    assert!(seen.first_use("c", NOW + 30, NOW + 1));
    assert!(!seen.first_use("b", NOW + 20, NOW + 2));
    assert!(!seen.first_use("c", NOW + 30, NOW + 2));
    assert_eq!(seen.seen.lock().unwrap().len(), 2);
    // Past its time, an id may come again (the token is refused as stale).
    assert!(seen.first_use("b", NOW + 50, NOW + 21));
}

/// Lanyard's own logout tokens (`lanyard::oidc::logout_token`), for a client
/// of each ID-token algorithm, pass; each refusal above is a change to one.
#[test]
fn lanyards_logout_tokens_pass() {
    use lanyard::config::Config;
    use lanyard::oidc::logout_token;
    use lanyard::testkit::{self, ISSUER, World};

    let w = World::new();
    let config = Config::load(&w.vars).unwrap();
    let now = NOW as i64;
    let env = w.env(now);
    let body = testkit::jwks(&env, &config);
    for (client_id, alg) in [("shop", "ES256"), ("blog", "EdDSA")] {
        let (client, _) = testkit::client(
            &w.sql,
            json!({"client_name": client_id, "client_id": client_id,
                   "redirect_uris": [format!("https://{client_id}.example/cb")],
                   "id_token_signed_response_alg": alg}),
            now,
        );
        let body = body.clone();
        let v = Verifier::new(ISSUER, client_id, move |_: &str| {
            Ok(Fetched {
                status: 200,
                body: body.clone(),
                cache_control: None,
            })
        });
        let token = logout_token::sign(&env, &config, &client, "person-1", Some("sid-1")).unwrap();
        let seen = SeenJtis::new(10);
        let opts = LogoutOptions {
            require_sid: true,
            ..LogoutOptions::default()
        };
        let ok = v
            .verify_logout_token_once_at(&token, NOW + 1, &opts, &seen)
            .unwrap();
        assert_eq!(
            (ok.iss.as_str(), ok.sub.as_deref(), ok.sid.as_deref()),
            (ISSUER, Some("person-1"), Some("sid-1")),
            "{alg}"
        );
        assert_eq!((ok.iat, ok.exp), (NOW, Some(NOW + 120)));
        assert!(
            v.verify_logout_token_once_at(&token, NOW + 2, &opts, &seen)
                .is_err()
        );
        // Past its two minutes (and the leeway), refused.
        assert_eq!(
            v.verify_logout_token_at(&token, NOW + 151, &opts),
            Err(VerifyError::Invalid("expired".into()))
        );
        // Another client's token is not this client's.
        let other = Verifier::new(ISSUER, "other", |_: &str| Err("unused".into()));
        assert!(other.verify_logout_token_at(&token, NOW, &opts).is_err());
        // Nor does an ID token or an access token pass for a logout token.
        let id_like = {
            let mut c = logout_token::claims(
                &config,
                &logout_token::Ended {
                    client_id,
                    sub: "person-1",
                    sid: Some("sid-1"),
                },
                now,
            )
            .unwrap();
            c.nonce = Some("n".into());
            lanyard::oidc::tokens::Signer::load(&env, &config, logout_token::alg(&client))
                .unwrap()
                .sign(c, "JWT")
                .unwrap()
        };
        assert_eq!(
            v.verify_logout_token_at(&id_like, NOW, &opts),
            Err(VerifyError::Invalid(
                "unexpected token type (not logout+jwt)".into()
            ))
        );
    }
}
