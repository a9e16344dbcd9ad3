//! The person's browser sessions: listed with device, address and times,
//! ended one by one or all but the current one.

use serde::Serialize;
use serde_json::json;

use crate::Env;
use crate::device::{self, Device};
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::session;
use crate::store::sessions;

/// A live session, as shown to its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// Its public id.
    pub sid: String,
    /// The browser and system, in words ("Chrome on Linux").
    pub device: String,
    /// The `User-Agent` at sign-in.
    pub user_agent: String,
    /// The client address at sign-in.
    pub client_addr: String,
    /// The sign-in's methods, space-separated.
    pub amr: String,
    /// When it started.
    pub created_at: i64,
    /// When it was last used.
    pub last_seen_at: i64,
    /// Whether it is the session of this request.
    pub current: bool,
}

/// The live sessions of an identity, the most recently used first.
pub fn list(env: &Env, identity_id: &str, current_sid: &str) -> Result<Vec<Listed>> {
    Ok(sessions::for_identity(env.sql, identity_id, env.now)?
        .into_iter()
        .map(|r| Listed {
            device: device::describe(&r.user_agent),
            current: r.sid == current_sid,
            sid: r.sid,
            user_agent: r.user_agent,
            client_addr: r.client_addr,
            amr: r.amr,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
        })
        .collect())
}

/// Ends one other session of the identity. The current one is ended by
/// signing out; a session that is not the identity's is not found.
pub fn revoke(
    env: &Env,
    identity_id: &str,
    current_sid: &str,
    sid: &str,
    device: &Device,
) -> Result<()> {
    if sid == current_sid {
        return Err(Error::bad_request(
            "This is the session you are using now. Sign out to end it.",
        ));
    }
    if session::revoke(env, identity_id, sid)?.is_none() {
        return Err(Error::NotFound);
    }
    events::record(
        env,
        identity_id,
        Kind::SessionRevoked,
        json!({ "sids": [sid] }),
        device,
    )
}

/// Ends every session of the identity but the current one; how many.
pub fn revoke_others(
    env: &Env,
    identity_id: &str,
    current_sid: &str,
    device: &Device,
) -> Result<usize> {
    let (ended, _) = session::revoke_all(env, identity_id, Some(current_sid))?;
    if !ended.is_empty() {
        events::record(
            env,
            identity_id,
            Kind::SessionRevoked,
            json!({ "sids": ended }),
            device,
        )?;
    }
    Ok(ended.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Policy;
    use crate::store::security_events;
    use crate::testkit::{self, World};

    #[test]
    fn lists_marks_and_ends_sessions_of_their_owner_only() {
        let w = World::new();
        let p = Policy::load(&w.vars).unwrap();
        for (who, at) in [("ada", 1), ("ada", 2), ("ada", 3), ("bob", 4)] {
            testkit::signed_in(&w, &p, who, 0, at);
        }
        let env = w.env(10);
        let listed = list(&env, "ada", "none").unwrap();
        assert_eq!(listed.len(), 3);
        let (mine, other) = (listed[0].sid.clone(), listed[1].sid.clone());
        assert!(list(&env, "ada", &mine).unwrap()[0].current);
        assert_eq!(listed[0].client_addr, "192.0.2.1");
        let bobs = list(&env, "bob", "").unwrap()[0].sid.clone();
        let d = Device::addr("x");
        assert!(matches!(
            revoke(&env, "ada", &mine, &mine, &d),
            Err(Error::BadRequest(_))
        ));
        assert_eq!(revoke(&env, "ada", &mine, &bobs, &d), Err(Error::NotFound));
        revoke(&env, "ada", &mine, &other, &d).unwrap();
        assert_eq!(revoke_others(&env, "ada", &mine, &d).unwrap(), 1);
        assert_eq!(list(&env, "ada", &mine).unwrap().len(), 1);
        assert_eq!(list(&env, "bob", "").unwrap().len(), 1);
        let kinds: Vec<String> = security_events::page(&w.sql, "ada", None, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["session_revoked", "session_revoked"]);
    }
}
