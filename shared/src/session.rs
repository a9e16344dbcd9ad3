//! Browser sessions, kept in key-value.
//!
//! The session id is a random 256-bit value; the store only sees its SHA-256.
//! A session dies after `session_idle_seconds` without use, after
//! `session_max_seconds` in all, at logout, and when its identity's session
//! generation moves on (a password reset). Login always starts a new id.

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::config::{self, Variables};
use crate::crypto;
use crate::error::{Error, Result};
use crate::store::{KvStore, kv};
use crate::web::{self, SetCookie};

/// The session cookie's name with `Secure` (the `__Host-` prefix pins it to
/// this host and path `/`).
pub const COOKIE: &str = "__Host-lanyard_session";
/// The name used when `cookie_secure` is off (plain-http development).
pub const COOKIE_PLAIN: &str = "lanyard_session";

/// Refresh `last_seen` at most this often, to save a write per request (and
/// more often when the idle timeout is short, so that use keeps it alive).
const TOUCH_EVERY: i64 = 60;

/// Session lifetimes and cookie security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Seconds without activity before a session ends.
    pub idle: i64,
    /// Seconds after login before a session ends regardless.
    pub max: i64,
    /// Whether cookies are `Secure` (and `__Host-` prefixed).
    pub secure: bool,
}

impl Policy {
    /// Reads `session_idle_seconds` (default 1800), `session_max_seconds`
    /// (default 43200) and `cookie_secure` (default true).
    pub fn load(vars: &dyn Variables) -> Result<Self> {
        let idle = seconds(vars, "session_idle_seconds", 1800)?;
        let max = seconds(vars, "session_max_seconds", 43_200)?;
        let secure = match config::optional(vars, "cookie_secure")?.as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(Error::config("cookie_secure", "use true or false")),
        };
        Ok(Self { idle, max, secure })
    }

    /// The cookie name for this policy.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure { COOKIE } else { COOKIE_PLAIN }
    }
}

/// A whole number of seconds from 1 to 90 days, from a variable.
pub fn seconds(vars: &dyn Variables, name: &str, default: i64) -> Result<i64> {
    match config::optional(vars, name)? {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=90 * 86_400).contains(n))
            .ok_or_else(|| Error::config(name, "use a whole number of seconds from 1 to 7776000")),
    }
}

/// What a session records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The identity's subject id.
    pub sub: String,
    /// The identity's session generation when the session started.
    pub generation: i64,
    /// When the session started (the login).
    pub created_at: i64,
    /// When it was last used (to within [`TOUCH_EVERY`]).
    pub last_seen: i64,
    /// Authentication methods used (`pwd`, …), for the `amr` claim.
    pub amr: Vec<String>,
    /// A public, random session id for the `sid` claim (not the cookie value).
    #[serde(default)]
    pub sid: String,
    /// The connection of a sign-in through an upstream provider, for the
    /// `idp` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
}

fn key(id: &str) -> String {
    format!("session:{}", crypto::hash_secret(id))
}

impl Session {
    fn expires_at(&self, p: &Policy) -> i64 {
        (self.last_seen + p.idle).min(self.created_at + p.max)
    }
}

/// Starts a session and returns its `Set-Cookie` value.
pub fn start(
    store: &dyn KvStore,
    p: &Policy,
    sub: &str,
    generation: i64,
    amr: &[&str],
    now: i64,
) -> Result<http::HeaderValue> {
    start_via(store, p, sub, generation, amr, None, now)
}

/// Starts a session signed in through the upstream connection `idp` (when
/// given) and returns its `Set-Cookie` value.
pub fn start_via(
    store: &dyn KvStore,
    p: &Policy,
    sub: &str,
    generation: i64,
    amr: &[&str],
    idp: Option<&str>,
    now: i64,
) -> Result<http::HeaderValue> {
    let id = crypto::random_token()?;
    let s = Session {
        sub: sub.to_owned(),
        generation,
        created_at: now,
        last_seen: now,
        amr: amr.iter().map(|a| (*a).to_owned()).collect(),
        sid: crypto::random_id()?,
        idp: idp.map(str::to_owned),
    };
    kv::put_json(store, &key(&id), &s, s.expires_at(p))?;
    SetCookie {
        name: p.cookie_name(),
        value: &id,
        max_age: None,
        secure: p.secure,
    }
    .to_header()
}

/// The session the request's cookie names, if it is alive. A missing,
/// malformed, unknown or expired cookie all mean "no session".
pub fn current(
    store: &dyn KvStore,
    p: &Policy,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<Session>> {
    let Some(id) = web::cookie(headers, p.cookie_name()).filter(|v| is_token(v)) else {
        return Ok(None);
    };
    let k = key(id);
    let Some(mut s) = kv::get_json::<Session>(store, &k, now)? else {
        return Ok(None);
    };
    if now >= s.expires_at(p) {
        store.delete(&k)?;
        return Ok(None);
    }
    if now - s.last_seen >= TOUCH_EVERY.min(p.idle / 4) {
        s.last_seen = now;
        kv::put_json(store, &k, &s, s.expires_at(p))?;
    }
    Ok(Some(s))
}

/// Ends the request's session (if any) and returns the cookie that clears it.
pub fn end(store: &dyn KvStore, p: &Policy, headers: &HeaderMap) -> Result<http::HeaderValue> {
    if let Some(id) = web::cookie(headers, p.cookie_name()).filter(|v| is_token(v)) {
        store.delete(&key(id))?;
    }
    clear_cookie(p)
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(p: &Policy) -> Result<http::HeaderValue> {
    SetCookie {
        name: p.cookie_name(),
        value: "",
        max_age: Some(0),
        secure: p.secure,
    }
    .to_header()
}

/// Whether a cookie value has the shape of our tokens (43 base64url chars).
pub fn is_token(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::MemoryKv;
    use http::HeaderValue;

    const P: Policy = Policy {
        idle: 100,
        max: 1000,
        secure: true,
    };

    fn headers_for(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, HeaderValue::from_str(&pair).unwrap());
        h
    }

    #[test]
    fn lifecycle() {
        let kv = MemoryKv::default();
        let cookie = start(&kv, &P, "sub1", 0, &["pwd"], 10).unwrap();
        let text = cookie.to_str().unwrap();
        assert!(text.starts_with("__Host-lanyard_session="));
        assert!(
            text.contains("HttpOnly")
                && text.contains("Secure")
                && text.contains("SameSite=Lax")
                && text.contains("Path=/")
        );
        let h = headers_for(&cookie);
        let s = current(&kv, &P, &h, 20).unwrap().unwrap();
        assert_eq!(s.sub, "sub1");
        assert_eq!(s.amr, ["pwd"]);
        end(&kv, &P, &h).unwrap();
        assert!(current(&kv, &P, &h, 21).unwrap().is_none());
    }

    #[test]
    fn idle_and_absolute_timeouts() {
        let kv = MemoryKv::default();
        let h = headers_for(&start(&kv, &P, "s", 0, &["pwd"], 0).unwrap());
        assert!(current(&kv, &P, &h, 99).unwrap().is_some());
        // Used at 99 (touched), so alive until 199.
        assert!(current(&kv, &P, &h, 198).unwrap().is_some());
        assert!(current(&kv, &P, &h, 400).unwrap().is_none(), "idle");

        let h = headers_for(&start(&kv, &P, "s", 0, &["pwd"], 0).unwrap());
        let mut t = 0;
        while t < 990 {
            t += 90;
            assert!(current(&kv, &P, &h, t).unwrap().is_some(), "{t}");
        }
        assert!(current(&kv, &P, &h, 1000).unwrap().is_none(), "absolute");

        // An idle timeout shorter than the touch interval still counts use.
        let short = Policy {
            idle: 4,
            max: 20,
            ..P
        };
        let h = headers_for(&start(&kv, &short, "s", 0, &["pwd"], 0).unwrap());
        for t in [3, 6, 9, 12, 15, 18] {
            assert!(current(&kv, &short, &h, t).unwrap().is_some(), "{t}");
        }
        assert!(current(&kv, &short, &h, 20).unwrap().is_none(), "absolute");
    }

    #[test]
    fn tampered_or_unknown_cookies_are_no_session() {
        let kv = MemoryKv::default();
        let real = start(&kv, &P, "s", 0, &["pwd"], 0).unwrap();
        let mut forged = real.to_str().unwrap().split(';').next().unwrap().to_owned();
        // Change the last character, whatever it was.
        let last = if forged.ends_with('A') { "B" } else { "A" };
        forged.replace_range(forged.len() - 1.., last);
        for value in [
            forged,
            "__Host-lanyard_session=x".into(),
            "__Host-lanyard_session=".into(),
        ] {
            let mut h = HeaderMap::new();
            h.insert(http::header::COOKIE, HeaderValue::from_str(&value).unwrap());
            assert!(current(&kv, &P, &h, 1).unwrap().is_none(), "{value}");
        }
    }
}
