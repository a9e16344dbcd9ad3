//! Signing keys and the published JSON Web Key Set.
//!
//! In production the keys come from secret Spin variables, as private JWKs:
//! `signing_key` (current) and `signing_key_next` (published ahead of a
//! rotation). In `dev_mode` a current and a next key are generated on first
//! use and kept in SQLite; the first instance to insert wins, so concurrent
//! first requests agree on the keys.
//!
//! Publishing a key needs only its public coordinates, so the JWKS is built
//! without loading the private scalar (which costs as much as a signature).

use jwt_simple::prelude::*;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::Env;
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::schema;
use crate::store::Value;

/// A public key as published in the JWKS.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    /// The key id (`kid`), the RFC 7638 thumbprint unless the operator set one.
    pub kid: String,
    /// The public JWK, without private members.
    pub jwk: Json,
}

/// The keys to publish: the current key first, then the next one if any.
pub fn published(env: &Env, config: &Config) -> Result<Vec<PublicKey>> {
    if config.dev_mode {
        return dev_keys(env);
    }
    let mut keys = vec![public_from_variable(env, "signing_key")?.ok_or_else(|| {
        Error::config(
            "signing_key",
            "it is required when dev_mode is off (a private EC P-256 JWK)",
        )
    })?];
    if let Some(next) = public_from_variable(env, "signing_key_next")? {
        if next.kid != keys[0].kid {
            keys.push(next);
        }
    }
    Ok(keys)
}

/// The members of an EC private JWK that we read.
#[derive(Deserialize)]
struct EcJwk {
    kty: String,
    crv: String,
    x: String,
    y: String,
    d: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
}

/// Reads a private JWK from a variable and returns its public half, checking
/// that it is an ES256 key whose point is on the curve.
fn public_from_variable(env: &Env, name: &str) -> Result<Option<PublicKey>> {
    let Some(text) = config::optional(env.vars, name)? else {
        return Ok(None);
    };
    let bad = |why: &str| Error::config(name, format!("not a private EC P-256 JWK: {why}"));
    let jwk: EcJwk = serde_json::from_str(&text).map_err(|_| bad("invalid JSON"))?;
    if jwk.kty != "EC" || jwk.crv != "P-256" {
        return Err(bad("kty must be EC and crv P-256"));
    }
    if jwk.alg.as_deref().is_some_and(|a| a != "ES256") {
        return Err(bad("alg must be ES256"));
    }
    if jwk.d.is_none() {
        return Err(bad("the private member d is missing"));
    }
    public_key(&jwk.x, &jwk.y, jwk.kid.as_deref())
        .map(Some)
        .map_err(|_| bad("the public point is invalid"))
}

fn public_key(x: &str, y: &str, kid: Option<&str>) -> Result<PublicKey> {
    let public = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y }).to_string();
    let key = ES256PublicKey::from_jwk(&public).map_err(|e| Error::Internal(e.to_string()))?;
    let kid = match kid {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => key.jwk_thumbprint(),
    };
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig",
    });
    Ok(PublicKey { kid, jwk })
}

const DEV_ROLES: [&str; 2] = ["current", "next"];

fn dev_keys(env: &Env) -> Result<Vec<PublicKey>> {
    schema::ensure(env.sql)?;
    let mut keys = load_dev_keys(env)?;
    if keys.len() < DEV_ROLES.len() {
        for role in DEV_ROLES {
            // Losing the race to another instance is fine: its key stays.
            generate_dev_key(env, role)?;
        }
        keys = load_dev_keys(env)?;
    }
    Ok(keys)
}

fn load_dev_keys(env: &Env) -> Result<Vec<PublicKey>> {
    let rows = env.sql.execute(
        "SELECT kid, public_jwk FROM signing_keys WHERE role IN ('current', 'next') \
         ORDER BY CASE role WHEN 'current' THEN 0 ELSE 1 END",
        &[],
    )?;
    rows.rows
        .iter()
        .map(|r| {
            let jwk = serde_json::from_str(r.text(1)?)
                .map_err(|e| Error::Storage(format!("stored JWK unreadable: {e}")))?;
            Ok(PublicKey {
                kid: r.text(0)?.to_owned(),
                jwk,
            })
        })
        .collect()
}

/// A newly generated ES256 key: its private JWK (with `kid`, the RFC 7638
/// thumbprint) and its public half. Operators get one from `lanyard-keygen`.
pub fn generate() -> Result<(String, PublicKey)> {
    let pair = ES256KeyPair::generate();
    let kid = pair.jwk_thumbprint();
    let pair = pair.with_key_id(&kid);
    let public: Json = serde_json::from_str(&pair.public_key().to_jwk())
        .map_err(|e| Error::Internal(format!("public JWK: {e}")))?;
    let (Some(x), Some(y)) = (public["x"].as_str(), public["y"].as_str()) else {
        return Err(Error::Internal("generated JWK lacks coordinates".into()));
    };
    Ok((pair.to_jwk(), public_key(x, y, Some(&kid))?))
}

fn generate_dev_key(env: &Env, role: &str) -> Result<()> {
    let (private, public) = generate()?;
    env.sql.execute(
        "INSERT INTO signing_keys (kid, alg, role, private_key, public_jwk, created_at) \
         VALUES (?, 'ES256', ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        &[
            public.kid.into(),
            role.into(),
            private.into_bytes().into(),
            public.jwk.to_string().into(),
            Value::Integer(env.now),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqlStore;
    use crate::store::native::{MemoryKv, SqliteSql};
    use std::collections::HashMap;

    fn env_with<'a>(
        kv: &'a MemoryKv,
        sql: &'a SqliteSql,
        vars: &'a HashMap<String, String>,
    ) -> Env<'a> {
        Env {
            kv,
            sql,
            vars,
            http: &crate::mail::NoHttp,
            now: 1_700_000_000,
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
        assert_eq!(first.len(), 2);
        assert_ne!(first[0].kid, first[1].kid);
        assert_eq!(published(&env, &config).unwrap(), first);
        for k in &first {
            assert_eq!(k.jwk["kty"], "EC");
            assert_eq!(k.jwk["crv"], "P-256");
            assert_eq!(k.jwk["kid"], k.kid.as_str());
            assert!(k.jwk.get("d").is_none());
        }
    }

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
        assert!(sql.execute("SELECT 1 FROM signing_keys", &[]).is_err());
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
        let (private, public) = generate().unwrap();
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
}
