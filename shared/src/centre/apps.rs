//! Connected apps: the clients a person consented to. Revoking one forgets
//! the consent and ends that client's refresh-token families of the person,
//! so the app must ask again.

use serde::Serialize;
use serde_json::json;

use crate::Env;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::store::{clients, consents, refresh_families};

/// An app the person let in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    /// The client's id.
    pub client_id: String,
    /// The client's display name (its id if it has none, or is gone).
    pub name: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When they were (last) granted.
    pub granted_at: i64,
}

/// The apps an identity consented to, the most recent first.
pub fn list(env: &Env, identity_id: &str) -> Result<Vec<App>> {
    consents::for_identity(env.sql, identity_id)?
        .into_iter()
        .map(|c| {
            let name = clients::get(env.sql, &c.client_id)?
                .map(|r| r.settings.name)
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| c.client_id.clone());
            Ok(App {
                client_id: c.client_id,
                name,
                scopes: c.scopes,
                granted_at: c.granted_at,
            })
        })
        .collect()
}

/// Revokes an app: forgets the consent and ends the client's refresh-token
/// families of the person. An app without the person's consent is not found.
pub fn revoke(env: &Env, identity_id: &str, client_id: &str, device: &Device) -> Result<()> {
    if !consents::delete(env.sql, identity_id, client_id)? {
        return Err(Error::NotFound);
    }
    let families = refresh_families::revoke_for_client(env.sql, identity_id, client_id, env.now)?;
    events::record(
        env,
        identity_id,
        Kind::AppRevoked,
        json!({ "client_id": client_id, "refresh_families": families }),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::refresh_families::Family;
    use crate::testkit::{self, World};
    use serde_json::json;

    #[test]
    fn revoking_forgets_the_consent_and_ends_the_families() {
        let w = World::new();
        let make = |id: &str| {
            testkit::client(
                &w.sql,
                json!({
                    "client_name": format!("The {id}"), "client_id": id,
                    "redirect_uris": ["https://app.example/cb"],
                    "scope": "openid profile",
                }),
                0,
            )
            .0
            .id
        };
        let (client, other) = (make("app"), make("other"));
        let ada = testkit::person(&w.sql, "ada@example.com", 0);
        let env = w.env(10);
        for c in [&client, &other] {
            consents::upsert(&w.sql, &ada.id, c, &["openid".into()], 1).unwrap();
            let family = Family {
                id: format!("fam-{c}"),
                client_id: c.to_string(),
                identity_id: ada.id.clone(),
                scope: "openid".into(),
                auth_time: 1,
                amr: "pwd".into(),
                sid: "s".into(),
                org_id: None,
                mandate_id: None,
                idp: None,
            };
            refresh_families::insert(&w.sql, &family, &format!("hash-{c}"), 1).unwrap();
        }
        assert_eq!(list(&env, &ada.id).unwrap().len(), 2);
        revoke(&env, &ada.id, &client, &Device::addr("x")).unwrap();
        let left = list(&env, &ada.id).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(
            (left[0].client_id.as_str(), left[0].name.as_str()),
            ("other", "The other")
        );
        let life = refresh_families::Lifetimes {
            idle: 1000,
            max: 1000,
        };
        let live = |c: &str| {
            refresh_families::live(&w.sql, &format!("hash-{c}"), c, life, 11)
                .unwrap()
                .is_some()
        };
        assert!(!live(&client) && live(&other));
        assert_eq!(
            revoke(&env, &ada.id, &client, &Device::addr("x")),
            Err(Error::NotFound)
        );
    }
}
