//! Organisations' own connections (enterprise SSO, docs/social.md,
//! "Organisation connections"):
//!
//! - an organisation's admins register, change and remove its OpenID
//!   provider ([`create`], [`update`], [`delete`]); every change is in the
//!   organisation's audit log;
//! - home-realm discovery ([`discover`]): an email whose domain an
//!   organisation has proven ([`super::domains`]) is offered that
//!   organisation's connection; the answer depends on the domain only,
//!   never on whether an account exists;
//! - just-in-time membership ([`after_sign_in`]): whoever signs in through
//!   an organisation's connection becomes a member with its `default_role`.
//!
//! The client secret is never stored: `secret_variable` names a Spin
//! variable that the operator declared for the social component and
//! granted to the organisation in `org_secret_variables`
//! (`<org id>=<variable>` pairs), so that no organisation can have another
//! organisation's secret, or Lanyard's own, sent to its provider.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{Connection, Kind, Settings};
use crate::Env;
use crate::config;
use crate::crypto;
use crate::error::{Error, Result};
use crate::orgs::{self, Access, Level};
use crate::store::{SqlStore, connections, domain_claims, memberships, organisations};

/// The variable in which the operator grants secret variables to
/// organisations: `<org id>=<variable>` pairs, separated by commas or spaces.
pub const GRANTS_VARIABLE: &str = "org_secret_variables";

/// The scopes asked for when the admin names none.
pub const DEFAULT_SCOPES: &str = "openid email profile";

/// What an organisation's admin sends to register (or, whole, to change)
/// its connection. Only `kind` `oidc` is offered to organisations.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The id, `org-<slug>-…` (3–40 of `a-z 0-9 -`); generated when absent.
    /// Ignored by [`update`], which keeps the id of the path.
    pub id: Option<String>,
    /// `oidc`, the only kind an organisation may register.
    pub kind: Option<String>,
    /// The name on the button; the organisation's name when absent.
    pub name: Option<String>,
    /// The provider's issuer (its discovery base), `https`.
    pub issuer: String,
    /// Lanyard's client id at the provider.
    pub client_id: String,
    /// The Spin variable holding the client secret, granted to this
    /// organisation by the operator (required).
    pub secret_variable: Option<String>,
    /// Space-separated scopes, with `openid`; [`DEFAULT_SCOPES`] when absent.
    pub scopes: Option<String>,
    /// `member` (the default) or `admin`: the role of people who join the
    /// organisation by signing in through it.
    pub default_role: Option<String>,
    /// Whether people may sign in with it (default true).
    pub enabled: Option<bool>,
    /// Lanyard attribute → upstream claim, for new accounts.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
}

/// The organisation's connections (admins).
pub fn list(db: &dyn SqlStore, access: &Access) -> Result<Vec<Connection>> {
    access.require(Level::Admin)?;
    connections::for_org(db, &access.org.id)
}

/// One of the organisation's connections (admins); another's is a 404.
pub fn get(db: &dyn SqlStore, access: &Access, id: &str) -> Result<Connection> {
    access.require(Level::Admin)?;
    own(db, access, id)
}

fn own(db: &dyn SqlStore, access: &Access, id: &str) -> Result<Connection> {
    connections::get(db, id)?
        .filter(|c| c.org_id.as_deref() == Some(access.org.id.as_str()))
        .ok_or(Error::NotFound)
}

/// Registers a connection of the organisation (admins).
pub fn create(env: &Env, access: &Access, spec: &Spec) -> Result<Connection> {
    access.require_to_change(Level::Admin)?;
    let id = match spec.id.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
        Some(id) => check_id(id, &access.org.slug)?,
        None => generated_id(&access.org.slug)?,
    };
    let conn = build(env, access, spec, id, env.now)?;
    if !connections::insert(env.sql, &conn)? {
        return Err(Error::Conflict(format!(
            "The connection id `{}` is taken. Choose another, or leave it out.",
            conn.id
        )));
    }
    orgs::record(
        env.sql,
        &access.org.id,
        env.now,
        access.actor(),
        "connection.created",
        Some(&conn.id),
        None,
        Some(&audit_json(&conn)),
    )?;
    Ok(conn)
}

/// Replaces a connection of the organisation (admins): everything but its
/// id, owner and creation time.
pub fn update(env: &Env, access: &Access, id: &str, spec: &Spec) -> Result<Connection> {
    access.require_to_change(Level::Admin)?;
    let before = own(env.sql, access, id)?;
    let mut conn = build(env, access, spec, before.id.clone(), env.now)?;
    conn.created_at = before.created_at;
    let after = connections::update(env.sql, &conn)?.ok_or(Error::NotFound)?;
    orgs::record(
        env.sql,
        &access.org.id,
        env.now,
        access.actor(),
        "connection.updated",
        Some(&after.id),
        Some(&audit_json(&before)),
        Some(&audit_json(&after)),
    )?;
    Ok(after)
}

/// Turns a connection of the organisation on or off (admins), keeping the
/// rest as it is.
pub fn set_enabled(env: &Env, access: &Access, id: &str, enabled: bool) -> Result<Connection> {
    access.require_to_change(Level::Admin)?;
    let c = own(env.sql, access, id)?;
    let spec = Spec {
        id: None,
        kind: Some(c.kind.as_str().to_owned()),
        name: Some(c.name),
        issuer: c.issuer.unwrap_or_default(),
        client_id: c.client_id,
        secret_variable: c.secret_variable,
        scopes: Some(c.scopes.join(" ")),
        default_role: c.default_role,
        enabled: Some(enabled),
        mapping: c.settings.mapping,
    };
    update(env, access, id, &spec)
}

/// Removes a connection of the organisation (admins). Its people keep
/// their accounts and memberships; domains that named it route to the
/// organisation's other connections.
pub fn delete(db: &dyn SqlStore, access: &Access, id: &str, now: i64) -> Result<()> {
    access.require_to_change(Level::Admin)?;
    let before = own(db, access, id)?;
    if !connections::delete(db, &before.id)? {
        return Err(Error::NotFound);
    }
    domain_claims::forget_connection(db, &access.org.id, &before.id)?;
    orgs::record(
        db,
        &access.org.id,
        now,
        access.actor(),
        "connection.deleted",
        Some(&before.id),
        Some(&audit_json(&before)),
        None,
    )
}

fn audit_json(c: &Connection) -> serde_json::Value {
    json!({
        "name": c.name,
        "issuer": c.issuer,
        "client_id": c.client_id,
        "secret_variable": c.secret_variable,
        "scopes": c.scopes.join(" "),
        "default_role": c.default_role,
        "enabled": c.enabled,
    })
}

/// Validates a spec into the organisation's connection with this id.
fn build(env: &Env, access: &Access, spec: &Spec, id: String, now: i64) -> Result<Connection> {
    if let Some(kind) = spec.kind.as_deref()
        && Kind::parse(kind) != Some(Kind::Oidc)
    {
        return Err(Error::bad_request(
            "An organisation's connection is an OpenID provider: kind must be oidc.",
        ));
    }
    let name = match spec.name.as_deref() {
        Some(n) => orgs::check_name(n, "connection name")?,
        None => access.org.name.clone(),
    };
    let dev_mode = config::Config::load(env.vars)?.dev_mode()?;
    let issuer = check_issuer(&spec.issuer, dev_mode)?;
    let client_id = spec.client_id.trim();
    if client_id.is_empty() || client_id.len() > 255 || client_id.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "Give the client id the provider gave Lanyard (1 to 255 characters).",
        ));
    }
    let secret_variable = match spec.secret_variable.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => check_secret_variable(env, &access.org.id, v)?,
        _ => {
            return Err(Error::bad_request(
                "Name the secret variable that holds the client secret: the operator sets one up for your organisation.",
            ));
        }
    };
    let scopes = check_scopes(spec.scopes.as_deref().unwrap_or(DEFAULT_SCOPES))?;
    let default_role = match spec.default_role.as_deref().unwrap_or("member") {
        r @ ("member" | "admin") => r.to_owned(),
        _ => {
            return Err(Error::bad_request("default_role must be member or admin."));
        }
    };
    for (attribute, claim) in &spec.mapping {
        let ok = |s: &str| {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !ok(attribute) || !ok(claim) {
            return Err(Error::bad_request(
                "mapping maps attribute names to claim names: 1 to 64 letters, digits, _, - or .",
            ));
        }
    }
    Ok(Connection {
        id,
        kind: Kind::Oidc,
        name,
        issuer: Some(issuer),
        client_id: client_id.to_owned(),
        secret_variable: Some(secret_variable),
        scopes,
        settings: Settings {
            mapping: spec.mapping.clone(),
            ..Settings::default()
        },
        // An organisation's provider may say anything about an address: it
        // never links to an existing account without that account's password.
        trusted_email: false,
        org_id: Some(access.org.id.clone()),
        default_role: Some(default_role),
        enabled: spec.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    })
}

/// Whether `id` is a connection id: 3–40 of `a-z 0-9 -`, not starting or
/// ending with `-`.
fn is_id(id: &str) -> bool {
    (3..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// The prefix of an organisation's connection ids: `org-<slug>-`.
fn prefix(slug: &str) -> String {
    format!("org-{slug}-")
}

/// A chosen id: a connection id starting with `org-<slug>-`, so that it
/// names its organisation (it is the ID token's `idp`) and never takes an
/// operator connection's name.
fn check_id(id: &str, slug: &str) -> Result<String> {
    let prefix = prefix(slug);
    if !is_id(id) || !id.starts_with(&prefix) || id.len() == prefix.len() {
        return Err(Error::bad_request(format!(
            "The connection id must be {prefix}… followed by lower-case letters, digits or hyphens, 40 characters in all; or leave it out."
        )));
    }
    Ok(id.to_owned())
}

/// `org-<slug>-` and six random characters (the slug shortened to fit 40).
fn generated_id(slug: &str) -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let random: String = crypto::random_bytes::<6>()?
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect();
    let room = 40 - "org-".len() - 1 - random.len();
    let short: String = slug.chars().take(room).collect();
    Ok(format!("org-{}-{random}", short.trim_end_matches('-')))
}

/// An issuer: an absolute `https` URL without query, fragment or user info
/// (`http` to localhost in `dev_mode`), kept as given but for a final `/`.
fn check_issuer(raw: &str, dev_mode: bool) -> Result<String> {
    let raw = raw.trim();
    let bad = || {
        Error::bad_request(
            "Give the provider's issuer, an https URL such as https://login.example.com (the one its /.well-known/openid-configuration names).",
        )
    };
    let url = Url::parse(raw).map_err(|_| bad())?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (dev_mode && local && url.scheme() == "http");
    if !scheme_ok
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
        || raw.len() > 512
    {
        return Err(bad());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// Scopes: space-separated, with `openid`, each printable ASCII without
/// quotes or backslashes, at most 20.
fn check_scopes(raw: &str) -> Result<Vec<String>> {
    let scopes: Vec<String> = raw.split_ascii_whitespace().map(str::to_owned).collect();
    let ok = scopes.iter().any(|s| s == "openid")
        && scopes.len() <= 20
        && scopes.iter().all(|s| {
            s.len() <= 100
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        });
    if !ok {
        return Err(Error::bad_request(
            "scopes are space-separated and include openid (for example \"openid email profile\").",
        ));
    }
    Ok(scopes)
}

/// A secret variable the operator granted to this organisation in
/// [`GRANTS_VARIABLE`].
fn check_secret_variable(env: &Env, org_id: &str, name: &str) -> Result<String> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let granted = valid
        && config::optional(env.vars, GRANTS_VARIABLE)?
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter_map(|pair| pair.split_once('='))
            .any(|(org, var)| org == org_id && var == name);
    if !granted {
        return Err(Error::bad_request(format!(
            "The secret variable `{name}` is not one the operator set up for this organisation. Ask the operator to declare a Spin variable holding your client secret and grant it to {org_id}."
        )));
    }
    Ok(name.to_owned())
}

/// Whether an organisation connection's `secret_variable` is still
/// granted to its organisation (an operator connection's always is): for
/// the sign-in to check before the secret is sent to the provider.
pub fn secret_granted(env: &Env, conn: &Connection) -> Result<bool> {
    match (&conn.org_id, &conn.secret_variable) {
        (Some(org_id), Some(name)) => Ok(check_secret_variable(env, org_id, name).is_ok()),
        _ => Ok(true),
    }
}

/// Where home-realm discovery sends someone who typed an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Realm {
    /// The address's domain is proven by an organisation with this enabled
    /// connection: offer "Continue with SSO".
    Sso(Box<Connection>),
    /// Anything else: the password form.
    Password,
}

/// Home-realm discovery: the connection of the organisation that proved
/// the email's domain, if it has an enabled one. Depends on the domain
/// alone, so it never tells whether an account exists.
pub fn discover(db: &dyn SqlStore, email: &str) -> Result<Realm> {
    let Some((_, domain)) = email.trim().rsplit_once('@') else {
        return Ok(Realm::Password);
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() || domain.len() > 253 {
        return Ok(Realm::Password);
    }
    let Some(id) = domain_claims::connection_for(db, &domain)? else {
        return Ok(Realm::Password);
    };
    Ok(connections::get(db, &id)?
        .filter(|c| c.enabled)
        .map_or(Realm::Password, |c| Realm::Sso(Box::new(c))))
}

/// Whether any proven domain routes to an enabled connection: the login
/// page asks for the email first only then.
pub fn any(db: &dyn SqlStore) -> Result<bool> {
    domain_claims::any_routed(db)
}

/// Just-in-time membership: after someone signed in through `conn`, an
/// organisation's connection, they are a member of the organisation with
/// the connection's `default_role` (`member` unless `admin`), unless they
/// are one already (whatever their role or status: a suspended member
/// stays suspended). Idempotent; the joining is in the audit log. A
/// connection without an organisation, or of a suspended or deleted one,
/// changes nothing.
pub fn after_sign_in(
    db: &dyn SqlStore,
    conn: &Connection,
    identity_id: &str,
    now: i64,
) -> Result<()> {
    let Some(org_id) = conn.org_id.as_deref() else {
        return Ok(());
    };
    if !organisations::by_id(db, org_id)?.is_some_and(|o| o.is_active()) {
        return Ok(());
    }
    let role = match conn.default_role.as_deref() {
        Some("admin") => "admin",
        _ => "member",
    };
    if memberships::insert(db, org_id, identity_id, role, None, now)? {
        orgs::record(
            db,
            org_id,
            now,
            identity_id,
            "member.joined",
            Some(identity_id),
            None,
            Some(&json!({ "role": role, "connection": conn.id })),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{self, Identity};
    use crate::orgs::{Policy, create_own, open};
    use crate::store::domain_claims::Claim;
    use crate::testkit::{self, World};

    const NOW: i64 = 1_700_000_000;

    fn verified(w: &World, email: &str) -> Identity {
        let who = testkit::person(&w.sql, email, NOW);
        identity::mark_verified(&w.sql, &who.id, NOW).unwrap();
        identity::by_id(&w.sql, &who.id).unwrap().unwrap()
    }

    /// `email` owns the organisation `slug`; their access.
    fn org(w: &World, email: &str, slug: &str) -> Access {
        let owner = verified(w, email);
        create_own(
            &w.sql,
            Policy { self_service: true },
            &owner,
            slug,
            slug,
            NOW,
        )
        .unwrap();
        open(&w.sql, slug, &owner).unwrap()
    }

    fn spec() -> Spec {
        Spec {
            issuer: "https://login.acme.test/".into(),
            client_id: "lanyard".into(),
            secret_variable: Some("sso_secret".into()),
            ..Spec::default()
        }
    }

    /// The operator grants `sso_secret` to the organisation (too).
    fn grant(w: &mut World, access: &Access) {
        let before = w.vars.get(GRANTS_VARIABLE).cloned().unwrap_or_default();
        let all = format!("{before} {}=sso_secret", access.org.id);
        w.set(GRANTS_VARIABLE, Some(&all));
    }

    fn actions(w: &World, access: &Access) -> Vec<String> {
        crate::orgs::audit(&w.sql, access, None, 50)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    /// A verified claim of `access`'s organisation on `domain`, written
    /// straight to the table (the DNS proof is `domains`' to test).
    fn proven(w: &World, access: &Access, domain: &str, connection_id: &str) {
        let c = Claim {
            domain: domain.into(),
            org_id: access.org.id.clone(),
            connection_id: Some(connection_id.into()),
            token: "t".into(),
            verified_at: None,
            created_at: NOW,
        };
        domain_claims::insert(&w.sql, &c).unwrap();
        domain_claims::verify(&w.sql, domain, &access.org.id, NOW)
            .unwrap()
            .unwrap();
    }

    #[test]
    fn admins_register_change_and_remove_their_connection() {
        let mut w = World::new();
        let acme = org(&w, "ada@acme.test", "acme");
        let c = {
            let env = w.env(NOW);
            // Without the operator's grant, no secret variable.
            assert!(matches!(
                create(&env, &acme, &spec()),
                Err(Error::BadRequest(_))
            ));
            let none = Spec {
                secret_variable: None,
                ..spec()
            };
            assert!(matches!(
                create(&env, &acme, &none),
                Err(Error::BadRequest(_))
            ));
            grant(&mut w, &acme);
            let env = w.env(NOW);
            let c = create(&env, &acme, &spec()).unwrap();
            assert!(
                c.id.starts_with("org-acme-") && c.id.len() == "org-acme-".len() + 6,
                "{}",
                c.id
            );
            assert_eq!(c.kind, Kind::Oidc);
            assert_eq!(c.name, "acme");
            assert_eq!(c.issuer.as_deref(), Some("https://login.acme.test"));
            assert_eq!(c.scopes.join(" "), DEFAULT_SCOPES);
            assert_eq!(c.org_id.as_deref(), Some(acme.org.id.as_str()));
            assert_eq!(c.default_role.as_deref(), Some("member"));
            assert!(c.enabled && !c.trusted_email);
            assert!(
                connections::public(&w.sql).unwrap().is_empty(),
                "not on the login page"
            );

            // A chosen id names the organisation.
            let chosen = Spec {
                id: Some("org-acme-okta".into()),
                default_role: Some("admin".into()),
                ..spec()
            };
            assert_eq!(create(&env, &acme, &chosen).unwrap().id, "org-acme-okta");
            assert!(matches!(
                create(&env, &acme, &chosen),
                Err(Error::Conflict(_))
            ));
            for id in ["google", "org-other-x", "org-acme-", "org-acme-UPPER"] {
                let bad = Spec {
                    id: Some(id.into()),
                    ..spec()
                };
                assert!(
                    matches!(create(&env, &acme, &bad), Err(Error::BadRequest(_))),
                    "{id}"
                );
            }
            // What an organisation may not register.
            let refused = [
                Spec {
                    kind: Some("github".into()),
                    ..spec()
                },
                Spec {
                    issuer: "http://login.acme.test".into(),
                    ..spec()
                },
                Spec {
                    issuer: "https://login.acme.test?x=1".into(),
                    ..spec()
                },
                Spec {
                    issuer: "not a url".into(),
                    ..spec()
                },
                Spec {
                    client_id: " ".into(),
                    ..spec()
                },
                Spec {
                    scopes: Some("email profile".into()),
                    ..spec()
                },
                Spec {
                    default_role: Some("owner".into()),
                    ..spec()
                },
                Spec {
                    secret_variable: Some("admin_token".into()),
                    ..spec()
                },
            ];
            for bad in refused {
                assert!(
                    matches!(create(&env, &acme, &bad), Err(Error::BadRequest(_))),
                    "{bad:?}"
                );
            }
            c
        };

        // A secret variable only when the operator granted it to Acme.
        w.set(
            GRANTS_VARIABLE,
            Some(&format!(
                "org_other=acme_secret, {}=acme_secret",
                acme.org.id
            )),
        );
        assert!(
            !secret_granted(&w.env(NOW), &c).unwrap(),
            "sso_secret taken back"
        );
        let env = w.env(NOW);
        let changed = update(
            &env,
            &acme,
            &c.id,
            &Spec {
                name: Some("Acme login".into()),
                secret_variable: Some("acme_secret".into()),
                ..spec()
            },
        )
        .unwrap();
        assert_eq!(changed.secret_variable.as_deref(), Some("acme_secret"));
        assert_eq!(
            (changed.name.as_str(), changed.created_at),
            ("Acme login", NOW)
        );
        assert!(secret_granted(&env, &changed).unwrap());
        let globex = org(&w, "gil@globex.test", "globex");
        let theft = Spec {
            secret_variable: Some("acme_secret".into()),
            ..spec()
        };
        assert!(matches!(
            create(&env, &globex, &theft),
            Err(Error::BadRequest(_))
        ));

        assert!(!set_enabled(&env, &acme, &c.id, false).unwrap().enabled);
        assert_eq!(list(&w.sql, &acme).unwrap().len(), 2);
        delete(&w.sql, &acme, &c.id, NOW).unwrap();
        assert!(matches!(
            delete(&w.sql, &acme, &c.id, NOW),
            Err(Error::NotFound)
        ));
        assert_eq!(list(&w.sql, &acme).unwrap().len(), 1);
        let log = actions(&w, &acme);
        for action in [
            "connection.created",
            "connection.updated",
            "connection.deleted",
        ] {
            assert!(log.contains(&action.to_owned()), "{action}: {log:?}");
        }
    }

    #[test]
    fn members_are_refused_and_other_organisations_see_nothing() {
        let mut w = World::new();
        let acme = org(&w, "ada@acme.test", "acme");
        grant(&mut w, &acme);
        let env = w.env(NOW);
        let c = create(&env, &acme, &spec()).unwrap();
        let bob = verified(&w, "bob@acme.test");
        memberships::insert(&w.sql, &acme.org.id, &bob.id, "member", None, NOW).unwrap();
        let as_bob = open(&w.sql, "acme", &bob).unwrap();
        assert!(matches!(list(&w.sql, &as_bob), Err(Error::Forbidden(_))));
        assert!(matches!(
            get(&w.sql, &as_bob, &c.id),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            create(&env, &as_bob, &spec()),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            update(&env, &as_bob, &c.id, &spec()),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            delete(&w.sql, &as_bob, &c.id, NOW),
            Err(Error::Forbidden(_))
        ));

        let globex = org(&w, "gil@globex.test", "globex");
        assert!(matches!(get(&w.sql, &globex, &c.id), Err(Error::NotFound)));
        assert!(matches!(
            update(&env, &globex, &c.id, &spec()),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            delete(&w.sql, &globex, &c.id, NOW),
            Err(Error::NotFound)
        ));
        assert!(list(&w.sql, &globex).unwrap().is_empty());
        let gil = identity::by_id(&w.sql, globex.actor()).unwrap().unwrap();
        assert!(matches!(open(&w.sql, "acme", &gil), Err(Error::NotFound)));
        assert!(connections::get(&w.sql, &c.id).unwrap().is_some());
    }

    #[test]
    fn home_realm_discovery_needs_a_proven_domain_and_a_connection() {
        let mut w = World::new();
        let acme = org(&w, "ada@acme.test", "acme");
        grant(&mut w, &acme);
        let env = w.env(NOW);
        // A claim, a connection, but not proven: the password.
        let c = create(&env, &acme, &spec()).unwrap();
        let claim = Claim {
            domain: "acme.test".into(),
            org_id: acme.org.id.clone(),
            connection_id: None,
            token: "t".into(),
            verified_at: None,
            created_at: NOW,
        };
        domain_claims::insert(&w.sql, &claim).unwrap();
        assert_eq!(discover(&w.sql, "x@acme.test").unwrap(), Realm::Password);
        // Proven: SSO, whether or not the person has an account, in any case.
        domain_claims::verify(&w.sql, "acme.test", &acme.org.id, NOW)
            .unwrap()
            .unwrap();
        let has_account = discover(&w.sql, "ada@acme.test").unwrap();
        let no_account = discover(&w.sql, "  Nobody@ACME.test ").unwrap();
        assert_eq!(has_account, Realm::Sso(Box::new(c.clone())));
        assert_eq!(has_account, no_account);
        // Unknown domains, public ones and garbage: the password.
        for email in [
            "x@other.test",
            "x@gmail.com",
            "no-at-sign",
            "x@",
            "x@sub.acme.test",
        ] {
            assert_eq!(discover(&w.sql, email).unwrap(), Realm::Password, "{email}");
        }
        // A disabled connection routes nowhere, nor a suspended organisation.
        set_enabled(&env, &acme, &c.id, false).unwrap();
        assert_eq!(discover(&w.sql, "x@acme.test").unwrap(), Realm::Password);
        set_enabled(&env, &acme, &c.id, true).unwrap();
        crate::orgs::set_active(&w.sql, &acme.org.id, false, NOW).unwrap();
        assert_eq!(discover(&w.sql, "x@acme.test").unwrap(), Realm::Password);
        assert!(!domain_claims::any_routed(&w.sql).unwrap());
        crate::orgs::set_active(&w.sql, &acme.org.id, true, NOW).unwrap();
        assert!(domain_claims::any_routed(&w.sql).unwrap());
        // A claim naming a connection routes to it.
        let okta = create(
            &env,
            &acme,
            &Spec {
                id: Some("org-acme-a".into()),
                ..spec()
            },
        )
        .unwrap();
        proven(&w, &acme, "eu.acme.test", &okta.id);
        assert_eq!(
            discover(&w.sql, "x@eu.acme.test").unwrap(),
            Realm::Sso(Box::new(okta.clone()))
        );
        // Removing it leaves the domain to the others.
        delete(&w.sql, &acme, &okta.id, NOW).unwrap();
        let Realm::Sso(left) = discover(&w.sql, "x@eu.acme.test").unwrap() else {
            panic!("still routed")
        };
        assert_eq!(left.id, c.id);
        // Deleting the organisation takes its connections and claims.
        crate::orgs::delete(&w.sql, &acme, NOW).unwrap();
        assert_eq!(discover(&w.sql, "x@acme.test").unwrap(), Realm::Password);
        assert_eq!(
            crate::store::count_rows(&w.sql, "domain_claims").unwrap(),
            0
        );
        assert_eq!(crate::store::count_rows(&w.sql, "connections").unwrap(), 0);
    }

    #[test]
    fn signing_in_through_the_connection_makes_a_member_once() {
        let mut w = World::new();
        let acme = org(&w, "ada@acme.test", "acme");
        grant(&mut w, &acme);
        let env = w.env(NOW);
        let member = create(&env, &acme, &spec()).unwrap();
        let admins = create(
            &env,
            &acme,
            &Spec {
                default_role: Some("admin".into()),
                ..spec()
            },
        )
        .unwrap();
        let joe = testkit::person(&w.sql, "joe@acme.test", NOW);
        after_sign_in(&w.sql, &member, &joe.id, NOW).unwrap();
        after_sign_in(&w.sql, &member, &joe.id, NOW + 1).unwrap();
        after_sign_in(&w.sql, &admins, &joe.id, NOW + 2).unwrap();
        let m = memberships::get(&w.sql, &acme.org.id, &joe.id)
            .unwrap()
            .unwrap();
        assert_eq!((m.role.as_str(), m.status.as_str()), ("member", "active"));
        let joined = actions(&w, &acme)
            .iter()
            .filter(|a| *a == "member.joined")
            .count();
        assert_eq!(joined, 1, "joined once");

        let kim = testkit::person(&w.sql, "kim@acme.test", NOW);
        after_sign_in(&w.sql, &admins, &kim.id, NOW).unwrap();
        let m = memberships::get(&w.sql, &acme.org.id, &kim.id)
            .unwrap()
            .unwrap();
        assert_eq!(m.role, "admin");

        // An owner signing in stays owner; an operator connection joins nobody.
        after_sign_in(&w.sql, &member, acme.actor(), NOW).unwrap();
        assert_eq!(
            open(
                &w.sql,
                "acme",
                &identity::by_id(&w.sql, acme.actor()).unwrap().unwrap()
            )
            .unwrap()
            .me
            .role,
            "owner"
        );
        let mut operator = member.clone();
        operator.org_id = None;
        let lee = testkit::person(&w.sql, "lee@acme.test", NOW);
        after_sign_in(&w.sql, &operator, &lee.id, NOW).unwrap();
        assert!(
            memberships::get(&w.sql, &acme.org.id, &lee.id)
                .unwrap()
                .is_none()
        );
        // Nor does a suspended organisation's.
        crate::orgs::set_active(&w.sql, &acme.org.id, false, NOW).unwrap();
        after_sign_in(&w.sql, &member, &lee.id, NOW).unwrap();
        assert!(
            memberships::get(&w.sql, &acme.org.id, &lee.id)
                .unwrap()
                .is_none()
        );
    }

    /// Signs in through `conn` at a fake provider as upstream `sub` with
    /// `email`: the start, the provider, the callback.
    fn sign_in_through(
        w: &World,
        http: &super::super::microsoft::fake::Http,
        conn: &Connection,
        key: &jwt_simple::prelude::ES256KeyPair,
        sub: &str,
        email: &str,
    ) -> Result<super::super::flow::Outcome> {
        use super::super::flow;
        use super::super::microsoft::fake;
        let issuer = conn.issuer.clone().unwrap();
        http.json(
            "GET",
            &format!("{issuer}/.well-known/openid-configuration"),
            &json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
            }),
        );
        http.json("GET", &format!("{issuer}/jwks"), &fake::jwks(key));
        let env = fake::env(w, http, NOW);
        let auth = crate::accounts::Auth::load(&w.vars).unwrap();
        let started = flow::start(&env, &auth, conn, Some("/orgs"), None, &Default::default())?;
        let url = Url::parse(&started.location).unwrap();
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        let id_token = fake::sign(
            key,
            json!({
                "iss": issuer, "aud": conn.client_id, "sub": sub, "nonce": param("nonce"),
                "iat": NOW, "exp": NOW + 600, "email": email, "email_verified": true,
            }),
        );
        http.json(
            "POST",
            &format!("{issuer}/token"),
            &json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token}),
        );
        let cookie = started
            .cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, cookie.parse().unwrap());
        let params = testkit::params(&[("state", &param("state")), ("code", "the-code")]);
        flow::callback(&env, &auth, &conn.id, &params, &headers)
    }

    #[test]
    fn a_first_sign_in_through_the_connection_joins_the_organisation() {
        use super::super::flow::Outcome;
        use super::super::microsoft::fake::Http;
        let mut w = World::new();
        let acme = org(&w, "ada@acme.test", "acme");
        grant(&mut w, &acme);
        w.set("sso_secret", Some("s3cret"));
        let conn = create(
            &w.env(NOW),
            &acme,
            &Spec {
                default_role: Some("admin".into()),
                ..spec()
            },
        )
        .unwrap();
        let http = Http::default();
        let key = jwt_simple::prelude::ES256KeyPair::generate().with_key_id("k1");
        let outcome = sign_in_through(&w, &http, &conn, &key, "u-1", "joe@acme.test").unwrap();
        assert!(matches!(outcome, Outcome::SignedIn { .. }), "{outcome:?}");
        let joe = identity::by_email(&w.sql, "joe@acme.test")
            .unwrap()
            .unwrap();
        let m = memberships::get(&w.sql, &acme.org.id, &joe.id)
            .unwrap()
            .unwrap();
        assert_eq!(m.role, "admin");
        // Again: still one membership, joined once.
        let again = sign_in_through(&w, &http, &conn, &key, "u-1", "joe@acme.test").unwrap();
        assert!(matches!(again, Outcome::SignedIn { .. }));
        let joined = actions(&w, &acme)
            .iter()
            .filter(|a| *a == "member.joined")
            .count();
        assert_eq!(joined, 1);

        // The operator takes the grant back: the secret is not sent.
        w.set(GRANTS_VARIABLE, None);
        let http = Http::default();
        let e = sign_in_through(&w, &http, &conn, &key, "u-2", "kim@acme.test").unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e}");
        assert!(
            http.sent("POST", &format!("{}/token", conn.issuer.clone().unwrap()))
                .is_empty()
        );
        assert!(
            identity::by_email(&w.sql, "kim@acme.test")
                .unwrap()
                .is_none()
        );
    }
}
