//! Compact JWS serialisation (RFC 7515 §7.1) and the signers of Lanyard's
//! Ed25519 (`EdDSA`) and P-256 (`ES256`) keys.
//!
//! At the edge every request is a fresh instance, so what a signature costs
//! there is the key load and the first signature of an instance, in wasm
//! (docs/performance.md, issue 14). Hence:
//!
//! - Ed25519 signs with ed25519-dalek, whose curve25519-dalek picks its
//!   32-bit backend on wasm32 (wasm has no 64×64→128-bit multiply, which
//!   ed25519-compact's 64-bit limbs call `__multi3` for). The key is loaded
//!   as the variable gives it, `d` and `x`: the public half is decompressed,
//!   not derived from `d`, so no base-point multiplication per request.
//! - ES256 signs with libcrux-ecdsa (formally verified HACL* code), whose
//!   P-256 base-point tables are static data: p256 builds its table lazily,
//!   in every fresh instance. The nonce comes from the operating system's
//!   CSPRNG. The public half (`x`, `y`) is not needed to sign.
//!
//! The same code runs natively, where both are as fast as before or faster.
//! That `d` and `x` (`y`) belong together is checked by [`SigningKey::check`]
//! where it is cheap to do once: when a key is generated (`lanyard-keygen`,
//! the dev keys) and by `lanyard-keygen check`, which an operator runs on a
//! key before setting its variable ([`crate::oidc::keys::check_private_jwk`]).
//!
//! The header is written as jwt-simple writes it (`alg`, `kid`, `typ`, in
//! that order) and the claims as serde serialises them, so that tokens keep
//! their form. RS256 stays on jwt-simple.

use serde::Serialize;
use serde_json::Value as Json;

use crate::crypto;
use crate::error::{Error, Result};
use crate::oidc::keys::Alg;

/// A private key that signs, loaded from its private JWK.
pub enum SigningKey {
    /// An Ed25519 key (`EdDSA`).
    Ed25519(Ed25519Key),
    /// A P-256 key (`ES256`).
    Es256(Es256Key),
}

/// An Ed25519 key: the expanded secret (from `d`) and the public key (`x`),
/// as the JWK gives them.
pub struct Ed25519Key {
    secret: ed25519_dalek::hazmat::ExpandedSecretKey,
    public: ed25519_dalek::VerifyingKey,
}

/// A P-256 key: the secret scalar (`d`) and the public point (`x`, `y`) as
/// the JWK gives them.
pub struct Es256Key {
    secret: libcrux_ecdsa::p256::PrivateKey,
    x: [u8; 32],
    y: [u8; 32],
}

/// A JWK member, base64url-decoded, of exactly `N` bytes.
fn member<const N: usize>(jwk: &Json, name: &str) -> Result<[u8; N]> {
    let bad = || Error::Internal(format!("the JWK's {name} is missing or not {N} bytes"));
    let bytes = jwk[name]
        .as_str()
        .and_then(crypto::b64url_decode)
        .ok_or_else(bad)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| bad())
}

/// The JWK's own `kid`, if it has a non-empty one.
pub fn own_kid(jwk: &str) -> Option<String> {
    let jwk: Json = serde_json::from_str(jwk).ok()?;
    jwk["kid"]
        .as_str()
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

impl SigningKey {
    /// Loads a private EC P-256 or OKP Ed25519 JWK (RS256 keys stay with
    /// jwt-simple). Checks the form of every member and that the public key
    /// is a valid point, but does not derive the public key from `d`: see
    /// [`SigningKey::check`].
    pub fn from_jwk(jwk: &str) -> Result<SigningKey> {
        let jwk: Json =
            serde_json::from_str(jwk).map_err(|_| Error::Internal("the JWK is not JSON".into()))?;
        let kty = jwk["kty"].as_str().unwrap_or_default();
        match Alg::of_jwk(kty, jwk["crv"].as_str()) {
            Some(Alg::EdDsa) => {
                let seed = zeroize::Zeroizing::new(member::<32>(&jwk, "d")?);
                let x = member::<32>(&jwk, "x")?;
                let public = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| Error::Internal("x is not an Ed25519 point".into()))?;
                Ok(SigningKey::Ed25519(Ed25519Key {
                    secret: ed25519_dalek::hazmat::ExpandedSecretKey::from(&*seed),
                    public,
                }))
            }
            Some(Alg::Es256) => {
                let d = zeroize::Zeroizing::new(member::<32>(&jwk, "d")?);
                let secret = libcrux_ecdsa::p256::PrivateKey::try_from(&*d)
                    .map_err(|_| Error::Internal("d is not a P-256 scalar".into()))?;
                let (x, y) = (member::<32>(&jwk, "x")?, member::<32>(&jwk, "y")?);
                libcrux_ecdsa::p256::validate_point(&[x, y].concat())
                    .map_err(|_| Error::Internal("x, y is not a P-256 point".into()))?;
                Ok(SigningKey::Es256(Es256Key { secret, x, y }))
            }
            _ => Err(Error::Internal(
                "not an EC P-256 or OKP Ed25519 private JWK".into(),
            )),
        }
    }

    /// The algorithm it signs with.
    pub fn alg(&self) -> Alg {
        match self {
            SigningKey::Ed25519(_) => Alg::EdDsa,
            SigningKey::Es256(_) => Alg::Es256,
        }
    }

    /// The RFC 7638 thumbprint of its public half, as jwt-simple computes
    /// it (the default `kid`).
    pub fn thumbprint(&self) -> String {
        // The required members in lexicographic order, no whitespace.
        let canonical = match self {
            SigningKey::Ed25519(k) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                crypto::b64url(k.public.as_bytes())
            ),
            SigningKey::Es256(k) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                crypto::b64url(&k.x),
                crypto::b64url(&k.y)
            ),
        };
        crypto::b64url(&crypto::sha256(canonical.as_bytes()))
    }

    /// Checks that the public half belongs to the private one by deriving
    /// it from `d`: a base-point multiplication, as costly as a signature,
    /// so it is done once (at key generation and by `lanyard-keygen check`),
    /// not per request.
    pub fn check(&self) -> Result<()> {
        let matches = match self {
            SigningKey::Ed25519(k) => ed25519_dalek::VerifyingKey::from(&k.secret) == k.public,
            SigningKey::Es256(k) => k
                .secret
                .public_key()
                .is_ok_and(|p| p.0[..32] == k.x && p.0[32..] == k.y),
        };
        if matches {
            Ok(())
        } else {
            Err(Error::Internal(
                "the public key (x) does not belong to the private key (d)".into(),
            ))
        }
    }

    /// The signature of `input`: 64 bytes (Ed25519, or ES256's `r ‖ s`).
    pub fn sign_bytes(&self, input: &[u8]) -> Result<[u8; 64]> {
        match self {
            SigningKey::Ed25519(k) => Ok(ed25519_dalek::hazmat::raw_sign::<sha2_11::Sha512>(
                &k.secret, input, &k.public,
            )
            .to_bytes()),
            SigningKey::Es256(k) => {
                let signature = libcrux_ecdsa::p256::rand::sign(
                    libcrux_ecdsa::DigestAlgorithm::Sha256,
                    input,
                    &k.secret,
                    &mut getrandom04::SysRng,
                )
                .map_err(|e| Error::Internal(format!("ES256 signing failed: {e:?}")))?;
                let (r, s) = signature.as_bytes();
                let mut out = [0u8; 64];
                out[..32].copy_from_slice(r);
                out[32..].copy_from_slice(s);
                Ok(out)
            }
        }
    }

    /// A compact JWS of `claims`, with the header `alg`, `kid` and `typ`.
    pub fn sign<T: Serialize>(&self, claims: &T, kid: &str, typ: &str) -> Result<String> {
        compact(self.alg(), kid, typ, claims, |input| {
            self.sign_bytes(input).map(|s| s.to_vec())
        })
    }
}

/// The header as jwt-simple writes it: `alg`, `kid`, `typ`, in that order.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// `base64url(header).base64url(claims).base64url(signature)`, the
/// signature made by `sign` over the first two parts (RFC 7515 §7.1).
pub fn compact<T: Serialize>(
    alg: Alg,
    kid: &str,
    typ: &str,
    claims: &T,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<String> {
    let json = |v: serde_json::Result<Vec<u8>>| {
        v.map_err(|e| Error::Internal(format!("token serialisation: {e}")))
    };
    let header = json(serde_json::to_vec(&Header {
        alg: alg.name(),
        kid,
        typ,
    }))?;
    let mut token = crypto::b64url(&header);
    token.push('.');
    token.push_str(&crypto::b64url(&json(serde_json::to_vec(claims))?));
    let signature = sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&crypto::b64url(&signature));
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::prelude::*;

    fn claims() -> JWTClaims<NoCustomClaims> {
        Claims::create(Duration::from_secs(300))
            .with_issuer("https://id.example.com")
            .with_subject("person")
            .with_audience("shop")
    }

    fn header(token: &str) -> Json {
        let h = token.split('.').next().unwrap();
        serde_json::from_slice(&crypto::b64url_decode(h).unwrap()).unwrap()
    }

    #[test]
    fn eddsa_tokens_verify_with_jwt_simple_and_keep_their_header() {
        let pair = Ed25519KeyPair::generate();
        let key = SigningKey::from_jwk(&pair.to_jwk()).unwrap();
        key.check().unwrap();
        assert_eq!(key.thumbprint(), pair.jwk_thumbprint());
        let token = key.sign(&claims(), "k1", "at+jwt").unwrap();
        let by_jwt_simple = pair
            .clone()
            .with_key_id("k1")
            .sign_with_options(
                claims(),
                &HeaderOptions {
                    signature_type: Some("at+jwt".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            token.split('.').next(),
            by_jwt_simple.split('.').next(),
            "the same header, byte for byte"
        );
        assert_eq!(
            header(&token),
            serde_json::json!({"alg": "EdDSA", "kid": "k1", "typ": "at+jwt"})
        );
        pair.public_key()
            .verify_token::<NoCustomClaims>(&token, None)
            .unwrap();
    }

    #[test]
    fn es256_tokens_verify_with_jwt_simple_and_keep_their_header() {
        let pair = ES256KeyPair::generate();
        let key = SigningKey::from_jwk(&pair.to_jwk()).unwrap();
        key.check().unwrap();
        assert_eq!(key.thumbprint(), pair.jwk_thumbprint());
        let public = pair.public_key();
        // Random nonces: many signatures, every one verifies (whatever the
        // size of s: ES256 does not ask for a low s).
        for _ in 0..64 {
            let token = key.sign(&claims(), "k2", "JWT").unwrap();
            public.verify_token::<NoCustomClaims>(&token, None).unwrap();
            assert_eq!(
                header(&token),
                serde_json::json!({"alg": "ES256", "kid": "k2", "typ": "JWT"})
            );
        }
        let a = key.sign_bytes(b"same input").unwrap();
        let b = key.sign_bytes(b"same input").unwrap();
        assert_ne!(a, b, "a fresh nonce for every signature");
    }

    #[test]
    fn a_public_half_of_another_key_fails_the_check() {
        for (one, other) in [
            (
                Ed25519KeyPair::generate().to_jwk(),
                Ed25519KeyPair::generate().to_jwk(),
            ),
            (
                ES256KeyPair::generate().to_jwk(),
                ES256KeyPair::generate().to_jwk(),
            ),
        ] {
            let mut mixed: Json = serde_json::from_str(&one).unwrap();
            let other: Json = serde_json::from_str(&other).unwrap();
            mixed["x"] = other["x"].clone();
            if other.get("y").is_some() {
                mixed["y"] = other["y"].clone();
            }
            let key = SigningKey::from_jwk(&mixed.to_string()).unwrap();
            assert!(key.check().is_err());
            assert!(SigningKey::from_jwk(&one).unwrap().check().is_ok());
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        let ed: Json = serde_json::from_str(&Ed25519KeyPair::generate().to_jwk()).unwrap();
        let es: Json = serde_json::from_str(&ES256KeyPair::generate().to_jwk()).unwrap();
        let with = |mut jwk: Json, name: &str, value: Json| {
            jwk[name] = value;
            jwk.to_string()
        };
        for bad in [
            "not json".to_owned(),
            with(ed.clone(), "d", "AAAA".into()),
            with(ed.clone(), "x", Json::Null),
            with(ed.clone(), "crv", "X25519".into()),
            with(es.clone(), "d", crypto::b64url(&[0u8; 32]).into()),
            with(es.clone(), "y", es["x"].clone()),
            with(es.clone(), "kty", "RSA".into()),
        ] {
            assert!(SigningKey::from_jwk(&bad).is_err(), "{bad}");
        }
    }
}
