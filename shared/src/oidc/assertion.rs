//! `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9): a
//! client proves itself with a short-lived JWT signed by a key it registered,
//! so no shared secret ever leaves it.
//!
//! The assertion must name the client as `iss` and `sub`, carry Lanyard's
//! issuer or token endpoint as its only `aud`, expire within ten minutes,
//! and have a `jti` that was never seen before: the conditional INSERT that
//! records it is the replay check.

use std::collections::HashSet;

use jwt_simple::prelude::*;
use serde_json::Value as Json;

use crate::error::{Error, OAuthCode, Result};
use crate::oidc::keys::Alg;
use crate::oidc::tokens;
use crate::store::{SqlStore, client_assertions};

/// The only `client_assertion_type` (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Signing algorithms accepted for client assertions.
pub const ALGS: &[&str] = &["ES256", "EdDSA"];
/// An assertion may live at most this long (seconds from now to `exp`).
const MAX_LIFETIME: i64 = 600;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY: u64 = 60;
/// At most this many keys per client.
const MAX_KEYS: usize = 10;

fn failed(why: &str) -> Error {
    Error::oauth(
        OAuthCode::InvalidClient,
        format!("Client authentication failed: {why}."),
    )
}

/// A registered public key that can check an assertion.
enum PublicKey {
    Es256(ES256PublicKey),
    EdDsa(Ed25519PublicKey),
}

struct Key {
    kid: Option<String>,
    alg: &'static str,
    key: PublicKey,
}

/// Parses one JWK of a client's set: a public P-256 or Ed25519 signing key.
fn parse_key(jwk: &Json) -> std::result::Result<Key, String> {
    let obj = jwk.as_object().ok_or("each key must be a JSON object")?;
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|f| obj.contains_key(*f))
    {
        return Err("keys must be public: a private or symmetric part was sent".into());
    }
    if obj.get("use").is_some_and(|u| u != "sig") {
        return Err("a key's `use` must be `sig`".into());
    }
    let text = jwk.to_string();
    let field = |name: &str| obj.get(name).and_then(Json::as_str);
    let kty = field("kty").unwrap_or_default();
    let (alg, key) = match Alg::of_jwk(kty, field("crv")) {
        Some(Alg::Es256) => (
            "ES256",
            PublicKey::Es256(
                ES256PublicKey::from_jwk(&text).map_err(|e| format!("bad P-256 key: {e}"))?,
            ),
        ),
        Some(Alg::EdDsa) => (
            "EdDSA",
            PublicKey::EdDsa(
                Ed25519PublicKey::from_jwk(&text).map_err(|e| format!("bad Ed25519 key: {e}"))?,
            ),
        ),
        _ => return Err("keys must be EC P-256 (ES256) or OKP Ed25519 (EdDSA)".into()),
    };
    if field("alg").is_some_and(|a| a != alg) {
        return Err(format!("a {alg} key has a different `alg`"));
    }
    Ok(Key {
        kid: field("kid").map(str::to_owned),
        alg,
        key,
    })
}

fn parse_set(jwks: &Json) -> std::result::Result<Vec<Key>, String> {
    let keys = jwks
        .get("keys")
        .and_then(Json::as_array)
        .ok_or("`jwks` must be a JWK Set: {\"keys\": [...]}")?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("`jwks` must hold 1 to {MAX_KEYS} keys"));
    }
    let parsed = keys
        .iter()
        .map(parse_key)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if parsed.len() > 1 {
        let kids: HashSet<_> = parsed.iter().filter_map(|k| k.kid.as_deref()).collect();
        if kids.len() != parsed.len() {
            return Err("with several keys, each needs its own `kid`".into());
        }
    }
    Ok(parsed)
}

/// Checks a JWK Set an operator registers for a client.
pub fn check_jwks(jwks: &Json) -> Result<()> {
    parse_set(jwks)
        .map(|_| ())
        .map_err(|e| Error::bad_request(format!("`jwks`: {e}")))
}

/// The client an assertion claims to come from (`sub`, unverified: only to
/// find the client whose keys then verify it).
pub fn claimed_client(assertion: &str) -> Result<String> {
    tokens::unverified_payload(assertion)
        .and_then(|p| p.get("sub").and_then(Json::as_str).map(str::to_owned))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| failed("the client assertion is not a JWT with a `sub`"))
}

/// Verifies `assertion` for `client_id` against its registered `jwks`, then
/// spends its `jti`. Any failure is `invalid_client`.
pub fn verify(
    sql: &dyn SqlStore,
    client_id: &str,
    jwks: &Json,
    assertion: &str,
    issuer: &str,
    now: i64,
) -> Result<()> {
    let keys = parse_set(jwks).map_err(|_| failed("the client's registered keys are unusable"))?;
    let meta = Token::decode_metadata(assertion)
        .map_err(|_| failed("the client assertion is malformed"))?;
    if !ALGS.contains(&meta.algorithm()) {
        return Err(failed("the client assertion's algorithm is not accepted"));
    }
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([client_id.to_owned()])),
        required_subject: Some(client_id.to_owned()),
        allowed_audiences: Some(HashSet::from([
            issuer.to_owned(),
            format!("{issuer}/token"),
        ])),
        time_tolerance: Some(Duration::from_secs(LEEWAY)),
        max_token_length: Some(8 * 1024),
        // Judge `exp`, `nbf` and `iat` by the request's clock.
        artificial_time: Some(UnixTimeStamp::from_secs(now.max(0) as u64)),
        ..Default::default()
    };
    let candidates = keys
        .iter()
        .filter(|k| k.alg == meta.algorithm())
        .filter(|k| meta.key_id().is_none() || k.kid.as_deref() == meta.key_id());
    let mut claims = None;
    for k in candidates {
        let checked = match &k.key {
            PublicKey::Es256(p) => {
                p.verify_token::<NoCustomClaims>(assertion, Some(options.clone()))
            }
            PublicKey::EdDsa(p) => {
                p.verify_token::<NoCustomClaims>(assertion, Some(options.clone()))
            }
        };
        if let Ok(c) = checked {
            claims = Some(c);
            break;
        }
    }
    let claims = claims.ok_or_else(|| {
        failed("the client assertion's signature, issuer, subject, audience or lifetime is wrong")
    })?;
    // jwt-simple accepts any array that merely contains an allowed audience;
    // the assertion must be meant for us alone (RFC 7523 §3, point 3).
    let token_endpoint = format!("{issuer}/token");
    let ours = |a: &Json| a.as_str() == Some(issuer) || a.as_str() == Some(&token_endpoint);
    let sole_audience = match tokens::unverified_payload(assertion).map(|p| p["aud"].clone()) {
        Some(Json::Array(list)) => list.len() == 1 && ours(&list[0]),
        Some(single) => ours(&single),
        None => false,
    };
    if !sole_audience {
        return Err(failed(
            "the client assertion's `aud` must be the issuer or the token endpoint alone",
        ));
    }
    let exp = claims
        .expires_at
        .map(|e| e.as_secs() as i64)
        .ok_or_else(|| failed("the client assertion has no `exp`"))?;
    if exp > now + MAX_LIFETIME + LEEWAY as i64 {
        return Err(failed("the client assertion lives longer than ten minutes"));
    }
    let jti = claims
        .jwt_id
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| failed("the client assertion has no usable `jti`"))?;
    if !client_assertions::spend(sql, client_id, &jti, exp + LEEWAY as i64)? {
        return Err(failed("the client assertion was used already"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    const ISS: &str = "https://id.example.com";
    const NOW: i64 = 1_700_000_000;

    fn signed(key: &ES256KeyPair, aud: Audiences, jti: &str) -> String {
        let mut claims = Claims::create(Duration::from_secs(60))
            .with_issuer("partner")
            .with_subject("partner")
            .with_jwt_id(jti);
        claims.issued_at = Some(Duration::from_secs(NOW as u64));
        claims.expires_at = Some(Duration::from_secs(NOW as u64 + 60));
        claims.invalid_before = None;
        claims.audiences = Some(aud);
        key.sign(claims).unwrap()
    }

    #[test]
    fn audience_is_exactly_the_issuer_or_the_token_endpoint() {
        let sql = SqliteSql::in_memory().unwrap();
        schema::ensure(&sql).unwrap();
        let key = ES256KeyPair::generate();
        let jwks: Json =
            serde_json::from_str(&format!(r#"{{"keys":[{}]}}"#, key.public_key().to_jwk()))
                .unwrap();
        let check = |aud: Audiences, jti: &str| {
            verify(&sql, "partner", &jwks, &signed(&key, aud, jti), ISS, NOW)
        };
        let one = |a: &str| Audiences::AsString(a.to_owned());
        let set = |a: &[&str]| Audiences::AsSet(a.iter().map(|s| s.to_string()).collect());
        assert!(check(one(ISS), "a1").is_ok());
        assert!(check(one(&format!("{ISS}/token")), "a2").is_ok());
        assert!(check(set(&[ISS]), "a3").is_ok());
        for (why, aud) in [
            (
                "another audience too",
                set(&[ISS, "https://elsewhere.example"]),
            ),
            ("both of ours", set(&[ISS, &format!("{ISS}/token")])),
            ("another audience", one("https://elsewhere.example")),
            ("no audience", set(&[])),
        ] {
            assert!(
                matches!(
                    check(aud, why),
                    Err(Error::OAuth {
                        code: OAuthCode::InvalidClient,
                        ..
                    })
                ),
                "{why}"
            );
        }
    }

    /// Claims from `client` to us, issued now, expiring in a minute.
    fn from(client: &str, jti: &str) -> JWTClaims<NoCustomClaims> {
        let mut claims = Claims::create(Duration::from_secs(60))
            .with_issuer(client)
            .with_subject(client)
            .with_audience(ISS)
            .with_jwt_id(jti);
        claims.issued_at = Some(Duration::from_secs(NOW as u64));
        claims.expires_at = Some(Duration::from_secs(NOW as u64 + 60));
        claims.invalid_before = None;
        claims
    }

    fn set(public_jwks: &[String]) -> Json {
        serde_json::from_str(&format!(r#"{{"keys":[{}]}}"#, public_jwks.join(","))).unwrap()
    }

    fn refused(r: Result<()>) -> bool {
        matches!(
            r,
            Err(Error::OAuth {
                code: OAuthCode::InvalidClient,
                ..
            })
        )
    }

    fn db() -> SqliteSql {
        let sql = SqliteSql::in_memory().unwrap();
        schema::ensure(&sql).unwrap();
        sql
    }

    #[test]
    fn only_es256_and_eddsa_assertions_are_accepted() {
        let sql = db();
        let key = ES256KeyPair::generate().with_key_id("k1");
        let jwks = set(&[key.public_key().to_jwk()]);
        let check = |a: &str| verify(&sql, "partner", &jwks, a, ISS, NOW);
        assert!(check(&key.sign(from("partner", "ok")).unwrap()).is_ok());
        // HMAC keyed with the registered public key, naming it.
        let hs = HS256Key::from_bytes(key.public_key().to_jwk().as_bytes()).with_key_id("k1");
        assert!(
            refused(check(&hs.authenticate(from("partner", "hs")).unwrap())),
            "HS256"
        );
        let rs = RS256KeyPair::generate(2048).unwrap().with_key_id("k1");
        assert!(
            refused(check(&rs.sign(from("partner", "rs")).unwrap())),
            "RS256"
        );
        let header = crypto::b64url(br#"{"alg":"none","kid":"k1"}"#);
        let payload = crypto::b64url(
            serde_json::to_string(&from("partner", "none"))
                .unwrap()
                .as_bytes(),
        );
        assert!(refused(check(&format!("{header}.{payload}."))), "alg none");
    }

    #[test]
    fn the_kid_chooses_among_several_keys() {
        let sql = db();
        let (k1, k2) = (ES256KeyPair::generate(), ES256KeyPair::generate());
        let ed = Ed25519KeyPair::generate().with_key_id("ed");
        let jwks = set(&[
            k1.public_key().with_key_id("k1").to_jwk(),
            k2.public_key().with_key_id("k2").to_jwk(),
            ed.public_key().to_jwk(),
        ]);
        let check = |a: String| verify(&sql, "partner", &jwks, &a, ISS, NOW);
        let k2_as = |kid: &str| {
            ES256KeyPair::from_bytes(&k2.to_bytes())
                .unwrap()
                .with_key_id(kid)
        };
        assert!(check(k2_as("k2").sign(from("partner", "a1")).unwrap()).is_ok());
        assert!(
            check(ed.sign(from("partner", "a2")).unwrap()).is_ok(),
            "EdDSA"
        );
        // Without a kid, each key of the algorithm is tried.
        assert!(
            check(k2.sign(from("partner", "a3")).unwrap()).is_ok(),
            "no kid"
        );
        assert!(
            refused(check(k2_as("k1").sign(from("partner", "b1")).unwrap())),
            "another key's kid"
        );
        assert!(
            refused(check(k2_as("k9").sign(from("partner", "b2")).unwrap())),
            "unknown kid"
        );
        let ed_as_es = Ed25519KeyPair::from_bytes(&ed.to_bytes())
            .unwrap()
            .with_key_id("k2");
        assert!(
            refused(check(ed_as_es.sign(from("partner", "b3")).unwrap())),
            "an ES256 key's kid"
        );
    }

    #[test]
    fn a_jti_is_spent_per_client() {
        let sql = db();
        let (a, b) = (ES256KeyPair::generate(), ES256KeyPair::generate());
        let (jwks_a, jwks_b) = (
            set(&[a.public_key().to_jwk()]),
            set(&[b.public_key().to_jwk()]),
        );
        let by_a = || a.sign(from("partner", "same")).unwrap();
        let by_b = || b.sign(from("reseller", "same")).unwrap();
        assert!(verify(&sql, "partner", &jwks_a, &by_a(), ISS, NOW).is_ok());
        assert!(
            verify(&sql, "reseller", &jwks_b, &by_b(), ISS, NOW).is_ok(),
            "another client"
        );
        // The same jti again, in a freshly signed assertion, is a replay.
        assert!(refused(verify(
            &sql,
            "partner",
            &jwks_a,
            &by_a(),
            ISS,
            NOW + 1
        )));
        assert!(refused(verify(
            &sql,
            "reseller",
            &jwks_b,
            &by_b(),
            ISS,
            NOW + 1
        )));
        // And one client's assertion does not authenticate another.
        let c = a.sign(from("partner", "other")).unwrap();
        assert!(refused(verify(&sql, "reseller", &jwks_a, &c, ISS, NOW)));
    }

    #[test]
    fn lifetime_and_times_are_judged_by_the_request_clock() {
        let sql = db();
        let key = ES256KeyPair::generate();
        let jwks = set(&[key.public_key().to_jwk()]);
        let check = |jti: &str, edit: &dyn Fn(&mut JWTClaims<NoCustomClaims>)| {
            let mut c = from("partner", jti);
            edit(&mut c);
            verify(&sql, "partner", &jwks, &key.sign(c).unwrap(), ISS, NOW)
        };
        let at = |t: i64| Some(Duration::from_secs(t as u64));
        assert!(check("ten", &|c| c.expires_at = at(NOW + 600)).is_ok());
        assert!(
            refused(check("eleven", &|c| c.expires_at = at(NOW + 661))),
            "over ten minutes"
        );
        assert!(refused(check("no-exp", &|c| c.expires_at = None)), "no exp");
        assert!(
            refused(check("expired", &|c| c.expires_at = at(NOW - 61))),
            "expired"
        );
        assert!(check("nbf-near", &|c| c.invalid_before = at(NOW + 30)).is_ok());
        assert!(
            refused(check("nbf-later", &|c| c.invalid_before = at(NOW + 120))),
            "nbf"
        );
        assert!(
            refused(check("iat-later", &|c| c.issued_at = at(NOW + 120))),
            "iat"
        );
        assert!(
            refused(check("sub", &|c| c.subject = Some("shop".into()))),
            "sub is not iss"
        );
        assert!(refused(check("", &|c| c.jwt_id = None)), "no jti");
        let long = "j".repeat(257);
        assert!(refused(check(&long, &|_| {})), "overlong jti");
    }
}
