//! `/probe/sig/<what>`: signature implementations side by side inside wasm
//! (issue 14). Each request is a fresh instance, so a `cold` request times
//! the first operations of an instance as a Spin request pays them.
//!
//! - `/probe/sig/cold?impl=<name>`: µs for loading the key from its private
//!   JWK, the first signature, the second signature and the first
//!   verification, on one line.
//! - `/probe/sig/warm?impl=<name>&n=N`: µs per operation over N calls (the
//!   fastest of ten batches' means): key load, signature and verification,
//!   on one line.
//! - `/probe/sig/list`: the implementations, one per line.
//!
//! A signature is a whole compact JWS (header, claims, base64url), as Lanyard
//! signs its tokens. Verification is the signature check over a token's
//! signing input, except for the `jwt-simple` rows (`verify_token`, the whole
//! token as an app checks it today) and the `verifier` rows (the
//! `lanyard-verifier` crate's whole check, as an app at the edge runs it);
//! those two are the comparison of the acceptance row "EdDSA verify inside
//! wasm". A figure of -1 means the operation does not apply or failed.

use std::time::Instant;

use jwt_simple::prelude::*;
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use jwt_simple::reexports::serde_json;
use spin_sdk::http::Response;

use crate::probe::text;

/// The probe's Ed25519 key (a test key, never used anywhere else).
const ED_JWK: &str = r#"{"kty":"OKP","crv":"Ed25519","x":"yF3EQLvsz8OYny4-F-HSH77sm-a2RpZjqQ8dYJ_pJ2Q","d":"sTkmPafBkEua3hcdkVO10MmHERag4wC0_aM1F4rPHwk"}"#;
/// The probe's P-256 key (a test key, never used anywhere else).
const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"d1xDIytjYXaPdeYqcinz3Vdw7ZYsnSPdByQbZ6T1cvs","y":"ejP8yLhtm0LySe6U7-BxRppS6zjfQsY2TUZoRhYJNY8","d":"bi06s8lhXxs-6-9FFVXLDXAtLKXhhAAOwkaC1mN2TwE"}"#;
const ISSUER: &str = "https://id.example.com";
const AUDIENCE: &str = "shop";

/// The implementations, by the name the routes take.
const IMPLS: [&str; 9] = [
    "ed25519-jwt-simple",
    "ed25519-compact",
    "ed25519-dalek",
    "ed25519-dalek-derive",
    "ed25519-verifier",
    "es256-jwt-simple",
    "es256-libcrux",
    "es256-jwt-simple-verify",
    "es256-verifier",
];

/// Runs the signature probe `what` with the request's query.
pub fn handle(what: &str, query: &str) -> Response {
    let name = param(query, "impl").unwrap_or_default();
    let n: u32 = param(query, "n")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .max(1);
    match what {
        "list" => text(200, IMPLS.join("\n")),
        "cold" => match cold(&name) {
            Ok(figures) => text(200, line(&figures)),
            Err(e) => text(500, e),
        },
        "warm" => match warm(&name, n) {
            Ok(figures) => text(200, line(&figures)),
            Err(e) => text(500, e),
        },
        _ => text(404, format!("probe: no signature probe {what:?}")),
    }
}

fn line(figures: &[f64]) -> String {
    figures
        .iter()
        .map(|f| format!("{f:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// Loads, signs twice and verifies once, timing each step of a fresh
/// instance.
fn cold(name: &str) -> Result<[f64; 4], String> {
    let t = Instant::now();
    let key = load(name)?;
    let loaded = t.elapsed();
    let first = key.sign()?;
    let signed = t.elapsed();
    let second = key.sign()?;
    let signed_again = t.elapsed();
    let ok = key.verify(&first) && key.verify(&second);
    let verified = t.elapsed();
    if !ok {
        return Err(format!("{name}: its own token does not verify"));
    }
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    // Two verifications were timed: report one.
    Ok([
        us(loaded),
        us(signed - loaded),
        us(signed_again - signed),
        us(verified - signed_again) / 2.0,
    ])
}

/// µs per key load, signature and verification, mean of `n` each.
fn warm(name: &str, n: u32) -> Result<[f64; 3], String> {
    let key = load(name)?;
    let token = key.sign()?;
    if !key.verify(&token) {
        return Err(format!("{name}: its own token does not verify"));
    }
    let mut tampered = token.clone().into_bytes();
    // Flip a bit of the signature's first byte: it must not verify.
    if let Some(i) = token.rfind('.').map(|i| i + 1) {
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    }
    let tampered = String::from_utf8_lossy(&tampered).into_owned();
    if key.verify(&tampered) {
        return Err(format!("{name}: a tampered token verifies"));
    }
    let load_us = time(n, || {
        let _ = load(name);
    });
    let sign_us = time(n, || {
        let _ = key.sign();
    });
    let verify_us = time(n, || {
        let _ = key.verify(&token);
    });
    Ok([load_us, sign_us, verify_us])
}

/// µs per call of `f`: `n` calls in ten batches, the fastest batch's mean.
/// Other processes on the benchmark's one core only ever slow a batch down,
/// so the fastest is the closest to what the operation costs.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let batch = (n / 10).max(1);
    let mut best = f64::INFINITY;
    for _ in 0..n.div_ceil(batch) {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / f64::from(batch));
    }
    best
}

/// A loaded key of one implementation.
trait Key {
    /// A whole token.
    fn sign(&self) -> Result<String, String>;
    /// Whether the token verifies.
    fn verify(&self, token: &str) -> bool;
}

fn load(name: &str) -> Result<Box<dyn Key>, String> {
    Ok(match name {
        "ed25519-jwt-simple" => Box::new(JwtSimpleEd::load()?),
        "ed25519-compact" => Box::new(CompactEd::load()?),
        "ed25519-dalek" => Box::new(DalekEd::load(false)?),
        "ed25519-dalek-derive" => Box::new(DalekEd::load(true)?),
        "ed25519-verifier" => Box::new(AtEdge::load("EdDSA")?),
        "es256-jwt-simple" => Box::new(JwtSimpleEs::load()?),
        "es256-libcrux" => Box::new(LibcruxEs::load()?),
        "es256-jwt-simple-verify" => Box::new(JwtSimpleEsVerify::load()?),
        "es256-verifier" => Box::new(AtEdge::load("ES256")?),
        _ => return Err(format!("no implementation {name:?}")),
    })
}

fn claims() -> JWTClaims<NoCustomClaims> {
    Claims::create(Duration::from_secs(300))
        .with_issuer(ISSUER)
        .with_subject("person")
        .with_audience(AUDIENCE)
}

fn options() -> VerificationOptions {
    VerificationOptions {
        required_signature_type: Some("at+jwt".into()),
        allowed_issuers: Some(std::iter::once(ISSUER.to_owned()).collect()),
        allowed_audiences: Some(std::iter::once(AUDIENCE.to_owned()).collect()),
        ..Default::default()
    }
}

fn typ() -> HeaderOptions {
    HeaderOptions {
        signature_type: Some("at+jwt".into()),
        ..Default::default()
    }
}

fn b64(bytes: &[u8]) -> Result<String, String> {
    Base64UrlSafeNoPadding::encode_to_string(bytes).map_err(|e| e.to_string())
}

fn unb64(text: &str) -> Result<Vec<u8>, String> {
    Base64UrlSafeNoPadding::decode_to_vec(text, None).map_err(|e| e.to_string())
}

/// The named members of a JWK, base64url-decoded.
fn members<const N: usize>(jwk: &str, names: [&str; N]) -> Result<[Vec<u8>; N], String> {
    let json: serde_json::Value = serde_json::from_str(jwk).map_err(|e| e.to_string())?;
    let mut out: [Vec<u8>; N] = std::array::from_fn(|_| Vec::new());
    for (slot, name) in out.iter_mut().zip(names) {
        *slot = unb64(json[name].as_str().ok_or("member missing")?)?;
    }
    Ok(out)
}

/// A compact JWS of the probe's claims with this `alg` and `kid`, signed by
/// `sign` over its signing input, as Lanyard builds one.
fn jws(
    alg: &str,
    kid: &str,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<String, String> {
    let header = serde_json::json!({ "alg": alg, "kid": kid, "typ": "at+jwt" });
    let claims = serde_json::to_string(&claims()).map_err(|e| e.to_string())?;
    let mut token = b64(header.to_string().as_bytes())?;
    token.push('.');
    token.push_str(&b64(claims.as_bytes())?);
    let signature = sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&b64(&signature)?);
    Ok(token)
}

/// The signing input and the signature of a compact JWS.
fn split(token: &str) -> Option<(&[u8], Vec<u8>)> {
    let (input, signature) = token.rsplit_once('.')?;
    Some((input.as_bytes(), unb64(signature).ok()?))
}

/// Today: jwt-simple over ed25519-compact, the public half derived at load.
struct JwtSimpleEd(Ed25519KeyPair, Ed25519PublicKey);

impl JwtSimpleEd {
    fn load() -> Result<Self, String> {
        let pair = Ed25519KeyPair::from_jwk(ED_JWK)
            .map_err(|e| e.to_string())?
            .with_key_id("ed");
        let public = pair.public_key();
        Ok(Self(pair, public))
    }
}

impl Key for JwtSimpleEd {
    fn sign(&self) -> Result<String, String> {
        self.0
            .sign_with_options(claims(), &typ())
            .map_err(|e| e.to_string())
    }
    fn verify(&self, token: &str) -> bool {
        self.1
            .verify_token::<NoCustomClaims>(token, Some(options()))
            .is_ok()
    }
}

/// ed25519-compact directly, from `d` and `x` without deriving `x`.
struct CompactEd(ed25519_compact::SecretKey, ed25519_compact::PublicKey);

impl CompactEd {
    fn load() -> Result<Self, String> {
        let [d, x] = members(ED_JWK, ["d", "x"])?;
        let secret = ed25519_compact::SecretKey::from_slice(&[d, x.clone()].concat())
            .map_err(|e| e.to_string())?;
        let public = ed25519_compact::PublicKey::from_slice(&x).map_err(|e| e.to_string())?;
        Ok(Self(secret, public))
    }
}

impl Key for CompactEd {
    fn sign(&self) -> Result<String, String> {
        jws("EdDSA", "ed", |input| Ok(self.0.sign(input, None).to_vec()))
    }
    fn verify(&self, token: &str) -> bool {
        split(token).is_some_and(|(input, sig)| {
            ed25519_compact::Signature::from_slice(&sig)
                .is_ok_and(|sig| self.1.verify(input, &sig).is_ok())
        })
    }
}

/// ed25519-dalek (curve25519-dalek's u32 backend on wasm32): the expanded
/// secret from `d`, the public key from `x` (decompressed, not derived), or
/// with `derive` the public half computed from `d` as `SigningKey` does.
struct DalekEd(
    ed25519_dalek::hazmat::ExpandedSecretKey,
    ed25519_dalek::VerifyingKey,
);

impl DalekEd {
    fn load(derive: bool) -> Result<Self, String> {
        let [d, x] = members(ED_JWK, ["d", "x"])?;
        let seed: [u8; 32] = d.try_into().map_err(|_| "d is not 32 bytes")?;
        let secret = ed25519_dalek::hazmat::ExpandedSecretKey::from(&seed);
        let public = if derive {
            ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key()
        } else {
            let x: [u8; 32] = x.try_into().map_err(|_| "x is not 32 bytes")?;
            ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|e| e.to_string())?
        };
        Ok(Self(secret, public))
    }
}

impl Key for DalekEd {
    fn sign(&self) -> Result<String, String> {
        jws("EdDSA", "ed", |input| {
            Ok(
                ed25519_dalek::hazmat::raw_sign::<sha2::Sha512>(&self.0, input, &self.1)
                    .to_bytes()
                    .to_vec(),
            )
        })
    }
    fn verify(&self, token: &str) -> bool {
        split(token).is_some_and(|(input, sig)| {
            ed25519_dalek::Signature::from_slice(&sig)
                .is_ok_and(|sig| self.1.verify_strict(input, &sig).is_ok())
        })
    }
}

/// Today: jwt-simple over p256, whose base-point table is built by the first
/// key operation of an instance.
struct JwtSimpleEs(ES256KeyPair, ES256PublicKey);

impl JwtSimpleEs {
    fn load() -> Result<Self, String> {
        let pair = ES256KeyPair::from_jwk(EC_JWK)
            .map_err(|e| e.to_string())?
            .with_key_id("es");
        let public = pair.public_key();
        Ok(Self(pair, public))
    }
}

impl Key for JwtSimpleEs {
    fn sign(&self) -> Result<String, String> {
        self.0
            .sign_with_options(claims(), &typ())
            .map_err(|e| e.to_string())
    }
    fn verify(&self, token: &str) -> bool {
        self.1
            .verify_token::<NoCustomClaims>(token, Some(options()))
            .is_ok()
    }
}

/// Verification only, as the verifier ran it in wasm before: jwt-simple's
/// `verify_token` with the public key (no table built at load); the tokens
/// are signed by libcrux.
struct JwtSimpleEsVerify(LibcruxEs, ES256PublicKey);

impl JwtSimpleEsVerify {
    fn load() -> Result<Self, String> {
        let mut public: serde_json::Value =
            serde_json::from_str(EC_JWK).map_err(|e| e.to_string())?;
        if let Some(o) = public.as_object_mut() {
            o.remove("d");
        }
        let public = ES256PublicKey::from_jwk(&public.to_string()).map_err(|e| e.to_string())?;
        Ok(Self(LibcruxEs::load()?, public))
    }
}

impl Key for JwtSimpleEsVerify {
    fn sign(&self) -> Result<String, String> {
        self.0.sign()
    }
    fn verify(&self, token: &str) -> bool {
        self.1
            .verify_token::<NoCustomClaims>(token, Some(options()))
            .is_ok()
    }
}

/// libcrux's P-256 (HACL*, static tables), the nonce from the OS.
struct LibcruxEs(
    libcrux_ecdsa::p256::PrivateKey,
    libcrux_ecdsa::p256::PublicKey,
);

impl LibcruxEs {
    fn load() -> Result<Self, String> {
        let [d, x, y] = members(EC_JWK, ["d", "x", "y"])?;
        let secret = libcrux_ecdsa::p256::PrivateKey::try_from(d.as_slice())
            .map_err(|e| format!("{e:?}"))?;
        let public = libcrux_ecdsa::p256::PublicKey::try_from([x, y].concat().as_slice())
            .map_err(|e| format!("{e:?}"))?;
        Ok(Self(secret, public))
    }
}

impl Key for LibcruxEs {
    fn sign(&self) -> Result<String, String> {
        jws("ES256", "es", |input| {
            let signature = libcrux_ecdsa::p256::rand::sign(
                libcrux_ecdsa::DigestAlgorithm::Sha256,
                input,
                &self.0,
                &mut getrandom::SysRng,
            )
            .map_err(|e| format!("{e:?}"))?;
            let (r, s) = signature.as_bytes();
            Ok([&r[..], &s[..]].concat())
        })
    }
    fn verify(&self, token: &str) -> bool {
        split(token).is_some_and(|(input, sig)| {
            let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
                return false;
            };
            libcrux_ecdsa::p256::verify(
                libcrux_ecdsa::DigestAlgorithm::Sha256,
                input,
                &libcrux_ecdsa::p256::Signature::from_bytes(sig),
                &self.1,
            )
            .is_ok()
        })
    }
}

/// The verifier crate as an app at the edge runs it (no cache: every token
/// is checked). Its tokens are signed by implementations without a table to
/// build, so that a cold first verification shows only the verifier's cost.
struct AtEdge {
    signer: Box<dyn Key>,
    verifier: lanyard_verifier::Verifier<Fetch>,
}

/// The verifier's fetch: the probe's own JWKS.
type Fetch = fn(&str) -> Result<lanyard_verifier::Fetched, String>;

fn jwks(_: &str) -> Result<lanyard_verifier::Fetched, String> {
    let public = |jwk: &str, kid: &str, alg: &str| -> Result<serde_json::Value, String> {
        let mut v: serde_json::Value = serde_json::from_str(jwk).map_err(|e| e.to_string())?;
        let o = v.as_object_mut().ok_or("not an object")?;
        o.remove("d");
        o.insert("kid".into(), kid.into());
        o.insert("alg".into(), alg.into());
        Ok(v)
    };
    let keys = serde_json::json!({
        "keys": [public(ED_JWK, "ed", "EdDSA")?, public(EC_JWK, "es", "ES256")?]
    });
    Ok(lanyard_verifier::Fetched {
        status: 200,
        body: keys.to_string().into_bytes(),
        cache_control: Some("max-age=300".into()),
    })
}

impl AtEdge {
    fn load(alg: &str) -> Result<Self, String> {
        let signer: Box<dyn Key> = match alg {
            "EdDSA" => Box::new(DalekEd::load(false)?),
            _ => Box::new(LibcruxEs::load()?),
        };
        let fetch: Fetch = jwks;
        Ok(Self {
            signer,
            verifier: lanyard_verifier::Verifier::new(ISSUER, AUDIENCE, fetch),
        })
    }
}

impl Key for AtEdge {
    fn sign(&self) -> Result<String, String> {
        self.signer.sign()
    }
    fn verify(&self, token: &str) -> bool {
        self.verifier
            .verify::<serde_json::Value>(token, lanyard_verifier::TokenKind::Access)
            .is_ok()
    }
}
