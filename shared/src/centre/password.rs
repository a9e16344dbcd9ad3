//! Changing the password (with the current one), or setting a first one
//! for an account made through an upstream provider. Both need a recent
//! sign-in (checked by the caller) and meet the sign-up policy.

use serde_json::json;

use crate::Env;
use crate::accounts::{self, Auth};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::identity::Identity;
use crate::oidc::grants;
use crate::password;
use crate::session::{self, Session};
use crate::store::identities;

/// A password change as asked.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// The current password (required when the account has one).
    pub current: Option<&'a str>,
    /// The new password.
    pub new: &'a str,
    /// End every other session and every refresh-token family.
    pub sign_out_others: bool,
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Whether it set a first password (the account had none).
    pub first: bool,
    /// The public ids of the sessions ended.
    pub ended_sessions: Vec<String>,
}

/// Changes (or first sets) the password of the signed-in person. The
/// current password is checked as at sign-in (one argon2id run, the same
/// limits): a wrong one changes nothing.
pub fn change(
    env: &Env,
    auth: &Auth,
    who: &Identity,
    current_session: &Session,
    c: &Change<'_>,
    device: &Device,
) -> Result<Changed> {
    let first = who.password_hash.is_none();
    if c.new.is_empty() {
        return Err(Error::bad_request("Choose a new password."));
    }
    password::check_policy(c.new)?;
    if !first {
        let current = c
            .current
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::bad_request("Enter your current password."))?;
        accounts::prove_password(env, auth, &who.email, current, &device.addr).map_err(
            |e| match e {
                Error::Unauthorized(_) => {
                    Error::Unauthorized("The current password is incorrect.".into())
                }
                other => other,
            },
        )?;
        if current == c.new {
            return Err(Error::bad_request(
                "The new password is the same as the current one. Choose a different one.",
            ));
        }
    }
    let hash = password::hash(c.new, auth.argon2()?)?;
    // Refresh tokens end before the password changes, so that no
    // interruption leaves one alive beside the new password.
    if c.sign_out_others {
        grants::end_all(env.sql, &who.id, env.now)?;
    }
    identities::set_password_hash(env.sql, &who.id, &hash, env.now)?;
    let ended_sessions = if c.sign_out_others {
        session::revoke_all(env, &who.id, Some(&current_session.sid))?.0
    } else {
        Vec::new()
    };
    events::record(
        env,
        &who.id,
        Kind::PasswordChanged,
        json!({ "first": first, "signed_out_others": c.sign_out_others }),
        device,
    )?;
    Ok(Changed {
        first,
        ended_sessions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Policy;
    use crate::store::security_events;
    use crate::testkit::World;
    use http::{HeaderMap, HeaderValue};
    use serde_json::Map;

    const OLD: &str = "correct horse battery staple";
    const NEW: &str = "purple monkey dishwasher sky";

    fn start(w: &World, auth: &Auth, who: &Identity, now: i64) -> (HeaderMap, Session) {
        let d = Device::addr("192.0.2.1");
        let cookie = session::start(
            &w.env(now),
            auth.policy().unwrap(),
            &session::New {
                sub: &who.id,
                generation: who.session_generation,
                amr: &["pwd"],
                idp: None,
                device: &d,
            },
        )
        .unwrap();
        let pair = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, HeaderValue::from_str(&pair).unwrap());
        let s = session::current(&w.env(now), auth.policy().unwrap(), &h)
            .unwrap()
            .unwrap();
        (h, s)
    }

    fn alive(w: &World, p: &Policy, h: &HeaderMap, now: i64) -> bool {
        session::current(&w.env(now), p, h).unwrap().is_some()
    }

    #[test]
    fn a_change_needs_the_current_password_and_can_end_the_others() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        let hash = password::hash(OLD, auth.argon2().unwrap()).unwrap();
        let who = crate::identity::create(&w.sql, "ada@example.com", Some(&hash), &Map::new(), 0)
            .unwrap()
            .unwrap();
        let (_, mine) = start(&w, &auth, &who, 0);
        let (other, _) = start(&w, &auth, &who, 1);
        let d = Device::addr("192.0.2.1");
        let ask = |current: Option<&'static str>, new: &'static str| Change {
            current,
            new,
            sign_out_others: true,
        };
        for (c, why) in [
            (ask(Some("wrong password!"), NEW), "wrong"),
            (ask(None, NEW), "missing"),
            (ask(Some(OLD), "short"), "policy"),
            (ask(Some(OLD), OLD), "same"),
        ] {
            assert!(
                change(&w.env(2), &auth, &who, &mine, &c, &d).is_err(),
                "{why}"
            );
        }
        let unchanged = crate::identity::by_id(&w.sql, &who.id).unwrap().unwrap();
        assert_eq!(unchanged.password_hash.as_deref(), Some(hash.as_str()));
        assert!(alive(&w, auth.policy().unwrap(), &other, 2));

        let done = change(&w.env(3), &auth, &who, &mine, &ask(Some(OLD), NEW), &d).unwrap();
        assert_eq!(done.ended_sessions.len(), 1);
        assert!(!alive(&w, auth.policy().unwrap(), &other, 4));
        let after = crate::identity::by_id(&w.sql, &who.id).unwrap().unwrap();
        assert!(
            password::verify(NEW, after.password_hash.as_deref(), auth.argon2().unwrap())
                .unwrap()
                .ok()
        );
        let ev = security_events::page(&w.sql, &who.id, None, 10).unwrap();
        assert_eq!(ev[0].kind, "password_changed");
    }

    #[test]
    fn an_account_without_a_password_sets_one() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        let who = crate::identity::create(&w.sql, "ada@example.com", None, &Map::new(), 0)
            .unwrap()
            .unwrap();
        let (_, mine) = start(&w, &auth, &who, 0);
        let (other, _) = start(&w, &auth, &who, 0);
        let c = Change {
            current: None,
            new: NEW,
            sign_out_others: false,
        };
        let done = change(&w.env(1), &auth, &who, &mine, &c, &Device::addr("x")).unwrap();
        assert!(done.first && done.ended_sessions.is_empty());
        assert!(alive(&w, auth.policy().unwrap(), &other, 2));
    }
}
