//! Browser sessions, kept in key-value.
//!
//! The session id is a random 256-bit value; the store only sees its SHA-256.
//! A session dies after `session_idle_seconds` without use, after
//! `session_max_seconds` in all, at logout, and when its identity's session
//! generation moves on (a password reset). Login always starts a new id.
//! Each session is also listed in SQLite (`store::sessions`), so that its
//! owner can see it in the account centre and end it from another device.

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::Env;
use crate::config::{self, Variables};
use crate::crypto;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::oidc::signout::{self, EndedSession, SignedOut};
use crate::store::{kv, sessions};
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
    /// When the password or a second factor was last re-entered in this
    /// session (0: only at the sign-in).
    #[serde(default)]
    pub reauth_at: i64,
}

fn key(id: &str) -> String {
    format!("session:{}", crypto::hash_secret(id))
}

impl Session {
    fn expires_at(&self, p: &Policy) -> i64 {
        (self.last_seen + p.idle).min(self.created_at + p.max)
    }

    /// When the person last proved who they are in this session: the
    /// sign-in, or a later re-entry of a password or second factor.
    pub fn authenticated_at(&self) -> i64 {
        self.created_at.max(self.reauth_at)
    }

    /// Whether the person proved who they are within the last `seconds`.
    pub fn is_recent(&self, now: i64, seconds: i64) -> bool {
        now - self.authenticated_at() <= seconds
    }
}

/// A session to start.
#[derive(Debug, Clone, Copy)]
pub struct New<'a> {
    /// The identity's subject id.
    pub sub: &'a str,
    /// The identity's session generation.
    pub generation: i64,
    /// The methods used (`pwd`, `otp`, `hwk`, `mfa`, `fed`…).
    pub amr: &'a [&'a str],
    /// The upstream connection of a sign-in through one.
    pub idp: Option<&'a str>,
    /// Where the sign-in came from, for the session list.
    pub device: &'a Device,
}

/// Starts a session, lists it for its owner, and returns its `Set-Cookie`
/// value.
pub fn start(env: &Env, p: &Policy, new: &New<'_>) -> Result<http::HeaderValue> {
    let id = crypto::random_token()?;
    let s = Session {
        sub: new.sub.to_owned(),
        generation: new.generation,
        created_at: env.now,
        last_seen: env.now,
        amr: new.amr.iter().map(|a| (*a).to_owned()).collect(),
        sid: crypto::random_id()?,
        idp: new.idp.map(str::to_owned),
        reauth_at: env.now,
    };
    let k = key(&id);
    sessions::insert(
        env.sql,
        &sessions::Row {
            sid: s.sid.clone(),
            identity_id: s.sub.clone(),
            kv_key: k.clone(),
            user_agent: new.device.user_agent.clone(),
            client_addr: new.device.addr.clone(),
            amr: s.amr.join(" "),
            created_at: s.created_at,
            last_seen_at: s.last_seen,
            expires_at: s.expires_at(p),
        },
    )?;
    kv::put_json(env.kv, &k, &s, s.expires_at(p))?;
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
pub fn current(env: &Env, p: &Policy, headers: &HeaderMap) -> Result<Option<Session>> {
    let Some(id) = web::cookie(headers, p.cookie_name()).filter(|v| is_token(v)) else {
        return Ok(None);
    };
    let k = key(id);
    let Some(mut s) = kv::get_json::<Session>(env.kv, &k, env.now)? else {
        return Ok(None);
    };
    if env.now >= s.expires_at(p) {
        env.kv.delete(&k)?;
        sessions::delete_by_key(env.sql, &k)?;
        return Ok(None);
    }
    if env.now - s.last_seen >= TOUCH_EVERY.min(p.idle / 4) {
        s.last_seen = env.now;
        save(env, p, &k, &s)?;
    }
    Ok(Some(s))
}

/// Stores a changed session (a step-up adds methods to `amr`, a re-entry of
/// the password moves `reauth_at`) under the request's cookie.
pub fn update(env: &Env, p: &Policy, headers: &HeaderMap, s: &Session) -> Result<()> {
    let Some(id) = web::cookie(headers, p.cookie_name()).filter(|v| is_token(v)) else {
        return Err(Error::Unauthorized("Sign in first.".into()));
    };
    save(env, p, &key(id), s)
}

fn save(env: &Env, p: &Policy, k: &str, s: &Session) -> Result<()> {
    kv::put_json(env.kv, k, s, s.expires_at(p))?;
    sessions::touch(
        env.sql,
        &s.sid,
        &s.amr.join(" "),
        s.last_seen,
        s.expires_at(p),
    )
}

/// Ends the request's session (if any) and returns the cookie that clears
/// it. The applications of the session are not told: this is for a sign-in
/// that replaces the session, and for a session already dead. A sign-out
/// is [`sign_out`].
pub fn end(env: &Env, p: &Policy, headers: &HeaderMap) -> Result<http::HeaderValue> {
    drop_cookie_session(env, p, headers)?;
    clear_cookie(p)
}

/// Ends the request's session (if any) and signs it out of the
/// applications that got tokens in it (single sign-out); returns the cookie
/// that clears it, and the front-channel iframes for the page.
pub fn sign_out(
    env: &Env,
    p: &Policy,
    headers: &HeaderMap,
) -> Result<(http::HeaderValue, SignedOut)> {
    let out = match drop_cookie_session(env, p, headers)? {
        Some(row) => signed_out(env, row)?,
        None => SignedOut::default(),
    };
    Ok((clear_cookie(p)?, out))
}

/// Tells the applications of the listed session `row`, which ended.
fn signed_out(env: &Env, row: sessions::Row) -> Result<SignedOut> {
    signout::sessions_ended(
        env,
        &[EndedSession {
            sid: row.sid,
            identity_id: row.identity_id,
        }],
    )
}

/// Deletes the session the cookie names, returning its listing.
fn drop_cookie_session(
    env: &Env,
    p: &Policy,
    headers: &HeaderMap,
) -> Result<Option<sessions::Row>> {
    let Some(id) = web::cookie(headers, p.cookie_name()).filter(|v| is_token(v)) else {
        return Ok(None);
    };
    let k = key(id);
    env.kv.delete(&k)?;
    sessions::delete_by_key(env.sql, &k)
}

/// Ends one session of an identity by its public id, and signs it out of
/// its applications: what they were told, or `None` when the identity has
/// no such session.
pub fn revoke(env: &Env, identity_id: &str, sid: &str) -> Result<Option<SignedOut>> {
    let Some(row) = sessions::delete(env.sql, identity_id, sid)? else {
        return Ok(None);
    };
    env.kv.delete(&row.kv_key)?;
    signed_out(env, row).map(Some)
}

/// Ends every session of an identity but the one with public id `keep`,
/// and signs them out of their applications (those of sessions that had
/// expired too); the public ids of the sessions ended, and what the
/// applications were told.
pub fn revoke_all(
    env: &Env,
    identity_id: &str,
    keep: Option<&str>,
) -> Result<(Vec<String>, SignedOut)> {
    let rows = sessions::delete_all(env.sql, identity_id, keep)?;
    for row in &rows {
        env.kv.delete(&row.kv_key)?;
    }
    let ended: Vec<String> = rows.into_iter().map(|r| r.sid).collect();
    let told = signout::identity_signed_out(env, identity_id, keep, &ended)?;
    Ok((ended, told))
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
    use crate::testkit::World;
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

    fn begin(w: &World, p: &Policy, sub: &str, now: i64) -> HeaderValue {
        let device = Device::addr("192.0.2.1");
        let new = New {
            sub,
            generation: 0,
            amr: &["pwd"],
            idp: None,
            device: &device,
        };
        start(&w.env(now), p, &new).unwrap()
    }

    #[test]
    fn lifecycle() {
        let w = World::new();
        let cookie = begin(&w, &P, "sub1", 10);
        let text = cookie.to_str().unwrap();
        assert!(text.starts_with("__Host-lanyard_session="));
        assert!(
            text.contains("HttpOnly")
                && text.contains("Secure")
                && text.contains("SameSite=Lax")
                && text.contains("Path=/")
        );
        let h = headers_for(&cookie);
        let s = current(&w.env(20), &P, &h).unwrap().unwrap();
        assert_eq!(s.sub, "sub1");
        assert_eq!(s.amr, ["pwd"]);
        let listed = sessions::for_identity(&w.sql, "sub1", 20).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].sid.as_str(), listed[0].client_addr.as_str()),
            (s.sid.as_str(), "192.0.2.1")
        );
        end(&w.env(21), &P, &h).unwrap();
        assert!(current(&w.env(21), &P, &h).unwrap().is_none());
        assert!(
            sessions::for_identity(&w.sql, "sub1", 21)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn idle_and_absolute_timeouts() {
        let w = World::new();
        let at = |t: i64, h: &HeaderMap, p: &Policy| current(&w.env(t), p, h).unwrap().is_some();
        let h = headers_for(&begin(&w, &P, "s", 0));
        assert!(at(99, &h, &P));
        // Used at 99 (touched), so alive until 199.
        assert!(at(198, &h, &P));
        assert!(!at(400, &h, &P), "idle");

        let h = headers_for(&begin(&w, &P, "s", 0));
        let mut t = 0;
        while t < 990 {
            t += 90;
            assert!(at(t, &h, &P), "{t}");
        }
        assert!(!at(1000, &h, &P), "absolute");

        // An idle timeout shorter than the touch interval still counts use.
        let short = Policy {
            idle: 4,
            max: 20,
            ..P
        };
        let h = headers_for(&begin(&w, &short, "s", 0));
        for t in [3, 6, 9, 12, 15, 18] {
            assert!(at(t, &h, &short), "{t}");
        }
        assert!(!at(20, &h, &short), "absolute");
    }

    #[test]
    fn tampered_or_unknown_cookies_are_no_session() {
        let w = World::new();
        let real = begin(&w, &P, "s", 0);
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
            assert!(current(&w.env(1), &P, &h).unwrap().is_none(), "{value}");
        }
    }

    #[test]
    fn revoking_ends_other_sessions_of_the_same_identity_only() {
        let w = World::new();
        let mine = headers_for(&begin(&w, &P, "ada", 0));
        let laptop = headers_for(&begin(&w, &P, "ada", 1));
        let phone = headers_for(&begin(&w, &P, "ada", 2));
        let bobs = headers_for(&begin(&w, &P, "bob", 3));
        let env = w.env(5);
        let sid = |h: &HeaderMap| current(&env, &P, h).unwrap().unwrap().sid;
        let (mine_sid, laptop_sid, bobs_sid) = (sid(&mine), sid(&laptop), sid(&bobs));
        // Not Ada's: nothing happens.
        assert!(revoke(&env, "ada", &bobs_sid).unwrap().is_none());
        assert!(current(&env, &P, &bobs).unwrap().is_some());
        assert!(revoke(&env, "ada", &laptop_sid).unwrap().is_some());
        assert!(current(&env, &P, &laptop).unwrap().is_none());
        let (ended, _) = revoke_all(&env, "ada", Some(&mine_sid)).unwrap();
        assert_eq!(ended.len(), 1);
        assert!(current(&env, &P, &phone).unwrap().is_none());
        assert!(current(&env, &P, &mine).unwrap().is_some());
        assert!(current(&env, &P, &bobs).unwrap().is_some());
        let left = sessions::for_identity(&w.sql, "ada", 5).unwrap();
        assert_eq!(
            left.iter().map(|r| r.sid.as_str()).collect::<Vec<_>>(),
            [mine_sid.as_str()]
        );
    }

    #[test]
    fn recent_means_the_sign_in_or_a_later_re_entry() {
        let w = World::new();
        let h = headers_for(&begin(&w, &P, "ada", 0));
        let env = w.env(50);
        let mut s = current(&env, &P, &h).unwrap().unwrap();
        assert!(s.is_recent(50, 60) && !s.is_recent(61, 60));
        s.reauth_at = 55;
        update(&env, &P, &h, &s).unwrap();
        let s = current(&w.env(60), &P, &h).unwrap().unwrap();
        assert!(s.is_recent(110, 60));
    }
}
