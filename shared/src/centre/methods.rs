//! Sign-in methods: a summary of how a person can sign in (password,
//! linked upstream accounts, passkeys, an authenticator app). Linking and
//! unlinking happen on `/social/accounts`, second factors on their pages.

use serde::Serialize;

use crate::Env;
use crate::error::Result;
use crate::identity::Identity;
use crate::store::federated_identities;
use crate::{mfa, social};

/// An upstream account linked to the identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Linked {
    /// The provider's name (its connection id when it is no longer offered).
    pub provider: String,
    /// The upstream issuer.
    pub issuer: String,
    /// The upstream email at the last sign-in, if any.
    pub email: Option<String>,
    /// When it was linked.
    pub linked_at: i64,
    /// When it last signed in.
    pub last_used_at: i64,
}

/// How a person can sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Methods {
    /// Whether the account has a password.
    pub password: bool,
    /// The linked upstream accounts.
    pub linked: Vec<Linked>,
    /// How many passkeys the account has.
    pub passkeys: i64,
    /// Whether an authenticator app (TOTP) is set up.
    pub totp: bool,
    /// How many unused recovery codes are left.
    pub recovery_codes_left: i64,
}

/// The sign-in methods of an identity.
pub fn of(env: &Env, who: &Identity) -> Result<Methods> {
    let providers = social::connections::buttons(env)?;
    let linked = federated_identities::for_identity(env.sql, &who.id)?
        .into_iter()
        .map(|f| Linked {
            provider: providers
                .iter()
                .find(|(id, _)| *id == f.connection_id)
                .map_or_else(|| f.connection_id.clone(), |(_, name)| name.clone()),
            issuer: f.issuer,
            email: f.email,
            linked_at: f.created_at,
            last_used_at: f.last_used_at,
        })
        .collect();
    let factors = mfa::factors(env.sql, &who.id)?;
    Ok(Methods {
        password: who.password_hash.is_some(),
        linked,
        passkeys: factors.passkeys,
        totp: factors.totp,
        recovery_codes_left: factors.recovery_left,
    })
}
