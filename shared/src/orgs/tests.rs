//! The organisation rules, natively against real SQLite.

use serde_json::json;

use super::invitations::{self, Invite};
use super::members::{self, Change};
use super::*;
use crate::accounts::Auth;
use crate::error::Error;
use crate::store::invitations::Grant;
use crate::store::role_assignments::Assignment;
use crate::testkit::{self, World};

const NOW: i64 = 1_700_000_000;

fn verified(w: &World, email: &str) -> Identity {
    let who = testkit::person(&w.sql, email, NOW);
    crate::identity::mark_verified(&w.sql, &who.id, NOW).unwrap();
    crate::identity::by_id(&w.sql, &who.id).unwrap().unwrap()
}

fn service(w: &World, id: &str, policy: &str) {
    testkit::client(
        &w.sql,
        json!({
            "client_name": format!("Service {id}"),
            "client_id": id,
            "redirect_uris": ["https://app.example/cb"],
            "b2b": true,
            "roles": [{"name": "buyer", "description": "Buys"}, {"name": "approver", "description": "Approves"}],
            "activation_policy": policy,
        }),
        NOW,
    );
}

fn count(w: &World, table: &str) -> i64 {
    crate::store::count_rows(&w.sql, table).unwrap()
}

fn policy() -> Policy {
    Policy { self_service: true }
}

/// Ada owns `acme`; Bob is a member; Cy an admin.
struct Acme {
    w: World,
    ada: Identity,
    bob: Identity,
    cy: Identity,
}

impl Acme {
    fn new() -> Acme {
        let w = World::new();
        let ada = verified(&w, "ada@example.com");
        let bob = verified(&w, "bob@example.com");
        let cy = verified(&w, "cy@example.com");
        let org = create_own(&w.sql, policy(), &ada, "Acme Oy", "acme", NOW).unwrap();
        crate::store::memberships::insert(&w.sql, &org.id, &bob.id, "member", None, NOW).unwrap();
        crate::store::memberships::insert(&w.sql, &org.id, &cy.id, "admin", None, NOW).unwrap();
        Acme { w, ada, bob, cy }
    }

    fn as_(&self, who: &Identity) -> Access {
        open(&self.w.sql, "acme", who).unwrap()
    }
}

#[test]
fn creating_an_organisation_makes_its_owner_and_leaves_nothing_on_a_taken_slug() {
    let w = World::new();
    let ada = verified(&w, "ada@example.com");
    let org = create_own(&w.sql, policy(), &ada, "  Acme Oy ", "acme", NOW).unwrap();
    assert_eq!((org.name.as_str(), org.slug.as_str()), ("Acme Oy", "acme"));
    assert!(org.id.starts_with("org_"));
    let access = open(&w.sql, "acme", &ada).unwrap();
    assert_eq!(access.level(), Level::Owner);
    assert_eq!(mine(&w.sql, &ada).unwrap().len(), 1);

    let before = (count(&w, "organisations"), count(&w, "memberships"));
    let bob = verified(&w, "bob@example.com");
    let taken = create_own(&w.sql, policy(), &bob, "Other", "acme", NOW);
    assert!(matches!(taken, Err(Error::Conflict(_))), "{taken:?}");
    assert_eq!(
        (count(&w, "organisations"), count(&w, "memberships")),
        before,
        "a taken slug leaves nothing behind"
    );
    for (name, slug) in [
        ("", "fine"),
        (&"x".repeat(101)[..], "fine"),
        ("Bell\u{7}", "fine"),
        ("Fine", "ab"),
        ("Fine", "Upper"),
        ("Fine", "-dash"),
        ("Fine", "dash-"),
        ("Fine", "with space"),
        ("Fine", &"a".repeat(41)[..]),
        ("Fine", "join"),
        ("Fine", "mandates"),
    ] {
        let r = create_own(&w.sql, policy(), &bob, name, slug, NOW);
        assert!(
            matches!(r, Err(Error::BadRequest(_) | Error::Conflict(_))),
            "{name:?} {slug:?}: {r:?}"
        );
    }
    assert_eq!(
        (count(&w, "organisations"), count(&w, "memberships")),
        before
    );
    assert!(create_own(&w.sql, policy(), &bob, &"x".repeat(100), "a-1", NOW).is_ok());
}

#[test]
fn creation_needs_a_verified_email_and_self_service() {
    let w = World::new();
    let ada = testkit::person(&w.sql, "ada@example.com", NOW);
    assert!(matches!(
        create_own(&w.sql, policy(), &ada, "Acme", "acme", NOW),
        Err(Error::Forbidden(_))
    ));
    let ada = verified(&w, "ada2@example.com");
    let off = Policy {
        self_service: false,
    };
    assert!(matches!(
        create_own(&w.sql, off, &ada, "Acme", "acme", NOW),
        Err(Error::Forbidden(_))
    ));
    let mut w = World::new();
    assert!(Policy::load(&w.vars).unwrap().self_service);
    w.set("org_self_service", Some("false"));
    assert!(!Policy::load(&w.vars).unwrap().self_service);
    w.set("org_self_service", Some("maybe"));
    assert!(matches!(Policy::load(&w.vars), Err(Error::Config { .. })));
    assert_eq!(count(&w, "organisations"), 0);
}

#[test]
fn outsiders_and_suspended_members_get_not_found() {
    let a = Acme::new();
    let eve = verified(&a.w, "eve@example.com");
    assert_eq!(open(&a.w.sql, "acme", &eve).unwrap_err(), Error::NotFound);
    assert_eq!(open(&a.w.sql, "nope", &eve).unwrap_err(), Error::NotFound);
    let cy = a.as_(&a.cy);
    members::change(
        &a.w.sql,
        &cy,
        &a.bob.id,
        Change {
            role: None,
            active: Some(false),
        },
        NOW,
    )
    .unwrap();
    assert_eq!(open(&a.w.sql, "acme", &a.bob).unwrap_err(), Error::NotFound);
}

#[test]
fn members_cannot_administer_and_admins_cannot_touch_owners() {
    let a = Acme::new();
    let bob = a.as_(&a.bob);
    let forbidden = |r: Result<()>| assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    forbidden(members::list(&a.w.sql, &bob).map(|_| ()));
    forbidden(members::remove(&a.w.sql, &bob, &a.cy.id, NOW));
    forbidden(rename(&a.w.sql, &bob, "Mine", NOW).map(|_| ()));
    forbidden(audit(&a.w.sql, &bob, None, 10).map(|_| ()));
    forbidden(delete(&a.w.sql, &bob, NOW));
    let cy = a.as_(&a.cy);
    let promote = Change {
        role: Some(Level::Owner),
        active: None,
    };
    forbidden(members::change(&a.w.sql, &cy, &a.bob.id, promote, NOW));
    forbidden(members::remove(&a.w.sql, &cy, &a.ada.id, NOW));
    forbidden(delete(&a.w.sql, &cy, NOW));
    // Admins manage members and admins.
    let admin = Change {
        role: Some(Level::Admin),
        active: None,
    };
    members::change(&a.w.sql, &cy, &a.bob.id, admin, NOW).unwrap();
    assert_eq!(a.as_(&a.bob).level(), Level::Admin);
    // Members still see their organisation and leave it.
    let bob = a.as_(&a.bob);
    members::remove(&a.w.sql, &bob, &a.bob.id, NOW).unwrap();
    assert_eq!(open(&a.w.sql, "acme", &a.bob).unwrap_err(), Error::NotFound);
}

#[test]
fn the_last_owner_stays_until_ownership_is_transferred() {
    let a = Acme::new();
    let ada = a.as_(&a.ada);
    let conflict = |r: Result<()>| assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    conflict(members::remove(&a.w.sql, &ada, &a.ada.id, NOW));
    conflict(members::change(
        &a.w.sql,
        &ada,
        &a.ada.id,
        Change {
            role: Some(Level::Member),
            active: None,
        },
        NOW,
    ));
    conflict(members::change(
        &a.w.sql,
        &ada,
        &a.ada.id,
        Change {
            role: None,
            active: Some(false),
        },
        NOW,
    ));
    assert_eq!(a.as_(&a.ada).level(), Level::Owner);
    members::transfer(&a.w.sql, &ada, &a.bob.id, NOW).unwrap();
    assert_eq!(a.as_(&a.bob).level(), Level::Owner);
    assert_eq!(a.as_(&a.ada).level(), Level::Admin);
    let bob = a.as_(&a.bob);
    conflict(members::remove(&a.w.sql, &bob, &a.bob.id, NOW));
    let ada = a.as_(&a.ada);
    members::remove(&a.w.sql, &ada, &a.ada.id, NOW).unwrap();
    // Two owners may each step down once: the second is refused.
    members::change(
        &a.w.sql,
        &bob,
        &a.cy.id,
        Change {
            role: Some(Level::Owner),
            active: None,
        },
        NOW,
    )
    .unwrap();
    let cy = a.as_(&a.cy);
    let down = Change {
        role: Some(Level::Admin),
        active: None,
    };
    members::change(&a.w.sql, &bob, &a.bob.id, down, NOW).unwrap();
    conflict(members::change(&a.w.sql, &cy, &a.cy.id, down, NOW));
}

#[test]
fn services_follow_their_activation_policy() {
    let a = Acme::new();
    service(&a.w, "shop", "self_service");
    service(&a.w, "bank", "approval");
    service(&a.w, "core", "operator_only");
    let cy = a.as_(&a.cy);
    let org_id = cy.org.id.clone();
    assert_eq!(
        services::activate(&a.w.sql, &cy, "shop", NOW).unwrap(),
        "active"
    );
    assert_eq!(
        services::activate(&a.w.sql, &cy, "bank", NOW).unwrap(),
        "requested"
    );
    assert!(matches!(
        services::activate(&a.w.sql, &cy, "core", NOW),
        Err(Error::Forbidden(_))
    ));
    assert_eq!(
        services::activate(&a.w.sql, &cy, "nope", NOW).unwrap_err(),
        Error::NotFound
    );
    let queue = services::requests(&a.w.sql).unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].client_id, "bank");
    services::operator_set(&a.w.sql, &org_id, "bank", "active", NOW).unwrap();
    services::operator_set(&a.w.sql, &org_id, "core", "active", NOW).unwrap();
    let status = |id: &str| {
        services::list(&a.w.sql, &cy)
            .unwrap()
            .into_iter()
            .find(|s| s.client_id == id)
            .unwrap()
            .status
    };
    assert_eq!(status("bank"), "active");
    assert_eq!(status("core"), "active");
    services::deactivate(&a.w.sql, &cy, "shop", NOW).unwrap();
    assert_eq!(status("shop"), "deactivated");
    // A member sees the services but cannot activate them.
    let bob = a.as_(&a.bob);
    assert_eq!(services::list(&a.w.sql, &bob).unwrap().len(), 3);
    assert!(matches!(
        services::activate(&a.w.sql, &bob, "shop", NOW),
        Err(Error::Forbidden(_))
    ));
    assert!(services::requests(&a.w.sql).unwrap().is_empty());
}

#[test]
fn roles_need_an_active_service_its_catalogue_and_its_own_projects() {
    let a = Acme::new();
    service(&a.w, "shop", "self_service");
    service(&a.w, "bank", "self_service");
    let cy = a.as_(&a.cy);
    let role = |client: &str, project: &str, role: &str| Assignment {
        identity_id: a.bob.id.clone(),
        client_id: client.into(),
        project_id: project.into(),
        role: role.into(),
    };
    let bad = |r: Result<bool>| assert!(matches!(r, Err(Error::BadRequest(_))), "{r:?}");
    bad(services::grant(
        &a.w.sql,
        &cy,
        &role("shop", "", "buyer"),
        NOW,
    ));
    services::activate(&a.w.sql, &cy, "shop", NOW).unwrap();
    services::activate(&a.w.sql, &cy, "bank", NOW).unwrap();
    bad(services::grant(
        &a.w.sql,
        &cy,
        &role("shop", "", "owner"),
        NOW,
    ));
    bad(services::grant(
        &a.w.sql,
        &cy,
        &role("shop", "", "nobody"),
        NOW,
    ));
    bad(services::grant(
        &a.w.sql,
        &cy,
        &role("nope", "", "buyer"),
        NOW,
    ));
    bad(services::grant(
        &a.w.sql,
        &cy,
        &role("shop", "prj_none", "buyer"),
        NOW,
    ));
    let bank_site =
        services::create_project(&a.w.sql, &cy, "bank", "Helsinki office", NOW).unwrap();
    bad(services::grant(
        &a.w.sql,
        &cy,
        &role("shop", &bank_site.id, "buyer"),
        NOW,
    ));
    assert!(matches!(
        services::create_project(&a.w.sql, &cy, "bank", "Helsinki office", NOW),
        Err(Error::Conflict(_))
    ));
    let eve = verified(&a.w, "eve@example.com");
    let outsider = Assignment {
        identity_id: eve.id.clone(),
        ..role("shop", "", "buyer")
    };
    bad(services::grant(&a.w.sql, &cy, &outsider, NOW));
    assert_eq!(count(&a.w, "role_assignments"), 0, "nothing half-made");

    assert!(services::grant(&a.w.sql, &cy, &role("shop", "", "buyer"), NOW).unwrap());
    assert!(!services::grant(&a.w.sql, &cy, &role("shop", "", "buyer"), NOW).unwrap());
    assert!(services::grant(&a.w.sql, &cy, &role("bank", &bank_site.id, "approver"), NOW).unwrap());
    let bob = a.as_(&a.bob);
    assert_eq!(services::roles(&a.w.sql, &bob).unwrap().len(), 2);
    assert_eq!(services::roles(&a.w.sql, &cy).unwrap().len(), 2);
    // Deleting the project takes its roles with it.
    services::delete_project(&a.w.sql, &cy, &bank_site.id, NOW).unwrap();
    assert_eq!(
        services::roles(&a.w.sql, &bob).unwrap(),
        vec![role("shop", "", "buyer")]
    );
    services::revoke(&a.w.sql, &cy, &role("shop", "", "buyer"), NOW).unwrap();
    assert_eq!(
        services::revoke(&a.w.sql, &cy, &role("shop", "", "buyer"), NOW).unwrap_err(),
        Error::NotFound
    );
    // Removing a member takes their roles too.
    services::grant(&a.w.sql, &cy, &role("shop", "", "approver"), NOW).unwrap();
    members::remove(&a.w.sql, &cy, &a.bob.id, NOW).unwrap();
    assert_eq!(count(&a.w, "role_assignments"), 0);
}

fn auth(w: &World) -> Auth<'_> {
    Auth::load(&w.vars).unwrap()
}

/// The token of the last invitation mailed to `to`.
fn mailed_token(w: &World, to: &str) -> String {
    let mails = crate::store::dev_outbox::newest(&w.sql, Some(to)).unwrap();
    let link = mails[0].link.clone().unwrap();
    link.split("token=").nth(1).unwrap().to_owned()
}

#[test]
fn an_invitation_is_accepted_once_by_its_address() {
    let a = Acme::new();
    service(&a.w, "shop", "self_service");
    let cy = a.as_(&a.cy);
    services::activate(&a.w.sql, &cy, "shop", NOW).unwrap();
    let env = a.w.env(NOW);
    let ask = Invite {
        email: " Dee@Example.com ".into(),
        role: Level::Admin,
        grants: vec![Grant {
            client_id: "shop".into(),
            project_id: String::new(),
            role: "buyer".into(),
        }],
    };
    let sent = invitations::invite(&env, &auth(&a.w), &cy, &ask).unwrap();
    assert_eq!(
        (sent.email.as_str(), sent.state.as_str()),
        ("dee@example.com", "pending")
    );
    assert_eq!(sent.expires_at, NOW + 7 * 24 * 3600);
    let token = mailed_token(&a.w, "dee@example.com");
    let (_, org) = invitations::peek(&a.w.sql, &token, NOW).unwrap();
    assert_eq!(org.slug, "acme");

    // Someone else, or Dee before verifying, cannot accept it.
    assert!(matches!(
        invitations::accept(&a.w.sql, &a.bob, &token, NOW),
        Err(Error::Forbidden(_))
    ));
    let dee = testkit::person(&a.w.sql, "dee@example.com", NOW);
    assert!(matches!(
        invitations::accept(&a.w.sql, &dee, &token, NOW),
        Err(Error::Forbidden(_))
    ));
    assert_eq!(count(&a.w, "memberships"), 3);
    let dee = verified_again(&a.w, &dee);
    invitations::accept(&a.w.sql, &dee, &token, NOW + 10).unwrap();
    let access = open(&a.w.sql, "acme", &dee).unwrap();
    assert_eq!(access.level(), Level::Admin);
    assert_eq!(services::roles(&a.w.sql, &access).unwrap().len(), 1);
    assert!(matches!(
        invitations::accept(&a.w.sql, &dee, &token, NOW + 11),
        Err(Error::DeadLink(_))
    ));
    assert_eq!(count(&a.w, "memberships"), 4);
    assert_eq!(count(&a.w, "role_assignments"), 1);
    let listed = invitations::list(&a.w.sql, &cy, NOW + 12).unwrap();
    assert_eq!(listed[0].state, "accepted");
}

fn verified_again(w: &World, who: &Identity) -> Identity {
    crate::identity::mark_verified(&w.sql, &who.id, NOW).unwrap();
    crate::identity::by_id(&w.sql, &who.id).unwrap().unwrap()
}

#[test]
fn invitations_expire_are_revoked_and_resent() {
    let a = Acme::new();
    let cy = a.as_(&a.cy);
    let env = a.w.env(NOW);
    let ask = |email: &str| Invite {
        email: email.into(),
        role: Level::Member,
        grants: vec![],
    };
    let dee = verified(&a.w, "dee@example.com");
    invitations::invite(&env, &auth(&a.w), &cy, &ask("dee@example.com")).unwrap();
    let old = mailed_token(&a.w, "dee@example.com");
    let late = NOW + 7 * 24 * 3600;
    assert!(matches!(
        invitations::accept(&a.w.sql, &dee, &old, late),
        Err(Error::DeadLink(_))
    ));
    assert_eq!(
        invitations::list(&a.w.sql, &cy, late).unwrap()[0].state,
        "expired"
    );
    // Resent: a new link and a new week; the old link is dead.
    let id = invitations::list(&a.w.sql, &cy, late).unwrap()[0]
        .id
        .clone();
    invitations::resend(&a.w.env(late), &auth(&a.w), &cy, &id).unwrap();
    let new = mailed_token(&a.w, "dee@example.com");
    assert_ne!(old, new);
    assert!(matches!(
        invitations::accept(&a.w.sql, &dee, &old, late + 1),
        Err(Error::DeadLink(_))
    ));
    invitations::accept(&a.w.sql, &dee, &new, late + 1).unwrap();

    let eve = verified(&a.w, "eve@example.com");
    let sent = invitations::invite(&env, &auth(&a.w), &cy, &ask("eve@example.com")).unwrap();
    let token = mailed_token(&a.w, "eve@example.com");
    invitations::revoke(&a.w.sql, &cy, &sent.id, NOW).unwrap();
    assert!(matches!(
        invitations::revoke(&a.w.sql, &cy, &sent.id, NOW),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        invitations::accept(&a.w.sql, &eve, &token, NOW),
        Err(Error::DeadLink(_))
    ));
    assert!(matches!(
        invitations::peek(&a.w.sql, "not-a-token", NOW),
        Err(Error::DeadLink(_))
    ));
    // Only owners invite owners; members do not invite at all.
    let owner = Invite {
        role: Level::Owner,
        ..ask("fay@example.com")
    };
    assert!(matches!(
        invitations::invite(&env, &auth(&a.w), &cy, &owner),
        Err(Error::Forbidden(_))
    ));
    let bob = a.as_(&a.bob);
    assert!(matches!(
        invitations::invite(&env, &auth(&a.w), &bob, &ask("fay@example.com")),
        Err(Error::Forbidden(_))
    ));
    // A grant of a service the organisation has not activated.
    service(&a.w, "shop", "self_service");
    let inactive = Invite {
        grants: vec![Grant {
            client_id: "shop".into(),
            project_id: String::new(),
            role: "buyer".into(),
        }],
        ..ask("fay@example.com")
    };
    assert!(matches!(
        invitations::invite(&env, &auth(&a.w), &cy, &inactive),
        Err(Error::BadRequest(_))
    ));
    assert_eq!(
        count(&a.w, "invitations"),
        2,
        "refused invitations leave nothing"
    );
}

#[test]
fn a_new_person_accepts_by_signing_up_with_the_invited_address() {
    let a = Acme::new();
    let cy = a.as_(&a.cy);
    let ask = Invite {
        email: "gus@example.com".into(),
        role: Level::Member,
        grants: vec![],
    };
    invitations::invite(&a.w.env(NOW), &auth(&a.w), &cy, &ask).unwrap();
    let token = mailed_token(&a.w, "gus@example.com");
    let form = testkit::params(&[]);
    assert!(matches!(
        invitations::accept_new(&a.w.sql, &auth(&a.w), &token, "short", &form, NOW),
        Err(Error::BadRequest(_))
    ));
    assert!(
        crate::identity::by_email(&a.w.sql, "gus@example.com")
            .unwrap()
            .is_none()
    );
    let (gus, org) = invitations::accept_new(
        &a.w.sql,
        &auth(&a.w),
        &token,
        "seven long words make a passphrase",
        &form,
        NOW,
    )
    .unwrap();
    assert!(gus.email_verified);
    assert_eq!(org.slug, "acme");
    assert_eq!(open(&a.w.sql, "acme", &gus).unwrap().level(), Level::Member);
    // An address that has an account must sign in instead.
    invitations::invite(
        &a.w.env(NOW),
        &auth(&a.w),
        &cy,
        &Invite {
            email: "bob@example.com".into(),
            ..ask
        },
    )
    .unwrap();
    let token = mailed_token(&a.w, "bob@example.com");
    assert!(matches!(
        invitations::accept_new(
            &a.w.sql,
            &auth(&a.w),
            &token,
            "seven long words make a passphrase",
            &form,
            NOW
        ),
        Err(Error::Conflict(_))
    ));
}

#[test]
fn every_change_is_audited_and_deleting_removes_everything() {
    let a = Acme::new();
    service(&a.w, "shop", "self_service");
    let ada = a.as_(&a.ada);
    services::activate(&a.w.sql, &ada, "shop", NOW).unwrap();
    services::create_project(&a.w.sql, &ada, "shop", "Apollo", NOW).unwrap();
    rename(&a.w.sql, &ada, "Acme Group", NOW + 1).unwrap();
    let entries = audit(&a.w.sql, &ada, None, 2).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].action, "organisation.renamed");
    assert_eq!(entries[0].actor, a.ada.id);
    assert_eq!(entries[0].before, Some(json!({ "name": "Acme Oy" })));
    assert_eq!(entries[0].after, Some(json!({ "name": "Acme Group" })));
    let older = audit(&a.w.sql, &ada, Some(entries[1].id), 50).unwrap();
    let all = audit_export(&a.w.sql, &ada).unwrap();
    assert_eq!(all.len(), 2 + older.len());
    assert_eq!(all.last().unwrap().action, "organisation.created");

    set_active(&a.w.sql, &ada.org.id, false, NOW).unwrap();
    let ada = a.as_(&a.ada);
    assert!(matches!(
        rename(&a.w.sql, &ada, "X", NOW),
        Err(Error::Forbidden(_))
    ));
    assert_eq!(
        audit(&a.w.sql, &ada, None, 1).unwrap()[0].actor,
        OPERATOR,
        "the operator's change is in the log"
    );
    delete(&a.w.sql, &ada, NOW).unwrap();
    for table in [
        "organisations",
        "memberships",
        "activations",
        "projects",
        "role_assignments",
        "invitations",
        "org_audit",
    ] {
        assert_eq!(count(&a.w, table), 0, "{table}");
    }
}

#[test]
fn a_deleted_service_leaves_no_activation_project_or_role_behind() {
    let a = Acme::new();
    service(&a.w, "shop", "self_service");
    let cy = a.as_(&a.cy);
    services::activate(&a.w.sql, &cy, "shop", NOW).unwrap();
    let site = services::create_project(&a.w.sql, &cy, "shop", "Apollo", NOW).unwrap();
    let buyer = |project: &str| Assignment {
        identity_id: a.bob.id.clone(),
        client_id: "shop".into(),
        project_id: project.into(),
        role: "buyer".into(),
    };
    services::grant(&a.w.sql, &cy, &buyer(""), NOW).unwrap();
    services::grant(&a.w.sql, &cy, &buyer(&site.id), NOW).unwrap();
    crate::oidc::clients::delete(&a.w.sql, "shop").unwrap();
    for table in ["activations", "projects", "role_assignments"] {
        assert_eq!(count(&a.w, table), 0, "{table}");
    }
    // Registered again under the same id, it starts from nothing.
    service(&a.w, "shop", "self_service");
    let listed = services::list(&a.w.sql, &cy).unwrap();
    assert_eq!(listed[0].status, "inactive");
}

#[test]
fn an_invitation_grants_only_roles_of_services_still_active() {
    let a = Acme::new();
    service(&a.w, "shop", "self_service");
    service(&a.w, "bank", "self_service");
    let cy = a.as_(&a.cy);
    services::activate(&a.w.sql, &cy, "shop", NOW).unwrap();
    services::activate(&a.w.sql, &cy, "bank", NOW).unwrap();
    let grant = |client: &str| Grant {
        client_id: client.into(),
        project_id: String::new(),
        role: "buyer".into(),
    };
    let ask = Invite {
        email: "dee@example.com".into(),
        role: Level::Member,
        grants: vec![grant("shop"), grant("bank")],
    };
    invitations::invite(&a.w.env(NOW), &auth(&a.w), &cy, &ask).unwrap();
    services::deactivate(&a.w.sql, &cy, "bank", NOW).unwrap();
    let dee = verified(&a.w, "dee@example.com");
    let token = mailed_token(&a.w, "dee@example.com");
    invitations::accept(&a.w.sql, &dee, &token, NOW).unwrap();
    let dee = a.as_(&dee);
    let roles = services::roles(&a.w.sql, &dee).unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].client_id, "shop");
}
