//! The token-time read side over the organisation tables (`organisations`,
//! `memberships`, `activations`, `projects`, `role_assignments`, `mandates`,
//! `mandate_delegates`, with the client's catalogue in `clients`): which
//! organisations a person may sign in to a b2b client for, as a member or
//! through a mandate, and what one of them grants. Read-only, one statement
//! per question; the tables themselves are written by their own modules.
//!
//! Access as a member needs all of: the organisation `active`, the person's
//! membership `active`, the organisation's activation of the client
//! `active`, the client still `b2b`, and at least one role assignment whose
//! role is in the client's current catalogue (on the whole service, or on a
//! project of the organisation's for that client that still exists).
//!
//! Access through a mandate of principal A needs all of: the mandate
//! `accepted` and `not_before` ≤ now < `expires_at`, A `active`, A's
//! activation of the client `active`, the client still `b2b`, the mandate's
//! project (if any) still A's for that client, at least one of its roles in
//! the client's current catalogue, and the person its agent: either an
//! active member of the agent organisation B, itself `active`, designated
//! (or all of B's members are), or the person named by the mandate.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Named, SqlStore};
use crate::error::{Error, Result};

/// An organisation as a login names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRef {
    /// `org_…`.
    pub id: String,
    /// The unique slug.
    pub slug: String,
    /// The display name.
    pub name: String,
}

/// What an organisation grants a member on a client, limited to the
/// client's current catalogue: never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgGrant {
    /// The organisation.
    pub org: OrgRef,
    /// Roles on the whole service, sorted.
    pub roles: Vec<String>,
    /// Roles per project id, each sorted.
    pub project_roles: BTreeMap<String, Vec<String>>,
}

/// A mandate a person may use for a client now, as the picker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandateContext {
    /// `mnd_…`.
    pub mandate_id: String,
    /// When it ends (Unix seconds).
    pub expires_at: i64,
    /// The principal organisation A, acted for.
    pub principal: OrgRef,
    /// The agent organisation B the person acts as a member of; `None` for a
    /// mandate naming the person.
    pub agent: Option<OrgRef>,
}

/// Who acts through a mandate (RFC 8693 §4.1 `act`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The person.
    pub sub: String,
    /// The agent organisation B; `None` for a mandate naming the person.
    pub org_id: Option<String>,
}

/// What a mandate grants a person on a client now: A and the mandate's
/// roles limited to the client's current catalogue (never empty), the actor,
/// and the mandate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandateGrant {
    /// A, with the roles: on the whole service, or on the mandate's project.
    pub grant: OrgGrant,
    /// The person, and B.
    pub act: Actor,
    /// `mnd_…`.
    pub mandate_id: String,
    /// When it ends (Unix seconds).
    pub expires_at: i64,
}

fn org(r: &Named<'_>) -> Result<OrgRef> {
    Ok(OrgRef {
        id: r.string("id")?,
        slug: r.string("slug")?,
        name: r.string("name")?,
    })
}

/// A role assignment counts when it is on the whole service (`''`) or on a
/// project of this organisation and client that still exists; `r` is the
/// assignment, `o` the organisation.
const IN_SCOPE: &str = "(r.project_id = '' OR EXISTS (SELECT 1 FROM projects p \
     WHERE p.id = r.project_id AND p.org_id = o.id AND p.client_id = r.client_id))";

/// The organisations `identity_id` may sign in to `client_id` for, by name,
/// in one statement.
pub fn contexts(db: &dyn SqlStore, identity_id: &str, client_id: &str) -> Result<Vec<OrgRef>> {
    let rows = db.execute(
        &format!(
            "SELECT o.id, o.slug, o.name FROM organisations o \
             JOIN memberships m ON m.org_id = o.id AND m.identity_id = ?1 AND m.status = 'active' \
             JOIN activations a ON a.org_id = o.id AND a.client_id = ?2 AND a.status = 'active' \
             JOIN clients c ON c.id = ?2 AND c.b2b = 1 \
             WHERE o.status = 'active' AND EXISTS (SELECT 1 FROM role_assignments r, json_each(c.roles) k \
                 WHERE r.org_id = o.id AND r.identity_id = ?1 AND r.client_id = ?2 \
                 AND r.role = json_extract(k.value, '$.name') AND {IN_SCOPE}) \
             ORDER BY o.name, o.slug"
        ),
        &[identity_id.into(), client_id.into()],
    )?;
    rows.decode(org)
}

/// A catalogue entry, as far as the filter needs it.
#[derive(Deserialize)]
struct RoleName {
    name: String,
}

/// The names in a client's catalogue (`clients.roles`).
fn catalogue(text: &str, client_id: &str) -> Result<BTreeSet<String>> {
    Ok(serde_json::from_str::<Vec<RoleName>>(text)
        .map_err(|e| Error::Internal(format!("client `{client_id}`: roles: {e}")))?
        .into_iter()
        .map(|r| r.name)
        .collect())
}

/// What an organisation grants a person on a client, as one JSON object (or
/// NULL when the organisation, the membership or the activation is not
/// active, or the client is not `b2b`): a scalar subquery over the SQL
/// expressions `org`, `who` and `client`, so that the refresh rotation can
/// carry it in its `RETURNING` ([`super::refresh_families::rotate`]) as
/// [`grant`] reads it alone. The organisation, the client's catalogue and
/// every role assignment in scope; [`grant_from_json`] applies the catalogue.
pub(super) fn grant_json(org: &str, who: &str, client: &str) -> String {
    format!(
        "(SELECT json_object('id', o.id, 'slug', o.slug, 'name', o.name, 'catalogue', c.roles, \
             'assignments', json((SELECT json_group_array(json_array(r.project_id, r.role)) \
                 FROM role_assignments r WHERE r.org_id = o.id AND r.identity_id = {who} \
                 AND r.client_id = {client} AND {IN_SCOPE}))) \
         FROM organisations o \
         JOIN memberships m ON m.org_id = o.id AND m.identity_id = {who} AND m.status = 'active' \
         JOIN activations a ON a.org_id = o.id AND a.client_id = {client} AND a.status = 'active' \
         JOIN clients c ON c.id = {client} AND c.b2b = 1 \
         WHERE o.id = {org} AND o.status = 'active')"
    )
}

/// The object of [`grant_json`].
#[derive(Deserialize)]
struct GrantRow {
    id: String,
    slug: String,
    name: String,
    catalogue: String,
    /// `[project_id, role]` pairs, `project_id` empty for the whole service.
    assignments: Vec<(String, String)>,
}

/// Reads what [`grant_json`] returned for `client_id`: `None` when it was
/// NULL or no role of the client's current catalogue remains.
pub(super) fn grant_from_json(json: Option<&str>, client_id: &str) -> Result<Option<OrgGrant>> {
    let Some(json) = json else {
        return Ok(None);
    };
    let row: GrantRow = serde_json::from_str(json)
        .map_err(|e| Error::Internal(format!("organisation grant: {e}")))?;
    let catalogue = catalogue(&row.catalogue, client_id)?;
    let mut roles = BTreeSet::new();
    let mut project_roles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (project, role) in row.assignments {
        if !catalogue.contains(&role) {
            continue;
        }
        if project.is_empty() {
            roles.insert(role);
        } else {
            project_roles.entry(project).or_default().insert(role);
        }
    }
    if roles.is_empty() && project_roles.is_empty() {
        return Ok(None);
    }
    Ok(Some(OrgGrant {
        org: OrgRef {
            id: row.id,
            slug: row.slug,
            name: row.name,
        },
        roles: roles.into_iter().collect(),
        project_roles: project_roles
            .into_iter()
            .map(|(p, r)| (p, r.into_iter().collect()))
            .collect(),
    }))
}

/// What `org_id` grants `identity_id` on `client_id` now, or `None` when the
/// organisation, the membership or the activation is not active, or no role
/// of the client's catalogue remains. One statement ([`grant_json`]); the
/// catalogue filter is applied here.
pub fn grant(
    db: &dyn SqlStore,
    org_id: &str,
    identity_id: &str,
    client_id: &str,
) -> Result<Option<OrgGrant>> {
    let rows = db.execute(
        &format!("SELECT {} AS org_grant", grant_json("?1", "?2", "?3")),
        &[org_id.into(), identity_id.into(), client_id.into()],
    )?;
    let json = rows
        .first()
        .map(|r| r.opt_string("org_grant"))
        .transpose()?;
    grant_from_json(json.flatten().as_deref(), client_id)
}

/// The conditions under which a mandate `d` works at `now` for the person
/// `who` (SQL expressions): A is `a`, B (left-joined, absent for a person's
/// mandate) is `b`, the client `c`. Shared by [`mandate_contexts`] and
/// [`mandate_json`], so the two never disagree.
fn mandate_works(who: &str, now: &str) -> String {
    format!(
        "d.state = 'accepted' AND d.not_before <= {now} AND {now} < d.expires_at \
     AND a.status = 'active' \
     AND EXISTS (SELECT 1 FROM activations v WHERE v.org_id = a.id AND v.client_id = d.client_id \
         AND v.status = 'active') \
     AND (d.project_id = '' OR EXISTS (SELECT 1 FROM projects p WHERE p.id = d.project_id \
         AND p.org_id = a.id AND p.client_id = d.client_id)) \
     AND EXISTS (SELECT 1 FROM json_each(d.roles) r, json_each(c.roles) k \
         WHERE r.value = json_extract(k.value, '$.name')) \
     AND (CASE WHEN d.agent_org_id IS NULL THEN d.agent_identity_id = {who} \
         ELSE b.status = 'active' \
             AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = b.id AND m.identity_id = {who} \
                 AND m.status = 'active') \
             AND (d.all_members = 1 OR EXISTS (SELECT 1 FROM mandate_delegates g \
                 WHERE g.mandate_id = d.id AND g.identity_id = {who})) END)"
    )
}

/// The mandates `identity_id` may use for `client_id` at `now`, by A's and
/// then B's name, in one statement.
pub fn mandate_contexts(
    db: &dyn SqlStore,
    identity_id: &str,
    client_id: &str,
    now: i64,
) -> Result<Vec<MandateContext>> {
    let rows = db.execute(
        &format!(
            "SELECT d.id, d.expires_at, a.id AS a_id, a.slug AS a_slug, a.name AS a_name, \
             b.id AS b_id, b.slug AS b_slug, b.name AS b_name \
             FROM mandates d \
             JOIN organisations a ON a.id = d.principal_org_id \
             JOIN clients c ON c.id = d.client_id AND c.b2b = 1 \
             LEFT JOIN organisations b ON b.id = d.agent_org_id \
             WHERE d.client_id = ?2 AND {} \
             ORDER BY a.name, a.slug, b.name, b.slug, d.id",
            mandate_works("?1", "?3")
        ),
        &[identity_id.into(), client_id.into(), now.into()],
    )?;
    rows.decode(|r| {
        let agent = match r.opt_string("b_id")? {
            Some(id) => Some(OrgRef {
                id,
                slug: r.string("b_slug")?,
                name: r.string("b_name")?,
            }),
            None => None,
        };
        Ok(MandateContext {
            mandate_id: r.string("id")?,
            expires_at: r.int("expires_at")?,
            principal: OrgRef {
                id: r.string("a_id")?,
                slug: r.string("a_slug")?,
                name: r.string("a_name")?,
            },
            agent,
        })
    })
}

/// What a mandate grants a person on a client at a time, as one JSON object
/// (or NULL when any of its conditions fails): a scalar subquery over the
/// SQL expressions `mandate`, `who`, `client` and `now`, carried by the
/// refresh rotation as [`mandate_grant`] reads it alone.
/// [`mandate_from_json`] applies the catalogue.
pub(super) fn mandate_json(mandate: &str, who: &str, client: &str, now: &str) -> String {
    format!(
        "(SELECT json_object('mandate_id', d.id, 'expires_at', d.expires_at, \
             'project_id', d.project_id, 'roles', d.roles, 'agent_org_id', d.agent_org_id, \
             'id', a.id, 'slug', a.slug, 'name', a.name, 'catalogue', c.roles) \
         FROM mandates d \
         JOIN organisations a ON a.id = d.principal_org_id \
         JOIN clients c ON c.id = d.client_id AND c.b2b = 1 \
         LEFT JOIN organisations b ON b.id = d.agent_org_id \
         WHERE d.id = {mandate} AND d.client_id = {client} AND {})",
        mandate_works(who, now)
    )
}

/// The object of [`mandate_json`].
#[derive(Deserialize)]
struct MandateRow {
    mandate_id: String,
    expires_at: i64,
    project_id: String,
    roles: String,
    agent_org_id: Option<String>,
    id: String,
    slug: String,
    name: String,
    catalogue: String,
}

/// Reads what [`mandate_json`] returned for `identity_id` on `client_id`:
/// `None` when it was NULL or none of the mandate's roles is in the client's
/// catalogue.
pub(super) fn mandate_from_json(
    json: Option<&str>,
    identity_id: &str,
    client_id: &str,
) -> Result<Option<MandateGrant>> {
    let Some(json) = json else {
        return Ok(None);
    };
    let row: MandateRow =
        serde_json::from_str(json).map_err(|e| Error::Internal(format!("mandate grant: {e}")))?;
    let catalogue = catalogue(&row.catalogue, client_id)?;
    let granted: Vec<String> = serde_json::from_str(&row.roles)
        .map_err(|e| Error::Internal(format!("mandate `{}`: roles: {e}", row.mandate_id)))?;
    let roles: Vec<String> = granted
        .into_iter()
        .filter(|role| catalogue.contains(role))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if roles.is_empty() {
        return Ok(None);
    }
    let (roles, project_roles) = if row.project_id.is_empty() {
        (roles, BTreeMap::new())
    } else {
        (Vec::new(), BTreeMap::from([(row.project_id, roles)]))
    };
    Ok(Some(MandateGrant {
        grant: OrgGrant {
            org: OrgRef {
                id: row.id,
                slug: row.slug,
                name: row.name,
            },
            roles,
            project_roles,
        },
        act: Actor {
            sub: identity_id.to_owned(),
            org_id: row.agent_org_id,
        },
        mandate_id: row.mandate_id,
        expires_at: row.expires_at,
    }))
}

/// What the mandate `mandate_id` grants `identity_id` on `client_id` at
/// `now`, or `None` when any of its conditions fails or none of its roles is
/// in the client's catalogue. One statement ([`mandate_json`]); the
/// catalogue filter is applied here.
pub fn mandate_grant(
    db: &dyn SqlStore,
    mandate_id: &str,
    identity_id: &str,
    client_id: &str,
    now: i64,
) -> Result<Option<MandateGrant>> {
    let rows = db.execute(
        &format!(
            "SELECT {} AS mandate_grant",
            mandate_json("?4", "?1", "?2", "?3")
        ),
        &[
            identity_id.into(),
            client_id.into(),
            now.into(),
            mandate_id.into(),
        ],
    )?;
    let json = rows
        .first()
        .map(|r| r.opt_string("mandate_grant"))
        .transpose()?;
    mandate_from_json(json.flatten().as_deref(), identity_id, client_id)
}

/// Test seeding: the organisation rows written with plain statements, since
/// the modules that own those tables are not this one's to call.
#[cfg(test)]
pub mod seed {
    use crate::store::SqlStore;

    /// An active organisation `org_<slug>` named `name`.
    pub fn org(db: &dyn SqlStore, slug: &str, name: &str) -> String {
        let id = format!("org_{slug}");
        db.execute(
            "INSERT INTO organisations (id, slug, name, created_by, created_at, updated_at) \
             VALUES (?, ?, ?, 'test', 1, 1)",
            &[id.as_str().into(), slug.into(), name.into()],
        )
        .unwrap();
        id
    }

    /// An active membership.
    pub fn member(db: &dyn SqlStore, org_id: &str, identity_id: &str) {
        db.execute(
            "INSERT INTO memberships (org_id, identity_id, joined_at) VALUES (?, ?, 1)",
            &[org_id.into(), identity_id.into()],
        )
        .unwrap();
    }

    /// An active activation of `client_id`.
    pub fn activate(db: &dyn SqlStore, org_id: &str, client_id: &str) {
        db.execute(
            "INSERT INTO activations (org_id, client_id, status, updated_at) VALUES (?, ?, 'active', 1)",
            &[org_id.into(), client_id.into()],
        )
        .unwrap();
    }

    /// A project of the organisation's for `client_id`.
    pub fn project(db: &dyn SqlStore, id: &str, org_id: &str, client_id: &str) {
        db.execute(
            "INSERT INTO projects (id, org_id, client_id, name, created_at) VALUES (?, ?, ?, ?, 1)",
            &[id.into(), org_id.into(), client_id.into(), id.into()],
        )
        .unwrap();
    }

    /// A role on the whole service (`project_id` empty) or on a project.
    pub fn role(
        db: &dyn SqlStore,
        org_id: &str,
        identity_id: &str,
        client_id: &str,
        project_id: &str,
        role: &str,
    ) {
        db.execute(
            "INSERT INTO role_assignments (org_id, identity_id, client_id, project_id, role, granted_at) \
             VALUES (?, ?, ?, ?, ?, 1)",
            &[
                org_id.into(),
                identity_id.into(),
                client_id.into(),
                project_id.into(),
                role.into(),
            ],
        )
        .unwrap();
    }

    /// Sets a column of a row: `status` of an organisation, membership or
    /// activation, for instance.
    pub fn set(db: &dyn SqlStore, table: &str, column: &str, value: &str, key: &[(&str, &str)]) {
        let filter: Vec<String> = key.iter().map(|(k, _)| format!("{k} = ?")).collect();
        let mut params = vec![value.into()];
        params.extend(key.iter().map(|(_, v)| (*v).into()));
        db.execute(
            &format!(
                "UPDATE {table} SET {column} = ? WHERE {}",
                filter.join(" AND ")
            ),
            &params,
        )
        .unwrap();
    }

    /// Who a seeded mandate names as its agent.
    #[derive(Debug, Clone, Copy)]
    pub enum Agent<'a> {
        /// An organisation (its id).
        Org(&'a str),
        /// A person (their identity id), who accepted it.
        Person(&'a str),
    }

    /// A mandate to seed: accepted, of `principal` for `agent`, on
    /// `client_id` (the whole service when `project_id` is empty), with
    /// `roles`, from `not_before` to `expires_at`.
    #[derive(Debug, Clone, Copy)]
    pub struct Mandate<'a> {
        /// `mnd_…`.
        pub id: &'a str,
        /// A.
        pub principal: &'a str,
        /// B, or a person.
        pub agent: Agent<'a>,
        /// The service.
        pub client_id: &'a str,
        /// `''` or a project of A's.
        pub project_id: &'a str,
        /// Role names.
        pub roles: &'a [&'a str],
        /// From.
        pub not_before: i64,
        /// Until.
        pub expires_at: i64,
        /// Every member of B may use it.
        pub all_members: bool,
    }

    /// Inserts an accepted mandate.
    pub fn mandate(db: &dyn SqlStore, m: &Mandate<'_>) {
        let (agent_org, agent_email, agent_identity) = match m.agent {
            Agent::Org(org) => (Some(org), None, None),
            Agent::Person(who) => (None, Some(format!("{who}@example.com")), Some(who)),
        };
        let roles = serde_json::to_string(m.roles).unwrap();
        db.execute(
            "INSERT INTO mandates (id, principal_org_id, agent_org_id, agent_email, agent_identity_id, \
             client_id, project_id, roles, not_before, expires_at, state, all_members, created_by, \
             created_at, accepted_by, accepted_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'accepted', ?, 'test', 1, 'test', 1)",
            &[
                m.id.into(),
                m.principal.into(),
                agent_org.into(),
                agent_email.as_deref().into(),
                agent_identity.into(),
                m.client_id.into(),
                m.project_id.into(),
                roles.as_str().into(),
                m.not_before.into(),
                m.expires_at.into(),
                m.all_members.into(),
            ],
        )
        .unwrap();
    }

    /// Designates a member of B to use a mandate.
    pub fn delegate(db: &dyn SqlStore, mandate_id: &str, identity_id: &str) {
        db.execute(
            "INSERT INTO mandate_delegates (mandate_id, identity_id, added_by, added_at) \
             VALUES (?, ?, 'test', 1)",
            &[mandate_id.into(), identity_id.into()],
        )
        .unwrap();
    }

    /// Deletes rows.
    pub fn delete(db: &dyn SqlStore, table: &str, key: &[(&str, &str)]) {
        let filter: Vec<String> = key.iter().map(|(k, _)| format!("{k} = ?")).collect();
        let params: Vec<_> = key.iter().map(|(_, v)| (*v).into()).collect();
        db.execute(
            &format!("DELETE FROM {table} WHERE {}", filter.join(" AND ")),
            &params,
        )
        .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::seed::{activate, member, project, role, set};
    use super::*;
    use crate::testkit::{self, World};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    /// A b2b client `svc` with the roles `buyer` and `approver`.
    fn service(w: &World) {
        testkit::client(
            &w.sql,
            json!({
                "client_name": "Service", "client_id": "svc", "redirect_uris": ["https://svc.example/cb"],
                "b2b": true, "roles": [{"name": "buyer"}, {"name": "approver"}]
            }),
            NOW,
        );
    }

    /// An organisation where `who` is an active member of an activation of
    /// `svc`, with no role yet.
    fn joined(w: &World, slug: &str, name: &str, who: &str) -> String {
        let org = super::seed::org(&w.sql, slug, name);
        member(&w.sql, &org, who);
        activate(&w.sql, &org, "svc");
        org
    }

    fn slugs(orgs: Vec<OrgRef>) -> Vec<String> {
        orgs.into_iter().map(|o| o.slug).collect()
    }

    #[test]
    fn contexts_need_every_link_and_a_role_of_the_catalogue() {
        let w = World::new();
        service(&w);
        let ada = testkit::person(&w.sql, "ada@example.com", NOW).id;
        let bob = testkit::person(&w.sql, "bob@example.com", NOW).id;
        let db = &w.sql;
        assert!(contexts(db, &ada, "svc").unwrap().is_empty());

        let acme = joined(&w, "acme", "Acme Oy", &ada);
        role(db, &acme, &ada, "svc", "", "buyer");
        let beta = joined(&w, "beta", "Beta", &ada);
        role(db, &beta, &ada, "svc", "", "ghost"); // not in the catalogue
        let gamma = joined(&w, "gamma", "Gamma", &ada);
        project(db, "prj_1", &gamma, "svc");
        role(db, &gamma, &ada, "svc", "prj_1", "approver");
        let delta = joined(&w, "delta", "Delta", &ada);
        role(db, &delta, &ada, "svc", "prj_gone", "approver"); // no such project
        let zeta = joined(&w, "zeta", "Zeta", &ada);
        role(db, &zeta, &ada, "svc", "", "buyer");
        set(db, "organisations", "status", "suspended", &[("id", &zeta)]);
        let eta = joined(&w, "eta", "Eta", &ada);
        role(db, &eta, &ada, "svc", "", "buyer");
        set(
            db,
            "memberships",
            "status",
            "suspended",
            &[("org_id", &eta)],
        );
        let theta = joined(&w, "theta", "Theta", &ada);
        role(db, &theta, &ada, "svc", "", "buyer");
        set(
            db,
            "activations",
            "status",
            "requested",
            &[("org_id", &theta)],
        );
        // A role in an organisation she is not a member of.
        let iota = super::seed::org(db, "iota", "Iota");
        activate(db, &iota, "svc");
        role(db, &iota, &ada, "svc", "", "buyer");

        let found = contexts(db, &ada, "svc").unwrap();
        assert_eq!(
            found[0],
            OrgRef {
                id: acme.clone(),
                slug: "acme".into(),
                name: "Acme Oy".into()
            }
        );
        assert_eq!(slugs(found), ["acme", "gamma"], "by name");
        assert!(
            contexts(db, &bob, "svc").unwrap().is_empty(),
            "another person"
        );

        // Another client, even one with the same role names, is not `svc`.
        testkit::client(
            db,
            json!({"client_name": "Plain", "client_id": "plain", "redirect_uris": ["https://p.example/cb"]}),
            NOW,
        );
        activate(db, &acme, "plain");
        role(db, &acme, &ada, "plain", "", "buyer");
        assert!(contexts(db, &ada, "plain").unwrap().is_empty(), "not b2b");
    }

    #[test]
    fn a_grant_lists_the_catalogue_roles_sorted_by_scope() {
        let w = World::new();
        service(&w);
        let ada = testkit::person(&w.sql, "ada@example.com", NOW).id;
        let db = &w.sql;
        let acme = joined(&w, "acme", "Acme Oy", &ada);
        assert_eq!(grant(db, &acme, &ada, "svc").unwrap(), None, "no role");
        role(db, &acme, &ada, "svc", "", "ghost");
        assert_eq!(
            grant(db, &acme, &ada, "svc").unwrap(),
            None,
            "no role of the catalogue"
        );
        role(db, &acme, &ada, "svc", "", "buyer");
        role(db, &acme, &ada, "svc", "", "approver");
        project(db, "prj_b", &acme, "svc");
        project(db, "prj_a", &acme, "svc");
        role(db, &acme, &ada, "svc", "prj_b", "buyer");
        role(db, &acme, &ada, "svc", "prj_a", "buyer");
        role(db, &acme, &ada, "svc", "prj_a", "approver");
        role(db, &acme, &ada, "svc", "prj_gone", "buyer");
        let g = grant(db, &acme, &ada, "svc").unwrap().unwrap();
        assert_eq!(g.org.slug, "acme");
        assert_eq!(g.roles, ["approver", "buyer"]);
        assert_eq!(
            g.project_roles,
            BTreeMap::from([
                (
                    "prj_a".to_owned(),
                    vec!["approver".to_owned(), "buyer".to_owned()]
                ),
                ("prj_b".to_owned(), vec!["buyer".to_owned()]),
            ])
        );
        // Project roles alone are enough.
        let beta = joined(&w, "beta", "Beta", &ada);
        project(db, "prj_c", &beta, "svc");
        role(db, &beta, &ada, "svc", "prj_c", "approver");
        let g = grant(db, &beta, &ada, "svc").unwrap().unwrap();
        assert!(g.roles.is_empty());
        assert_eq!(g.project_roles["prj_c"], ["approver"]);
        // Each link broken ends it.
        for (table, key) in [
            ("organisations", vec![("id", acme.as_str())]),
            ("memberships", vec![("org_id", acme.as_str())]),
            ("activations", vec![("org_id", acme.as_str())]),
        ] {
            let status = if table == "activations" {
                "deactivated"
            } else {
                "suspended"
            };
            set(db, table, "status", status, &key);
            assert_eq!(grant(db, &acme, &ada, "svc").unwrap(), None, "{table}");
            set(db, table, "status", "active", &key);
            assert!(
                grant(db, &acme, &ada, "svc").unwrap().is_some(),
                "{table} back"
            );
        }
        assert_eq!(grant(db, "org_nope", &ada, "svc").unwrap(), None);
        assert_eq!(grant(db, &acme, &ada, "other").unwrap(), None);
    }

    /// `svc` (buyer, approver), Acme (A) with it active and a project
    /// `prj_a`, Ledger (B) with `ada` a member; `mnd_1` gives Ledger
    /// `approver`, `ghost` (not in the catalogue) and `buyer` on the whole
    /// service from NOW - 100 to NOW + 1000, designating nobody yet.
    fn mandated(w: &World) -> (String, String, String) {
        use super::seed::{Agent, Mandate, mandate};
        service(w);
        let ada = testkit::person(&w.sql, "ada@example.com", NOW).id;
        let acme = super::seed::org(&w.sql, "acme", "Acme Oy");
        activate(&w.sql, &acme, "svc");
        project(&w.sql, "prj_a", &acme, "svc");
        let ledger = super::seed::org(&w.sql, "ledger", "Ledger & Co");
        member(&w.sql, &ledger, &ada);
        mandate(
            &w.sql,
            &Mandate {
                id: "mnd_1",
                principal: &acme,
                agent: Agent::Org(&ledger),
                client_id: "svc",
                project_id: "",
                roles: &["approver", "ghost", "buyer"],
                not_before: NOW - 100,
                expires_at: NOW + 1000,
                all_members: false,
            },
        );
        (ada, acme, ledger)
    }

    fn mandate_ids(found: Vec<MandateContext>) -> Vec<String> {
        found.into_iter().map(|m| m.mandate_id).collect()
    }

    #[test]
    fn a_mandate_is_a_context_for_designated_members_and_its_named_person() {
        use super::seed::{Agent, Mandate, delegate, mandate};
        let w = World::new();
        let (ada, acme, ledger) = mandated(&w);
        let db = &w.sql;
        assert!(
            mandate_contexts(db, &ada, "svc", NOW).unwrap().is_empty(),
            "not designated"
        );
        delegate(db, "mnd_1", &ada);
        let found = mandate_contexts(db, &ada, "svc", NOW).unwrap();
        assert_eq!(
            found,
            [MandateContext {
                mandate_id: "mnd_1".into(),
                expires_at: NOW + 1000,
                principal: OrgRef {
                    id: acme.clone(),
                    slug: "acme".into(),
                    name: "Acme Oy".into()
                },
                agent: Some(OrgRef {
                    id: ledger.clone(),
                    slug: "ledger".into(),
                    name: "Ledger & Co".into()
                }),
            }]
        );
        // Not another client's, and not as a membership of Acme.
        assert!(mandate_contexts(db, &ada, "other", NOW).unwrap().is_empty());
        assert!(contexts(db, &ada, "svc").unwrap().is_empty());

        // All of Ledger's members, without designation.
        let bob = testkit::person(db, "bob@example.com", NOW).id;
        member(db, &ledger, &bob);
        assert!(mandate_contexts(db, &bob, "svc", NOW).unwrap().is_empty());
        set(db, "mandates", "all_members", "1", &[("id", "mnd_1")]);
        assert_eq!(
            mandate_ids(mandate_contexts(db, &bob, "svc", NOW).unwrap()),
            ["mnd_1"]
        );
        // Someone outside Ledger, even designated, is not its agent.
        let eve = testkit::person(db, "eve@example.com", NOW).id;
        delegate(db, "mnd_1", &eve);
        assert!(mandate_contexts(db, &eve, "svc", NOW).unwrap().is_empty());

        // A mandate naming a person: hers alone, with no agent organisation,
        // after Ledger's (by A's name, then B's).
        let beta = super::seed::org(db, "beta", "Beta");
        activate(db, &beta, "svc");
        mandate(
            db,
            &Mandate {
                id: "mnd_2",
                principal: &beta,
                agent: Agent::Person(&ada),
                client_id: "svc",
                project_id: "",
                roles: &["buyer"],
                not_before: NOW,
                expires_at: NOW + 10,
                all_members: false,
            },
        );
        let found = mandate_contexts(db, &ada, "svc", NOW).unwrap();
        assert_eq!(mandate_ids(found.clone()), ["mnd_1", "mnd_2"]);
        assert_eq!(
            (found[1].principal.slug.as_str(), &found[1].agent),
            ("beta", &None)
        );
        assert_eq!(
            mandate_ids(mandate_contexts(db, &bob, "svc", NOW).unwrap()),
            ["mnd_1"]
        );
        // Only within its time: from not_before, until before expires_at.
        assert!(mandate_contexts(db, &ada, "svc", NOW - 1).unwrap().len() == 1);
        assert_eq!(
            mandate_ids(mandate_contexts(db, &ada, "svc", NOW + 10).unwrap()),
            ["mnd_1"]
        );
    }

    #[test]
    fn a_mandate_grants_its_roles_of_the_catalogue_on_its_scope() {
        use super::seed::delegate;
        let w = World::new();
        let (ada, acme, ledger) = mandated(&w);
        let db = &w.sql;
        assert_eq!(
            mandate_grant(db, "mnd_1", &ada, "svc", NOW).unwrap(),
            None,
            "not designated"
        );
        delegate(db, "mnd_1", &ada);
        let g = mandate_grant(db, "mnd_1", &ada, "svc", NOW)
            .unwrap()
            .unwrap();
        assert_eq!(
            g,
            MandateGrant {
                grant: OrgGrant {
                    org: OrgRef {
                        id: acme.clone(),
                        slug: "acme".into(),
                        name: "Acme Oy".into()
                    },
                    roles: vec!["approver".into(), "buyer".into()],
                    project_roles: BTreeMap::new(),
                },
                act: Actor {
                    sub: ada.clone(),
                    org_id: Some(ledger.clone())
                },
                mandate_id: "mnd_1".into(),
                expires_at: NOW + 1000,
            }
        );
        // On a project: the roles are there only.
        set(db, "mandates", "project_id", "prj_a", &[("id", "mnd_1")]);
        let g = mandate_grant(db, "mnd_1", &ada, "svc", NOW)
            .unwrap()
            .unwrap();
        assert!(g.grant.roles.is_empty());
        assert_eq!(
            g.grant.project_roles,
            BTreeMap::from([(
                "prj_a".to_owned(),
                vec!["approver".to_owned(), "buyer".to_owned()]
            )])
        );
        // No role of the catalogue left: nothing.
        set(db, "mandates", "roles", r#"["ghost"]"#, &[("id", "mnd_1")]);
        assert_eq!(mandate_grant(db, "mnd_1", &ada, "svc", NOW).unwrap(), None);
        assert!(mandate_contexts(db, &ada, "svc", NOW).unwrap().is_empty());
        set(db, "mandates", "roles", r#"["buyer"]"#, &[("id", "mnd_1")]);
        assert!(
            mandate_grant(db, "mnd_1", &ada, "svc", NOW)
                .unwrap()
                .is_some()
        );
        // Another client, another mandate id, another person.
        assert_eq!(
            mandate_grant(db, "mnd_1", &ada, "other", NOW).unwrap(),
            None
        );
        assert_eq!(mandate_grant(db, "mnd_2", &ada, "svc", NOW).unwrap(), None);
        assert_eq!(
            mandate_grant(db, "mnd_1", "someone", "svc", NOW).unwrap(),
            None
        );
    }

    #[test]
    fn a_mandate_ends_with_any_of_its_conditions() {
        use super::seed::{delegate, delete};
        type Change = fn(&World);
        let ends: [(&str, Change); 12] = [
            ("offered only", |w| {
                set(&w.sql, "mandates", "state", "offered", &[("id", "mnd_1")])
            }),
            ("revoked", |w| {
                set(&w.sql, "mandates", "state", "revoked", &[("id", "mnd_1")])
            }),
            ("not designated any more", |w| {
                delete(&w.sql, "mandate_delegates", &[("mandate_id", "mnd_1")])
            }),
            ("A's activation deactivated", |w| {
                set(
                    &w.sql,
                    "activations",
                    "status",
                    "deactivated",
                    &[("org_id", "org_acme")],
                )
            }),
            ("A suspended", |w| {
                set(
                    &w.sql,
                    "organisations",
                    "status",
                    "suspended",
                    &[("id", "org_acme")],
                )
            }),
            ("A deleted", |w| {
                delete(&w.sql, "organisations", &[("id", "org_acme")])
            }),
            ("B suspended", |w| {
                set(
                    &w.sql,
                    "organisations",
                    "status",
                    "suspended",
                    &[("id", "org_ledger")],
                )
            }),
            ("B deleted", |w| {
                delete(&w.sql, "organisations", &[("id", "org_ledger")])
            }),
            ("membership of B suspended", |w| {
                set(
                    &w.sql,
                    "memberships",
                    "status",
                    "suspended",
                    &[("org_id", "org_ledger")],
                )
            }),
            ("project deleted", |w| {
                delete(&w.sql, "projects", &[("id", "prj_a")])
            }),
            ("the project is another client's", |w| {
                set(&w.sql, "projects", "client_id", "other", &[("id", "prj_a")])
            }),
            ("the service no longer b2b", |w| {
                set(&w.sql, "clients", "b2b", "0", &[("id", "svc")])
            }),
        ];
        for (why, end) in ends {
            let w = World::new();
            let (ada, _, _) = mandated(&w);
            delegate(&w.sql, "mnd_1", &ada);
            set(
                &w.sql,
                "mandates",
                "project_id",
                "prj_a",
                &[("id", "mnd_1")],
            );
            assert!(
                mandate_grant(&w.sql, "mnd_1", &ada, "svc", NOW)
                    .unwrap()
                    .is_some(),
                "{why}"
            );
            end(&w);
            assert_eq!(
                mandate_grant(&w.sql, "mnd_1", &ada, "svc", NOW).unwrap(),
                None,
                "{why}"
            );
            assert!(
                mandate_contexts(&w.sql, &ada, "svc", NOW)
                    .unwrap()
                    .is_empty(),
                "{why}"
            );
        }
        // Expired, by the clock, and not yet begun.
        let w = World::new();
        let (ada, _, _) = mandated(&w);
        delegate(&w.sql, "mnd_1", &ada);
        for (at, works) in [
            (NOW - 101, false),
            (NOW - 100, true),
            (NOW + 999, true),
            (NOW + 1000, false),
        ] {
            assert_eq!(
                mandate_grant(&w.sql, "mnd_1", &ada, "svc", at)
                    .unwrap()
                    .is_some(),
                works,
                "{at}"
            );
            assert_eq!(
                mandate_contexts(&w.sql, &ada, "svc", at).unwrap().len(),
                usize::from(works),
                "{at}"
            );
        }
    }

    #[test]
    fn a_mandate_naming_a_person_has_no_agent_organisation() {
        use super::seed::{Agent, Mandate, mandate};
        let w = World::new();
        let (ada, acme, _) = mandated(&w);
        let bob = testkit::person(&w.sql, "bob@example.com", NOW).id;
        mandate(
            &w.sql,
            &Mandate {
                id: "mnd_p",
                principal: &acme,
                agent: Agent::Person(&bob),
                client_id: "svc",
                project_id: "prj_a",
                roles: &["buyer"],
                not_before: NOW,
                expires_at: NOW + 60,
                all_members: true,
            },
        );
        let g = mandate_grant(&w.sql, "mnd_p", &bob, "svc", NOW)
            .unwrap()
            .unwrap();
        assert_eq!(
            g.act,
            Actor {
                sub: bob.clone(),
                org_id: None
            }
        );
        assert_eq!(g.grant.project_roles["prj_a"], ["buyer"]);
        assert_eq!(
            mandate_grant(&w.sql, "mnd_p", &ada, "svc", NOW).unwrap(),
            None,
            "not her"
        );
        set(&w.sql, "mandates", "state", "revoked", &[("id", "mnd_p")]);
        assert_eq!(
            mandate_grant(&w.sql, "mnd_p", &bob, "svc", NOW).unwrap(),
            None
        );
    }
}
