//! Checking a second-factor code typed by a person: a TOTP code or a
//! recovery code, at the second step of a sign-in, a step-up or a re-entry.

use serde_json::json;

use super::{recovery, totp};
use crate::Env;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::identity::Identity;
use crate::throttle::{self, Limits};

/// The answer to a wrong or spent code.
pub const BAD_CODE: &str = "That code is not right, or it was used already. Enter the code your authenticator app shows now, or an unused recovery code.";

/// What a right code was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A code of the TOTP authenticator.
    Totp,
    /// A recovery code (now spent).
    Recovery,
}

impl Proof {
    /// The `amr` value of the method (RFC 8176): `otp` for both.
    pub fn amr(self) -> &'static str {
        "otp"
    }
}

/// Checks a TOTP or recovery code of `who`. Each try counts against the
/// same account and address limits as passwords, before the check (so that
/// parallel guesses cannot all pass); a right code gives them back. A wrong
/// one is recorded as a `sign_in_failed` event, a recovery code used as a
/// `recovery_code_used` one.
pub fn prove_code(
    env: &Env,
    limits: &Limits,
    who: &Identity,
    code: &str,
    device: &Device,
) -> Result<Proof> {
    let code = code.trim();
    if code.is_empty() {
        return Err(Error::bad_request(
            "Enter the code from your authenticator app, or a recovery code.",
        ));
    }
    if code.len() > 64 {
        return Err(Error::Unauthorized(BAD_CODE.into()));
    }
    let acct = throttle::account_key(&who.email);
    let addr = throttle::address_key("login", &device.addr);
    throttle::reserve(env.sql, &addr, &limits.address, env.now)?;
    throttle::reserve(env.sql, &acct, &limits.account, env.now)?;
    let proof = if totp::normalise(code).is_some() {
        totp::verify(env, &who.id, code)?.then_some(Proof::Totp)
    } else {
        recovery::spend(env, &who.id, code)?.then_some(Proof::Recovery)
    };
    let Some(proof) = proof else {
        events::record(
            env,
            &who.id,
            Kind::SignInFailed,
            json!({ "method": "otp" }),
            device,
        )?;
        return Err(Error::Unauthorized(BAD_CODE.into()));
    };
    throttle::clear(env.sql, &acct)?;
    throttle::refund(env.sql, &addr)?;
    if proof == Proof::Recovery {
        events::record(env, &who.id, Kind::RecoveryCodeUsed, json!({}), device)?;
    }
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Auth;
    use crate::store::{security_events, totp_secrets};
    use crate::testkit::{World, person};

    #[test]
    fn wrong_codes_count_against_the_account_limit() {
        let w = World::with(&[("login_max_failures", "3")]);
        let auth = Auth::load(&w.vars).unwrap();
        let ada = person(&w.sql, "ada@example.com", 0);
        let env = w.env(100);
        totp::start(&env, "Lanyard", &ada).unwrap();
        let row = totp_secrets::get(&w.sql, &ada.id).unwrap().unwrap();
        let secret: [u8; 20] = crate::crypto::b64url_decode(&row.secret)
            .unwrap()
            .try_into()
            .unwrap();
        totp::confirm(&env, &ada.id, &totp::code_at(secret, 100).unwrap()).unwrap();
        let codes = recovery::generate(&env, &ada.id).unwrap();
        let device = Device::addr("192.0.2.9");
        let env = w.env(200);
        assert_eq!(
            prove_code(
                &env,
                auth.limits().unwrap(),
                &ada,
                &totp::code_at(secret, 200).unwrap(),
                &device
            )
            .unwrap(),
            Proof::Totp
        );
        assert_eq!(
            prove_code(&env, auth.limits().unwrap(), &ada, &codes[0], &device).unwrap(),
            Proof::Recovery
        );
        for _ in 0..3 {
            assert!(matches!(
                prove_code(&env, auth.limits().unwrap(), &ada, &codes[0], &device),
                Err(Error::Unauthorized(_))
            ));
        }
        // The limit is reached: even a right code waits.
        assert!(matches!(
            prove_code(&env, auth.limits().unwrap(), &ada, &codes[1], &device),
            Err(Error::TooManyRequests { .. })
        ));
        let kinds: Vec<String> = security_events::page(&w.sql, &ada.id, None, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "sign_in_failed",
                "sign_in_failed",
                "sign_in_failed",
                "recovery_code_used"
            ]
        );
    }
}
