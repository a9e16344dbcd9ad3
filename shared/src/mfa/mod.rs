//! Second factors (docs/account.md): TOTP authenticators, recovery codes,
//! passkeys, and the pending sign-in that waits for one of them.

pub mod check;
pub mod passkeys;
pub mod pending;
pub mod policy;
pub mod recovery;
pub mod totp;

use serde::Serialize;

use crate::error::Result;
use crate::store::{SqlStore, passkeys as passkey_rows, recovery_codes, totp_secrets};

/// The second factors a person has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Factors {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// How many passkeys.
    pub passkeys: i64,
    /// How many unused recovery codes.
    pub recovery_left: i64,
}

impl Factors {
    /// Whether the person has a second factor (recovery codes alone are a
    /// spare, not one).
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// The second factors of an identity.
pub fn factors(db: &dyn SqlStore, identity_id: &str) -> Result<Factors> {
    Ok(Factors {
        totp: totp_secrets::get(db, identity_id)?.is_some_and(|r| r.confirmed_at.is_some()),
        passkeys: passkey_rows::count(db, identity_id)?,
        recovery_left: recovery_codes::left(db, identity_id)?,
    })
}
