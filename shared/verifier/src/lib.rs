//! Validates Lanyard's tokens offline, in apps and in Spin components.
//!
//! The caller supplies the HTTP fetch (so the crate works with any client,
//! including Spin's outbound HTTP); the verifier keeps the JWKS, honours its
//! `Cache-Control: max-age`, refetches when a token names an unknown `kid`
//! (at most once per cooldown), and checks the signature against an
//! allow-list of algorithms, then `iss`, `aud`, `exp`/`nbf` with a small
//! leeway and the header `typ`.
//!
//! The custom claims come out as any type you choose; [`LanyardClaims`]
//! types the organisation that the tokens of `b2b` clients carry (`org_id`,
//! `org_slug`, `org_name`, `roles`, `project_roles`) as an [`Organisation`],
//! and, for a login through a mandate, who acts for it ([`Actor`], `act`)
//! and the mandate ([`Mandate`]).
//!
//! ```no_run
//! use lanyard_verifier::{Fetched, Verifier, TokenKind};
//!
//! let verifier = Verifier::new("https://id.example.com", "my-api-client-id", |url: &str| {
//!     // Any HTTP client: return the status, body and Cache-Control header.
//!     # let _ = url;
//!     Ok(Fetched { status: 200, body: b"{\"keys\":[]}".to_vec(), cache_control: Some("max-age=300".into()) })
//! });
//! let claims = verifier.verify::<serde_json::Value>("eyJ...", TokenKind::Access);
//!
//! // Or with the organisation typed (None for a client that is not b2b):
//! use lanyard_verifier::LanyardClaims;
//! if let Ok(token) = verifier.verify::<LanyardClaims>("eyJ...", TokenKind::Access)
//!     && let Some(org) = &token.claims.organisation
//! {
//!     println!("{} in {} as {:?}", token.sub, org.name, org.roles);
//! }
//! ```

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use jwt_simple::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::Digest as _;

mod logout;
pub use logout::{
    BACKCHANNEL_LOGOUT_EVENT, LOGOUT_TOKEN_TYPE, LogoutOptions, LogoutToken, ReplayGuard, SeenJtis,
};

/// What the caller's fetch returns.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a JWT, or its header is unreadable.
    Malformed,
    /// The algorithm is not on the allow-list (including `none` and HMAC).
    Algorithm(String),
    /// No published key has this `kid`, even after a refetch.
    UnknownKey,
    /// The signature or a registered claim (iss, aud, exp, nbf, typ) is wrong.
    Invalid(String),
    /// The JWKS could not be fetched or read.
    Jwks(String),
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed => write!(f, "malformed token"),
            Self::Algorithm(a) => write!(f, "algorithm {a} not allowed"),
            Self::UnknownKey => write!(f, "unknown signing key"),
            Self::Invalid(why) => write!(f, "invalid token: {why}"),
            Self::Jwks(why) => write!(f, "JWKS unavailable: {why}"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Which token is expected (its header `typ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An RFC 9068 access token (`typ: at+jwt`).
    Access,
    /// An OpenID Connect ID token (`typ: JWT`).
    Id,
}

/// A verified token's claims.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// Subject: a user's stable id, or a client's id for client credentials.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Token id.
    pub jti: Option<String>,
    /// The `nonce` of an ID token: compare it with the one you sent.
    pub nonce: Option<String>,
    /// Everything else (`client_id`, `scope`, profile claims, …).
    pub claims: T,
}

/// The organisation a `b2b` client's token was issued in: Lanyard's
/// `org_id`, `org_slug`, `org_name`, `roles` and `project_roles` claims.
///
/// The roles are the member's roles for your client: `roles` on the whole
/// service, `project_roles` per project (by project id). Both are limited to
/// the service's current catalogue and re-checked at every refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// The organisation's stable id (`org_id`, `org_…`).
    pub id: String,
    /// Its slug (`org_slug`), which its admins may change.
    pub slug: String,
    /// Its display name (`org_name`).
    pub name: String,
    /// The member's roles on the whole service (`roles`).
    pub roles: Vec<String>,
    /// The member's roles per project id (`project_roles`).
    pub project_roles: BTreeMap<String, Vec<String>>,
}

impl Organisation {
    /// Whether the member has `role` on the whole service.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the member has `role` in `project`, or on the whole service.
    pub fn has_project_role(&self, project: &str, role: &str) -> bool {
        self.has_role(role)
            || self
                .project_roles
                .get(project)
                .is_some_and(|roles| roles.iter().any(|r| r == role))
    }

    /// Takes the organisation claims out of `claims`: `None` without
    /// `org_id`; an error when `org_id` comes without `org_slug` or
    /// `org_name`, or a claim has the wrong type. Missing `roles` and
    /// `project_roles` are empty.
    fn take_from(claims: &mut Map<String, Value>) -> Result<Option<Self>, String> {
        let Some(id) = claims.remove("org_id") else {
            return Ok(None);
        };
        let text = |name: &str, value: Option<Value>| match value {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(format!("{name} is not a string")),
            None => Err(format!("org_id without {name}")),
        };
        let id = text("org_id", Some(id))?;
        let slug = text("org_slug", claims.remove("org_slug"))?;
        let name = text("org_name", claims.remove("org_name"))?;
        let roles = match claims.remove("roles") {
            Some(v) => serde_json::from_value(v).map_err(|e| format!("roles: {e}"))?,
            None => Vec::new(),
        };
        let project_roles = match claims.remove("project_roles") {
            Some(v) => serde_json::from_value(v).map_err(|e| format!("project_roles: {e}"))?,
            None => BTreeMap::new(),
        };
        Ok(Some(Organisation {
            id,
            slug,
            name,
            roles,
            project_roles,
        }))
    }

    /// Writes the organisation back as the token's claims.
    fn put_into(&self, claims: &mut Map<String, Value>) {
        claims.insert("org_id".into(), self.id.clone().into());
        claims.insert("org_slug".into(), self.slug.clone().into());
        claims.insert("org_name".into(), self.name.clone().into());
        claims.insert("roles".into(), self.roles.clone().into());
        let projects = self
            .project_roles
            .iter()
            .map(|(p, roles)| (p.clone(), Value::from(roles.clone())))
            .collect();
        claims.insert("project_roles".into(), Value::Object(projects));
    }
}

/// Who acts (RFC 8693 §4.1 `act`): for a login through a mandate, the
/// person (the token's `sub` too) and the agent organisation they act from
/// (none for a mandate naming the person); for a token exchanged with an
/// actor token, the client, with the previous actor nested in `act`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor: a user's id, or a client's.
    pub sub: String,
    /// The agent organisation (`org_…`), for a mandate given to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The actor before this one (informational only, RFC 8693 §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// The mandate a login acts through (the `mandate` claim): the principal
/// organisation is the token's [`Organisation`], the roles are the
/// mandate's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mandate {
    /// `mnd_…`.
    pub id: String,
    /// When it ends (Unix seconds); Lanyard issues no token that lives
    /// longer.
    pub expires_at: u64,
}

/// A Lanyard token's custom claims with the organisation typed: verify with
/// `verifier.verify::<LanyardClaims>(…)` (the other claims as a JSON
/// object), or `LanyardClaims<YourClaims>` for your own type of the rest.
///
/// `organisation` is `None` when the token has no `org_id` (a client that
/// is not `b2b`); a token with `org_id` but without `org_slug` or
/// `org_name`, or with a claim of the wrong type, is refused as
/// [`VerifyError::Invalid`]. Through a mandate, `act` says who acts for the
/// organisation and `mandate` which mandate it is; both are `None`
/// otherwise, and a malformed one is refused too. These claims are taken out
/// of `claims`; serializing puts them back.
///
/// ```
/// use lanyard_verifier::LanyardClaims;
///
/// let claims: LanyardClaims = serde_json::from_value(serde_json::json!({
///     "sub": "person-1",
///     "org_id": "org_A", "org_slug": "acme", "org_name": "Acme Oy",
///     "roles": [], "project_roles": { "prj_1": ["invoice:read"] },
///     "act": { "sub": "person-1", "org_id": "org_B" },
///     "mandate": { "id": "mnd_1", "expires_at": 1798761600 },
/// }))?;
/// let agent = claims.act.as_ref().and_then(|a| a.org_id.as_deref());
/// assert_eq!(agent, Some("org_B"));
/// assert_eq!(claims.mandate.map(|m| m.id).as_deref(), Some("mnd_1"));
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// ```
/// use lanyard_verifier::LanyardClaims;
///
/// let claims: LanyardClaims = serde_json::from_value(serde_json::json!({
///     "scope": "openid",
///     "org_id": "org_1", "org_slug": "acme", "org_name": "Acme Oy",
///     "roles": ["buyer"], "project_roles": { "prj_9": ["approver"] },
/// }))?;
/// let org = claims.organisation.as_ref().map(|o| o.slug.as_str());
/// assert_eq!(org, Some("acme"));
/// assert_eq!(claims.claims["scope"], "openid");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LanyardClaims<T = Value> {
    /// The organisation, for the tokens of `b2b` clients (through a
    /// mandate, the principal it acts for).
    pub organisation: Option<Organisation>,
    /// Who acts for the organisation, through a mandate (or an exchange).
    pub act: Option<Actor>,
    /// The mandate the login acts through.
    pub mandate: Option<Mandate>,
    /// The other claims (`client_id`, `scope`, profile claims, …).
    pub claims: T,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for LanyardClaims<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut rest = Map::<String, Value>::deserialize(d)?;
        let organisation = Organisation::take_from(&mut rest).map_err(D::Error::custom)?;
        let act = rest
            .remove("act")
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| D::Error::custom(format!("act: {e}")))?;
        let mandate = rest
            .remove("mandate")
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| D::Error::custom(format!("mandate: {e}")))?;
        let claims = T::deserialize(Value::Object(rest)).map_err(D::Error::custom)?;
        Ok(LanyardClaims {
            organisation,
            act,
            mandate,
            claims,
        })
    }
}

impl<T: Serialize> Serialize for LanyardClaims<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        if self.organisation.is_none() && self.act.is_none() && self.mandate.is_none() {
            return self.claims.serialize(s);
        }
        let mut all = match serde_json::to_value(&self.claims).map_err(S::Error::custom)? {
            Value::Object(m) => m,
            _ => return Err(S::Error::custom("the claims are not an object")),
        };
        if let Some(org) = &self.organisation {
            org.put_into(&mut all);
        }
        if let Some(act) = &self.act {
            all.insert(
                "act".into(),
                serde_json::to_value(act).map_err(S::Error::custom)?,
            );
        }
        if let Some(mandate) = &self.mandate {
            let value = serde_json::to_value(mandate).map_err(S::Error::custom)?;
            all.insert("mandate".into(), value);
        }
        all.serialize(s)
    }
}

fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// The signature is checked by the target's own implementation
/// ([`signature_ok`]), then the header and the registered claims exactly as
/// jwt-simple checks them.
mod fast {
    use super::*;

    pub(super) fn verify<T: DeserializeOwned + Serialize, F>(
        token: &str,
        key: &PublishedKey,
        alg: &str,
        kind: TokenKind,
        v: &Verifier<F>,
        now: u64,
    ) -> Result<JWTClaims<T>, VerifyError> {
        let invalid = |why: &str| VerifyError::Invalid(why.to_owned());
        if token.len() > 1_000_000 {
            return Err(invalid("token too long"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        let header: Value = b64url_decode(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(VerifyError::Malformed)?;
        let expected_typ = match kind {
            TokenKind::Access => "AT+JWT",
            TokenKind::Id => "JWT",
        };
        if header["typ"].as_str().map(str::to_uppercase).as_deref() != Some(expected_typ) {
            return Err(invalid("unexpected token type"));
        }
        if key.alg != alg {
            return Err(VerifyError::Algorithm(alg.to_owned()));
        }
        let signature = b64url_decode(sig).ok_or(VerifyError::Malformed)?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        if !signature_ok(key, signed, &signature) {
            return Err(invalid("signature mismatch"));
        }
        let claims: JWTClaims<T> = b64url_decode(p)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid("unreadable claims"))?;
        let leeway = v.leeway;
        if claims.issuer.as_deref() != Some(v.issuer.as_str()) {
            return Err(invalid("wrong issuer"));
        }
        let audience_ok = match &claims.audiences {
            Some(Audiences::AsString(a)) => *a == v.audience,
            Some(Audiences::AsSet(set)) => set.contains(&v.audience),
            None => false,
        };
        if !audience_ok {
            return Err(invalid("wrong audience"));
        }
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
        match secs(claims.expires_at) {
            Some(exp) if now <= exp.saturating_add(leeway) => {}
            _ => return Err(invalid("expired")),
        }
        if secs(claims.invalid_before).is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(invalid("not valid yet"));
        }
        if secs(claims.issued_at).is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return Err(invalid("issued in the future"));
        }
        Ok(claims)
    }
}

/// Natively: ring (assembly P-256 and Ed25519).
#[cfg(not(target_arch = "wasm32"))]
fn signature_ok(key: &PublishedKey, signed: &[u8], signature: &[u8]) -> bool {
    use ring::signature as ring_sig;
    match key.alg {
        // jwt-simple admits only e = 65537 (AQAB) when it reads the JWKS.
        "RS256" => ring_sig::RsaPublicKeyComponents {
            n: key.raw.as_slice(),
            e: &[1u8, 0, 1][..],
        }
        .verify(&ring_sig::RSA_PKCS1_2048_8192_SHA256, signed, signature)
        .is_ok(),
        "ES256" => ring_sig::UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, &key.raw)
            .verify(signed, signature)
            .is_ok(),
        "EdDSA" => ring_sig::UnparsedPublicKey::new(&ring_sig::ED25519, &key.raw)
            .verify(signed, signature)
            .is_ok(),
        _ => false,
    }
}

/// In wasm: the keys prepared when the JWKS was read (see [`edge`]).
#[cfg(target_arch = "wasm32")]
fn signature_ok(key: &PublishedKey, signed: &[u8], signature: &[u8]) -> bool {
    key.edge
        .as_ref()
        .is_some_and(|k| k.verify(signed, signature))
}

/// Signature checks inside wasm, where ring's assembly is not available:
/// Ed25519 with ed25519-dalek (curve25519-dalek picks its 32-bit backend on
/// wasm32, where jwt-simple's ed25519-compact calls `__multi3` for every
/// 128-bit product) and P-256 with libcrux (HACL*, static base-point
/// tables: p256 builds its table in every fresh instance). Also compiled for
/// the native tests, which check it refuses what it must.
#[cfg(any(target_arch = "wasm32", test))]
mod edge {
    /// A published key, decoded and checked once, when the JWKS is read.
    pub(super) enum EdgeKey {
        /// An Ed25519 point.
        EdDsa(ed25519_dalek::VerifyingKey),
        /// A P-256 point on the curve.
        Es256(libcrux_ecdsa::p256::PublicKey),
    }

    impl EdgeKey {
        /// An Ed25519 key from its 32 bytes, if they are a point.
        pub(super) fn ed25519(x: &[u8]) -> Option<EdgeKey> {
            let x: &[u8; 32] = x.try_into().ok()?;
            ed25519_dalek::VerifyingKey::from_bytes(x)
                .ok()
                .map(EdgeKey::EdDsa)
        }

        /// A P-256 key from its coordinates, if they are a point on the curve.
        pub(super) fn p256(x: &[u8], y: &[u8]) -> Option<EdgeKey> {
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            libcrux_ecdsa::p256::PublicKey::try_from([x, y].concat().as_slice())
                .ok()
                .map(EdgeKey::Es256)
        }

        /// Whether `signature` (64 bytes: Ed25519, or ES256's `r ‖ s`) signs
        /// `signed`. Ed25519 is checked strictly (RFC 8032 with canonical
        /// `s`, and no small-order `R` or key).
        pub(super) fn verify(&self, signed: &[u8], signature: &[u8]) -> bool {
            let Ok(signature) = <[u8; 64]>::try_from(signature) else {
                return false;
            };
            match self {
                EdgeKey::EdDsa(k) => k
                    .verify_strict(signed, &ed25519_dalek::Signature::from_bytes(&signature))
                    .is_ok(),
                EdgeKey::Es256(k) => libcrux_ecdsa::p256::verify(
                    libcrux_ecdsa::DigestAlgorithm::Sha256,
                    signed,
                    &libcrux_ecdsa::p256::Signature::from_bytes(signature),
                    k,
                )
                .is_ok(),
            }
        }
    }
}

/// Converts cached claims into the caller's type.
fn typed<T: DeserializeOwned>(v: Verified<Value>) -> Result<Verified<T>, VerifyError> {
    let claims = serde_json::from_value(v.claims)
        .map_err(|e| VerifyError::Invalid(format!("claims do not fit the requested type: {e}")))?;
    Ok(Verified {
        sub: v.sub,
        iss: v.iss,
        exp: v.exp,
        iat: v.iat,
        jti: v.jti,
        nonce: v.nonce,
        claims,
    })
}

/// A published key: its algorithm and raw public bytes (the uncompressed
/// P-256 point, the Ed25519 key, or the RSA modulus), which ring checks
/// natively; in wasm, the key prepared for [`edge`] (ES256, EdDSA) or
/// jwt-simple's (RS256).
struct PublishedKey {
    alg: &'static str,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    raw: Vec<u8>,
    #[cfg(target_arch = "wasm32")]
    edge: Option<edge::EdgeKey>,
    #[cfg(target_arch = "wasm32")]
    rsa: Option<Box<RS256PublicKey>>,
}

impl PublishedKey {
    /// A P-256 key. Natively jwt-simple checks that it is a point on the
    /// curve; in wasm, libcrux.
    fn es256(jwk: &Value, x: Vec<u8>, y: Vec<u8>) -> Option<PublishedKey> {
        #[cfg(not(target_arch = "wasm32"))]
        ES256PublicKey::from_jwk(&jwk.to_string()).ok()?;
        #[cfg(target_arch = "wasm32")]
        let _ = jwk;
        Some(PublishedKey {
            alg: "ES256",
            #[cfg(target_arch = "wasm32")]
            edge: Some(edge::EdgeKey::p256(&x, &y)?),
            #[cfg(target_arch = "wasm32")]
            rsa: None,
            raw: [&[4u8][..], &x, &y].concat(),
        })
    }

    /// An Ed25519 key. Natively jwt-simple checks it; in wasm, ed25519-dalek.
    fn eddsa(jwk: &Value, x: Vec<u8>) -> Option<PublishedKey> {
        #[cfg(not(target_arch = "wasm32"))]
        Ed25519PublicKey::from_jwk(&jwk.to_string()).ok()?;
        #[cfg(target_arch = "wasm32")]
        let _ = jwk;
        Some(PublishedKey {
            alg: "EdDSA",
            #[cfg(target_arch = "wasm32")]
            edge: Some(edge::EdgeKey::ed25519(&x)?),
            #[cfg(target_arch = "wasm32")]
            rsa: None,
            raw: x,
        })
    }

    /// An RSA key (jwt-simple checks it, and admits only e = 65537).
    fn rs256(jwk: &Value, n: Vec<u8>) -> Option<PublishedKey> {
        let key = RS256PublicKey::from_jwk(&jwk.to_string()).ok()?;
        #[cfg(not(target_arch = "wasm32"))]
        let _ = key;
        let start = n.iter().position(|&b| b != 0)?;
        Some(PublishedKey {
            alg: "RS256",
            #[cfg(target_arch = "wasm32")]
            edge: None,
            #[cfg(target_arch = "wasm32")]
            rsa: Some(Box::new(key)),
            raw: n[start..].to_vec(),
        })
    }
}

/// Tokens already verified, by SHA-256, until they expire.
#[derive(Default)]
struct Seen {
    entries: HashMap<[u8; 32], (TokenKind, Verified<Value>)>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, std::sync::Arc<PublishedKey>>,
    expires_at: u64,
    last_fetch: Option<u64>,
}

/// Validates tokens of one issuer for one audience.
pub struct Verifier<F> {
    issuer: String,
    audience: String,
    jwks_uri: String,
    algorithms: Vec<&'static str>,
    leeway: u64,
    cooldown: u64,
    fetch: F,
    cache: Mutex<Cache>,
    cache_capacity: usize,
    seen: Mutex<Seen>,
}

impl<F> Verifier<F>
where
    F: Fn(&str) -> Result<Fetched, String>,
{
    /// A verifier for tokens from `issuer` meant for `audience` (a client id),
    /// with the JWKS at `<issuer>/jwks.json`, ES256 and EdDSA allowed, 30 s of
    /// leeway and a 60 s cooldown between refetches.
    pub fn new(issuer: &str, audience: &str, fetch: F) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Verifier {
            jwks_uri: format!("{issuer}/jwks.json"),
            issuer,
            audience: audience.to_owned(),
            algorithms: vec!["ES256", "EdDSA"],
            leeway: 30,
            cooldown: 60,
            fetch,
            cache: Mutex::new(Cache::default()),
            cache_capacity: 0,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Remembers up to `capacity` verified tokens (by their SHA-256) until
    /// they expire, so that a token presented again is not verified again:
    /// an API sees the same access token on every call of a session. The
    /// signature and claims are checked once; `exp` is checked every time.
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Allows only these algorithms (any of `ES256`, `EdDSA`, `RS256`).
    /// RS256 is off by default: allow it for the clients that Lanyard signs
    /// RS256 ID tokens for (`id_token_signed_response_alg: RS256`).
    pub fn with_algorithms(mut self, algorithms: &[&'static str]) -> Self {
        self.algorithms = algorithms
            .iter()
            .copied()
            .filter(|a| ["ES256", "EdDSA", "RS256"].contains(a))
            .collect();
        self
    }

    /// Sets the clock leeway in seconds.
    pub fn with_leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// Verifies a token now.
    pub fn verify<T: DeserializeOwned + Serialize>(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<Verified<T>, VerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.verify_at(token, kind, now)
    }

    /// Verifies a token at a given time (Unix seconds).
    pub fn verify_at<T: DeserializeOwned + Serialize>(
        &self,
        token: &str,
        kind: TokenKind,
        now: u64,
    ) -> Result<Verified<T>, VerifyError> {
        if self.cache_capacity == 0 {
            return self.verify_uncached::<T>(token, kind, now);
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let hit = self
            .seen
            .lock()
            .ok()
            .and_then(|s| s.entries.get(&digest).cloned());
        if let Some((seen_kind, seen)) = hit
            && seen_kind == kind
            && now <= seen.exp + self.leeway
        {
            return typed(seen);
        }
        let verified = self.verify_uncached::<Value>(token, kind, now)?;
        if let Ok(mut seen) = self.seen.lock() {
            if seen.entries.len() >= self.cache_capacity {
                let leeway = self.leeway;
                seen.entries.retain(|_, (_, v)| v.exp + leeway >= now);
                if seen.entries.len() >= self.cache_capacity {
                    seen.entries.clear();
                }
            }
            seen.entries.insert(digest, (kind, verified.clone()));
        }
        typed(verified)
    }

    fn verify_uncached<T: DeserializeOwned + Serialize>(
        &self,
        token: &str,
        kind: TokenKind,
        now: u64,
    ) -> Result<Verified<T>, VerifyError> {
        let meta = Token::decode_metadata(token).map_err(|_| VerifyError::Malformed)?;
        let alg = meta.algorithm().to_owned();
        if !self.algorithms.contains(&alg.as_str()) {
            return Err(VerifyError::Algorithm(alg));
        }
        let kid = meta.key_id().ok_or(VerifyError::UnknownKey)?.to_owned();
        let key = self.key(&kid, now)?;
        let options = VerificationOptions {
            required_signature_type: Some(match kind {
                TokenKind::Access => "at+jwt".into(),
                TokenKind::Id => "JWT".into(),
            }),
            allowed_issuers: Some(std::iter::once(self.issuer.clone()).collect()),
            allowed_audiences: Some(std::iter::once(self.audience.clone()).collect()),
            time_tolerance: Some(Duration::from_secs(self.leeway)),
            artificial_time: Some(Duration::from_secs(now)),
            ..Default::default()
        };
        // In wasm RS256 stays with jwt-simple; everything else is checked
        // by the same code on every target, the signature by the target's own
        // implementation.
        #[cfg(target_arch = "wasm32")]
        let claims = match (&key.rsa, alg.as_str()) {
            (Some(k), "RS256") => k
                .verify_token::<T>(token, Some(options))
                .map_err(|e| VerifyError::Invalid(e.to_string()))?,
            _ => fast::verify::<T, F>(token, &key, &alg, kind, self, now)?,
        };
        #[cfg(not(target_arch = "wasm32"))]
        let claims = {
            let _ = options;
            fast::verify::<T, F>(token, &key, &alg, kind, self, now)?
        };
        Ok(Verified {
            sub: claims
                .subject
                .ok_or_else(|| VerifyError::Invalid("no subject".into()))?,
            iss: claims.issuer.unwrap_or_default(),
            exp: claims
                .expires_at
                .map(|d| d.as_secs())
                .ok_or_else(|| VerifyError::Invalid("no expiry".into()))?,
            iat: claims.issued_at.map(|d| d.as_secs()).unwrap_or(0),
            jti: claims.jwt_id,
            nonce: claims.nonce,
            claims: claims.custom,
        })
    }

    /// The key with this id: from the cache while it is fresh; otherwise (or
    /// when the id is unknown, at most once per cooldown) from the JWKS.
    fn key(&self, kid: &str, now: u64) -> Result<std::sync::Arc<PublishedKey>, VerifyError> {
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| VerifyError::Jwks("cache poisoned".into()))?;
        let fresh = now < cache.expires_at;
        if let Some(k) = cache.keys.get(kid).filter(|_| fresh) {
            return Ok(k.clone());
        }
        let may_fetch = !fresh || cache.last_fetch.is_none_or(|t| now >= t + self.cooldown);
        if may_fetch {
            cache.last_fetch = Some(now);
            match self.fetch_keys() {
                Ok((keys, max_age)) => {
                    cache.keys = keys;
                    cache.expires_at = now + max_age;
                }
                // Keep serving known keys through a JWKS outage.
                Err(e) if cache.keys.is_empty() => return Err(e),
                Err(_) => {}
            }
        }
        cache.keys.get(kid).cloned().ok_or(VerifyError::UnknownKey)
    }

    fn fetch_keys(
        &self,
    ) -> Result<(HashMap<String, std::sync::Arc<PublishedKey>>, u64), VerifyError> {
        let res = (self.fetch)(&self.jwks_uri).map_err(VerifyError::Jwks)?;
        if res.status != 200 {
            return Err(VerifyError::Jwks(format!("status {}", res.status)));
        }
        let jwks: Value =
            serde_json::from_slice(&res.body).map_err(|e| VerifyError::Jwks(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in jwks["keys"]
            .as_array()
            .ok_or_else(|| VerifyError::Jwks("no keys".into()))?
        {
            let Some(kid) = jwk["kid"].as_str() else {
                continue;
            };
            let coordinate = |name: &str| jwk[name].as_str().and_then(b64url_decode);
            let key = match (jwk["kty"].as_str(), jwk["crv"].as_str()) {
                (Some("EC"), Some("P-256")) => PublishedKey::es256(
                    jwk,
                    coordinate("x").unwrap_or_default(),
                    coordinate("y").unwrap_or_default(),
                ),
                (Some("OKP"), Some("Ed25519")) => {
                    PublishedKey::eddsa(jwk, coordinate("x").unwrap_or_default())
                }
                (Some("RSA"), None) => {
                    PublishedKey::rs256(jwk, coordinate("n").unwrap_or_default())
                }
                _ => None,
            };
            if let Some(k) = key {
                keys.insert(kid.to_owned(), std::sync::Arc::new(k));
            }
        }
        let max_age = res
            .cache_control
            .as_deref()
            .and_then(|cc| {
                cc.split(',')
                    .find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok())
            })
            .unwrap_or(300)
            .min(86_400);
        Ok((keys, max_age))
    }
}

#[cfg(test)]
mod tests {
    use super::edge::EdgeKey;
    use super::*;

    /// A JWS signing input and its signature, from jwt-simple.
    fn signed(token: &str) -> (Vec<u8>, Vec<u8>) {
        let (input, sig) = token.rsplit_once('.').unwrap();
        (input.as_bytes().to_vec(), b64url_decode(sig).unwrap())
    }

    fn coordinate(jwk: &str, name: &str) -> Vec<u8> {
        let jwk: Value = serde_json::from_str(jwk).unwrap();
        b64url_decode(jwk[name].as_str().unwrap()).unwrap()
    }

    /// Every single-bit change of the input or the signature is refused.
    fn refuses_every_flipped_bit(key: &EdgeKey, input: &[u8], sig: &[u8]) {
        assert!(key.verify(input, sig), "the genuine signature verifies");
        for i in 0..sig.len() * 8 {
            let mut forged = sig.to_vec();
            forged[i / 8] ^= 1 << (i % 8);
            assert!(!key.verify(input, &forged), "signature bit {i}");
        }
        for i in [0, input.len() / 2, input.len() - 1] {
            let mut altered = input.to_vec();
            altered[i] ^= 1;
            assert!(!key.verify(&altered, sig), "input byte {i}");
        }
        assert!(!key.verify(input, &sig[..63]), "a short signature");
        assert!(!key.verify(input, &[sig, &[0]].concat()), "a long one");
        assert!(!key.verify(input, &[0u8; 64]), "zeros");
    }

    #[test]
    fn the_wasm_ed25519_check_refuses_forgeries() {
        let pair = Ed25519KeyPair::generate();
        let token = pair.sign(Claims::create(Duration::from_secs(60))).unwrap();
        let (input, sig) = signed(&token);
        let x = coordinate(&pair.public_key().to_jwk(), "x");
        let key = EdgeKey::ed25519(&x).unwrap();
        refuses_every_flipped_bit(&key, &input, &sig);
        // Another key's signature.
        let other = Ed25519KeyPair::generate()
            .sign(Claims::create(Duration::from_secs(60)))
            .unwrap();
        let (other_input, other_sig) = signed(&other);
        assert!(!key.verify(&other_input, &other_sig));
        assert!(EdgeKey::ed25519(&x[..31]).is_none(), "a short key");
    }

    #[test]
    fn the_wasm_ed25519_check_refuses_small_order_keys_and_r() {
        // The identity point as the key, and as R with s = 0: the classic
        // signature that verifies for every message under a lax check.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let key = EdgeKey::ed25519(&identity).unwrap();
        let sig = [&identity[..], &[0u8; 32]].concat();
        assert!(!key.verify(b"any message", &sig));
        // s not reduced modulo the group order (s + L) is refused too.
        let pair = Ed25519KeyPair::generate();
        let token = pair.sign(Claims::create(Duration::from_secs(60))).unwrap();
        let (input, mut sig) = signed(&token);
        let key = EdgeKey::ed25519(&coordinate(&pair.public_key().to_jwk(), "x")).unwrap();
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (b, l) in sig[32..].iter_mut().zip(L) {
            let sum = u16::from(*b) + u16::from(l) + carry;
            *b = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert!(!key.verify(&input, &sig), "a non-canonical s");
    }

    #[test]
    fn the_wasm_p256_check_refuses_forgeries() {
        let pair = ES256KeyPair::generate();
        let token = pair.sign(Claims::create(Duration::from_secs(60))).unwrap();
        let (input, sig) = signed(&token);
        let jwk = pair.public_key().to_jwk();
        let (x, y) = (coordinate(&jwk, "x"), coordinate(&jwk, "y"));
        let key = EdgeKey::p256(&x, &y).unwrap();
        refuses_every_flipped_bit(&key, &input, &sig);
        // r or s zero, or the group order itself.
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
            0x25, 0x51,
        ];
        for forged in [
            [&sig[..32], &[0u8; 32]].concat(),
            [&[0u8; 32], &sig[32..]].concat(),
            [&sig[..32], &N].concat(),
            [&N, &sig[32..]].concat(),
        ] {
            assert!(!key.verify(&input, &forged));
        }
        // Points off the curve, or of the wrong size, are no keys.
        assert!(EdgeKey::p256(&x, &x).is_none());
        assert!(EdgeKey::p256(&x[..31], &y).is_none());
        assert!(EdgeKey::p256(&[0u8; 32], &[0u8; 32]).is_none());
    }
}
