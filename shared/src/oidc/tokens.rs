//! Signing and verifying Lanyard's JWTs: ID tokens (OIDC Core §2) and access
//! tokens (RFC 9068, `typ: at+jwt`), with ES256, EdDSA or (ID tokens of
//! clients that ask for it) RS256, and the key's `kid`.
//!
//! Times come from the request's clock (`Env::now`), never from the library,
//! and verification accepts only our own published keys, each with its own
//! algorithm: `alg: none`, HMAC and unknown keys are refused before any claim
//! is read.

use jwt_simple::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::Env;
use crate::config::Config;
use crate::crypto;
use crate::error::{Error, OAuthCode, Result};
use crate::oidc::clients;
use crate::oidc::jws;
use crate::oidc::keys::{self, Alg};
use crate::store::org_access::{self, MandateGrant, OrgGrant};
use crate::store::revoked_tokens;
use std::collections::BTreeMap;

/// The key that signs, loaded once per request that needs it.
///
/// ES256 and EdDSA keys sign through [`jws`] (libcrux's P-256 and
/// ed25519-dalek, loaded from `d` and `x` as the key gives them, without
/// deriving the public half: see there for why, and for where the two halves
/// are checked against each other); RS256 keys through jwt-simple.
pub struct Signer {
    kid: String,
    key: SigningKey,
}

// One per request that signs: the size of the inline variant does not matter.
#[allow(clippy::large_enum_variant)]
enum SigningKey {
    Jws(jws::SigningKey),
    // Boxed: an RSA key pair is far larger than the others.
    Rs256(Box<RS256KeyPair>),
}

impl Signer {
    /// The current key for `alg`: from its variable, or the dev key in SQLite.
    pub fn load(env: &Env, config: &Config, alg: Alg) -> Result<Signer> {
        let jwk = keys::private_jwk(env, config, alg)?;
        let unusable =
            |e: String| Error::config(alg.variable(), format!("not a usable private JWK: {e}"));
        // The kid is the JWK's own, or its RFC 7638 thumbprint, as published.
        let (kid, key) = match alg {
            Alg::Es256 | Alg::EdDsa => {
                let key = jws::SigningKey::from_jwk(&jwk).map_err(|e| match e {
                    Error::Internal(why) => unusable(why),
                    other => other,
                })?;
                if key.alg() != alg {
                    return Err(unusable(format!("it is not a key for {}", alg.name())));
                }
                let kid = jws::own_kid(&jwk).unwrap_or_else(|| key.thumbprint());
                (kid, SigningKey::Jws(key))
            }
            Alg::Rs256 => {
                let pair = RS256KeyPair::from_jwk(&jwk).map_err(|e| unusable(e.to_string()))?;
                let kid = pair
                    .key_id()
                    .clone()
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| pair.jwk_thumbprint());
                (
                    kid.clone(),
                    SigningKey::Rs256(Box::new(pair.with_key_id(&kid))),
                )
            }
        };
        Ok(Signer { kid, key })
    }

    /// The key id in every token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs claims with this header type (`JWT` or `at+jwt`).
    pub fn sign<T: Serialize + serde::de::DeserializeOwned>(
        &self,
        claims: JWTClaims<T>,
        typ: &str,
    ) -> Result<String> {
        match &self.key {
            SigningKey::Jws(k) => k.sign(&claims, &self.kid, typ),
            SigningKey::Rs256(k) => {
                let options = HeaderOptions {
                    signature_type: Some(typ.into()),
                    ..Default::default()
                };
                k.sign_with_options(claims, &options)
                    .map_err(|e| Error::Internal(format!("signing failed: {e}")))
            }
        }
    }
}

/// The claims of an access token beyond the registered ones (RFC 9068 §2.2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// When the person authenticated (absent for client_credentials).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
    /// The session id, linking the token to its browser session.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// For a b2b client: the organisation and the member's roles, as
    /// top-level claims (through a mandate, the principal A and the
    /// mandate's roles).
    #[serde(flatten, skip_serializing_if = "Option::is_none", default)]
    pub org: Option<OrgClaims>,
    /// Through a mandate: who acts for the organisation (RFC 8693 §4.1).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Actor>,
    /// Through a mandate: which one, and until when.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mandate: Option<MandateClaims>,
}

impl AccessClaims {
    /// What the login acts as (the organisation, and through a mandate
    /// `act` and `mandate`), as JSON members for userinfo and introspection.
    pub fn context_members(&self) -> Result<serde_json::Map<String, Json>> {
        context_members(self.org.as_ref(), self.act.as_ref(), self.mandate.as_ref())
    }
}

/// Who acts through a mandate: the `act` claim (RFC 8693 §4.1), the person
/// and the agent organisation B they act from (none for a mandate naming
/// the person). Other members (a nested `act` of a token exchange) are
/// ignored here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Actor {
    /// The person acting.
    pub sub: String,
    /// The agent organisation (`org_…`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub org_id: Option<String>,
}

/// The mandate a login acts through: the `mandate` claim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MandateClaims {
    /// `mnd_…`.
    pub id: String,
    /// When it ends (Unix seconds); no token of it lives longer.
    pub expires_at: i64,
}

impl From<org_access::Actor> for Actor {
    fn from(a: org_access::Actor) -> Actor {
        Actor {
            sub: a.sub,
            org_id: a.org_id,
        }
    }
}

/// The claims of a mandate's grant: A and the roles, the actor, the mandate.
pub fn mandate_claims(g: MandateGrant) -> (OrgClaims, Actor, MandateClaims) {
    (
        OrgClaims::from(g.grant),
        Actor::from(g.act),
        MandateClaims {
            id: g.mandate_id,
            expires_at: g.expires_at,
        },
    )
}

/// The organisation, actor and mandate claims as JSON members, to add to a
/// claim set (ID token, userinfo, introspection).
pub fn context_members(
    org: Option<&OrgClaims>,
    act: Option<&Actor>,
    mandate: Option<&MandateClaims>,
) -> Result<serde_json::Map<String, Json>> {
    let mut out = match org {
        Some(org) => org.members()?,
        None => serde_json::Map::new(),
    };
    let value = |v: serde_json::Result<Json>| {
        v.map_err(|e| Error::Internal(format!("mandate claims: {e}")))
    };
    if let Some(act) = act {
        out.insert("act".into(), value(serde_json::to_value(act))?);
    }
    if let Some(mandate) = mandate {
        out.insert("mandate".into(), value(serde_json::to_value(mandate))?);
    }
    Ok(out)
}

/// The organisation a b2b login was for, and what it grants the person on
/// the client: in the ID token, the access token, userinfo and
/// introspection, as top-level claims.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrgClaims {
    /// The organisation's id (`org_…`).
    pub org_id: String,
    /// Its slug.
    pub org_slug: String,
    /// Its display name.
    pub org_name: String,
    /// The member's roles on the whole service, sorted, from the client's
    /// current catalogue.
    pub roles: Vec<String>,
    /// The member's roles per project id, each sorted.
    pub project_roles: BTreeMap<String, Vec<String>>,
}

impl From<OrgGrant> for OrgClaims {
    fn from(g: OrgGrant) -> OrgClaims {
        OrgClaims {
            org_id: g.org.id,
            org_slug: g.org.slug,
            org_name: g.org.name,
            roles: g.roles,
            project_roles: g.project_roles,
        }
    }
}

impl OrgClaims {
    /// The claims as JSON members, to add to a claim set.
    pub fn members(&self) -> Result<serde_json::Map<String, Json>> {
        match serde_json::to_value(self) {
            Ok(Json::Object(m)) => Ok(m),
            Ok(_) => Err(Error::Internal(
                "organisation claims are not an object".into(),
            )),
            Err(e) => Err(Error::Internal(format!("organisation claims: {e}"))),
        }
    }
}

/// Builds registered claims with our clock.
pub fn claims<T>(
    custom: T,
    config: &Config,
    subject: &str,
    audience: &str,
    now: i64,
    ttl: i64,
) -> Result<JWTClaims<T>> {
    let at = |t: i64| Duration::from_secs(u64::try_from(t).unwrap_or(0));
    Ok(JWTClaims {
        issued_at: Some(at(now)),
        expires_at: Some(at(now + ttl)),
        invalid_before: None,
        issuer: Some(config.issuer.clone()),
        subject: Some(subject.to_owned()),
        audiences: Some(Audiences::AsString(audience.to_owned())),
        jwt_id: Some(crypto::random_id()?),
        nonce: None,
        custom,
    })
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the hash of the access
/// token, base64url, with the hash of the ID token's own algorithm: SHA-256
/// for ES256 and RS256, SHA-512 for EdDSA (Ed25519 hashes with SHA-512).
pub fn at_hash(id_token_alg: Alg, access_token: &str) -> String {
    let token = access_token.as_bytes();
    match id_token_alg {
        Alg::Es256 | Alg::Rs256 => crypto::b64url(&crypto::sha256(token)[..16]),
        Alg::EdDsa => crypto::b64url(&crypto::sha512(token)[..32]),
    }
}

/// A verified access token.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Subject.
    pub sub: String,
    /// Token id.
    pub jti: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Audience (the client).
    pub aud: String,
    /// The custom claims.
    pub claims: AccessClaims,
}

/// Verifies one of our access tokens: signature by a published key, `typ:
/// at+jwt`, issuer, expiry (30 s leeway) and not revoked.
pub fn verify_access(env: &Env, config: &Config, token: &str) -> Result<Verified> {
    let bad = |why: &str| {
        Error::oauth(
            OAuthCode::InvalidToken,
            format!("The access token is {why}."),
        )
    };
    if token.len() > 8192 {
        return Err(bad("too long"));
    }
    let options = VerificationOptions {
        required_signature_type: Some("at+jwt".into()),
        allowed_issuers: Some(std::iter::once(config.issuer.clone()).collect()),
        time_tolerance: Some(Duration::from_secs(30)),
        artificial_time: Some(Duration::from_secs(u64::try_from(env.now).unwrap_or(0))),
        ..Default::default()
    };
    let c = verify_ours::<AccessClaims>(env, config, token, options).map_err(bad)?;
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs() as i64).unwrap_or(0);
    let aud = match &c.audiences {
        Some(Audiences::AsString(a)) => a.clone(),
        Some(Audiences::AsSet(s)) => s.iter().next().cloned().unwrap_or_default(),
        None => String::new(),
    };
    let v = Verified {
        sub: c.subject.clone().unwrap_or_default(),
        jti: c.jwt_id.clone().ok_or_else(|| bad("missing its id"))?,
        exp: secs(c.expires_at),
        iat: secs(c.issued_at),
        aud,
        claims: c.custom,
    };
    if revoked_tokens::contains(env.sql, &v.jti)? {
        return Err(bad("revoked"));
    }
    Ok(v)
}

/// Marks an access token as revoked until it would have expired.
pub fn revoke_access(env: &Env, jti: &str, exp: i64) -> Result<()> {
    revoked_tokens::insert(env.sql, jti, exp)
}

/// Decodes a JWT's payload without verifying it (for `id_token_hint`, whose
/// signature is checked separately).
pub fn unverified_payload(token: &str) -> Option<Json> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&crypto::b64url_decode(payload)?).ok()
}

/// What an `id_token_hint` says, once its signature is checked.
#[derive(Debug, Clone)]
pub struct Hint {
    /// The person.
    pub sub: String,
    /// The client it was issued to.
    pub aud: String,
}

/// Checks an ID token we issued (signature, issuer, header `typ` `JWT` or
/// none, so never an access token, and an audience that is a registered
/// client), accepting it after its expiry as RP-initiated logout requires.
pub fn verify_id_token_hint(env: &Env, config: &Config, token: &str) -> Result<Hint> {
    let bad = || Error::bad_request("The id_token_hint is not an ID token from this provider.");
    let meta = Token::decode_metadata(token).map_err(|_| bad())?;
    if meta
        .signature_type()
        .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
    {
        return Err(bad());
    }
    let iat = unverified_payload(token)
        .and_then(|p| p["iat"].as_u64())
        .ok_or_else(bad)?;
    let options = VerificationOptions {
        allowed_issuers: Some(std::iter::once(config.issuer.clone()).collect()),
        artificial_time: Some(Duration::from_secs(iat)),
        time_tolerance: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let c = verify_ours::<serde_json::Map<String, Json>>(env, config, token, options)
        .map_err(|_| bad())?;
    let aud = match &c.audiences {
        Some(Audiences::AsString(a)) => a.clone(),
        Some(Audiences::AsSet(s)) => s.iter().next().cloned().unwrap_or_default(),
        None => return Err(bad()),
    };
    if clients::get(env.sql, &aud)?.is_none() {
        return Err(bad());
    }
    Ok(Hint {
        sub: c.subject.clone().ok_or_else(bad)?,
        aud,
    })
}

/// Verifies a JWT signed by one of our published keys: the key is found by
/// `kid`, and the header's `alg` must be that key's algorithm, so `none`,
/// HMAC and algorithm confusion fail before any claim is read.
fn verify_ours<T: Serialize + serde::de::DeserializeOwned>(
    env: &Env,
    config: &Config,
    token: &str,
    options: VerificationOptions,
) -> std::result::Result<JWTClaims<T>, &'static str> {
    let meta = Token::decode_metadata(token).map_err(|_| "malformed")?;
    let kid = meta.key_id().ok_or("missing its key id")?.to_owned();
    let key = keys::published(env, config)
        .map_err(|_| "not checkable now")?
        .into_iter()
        .find(|k| k.kid == kid)
        .ok_or("signed by an unknown key")?;
    if meta.algorithm() != key.alg.name() {
        return Err("not signed with an accepted algorithm");
    }
    let jwk = key.jwk.to_string();
    match key.alg {
        Alg::Es256 => ES256PublicKey::from_jwk(&jwk)
            .map_err(|_| "unusable key")?
            .verify_token::<T>(token, Some(options)),
        Alg::EdDsa => Ed25519PublicKey::from_jwk(&jwk)
            .map_err(|_| "unusable key")?
            .verify_token::<T>(token, Some(options)),
        Alg::Rs256 => RS256PublicKey::from_jwk(&jwk)
            .map_err(|_| "unusable key")?
            .verify_token::<T>(token, Some(options)),
    }
    .map_err(|_| "invalid or expired")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqlStore;
    use crate::store::native::{MemoryKv, SqliteSql};
    use serde_json::Map;
    use std::collections::HashMap;

    struct Fixture {
        kv: MemoryKv,
        sql: SqliteSql,
        vars: HashMap<String, String>,
    }

    impl Fixture {
        /// `dev_mode`, with one registered client, `shop`.
        fn new() -> Fixture {
            let sql = SqliteSql::in_memory().unwrap();
            crate::store::schema::ensure(&sql).unwrap();
            sql.execute(
                "INSERT INTO clients (id, name, created_at, updated_at) VALUES ('shop', 'Shop', 1, 1)",
                &[],
            )
            .unwrap();
            let vars = [("issuer", "http://127.0.0.1:3000"), ("dev_mode", "true")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
            Fixture {
                kv: MemoryKv::default(),
                sql,
                vars,
            }
        }

        fn env(&self) -> Env<'_> {
            self.at(1_700_000_000)
        }

        fn at(&self, now: i64) -> Env<'_> {
            Env {
                kv: &self.kv,
                sql: &self.sql,
                vars: &self.vars,
                http: &crate::mail::NoHttp,
                now,
                logout: &crate::oidc::signout::Direct,
            }
        }
    }

    fn access_claims(config: &Config, now: i64, ttl: i64) -> JWTClaims<AccessClaims> {
        let custom = AccessClaims {
            client_id: "shop".into(),
            scope: "openid api".into(),
            auth_time: Some(now - 10),
            sid: Some("sid-1".into()),
            org: None,
            act: None,
            mandate: None,
        };
        claims(custom, config, "person", "shop", now, ttl).unwrap()
    }

    /// The token with its header replaced.
    fn with_header(token: &str, header: Json) -> String {
        let rest = token.split_once('.').unwrap().1;
        format!("{}.{rest}", crypto::b64url(header.to_string().as_bytes()))
    }

    /// The token with its payload replaced (the signature no longer fits).
    fn with_payload(token: &str, payload: Json) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        let payload = crypto::b64url(payload.to_string().as_bytes());
        format!("{}.{payload}.{}", parts[0], parts[2])
    }

    fn typed(typ: &str) -> HeaderOptions {
        HeaderOptions {
            signature_type: Some(typ.into()),
            ..Default::default()
        }
    }

    /// A token of this type signed with HMAC, keyed by the text of one of
    /// our public keys and naming it: the classic algorithm confusion.
    fn hmac_forgery(env: &Env, config: &Config, kid: &str, typ: &str) -> String {
        let key = keys::published(env, config)
            .unwrap()
            .into_iter()
            .find(|k| k.kid == kid)
            .unwrap();
        let c = claims(Map::new(), config, "person", "shop", env.now, 300).unwrap();
        HS256Key::from_bytes(key.jwk.to_string().as_bytes())
            .with_key_id(kid)
            .authenticate_with_options(c, &typed(typ))
            .unwrap()
    }

    fn invalid_token(r: Result<Verified>) -> bool {
        matches!(
            r,
            Err(Error::OAuth {
                code: OAuthCode::InvalidToken,
                ..
            })
        )
    }

    #[test]
    fn at_hash_uses_the_hash_of_the_id_token_algorithm() {
        // Computed independently (Python's hashlib).
        let token = "eyJhbGciOiJFZERTQSJ9.e30.c2ln";
        assert_eq!(at_hash(Alg::Es256, token), "uMx91Qd6f3T8CranKJ18Sg");
        assert_eq!(at_hash(Alg::Rs256, token), "uMx91Qd6f3T8CranKJ18Sg");
        assert_eq!(
            at_hash(Alg::EdDsa, token),
            "M1HEgWkkdml0TQIy00g7hkBspbLsn0YvDmfWD1OHEuw"
        );
    }

    #[test]
    fn rs256_id_tokens_are_signed_and_verified() {
        let mut f = Fixture::new();
        let (rsa, public) = keys::tests::test_rs256_key();
        let (es, _) = keys::generate(Alg::Es256).unwrap();
        f.vars = [
            ("issuer", "https://id.example.com"),
            ("signing_key", es.as_str()),
            ("signing_key_rs256", rsa.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
        let env = f.env();
        let config = Config::load(&f.vars).unwrap();
        let signer = Signer::load(&env, &config, Alg::Rs256).unwrap();
        assert_eq!(signer.kid(), public.kid);
        let c = claims(Map::new(), &config, "person", "shop", env.now, 300).unwrap();
        let token = signer.sign(c, "JWT").unwrap();
        let meta = Token::decode_metadata(&token).unwrap();
        assert_eq!(
            (meta.algorithm(), meta.key_id()),
            ("RS256", Some(public.kid.as_str()))
        );
        let at_now = VerificationOptions {
            artificial_time: Some(Duration::from_secs(env.now as u64)),
            ..Default::default()
        };
        RS256PublicKey::from_jwk(&public.jwk.to_string())
            .unwrap()
            .verify_token::<NoCustomClaims>(&token, Some(at_now))
            .unwrap();
        let hint = verify_id_token_hint(&env, &config, &token).unwrap();
        assert_eq!(hint.aud, "shop");
        // The same claims under another algorithm's name are refused.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[0] = crypto::b64url(
            format!(r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#, public.kid).as_bytes(),
        );
        assert!(verify_id_token_hint(&env, &config, &parts.join(".")).is_err());
    }

    #[test]
    fn id_token_hint_must_be_an_id_token_for_a_registered_client() {
        let f = Fixture::new();
        let env = f.env();
        let config = Config::load(&f.vars).unwrap();
        let signer = Signer::load(&env, &config, Alg::Es256).unwrap();
        let id_token = |aud: &str| {
            let c = claims(Map::new(), &config, "person", aud, env.now, 300).unwrap();
            signer.sign(c, "JWT").unwrap()
        };
        let hint = verify_id_token_hint(&env, &config, &id_token("shop")).unwrap();
        assert_eq!((hint.sub.as_str(), hint.aud.as_str()), ("person", "shop"));

        // An access token Lanyard signed for the same person and client.
        let access = AccessClaims {
            client_id: "shop".into(),
            scope: "openid".into(),
            auth_time: Some(env.now),
            sid: None,
            org: None,
            act: None,
            mandate: None,
        };
        let access = signer
            .sign(
                claims(access, &config, "person", "shop", env.now, 300).unwrap(),
                "at+jwt",
            )
            .unwrap();
        assert!(
            verify_id_token_hint(&env, &config, &access).is_err(),
            "an access token is no ID token"
        );
        assert!(
            verify_id_token_hint(&env, &config, &id_token("nobody")).is_err(),
            "its audience must be a registered client"
        );
    }

    #[test]
    fn access_tokens_sign_and_verify_with_es256_and_eddsa() {
        let f = Fixture::new();
        let env = f.env();
        let config = Config::load(&f.vars).unwrap();
        let published = keys::published(&env, &config).unwrap();
        for alg in [Alg::Es256, Alg::EdDsa] {
            let signer = Signer::load(&env, &config, alg).unwrap();
            assert!(
                published
                    .iter()
                    .any(|k| k.kid == signer.kid() && k.alg == alg),
                "{alg:?} signs with a published key"
            );
            let c = access_claims(&config, env.now, 300);
            let jti = c.jwt_id.clone().unwrap();
            let token = signer.sign(c, "at+jwt").unwrap();
            let meta = Token::decode_metadata(&token).unwrap();
            assert_eq!(
                (meta.algorithm(), meta.key_id(), meta.signature_type()),
                (alg.name(), Some(signer.kid()), Some("at+jwt"))
            );
            let v = verify_access(&env, &config, &token).unwrap();
            assert_eq!((v.sub.as_str(), v.aud.as_str()), ("person", "shop"));
            assert_eq!((v.jti, v.iat, v.exp), (jti, env.now, env.now + 300));
            assert_eq!(v.claims, access_claims(&config, env.now, 300).custom);
        }
    }

    #[test]
    fn verify_access_checks_type_issuer_expiry_and_revocation() {
        let f = Fixture::new();
        let env = f.env();
        let config = Config::load(&f.vars).unwrap();
        let signer = Signer::load(&env, &config, Alg::Es256).unwrap();
        let sign = |c: JWTClaims<AccessClaims>, typ: &str| signer.sign(c, typ).unwrap();

        let id_token_typed = sign(access_claims(&config, env.now, 300), "JWT");
        assert!(
            invalid_token(verify_access(&env, &config, &id_token_typed)),
            "typ JWT"
        );

        let elsewhere = Config {
            issuer: "https://other.example".into(),
            ..config.clone()
        };
        let foreign = sign(access_claims(&elsewhere, env.now, 300), "at+jwt");
        assert!(
            invalid_token(verify_access(&env, &config, &foreign)),
            "issuer"
        );

        // Expiry by the request's clock, with 30 s of leeway.
        let token = sign(access_claims(&config, env.now, 300), "at+jwt");
        assert!(verify_access(&f.at(env.now + 329), &config, &token).is_ok());
        assert!(
            invalid_token(verify_access(&f.at(env.now + 331), &config, &token)),
            "expired"
        );
        let early = f.at(env.now - 60);
        assert!(
            invalid_token(verify_access(&early, &config, &token)),
            "not yet issued"
        );

        let jti = verify_access(&env, &config, &token).unwrap().jti;
        revoke_access(&env, &jti, env.now + 300).unwrap();
        assert!(
            invalid_token(verify_access(&env, &config, &token)),
            "revoked"
        );
        let other = sign(access_claims(&config, env.now, 300), "at+jwt");
        assert!(
            verify_access(&env, &config, &other).is_ok(),
            "only that token"
        );

        // A changed claim breaks the signature.
        let mut payload = unverified_payload(&other).unwrap();
        payload["scope"] = "openid api admin".into();
        let widened = with_payload(&other, payload);
        assert!(
            invalid_token(verify_access(&env, &config, &widened)),
            "tampered"
        );
        let long = format!("{other}{}", "A".repeat(8192));
        assert!(
            invalid_token(verify_access(&env, &config, &long)),
            "too long"
        );
    }

    #[test]
    fn verify_access_accepts_only_our_keys_each_with_its_algorithm() {
        let f = Fixture::new();
        let env = f.env();
        let config = Config::load(&f.vars).unwrap();
        let es = Signer::load(&env, &config, Alg::Es256).unwrap();
        let ed = Signer::load(&env, &config, Alg::EdDsa).unwrap();
        let token = es
            .sign(access_claims(&config, env.now, 300), "at+jwt")
            .unwrap();
        let refused = |t: &str| invalid_token(verify_access(&env, &config, t));

        // Keys that are not ours: unknown, or claiming our key's id.
        let stranger = |kid: &str| {
            ES256KeyPair::generate()
                .with_key_id(kid)
                .sign_with_options(access_claims(&config, env.now, 300), &typed("at+jwt"))
                .unwrap()
        };
        assert!(refused(&stranger("stranger")), "unknown kid");
        assert!(refused(&stranger(es.kid())), "our kid, another key");
        let header = |alg: &str, kid: Option<&str>| {
            let mut h = serde_json::json!({ "alg": alg, "typ": "at+jwt" });
            if let Some(kid) = kid {
                h["kid"] = kid.into();
            }
            h
        };
        assert!(
            refused(&with_header(&token, header("ES256", None))),
            "no kid"
        );

        // Algorithm confusion.
        assert!(
            refused(&hmac_forgery(&env, &config, es.kid(), "at+jwt")),
            "HS256"
        );
        let unsigned = format!(
            "{}.{}.",
            crypto::b64url(header("none", Some(es.kid())).to_string().as_bytes()),
            token.split('.').nth(1).unwrap()
        );
        assert!(refused(&unsigned), "alg none");
        assert!(
            refused(&with_header(&token, header("EdDSA", Some(es.kid())))),
            "ES256 key named EdDSA"
        );
        assert!(
            refused(&with_header(&token, header("ES256", Some(ed.kid())))),
            "ES256 under the EdDSA kid"
        );
        assert!(!refused(&token));
    }

    #[test]
    fn id_token_hints_are_accepted_after_expiry_and_in_any_of_our_algorithms() {
        let f = Fixture::new();
        let env = f.env();
        let config = Config::load(&f.vars).unwrap();
        for alg in [Alg::Es256, Alg::EdDsa] {
            let signer = Signer::load(&env, &config, alg).unwrap();
            // Issued two hours ago for five minutes: logout comes later.
            let c = claims(Map::new(), &config, "person", "shop", env.now - 7200, 300).unwrap();
            let hint =
                verify_id_token_hint(&env, &config, &signer.sign(c, "JWT").unwrap()).unwrap();
            assert_eq!(
                (hint.sub.as_str(), hint.aud.as_str()),
                ("person", "shop"),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn id_token_hints_refuse_foreign_and_forged_tokens() {
        let f = Fixture::new();
        let env = f.env();
        let config = Config::load(&f.vars).unwrap();
        let signer = Signer::load(&env, &config, Alg::Es256).unwrap();
        let refused = |t: &str| verify_id_token_hint(&env, &config, t).is_err();
        let c = || claims(Map::new(), &config, "person", "shop", env.now, 300).unwrap();
        let good = signer.sign(c(), "JWT").unwrap();
        assert!(!refused(&good));

        let elsewhere = Config {
            issuer: "https://other.example".into(),
            ..config.clone()
        };
        let c2 = claims(Map::new(), &elsewhere, "person", "shop", env.now, 300).unwrap();
        assert!(refused(&signer.sign(c2, "JWT").unwrap()), "another issuer");
        let stranger = ES256KeyPair::generate().with_key_id(signer.kid());
        assert!(refused(&stranger.sign(c()).unwrap()), "another key");
        assert!(
            refused(&hmac_forgery(&env, &config, signer.kid(), "JWT")),
            "HS256"
        );
        let mut payload = unverified_payload(&good).unwrap();
        payload["sub"] = "someone else".into();
        assert!(refused(&with_payload(&good, payload)), "tampered");
        let mut payload = unverified_payload(&good).unwrap();
        payload.as_object_mut().unwrap().remove("iat");
        assert!(refused(&with_payload(&good, payload)), "no iat");
        assert!(refused("not.a.jwt"));
    }

    #[test]
    fn mandate_claims_sign_verify_and_list_as_members() {
        let f = Fixture::new();
        let env = f.env();
        let config = Config::load(&f.vars).unwrap();
        let signer = Signer::load(&env, &config, Alg::Es256).unwrap();
        let mut c = access_claims(&config, env.now, 300);
        c.custom.org = Some(OrgClaims {
            org_id: "org_A".into(),
            org_slug: "acme".into(),
            org_name: "Acme Oy".into(),
            roles: Vec::new(),
            project_roles: [("prj_1".to_owned(), vec!["invoice:read".to_owned()])].into(),
        });
        c.custom.act = Some(Actor {
            sub: "person".into(),
            org_id: Some("org_B".into()),
        });
        c.custom.mandate = Some(MandateClaims {
            id: "mnd_1".into(),
            expires_at: env.now + 86_400,
        });
        let expected = c.custom.clone();
        let token = signer.sign(c, "at+jwt").unwrap();
        let raw = unverified_payload(&token).unwrap();
        assert_eq!(
            raw["act"],
            serde_json::json!({"sub": "person", "org_id": "org_B"})
        );
        assert_eq!(
            raw["mandate"],
            serde_json::json!({"id": "mnd_1", "expires_at": env.now + 86_400})
        );
        assert_eq!(raw["org_id"], "org_A");
        let v = verify_access(&env, &config, &token).unwrap();
        assert_eq!(v.claims, expected);
        let members = v.claims.context_members().unwrap();
        let keys: Vec<&str> = members.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "act",
                "mandate",
                "org_id",
                "org_name",
                "org_slug",
                "project_roles",
                "roles"
            ]
        );
        assert_eq!(members["act"], raw["act"]);

        // A person's mandate: no org_id in `act`; a nested `act` (a token
        // exchange's) is read past.
        let mut c = access_claims(&config, env.now, 300);
        c.custom.act = Some(Actor {
            sub: "person".into(),
            org_id: None,
        });
        let token = signer.sign(c, "at+jwt").unwrap();
        assert_eq!(
            unverified_payload(&token).unwrap()["act"],
            serde_json::json!({"sub": "person"})
        );
        let nested: AccessClaims = serde_json::from_value(serde_json::json!({
            "client_id": "shop", "scope": "openid",
            "act": {"sub": "app", "act": {"sub": "person", "org_id": "org_B"}}
        }))
        .unwrap();
        assert_eq!(
            (nested.act.unwrap().sub.as_str(), nested.org, nested.mandate),
            ("app", None, None)
        );
        // Without a mandate, none of it.
        let plain = access_claims(&config, env.now, 300).custom;
        assert!(plain.context_members().unwrap().is_empty());
        let raw = unverified_payload(
            &signer
                .sign(access_claims(&config, env.now, 300), "at+jwt")
                .unwrap(),
        )
        .unwrap();
        assert!(raw.get("act").is_none() && raw.get("mandate").is_none());
    }
}
