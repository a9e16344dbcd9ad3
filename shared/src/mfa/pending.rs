//! A password sign-in waiting for its second factor.
//!
//! After a right password, an account with a second factor gets no session
//! yet: a pending sign-in is kept in key-value for [`LIFETIME`] seconds
//! under the SHA-256 of a random token, which the browser holds in a cookie
//! of its own. A TOTP code, a recovery code or a passkey then turns it into
//! a session ([`complete`]).
//!
//! `auth` is the account settings (`accounts::Auth`), of which only the
//! session policy is used, so that this module needs nothing of `accounts`.

use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Env;
use crate::crypto;
use crate::device::Device;
use crate::error::Result;
use crate::events::{self, Kind};
use crate::identity::{self, Identity};
use crate::session::{self, Policy};
use crate::store::kv;
use crate::web::{self, SetCookie};

/// Seconds a pending sign-in waits for its second factor.
pub const LIFETIME: i64 = 300;

/// The pending cookie's name with `Secure`.
pub const COOKIE: &str = "__Host-lanyard_mfa";
/// The name used when `cookie_secure` is off (plain-http development).
pub const COOKIE_PLAIN: &str = "lanyard_mfa";

/// A sign-in waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The identity's subject id.
    pub sub: String,
    /// Its session generation at the password step.
    pub generation: i64,
    /// The methods used so far (`pwd`).
    pub amr: Vec<String>,
    /// Where to go after the sign-in (a local path).
    pub return_to: Option<String>,
    /// The account's email, whose limit wrong codes count against.
    pub email: String,
    /// When the pending sign-in ends.
    pub expires_at: i64,
    /// The upstream connection of a sign-in through one, for the session's
    /// `idp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
}

fn cookie_name(p: &Policy) -> &'static str {
    if p.secure { COOKIE } else { COOKIE_PLAIN }
}

fn key(token: &str) -> String {
    format!("mfa_pending:{}", crypto::hash_secret(token))
}

/// Keeps a sign-in of `who` by `amr` waiting for its second factor; the
/// pending cookie's `Set-Cookie` value.
pub fn begin(
    env: &Env,
    policy: &Policy,
    who: &Identity,
    amr: &[&str],
    return_to: Option<&str>,
) -> Result<HeaderValue> {
    begin_via(env, policy, who, amr, None, return_to)
}

/// [`begin`] for a sign-in through the upstream connection `idp` (when
/// given), which the session keeps.
pub fn begin_via(
    env: &Env,
    policy: &Policy,
    who: &Identity,
    amr: &[&str],
    idp: Option<&str>,
    return_to: Option<&str>,
) -> Result<HeaderValue> {
    let token = crypto::random_token()?;
    let pending = Pending {
        sub: who.id.clone(),
        generation: who.session_generation,
        amr: amr.iter().map(|a| (*a).to_owned()).collect(),
        return_to: return_to.map(str::to_owned),
        email: who.email.clone(),
        expires_at: env.now + LIFETIME,
        idp: idp.map(str::to_owned),
    };
    kv::put_json(env.kv, &key(&token), &pending, pending.expires_at)?;
    SetCookie {
        name: cookie_name(policy),
        value: &token,
        max_age: Some(LIFETIME),
        secure: policy.secure,
    }
    .to_header()
}

/// The request's pending sign-in, if its cookie names one that has not
/// expired and whose identity has not ended its sessions since.
pub fn current(env: &Env, policy: &Policy, headers: &HeaderMap) -> Result<Option<Pending>> {
    let Some(token) = token(policy, headers) else {
        return Ok(None);
    };
    let Some(pending) = kv::get_json::<Pending>(env.kv, &key(token), env.now)? else {
        return Ok(None);
    };
    match identity::by_id(env.sql, &pending.sub)? {
        Some(who) if who.session_generation == pending.generation => Ok(Some(pending)),
        _ => {
            env.kv.delete(&key(token))?;
            Ok(None)
        }
    }
}

fn token<'h>(policy: &Policy, headers: &'h HeaderMap) -> Option<&'h str> {
    web::cookie(headers, cookie_name(policy)).filter(|v| session::is_token(v))
}

/// The methods of a sign-in finished by the second factor `method`: those
/// of the first step, `method`, and `mfa`, each once.
pub fn with_second_factor(amr: &[String], method: &str) -> Vec<String> {
    let mut all: Vec<String> = amr.to_vec();
    for m in [method, "mfa"] {
        if !all.iter().any(|a| a == m) {
            all.push(m.to_owned());
        }
    }
    all
}

/// Finishes the sign-in with a second factor `method` ("otp" or "hwk"):
/// starts the session with amr = pending.amr + method + "mfa", records a
/// sign_in security event, drops the pending state; returns the Set-Cookie
/// values (session + clearing the pending cookie).
pub fn complete(
    env: &Env,
    policy: &Policy,
    headers: &HeaderMap,
    pending: &Pending,
    method: &str,
    device: &Device,
) -> Result<Vec<HeaderValue>> {
    // Dropped first, so that the pending sign-in cannot give two sessions.
    if let Some(token) = token(policy, headers) {
        env.kv.delete(&key(token))?;
    }
    // A new session id at every sign-in; the browser's old one (if any) ends.
    session::end(env, policy, headers)?;
    let amr = with_second_factor(&pending.amr, method);
    let refs: Vec<&str> = amr.iter().map(String::as_str).collect();
    let started = session::start(
        env,
        policy,
        &session::New {
            sub: &pending.sub,
            generation: pending.generation,
            amr: &refs,
            idp: pending.idp.as_deref(),
            device,
        },
    )?;
    events::record(
        env,
        &pending.sub,
        Kind::SignIn,
        json!({ "amr": amr }),
        device,
    )?;
    Ok(vec![started, clear_cookie(policy)?])
}

/// Drops the request's pending sign-in (if any); the `Set-Cookie` value that
/// clears its cookie.
pub fn cancel(env: &Env, policy: &Policy, headers: &HeaderMap) -> Result<HeaderValue> {
    if let Some(token) = token(policy, headers) {
        env.kv.delete(&key(token))?;
    }
    clear_cookie(policy)
}

/// A `Set-Cookie` value that removes the pending cookie.
pub fn clear_cookie(policy: &Policy) -> Result<HeaderValue> {
    SetCookie {
        name: cookie_name(policy),
        value: "",
        max_age: Some(0),
        secure: policy.secure,
    }
    .to_header()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Auth;
    use crate::store::security_events;
    use crate::testkit::World;

    fn headers_for(values: &[HeaderValue]) -> HeaderMap {
        let pairs: Vec<&str> = values
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap())
            .collect();
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            HeaderValue::from_str(&pairs.join("; ")).unwrap(),
        );
        h
    }

    #[test]
    fn a_pending_sign_in_becomes_one_session_with_both_factors() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        let who = crate::testkit::person(&w.sql, "ada@example.com", 0);
        let cookie = begin(
            &w.env(10),
            auth.policy().unwrap(),
            &who,
            &["pwd"],
            Some("/account"),
        )
        .unwrap();
        let text = cookie.to_str().unwrap();
        assert!(text.starts_with("__Host-lanyard_mfa="), "{text}");
        assert!(
            text.contains("HttpOnly") && text.contains("Secure") && text.contains("SameSite=Lax")
        );
        let h = headers_for(&[cookie]);
        let env = w.env(20);
        let pending = current(&env, auth.policy().unwrap(), &h).unwrap().unwrap();
        assert_eq!(
            (pending.sub.as_str(), pending.return_to.as_deref()),
            (who.id.as_str(), Some("/account"))
        );
        let set = complete(
            &env,
            auth.policy().unwrap(),
            &h,
            &pending,
            "otp",
            &Device::addr("192.0.2.1"),
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        assert!(set[1].to_str().unwrap().contains("Max-Age=0"));
        assert!(
            current(&env, auth.policy().unwrap(), &h).unwrap().is_none(),
            "used once"
        );
        let s = session::current(&env, auth.policy().unwrap(), &headers_for(&set[..1]))
            .unwrap()
            .unwrap();
        assert_eq!(s.amr, ["pwd", "otp", "mfa"]);
        let events = security_events::page(&w.sql, &who.id, None, 10).unwrap();
        assert_eq!(events[0].kind, "sign_in");
        assert_eq!(events[0].detail["amr"], json!(["pwd", "otp", "mfa"]));
    }

    #[test]
    fn a_pending_sign_in_expires_and_dies_with_the_generation() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        let who = crate::testkit::person(&w.sql, "ada@example.com", 0);
        let h =
            headers_for(&[begin(&w.env(0), auth.policy().unwrap(), &who, &["pwd"], None).unwrap()]);
        assert!(
            current(&w.env(LIFETIME - 1), auth.policy().unwrap(), &h)
                .unwrap()
                .is_some()
        );
        assert!(
            current(&w.env(LIFETIME), auth.policy().unwrap(), &h)
                .unwrap()
                .is_none()
        );

        let h =
            headers_for(&[begin(&w.env(0), auth.policy().unwrap(), &who, &["pwd"], None).unwrap()]);
        identity::reset_password(&w.sql, &who.id, "x", 1).unwrap();
        assert!(
            current(&w.env(2), auth.policy().unwrap(), &h)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn amr_lists_each_method_once() {
        let amr = with_second_factor(&["pwd".into()], "hwk");
        assert_eq!(amr, ["pwd", "hwk", "mfa"]);
        assert_eq!(with_second_factor(&amr, "hwk"), amr);
    }
}
