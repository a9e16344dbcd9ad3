//! The security events of an account, for its owner: paged newest first,
//! each in words with its address, device and time.

use serde::Serialize;
use serde_json::Value as Json;

use crate::Env;
use crate::device;
use crate::error::Result;
use crate::store::security_events;

/// Events per page.
pub const PAGE: i64 = 50;

/// One event, as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The event's id (the page cursor).
    pub id: i64,
    /// The kind, such as `sign_in` (see [`crate::events::Kind`]).
    pub kind: String,
    /// What happened, in words.
    pub text: String,
    /// The kind's details.
    pub detail: Json,
    /// The client address.
    pub client_addr: String,
    /// The browser and system, in words.
    pub device: String,
    /// When, in Unix seconds.
    pub at: i64,
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// The events, newest first.
    pub events: Vec<Entry>,
    /// The cursor of the next (older) page, when there may be one.
    pub next_before: Option<i64>,
}

/// Up to [`PAGE`] events of an identity older than event `before` (the
/// newest when `None`).
pub fn page(env: &Env, identity_id: &str, before: Option<i64>) -> Result<Page> {
    let events: Vec<Entry> = security_events::page(env.sql, identity_id, before, PAGE)?
        .into_iter()
        .map(|e| Entry {
            text: describe(&e.kind, &e.detail),
            device: device::describe(&e.user_agent),
            id: e.id,
            kind: e.kind,
            detail: e.detail,
            client_addr: e.client_addr,
            at: e.at,
        })
        .collect();
    let next_before = if events.len() as i64 == PAGE {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Page {
        events,
        next_before,
    })
}

/// An event kind (and its details) in words.
pub fn describe(kind: &str, detail: &Json) -> String {
    let s = |k: &str| detail.get(k).and_then(Json::as_str).unwrap_or_default();
    let method = match s("method") {
        "totp" => " (authenticator app)",
        "passkey" => " (passkey)",
        "recovery_codes" => " (recovery codes)",
        _ => "",
    };
    match kind {
        "sign_in" => "Signed in".into(),
        "sign_in_failed" => "Failed sign-in attempt".into(),
        "password_changed" if detail.get("first") == Some(&Json::Bool(true)) => {
            "Password set".into()
        }
        "password_changed" => "Password changed".into(),
        "email_changed" if !s("to").is_empty() => {
            format!("Email address changed to {}", s("to"))
        }
        "email_changed" => "Email address changed".into(),
        "mfa_added" => format!("Second factor added{method}"),
        "mfa_removed" => format!("Second factor removed{method}"),
        "recovery_codes_renewed" => "New recovery codes made".into(),
        "recovery_code_used" => "Recovery code used".into(),
        "app_connected" => format!("App connected: {}", s("client_id")),
        "app_revoked" => format!("App access revoked: {}", s("client_id")),
        "session_revoked" => "Session ended from the account centre".into(),
        "profile_changed" => "Profile changed".into(),
        "export" => "Data downloaded".into(),
        other => other.replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::World;
    use serde_json::json;

    #[test]
    fn pages_newest_first_with_a_cursor() {
        let w = World::new();
        for i in 0..(PAGE + 5) {
            security_events::insert(&w.sql, "ada", "sign_in", &json!({}), "192.0.2.1", "", i)
                .unwrap();
        }
        security_events::insert(&w.sql, "bob", "sign_in", &json!({}), "", "", 0).unwrap();
        let env = w.env(100);
        let first = page(&env, "ada", None).unwrap();
        assert_eq!(first.events.len() as i64, PAGE);
        assert_eq!(first.events[0].at, PAGE + 4);
        assert_eq!(first.events[0].text, "Signed in");
        let second = page(&env, "ada", first.next_before).unwrap();
        assert_eq!(second.events.len(), 5);
        assert_eq!(second.next_before, None);
        assert_eq!(second.events[4].at, 0);
    }

    #[test]
    fn kinds_in_words() {
        assert_eq!(
            describe("email_changed", &json!({"to": "a@b.c"})),
            "Email address changed to a@b.c"
        );
        assert_eq!(
            describe("password_changed", &json!({"first": true})),
            "Password set"
        );
        assert_eq!(describe("something_new", &json!({})), "something new");
    }
}
