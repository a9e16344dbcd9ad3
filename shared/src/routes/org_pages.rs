//! The organisation pages under `/orgs` (docs/organisations.md):
//!
//! - `/orgs`: my organisations, and a form to create one;
//! - `/orgs/{slug}`: an organisation, its sections following the person's
//!   built-in role; every change is a `POST` of a form naming its `action`,
//!   answered with a redirect back to the page (post/redirect/get), or the
//!   page again with the error;
//! - `/orgs/join?token=…`: an invitation, accepted signed in or by creating
//!   the account;
//! - `/orgs/mandates/accept?token=…`: a mandate naming a person, accepted
//!   signed in with that address.
//!
//! Every rule is the domain's ([`crate::orgs`]): these pages only read forms
//! and show what it answers. Someone signed out is sent to the login page,
//! and an organisation the person is not an active member of is a 404.

use std::collections::HashMap;

use askama::Template;
use http::{Method, StatusCode, header};

use crate::accounts::{self, Auth};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::html::{self, Field};
use crate::identity::{self, Identity};
use crate::oidc::clients;
use crate::orgs::invitations::{self, Invite};
use crate::orgs::mandates::{self, Offer};
use crate::orgs::members::{self, Change};
use crate::orgs::{self, Access, Level, Policy, services};
use crate::routes::errors;
use crate::routes::page::Page;
use crate::social::{Connection, domains, org_sso};
use crate::store::invitations::Grant;
use crate::store::role_assignments::Assignment;
use crate::web::{self, Params, Request, Response};
use crate::{Env, session};

/// The pages' path.
const PREFIX: &str = "/orgs";

/// Audit entries shown on the page (the export has them all).
const AUDIT_SHOWN: i64 = 50;

/// A day, in seconds.
const DAY: i64 = 86_400;

/// Routes the pages.
pub fn route(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    let rest = req
        .uri()
        .path()
        .strip_prefix(PREFIX)
        .ok_or(Error::NotFound)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(Error::NotFound);
    }
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let post = match *req.method() {
        Method::GET | Method::HEAD => false,
        Method::POST => true,
        _ => return Err(Error::MethodNotAllowed("GET, POST")),
    };
    let page = Page::new(auth, req)?;
    let res = match (parts.as_slice(), post) {
        (["join"], false) => join_page(env, auth, &page, req),
        (["join"], true) => join(env, auth, &page, req),
        (["mandates", "accept"], false) => mandate_page(env, auth, &page, req),
        (["mandates", "accept"], true) => accept_mandate(env, auth, &page, req),
        ([] | [_], _) => {
            let Some((who, _)) = accounts::current(env, auth, req.headers())? else {
                return to_login(req);
            };
            match (parts.first(), post) {
                (None, false) => page.list(env, &who, None, &Params::default(), StatusCode::OK),
                (None, true) => create(env, &page, &who, req),
                (Some(slug), false) => {
                    let access = orgs::open(env.sql, slug, &who)?;
                    page.org(env, &access, None, StatusCode::OK)
                }
                (Some(slug), true) => change(env, auth, &page, &who, slug, req),
            }
        }
        _ => Err(Error::NotFound),
    };
    res.map(|r| page.finish(r))
}

/// A 303 to the login page, which comes back here after signing in.
fn to_login(req: &Request) -> Result<Response> {
    let here = if req.method() == Method::GET {
        req.uri().path_and_query().map_or(PREFIX, |p| p.as_str())
    } else {
        req.uri().path()
    };
    web::redirect(&format!("/login?return_to={}", web::pct(here)))
}

/// The path of an organisation's page.
fn org_path(slug: &str) -> String {
    format!("{PREFIX}/{slug}")
}

/// Errors a person can act on are shown on the page itself, with the
/// error's status (and its headers); store faults and bugs are an error page.
fn on_page(
    err: Error,
    show: impl FnOnce(String, StatusCode) -> Result<Response>,
) -> Result<Response> {
    match err {
        Error::Storage(_) | Error::Internal(_) | Error::Config { .. } => Err(err),
        _ => {
            let mut res = show(err.detail(), err.status())?;
            errors::decorate(&mut res, &err);
            Ok(res)
        }
    }
}

// ------------------------------------------------------------------ /orgs

/// One of my organisations.
struct OrgRow {
    slug: String,
    name: String,
    role: String,
    suspended: bool,
}

/// My organisations and the form to create one.
#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage<'a> {
    product: &'a str,
    csrf: &'a str,
    error: Option<String>,
    orgs: Vec<OrgRow>,
    /// Whether people may create organisations here.
    self_service: bool,
    /// Whether the person's email is verified (creating needs it).
    verified: bool,
    name: &'a str,
    slug: &'a str,
}

impl Page<'_> {
    fn list(
        &self,
        env: &Env,
        who: &Identity,
        error: Option<String>,
        form: &Params,
        status: StatusCode,
    ) -> Result<Response> {
        let orgs = orgs::mine(env.sql, who)?
            .into_iter()
            .filter(|(_, m)| m.status == "active")
            .map(|(o, m)| OrgRow {
                suspended: !o.is_active(),
                slug: o.slug,
                name: o.name,
                role: m.role,
            })
            .collect();
        html::render(
            &OrgsPage {
                product: self.product,
                csrf: &self.csrf,
                error,
                orgs,
                self_service: Policy::load(env.vars)?.self_service,
                verified: who.email_verified,
                name: form.echo("name"),
                slug: form.echo("slug"),
            },
            status,
        )
    }
}

fn create(env: &Env, page: &Page, who: &Identity, req: &Request) -> Result<Response> {
    let form = page.form(req)?;
    let done = (|| {
        let name = form.one("name")?.unwrap_or_default();
        let slug = form.one("slug")?.unwrap_or_default();
        orgs::create_own(env.sql, Policy::load(env.vars)?, who, name, slug, env.now)
    })();
    match done {
        Ok(org) => web::redirect(&org_path(&org.slug)),
        Err(e) => on_page(e, |msg, status| {
            page.list(env, who, Some(msg), &form, status)
        }),
    }
}

// ------------------------------------------------------------------ /orgs/{slug}

/// A role given to someone, in words.
struct RoleRow {
    sub: String,
    who: String,
    client_id: String,
    service: String,
    project_id: String,
    project: String,
    role: String,
}

/// A service as the page shows it.
struct ServiceRow {
    client_id: String,
    name: String,
    policy: &'static str,
    status: String,
    roles: Vec<(String, String)>,
}

/// A project, with its service's name.
struct ProjectRow {
    id: String,
    name: String,
    service: String,
}

/// A member, for admins.
struct MemberRow {
    sub: String,
    email: String,
    role: String,
    status: String,
    joined: String,
    me: bool,
}

/// An invitation, for admins.
struct InvitationRow {
    id: String,
    email: String,
    role: String,
    grants: String,
    state: String,
    expires: String,
}

/// An audit entry, in words.
struct AuditRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    before: String,
    after: String,
}

/// A mandate, in words: given (the other side is the agent) or received
/// (the other side is the principal).
struct MandateRow {
    id: String,
    state: String,
    /// The agent organisation's name or the person's email; the principal's
    /// name for a received one.
    other: String,
    service: String,
    /// The project's name, or empty for the whole service.
    project: String,
    roles: String,
    /// `YYYY-MM-DD`, UTC.
    from: String,
    until: String,
    /// Received: every member of ours may use it.
    all_members: bool,
    /// Received: the designated members' subs.
    delegates: Vec<String>,
    /// Received: who may use it, in words.
    used_by: String,
    /// Offered or accepted, and not expired: it may be revoked.
    live: bool,
}

/// What admins see of mandates, besides the received ones.
struct MandateAdmin {
    given: Vec<MandateRow>,
    /// The operator's templates for services active here: id and label.
    templates: Vec<(String, String)>,
    /// Active members, who may be designated: sub and email.
    delegate_options: Vec<(String, String)>,
    /// The offer form's earliest and latest end dates (`YYYY-MM-DD`).
    first_day: String,
    last_day: String,
    /// The operator's limit, in days.
    max_days: i64,
}

/// What only admins see.
struct AdminView {
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    assignments: Vec<RoleRow>,
    audit: Vec<AuditRow>,
    /// `client_id role` and its label, for every role of an active service.
    role_options: Vec<(String, String)>,
    /// Project ids and labels.
    project_options: Vec<(String, String)>,
    /// Active services: client id and name.
    active_services: Vec<(String, String)>,
    /// Who ownership may go to: the other active members (sub, email).
    transfer_to: Vec<(String, String)>,
    mandates: MandateAdmin,
    sso: SsoAdmin,
}

/// The organisation's own sign-in (enterprise SSO), for admins.
struct SsoAdmin {
    connections: Vec<Connection>,
    domains: Vec<domains::View>,
    /// The prefix of a chosen connection id (`org-<slug>-`).
    id_prefix: String,
    /// Lanyard's callback URLs start with this (`<issuer>/social/`).
    callback_base: String,
}

/// An organisation's page.
#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage<'a> {
    product: &'a str,
    csrf: &'a str,
    error: Option<String>,
    name: &'a str,
    slug: &'a str,
    id: &'a str,
    suspended: bool,
    role: &'a str,
    owner: bool,
    my_roles: Vec<RoleRow>,
    services: Vec<ServiceRow>,
    projects: Vec<ProjectRow>,
    /// Mandates received: all for admins, the usable ones for members.
    received: Vec<MandateRow>,
    admin: Option<AdminView>,
}

impl Page<'_> {
    fn org(
        &self,
        env: &Env,
        access: &Access,
        error: Option<String>,
        status: StatusCode,
    ) -> Result<Response> {
        let db = env.sql;
        let admin = access.level() >= Level::Admin;
        let all_services = services::list(db, access)?;
        let service_names: HashMap<String, String> = all_services
            .iter()
            .map(|s| (s.client_id.clone(), s.name.clone()))
            .collect();
        let all_projects = services::projects(db, access)?;
        let project_names: HashMap<String, String> = all_projects
            .iter()
            .map(|p| (p.id.clone(), p.name.clone()))
            .collect();
        let members = if admin {
            members::list(db, access)?
        } else {
            Vec::new()
        };
        let emails: HashMap<&str, &str> = members
            .iter()
            .map(|m| (m.sub.as_str(), m.email.as_str()))
            .collect();
        let name_of = |sub: &str| -> String {
            if sub == access.actor() {
                format!("{} (you)", access.me.email)
            } else {
                emails
                    .get(sub)
                    .map_or_else(|| sub.to_owned(), |e| (*e).to_owned())
            }
        };
        let role_row = |a: Assignment| RoleRow {
            who: name_of(&a.identity_id),
            service: service_names
                .get(&a.client_id)
                .cloned()
                .unwrap_or_else(|| a.client_id.clone()),
            project: project_names
                .get(&a.project_id)
                .cloned()
                .unwrap_or_else(|| a.project_id.clone()),
            sub: a.identity_id,
            client_id: a.client_id,
            project_id: a.project_id,
            role: a.role,
        };
        let assignments = services::roles(db, access)?;
        let my_roles = assignments
            .iter()
            .filter(|a| a.identity_id == access.actor())
            .cloned()
            .map(role_row)
            .collect();
        let services: Vec<ServiceRow> = all_services
            .into_iter()
            .filter(|s| admin || s.status == "active")
            .map(|s| ServiceRow {
                client_id: s.client_id,
                name: s.name,
                policy: s.policy,
                status: s.status,
                roles: s
                    .roles
                    .into_iter()
                    .map(|r| (r.name, r.description))
                    .collect(),
            })
            .collect();
        let projects = all_projects
            .iter()
            .map(|p| ProjectRow {
                id: p.id.clone(),
                name: p.name.clone(),
                service: service_names
                    .get(&p.client_id)
                    .cloned()
                    .unwrap_or_else(|| p.client_id.clone()),
            })
            .collect();
        let (given, received) = mandates::list(db, access, env.now)?;
        let mandate_row = |v: mandates::View, other: String, project: String| MandateRow {
            live: matches!(v.state.as_str(), "offered" | "accepted"),
            used_by: if v.all_members {
                "all members".to_owned()
            } else if v.delegates.is_empty() {
                "nobody yet".to_owned()
            } else {
                v.delegates
                    .iter()
                    .map(|d| name_of(d))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            service: service_names
                .get(&v.client_id)
                .cloned()
                .unwrap_or_else(|| v.client_id.clone()),
            roles: v.roles.join(", "),
            from: html::utc_day(v.not_before),
            until: html::utc_day(v.expires_at),
            other,
            project,
            id: v.id,
            state: v.state,
            all_members: v.all_members,
            delegates: v.delegates,
        };
        let received: Vec<MandateRow> = received
            .into_iter()
            .filter(|v| admin || v.state == "accepted")
            .map(|v| {
                let principal = v
                    .principal
                    .as_ref()
                    .map_or_else(|| "a deleted organisation".to_owned(), |p| p.name.clone());
                let project = if v.project_id.is_empty() {
                    String::new()
                } else {
                    "one of their projects".to_owned()
                };
                mandate_row(v, principal, project)
            })
            .collect();
        let admin = if admin {
            let given = given
                .into_iter()
                .map(|v| {
                    let agent = match (v.agent["org"]["name"].as_str(), v.agent["email"].as_str()) {
                        (Some(name), _) => format!(
                            "{name} ({})",
                            v.agent["org"]["slug"].as_str().unwrap_or_default()
                        ),
                        (None, Some(email)) => email.to_owned(),
                        (None, None) => "a deleted organisation".to_owned(),
                    };
                    let project = if v.project_id.is_empty() {
                        String::new()
                    } else {
                        project_names
                            .get(&v.project_id)
                            .cloned()
                            .unwrap_or_else(|| "a deleted project".to_owned())
                    };
                    mandate_row(v, agent, project)
                })
                .collect();
            let max_days = mandates::max_days(db)?;
            let templates = mandates::templates(db)?
                .into_iter()
                .filter(|t| {
                    services
                        .iter()
                        .any(|s| s.client_id == t.client_id && s.status == "active")
                })
                .map(|t| {
                    let service = service_names.get(&t.client_id).unwrap_or(&t.client_id);
                    let label = format!(
                        "{} ({service}: {}; {} days)",
                        t.name,
                        t.roles.join(", "),
                        t.days
                    );
                    (t.id, label)
                })
                .collect();
            let mandates = MandateAdmin {
                given,
                templates,
                delegate_options: members
                    .iter()
                    .filter(|m| m.status == "active")
                    .map(|m| (m.sub.clone(), m.email.clone()))
                    .collect(),
                first_day: html::utc_day(env.now + DAY),
                last_day: html::utc_day(env.now + max_days * DAY),
                max_days,
            };
            let grant_text = |g: &Grant| {
                let service = service_names.get(&g.client_id).unwrap_or(&g.client_id);
                match project_names.get(&g.project_id) {
                    Some(p) => format!("{service}: {} on {p}", g.role),
                    None => format!("{service}: {}", g.role),
                }
            };
            let invitations = invitations::list(db, access, env.now)?
                .into_iter()
                .map(|i| InvitationRow {
                    grants: i
                        .grants
                        .iter()
                        .map(grant_text)
                        .collect::<Vec<_>>()
                        .join("; "),
                    id: i.id,
                    email: i.email,
                    role: i.role,
                    state: i.state,
                    expires: html::utc_time(i.expires_at),
                })
                .collect();
            let audit = orgs::audit(db, access, None, AUDIT_SHOWN)?
                .into_iter()
                .map(|e| AuditRow {
                    at: html::utc_time(e.at),
                    actor: name_of(&e.actor),
                    target: e.target.as_deref().map(&name_of).unwrap_or_default(),
                    action: e.action,
                    before: e.before.map(|j| j.to_string()).unwrap_or_default(),
                    after: e.after.map(|j| j.to_string()).unwrap_or_default(),
                })
                .collect();
            let active: Vec<&ServiceRow> =
                services.iter().filter(|s| s.status == "active").collect();
            Some(AdminView {
                role_options: active
                    .iter()
                    .flat_map(|s| {
                        s.roles.iter().map(|(role, _)| {
                            (
                                format!("{} {role}", s.client_id),
                                format!("{}: {role}", s.name),
                            )
                        })
                    })
                    .collect(),
                project_options: all_projects
                    .iter()
                    .map(|p| {
                        let service = service_names.get(&p.client_id).unwrap_or(&p.client_id);
                        (p.id.clone(), format!("{} ({service})", p.name))
                    })
                    .collect(),
                active_services: active
                    .iter()
                    .map(|s| (s.client_id.clone(), s.name.clone()))
                    .collect(),
                transfer_to: members
                    .iter()
                    .filter(|m| m.sub != access.actor() && m.status == "active")
                    .map(|m| (m.sub.clone(), m.email.clone()))
                    .collect(),
                members: members
                    .iter()
                    .map(|m| MemberRow {
                        me: m.sub == access.actor(),
                        sub: m.sub.clone(),
                        email: m.email.clone(),
                        role: m.role.clone(),
                        status: m.status.clone(),
                        joined: html::utc_time(m.joined_at),
                    })
                    .collect(),
                assignments: assignments.into_iter().map(role_row).collect(),
                invitations,
                audit,
                mandates,
                sso: SsoAdmin {
                    connections: org_sso::list(db, access)?,
                    domains: domains::list(db, access)?,
                    id_prefix: format!("org-{}-", access.org.slug),
                    callback_base: crate::config::Config::load(env.vars)?.url("/social/"),
                },
            })
        } else {
            None
        };
        html::render(
            &OrgPage {
                product: self.product,
                csrf: &self.csrf,
                error,
                name: &access.org.name,
                slug: &access.org.slug,
                id: &access.org.id,
                suspended: !access.org.is_active(),
                role: &access.me.role,
                owner: access.level() == Level::Owner,
                my_roles,
                services,
                projects,
                received,
                admin,
            },
            status,
        )
    }
}

/// The fields of the organisation page's forms.
struct Fields<'a>(&'a Params);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Result<&'a str> {
        Ok(self.0.one(name)?.unwrap_or_default())
    }

    /// A field that must be there (a hidden one, or a choice).
    fn need(&self, name: &str, what: &str) -> Result<&'a str> {
        self.0
            .one(name)?
            .ok_or_else(|| Error::bad_request(format!("Choose {what}.")))
    }

    /// Every value of a repeatable field (checkboxes), the empty ones left out.
    fn all(&self, name: &str) -> Vec<&'a str> {
        self.0
            .pairs()
            .iter()
            .filter(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// An optional field: `None` when empty.
    fn maybe(&self, name: &str) -> Result<Option<String>> {
        Ok(self.0.one(name)?.map(|v| v.trim().to_owned()))
    }

    /// The offer form: the agent (a short name, or an email), the service,
    /// the project, the roles (`client_id role` checkboxes), the template and
    /// the end date, which becomes `expires_at` at 00:00 UTC of that day.
    fn offer(&self, now: i64) -> Result<Offer> {
        let agent = self.get("agent")?.trim();
        if agent.is_empty() {
            return Err(Error::bad_request(
                "Name the agent: an organisation's short name or a person's email.",
            ));
        }
        let (agent_org, agent_email) = if agent.contains('@') {
            (None, Some(agent.to_owned()))
        } else {
            (Some(agent.to_owned()), None)
        };
        let mut client_id = self.maybe("client_id")?;
        let template_id = self.maybe("template")?;
        let mut roles = Vec::new();
        for choice in self.all("role") {
            let (service, role) = choice
                .rsplit_once(' ')
                .ok_or_else(|| Error::bad_request("Choose the roles from the list."))?;
            match &client_id {
                Some(c) if c != service => {
                    return Err(Error::bad_request(
                        "Choose roles of the service the mandate is for.",
                    ));
                }
                Some(_) => {}
                None => client_id = Some(service.to_owned()),
            }
            roles.push(role.to_owned());
        }
        if client_id.is_none() && template_id.is_none() {
            return Err(Error::bad_request("Choose a service, or a template."));
        }
        if roles.is_empty() && template_id.is_none() {
            return Err(Error::bad_request("Choose the roles the mandate grants."));
        }
        let expires_at = match self.maybe("expires")? {
            None => None,
            Some(d) => {
                let at = html::parse_utc_day(&d).ok_or_else(|| {
                    Error::bad_request("Give the end date as a date (YYYY-MM-DD).")
                })?;
                if at <= now {
                    return Err(Error::bad_request("Choose an end date after today."));
                }
                Some(at)
            }
        };
        Ok(Offer {
            agent_org,
            agent_email,
            client_id,
            project_id: self.maybe("project")?,
            roles: (!roles.is_empty()).then_some(roles),
            not_before: None,
            expires_at,
            template_id,
        })
    }

    /// Who may use a received mandate: `delegates=all`, or the checked
    /// members (`delegate`).
    fn delegates(&self) -> Result<(bool, Vec<String>)> {
        match self.need("delegates", "who may use it")? {
            "all" => Ok((true, Vec::new())),
            "chosen" => Ok((
                false,
                self.all("delegate")
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            )),
            _ => Err(Error::bad_request("Choose who may use it from the list.")),
        }
    }

    /// A service role chosen from the catalogue select (`client_id role`)
    /// and an optional project: the grant, if a role was chosen.
    fn grant(&self) -> Result<Option<Grant>> {
        let project = self.get("project")?;
        let Some(choice) = self.0.one("service_role")? else {
            if !project.is_empty() {
                return Err(Error::bad_request(
                    "Choose a service role to give on the project.",
                ));
            }
            return Ok(None);
        };
        let (client_id, role) = choice
            .rsplit_once(' ')
            .ok_or_else(|| Error::bad_request("Choose a service role from the list."))?;
        Ok(Some(Grant {
            client_id: client_id.to_owned(),
            project_id: project.to_owned(),
            role: role.to_owned(),
        }))
    }
}

/// `POST /orgs/{slug}`: one change, named by the form's `action`.
fn change(
    env: &Env,
    auth: &Auth,
    page: &Page,
    who: &Identity,
    slug: &str,
    req: &Request,
) -> Result<Response> {
    let form = page.form(req)?;
    let access = orgs::open(env.sql, slug, who)?;
    match apply(env, auth, &access, &Fields(&form)) {
        Ok(to) => web::redirect(&to),
        Err(e) => on_page(e, |msg, status| {
            // The page as it is now, which the failed change may have left
            // without the person in it.
            let access = orgs::open(env.sql, slug, who)?;
            page.org(env, &access, Some(msg), status)
        }),
    }
}

/// Does what the form asks; returns where to go next.
fn apply(env: &Env, auth: &Auth, access: &Access, f: &Fields) -> Result<String> {
    let db = env.sql;
    let now = env.now;
    let back = org_path(&access.org.slug);
    let action = f.need("action", "what to do")?;
    match action {
        "rename" => {
            orgs::rename(db, access, f.get("name")?, now)?;
        }
        "member_role" | "suspend" | "reactivate" => {
            let change = if action == "member_role" {
                Change {
                    role: Some(Level::parse(f.need("role", "a role")?)?),
                    active: None,
                }
            } else {
                Change {
                    role: None,
                    active: Some(action == "reactivate"),
                }
            };
            members::change(db, access, f.need("sub", "a member")?, change, now)?;
        }
        "remove" => {
            members::remove(db, access, f.need("sub", "a member")?, now)?;
        }
        "leave" => {
            members::remove(db, access, access.actor(), now)?;
            return Ok(PREFIX.to_owned());
        }
        "transfer" => {
            members::transfer(db, access, f.need("sub", "the new owner")?, now)?;
        }
        "invite" => {
            let ask = Invite {
                email: f.get("email")?.to_owned(),
                role: Level::parse(f.0.one("role")?.unwrap_or("member"))?,
                grants: f.grant()?.into_iter().collect(),
            };
            invitations::invite(env, auth, access, &ask)?;
        }
        "resend" => {
            invitations::resend(env, auth, access, f.need("id", "an invitation")?)?;
        }
        "revoke_invitation" => {
            invitations::revoke(db, access, f.need("id", "an invitation")?, now)?;
        }
        "grant" => {
            let sub = f.need("sub", "a member")?;
            let grant = f
                .grant()?
                .ok_or_else(|| Error::bad_request("Choose a service role."))?;
            services::grant(db, access, &grant.to_assignment(sub), now)?;
        }
        "revoke_role" => {
            let a = Assignment {
                identity_id: f.need("sub", "a member")?.to_owned(),
                client_id: f.need("client_id", "a service")?.to_owned(),
                project_id: f.get("project_id")?.to_owned(),
                role: f.need("role", "a role")?.to_owned(),
            };
            services::revoke(db, access, &a, now)?;
        }
        "activate" => {
            services::activate(db, access, f.need("client_id", "a service")?, now)?;
        }
        "deactivate" => {
            services::deactivate(db, access, f.need("client_id", "a service")?, now)?;
        }
        "create_project" => {
            let client_id = f.need("client_id", "a service")?;
            services::create_project(db, access, client_id, f.get("name")?, now)?;
        }
        "delete_project" => {
            services::delete_project(db, access, f.need("id", "a project")?, now)?;
        }
        "mandate_offer" => {
            mandates::offer(env, auth, access, &f.offer(now)?)?;
        }
        "mandate_accept" => {
            let (all_members, delegates) = f.delegates()?;
            if !all_members && delegates.is_empty() {
                return Err(Error::bad_request(
                    "Choose who may use the mandate: all members, or some of them.",
                ));
            }
            let id = f.need("id", "a mandate")?;
            mandates::accept(db, access, id, all_members, &delegates, now)?;
        }
        "mandate_delegates" => {
            let (all_members, delegates) = f.delegates()?;
            let id = f.need("id", "a mandate")?;
            mandates::set_delegates(db, access, id, all_members, &delegates, now)?;
        }
        "mandate_revoke" => {
            mandates::revoke(db, access, f.need("id", "a mandate")?, now)?;
        }
        "connection_create" => {
            let spec = org_sso::Spec {
                id: f.maybe("id")?.filter(|v| !v.is_empty()),
                kind: None,
                name: f.maybe("name")?.filter(|v| !v.is_empty()),
                issuer: f.get("issuer")?.to_owned(),
                client_id: f.get("client_id")?.to_owned(),
                secret_variable: f.maybe("secret_variable")?,
                scopes: f.maybe("scopes")?.filter(|v| !v.is_empty()),
                default_role: f.maybe("default_role")?,
                enabled: Some(true),
                mapping: Default::default(),
            };
            org_sso::create(env, access, &spec)?;
        }
        "connection_enable" | "connection_disable" => {
            let id = f.need("id", "a connection")?;
            org_sso::set_enabled(env, access, id, action == "connection_enable")?;
        }
        "connection_delete" => {
            org_sso::delete(db, access, f.need("id", "a connection")?, now)?;
        }
        "domain_claim" => {
            let connection = f.maybe("connection_id")?;
            domains::claim(db, access, f.get("domain")?, connection.as_deref(), now)?;
        }
        "domain_verify" => {
            domains::verify(env, access, f.need("domain", "a domain")?)?;
        }
        "domain_remove" => {
            domains::remove(db, access, f.need("domain", "a domain")?, now)?;
        }
        "delete" => {
            access.require(Level::Owner)?;
            if f.get("confirm")?.trim() != access.org.slug {
                return Err(Error::bad_request(format!(
                    "To delete the organisation, type its short name, {}.",
                    access.org.slug
                )));
            }
            orgs::delete(db, access, env.now)?;
            return Ok(PREFIX.to_owned());
        }
        _ => return Err(Error::bad_request("This form asks for something unknown.")),
    }
    Ok(back)
}

// ------------------------------------------------------------------ /orgs/join

/// Who is looking at an invitation (or a mandate naming a person).
enum Viewer {
    /// Signed in with the invited (or named), verified address.
    Invited,
    /// Signed in with the invited address, not verified yet.
    Unverified,
    /// Signed in as someone else: their email.
    Other(String),
    /// Not signed in; whether the invited address has an account already.
    SignedOut { has_account: bool },
}

/// The invitation page.
#[derive(Template)]
#[template(path = "org_join.html")]
struct JoinPage<'a> {
    product: &'a str,
    csrf: &'a str,
    error: Option<String>,
    token: &'a str,
    org: &'a str,
    email: &'a str,
    role: &'a str,
    viewer: Viewer,
    /// The login page, coming back here.
    login: String,
    /// The operator's profile fields, for a new account.
    fields: Vec<Field>,
}

fn token_of(params: &Params) -> Result<&str> {
    params.required("token").map_err(|_| {
        Error::bad_request("This invitation link is incomplete. Check that you copied all of it.")
    })
}

fn join_page(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let query = Params::from_query(req)?;
    let token = token_of(&query)?;
    page.join(
        env,
        auth,
        req,
        token,
        None,
        &Params::default(),
        StatusCode::OK,
    )
}

impl Page<'_> {
    #[allow(clippy::too_many_arguments)]
    fn join(
        &self,
        env: &Env,
        auth: &Auth,
        req: &Request,
        token: &str,
        error: Option<String>,
        form: &Params,
        status: StatusCode,
    ) -> Result<Response> {
        let (inv, org) = invitations::peek(env.sql, token, env.now)?;
        let viewer = match accounts::current(env, auth, req.headers())? {
            Some((who, _)) if who.email == inv.email => {
                if who.email_verified {
                    Viewer::Invited
                } else {
                    Viewer::Unverified
                }
            }
            Some((who, _)) => Viewer::Other(who.email),
            None => Viewer::SignedOut {
                has_account: identity::by_email(env.sql, &inv.email)?.is_some(),
            },
        };
        let here = format!("{PREFIX}/join?token={}", web::pct(token));
        let fields = auth
            .schema()?
            .0
            .iter()
            .map(|a| Field {
                name: a.name.clone(),
                label: a.label.clone(),
                required: a.required,
                max_length: a.max_length,
                autocomplete: a.autocomplete,
                value: form.echo(&a.name).to_owned(),
            })
            .collect();
        html::render(
            &JoinPage {
                product: self.product,
                csrf: &self.csrf,
                error,
                token,
                org: &org.name,
                email: &inv.email,
                role: &inv.org_role,
                viewer,
                login: format!(
                    "/login?login_hint={}&return_to={}",
                    web::pct(&inv.email),
                    web::pct(&here)
                ),
                fields,
            },
            status,
        )
    }
}

/// `POST /orgs/join`: accepts signed in, or creates the account (with the
/// invited address) and signs it in.
fn join(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let form = page.form(req)?;
    let token = token_of(&form)?;
    let done = match accounts::current(env, auth, req.headers())? {
        Some((who, _)) => invitations::accept(env.sql, &who, token, env.now).map(|org| (org, None)),
        None => (|| {
            let password = form.one("password")?.unwrap_or_default();
            let (who, org) =
                invitations::accept_new(env.sql, auth, token, password, &form, env.now)?;
            let cookie = session::start(
                env,
                auth.policy()?,
                &session::New {
                    sub: &who.id,
                    generation: who.session_generation,
                    amr: &["pwd"],
                    idp: None,
                    device: &Device::of(env.vars, req.headers())?,
                },
            )?;
            Ok((org, Some(cookie)))
        })(),
    };
    match done {
        Ok((org, cookie)) => {
            let mut res = web::redirect(&org_path(&org.slug))?;
            if let Some(cookie) = cookie {
                res.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(res)
        }
        // A dead link cannot be fixed on this form: show the error page.
        Err(e @ Error::DeadLink(_)) => Err(e),
        Err(e) => on_page(e, |msg, status| {
            page.join(env, auth, req, token, Some(msg), &form, status)
        }),
    }
}

// ------------------------------------------------------------------ /orgs/mandates/accept

/// A mandate naming a person, for its acceptance page.
#[derive(Template)]
#[template(path = "org_mandate.html")]
struct MandatePage<'a> {
    product: &'a str,
    csrf: &'a str,
    error: Option<String>,
    token: &'a str,
    /// The principal's name.
    org: &'a str,
    /// The named address.
    email: &'a str,
    service: String,
    roles: String,
    /// On one project of the principal's, not the whole service.
    project: bool,
    from: String,
    until: String,
    viewer: Viewer,
    /// The login page, coming back here.
    login: String,
}

fn mandate_token(params: &Params) -> Result<&str> {
    params.required("token").map_err(|_| {
        Error::bad_request("This mandate link is incomplete. Check that you copied all of it.")
    })
}

/// `GET /orgs/mandates/accept?token=…`: what the mandate asks, and how to
/// accept it as whoever is looking.
fn mandate_page(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let query = Params::from_query(req)?;
    page.mandate(env, auth, req, mandate_token(&query)?, None, StatusCode::OK)
}

impl Page<'_> {
    fn mandate(
        &self,
        env: &Env,
        auth: &Auth,
        req: &Request,
        token: &str,
        error: Option<String>,
        status: StatusCode,
    ) -> Result<Response> {
        let (m, org) = mandates::peek(env.sql, token, env.now)?;
        let email = m.agent_email.clone().unwrap_or_default();
        let viewer = match accounts::current(env, auth, req.headers())? {
            Some((who, _)) if who.email == email => {
                if who.email_verified {
                    Viewer::Invited
                } else {
                    Viewer::Unverified
                }
            }
            Some((who, _)) => Viewer::Other(who.email),
            None => Viewer::SignedOut {
                has_account: identity::by_email(env.sql, &email)?.is_some(),
            },
        };
        let service =
            clients::get(env.sql, &m.client_id)?.map_or_else(|| m.client_id.clone(), |c| c.name);
        let here = format!("{PREFIX}/mandates/accept?token={}", web::pct(token));
        html::render(
            &MandatePage {
                product: self.product,
                csrf: &self.csrf,
                error,
                token,
                org: &org.name,
                email: &email,
                service,
                roles: m.roles.join(", "),
                project: !m.project_id.is_empty(),
                from: html::utc_day(m.not_before),
                until: html::utc_day(m.expires_at),
                viewer,
                login: format!(
                    "/login?login_hint={}&return_to={}",
                    web::pct(&email),
                    web::pct(&here)
                ),
            },
            status,
        )
    }
}

/// `POST /orgs/mandates/accept`: the named person, signed in, accepts.
fn accept_mandate(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let form = page.form(req)?;
    let token = mandate_token(&form)?;
    let done = match accounts::current(env, auth, req.headers())? {
        Some((who, _)) => mandates::accept_as_person(env.sql, &who, token, env.now),
        None => Err(Error::Forbidden(
            "Sign in with the address this mandate names to accept it.".into(),
        )),
    };
    match done {
        Ok(v) => {
            let principal = v.principal.map_or_else(String::new, |p| p.name);
            let service = clients::get(env.sql, &v.client_id)?
                .map_or_else(|| v.client_id.clone(), |c| c.name);
            let text = format!(
                "You act for {principal} on {service} until {} (UTC). When you sign in to \
                 {service}, choose “on behalf of {principal}”.",
                html::utc_day(v.expires_at)
            );
            html::render(
                &html::MessagePage {
                    product: page.product,
                    csrf: &page.csrf,
                    heading: "Mandate accepted",
                    text: &text,
                    resend_for: None,
                    next: Some(("/", "Your account")),
                },
                StatusCode::OK,
            )
        }
        // A dead link cannot be fixed on this page: show the error page.
        Err(e @ Error::DeadLink(_)) => Err(e),
        Err(e) => on_page(e, |msg, status| {
            page.mandate(env, auth, req, token, Some(msg), status)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csrf;
    use crate::store::{dev_outbox, memberships, organisations};
    use crate::testkit::{self, World, get, post};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    /// The CSRF cookie every test browser carries.
    const CSRF: &str = "c3JmLXRlc3QtdG9rZW4tb2YtZW5vdWdoLWxlbmd0aC1";

    /// A browser: its `Cookie` header (a session, if any, and the CSRF cookie).
    struct Browser(String);

    impl Browser {
        fn signed_out() -> Browser {
            Browser(format!("{}={CSRF}", csrf::COOKIE))
        }

        /// A person with this email, signed in.
        fn signed_in(w: &World, email: &str, verified: bool) -> (Browser, Identity) {
            let who = testkit::person(&w.sql, email, NOW);
            if verified {
                identity::mark_verified(&w.sql, &who.id, NOW).unwrap();
            }
            let auth = Auth::load(&w.vars).unwrap();
            let cookie = crate::testkit::signed_in(
                w,
                auth.policy().unwrap(),
                &who.id,
                who.session_generation,
                NOW,
            );
            let pair = cookie
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            (Browser(format!("{pair}; {}={CSRF}", csrf::COOKIE)), who)
        }

        fn get(&self, w: &World, path: &str) -> Response {
            send(w, get(path).header("cookie", &self.0).build())
        }

        /// POSTs a form with the CSRF token.
        fn post(&self, w: &World, path: &str, fields: &[(&str, &str)]) -> Response {
            let mut all = vec![("csrf", CSRF)];
            all.extend_from_slice(fields);
            send(w, post(path).header("cookie", &self.0).form(&all).build())
        }
    }

    fn send(w: &World, req: Request) -> Response {
        super::super::orgs::handle(&w.env(NOW), req)
    }

    fn text(res: &Response) -> String {
        String::from_utf8_lossy(res.body()).into_owned()
    }

    fn location(res: &Response) -> &str {
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", text(res));
        res.headers()[header::LOCATION].to_str().unwrap()
    }

    /// A b2b service `shop` with the roles viewer and editor.
    fn shop(w: &World) {
        testkit::client(
            &w.sql,
            json!({
                "client_name": "Shop",
                "client_id": "shop",
                "redirect_uris": ["https://shop.example/cb"],
                "b2b": true,
                "roles": [
                    {"name": "viewer", "description": "Sees the orders"},
                    {"name": "editor", "description": "Changes the orders"},
                ],
            }),
            NOW,
        );
    }

    /// Ada, signed in and verified, owns Acme (`acme`), which has Shop active.
    fn acme(w: &World) -> Browser {
        shop(w);
        let (ada, _) = Browser::signed_in(w, "ada@example.com", true);
        let res = ada.post(w, "/orgs", &[("name", "Acme"), ("slug", "acme")]);
        assert_eq!(location(&res), "/orgs/acme");
        let res = ada.post(
            w,
            "/orgs/acme",
            &[("action", "activate"), ("client_id", "shop")],
        );
        assert_eq!(location(&res), "/orgs/acme");
        ada
    }

    /// The token of the newest invitation mailed to `to`.
    fn invitation_token(w: &World, to: &str) -> String {
        let mails = dev_outbox::newest(&w.sql, Some(to)).unwrap();
        let link = mails[0].link.clone().unwrap();
        link.split_once("token=").unwrap().1.to_owned()
    }

    #[test]
    fn signed_out_people_are_sent_to_the_login_page() {
        let w = World::new();
        let anon = Browser::signed_out();
        assert_eq!(location(&anon.get(&w, "/orgs")), "/login?return_to=%2Forgs");
        assert_eq!(
            location(&anon.get(&w, "/orgs/acme")),
            "/login?return_to=%2Forgs%2Facme"
        );
        assert_eq!(
            location(&anon.post(&w, "/orgs", &[("name", "Acme"), ("slug", "acme")])),
            "/login?return_to=%2Forgs"
        );
    }

    #[test]
    fn an_organisation_is_created_with_the_form() {
        let w = World::new();
        let (ada, _) = Browser::signed_in(&w, "ada@example.com", true);
        let res = ada.get(&w, "/orgs");
        assert_eq!(res.status(), StatusCode::OK);
        let page = text(&res);
        assert!(
            page.contains("Create an organisation") && page.contains("not in any organisation")
        );

        let res = ada.post(&w, "/orgs", &[("name", "Acme <Oy>"), ("slug", "acme")]);
        assert_eq!(location(&res), "/orgs/acme");
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(
            page.contains("<h1>Acme &#60;Oy&#62;</h1>")
                || page.contains("<h1>Acme &lt;Oy&gt;</h1>"),
            "{page}"
        );
        assert!(page.contains("id=\"my-role\">owner<"), "{page}");
        assert!(page.contains("Audit log") && page.contains("organisation.created"));
        let list = text(&ada.get(&w, "/orgs"));
        assert!(list.contains("href=\"/orgs/acme\""), "{list}");

        // Errors come back on the form, with what was typed.
        let res = ada.post(&w, "/orgs", &[("name", "Acme again"), ("slug", "acme")]);
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let page = text(&res);
        assert!(
            page.contains("role=\"alert\"") && page.contains("is taken"),
            "{page}"
        );
        assert!(page.contains("value=\"Acme again\""));
        let res = ada.post(&w, "/orgs", &[("name", "Bad"), ("slug", "Not A Slug")]);
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(text(&res).contains("lower-case letters"));

        // An unverified person is told why.
        let (bob, _) = Browser::signed_in(&w, "bob@example.com", false);
        let res = bob.post(&w, "/orgs", &[("name", "Bobco"), ("slug", "bobco")]);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(text(&res).contains("Verify your email"));
    }

    #[test]
    fn the_forms_need_the_csrf_token() {
        let w = World::new();
        let ada = acme(&w);
        let no_token = |path: &str, fields: &[(&str, &str)]| {
            send(&w, post(path).header("cookie", &ada.0).form(fields).build())
        };
        let res = no_token("/orgs", &[("name", "Globex"), ("slug", "globex")]);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = no_token("/orgs/acme", &[("action", "rename"), ("name", "Evil")]);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = no_token(
            "/orgs/acme",
            &[
                ("action", "rename"),
                ("name", "Evil"),
                ("csrf", "b3RoZXItdG9rZW4tb2YtZW5vdWdoLWxlbmd0aC14eHh"),
            ],
        );
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(page.contains("<h1>Acme</h1>") && !page.contains("Evil"));
        assert_eq!(ada.get(&w, "/orgs/globex").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn members_see_their_roles_and_not_the_admin_sections() {
        let w = World::new();
        let ada = acme(&w);
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[
                ("action", "invite"),
                ("email", "bob@example.com"),
                ("role", "member"),
                ("service_role", "shop viewer"),
            ],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let admin_page = text(&ada.get(&w, "/orgs/acme"));
        assert!(admin_page.contains("bob@example.com") && admin_page.contains("Shop: viewer"));

        let (bob, _) = Browser::signed_in(&w, "bob@example.com", true);
        let token = invitation_token(&w, "bob@example.com");
        let page = text(&bob.get(&w, &format!("/orgs/join?token={token}")));
        assert!(page.contains("Join Acme</button>"), "{page}");
        let res = bob.post(&w, "/orgs/join", &[("token", &token)]);
        assert_eq!(location(&res), "/orgs/acme");

        let res = bob.get(&w, "/orgs/acme");
        assert_eq!(res.status(), StatusCode::OK);
        let page = text(&res);
        assert!(page.contains("id=\"my-role\">member<"), "{page}");
        assert!(page.contains("Shop: <strong>viewer</strong>"), "{page}");
        for admin_only in [
            "Members",
            "Invitations",
            "Audit log",
            "action\" value=\"invite",
            "Delete organisation",
            "Deactivate",
        ] {
            assert!(!page.contains(admin_only), "a member sees {admin_only}");
        }
        assert!(page.contains("value=\"leave\""));

        // An admin's change is refused with the page and its 403.
        let res = bob.post(&w, "/orgs/acme", &[("action", "rename"), ("name", "Bobco")]);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(text(&res).contains("role=\"alert\""));

        // The owner makes Bob an admin; he sees the sections then.
        let bob_sub = identity::by_email(&w.sql, "bob@example.com")
            .unwrap()
            .unwrap()
            .id;
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[
                ("action", "member_role"),
                ("sub", &bob_sub),
                ("role", "admin"),
            ],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let page = text(&bob.get(&w, "/orgs/acme"));
        assert!(
            page.contains("Audit log")
                && page.contains("Invitations")
                && !page.contains("Delete organisation")
        );

        // Suspended, Bob sees nothing of Acme; reactivated, he is back.
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "suspend"), ("sub", &bob_sub)],
        );
        assert_eq!(location(&res), "/orgs/acme");
        assert_eq!(bob.get(&w, "/orgs/acme").status(), StatusCode::NOT_FOUND);
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "reactivate"), ("sub", &bob_sub)],
        );
        assert_eq!(location(&res), "/orgs/acme");
        assert_eq!(bob.get(&w, "/orgs/acme").status(), StatusCode::OK);

        // Ada hands the organisation to Bob: he is its owner, she an admin.
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "transfer"), ("sub", &bob_sub)],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let page = text(&bob.get(&w, "/orgs/acme"));
        assert!(page.contains("id=\"my-role\">owner<") && page.contains("Delete organisation"));
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(page.contains("id=\"my-role\">admin<") && !page.contains("Delete organisation"));
        // The last owner cannot leave.
        let res = bob.post(&w, "/orgs/acme", &[("action", "leave")]);
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert!(text(&res).contains("always keeps an active owner"));

        // Ada leaves; the organisation is then a 404 to her, as to strangers.
        let res = ada.post(&w, "/orgs/acme", &[("action", "leave")]);
        assert_eq!(location(&res), "/orgs");
        assert_eq!(ada.get(&w, "/orgs/acme").status(), StatusCode::NOT_FOUND);
        let (eve, _) = Browser::signed_in(&w, "eve@example.com", true);
        assert_eq!(eve.get(&w, "/orgs/acme").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            eve.post(&w, "/orgs/acme", &[("action", "leave")]).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn a_new_person_joins_by_creating_the_account() {
        let w = World::new();
        let ada = acme(&w);
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[
                ("action", "invite"),
                ("email", "new@example.com"),
                ("service_role", "shop editor"),
            ],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let token = invitation_token(&w, "new@example.com");
        let join = format!("/orgs/join?token={token}");

        let anon = Browser::signed_out();
        let page = text(&anon.get(&w, &join));
        assert!(
            page.contains("Create your account")
                && page.contains("value=\"new@example.com\" readonly"),
            "{page}"
        );
        assert!(
            page.contains(&format!("return_to={}", web::pct(&join))),
            "the sign-in link comes back: {page}"
        );

        // Someone else signed in is told so.
        let (eve, _) = Browser::signed_in(&w, "eve@example.com", true);
        let page = text(&eve.get(&w, &join));
        assert!(
            page.contains("signed in as <strong>eve@example.com</strong>"),
            "{page}"
        );
        let res = eve.post(&w, "/orgs/join", &[("token", &token)]);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        // A weak password is shown on the form.
        let res = anon.post(
            &w,
            "/orgs/join",
            &[("token", &token), ("password", "short")],
        );
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(text(&res).contains("role=\"alert\""));

        let res = anon.post(
            &w,
            "/orgs/join",
            &[
                ("token", &token),
                ("password", "a long and memorable passphrase"),
                ("name", "Nina New"),
            ],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let session = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("__Host-lanyard_session="))
            .expect("a session");
        let nina = Browser(format!("{session}; {}={CSRF}", csrf::COOKIE));
        let page = text(&nina.get(&w, "/orgs/acme"));
        assert!(
            page.contains("id=\"my-role\">member<")
                && page.contains("Shop: <strong>editor</strong>"),
            "{page}"
        );
        let who = identity::by_email(&w.sql, "new@example.com")
            .unwrap()
            .unwrap();
        assert!(who.email_verified);

        // The link is spent: the error page.
        let res = anon.get(&w, &join);
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(text(&res).contains("already been accepted"));
        let res = anon.get(&w, "/orgs/join?token=nonsense");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(text(&res).contains("not valid"));
    }

    #[test]
    fn admins_manage_services_projects_roles_and_invitations() {
        let w = World::new();
        let ada = acme(&w);
        let ok = |fields: &[(&str, &str)]| {
            let res = ada.post(&w, "/orgs/acme", fields);
            assert_eq!(location(&res), "/orgs/acme", "{fields:?}");
        };
        ok(&[
            ("action", "create_project"),
            ("client_id", "shop"),
            ("name", "Helsinki"),
        ]);
        let page = text(&ada.get(&w, "/orgs/acme"));
        let project = page
            .split("name=\"id\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_owned();
        assert!(project.starts_with("prj_"), "{project}");
        let ada_sub = identity::by_email(&w.sql, "ada@example.com")
            .unwrap()
            .unwrap()
            .id;
        ok(&[
            ("action", "grant"),
            ("sub", &ada_sub),
            ("service_role", "shop editor"),
            ("project", &project),
        ]);
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(
            page.contains("Shop: <strong>editor</strong> on Helsinki"),
            "{page}"
        );
        ok(&[
            ("action", "revoke_role"),
            ("sub", &ada_sub),
            ("client_id", "shop"),
            ("project_id", &project),
            ("role", "editor"),
        ]);
        ok(&[
            ("action", "invite"),
            ("email", "carol@example.com"),
            ("role", "admin"),
        ]);
        let page = text(&ada.get(&w, "/orgs/acme"));
        let inv = page
            .split("value=\"inv_")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .map(|s| format!("inv_{s}"))
            .unwrap();
        ok(&[("action", "resend"), ("id", &inv)]);
        ok(&[("action", "revoke_invitation"), ("id", &inv)]);
        ok(&[("action", "delete_project"), ("id", &project)]);
        ok(&[("action", "deactivate"), ("client_id", "shop")]);
        ok(&[("action", "rename"), ("name", "Acme Oy")]);
        let page = text(&ada.get(&w, "/orgs/acme"));
        for action in [
            "project.created",
            "role.granted",
            "role.revoked",
            "invitation.resent",
            "invitation.revoked",
            "project.deleted",
            "service.deactivated",
            "organisation.renamed",
        ] {
            assert!(page.contains(action), "{action}");
        }
        assert!(page.contains("<h1>Acme Oy</h1>"));

        // A domain error shows the page again with the message.
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[
                ("action", "invite"),
                ("email", "dan@example.com"),
                ("service_role", "shop viewer"),
            ],
        );
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(
            text(&res).contains("is not active for Acme Oy"),
            "{}",
            text(&res)
        );
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "delete"), ("confirm", "wrong")],
        );
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "delete"), ("confirm", "acme")],
        );
        assert_eq!(location(&res), "/orgs");
        assert_eq!(ada.get(&w, "/orgs/acme").status(), StatusCode::NOT_FOUND);
    }

    /// Acme (Ada) has Shop active; Ledger is owned by Ben, with the member
    /// Mo. Returns Ada's, Ben's and Mo's browsers and Mo's sub.
    fn acme_and_ledger(w: &World) -> (Browser, Browser, Browser, String) {
        let ada = acme(w);
        let (ben, _) = Browser::signed_in(w, "ben@ledger.example", true);
        let res = ben.post(w, "/orgs", &[("name", "Ledger"), ("slug", "ledger")]);
        assert_eq!(location(&res), "/orgs/ledger");
        let (mo, mo_who) = Browser::signed_in(w, "mo@ledger.example", true);
        let ledger = organisations::by_slug(&w.sql, "ledger").unwrap().unwrap();
        memberships::insert(&w.sql, &ledger.id, &mo_who.id, "member", None, NOW).unwrap();
        (ada, ben, mo, mo_who.id)
    }

    /// The mandates Acme gave.
    fn given(w: &World) -> Vec<crate::store::mandates::Mandate> {
        let acme = organisations::by_slug(&w.sql, "acme").unwrap().unwrap();
        crate::store::mandates::given(&w.sql, &acme.id).unwrap()
    }

    #[test]
    fn a_mandate_is_offered_accepted_and_revoked_on_the_pages() {
        let w = World::new();
        let (ada, ben, mo, mo_sub) = acme_and_ledger(&w);
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(
            page.contains("Mandates given")
                && page.contains("No mandates given yet")
                && page.contains("value=\"mandate_offer\"")
                && page.contains("name=\"role\" value=\"shop viewer\"")
                && page.contains("min=\"2023-11-15\" max=\"2024-11-13\""),
            "{page}"
        );

        // Ada offers Ledger a mandate until 1 December, 00:00 UTC.
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[
                ("action", "mandate_offer"),
                ("agent", "ledger"),
                ("client_id", "shop"),
                ("project", ""),
                ("role", "shop viewer"),
                ("role", "shop editor"),
                ("expires", "2023-12-01"),
            ],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let stored = given(&w);
        assert_eq!(stored.len(), 1);
        let m = &stored[0];
        assert_eq!(m.expires_at, 1_701_388_800);
        assert_eq!(m.not_before, NOW);
        assert_eq!(m.roles, ["editor", "viewer"]);
        let id = m.id.clone();
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(
            page.contains("<th scope=\"row\">Ledger (ledger)</th><td>Shop</td>")
                && page.contains("<td>editor, viewer</td><td>2023-11-14 – 2023-12-01</td>")
                && page.contains(&format!("data-mandate-state=\"{id}\">offered<"))
                && page.contains("mandate.offered"),
            "{page}"
        );

        // Ledger's admin sees it offered, with its members to choose from.
        let page = text(&ben.get(&w, "/orgs/ledger"));
        assert!(
            page.contains("Mandates received")
                && page.contains("<th scope=\"row\">Acme</th><td>Shop</td>")
                && page.contains("value=\"mandate_accept\"")
                && page.contains(&format!(
                    "name=\"delegate\" value=\"{mo_sub}\"> mo@ledger.example"
                )),
            "{page}"
        );
        // Mo, a member, sees nothing of it yet, and cannot accept it.
        let page = text(&mo.get(&w, "/orgs/ledger"));
        assert!(!page.contains("Mandates") && !page.contains(&id), "{page}");
        let res = mo.post(
            &w,
            "/orgs/ledger",
            &[
                ("action", "mandate_accept"),
                ("id", &id),
                ("delegates", "all"),
            ],
        );
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        // Accepting for nobody is refused on the page.
        let res = ben.post(
            &w,
            "/orgs/ledger",
            &[
                ("action", "mandate_accept"),
                ("id", &id),
                ("delegates", "chosen"),
            ],
        );
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(text(&res).contains("Choose who may use the mandate"));

        // Ben accepts it for Mo.
        let res = ben.post(
            &w,
            "/orgs/ledger",
            &[
                ("action", "mandate_accept"),
                ("id", &id),
                ("delegates", "chosen"),
                ("delegate", &mo_sub),
            ],
        );
        assert_eq!(location(&res), "/orgs/ledger");
        let page = text(&ben.get(&w, "/orgs/ledger"));
        assert!(
            page.contains(&format!("data-mandate-state=\"{id}\">accepted<"))
                && page.contains("value=\"mandate_delegates\"")
                && page.contains("Now: mo@ledger.example")
                && page.contains(&format!("value=\"{mo_sub}\" checked"))
                && page.contains("mandate.accepted"),
            "{page}"
        );
        let page = text(&mo.get(&w, "/orgs/ledger"));
        assert!(
            page.contains("Mandates you may use")
                && page.contains("<th scope=\"row\">Acme</th><td>Shop</td>")
                && !page.contains("value=\"mandate_revoke\""),
            "{page}"
        );

        // Then for all members.
        let res = ben.post(
            &w,
            "/orgs/ledger",
            &[
                ("action", "mandate_delegates"),
                ("id", &id),
                ("delegates", "all"),
            ],
        );
        assert_eq!(location(&res), "/orgs/ledger");
        let page = text(&ben.get(&w, "/orgs/ledger"));
        assert!(page.contains("Now: all members"), "{page}");

        // Ada revokes it: both sides see it so, Mo no longer has it.
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "mandate_revoke"), ("id", &id)],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(
            page.contains(&format!("data-mandate-state=\"{id}\">revoked<"))
                && !page.contains("value=\"mandate_revoke\"")
                && page.contains("mandate.revoked"),
            "{page}"
        );
        let page = text(&ben.get(&w, "/orgs/ledger"));
        assert!(
            page.contains(&format!("data-mandate-state=\"{id}\">revoked<"))
                && !page.contains("value=\"mandate_delegates\""),
            "{page}"
        );
        assert!(!text(&mo.get(&w, "/orgs/ledger")).contains("Mandates you may use"));
        // Revoked twice: the page says so.
        let res = ben.post(
            &w,
            "/orgs/ledger",
            &[("action", "mandate_revoke"), ("id", &id)],
        );
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert!(text(&res).contains("revoked already"));
    }

    #[test]
    fn the_offer_form_refuses_what_it_must() {
        let w = World::new();
        let (ada, _, mo, _) = acme_and_ledger(&w);
        let offer = |b: &Browser, path: &str, extra: &[(&str, &str)]| {
            let mut fields = vec![
                ("action", "mandate_offer"),
                ("agent", "ledger"),
                ("client_id", "shop"),
                ("role", "shop viewer"),
            ];
            fields.extend_from_slice(extra);
            b.post(&w, path, &fields)
        };
        let refused = |res: Response, status: StatusCode, says: &str| {
            assert_eq!(res.status(), status);
            let page = text(&res);
            assert!(
                page.contains("role=\"alert\"") && page.contains(says),
                "{page}"
            );
        };
        refused(
            offer(&ada, "/orgs/acme", &[("expires", "2023-02-30")]),
            StatusCode::BAD_REQUEST,
            "as a date",
        );
        refused(
            offer(&ada, "/orgs/acme", &[("expires", "2023-11-14")]),
            StatusCode::BAD_REQUEST,
            "after today",
        );
        refused(
            offer(&ada, "/orgs/acme", &[("expires", "2025-01-01")]),
            StatusCode::BAD_REQUEST,
            "at most 365 days",
        );
        refused(
            ada.post(
                &w,
                "/orgs/acme",
                &[
                    ("action", "mandate_offer"),
                    ("agent", "nobody-here"),
                    ("client_id", "shop"),
                    ("role", "shop viewer"),
                ],
            ),
            StatusCode::BAD_REQUEST,
            "no organisation",
        );
        refused(
            ada.post(
                &w,
                "/orgs/acme",
                &[
                    ("action", "mandate_offer"),
                    ("agent", "ledger"),
                    ("client_id", "shop"),
                ],
            ),
            StatusCode::BAD_REQUEST,
            "Choose the roles",
        );
        refused(
            offer(&ada, "/orgs/acme", &[("role", "other editor")]),
            StatusCode::BAD_REQUEST,
            "roles of the service",
        );
        // A member of Ledger cannot offer for it.
        refused(
            offer(&mo, "/orgs/ledger", &[]),
            StatusCode::FORBIDDEN,
            "needs the admin role",
        );
        // Without the CSRF token, nothing happens.
        let res = send(
            &w,
            post("/orgs/acme")
                .header("cookie", &ada.0)
                .form(&[
                    ("action", "mandate_offer"),
                    ("agent", "ledger"),
                    ("client_id", "shop"),
                    ("role", "shop viewer"),
                ])
                .build(),
        );
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(given(&w).is_empty());
        let res = send(
            &w,
            post("/orgs/acme")
                .header("cookie", &ada.0)
                .form(&[("action", "mandate_revoke"), ("id", "mnd_x")])
                .build(),
        );
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        // Without a date, the longest allowed.
        assert_eq!(location(&offer(&ada, "/orgs/acme", &[])), "/orgs/acme");
        assert_eq!(given(&w)[0].expires_at, NOW + 365 * DAY);
    }

    #[test]
    fn a_person_accepts_a_mandate_on_its_page() {
        let w = World::new();
        let ada = acme(&w);
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[
                ("action", "mandate_offer"),
                ("agent", "Pat@Example.com"),
                ("client_id", "shop"),
                ("role", "shop editor"),
                ("expires", "2024-01-01"),
            ],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let token = invitation_token(&w, "pat@example.com");
        let link = format!("/orgs/mandates/accept?token={token}");

        // Signed out: what it asks, a sign-in link back here, a sign-up link.
        let anon = Browser::signed_out();
        let res = anon.get(&w, &link);
        assert_eq!(res.status(), StatusCode::OK);
        let page = text(&res);
        assert!(
            page.contains("<h1>Act for Acme</h1>")
                && page.contains("<strong>pat@example.com</strong>")
                && page.contains("id=\"mandate-service\">Shop<")
                && page.contains("id=\"mandate-roles\">editor")
                && page.contains("from 2023-11-14 until 2024-01-01 (UTC)")
                && page.contains(&format!("return_to={}", web::pct(&link)))
                && page.contains("href=\"/signup\"")
                && !page.contains("mandate-accept"),
            "{page}"
        );
        let res = anon.post(&w, "/orgs/mandates/accept", &[("token", &token)]);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        // Someone else is told so, and refused.
        let (eve, _) = Browser::signed_in(&w, "eve@example.com", true);
        let page = text(&eve.get(&w, &link));
        assert!(
            page.contains("signed in as <strong>eve@example.com</strong>")
                && !page.contains("mandate-accept"),
            "{page}"
        );
        let res = eve.post(&w, "/orgs/mandates/accept", &[("token", &token)]);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(text(&res).contains("names another email address"));

        // Pat accepts; the link is spent then.
        let (pat, _) = Browser::signed_in(&w, "pat@example.com", true);
        let page = text(&pat.get(&w, &link));
        assert!(page.contains("id=\"mandate-accept\""), "{page}");
        let res = no_csrf(&w, &pat, &token);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = pat.post(&w, "/orgs/mandates/accept", &[("token", &token)]);
        assert_eq!(res.status(), StatusCode::OK);
        let page = text(&res);
        assert!(
            page.contains("You act for Acme on Shop until 2024-01-01"),
            "{page}"
        );
        let id = given(&w)[0].id.clone();
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(
            page.contains("<th scope=\"row\">pat@example.com</th>")
                && page.contains(&format!("data-mandate-state=\"{id}\">accepted<")),
            "{page}"
        );
        let res = pat.get(&w, &link);
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(text(&res).contains("accepted already"));
        let res = anon.get(&w, "/orgs/mandates/accept?token=nonsense");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(text(&res).contains("not valid"));
    }

    fn no_csrf(w: &World, b: &Browser, token: &str) -> Response {
        send(
            w,
            post("/orgs/mandates/accept")
                .header("cookie", &b.0)
                .form(&[("token", token)])
                .build(),
        )
    }

    #[test]
    fn admins_set_up_single_sign_on_on_the_page() {
        let mut w = World::new();
        let ada = acme(&w);
        let org = organisations::by_slug(&w.sql, "acme").unwrap().unwrap();
        w.set(
            "org_secret_variables",
            Some(&format!("{}=acme_sso_secret", org.id)),
        );
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[
                ("action", "connection_create"),
                ("issuer", "https://login.acme.test"),
                ("client_id", "lanyard-at-acme"),
                ("secret_variable", "acme_sso_secret"),
                ("scopes", "openid email"),
                ("default_role", "member"),
                ("id", "org-acme-okta"),
                ("name", ""),
            ],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "domain_claim"), ("domain", "Acme.test")],
        );
        assert_eq!(location(&res), "/orgs/acme");
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(page.contains("Single sign-on"), "{page}");
        assert!(page.contains("data-connection=\"org-acme-okta\""), "{page}");
        assert!(
            page.contains("https://id.example.test/social/org-acme-okta/callback"),
            "{page}"
        );
        assert!(page.contains("data-domain=\"acme.test\""), "{page}");
        assert!(page.contains("lanyard-verification="), "{page}");
        assert!(page.contains("waiting for the record"), "{page}");
        // Verifying without a DNS-over-HTTPS client here: a clear error on the page.
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "domain_verify"), ("domain", "acme.test")],
        );
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            text(&res).contains("DNS lookup of acme.test failed"),
            "{}",
            text(&res)
        );
        // A public mail domain is refused on the form.
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "domain_claim"), ("domain", "gmail.com")],
        );
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let res = ada.post(
            &w,
            "/orgs/acme",
            &[("action", "connection_disable"), ("id", "org-acme-okta")],
        );
        assert_eq!(location(&res), "/orgs/acme");
        assert!(text(&ada.get(&w, "/orgs/acme")).contains("value=\"connection_enable\""));
        let page = text(&ada.get(&w, "/orgs/acme"));
        assert!(page.contains("connection.created") && page.contains("domain.claimed"));

        // A member sees none of it, and cannot change it.
        let (bob, bob_id) = Browser::signed_in(&w, "bob@acme.test", true);
        memberships::insert(&w.sql, &org.id, &bob_id.id, "member", None, NOW).unwrap();
        let page = text(&bob.get(&w, "/orgs/acme"));
        assert!(!page.contains("Single sign-on"));
        let res = bob.post(
            &w,
            "/orgs/acme",
            &[("action", "connection_delete"), ("id", "org-acme-okta")],
        );
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        // Another organisation's admin gets a 404.
        let (eve, _) = Browser::signed_in(&w, "eve@evil.test", true);
        let res = eve.post(
            &w,
            "/orgs/acme",
            &[("action", "domain_remove"), ("domain", "acme.test")],
        );
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
