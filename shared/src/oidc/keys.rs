//! Signing keys and the published JSON Web Key Set.
//!
//! In production the keys come from secret Spin variables, as private JWKs:
//! `signing_key` (the current ES256 key), `signing_key_next` (published ahead
//! of a rotation), `signing_key_previous` (kept published after a rotation
//! until the tokens it signed have expired; its public half is enough) and
//! `signing_key_eddsa` (an Ed25519 key, for clients that ask for EdDSA ID
//! tokens) and `signing_key_rs256` (an RSA key of 2048 bits or more, for
//! clients that ask for RS256 ID tokens). In `dev_mode` a current and a next
//! ES256 key and a current EdDSA key are generated on first use and kept in
//! SQLite; the first instance to insert wins, so concurrent first requests
//! agree on the keys. The RSA key is generated only when the first RS256 ID
//! token is signed (generating one costs far more than a signature) and is
//! published from then on; verifiers fetch the JWKS again when a token names
//! a key they do not know.
//!
//! Publishing a key needs only its public coordinates, so the JWKS is built
//! without loading any private key (which costs as much as a signature).
//!
//! ES256 and EdDSA keys sign with `d` and the public half as the JWK gives
//! them ([`jws`]): that the two belong together is checked when a key is
//! generated ([`generate`]: `lanyard-keygen` and the dev keys) and by
//! `lanyard-keygen check` ([`check_private_jwk`]) for a key made elsewhere,
//! not per request (a check costs as much as a signature, and every Spin
//! request is a fresh instance).

use jwt_simple::prelude::*;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::Env;
use crate::config::{self, Config};
use crate::crypto;
use crate::error::{Error, Result};
use crate::oidc::jws;
use crate::store::signing_keys;

/// The signature algorithms Lanyard signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256, the default.
    Es256,
    /// Ed25519, several times cheaper at the edge.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256: for ID tokens of relying parties that
    /// accept nothing else. Signing costs milliseconds, so never the default.
    Rs256,
}

impl Alg {
    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
        }
    }

    /// The Spin variable that holds the current private key for this algorithm.
    pub fn variable(self) -> &'static str {
        match self {
            Alg::Es256 => "signing_key",
            Alg::EdDsa => "signing_key_eddsa",
            Alg::Rs256 => "signing_key_rs256",
        }
    }

    /// The algorithm a JWK of this `kty` and `crv` signs with: EC P-256 is
    /// ES256, OKP Ed25519 is EdDSA, RSA (no curve) is RS256.
    pub fn of_jwk(kty: &str, crv: Option<&str>) -> Option<Alg> {
        match (kty, crv) {
            ("EC", Some("P-256")) => Some(Alg::Es256),
            ("OKP", Some("Ed25519")) => Some(Alg::EdDsa),
            ("RSA", None) => Some(Alg::Rs256),
            _ => None,
        }
    }

    /// Parses a JOSE name.
    pub fn from_name(name: &str) -> Option<Alg> {
        match name {
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            "RS256" => Some(Alg::Rs256),
            _ => None,
        }
    }
}

/// A public key as published in the JWKS.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    /// The key id (`kid`), the RFC 7638 thumbprint unless the operator set one.
    pub kid: String,
    /// The algorithm the key signs with.
    pub alg: Alg,
    /// The public JWK, without private members.
    pub jwk: Json,
}

/// The keys to publish: current ES256, next ES256, the EdDSA key, the RS256
/// key, previous.
pub fn published(env: &Env, config: &Config) -> Result<Vec<PublicKey>> {
    if config.dev_mode()? {
        return dev_keys(env);
    }
    let current = public_from_variable(env, "signing_key", Some(Alg::Es256))?.ok_or_else(|| {
        Error::config(
            "signing_key",
            "it is required when dev_mode is off (a private EC P-256 JWK)",
        )
    })?;
    let mut keys = vec![current];
    for (name, signs) in [
        ("signing_key_next", Some(Alg::Es256)),
        ("signing_key_eddsa", Some(Alg::EdDsa)),
        ("signing_key_rs256", Some(Alg::Rs256)),
        ("signing_key_previous", None),
    ] {
        if let Some(k) = public_from_variable(env, name, signs)?
            && !keys.iter().any(|p| p.kid == k.kid)
        {
            keys.push(k);
        }
    }
    Ok(keys)
}

/// The members of an EC, OKP or RSA JWK that we read.
#[derive(Deserialize)]
struct JwkIn {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
}

impl JwkIn {
    /// The algorithm this kind of key signs with.
    fn alg(&self) -> Option<Alg> {
        Alg::of_jwk(&self.kty, self.crv.as_deref())
    }
}

/// RSA keys shorter than this are refused (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;

/// The members that only a private (or symmetric) JWK has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Reads a JWK from a variable and returns its public half, checking that it
/// is an ES256, Ed25519 or RSA (2048 bits or more) key with a valid public
/// part. A key that signs (`signs` names its algorithm) must be private; one
/// that only verifies must be public.
fn public_from_variable(env: &Env, name: &str, signs: Option<Alg>) -> Result<Option<PublicKey>> {
    let Some(text) = config::optional(env.vars, name)? else {
        return Ok(None);
    };
    let bad = |why: &str| Error::config(name, format!("not a usable JWK: {why}"));
    let json: Json = serde_json::from_str(&text).map_err(|_| bad("invalid JSON"))?;
    let has_private_part = PRIVATE_MEMBERS.iter().any(|m| json.get(m).is_some());
    if signs.is_none() && has_private_part {
        return Err(Error::config(
            name,
            "it must be a public JWK: remove its private members (d, p, q, dp, dq, qi)",
        ));
    }
    let jwk: JwkIn = serde_json::from_value(json).map_err(|_| bad("invalid JSON"))?;
    if signs.is_some() && jwk.d.is_none() {
        return Err(bad("the private member d is missing"));
    }
    let alg = jwk
        .alg()
        .ok_or_else(|| bad("use an EC P-256, an OKP Ed25519 or an RSA key"))?;
    if let Some(wanted) = signs
        && alg != wanted
    {
        return Err(bad(match wanted {
            Alg::Es256 => "this key must be an EC P-256 (ES256) key",
            Alg::EdDsa => "this key must be an OKP Ed25519 (EdDSA) key",
            Alg::Rs256 => "this key must be an RSA (RS256) key",
        }));
    }
    if jwk.alg.as_deref().is_some_and(|a| a != alg.name()) {
        return Err(bad("its alg does not match its key type"));
    }
    if alg == Alg::Rs256 {
        let bits = rsa_bits(jwk.n.as_deref().unwrap_or_default());
        if bits < MIN_RSA_BITS {
            return Err(bad(&format!(
                "an RSA key needs {MIN_RSA_BITS} bits or more; this one has {bits}"
            )));
        }
    }
    public_key(alg, &jwk)
        .map(Some)
        .map_err(|e| bad(&format!("the public key is invalid ({e})")))
}

/// The length in bits of an RSA modulus given in base64url.
fn rsa_bits(n: &str) -> usize {
    let bytes = crypto::b64url_decode(n).unwrap_or_default();
    match bytes.iter().position(|&b| b != 0) {
        Some(first) => (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize,
        None => 0,
    }
}

/// The published form of a key: only its public members, with `kid`, `alg`
/// and `use`. jwt-simple parses it, which checks the point or modulus.
fn public_key(alg: Alg, jwk: &JwkIn) -> Result<PublicKey> {
    let internal = |e: jwt_simple::Error| Error::Internal(e.to_string());
    let member = |v: &Option<String>| {
        v.clone()
            .ok_or_else(|| Error::Internal(format!("a {} key lacks a member", alg.name())))
    };
    let (public, thumbprint) = match alg {
        Alg::Es256 => {
            let (x, y) = (member(&jwk.x)?, member(&jwk.y)?);
            let public = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y });
            let t = ES256PublicKey::from_jwk(&public.to_string())
                .map_err(internal)?
                .jwk_thumbprint();
            (public, t)
        }
        Alg::EdDsa => {
            let public =
                serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": member(&jwk.x)? });
            let t = Ed25519PublicKey::from_jwk(&public.to_string())
                .map_err(internal)?
                .jwk_thumbprint();
            (public, t)
        }
        Alg::Rs256 => {
            let (n, e) = (member(&jwk.n)?, member(&jwk.e)?);
            let public = serde_json::json!({ "kty": "RSA", "n": n, "e": e });
            let t = RS256PublicKey::from_jwk(&public.to_string())
                .map_err(internal)?
                .jwk_thumbprint();
            (public, t)
        }
    };
    let kid = match jwk.kid.as_deref() {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => thumbprint,
    };
    let mut jwk = public;
    jwk["kid"] = kid.clone().into();
    jwk["alg"] = alg.name().into();
    jwk["use"] = "sig".into();
    Ok(PublicKey { kid, alg, jwk })
}

/// Generated in `dev_mode` at the first use of any key: (algorithm, role).
/// The RS256 key is generated only when it first signs.
const DEV_KEYS: [(Alg, &str); 3] = [
    (Alg::Es256, "current"),
    (Alg::Es256, "next"),
    (Alg::EdDsa, "current"),
];

fn dev_keys(env: &Env) -> Result<Vec<PublicKey>> {
    let mut keys = load_dev_keys(env)?;
    if keys.iter().filter(|k| k.alg != Alg::Rs256).count() < DEV_KEYS.len() {
        for (alg, role) in DEV_KEYS {
            // Losing the race to another instance is fine: its key stays.
            generate_dev_key(env, alg, role)?;
        }
        keys = load_dev_keys(env)?;
    }
    Ok(keys)
}

fn load_dev_keys(env: &Env) -> Result<Vec<PublicKey>> {
    signing_keys::published(env.sql)?
        .into_iter()
        .map(|k| {
            let alg = Alg::from_name(&k.alg).ok_or_else(|| {
                Error::Internal(format!("stored key of unknown algorithm {}", k.alg))
            })?;
            Ok(PublicKey {
                kid: k.kid,
                alg,
                jwk: k.public_jwk,
            })
        })
        .collect()
}

/// A newly generated key: its private JWK (with `kid`, the RFC 7638
/// thumbprint) and its public half. Operators get one from `lanyard-keygen`.
pub fn generate(alg: Alg) -> Result<(String, PublicKey)> {
    let (private, public) = match alg {
        Alg::Es256 => {
            let pair = ES256KeyPair::generate();
            let kid = pair.jwk_thumbprint();
            let pair = pair.with_key_id(&kid);
            (pair.to_jwk(), pair.public_key().to_jwk())
        }
        Alg::EdDsa => {
            let pair = Ed25519KeyPair::generate();
            let kid = pair.jwk_thumbprint();
            let pair = pair.with_key_id(&kid);
            (pair.to_jwk(), pair.public_key().to_jwk())
        }
        Alg::Rs256 => {
            let pair = RS256KeyPair::generate(MIN_RSA_BITS)
                .map_err(|e| Error::Internal(format!("RSA key generation failed: {e}")))?;
            let kid = pair.jwk_thumbprint();
            let pair = pair.with_key_id(&kid);
            (pair.to_jwk(), pair.public_key().to_jwk())
        }
    };
    if alg != Alg::Rs256 {
        // The signer loads `d` and `x` as given, without deriving one from
        // the other: check, once, that they belong together.
        jws::SigningKey::from_jwk(&private)?.check()?;
    }
    let public: JwkIn =
        serde_json::from_str(&public).map_err(|e| Error::Internal(format!("public JWK: {e}")))?;
    Ok((private, public_key(alg, &public)?))
}

/// Checks a private ES256 or EdDSA JWK as an operator would set it
/// (`lanyard-keygen check`): it loads as the signer loads it, and its public
/// half (`x`, `y`) is the one its private half (`d`) derives. The signer
/// does not derive it per request (see [`jws`]), so a key whose halves do
/// not match would sign tokens that its published half does not verify.
/// Returns the key's algorithm. RSA keys are checked by jwt-simple when
/// they load.
pub fn check_private_jwk(jwk: &str) -> Result<Alg> {
    let key = jws::SigningKey::from_jwk(jwk)?;
    key.check()?;
    Ok(key.alg())
}

fn generate_dev_key(env: &Env, alg: Alg, role: &str) -> Result<()> {
    let (private, public) = generate(alg)?;
    let stored = signing_keys::StoredKey {
        kid: public.kid,
        alg: alg.name().to_owned(),
        public_jwk: public.jwk,
    };
    signing_keys::insert(env.sql, &stored, role, &private, env.now)
}

/// The private JWK that signs with `alg` now: from its variable, or the dev key.
pub fn private_jwk(env: &Env, config: &Config, alg: Alg) -> Result<String> {
    if config.dev_mode()? {
        dev_keys(env)?;
        if let Some(jwk) = current_dev_key(env, alg)? {
            return Ok(jwk);
        }
        // Only the RS256 key is missing here: its first signature makes it.
        generate_dev_key(env, alg, "current")?;
        return current_dev_key(env, alg)?
            .ok_or_else(|| Error::Internal("no current dev key".into()));
    }
    config::required(env.vars, alg.variable())
}

/// The private JWK of the current dev key for `alg`, if there is one yet.
fn current_dev_key(env: &Env, alg: Alg) -> Result<Option<String>> {
    signing_keys::current_private(env.sql, alg.name())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::SqlStore;
    use crate::store::native::{MemoryKv, SqliteSql};
    use std::collections::HashMap;

    fn env_with<'a>(
        kv: &'a MemoryKv,
        sql: &'a SqliteSql,
        vars: &'a HashMap<String, String>,
    ) -> Env<'a> {
        crate::store::schema::ensure(sql).unwrap();
        Env {
            kv,
            sql,
            vars,
            http: &crate::mail::NoHttp,
            now: 1_700_000_000,
            logout: &crate::oidc::signout::Direct,
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dev_keys_are_generated_once_and_kept() {
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        let v = vars(&[("issuer", "http://127.0.0.1:3000"), ("dev_mode", "true")]);
        let env = env_with(&kv, &sql, &v);
        let config = Config::load(&v).unwrap();
        let first = published(&env, &config).unwrap();
        assert_eq!(first.len(), 3);
        assert_eq!(
            first.iter().map(|k| k.alg).collect::<Vec<_>>(),
            [Alg::Es256, Alg::Es256, Alg::EdDsa]
        );
        assert_ne!(first[0].kid, first[1].kid);
        assert_eq!(published(&env, &config).unwrap(), first);
        for k in &first {
            let (kty, crv) = if k.alg == Alg::Es256 {
                ("EC", "P-256")
            } else {
                ("OKP", "Ed25519")
            };
            assert_eq!(k.jwk["kty"], kty);
            assert_eq!(k.jwk["crv"], crv);
            assert_eq!(k.jwk["alg"], k.alg.name());
            assert_eq!(k.jwk["kid"], k.kid.as_str());
            assert!(k.jwk.get("d").is_none());
        }
    }

    #[test]
    fn eddsa_and_previous_keys_are_published() {
        let (cur, _) = generate(Alg::Es256).unwrap();
        let (ed, ed_pub) = generate(Alg::EdDsa).unwrap();
        let (_, prev_pub) = generate(Alg::Es256).unwrap();
        let v = vars(&[
            ("issuer", "https://id.example.com"),
            ("signing_key", &cur),
            ("signing_key_eddsa", &ed),
            ("signing_key_previous", &prev_pub.jwk.to_string()),
        ]);
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        let env = env_with(&kv, &sql, &v);
        let config = Config::load(&v).unwrap();
        let keys = published(&env, &config).unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[1], ed_pub);
        assert_eq!(keys[2].kid, prev_pub.kid);
        // A private key is required where the key signs.
        let v2 = vars(&[
            ("issuer", "https://id.example.com"),
            ("signing_key", &cur),
            ("signing_key_eddsa", &ed_pub.jwk.to_string()),
        ]);
        let env2 = env_with(&kv, &sql, &v2);
        assert!(
            matches!(published(&env2, &Config::load(&v2).unwrap()), Err(Error::Config { name, .. }) if name == "signing_key_eddsa")
        );
    }

    #[test]
    fn previous_key_must_be_public() {
        let (cur, _) = generate(Alg::Es256).unwrap();
        let (prev_private, _) = generate(Alg::Es256).unwrap();
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        for previous in [prev_private.as_str(), SMALL_RSA] {
            let v = vars(&[
                ("issuer", "https://id.example.com"),
                ("signing_key", &cur),
                ("signing_key_previous", previous),
            ]);
            let env = env_with(&kv, &sql, &v);
            let err = published(&env, &Config::load(&v).unwrap()).unwrap_err();
            assert!(
                matches!(&err, Error::Config { name, reason } if name == "signing_key_previous" && reason.contains("private")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn rs256_key_is_published_and_signs() {
        let (cur, _) = generate(Alg::Es256).unwrap();
        let (rsa, rsa_pub) = test_rs256_key();
        let v = vars(&[
            ("issuer", "https://id.example.com"),
            ("signing_key", &cur),
            ("signing_key_rs256", rsa),
            // The RS256 key of before a rotation, published until it expires.
            ("signing_key_previous", &test_previous_rs256_key()),
        ]);
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        let env = env_with(&kv, &sql, &v);
        let config = Config::load(&v).unwrap();
        let keys = published(&env, &config).unwrap();
        assert_eq!(
            keys.iter().map(|k| k.alg).collect::<Vec<_>>(),
            [Alg::Es256, Alg::Rs256, Alg::Rs256]
        );
        assert_eq!(&keys[1], rsa_pub);
        let jwk = &keys[1].jwk;
        assert_eq!(
            (&jwk["kty"], &jwk["alg"], &jwk["use"], &jwk["e"]),
            (
                &"RSA".into(),
                &"RS256".into(),
                &"sig".into(),
                &"AQAB".into()
            )
        );
        assert_eq!(jwk["kid"], keys[1].kid.as_str());
        for member in PRIVATE_MEMBERS {
            assert!(jwk.get(member).is_none(), "{member} published");
        }
        // It signs, and the published half verifies what it signed.
        let signer = RS256KeyPair::from_jwk(&private_jwk(&env, &config, Alg::Rs256).unwrap())
            .unwrap()
            .with_key_id(&keys[1].kid);
        let token = signer
            .sign(Claims::create(Duration::from_secs(60)))
            .unwrap();
        let public = RS256PublicKey::from_jwk(&jwk.to_string()).unwrap();
        public.verify_token::<NoCustomClaims>(&token, None).unwrap();
        assert_eq!(Token::decode_metadata(&token).unwrap().algorithm(), "RS256");
    }

    #[test]
    fn weak_or_misplaced_rsa_keys_name_the_variable() {
        let (cur, _) = generate(Alg::Es256).unwrap();
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        let (rsa, _) = test_rs256_key();
        let (ed, _) = generate(Alg::EdDsa).unwrap();
        for (name, value, says) in [
            ("signing_key_rs256", SMALL_RSA, "2048"),
            ("signing_key_rs256", ed.as_str(), "RSA"),
            (
                "signing_key_rs256",
                test_previous_rs256_key().as_str(),
                "private",
            ),
            ("signing_key_eddsa", rsa.as_str(), "Ed25519"),
            ("signing_key", rsa.as_str(), "P-256"),
        ] {
            let v = vars(&[
                ("issuer", "https://id.example.com"),
                ("signing_key", &cur),
                (name, value),
            ]);
            let env = env_with(&kv, &sql, &v);
            let err = published(&env, &Config::load(&v).unwrap()).unwrap_err();
            assert!(
                matches!(&err, Error::Config { name: n, reason } if n == name && reason.contains(says)),
                "{name} = {value}: {err:?}"
            );
        }
    }

    #[test]
    fn dev_rs256_key_is_generated_on_first_use_only() {
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        let v = vars(&[("issuer", "http://127.0.0.1:3000"), ("dev_mode", "true")]);
        let env = env_with(&kv, &sql, &v);
        let config = Config::load(&v).unwrap();
        assert_eq!(published(&env, &config).unwrap().len(), 3, "no RSA key yet");
        let private = private_jwk(&env, &config, Alg::Rs256).unwrap();
        let keys = published(&env, &config).unwrap();
        assert_eq!(
            keys.iter().map(|k| k.alg).collect::<Vec<_>>(),
            [Alg::Es256, Alg::Es256, Alg::EdDsa, Alg::Rs256]
        );
        assert_eq!(
            RS256KeyPair::from_jwk(&private).unwrap().jwk_thumbprint(),
            keys[3].kid
        );
        assert_eq!(private_jwk(&env, &config, Alg::Rs256).unwrap(), private);
        assert_eq!(published(&env, &config).unwrap(), keys);
    }

    /// A 1024-bit RSA key: too small to sign with.
    const SMALL_RSA: &str = r#"{"kty":"RSA","n":"q7TRvyVIVq2EvfHO5P6Ingme9g6Ub1spy-oHwUBNzi0JY_F5uE5rea3jmDHwVQGTX1KSJhkbYrwN4Rrs5lfJkOOaU33qKXd4dK8u4LQOEnFFQDkiZT5_6pNf8urlDSB0Kej0hqEJ_urvh-4k4jMt-ms-gWcsj1tpH1UehrsOpw8","e":"AQAB","d":"YytU9Nv4kq82-mldQB7OEtClsaEsE8CIPFCXWALmrQyP3txJm6wXILjQuUcmckIttqE-7agUjArmzTs61bKgJA8wRt-3LpCtSHtgEL8Z7chADIwhX7NaS5lu6I-mHqs4EX9D1-JteTWSUQigV64YWUK5T_mYo6ZYSn43QUjYHok","p":"2KyPKGM6x_PbMuzBlpLW8EbsRIP_KxsseLmiyl9Zj5PFjW9Dq5PsZfVDmAHXjmk3l9aBCqqLJNYJ9GsKUTb1-w","q":"yt7mkEJ99HHE737ZVGUyvMMvCHu3pMyPfitJmLyF6TN340k1arAqUcTFe7YptGzzLTTPwq2GBAaMeGiNI3lK_Q","dp":"SUst7fKLGsJRnstZvO6VCJhlKdQgx9scUwYwnBZe_GN3Sx2dHXgfWmn54HyXBxRues1Tv2DrSp2gpm5jAg_-aw","dq":"gRkxrfGyR6Eyipm1YYB4tiibQJHCPqwyUD7pubmWmd032LpYtMjgVWKbrWsxxPBkG4t0_tT_6IXmVCVsU3u3XQ","qi":"QUemqEOc0TheCA5M5f1Jw14JMuYtC_0Icq6r43NmW-D7WI7jhd-MRlml95L4kQ5Bnpp8FJufpY-w8v3mO4R6Mw"}"#;

    #[test]
    fn production_key_comes_from_the_variable() {
        let pair = ES256KeyPair::generate().with_key_id("k1");
        let v = vars(&[
            ("issuer", "https://id.example.com"),
            ("signing_key", &pair.to_jwk()),
        ]);
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        let env = env_with(&kv, &sql, &v);
        let keys = published(&env, &Config::load(&v).unwrap()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid, "k1");
        let expected: Json = serde_json::from_str(&pair.public_key().to_jwk()).unwrap();
        assert_eq!(keys[0].jwk["x"], expected["x"]);
        assert!(keys[0].jwk.get("d").is_none());
        // Nothing was written: production never generates keys.
        let stored = sql
            .execute("SELECT count(*) AS n FROM signing_keys", &[])
            .unwrap();
        assert_eq!(stored.first().unwrap().int("n").unwrap(), 0);
    }

    #[test]
    fn missing_or_bad_production_key_names_the_variable() {
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        let public_only = ES256KeyPair::generate().public_key().to_jwk();
        for bad in [
            "",
            "{not json",
            r#"{"kty":"RSA","crv":"P-256","x":"a","y":"b","d":"c"}"#,
            public_only.as_str(),
        ] {
            let v = vars(&[("issuer", "https://id.example.com"), ("signing_key", bad)]);
            let env = env_with(&kv, &sql, &v);
            let err = published(&env, &Config::load(&v).unwrap()).unwrap_err();
            assert!(
                matches!(&err, Error::Config { name, .. } if name == "signing_key"),
                "{bad}: {err:?}"
            );
        }
        let mut off_curve: Json = serde_json::from_str(&ES256KeyPair::generate().to_jwk()).unwrap();
        off_curve["y"] = off_curve["x"].clone();
        let v = vars(&[
            ("issuer", "https://id.example.com"),
            ("signing_key", &off_curve.to_string()),
        ]);
        let env = env_with(&kv, &sql, &v);
        assert!(matches!(
            published(&env, &Config::load(&v).unwrap()),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn generated_keys_load_as_production_keys() {
        let (private, public) = generate(Alg::Es256).unwrap();
        let v = vars(&[
            ("issuer", "https://id.example.com"),
            ("signing_key", &private),
        ]);
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        let keys = published(&env_with(&kv, &sql, &v), &Config::load(&v).unwrap()).unwrap();
        assert_eq!(keys, vec![public]);
    }

    #[test]
    fn next_key_is_published_after_the_current() {
        let cur = ES256KeyPair::generate();
        let next = ES256KeyPair::generate();
        let v = vars(&[
            ("issuer", "https://id.example.com"),
            ("signing_key", &cur.to_jwk()),
            ("signing_key_next", &next.to_jwk()),
        ]);
        let (kv, sql) = (MemoryKv::default(), SqliteSql::in_memory().unwrap());
        let keys = published(&env_with(&kv, &sql, &v), &Config::load(&v).unwrap()).unwrap();
        assert_eq!(
            keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>(),
            [cur.jwk_thumbprint(), next.jwk_thumbprint()]
        );
    }

    /// One 2048-bit RSA key for all tests (generating one takes a while).
    pub(crate) fn test_rs256_key() -> &'static (String, PublicKey) {
        static KEY: std::sync::OnceLock<(String, PublicKey)> = std::sync::OnceLock::new();
        KEY.get_or_init(|| generate(Alg::Rs256).unwrap())
    }

    /// The public half of a second RSA key, as `signing_key_previous` holds it.
    fn test_previous_rs256_key() -> String {
        static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        KEY.get_or_init(|| generate(Alg::Rs256).unwrap().1.jwk.to_string())
            .clone()
    }
}
