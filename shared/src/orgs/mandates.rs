//! Mandates (docs/mandates.md): organisation A lets organisation B, or one
//! named person, act for it on a service it has activated, with roles of
//! that service on the whole of it or one project, for a limited time.
//!
//! A's admins offer and revoke; B's admins accept, choose who may use it,
//! and revoke; a named person accepts through a mailed link and may revoke.
//! Nothing of A is opened to B beyond the mandates between them. Every
//! change is written to both organisations' audit logs. Whether a mandate
//! works at sign-in and refresh is decided at token time
//! (`store::org_access`).

use serde::Serialize;
use serde_json::{Value as Json, json};

use super::{Access, Level, OPERATOR, check_name, record};
use crate::Env;
use crate::accounts::Auth;
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::{self, Identity};
use crate::mail::{self, Mail};
use crate::oidc::clients;
use crate::store::mandate_templates::{self, Template};
use crate::store::mandates::{self as store, Mandate};
use crate::store::organisations::{self, Organisation};
use crate::store::{SqlStore, mandate_delegates, memberships, projects, settings};
use crate::throttle;

/// The setting that limits a mandate's validity, in days.
const MAX_DAYS_KEY: &str = "mandate_max_days";
/// The limit when the operator set none.
pub const DEFAULT_MAX_DAYS: i64 = 365;
const DAY: i64 = 86_400;
/// The most roles one mandate may carry.
const MAX_ROLES: usize = 50;

/// What A's admin offers.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// B, by slug or id.
    pub agent_org: Option<String>,
    /// Or a person, by email.
    pub agent_email: Option<String>,
    /// The service (from the template when one is named).
    pub client_id: Option<String>,
    /// A project of it.
    pub project_id: Option<String>,
    /// Roles of its catalogue (from the template when one is named).
    pub roles: Option<Vec<String>>,
    /// From when (default: now).
    pub not_before: Option<i64>,
    /// Until when (default: the template's days, or the operator's limit).
    pub expires_at: Option<i64>,
    /// An operator template.
    pub template_id: Option<String>,
}

/// An organisation as a mandate shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OrgRef {
    /// `org_…`.
    pub id: String,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
}

impl From<&Organisation> for OrgRef {
    fn from(o: &Organisation) -> Self {
        OrgRef {
            id: o.id.clone(),
            slug: o.slug.clone(),
            name: o.name.clone(),
        }
    }
}

/// A mandate as people and the API see it.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// `mnd_…`.
    pub id: String,
    /// `offered`, `accepted`, `revoked` or `expired`.
    pub state: String,
    /// A.
    pub principal: Option<OrgRef>,
    /// B or the person: `{"org": …, "email": …}`.
    pub agent: Json,
    /// The service.
    pub client_id: String,
    /// The project, or empty.
    pub project_id: String,
    /// The roles it grants.
    pub roles: Vec<String>,
    /// From when.
    pub not_before: i64,
    /// Until when.
    pub expires_at: i64,
    /// Every active member of B may use it.
    pub all_members: bool,
    /// The members of B designated to use it.
    pub delegates: Vec<String>,
    /// The template it came from.
    pub template_id: Option<String>,
}

fn view(db: &dyn SqlStore, m: Mandate, now: i64) -> Result<View> {
    let principal = organisations::by_id(db, &m.principal_org_id)?.map(|o| OrgRef::from(&o));
    let agent_org = match &m.agent_org_id {
        Some(id) => organisations::by_id(db, id)?.map(|o| OrgRef::from(&o)),
        None => None,
    };
    let delegates = if m.agent_org_id.is_some() {
        mandate_delegates::list(db, &m.id)?
    } else {
        Vec::new()
    };
    Ok(View {
        state: m.state_at(now).to_owned(),
        agent: json!({ "org": agent_org, "email": m.agent_email }),
        id: m.id,
        principal,
        client_id: m.client_id,
        project_id: m.project_id,
        roles: m.roles,
        not_before: m.not_before,
        expires_at: m.expires_at,
        all_members: m.all_members,
        delegates,
        template_id: m.template_id,
    })
}

/// The operator's limit on a mandate's validity, in days.
pub fn max_days(db: &dyn SqlStore) -> Result<i64> {
    Ok(settings::get(db, MAX_DAYS_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_DAYS))
}

/// The operator sets the limit, 1 to 365 days.
pub fn set_max_days(db: &dyn SqlStore, days: i64, now: i64) -> Result<()> {
    if !(1..=365).contains(&days) {
        return Err(Error::bad_request(
            "mandate_max_days must be from 1 to 365.",
        ));
    }
    settings::set(db, MAX_DAYS_KEY, &days.to_string(), now)
}

/// Checks roles against a service's catalogue: 1 to 50, known, no repeats.
fn check_roles(client: &clients::Client, roles: &[String]) -> Result<Vec<String>> {
    if roles.is_empty() || roles.len() > MAX_ROLES {
        return Err(Error::bad_request(format!(
            "A mandate grants 1 to {MAX_ROLES} roles."
        )));
    }
    if let Some(bad) = roles.iter().find(|r| !client.role_defined(r)) {
        return Err(Error::bad_request(format!(
            "{} has no role “{bad}”.",
            client.name
        )));
    }
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// The operator adds a template.
pub fn create_template(
    db: &dyn SqlStore,
    name: &str,
    client_id: &str,
    roles: &[String],
    days: i64,
    now: i64,
) -> Result<Template> {
    let name = check_name(name, "template name")?;
    let client = clients::get(db, client_id)?
        .filter(|c| c.b2b)
        .ok_or_else(|| Error::bad_request(format!("There is no service “{client_id}”.")))?;
    let roles = check_roles(&client, roles)?;
    if !(1..=365).contains(&days) {
        return Err(Error::bad_request("days must be from 1 to 365."));
    }
    let t = Template {
        id: format!("tpl_{}", crypto::random_id()?),
        name,
        client_id: client_id.to_owned(),
        roles,
        days,
        created_at: now,
    };
    mandate_templates::insert(db, &t)?;
    Ok(t)
}

/// Every template.
pub fn templates(db: &dyn SqlStore) -> Result<Vec<Template>> {
    mandate_templates::list(db)
}

/// The operator deletes a template (mandates made from it stay).
pub fn delete_template(db: &dyn SqlStore, id: &str) -> Result<()> {
    if mandate_templates::delete(db, id)? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// Writes an entry to A's and (for an organisation agent) B's audit logs.
fn audit_both(
    db: &dyn SqlStore,
    m: &Mandate,
    now: i64,
    actor: &str,
    action: &str,
    before: Option<&Json>,
    after: Option<&Json>,
) -> Result<()> {
    record(
        db,
        &m.principal_org_id,
        now,
        actor,
        action,
        Some(&m.id),
        before,
        after,
    )?;
    if let Some(b) = &m.agent_org_id {
        record(db, b, now, actor, action, Some(&m.id), before, after)?;
    }
    Ok(())
}

fn summary(m: &Mandate) -> Json {
    json!({
        "agent_org": m.agent_org_id, "agent_email": m.agent_email, "client_id": m.client_id,
        "project_id": m.project_id, "roles": m.roles, "not_before": m.not_before,
        "expires_at": m.expires_at,
    })
}

/// A's admin offers a mandate. Everything is checked before it is stored;
/// a named person is mailed a link to accept it.
pub fn offer(env: &Env, auth: &Auth, a: &Access, ask: &Offer) -> Result<View> {
    a.require_to_change(Level::Admin)?;
    let db = env.sql;
    let now = env.now;
    let template = match &ask.template_id {
        Some(id) => Some(
            mandate_templates::get(db, id)?
                .ok_or_else(|| Error::bad_request(format!("There is no template “{id}”.")))?,
        ),
        None => None,
    };
    let client_id = ask
        .client_id
        .clone()
        .or_else(|| template.as_ref().map(|t| t.client_id.clone()))
        .ok_or_else(|| Error::bad_request("Name the service (client_id)."))?;
    if let Some(t) = &template
        && t.client_id != client_id
    {
        return Err(Error::bad_request("The template is for another service."));
    }
    let client = super::services::active_service(db, a, &client_id)?;
    let roles = ask
        .roles
        .clone()
        .or_else(|| template.as_ref().map(|t| t.roles.clone()))
        .ok_or_else(|| Error::bad_request("Name the roles the mandate grants."))?;
    let roles = check_roles(&client, &roles)?;
    let project_id = ask.project_id.clone().unwrap_or_default();
    if !project_id.is_empty() {
        let p = projects::get(db, &a.org.id, &project_id)?;
        if p.is_none_or(|p| p.client_id != client_id) {
            return Err(Error::bad_request(format!(
                "There is no project “{project_id}” of {} here.",
                client.name
            )));
        }
    }
    // The agent: exactly one of an organisation and a person.
    let (agent_org, agent_email) = match (&ask.agent_org, &ask.agent_email) {
        (Some(b), None) => {
            let b = organisations::by_slug(db, b)?
                .or(organisations::by_id(db, b)?)
                .ok_or_else(|| Error::bad_request(format!("There is no organisation “{b}”.")))?;
            if b.id == a.org.id {
                return Err(Error::bad_request(
                    "An organisation acts for itself through membership, not a mandate.",
                ));
            }
            (Some(b), None)
        }
        (None, Some(email)) => (None, Some(identity::normalise_email(email)?)),
        _ => {
            return Err(Error::bad_request(
                "Name the agent: agent_org (an organisation) or agent_email (a person), not both.",
            ));
        }
    };
    // The validity: within the operator's limit and the template's days.
    let limit_days = max_days(db)?.min(template.as_ref().map_or(i64::MAX, |t| t.days));
    let not_before = ask.not_before.unwrap_or(now);
    let expires_at = ask.expires_at.unwrap_or(not_before + limit_days * DAY);
    if expires_at <= not_before || expires_at <= now {
        return Err(Error::bad_request(
            "expires_at must be after not_before and in the future.",
        ));
    }
    if expires_at - not_before > limit_days * DAY {
        return Err(Error::bad_request(format!(
            "A mandate lasts at most {limit_days} days here."
        )));
    }
    if let Some(email) = &agent_email {
        throttle::reserve(
            db,
            &throttle::recipient_key(email),
            &auth.limits()?.recipient,
            now,
        )?;
    }
    let m = Mandate {
        id: format!("mnd_{}", crypto::random_id()?),
        principal_org_id: a.org.id.clone(),
        agent_org_id: agent_org.as_ref().map(|b| b.id.clone()),
        agent_email: agent_email.clone(),
        agent_identity_id: None,
        client_id,
        project_id,
        roles,
        template_id: template.map(|t| t.id),
        not_before,
        expires_at,
        state: "offered".into(),
        all_members: false,
        created_by: a.actor().to_owned(),
        created_at: now,
        accepted_by: None,
        revoked_by: None,
    };
    let token = match &agent_email {
        Some(_) => Some(crypto::random_token()?),
        None => None,
    };
    store::insert(db, &m, token.as_deref().map(crypto::hash_secret).as_deref())?;
    if let (Some(email), Some(token)) = (&agent_email, &token) {
        let mail = Mail::mandate(&auth.config, email, &a.org.name, &client.name, token)?;
        mail::send(env, &auth.config, &mail)?;
    }
    audit_both(
        db,
        &m,
        now,
        a.actor(),
        "mandate.offered",
        None,
        Some(&summary(&m)),
    )?;
    view(db, m, now)
}

/// The mandates an organisation gave and received. Admins see all; members
/// see the received ones they may use.
pub fn list(db: &dyn SqlStore, access: &Access, now: i64) -> Result<(Vec<View>, Vec<View>)> {
    let admin = access.level() >= Level::Admin;
    let given = if admin {
        store::given(db, &access.org.id)?
    } else {
        Vec::new()
    };
    let mut received = Vec::new();
    for m in store::received(db, &access.org.id)? {
        let usable = m.all_members
            || mandate_delegates::list(db, &m.id)?
                .iter()
                .any(|d| d == access.actor());
        if admin || usable {
            received.push(m);
        }
    }
    Ok((
        given
            .into_iter()
            .map(|m| view(db, m, now))
            .collect::<Result<_>>()?,
        received
            .into_iter()
            .map(|m| view(db, m, now))
            .collect::<Result<_>>()?,
    ))
}

/// A mandate between the caller's organisation and another, as either
/// side: 404 for anything else.
fn between(db: &dyn SqlStore, access: &Access, id: &str) -> Result<Mandate> {
    store::get(db, id)?
        .filter(|m| {
            m.principal_org_id == access.org.id
                || m.agent_org_id.as_deref() == Some(access.org.id.as_str())
        })
        .ok_or(Error::NotFound)
}

/// Checks that every designated person is an active member of B.
fn check_delegates(db: &dyn SqlStore, b: &Access, subs: &[String]) -> Result<Vec<String>> {
    if subs.len() > 1000 {
        return Err(Error::bad_request("At most 1000 delegates."));
    }
    for s in subs {
        let active = memberships::get(db, &b.org.id, s)?.is_some_and(|m| m.status == "active");
        if !active {
            return Err(Error::bad_request(format!(
                "“{s}” is not an active member of {}.",
                b.org.name
            )));
        }
    }
    let mut subs = subs.to_vec();
    subs.sort();
    subs.dedup();
    Ok(subs)
}

/// B's admin accepts an offered mandate and chooses who may use it. The
/// acceptance is claimed first, in one conditional statement, so that of
/// racing acceptances only the one that wins stores its delegates (until
/// then, only members designated earlier may use it).
pub fn accept(
    db: &dyn SqlStore,
    b: &Access,
    id: &str,
    all_members: bool,
    delegates: &[String],
    now: i64,
) -> Result<View> {
    b.require_to_change(Level::Admin)?;
    let m = between(db, b, id)?;
    if m.agent_org_id.as_deref() != Some(b.org.id.as_str()) {
        return Err(Error::Forbidden(
            "Only the organisation that receives a mandate accepts it.".into(),
        ));
    }
    if m.state_at(now) != "offered" {
        return Err(Error::Conflict(format!(
            "This mandate is {} and cannot be accepted.",
            m.state_at(now)
        )));
    }
    let delegates = check_delegates(db, b, delegates)?;
    let Some(m) = store::accept_by_org(db, &m.id, &b.org.id, b.actor(), all_members, now)? else {
        return Err(Error::Conflict(format!(
            "This mandate is {} and cannot be accepted.",
            m.state_at(now)
        )));
    };
    mandate_delegates::replace(db, &m.id, &delegates, b.actor(), now)?;
    audit_both(
        db,
        &m,
        now,
        b.actor(),
        "mandate.accepted",
        Some(&json!({ "state": "offered" })),
        Some(&json!({ "state": "accepted", "all_members": all_members, "delegates": delegates })),
    )?;
    view(db, m, now)
}

/// B's admin changes who may use an accepted (or offered) mandate.
pub fn set_delegates(
    db: &dyn SqlStore,
    b: &Access,
    id: &str,
    all_members: bool,
    delegates: &[String],
    now: i64,
) -> Result<View> {
    b.require_to_change(Level::Admin)?;
    let m = between(db, b, id)?;
    if m.agent_org_id.as_deref() != Some(b.org.id.as_str()) {
        return Err(Error::Forbidden(
            "Only the organisation that receives a mandate chooses who uses it.".into(),
        ));
    }
    let delegates = check_delegates(db, b, delegates)?;
    let before = json!({
        "all_members": m.all_members, "delegates": mandate_delegates::list(db, &m.id)?,
    });
    // Two statements, ordered so that two admins changing this at once
    // leave one of their choices, never "everyone" when the last meant a
    // list: opening to all sets the flag before the list, narrowing sets
    // the list before clearing the flag.
    if all_members {
        store::set_all_members(db, &m.id, true)?;
        mandate_delegates::replace(db, &m.id, &delegates, b.actor(), now)?;
    } else {
        mandate_delegates::replace(db, &m.id, &delegates, b.actor(), now)?;
        store::set_all_members(db, &m.id, false)?;
    }
    audit_both(
        db,
        &m,
        now,
        b.actor(),
        "mandate.delegates_changed",
        Some(&before),
        Some(&json!({ "all_members": all_members, "delegates": delegates })),
    )?;
    let m = store::get(db, &m.id)?.ok_or(Error::NotFound)?;
    view(db, m, now)
}

/// A's or B's admin revokes a mandate.
pub fn revoke(db: &dyn SqlStore, access: &Access, id: &str, now: i64) -> Result<()> {
    access.require(Level::Admin)?;
    let m = between(db, access, id)?;
    end(db, &m, access.actor(), now)
}

fn end(db: &dyn SqlStore, m: &Mandate, actor: &str, now: i64) -> Result<()> {
    if !store::revoke(db, &m.id, actor, now)? {
        return Err(Error::Conflict("This mandate is revoked already.".into()));
    }
    audit_both(
        db,
        m,
        now,
        actor,
        "mandate.revoked",
        Some(&json!({ "state": m.state })),
        Some(&json!({ "state": "revoked" })),
    )
}

/// The mandates naming a person.
pub fn mine(db: &dyn SqlStore, who: &Identity, now: i64) -> Result<Vec<View>> {
    store::for_person(db, &who.id, &who.email)?
        .into_iter()
        .map(|m| view(db, m, now))
        .collect()
}

/// A person's offered mandate and its principal, for the acceptance page;
/// a dead link otherwise.
pub fn peek(db: &dyn SqlStore, token: &str, now: i64) -> Result<(Mandate, Organisation)> {
    let m = store::by_token(db, &crypto::hash_secret(token))?
        .ok_or_else(|| Error::DeadLink("This mandate link is not valid.".into()))?;
    match m.state_at(now) {
        "offered" => {}
        "accepted" => return Err(Error::DeadLink("This mandate was accepted already.".into())),
        "revoked" => return Err(Error::DeadLink("This mandate was withdrawn.".into())),
        _ => return Err(Error::DeadLink("This mandate has expired.".into())),
    }
    let a = organisations::by_id(db, &m.principal_org_id)?
        .ok_or_else(|| Error::DeadLink("This organisation no longer exists.".into()))?;
    Ok((m, a))
}

/// The named person accepts, signed in with that verified address.
pub fn accept_as_person(db: &dyn SqlStore, who: &Identity, token: &str, now: i64) -> Result<View> {
    let (m, _) = peek(db, token, now)?;
    if !who.email_verified || m.agent_email.as_deref() != Some(who.email.as_str()) {
        return Err(Error::Forbidden(
            "This mandate names another email address. Sign in with that address to accept it."
                .into(),
        ));
    }
    let Some(m) =
        store::accept_by_person(db, &crypto::hash_secret(token), &who.id, &who.email, now)?
    else {
        return Err(Error::DeadLink("This mandate was accepted already.".into()));
    };
    audit_both(
        db,
        &m,
        now,
        &who.id,
        "mandate.accepted",
        Some(&json!({ "state": "offered" })),
        Some(&json!({ "state": "accepted", "sub": who.id })),
    )?;
    view(db, m, now)
}

/// The named person revokes a mandate naming them.
pub fn revoke_as_person(db: &dyn SqlStore, who: &Identity, id: &str, now: i64) -> Result<()> {
    let m = store::get(db, id)?
        .filter(|m| {
            m.agent_identity_id.as_deref() == Some(who.id.as_str())
                || m.agent_identity_id.is_none() && m.agent_email.as_deref() == Some(&who.email)
        })
        .ok_or(Error::NotFound)?;
    end(db, &m, &who.id, now)
}

/// An organisation is being deleted: each organisation on the other side
/// of one of its mandates gets an entry in its own log (the deleted one's
/// log goes with it).
pub fn record_deletion(db: &dyn SqlStore, org: &Organisation, actor: &str, now: i64) -> Result<()> {
    let ended = json!({ "state": "ended", "reason": "organisation deleted", "org": org.slug });
    for m in store::given(db, &org.id)? {
        if let Some(b) = &m.agent_org_id {
            record(
                db,
                b,
                now,
                actor,
                "mandate.ended",
                Some(&m.id),
                None,
                Some(&ended),
            )?;
        }
    }
    for m in store::received(db, &org.id)? {
        record(
            db,
            &m.principal_org_id,
            now,
            actor,
            "mandate.ended",
            Some(&m.id),
            None,
            Some(&ended),
        )?;
    }
    Ok(())
}

/// The operator revokes a mandate.
pub fn revoke_as_operator(db: &dyn SqlStore, id: &str, now: i64) -> Result<()> {
    let m = store::get(db, id)?.ok_or(Error::NotFound)?;
    end(db, &m, OPERATOR, now)
}
