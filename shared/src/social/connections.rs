//! Connections as the operator's admin API (and an organisation's) writes
//! them: a [`ConnectionSpec`] validated into a [`Connection`], with the
//! presets of each kind (Google's issuer and trusted email, …).

use serde::{Deserialize, Deserializer};

use super::{Connection, Kind, Settings};
use crate::Env;
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::identity::{self, ProfileSchema};
use crate::store::connections;

/// A connection as the admin API receives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    /// 3–40 of `a-z 0-9 -` (POST only; PUT takes it from the path).
    #[serde(default)]
    pub id: Option<String>,
    /// `oidc`, `google`, `microsoft`, `apple` or `github`.
    pub kind: String,
    /// The button's name; the kind's name by default.
    #[serde(default)]
    pub name: Option<String>,
    /// The upstream issuer; preset for every kind but `oidc`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Lanyard's client id at the provider.
    pub client_id: String,
    /// The Spin variable that holds the secret.
    #[serde(default)]
    pub secret_variable: Option<String>,
    /// Scopes, a space-separated string or a list; the kind's by default.
    #[serde(default, deserialize_with = "scopes")]
    pub scopes: Option<Vec<String>>,
    /// Kind-specific settings.
    #[serde(default)]
    pub settings: Settings,
    /// Whether verified emails link to existing accounts; Google's default
    /// is on, every other kind's off (never for Microsoft).
    #[serde(default)]
    pub trusted_email: Option<bool>,
    /// Whether people may sign in with it (default on).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// For an organisation's connection: `member` or `admin`.
    #[serde(default)]
    pub default_role: Option<String>,
}

fn scopes<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        List(Vec<String>),
    }
    Ok(Option::<Either>::deserialize(d)?.map(|e| match e {
        Either::Text(t) => t.split_ascii_whitespace().map(str::to_owned).collect(),
        Either::List(l) => l,
    }))
}

/// A kind's defaults: name, issuer, scopes, trusted email.
struct Preset {
    name: &'static str,
    issuer: Option<&'static str>,
    scopes: &'static str,
    trusted_email: bool,
}

fn preset(kind: Kind) -> Preset {
    match kind {
        Kind::Oidc => Preset {
            name: "",
            issuer: None,
            scopes: "openid email profile",
            trusted_email: false,
        },
        Kind::Google => Preset {
            name: "Google",
            issuer: Some("https://accounts.google.com"),
            scopes: "openid email profile",
            trusted_email: true,
        },
        Kind::Microsoft => Preset {
            name: "Microsoft",
            issuer: Some("https://login.microsoftonline.com/common/v2.0"),
            scopes: "openid email profile",
            trusted_email: false,
        },
        Kind::Apple => Preset {
            name: "Apple",
            issuer: Some("https://appleid.apple.com"),
            scopes: "name email",
            trusted_email: false,
        },
        Kind::Github => Preset {
            name: "GitHub",
            issuer: Some("https://github.com"),
            scopes: "read:user user:email",
            trusted_email: false,
        },
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::bad_request(msg)
}

/// Whether `id` is 3–40 of `a-z 0-9 -`, not starting or ending with `-`.
pub fn valid_id(id: &str) -> bool {
    (3..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// Whether `name` can be a Spin variable's name.
fn valid_variable(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn short_text(value: &str, max: usize) -> bool {
    !value.trim().is_empty() && value.chars().count() <= max && !value.chars().any(char::is_control)
}

/// Checks an issuer URL: https (http only in `dev_mode` or on a loopback
/// host), no query, fragment or user info; without a trailing slash.
fn issuer_url(value: &str, dev_mode: bool) -> Result<String> {
    let url = url::Url::parse(value).map_err(|_| bad(format!("`issuer` is not a URL: {value}")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && (dev_mode || loopback));
    if !scheme_ok || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty()
    {
        return Err(bad(
            "`issuer` must be an https URL without query or fragment (http only on a loopback host or in dev_mode).",
        ));
    }
    // `{tenantid}` stays as it is (Microsoft's multi-tenant template).
    Ok(value.trim_end_matches('/').to_owned())
}

/// Validates a connection for `id` (owned by `org_id`, if any) into the
/// row to store, at `now`.
pub fn validate(
    env: &Env,
    spec: &ConnectionSpec,
    id: &str,
    org_id: Option<&str>,
) -> Result<Connection> {
    if !valid_id(id) {
        return Err(bad(
            "`id` must be 3 to 40 of a-z, 0-9 and -, not starting or ending with -.",
        ));
    }
    let kind = Kind::parse(&spec.kind).ok_or_else(|| {
        bad(format!(
            "`kind` must be one of {}.",
            Kind::ALL.map(Kind::as_str).join(", ")
        ))
    })?;
    let p = preset(kind);
    let dev_mode = Config::load(env.vars)?.dev_mode()?;
    let name = spec
        .name
        .clone()
        .or_else(|| (!p.name.is_empty()).then(|| p.name.to_owned()))
        .ok_or_else(|| bad("`name` is required: it is shown on the button."))?;
    if !short_text(&name, 64) {
        return Err(bad("`name` must be 1 to 64 printable characters."));
    }
    // Microsoft's issuer names the tenant, and GitHub Enterprise Server
    // lives at its own address; Google's and Apple's are fixed, except in
    // dev_mode, where a stand-in provider may play them.
    let own_issuer = matches!(kind, Kind::Microsoft | Kind::Github) || dev_mode;
    let issuer = match (spec.issuer.as_deref(), p.issuer) {
        (Some(given), Some(fixed)) if !own_issuer && given.trim_end_matches('/') != fixed => {
            return Err(bad(format!(
                "A {} connection's issuer is {fixed}: leave `issuer` out.",
                kind.as_str()
            )));
        }
        (Some(given), _) => issuer_url(given, dev_mode)?,
        (None, Some(fixed)) => fixed.to_owned(),
        (None, None) => return Err(bad("`issuer` is required for an oidc connection.")),
    };
    if kind == Kind::Microsoft
        && !issuer.starts_with("https://login.microsoftonline.com/")
        && !dev_mode
    {
        return Err(bad(
            "A microsoft connection's issuer is https://login.microsoftonline.com/<tenant>/v2.0 (or {tenantid} for common and organizations).",
        ));
    }
    if !short_text(&spec.client_id, 255) || spec.client_id.contains(char::is_whitespace) {
        return Err(bad(
            "`client_id` is required: the client id the provider gave you.",
        ));
    }
    let scopes = spec
        .scopes
        .clone()
        .unwrap_or_else(|| p.scopes.split(' ').map(str::to_owned).collect());
    let scope_ok = |s: &String| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    };
    if scopes.is_empty() || scopes.len() > 20 || !scopes.iter().all(scope_ok) {
        return Err(bad(
            "`scopes` must be 1 to 20 scope names, like \"openid email profile\".",
        ));
    }
    if matches!(kind, Kind::Oidc | Kind::Google | Kind::Microsoft)
        && !scopes.iter().any(|s| s == "openid")
    {
        return Err(bad("`scopes` must include openid for an OpenID provider."));
    }
    let secret_variable = spec.secret_variable.clone().ok_or_else(|| {
        bad("`secret_variable` is required: the Spin variable that holds the client secret.")
    })?;
    if !valid_variable(&secret_variable) {
        return Err(bad(
            "`secret_variable` must be a Spin variable name: a-z, 0-9 and _, starting with a letter.",
        ));
    }
    if config::optional(env.vars, &secret_variable)?.is_none() {
        return Err(bad(format!(
            "The variable `{secret_variable}` has no value in the social component. Declare it in spin.toml under [variables] ({secret_variable} = {{ default = \"\", secret = true }}) and [component.social.variables] ({secret_variable} = \"{{{{ {secret_variable} }}}}\"), then set it (SPIN_VARIABLE_{}).",
            secret_variable.to_ascii_uppercase()
        )));
    }
    let schema = ProfileSchema::load(env.vars)?;
    for (attribute, claim) in &spec.settings.mapping {
        if !schema.0.iter().any(|a| &a.name == attribute) && !identity::is_standard_claim(attribute)
        {
            return Err(bad(format!(
                "`settings.mapping` maps `{attribute}`, which is neither an attribute of profile_schema nor a standard claim."
            )));
        }
        if !short_text(claim, 64) {
            return Err(bad(format!(
                "`settings.mapping.{attribute}` must name an upstream claim."
            )));
        }
    }
    if !spec.settings.tenants.is_empty() && kind != Kind::Microsoft {
        return Err(bad("`settings.tenants` is for microsoft connections only."));
    }
    if spec
        .settings
        .tenants
        .iter()
        .any(|t| !short_text(t, 64) || t.contains(char::is_whitespace))
    {
        return Err(bad("`settings.tenants` must be tenant ids."));
    }
    let apple_id = |v: &Option<String>| {
        v.as_deref().is_some_and(|v| {
            v.len() == 10
                && v.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
    };
    if kind == Kind::Apple && !(apple_id(&spec.settings.team_id) && apple_id(&spec.settings.key_id))
    {
        return Err(bad(
            "An apple connection needs `settings.team_id` and `settings.key_id` (10 letters and digits each, from Apple's developer account).",
        ));
    }
    if kind != Kind::Apple && (spec.settings.team_id.is_some() || spec.settings.key_id.is_some()) {
        return Err(bad(
            "`settings.team_id` and `settings.key_id` are for apple connections only.",
        ));
    }
    let trusted_email = spec.trusted_email.unwrap_or(p.trusted_email);
    if trusted_email && kind == Kind::Microsoft {
        return Err(bad(
            "A microsoft connection's email is never trusted for linking: leave trusted_email out or false.",
        ));
    }
    let default_role = match (org_id, spec.default_role.as_deref()) {
        (None, Some(_)) => {
            return Err(bad(
                "`default_role` is for an organisation's connection only.",
            ));
        }
        (Some(_), None) => Some("member".to_owned()),
        (Some(_), Some(r @ ("member" | "admin"))) => Some(r.to_owned()),
        (Some(_), Some(_)) => return Err(bad("`default_role` must be member or admin.")),
        (None, None) => None,
    };
    Ok(Connection {
        id: id.to_owned(),
        kind,
        name: name.trim().to_owned(),
        issuer: Some(issuer),
        client_id: spec.client_id.clone(),
        secret_variable: Some(secret_variable),
        scopes,
        settings: spec.settings.clone(),
        trusted_email,
        org_id: org_id.map(str::to_owned),
        default_role,
        enabled: spec.enabled.unwrap_or(true),
        created_at: env.now,
        updated_at: env.now,
    })
}

/// Creates an operator connection.
pub fn create(env: &Env, spec: &ConnectionSpec) -> Result<Connection> {
    let id = spec
        .id
        .as_deref()
        .ok_or_else(|| bad("`id` is required: it is part of the callback URL."))?;
    let c = validate(env, spec, id, None)?;
    if !connections::insert(env.sql, &c)? {
        return Err(Error::Conflict(format!(
            "A connection `{id}` exists already."
        )));
    }
    Ok(c)
}

/// Replaces an operator connection.
pub fn update(env: &Env, id: &str, spec: &ConnectionSpec) -> Result<Connection> {
    if spec.id.as_deref().is_some_and(|given| given != id) {
        return Err(bad("`id` cannot change."));
    }
    let existing = connections::get(env.sql, id)?
        .filter(|c| c.org_id.is_none())
        .ok_or(Error::NotFound)?;
    let c = validate(env, spec, id, None)?;
    connections::update(
        env.sql,
        &Connection {
            created_at: existing.created_at,
            ..c
        },
    )?
    .ok_or(Error::NotFound)
}

/// An operator connection.
pub fn get(env: &Env, id: &str) -> Result<Connection> {
    connections::get(env.sql, id)?
        .filter(|c| c.org_id.is_none())
        .ok_or(Error::NotFound)
}

/// Every operator connection.
pub fn list(env: &Env) -> Result<Vec<Connection>> {
    Ok(connections::list(env.sql)?
        .into_iter()
        .filter(|c| c.org_id.is_none())
        .collect())
}

/// Deletes an operator connection. People linked through it keep their
/// links: re-created with the same id and issuer, it signs them in again.
pub fn delete(env: &Env, id: &str) -> Result<()> {
    get(env, id)?;
    if connections::delete(env.sql, id)? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// The login page's buttons: (id, name) of each enabled operator
/// connection.
pub fn buttons(env: &Env) -> Result<Vec<(String, String)>> {
    Ok(connections::public(env.sql)?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::World;

    fn spec(kind: &str, issuer: Option<&str>, secret: &str) -> ConnectionSpec {
        ConnectionSpec {
            kind: kind.into(),
            issuer: issuer.map(str::to_owned),
            client_id: "lanyard".into(),
            secret_variable: Some(secret.into()),
            settings: if kind == "apple" {
                Settings {
                    team_id: Some("TEAM123456".into()),
                    key_id: Some("KEY1234567".into()),
                    ..Settings::default()
                }
            } else {
                Settings::default()
            },
            ..ConnectionSpec::default()
        }
    }

    #[test]
    fn fixed_issuers_stay_fixed_outside_dev_mode_and_github_may_be_a_server() {
        let mut w = World::with(&[
            ("dev_mode", "false"),
            ("google_client_secret", "s"),
            ("apple_private_key", "k"),
            ("github_client_secret", "s"),
        ]);
        let env = w.env(1);
        let check = |kind: &str, issuer: Option<&str>, secret: &str| {
            validate(&env, &spec(kind, issuer, secret), "conn", None)
        };
        assert!(
            check(
                "google",
                Some("https://idp.example"),
                "google_client_secret"
            )
            .is_err()
        );
        assert!(check("apple", Some("https://idp.example"), "apple_private_key").is_err());
        let google = check("google", None, "google_client_secret");
        assert!(google.is_ok(), "{google:?}");
        let ghes = check(
            "github",
            Some("https://git.example.com"),
            "github_client_secret",
        );
        assert_eq!(
            ghes.map(|c| c.issuer).ok().flatten().as_deref(),
            Some("https://git.example.com")
        );
        w.set("dev_mode", Some("true"));
        let env = w.env(1);
        let fake = validate(
            &env,
            &spec(
                "google",
                Some("https://idp.example"),
                "google_client_secret",
            ),
            "conn",
            None,
        );
        assert_eq!(
            fake.map(|c| c.issuer).ok().flatten().as_deref(),
            Some("https://idp.example"),
            "in dev_mode a stand-in plays Google"
        );
    }
}
