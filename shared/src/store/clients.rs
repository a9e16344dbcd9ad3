//! The `clients` table: registered applications. Lists are JSON arrays; the
//! secret is stored as SHA-256.

use serde_json::Value as Json;

use super::{Named, SqlStore, Value};
use crate::error::Result;

/// What an operator sets for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Display name.
    pub name: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// CORS origins.
    pub allowed_origins: Vec<String>,
    /// Skips consent.
    pub first_party: bool,
    /// ID-token signing algorithm.
    pub id_token_alg: String,
    /// Access-token signing algorithm.
    pub access_token_alg: String,
    /// Access-token lifetime, seconds.
    pub access_token_ttl: i64,
    /// Refresh idle lifetime, seconds.
    pub refresh_idle_ttl: i64,
    /// Refresh absolute lifetime, seconds.
    pub refresh_max_ttl: i64,
    /// Public keys of a `private_key_jwt` client.
    pub jwks: Option<Json>,
    /// Clients whose access tokens this one may introspect.
    pub resource_server_for: Vec<String>,
    /// Whether the client is a service organisations activate.
    pub b2b: bool,
    /// The role catalogue, a JSON array of `{name, description}`.
    pub roles: String,
    /// `self_service`, `approval` or `operator_only`.
    pub activation_policy: String,
    /// A b2b client that also serves people on their own ("just me").
    pub personal_use: bool,
    /// RFC 8693 exchanges, a JSON array of `{audience, scope}`.
    pub token_exchange: String,
    /// Where the client is told that a session ended.
    pub logout: Logout,
}

/// Where a client is told that a session in which it got tokens ended
/// (OpenID Connect Back-Channel and Front-Channel Logout 1.0), under the
/// names of their client metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Logout {
    /// Where Lanyard POSTs a logout token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// The client needs the `sid` in logout tokens.
    pub backchannel_logout_session_required: bool,
    /// What Lanyard's logout page loads in a hidden iframe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// The client needs `iss` and `sid` on that URI.
    pub frontchannel_logout_session_required: bool,
}

/// A stored client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The `client_id`.
    pub id: String,
    /// SHA-256 of its secret, for the secret methods.
    pub secret_hash: Option<String>,
    /// When it was registered.
    pub created_at: i64,
    /// Its settings.
    pub settings: Settings,
}

const COLUMNS: &str = "id, secret_hash, created_at, name, redirect_uris, post_logout_redirect_uris, grant_types, \
     scopes, allowed_origins, first_party, id_token_alg, access_token_alg, access_token_ttl, refresh_idle_ttl, \
     refresh_max_ttl, jwks, resource_server_for, b2b, roles, activation_policy, personal_use, \
     token_exchange, backchannel_logout_uri, backchannel_logout_session_required, \
     frontchannel_logout_uri, frontchannel_logout_session_required";

/// The settings columns, in the order of [`values`].
const SETTINGS: [&str; 23] = [
    "name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scopes",
    "allowed_origins",
    "first_party",
    "id_token_alg",
    "access_token_alg",
    "access_token_ttl",
    "refresh_idle_ttl",
    "refresh_max_ttl",
    "jwks",
    "resource_server_for",
    "b2b",
    "roles",
    "activation_policy",
    "personal_use",
    "token_exchange",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "frontchannel_logout_uri",
    "frontchannel_logout_session_required",
];

fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn json_list(v: &[String]) -> Value {
    Value::Text(serde_json::to_string(v).unwrap_or_else(|_| "[]".into()))
}

fn decode(r: &Named<'_>) -> Result<Record> {
    Ok(Record {
        id: r.string("id")?,
        secret_hash: r.opt_string("secret_hash")?,
        created_at: r.int("created_at")?,
        settings: Settings {
            name: r.string("name")?,
            redirect_uris: list(r.text("redirect_uris")?),
            post_logout_redirect_uris: list(r.text("post_logout_redirect_uris")?),
            grant_types: list(r.text("grant_types")?),
            scopes: list(r.text("scopes")?),
            allowed_origins: list(r.text("allowed_origins")?),
            first_party: r.bool("first_party")?,
            id_token_alg: r.string("id_token_alg")?,
            access_token_alg: r.string("access_token_alg")?,
            access_token_ttl: r.int("access_token_ttl")?,
            refresh_idle_ttl: r.int("refresh_idle_ttl")?,
            refresh_max_ttl: r.int("refresh_max_ttl")?,
            jwks: r
                .opt_string("jwks")?
                .and_then(|j| serde_json::from_str(&j).ok()),
            resource_server_for: list(r.text("resource_server_for")?),
            b2b: r.bool("b2b")?,
            roles: r.string("roles")?,
            activation_policy: r.string("activation_policy")?,
            personal_use: r.bool("personal_use")?,
            token_exchange: r.string("token_exchange")?,
            logout: Logout {
                backchannel_logout_uri: r.opt_string("backchannel_logout_uri")?,
                backchannel_logout_session_required: r
                    .bool("backchannel_logout_session_required")?,
                frontchannel_logout_uri: r.opt_string("frontchannel_logout_uri")?,
                frontchannel_logout_session_required: r
                    .bool("frontchannel_logout_session_required")?,
            },
        },
    })
}

fn values(s: &Settings) -> Vec<Value> {
    vec![
        s.name.as_str().into(),
        json_list(&s.redirect_uris),
        json_list(&s.post_logout_redirect_uris),
        json_list(&s.grant_types),
        json_list(&s.scopes),
        json_list(&s.allowed_origins),
        s.first_party.into(),
        s.id_token_alg.as_str().into(),
        s.access_token_alg.as_str().into(),
        s.access_token_ttl.into(),
        s.refresh_idle_ttl.into(),
        s.refresh_max_ttl.into(),
        s.jwks.as_ref().map(Json::to_string).into(),
        json_list(&s.resource_server_for),
        s.b2b.into(),
        s.roles.as_str().into(),
        s.activation_policy.as_str().into(),
        s.personal_use.into(),
        s.token_exchange.as_str().into(),
        s.logout.backchannel_logout_uri.as_deref().into(),
        s.logout.backchannel_logout_session_required.into(),
        s.logout.frontchannel_logout_uri.as_deref().into(),
        s.logout.frontchannel_logout_session_required.into(),
    ]
}

/// Registers a client unless its id is taken (`None` then), in one statement.
pub fn insert(
    db: &dyn SqlStore,
    id: &str,
    secret_hash: Option<&str>,
    settings: &Settings,
    now: i64,
) -> Result<Option<Record>> {
    let mut params = values(settings);
    params.extend([id.into(), secret_hash.into(), now.into(), now.into()]);
    let rows = db.execute(
        &format!(
            "INSERT INTO clients ({}, id, secret_hash, created_at, updated_at) VALUES ({}) \
             ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}",
            SETTINGS.join(", "),
            vec!["?"; params.len()].join(", ")
        ),
        &params,
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Replaces a client's settings; `None` when there is no such client.
pub fn update(
    db: &dyn SqlStore,
    id: &str,
    settings: &Settings,
    now: i64,
) -> Result<Option<Record>> {
    let assignments: Vec<String> = SETTINGS.iter().map(|c| format!("{c} = ?")).collect();
    let mut params = values(settings);
    params.extend([now.into(), id.into()]);
    let rows = db.execute(
        &format!(
            "UPDATE clients SET {}, updated_at = ? WHERE id = ? RETURNING {COLUMNS}",
            assignments.join(", ")
        ),
        &params,
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// A client by id.
pub fn get(db: &dyn SqlStore, id: &str) -> Result<Option<Record>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM clients WHERE id = ?"),
        &[id.into()],
    )?;
    rows.first().map(|r| decode(&r)).transpose()
}

/// Every client, by id.
pub fn all(db: &dyn SqlStore) -> Result<Vec<Record>> {
    db.execute(&format!("SELECT {COLUMNS} FROM clients ORDER BY id"), &[])?
        .decode(decode)
}

/// Whether any client lists this browser origin.
pub fn any_allows_origin(db: &dyn SqlStore, origin: &str) -> Result<bool> {
    // The LIKE narrows the rows; the JSON list decides.
    let rows = db.execute(
        "SELECT allowed_origins FROM clients WHERE allowed_origins LIKE ?",
        &[format!("%\"{origin}\"%").into()],
    )?;
    for r in rows.iter() {
        if list(r.text("allowed_origins")?).iter().any(|o| o == origin) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Deletes a client; `false` when there was none.
pub fn delete(db: &dyn SqlStore, id: &str) -> Result<bool> {
    let rows = db.execute(
        "DELETE FROM clients WHERE id = ? RETURNING id",
        &[id.into()],
    )?;
    Ok(!rows.is_empty())
}
