//! The `connections` table: upstream identity providers (operator
//! connections, and organisations' own with `org_id`). The secret is never
//! stored: `secret_variable` names the Spin variable that holds it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

use super::{Named, SqlStore};
use crate::error::{Error, Result};

/// The kind of an upstream provider, which decides how Lanyard talks to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Any OpenID provider, by discovery of its issuer.
    Oidc,
    /// Google: OpenID with issuer `https://accounts.google.com`.
    Google,
    /// Microsoft Entra ID.
    Microsoft,
    /// Sign in with Apple.
    Apple,
    /// GitHub: OAuth 2.0 without OpenID.
    Github,
}

impl Kind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [Kind; 5] = [
        Kind::Oidc,
        Kind::Google,
        Kind::Microsoft,
        Kind::Apple,
        Kind::Github,
    ];

    /// The name stored and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Oidc => "oidc",
            Kind::Google => "google",
            Kind::Microsoft => "microsoft",
            Kind::Apple => "apple",
            Kind::Github => "github",
        }
    }

    /// The kind with this name, if any.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A connection's kind-specific settings (the `settings` JSON column).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Lanyard attribute → upstream claim, for a new account's attributes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mapping: BTreeMap<String, String>,
    /// Microsoft: the tenant ids allowed to sign in (empty: any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// Apple: the developer team id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// Apple: the id of the key that signs the client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// An upstream identity provider, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// 3–40 of `a-z 0-9 -`; part of the callback URL.
    pub id: String,
    /// How Lanyard talks to it.
    pub kind: Kind,
    /// The name on the button ("Continue with {name}").
    pub name: String,
    /// The upstream issuer (discovery base); none for GitHub.
    pub issuer: Option<String>,
    /// Lanyard's client id at the provider.
    pub client_id: String,
    /// The Spin variable that holds the client secret (or Apple's key).
    pub secret_variable: Option<String>,
    /// The scopes asked for, shown space-separated in JSON.
    #[serde(serialize_with = "space_separated")]
    pub scopes: Vec<String>,
    /// Kind-specific settings.
    pub settings: Settings,
    /// Whether the provider's verified emails are trusted for linking.
    pub trusted_email: bool,
    /// The organisation that owns it (an enterprise connection), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The role of people who join the organisation through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_role: Option<String>,
    /// Whether people may sign in with it.
    pub enabled: bool,
    /// When it was created.
    pub created_at: i64,
    /// When it was last changed.
    pub updated_at: i64,
}

fn space_separated<S: Serializer>(scopes: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&scopes.join(" "))
}

const COLUMNS: &str = "id, kind, name, issuer, client_id, secret_variable, scopes, settings, \
     trusted_email, org_id, default_role, enabled, created_at, updated_at";

fn decode(r: &Named<'_>) -> Result<Connection> {
    let kind = r.text("kind")?;
    Ok(Connection {
        id: r.string("id")?,
        kind: Kind::parse(kind)
            .ok_or_else(|| Error::Internal(format!("connection kind `{kind}`")))?,
        name: r.string("name")?,
        issuer: r.opt_string("issuer")?,
        client_id: r.string("client_id")?,
        secret_variable: r.opt_string("secret_variable")?,
        scopes: r
            .text("scopes")?
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect(),
        settings: serde_json::from_str(r.text("settings")?)
            .map_err(|e| Error::Internal(format!("connection settings: {e}")))?,
        trusted_email: r.bool("trusted_email")?,
        org_id: r.opt_string("org_id")?,
        default_role: r.opt_string("default_role")?,
        enabled: r.bool("enabled")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

fn settings_json(c: &Connection) -> Result<String> {
    serde_json::to_string(&c.settings)
        .map_err(|e| Error::Internal(format!("connection settings: {e}")))
}

/// Stores a new connection; `false` when the id is taken (one statement, so
/// two racing creations make one row).
pub fn insert(db: &dyn SqlStore, c: &Connection) -> Result<bool> {
    let rows = db.execute(
        &format!(
            "INSERT INTO connections ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING RETURNING id"
        ),
        &[
            c.id.as_str().into(),
            c.kind.as_str().into(),
            c.name.as_str().into(),
            c.issuer.as_deref().into(),
            c.client_id.as_str().into(),
            c.secret_variable.as_deref().into(),
            c.scopes.join(" ").into(),
            settings_json(c)?.into(),
            c.trusted_email.into(),
            c.org_id.as_deref().into(),
            c.default_role.as_deref().into(),
            c.enabled.into(),
            c.created_at.into(),
            c.updated_at.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// Replaces everything but the id, owner and creation time of a connection;
/// the stored row, or `None` when there is none with this id.
pub fn update(db: &dyn SqlStore, c: &Connection) -> Result<Option<Connection>> {
    let rows = db.execute(
        &format!(
            "UPDATE connections SET kind = ?, name = ?, issuer = ?, client_id = ?, \
             secret_variable = ?, scopes = ?, settings = ?, trusted_email = ?, default_role = ?, \
             enabled = ?, updated_at = ? WHERE id = ? RETURNING {COLUMNS}"
        ),
        &[
            c.kind.as_str().into(),
            c.name.as_str().into(),
            c.issuer.as_deref().into(),
            c.client_id.as_str().into(),
            c.secret_variable.as_deref().into(),
            c.scopes.join(" ").into(),
            settings_json(c)?.into(),
            c.trusted_email.into(),
            c.default_role.as_deref().into(),
            c.enabled.into(),
            c.updated_at.into(),
            c.id.as_str().into(),
        ],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// The connection with this id.
pub fn get(db: &dyn SqlStore, id: &str) -> Result<Option<Connection>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM connections WHERE id = ?"),
        &[id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Every connection, by id.
pub fn list(db: &dyn SqlStore) -> Result<Vec<Connection>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM connections ORDER BY id"),
        &[],
    )?
    .decode(decode)
}

/// The enabled operator connections (no `org_id`), by name: the login
/// page's buttons.
pub fn public(db: &dyn SqlStore) -> Result<Vec<Connection>> {
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM connections WHERE enabled = 1 AND org_id IS NULL ORDER BY name, id"
        ),
        &[],
    )?
    .decode(decode)
}

/// An organisation's connections, by id.
pub fn for_org(db: &dyn SqlStore, org_id: &str) -> Result<Vec<Connection>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM connections WHERE org_id = ? ORDER BY id"),
        &[org_id.into()],
    )?
    .decode(decode)
}

/// Deletes a connection; `false` when there was none. Its federated
/// identities stay: a connection re-created with the same id and issuer
/// signs the same people in again.
pub fn delete(db: &dyn SqlStore, id: &str) -> Result<bool> {
    let rows = db.execute(
        "DELETE FROM connections WHERE id = ? RETURNING id",
        &[id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// Deletes every connection of an organisation.
pub fn delete_for_org(db: &dyn SqlStore, org_id: &str) -> Result<()> {
    db.execute("DELETE FROM connections WHERE org_id = ?", &[org_id.into()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    fn sample(id: &str) -> Connection {
        Connection {
            id: id.into(),
            kind: Kind::Oidc,
            name: "Example".into(),
            issuer: Some("https://op.example".into()),
            client_id: "cid".into(),
            secret_variable: Some("example_secret".into()),
            scopes: vec!["openid".into(), "email".into()],
            settings: Settings {
                mapping: [("name".to_owned(), "name".to_owned())].into(),
                ..Settings::default()
            },
            trusted_email: false,
            org_id: None,
            default_role: None,
            enabled: true,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn round_trip_and_unique_ids() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        let c = sample("example");
        assert!(insert(&db, &c).unwrap());
        assert!(!insert(&db, &c).unwrap(), "the id is taken");
        assert_eq!(get(&db, "example").unwrap().unwrap(), c);
        let mut changed = c.clone();
        changed.name = "Renamed".into();
        changed.org_id = Some("org_x".into());
        changed.updated_at = 2;
        let stored = update(&db, &changed).unwrap().unwrap();
        assert_eq!(stored.name, "Renamed");
        assert_eq!(stored.org_id, None, "the owner never changes");
        assert_eq!(public(&db).unwrap().len(), 1);
        let mut org = sample("acme-sso");
        org.org_id = Some("org_a".into());
        insert(&db, &org).unwrap();
        assert_eq!(
            public(&db).unwrap().len(),
            1,
            "organisation connections are not public"
        );
        assert_eq!(for_org(&db, "org_a").unwrap(), [org]);
        assert_eq!(list(&db).unwrap().len(), 2);
        assert!(delete(&db, "example").unwrap());
        assert!(!delete(&db, "example").unwrap());
        delete_for_org(&db, "org_a").unwrap();
        assert!(list(&db).unwrap().is_empty());
        assert!(update(&db, &c).unwrap().is_none());
    }

    #[test]
    fn kinds_and_settings_json() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("saml"), None);
        let json = serde_json::to_value(sample("x")).unwrap();
        assert_eq!(json["scopes"], "openid email");
        assert_eq!(json["kind"], "oidc");
        assert_eq!(
            json["settings"],
            serde_json::json!({"mapping": {"name": "name"}})
        );
        assert!(serde_json::from_str::<Settings>(r#"{"typo": 1}"#).is_err());
    }
}
