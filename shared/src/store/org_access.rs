//! The token-time read side over the organisation tables (`organisations`,
//! `memberships`, `activations`, `projects`, `role_assignments`, with the
//! client's catalogue in `clients`): which organisations a person may sign
//! in to a b2b client for, and what one of them grants. Read-only, one
//! statement per question; the tables themselves are written by their own
//! modules.
//!
//! Access needs all of: the organisation `active`, the person's membership
//! `active`, the organisation's activation of the client `active`, the
//! client still `b2b`, and at least one role assignment whose role is in the
//! client's current catalogue (on the whole service, or on a project of the
//! organisation's for that client that still exists).

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

/// What `org_id` grants `identity_id` on `client_id` now, or `None` when the
/// organisation, the membership or the activation is not active, or no role
/// of the client's catalogue remains. One statement (one row per role
/// assignment, the organisation's columns repeated); the catalogue filter is
/// applied here.
pub fn grant(
    db: &dyn SqlStore,
    org_id: &str,
    identity_id: &str,
    client_id: &str,
) -> Result<Option<OrgGrant>> {
    let rows = db.execute(
        &format!(
            "SELECT o.id, o.slug, o.name, c.roles AS catalogue, r.project_id, r.role \
             FROM organisations o \
             JOIN memberships m ON m.org_id = o.id AND m.identity_id = ?2 AND m.status = 'active' \
             JOIN activations a ON a.org_id = o.id AND a.client_id = ?3 AND a.status = 'active' \
             JOIN clients c ON c.id = ?3 AND c.b2b = 1 \
             LEFT JOIN role_assignments r ON r.org_id = o.id AND r.identity_id = ?2 \
                 AND r.client_id = ?3 AND {IN_SCOPE} \
             WHERE o.id = ?1 AND o.status = 'active'"
        ),
        &[org_id.into(), identity_id.into(), client_id.into()],
    )?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let catalogue: BTreeSet<String> =
        serde_json::from_str::<Vec<RoleName>>(first.text("catalogue")?)
            .map_err(|e| Error::Internal(format!("client `{client_id}`: roles: {e}")))?
            .into_iter()
            .map(|r| r.name)
            .collect();
    let mut roles = BTreeSet::new();
    let mut project_roles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows.iter() {
        let (Some(project), Some(role)) = (r.opt_string("project_id")?, r.opt_string("role")?)
        else {
            continue;
        };
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
        org: org(&first)?,
        roles: roles.into_iter().collect(),
        project_roles: project_roles
            .into_iter()
            .map(|(p, r)| (p, r.into_iter().collect()))
            .collect(),
    }))
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
}
