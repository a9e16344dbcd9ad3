//! The mandate rules, natively against real SQLite.

use serde_json::json;

use super::mandates::{self, Offer};
use super::*;
use crate::accounts::Auth;
use crate::error::Error;
use crate::testkit::{self, World};

const NOW: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

fn verified(w: &World, email: &str) -> Identity {
    let who = testkit::person(&w.sql, email, NOW);
    crate::identity::mark_verified(&w.sql, &who.id, NOW).unwrap();
    crate::identity::by_id(&w.sql, &who.id).unwrap().unwrap()
}

/// A (`acme`, owner Ada) has activated `billing`, with a project; B
/// (`ledger`, owner Ben) has a member Mo.
struct Two {
    w: World,
    ada: Identity,
    ben: Identity,
    mo: Identity,
    site: String,
}

impl Two {
    fn new() -> Two {
        let w = World::new();
        testkit::client(
            &w.sql,
            json!({
                "client_name": "Billing", "client_id": "billing",
                "redirect_uris": ["https://billing.example/cb"], "b2b": true,
                "roles": [{"name": "invoice:read", "description": "Read"},
                          {"name": "invoice:submit", "description": "Submit"}],
            }),
            NOW,
        );
        testkit::client(
            &w.sql,
            json!({
                "client_name": "Shop", "client_id": "shop",
                "redirect_uris": ["https://shop.example/cb"], "b2b": true,
                "roles": [{"name": "buyer", "description": "Buys"}],
            }),
            NOW,
        );
        let ada = verified(&w, "ada@acme.example");
        let ben = verified(&w, "ben@ledger.example");
        let mo = verified(&w, "mo@ledger.example");
        let p = Policy { self_service: true };
        create_own(&w.sql, p, &ada, "Acme", "acme", NOW).unwrap();
        let b = create_own(&w.sql, p, &ben, "Ledger", "ledger", NOW).unwrap();
        crate::store::memberships::insert(&w.sql, &b.id, &mo.id, "member", None, NOW).unwrap();
        let a = open(&w.sql, "acme", &ada).unwrap();
        services::activate(&w.sql, &a, "billing", NOW).unwrap();
        services::activate(&w.sql, &a, "shop", NOW).unwrap();
        let site = services::create_project(&w.sql, &a, "billing", "Helsinki", NOW)
            .unwrap()
            .id;
        Two {
            w,
            ada,
            ben,
            mo,
            site,
        }
    }

    fn a(&self) -> Access {
        open(&self.w.sql, "acme", &self.ada).unwrap()
    }

    fn b(&self) -> Access {
        open(&self.w.sql, "ledger", &self.ben).unwrap()
    }

    fn offer(&self, o: Offer) -> Result<mandates::View> {
        let auth = Auth::load(&self.w.vars).unwrap();
        mandates::offer(&self.w.env(NOW), &auth, &self.a(), &o)
    }

    fn to_ledger(&self) -> Offer {
        Offer {
            agent_org: Some("ledger".into()),
            client_id: Some("billing".into()),
            project_id: Some(self.site.clone()),
            roles: Some(vec!["invoice:read".into()]),
            ..Offer::default()
        }
    }
}

#[test]
fn a_offers_b_accepts_and_designates_and_both_logs_say_so() {
    let t = Two::new();
    let m = t.offer(t.to_ledger()).unwrap();
    assert_eq!(m.state, "offered");
    assert_eq!(m.expires_at, NOW + 365 * DAY, "the default validity");
    assert_eq!(m.principal.as_ref().unwrap().slug, "acme");
    assert_eq!(m.agent["org"]["slug"], "ledger");
    let (_, received) = mandates::list(&t.w.sql, &t.b(), NOW).unwrap();
    assert_eq!(received.len(), 1);
    // A member of B who is not an admin cannot accept; B's admin can.
    let mo = open(&t.w.sql, "ledger", &t.mo).unwrap();
    assert!(matches!(
        mandates::accept(&t.w.sql, &mo, &m.id, false, &[], NOW),
        Err(Error::Forbidden(_))
    ));
    // A cannot accept its own offer; designating a non-member is refused.
    assert!(matches!(
        mandates::accept(&t.w.sql, &t.a(), &m.id, false, &[], NOW),
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        mandates::accept(
            &t.w.sql,
            &t.b(),
            &m.id,
            false,
            std::slice::from_ref(&t.ada.id),
            NOW
        ),
        Err(Error::BadRequest(_))
    ));
    let accepted = mandates::accept(
        &t.w.sql,
        &t.b(),
        &m.id,
        false,
        std::slice::from_ref(&t.mo.id),
        NOW + 1,
    )
    .unwrap();
    assert_eq!(accepted.state, "accepted");
    assert_eq!(accepted.delegates, vec![t.mo.id.clone()]);
    assert!(matches!(
        mandates::accept(&t.w.sql, &t.b(), &m.id, false, &[], NOW + 2),
        Err(Error::Conflict(_))
    ));
    // Mo sees it as one he may use.
    let (given, received) = mandates::list(&t.w.sql, &mo, NOW).unwrap();
    assert!(given.is_empty());
    assert_eq!(received.len(), 1);
    for access in [t.a(), t.b()] {
        let log = audit(&t.w.sql, &access, None, 10).unwrap();
        assert_eq!(log[0].action, "mandate.accepted");
        assert_eq!(log[1].action, "mandate.offered");
    }
    // Either side revokes, once.
    mandates::revoke(&t.w.sql, &t.b(), &m.id, NOW + 3).unwrap();
    assert!(matches!(
        mandates::revoke(&t.w.sql, &t.a(), &m.id, NOW + 4),
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        mandates::list(&t.w.sql, &t.a(), NOW).unwrap().0[0].state,
        "revoked"
    );
}

#[test]
fn an_offer_stays_within_a_and_the_service() {
    let t = Two::new();
    let bad = |o: Offer| {
        let r = t.offer(o);
        assert!(matches!(r, Err(Error::BadRequest(_))), "{r:?}");
    };
    bad(Offer {
        roles: Some(vec!["buyer".into()]),
        ..t.to_ledger()
    });
    bad(Offer {
        roles: Some(vec![]),
        ..t.to_ledger()
    });
    bad(Offer {
        client_id: Some("shop".into()),
        roles: Some(vec!["buyer".into()]),
        ..t.to_ledger()
    });
    bad(Offer {
        project_id: Some("prj_nope".into()),
        ..t.to_ledger()
    });
    bad(Offer {
        agent_org: Some("acme".into()),
        ..t.to_ledger()
    });
    bad(Offer {
        agent_org: Some("nobody".into()),
        ..t.to_ledger()
    });
    bad(Offer {
        agent_email: Some("x@example.com".into()),
        ..t.to_ledger()
    });
    bad(Offer {
        expires_at: Some(NOW + 366 * DAY),
        ..t.to_ledger()
    });
    bad(Offer {
        not_before: Some(NOW + DAY),
        expires_at: Some(NOW + DAY),
        ..t.to_ledger()
    });
    // A service A has not activated.
    testkit::client(
        &t.w.sql,
        json!({"client_name": "Bank", "client_id": "bank", "redirect_uris": ["https://b.example/cb"],
               "b2b": true, "roles": [{"name": "teller", "description": "Tells"}]}),
        NOW,
    );
    bad(Offer {
        client_id: Some("bank".into()),
        project_id: None,
        roles: Some(vec!["teller".into()]),
        ..t.to_ledger()
    });
    // B's admin cannot offer in A's name: A is not found for them.
    assert_eq!(open(&t.w.sql, "acme", &t.ben).unwrap_err(), Error::NotFound);
    assert_eq!(crate::store::count_rows(&t.w.sql, "mandates").unwrap(), 0);
    // The operator's limit.
    mandates::set_max_days(&t.w.sql, 30, NOW).unwrap();
    bad(Offer {
        expires_at: Some(NOW + 31 * DAY),
        ..t.to_ledger()
    });
    assert_eq!(t.offer(t.to_ledger()).unwrap().expires_at, NOW + 30 * DAY);
    assert!(mandates::set_max_days(&t.w.sql, 366, NOW).is_err());
    assert!(mandates::set_max_days(&t.w.sql, 0, NOW).is_err());
}

#[test]
fn templates_fill_in_the_offer_and_cap_its_validity() {
    let t = Two::new();
    let tpl = mandates::create_template(
        &t.w.sql,
        "Accountant",
        "billing",
        &["invoice:submit".into(), "invoice:read".into()],
        90,
        NOW,
    )
    .unwrap();
    assert_eq!(tpl.roles, vec!["invoice:read", "invoice:submit"]);
    let m = t
        .offer(Offer {
            agent_org: Some("ledger".into()),
            template_id: Some(tpl.id.clone()),
            ..Offer::default()
        })
        .unwrap();
    assert_eq!(m.roles, vec!["invoice:read", "invoice:submit"]);
    assert_eq!(m.expires_at, NOW + 90 * DAY);
    assert_eq!(m.template_id.as_deref(), Some(tpl.id.as_str()));
    assert!(
        t.offer(Offer {
            agent_org: Some("ledger".into()),
            template_id: Some(tpl.id.clone()),
            expires_at: Some(NOW + 91 * DAY),
            ..Offer::default()
        })
        .is_err()
    );
    for (name, client, roles, days) in [
        ("", "billing", vec!["invoice:read"], 30),
        ("X", "nope", vec!["invoice:read"], 30),
        ("X", "billing", vec!["nope"], 30),
        ("X", "billing", vec!["invoice:read"], 0),
        ("X", "billing", vec!["invoice:read"], 366),
    ] {
        let roles: Vec<String> = roles.into_iter().map(str::to_owned).collect();
        assert!(mandates::create_template(&t.w.sql, name, client, &roles, days, NOW).is_err());
    }
    assert_eq!(mandates::templates(&t.w.sql).unwrap().len(), 1);
    mandates::delete_template(&t.w.sql, &tpl.id).unwrap();
    assert_eq!(
        mandates::delete_template(&t.w.sql, &tpl.id).unwrap_err(),
        Error::NotFound
    );
}

#[test]
fn a_named_person_accepts_with_their_verified_address() {
    let t = Two::new();
    let m = t
        .offer(Offer {
            agent_org: None,
            agent_email: Some("Cat@Freelance.example".into()),
            ..t.to_ledger()
        })
        .unwrap();
    assert_eq!(m.agent["email"], "cat@freelance.example");
    let mails = crate::store::dev_outbox::newest(&t.w.sql, Some("cat@freelance.example")).unwrap();
    let token = mails[0]
        .link
        .as_deref()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let (peeked, a) = mandates::peek(&t.w.sql, &token, NOW).unwrap();
    assert_eq!(
        (peeked.id.as_str(), a.slug.as_str()),
        (m.id.as_str(), "acme")
    );
    assert!(matches!(
        mandates::accept_as_person(&t.w.sql, &t.mo, &token, NOW),
        Err(Error::Forbidden(_))
    ));
    let cat = verified(&t.w, "cat@freelance.example");
    assert_eq!(mandates::mine(&t.w.sql, &cat, NOW).unwrap().len(), 1);
    let accepted = mandates::accept_as_person(&t.w.sql, &cat, &token, NOW).unwrap();
    assert_eq!(accepted.state, "accepted");
    assert!(matches!(
        mandates::accept_as_person(&t.w.sql, &cat, &token, NOW),
        Err(Error::DeadLink(_))
    ));
    assert!(matches!(
        mandates::revoke_as_person(&t.w.sql, &t.mo, &m.id, NOW),
        Err(Error::NotFound)
    ));
    mandates::revoke_as_person(&t.w.sql, &cat, &m.id, NOW).unwrap();
    assert_eq!(
        mandates::mine(&t.w.sql, &cat, NOW).unwrap()[0].state,
        "revoked"
    );
    assert_eq!(audit(&t.w.sql, &t.a(), None, 1).unwrap()[0].actor, cat.id);
}

#[test]
fn expired_offers_cannot_be_accepted_and_deleting_an_organisation_ends_its_mandates() {
    let t = Two::new();
    let m = t
        .offer(Offer {
            expires_at: Some(NOW + DAY),
            ..t.to_ledger()
        })
        .unwrap();
    assert!(matches!(
        mandates::accept(&t.w.sql, &t.b(), &m.id, true, &[], NOW + DAY),
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        mandates::list(&t.w.sql, &t.a(), NOW + DAY).unwrap().0[0].state,
        "expired"
    );
    let m = t.offer(t.to_ledger()).unwrap();
    mandates::accept(
        &t.w.sql,
        &t.b(),
        &m.id,
        false,
        std::slice::from_ref(&t.mo.id),
        NOW,
    )
    .unwrap();
    delete(&t.w.sql, &t.b(), NOW).unwrap();
    // Both of A's mandates to B ended: A's log says so for each.
    let log = audit(&t.w.sql, &t.a(), None, 2).unwrap();
    assert!(log.iter().all(|e| e.action == "mandate.ended"), "{log:?}");
    assert!(
        log.iter()
            .any(|e| e.target.as_deref() == Some(m.id.as_str())),
        "A's log tells that B's deletion ended the mandate"
    );
    assert_eq!(crate::store::count_rows(&t.w.sql, "mandates").unwrap(), 0);
    assert_eq!(
        crate::store::count_rows(&t.w.sql, "mandate_delegates").unwrap(),
        0
    );
    let _ = &t.ben;
}
