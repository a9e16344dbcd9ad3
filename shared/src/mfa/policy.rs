//! What `/authorize` asks of a signed-in person before it issues a code:
//! two factors when the client asks for them (`acr_values` with
//! `urn:lanyard:acr:mfa`), and a second factor enrolled when the operator
//! requires one of everyone (`require_mfa`).

use crate::Env;
use crate::config::{self, Variables};
use crate::error::{Error, Result};
use crate::oidc::authorize::ACR_MFA;
use crate::oidc::grants;
use crate::web;

/// What a session lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: go on.
    Met,
    /// A second factor in this session: the step-up page.
    StepUp,
    /// The client asks for two factors, and the person has no second
    /// factor to give.
    Unmet,
    /// The operator requires a second factor, and the person has none yet:
    /// the enrolment page.
    Enrol,
}

/// Whether the operator requires a second factor of everyone
/// (`require_mfa`: `true` or `false`, default `false`).
pub fn require_mfa(vars: &dyn Variables) -> Result<bool> {
    match config::optional(vars, "require_mfa")?.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(Error::config("require_mfa", "use true or false")),
    }
}

/// What the session of `identity_id`, signed in by `amr`, lacks for a
/// client that asks for two factors (`wants_mfa`) or not.
pub fn need(env: &Env, wants_mfa: bool, identity_id: &str, amr: &[String]) -> Result<Need> {
    if grants::acr(&amr.join(" ")) == ACR_MFA {
        return Ok(Need::Met);
    }
    let required = require_mfa(env.vars)?;
    if !wants_mfa && !required {
        return Ok(Need::Met);
    }
    let enrolled = super::factors(env.sql, identity_id)?.any();
    Ok(match (enrolled, required, wants_mfa) {
        (false, true, _) => Need::Enrol,
        (false, false, _) => Need::Unmet,
        (true, _, true) => Need::StepUp,
        (true, _, false) => Need::Met,
    })
}

/// Where a person goes to meet `need`, then back to `back` (the
/// authorization request).
pub fn detour(need: Need, back: &str) -> String {
    match need {
        Need::Enrol => format!("/account/mfa?return_to={}", web::pct(back)),
        _ => format!("/login/mfa?step_up=1&return_to={}", web::pct(back)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mfa::{recovery, totp};
    use crate::oidc::authorize::{ACR_FED, ACR_PWD, acr_values};
    use crate::store::totp_secrets;
    use crate::testkit::{World, person};

    fn amr(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn acr_follows_the_methods() {
        for (methods, expected) in [
            ("pwd", ACR_PWD),
            ("pwd otp mfa", ACR_MFA),
            ("hwk", ACR_MFA),
            ("pwd hwk mfa", ACR_MFA),
            ("fed", ACR_FED),
            ("fed pwd", ACR_PWD),
        ] {
            assert_eq!(grants::acr(methods), expected, "{methods}");
        }
    }

    #[test]
    fn acr_values_keep_known_values_once() {
        assert_eq!(
            acr_values(Some(
                "urn:other  urn:lanyard:acr:mfa urn:lanyard:acr:mfa urn:lanyard:acr:pwd"
            )),
            [ACR_MFA, ACR_PWD]
        );
        assert!(acr_values(Some("loa2")).is_empty());
        assert!(acr_values(None).is_empty());
    }

    #[test]
    fn a_session_lacks_what_the_client_or_the_operator_asks_for() {
        let mut w = World::new();
        let ada = person(&w.sql, "ada@example.com", 0);
        let pwd = amr(&["pwd"]);
        let both = amr(&["pwd", "otp", "mfa"]);
        let n =
            |w: &World, wants: bool, amr: &[String]| need(&w.env(10), wants, &ada.id, amr).unwrap();
        assert_eq!(n(&w, false, &pwd), Need::Met);
        assert_eq!(n(&w, true, &pwd), Need::Unmet);
        w.set("require_mfa", Some("true"));
        assert_eq!(n(&w, false, &pwd), Need::Enrol);
        assert_eq!(n(&w, true, &pwd), Need::Enrol);
        // Enrolled.
        totp::start(&w.env(0), "Lanyard", &ada).unwrap();
        let row = totp_secrets::get(&w.sql, &ada.id).unwrap().unwrap();
        let secret: [u8; 20] = crate::crypto::b64url_decode(&row.secret)
            .unwrap()
            .try_into()
            .unwrap();
        totp::confirm(&w.env(0), &ada.id, &totp::code_at(secret, 0).unwrap()).unwrap();
        recovery::generate(&w.env(0), &ada.id).unwrap();
        assert_eq!(n(&w, false, &pwd), Need::Met);
        assert_eq!(n(&w, true, &pwd), Need::StepUp);
        assert_eq!(n(&w, true, &both), Need::Met);
        w.set("require_mfa", Some("yes"));
        assert!(matches!(
            need(&w.env(10), false, &ada.id, &pwd),
            Err(Error::Config { .. })
        ));
        assert_eq!(
            detour(Need::StepUp, "/authorize?a=1"),
            "/login/mfa?step_up=1&return_to=%2Fauthorize%3Fa%3D1"
        );
    }
}
