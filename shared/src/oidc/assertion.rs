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
}
