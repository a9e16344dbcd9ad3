//! Logout tokens (OpenID Connect Back-Channel Logout 1.0, §2.4 and §2.6):
//! what an app's back-channel logout endpoint receives when a Lanyard
//! session ends.
//!
//! [`Verifier::verify_logout_token`] checks the signature against the JWKS
//! with the same key selection and algorithm allow-list as every other
//! token (`alg: none`, HMAC and a key used with another algorithm are
//! refused before any claim is read), then the header `typ` (`logout+jwt`,
//! required: Lanyard always types its logout tokens, and the explicit type
//! keeps an ID token or an access token from passing for one), `iss`, `aud`,
//! the freshness of `iat`, `exp` and `nbf` when present, a `jti`, the
//! back-channel logout event in `events`, a `sid` or a `sub`, and no
//! `nonce`. The app ends the sessions the token names, and refuses a `jti`
//! it has seen: [`SeenJtis`] does so in memory, and [`ReplayGuard`] lets an
//! app keep them where its instances share state (in a Spin component,
//! where every request is a fresh instance, that is key-value or SQLite).
//!
//! ```no_run
//! use lanyard_verifier::{Fetched, LogoutOptions, SeenJtis, Verifier};
//!
//! let verifier = Verifier::new("https://id.example.com", "my-client-id", |url: &str| {
//!     # let _ = url;
//!     Ok(Fetched { status: 200, body: b"{\"keys\":[]}".to_vec(), cache_control: None })
//! });
//! let seen = SeenJtis::new(10_000);
//! // The form field `logout_token` of the POST to your backchannel_logout_uri:
//! match verifier.verify_logout_token_once("eyJ...", &LogoutOptions::default(), &seen) {
//!     Ok(token) => {
//!         // End your sessions of token.sid (or of token.sub), then answer 200.
//!         println!("sign out {:?} / {:?}", token.sid, token.sub);
//!     }
//!     // Answer 400 with {"error":"invalid_request"}.
//!     Err(e) => eprintln!("refused: {e}"),
//! }
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use jwt_simple::prelude::*;
use serde_json::{Map, Value};

use super::{Fetched, Verifier, VerifyError, b64url_decode};

/// The member of `events` that makes a JWT a back-channel logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The header `typ` of a logout token (without the optional
/// `application/` prefix, compared ignoring case).
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";

/// Longer than any logout token; a larger one is refused before decoding.
const MAX_LEN: usize = 16 * 1024;

/// How a logout token is judged beyond its signature and registered claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutOptions {
    /// How old (by `iat`) a logout token may be, in seconds, besides the
    /// verifier's leeway. Lanyard signs each token when it sends it, and
    /// gives it two minutes (`exp`); the default is 180 s.
    pub max_age: u64,
    /// Refuse a token without `sid`: set it when your client registered
    /// `backchannel_logout_session_required` and ends sessions only by
    /// `sid`. By default a `sub` alone is enough (sign the person out of
    /// every session).
    pub require_sid: bool,
}

impl Default for LogoutOptions {
    fn default() -> Self {
        LogoutOptions {
            max_age: 180,
            require_sid: false,
        }
    }
}

/// A verified logout token: end the sessions it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// The issuer (the verifier's).
    pub iss: String,
    /// The person whose sessions end, when the token names them.
    pub sub: Option<String>,
    /// The Lanyard session that ended (the `sid` of the ID tokens issued in
    /// it), when the token names it.
    pub sid: Option<String>,
    /// The token's id: refuse it when seen before ([`ReplayGuard`]).
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expiry, Unix seconds, when the token has one (Lanyard's always do).
    pub exp: Option<u64>,
    /// After this time (Unix seconds) the token is refused as stale or
    /// expired whatever a replay guard says, so its `jti` need not be kept
    /// longer.
    pub remember_until: u64,
}

impl LogoutToken {
    /// The key under which a replay guard keeps this token: its issuer and
    /// `jti` (a `jti` is unique per issuer).
    pub fn replay_key(&self) -> String {
        format!("{}#{}", self.iss, self.jti)
    }
}

/// Remembers the logout tokens already accepted, to refuse them again.
pub trait ReplayGuard {
    /// Records `key` until `until` (Unix seconds) and says whether this is
    /// its first use at `now`: `false` for a replay. Record and check in one
    /// step where the store allows it (`INSERT … ON CONFLICT DO NOTHING`
    /// and the count of rows changed), so that two concurrent deliveries of
    /// one token cannot both pass.
    fn first_use(&self, key: &str, until: u64, now: u64) -> bool;
}

/// An in-memory [`ReplayGuard`] for a long-running app (in a Spin component
/// every request is a fresh instance: keep the ids in key-value or SQLite
/// instead). Ids are forgotten once their token could no longer be
/// accepted anyway; when it is full of live ids, the one that would be
/// forgotten soonest makes room.
pub struct SeenJtis {
    capacity: usize,
    seen: Mutex<HashMap<String, u64>>,
}

impl SeenJtis {
    /// A guard that keeps up to `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        SeenJtis {
            capacity: capacity.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl ReplayGuard for SeenJtis {
    fn first_use(&self, key: &str, until: u64, now: u64) -> bool {
        // A poisoned lock only means another thread panicked mid-insert:
        // the map is still a valid map.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(key).is_some_and(|&t| t >= now) {
            return false;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, t| *t >= now);
        }
        if seen.len() >= self.capacity
            && let Some(soonest) = seen.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
        {
            seen.remove(&soonest);
        }
        seen.insert(key.to_owned(), until);
        true
    }
}

fn invalid(why: &str) -> VerifyError {
    VerifyError::Invalid(why.to_owned())
}

/// A JSON numeric date (RFC 7519 §2): a non-negative number, fractions cut.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
                    .map(|f| f.trunc() as u64)
            })
            .map(Some)
            .ok_or_else(|| VerifyError::Invalid(format!("{name} is not a numeric date"))),
    }
}

/// An optional string claim; present, it must be a non-empty string.
fn text(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(VerifyError::Invalid(format!(
            "{name} is not a non-empty string"
        ))),
    }
}

/// Whether the header `typ` names a logout token (RFC 7515 §4.1.9: the
/// `application/` prefix may be left out; media types ignore case).
fn is_logout_type(typ: Option<&str>) -> bool {
    let Some(typ) = typ else {
        return false;
    };
    let typ = typ.to_ascii_lowercase();
    typ.strip_prefix("application/").unwrap_or(&typ) == LOGOUT_TOKEN_TYPE
}

impl<F> Verifier<F>
where
    F: Fn(&str) -> Result<Fetched, String>,
{
    /// Verifies a logout token now, with the default [`LogoutOptions`].
    /// Refuse its `jti` if seen before, or use
    /// [`Verifier::verify_logout_token_once`].
    pub fn verify_logout_token(&self, token: &str) -> Result<LogoutToken, VerifyError> {
        self.verify_logout_token_at(token, unix_now(), &LogoutOptions::default())
    }

    /// Verifies a logout token now and refuses it if `guard` has seen its
    /// `jti` (a replay).
    pub fn verify_logout_token_once(
        &self,
        token: &str,
        options: &LogoutOptions,
        guard: &dyn ReplayGuard,
    ) -> Result<LogoutToken, VerifyError> {
        self.verify_logout_token_once_at(token, unix_now(), options, guard)
    }

    /// [`Verifier::verify_logout_token_once`] at a given time (Unix
    /// seconds). The guard is asked only about a token that is otherwise
    /// valid, so forged tokens cannot fill it.
    pub fn verify_logout_token_once_at(
        &self,
        token: &str,
        now: u64,
        options: &LogoutOptions,
        guard: &dyn ReplayGuard,
    ) -> Result<LogoutToken, VerifyError> {
        let verified = self.verify_logout_token_at(token, now, options)?;
        if !guard.first_use(&verified.replay_key(), verified.remember_until, now) {
            return Err(invalid("replayed logout token (jti seen before)"));
        }
        Ok(verified)
    }

    /// Verifies a logout token at a given time (Unix seconds), every check
    /// of Back-Channel Logout 1.0 §2.6 but the replay of its `jti`.
    pub fn verify_logout_token_at(
        &self,
        token: &str,
        now: u64,
        options: &LogoutOptions,
    ) -> Result<LogoutToken, VerifyError> {
        if token.len() > MAX_LEN {
            return Err(invalid("token too long"));
        }
        let claims = self.signed_claims(token, now)?;
        let leeway = self.leeway;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(invalid("wrong issuer"));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !audience_ok {
            return Err(invalid("wrong audience"));
        }
        let iat = numeric_date(&claims, "iat")?.ok_or_else(|| invalid("no iat"))?;
        if iat > now.saturating_add(leeway) {
            return Err(invalid("issued in the future"));
        }
        let fresh_until = iat.saturating_add(options.max_age).saturating_add(leeway);
        if now > fresh_until {
            return Err(invalid("stale: issued too long ago"));
        }
        let exp = numeric_date(&claims, "exp")?;
        if exp.is_some_and(|exp| now > exp.saturating_add(leeway)) {
            return Err(invalid("expired"));
        }
        if numeric_date(&claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(invalid("not valid yet"));
        }
        // §2.6 step 6: a nonce would let an ID token pass for a logout token.
        if claims.contains_key("nonce") {
            return Err(invalid("a logout token must not carry a nonce"));
        }
        let event = claims
            .get("events")
            .and_then(Value::as_object)
            .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT));
        if !event.is_some_and(Value::is_object) {
            return Err(invalid(
                "events does not hold the back-channel logout event as an object",
            ));
        }
        let jti = text(&claims, "jti")?.ok_or_else(|| invalid("no jti"))?;
        let sub = text(&claims, "sub")?;
        let sid = text(&claims, "sid")?;
        if sub.is_none() && sid.is_none() {
            return Err(invalid("neither sid nor sub"));
        }
        if options.require_sid && sid.is_none() {
            return Err(invalid("no sid"));
        }
        let remember_until = match exp {
            Some(exp) => fresh_until.min(exp.saturating_add(leeway)),
            None => fresh_until,
        };
        Ok(LogoutToken {
            iss: self.issuer.clone(),
            sub,
            sid,
            jti,
            iat,
            exp,
            remember_until,
        })
    }

    /// The claims of `token` once its header is a logout token's and its
    /// signature checks: the algorithm on the allow-list, the key its `kid`
    /// names ([`Verifier::key`]: the cached JWKS, refetched for an unknown
    /// id) made for that algorithm, and the target's signature check (the
    /// same as for access and ID tokens).
    fn signed_claims(&self, token: &str, now: u64) -> Result<Map<String, Value>, VerifyError> {
        let meta = Token::decode_metadata(token).map_err(|_| VerifyError::Malformed)?;
        let alg = meta.algorithm();
        let Some(alg) = self.algorithms.iter().copied().find(|a| *a == alg) else {
            return Err(VerifyError::Algorithm(alg.to_owned()));
        };
        if !is_logout_type(meta.signature_type()) {
            return Err(invalid("unexpected token type (not logout+jwt)"));
        }
        let kid = meta.key_id().ok_or(VerifyError::UnknownKey)?;
        let key = self.key(kid, now)?;
        if key.alg != alg {
            return Err(VerifyError::Algorithm(alg.to_owned()));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        let signature = b64url_decode(sig).ok_or(VerifyError::Malformed)?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        if !self.logout_signature_ok(&key, token, signed, &signature, now) {
            return Err(invalid("signature mismatch"));
        }
        b64url_decode(p)
            .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
            .ok_or_else(|| invalid("unreadable claims"))
    }

    /// Natively, and in wasm for ES256 and EdDSA: the crate's own check.
    #[cfg(not(target_arch = "wasm32"))]
    fn logout_signature_ok(
        &self,
        key: &super::PublishedKey,
        _token: &str,
        signed: &[u8],
        signature: &[u8],
        _now: u64,
    ) -> bool {
        super::signature_ok(key, signed, signature)
    }

    /// In wasm RS256 stays with jwt-simple, as for the other tokens; its
    /// claims are checked by the caller.
    #[cfg(target_arch = "wasm32")]
    fn logout_signature_ok(
        &self,
        key: &super::PublishedKey,
        token: &str,
        signed: &[u8],
        signature: &[u8],
        now: u64,
    ) -> bool {
        match &key.rsa {
            Some(rsa) => {
                let options = VerificationOptions {
                    time_tolerance: Some(Duration::from_secs(self.leeway)),
                    artificial_time: Some(Duration::from_secs(now)),
                    ..Default::default()
                };
                rsa.verify_token::<Value>(token, Some(options)).is_ok()
            }
            None => super::signature_ok(key, signed, signature),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
