//! A token Lanyard signs for a login through a mandate comes out of the
//! verifier typed: the principal as the organisation, `act` and `mandate`.

// A test crate: its helpers, not only its `#[test]` functions, may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lanyard::config::Config;
use lanyard::oidc::keys::Alg;
use lanyard::oidc::tokens::{self, AccessClaims, MandateClaims, OrgClaims, Signer};
use lanyard::testkit::{self, ISSUER, World};
use lanyard_verifier::{Actor, Fetched, LanyardClaims, Mandate, TokenKind, Verifier};

const NOW: i64 = 1_800_000_000;

#[test]
fn lanyards_mandate_claims_are_the_verifiers() {
    let w = World::new();
    let config = Config::load(&w.vars).unwrap();
    let env = w.env(NOW);
    let custom = AccessClaims {
        client_id: "billing".into(),
        scope: "openid".into(),
        auth_time: Some(NOW - 5),
        sid: None,
        org: Some(OrgClaims {
            org_id: "org_A".into(),
            org_slug: "acme".into(),
            org_name: "Acme Oy".into(),
            roles: Vec::new(),
            project_roles: [("prj_1".to_owned(), vec!["invoice:read".to_owned()])].into(),
        }),
        act: Some(tokens::Actor {
            sub: "person-1".into(),
            org_id: Some("org_B".into()),
        }),
        mandate: Some(MandateClaims {
            id: "mnd_1".into(),
            expires_at: NOW + 600,
        }),
    };
    let claims = tokens::claims(custom, &config, "person-1", "billing", NOW, 300).unwrap();
    let token = Signer::load(&env, &config, Alg::Es256)
        .unwrap()
        .sign(claims, "at+jwt")
        .unwrap();

    let body = testkit::jwks(&env, &config);
    let verifier = Verifier::new(ISSUER, "billing", move |_: &str| {
        Ok(Fetched {
            status: 200,
            body: body.clone(),
            cache_control: None,
        })
    });
    let ok = verifier
        .verify_at::<LanyardClaims>(&token, TokenKind::Access, NOW as u64 + 1)
        .unwrap();
    assert_eq!(ok.sub, "person-1");
    let org = ok.claims.organisation.unwrap();
    assert_eq!((org.id.as_str(), org.slug.as_str()), ("org_A", "acme"));
    assert!(org.has_project_role("prj_1", "invoice:read") && org.roles.is_empty());
    assert_eq!(
        ok.claims.act,
        Some(Actor {
            sub: "person-1".into(),
            org_id: Some("org_B".into()),
            act: None,
        })
    );
    assert_eq!(
        ok.claims.mandate,
        Some(Mandate {
            id: "mnd_1".into(),
            expires_at: NOW as u64 + 600,
        })
    );
    assert_eq!(ok.claims.claims["client_id"], "billing");
}
