//! Security events: what happened to an account (sign-ins, failed
//! sign-ins, changed credentials, connected apps…), kept for its owner to
//! see in the account centre and in the export, and swept after
//! `security_event_retention_days`.

use serde_json::Value as Json;

use crate::Env;
use crate::device::Device;
use crate::error::Result;
use crate::store::security_events;

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A sign-in (detail: `amr`, and `idp` through an upstream provider).
    SignIn,
    /// A failed sign-in: a wrong password or second factor.
    SignInFailed,
    /// The password was changed (or first set, or reset).
    PasswordChanged,
    /// The email address was changed (detail: `from`, `to`).
    EmailChanged,
    /// A second factor was added (detail: `method`).
    MfaAdded,
    /// A second factor was removed (detail: `method`).
    MfaRemoved,
    /// Recovery codes were made anew.
    RecoveryCodesRenewed,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// An application was allowed (detail: `client_id`, `scopes`).
    AppConnected,
    /// An application's access was revoked (detail: `client_id`).
    AppRevoked,
    /// A session was ended from the account centre (detail: `sid`).
    SessionRevoked,
    /// The profile attributes were changed.
    ProfileChanged,
    /// The person downloaded their data.
    Export,
}

impl Kind {
    /// The name stored and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::PasswordChanged => "password_changed",
            Self::EmailChanged => "email_changed",
            Self::MfaAdded => "mfa_added",
            Self::MfaRemoved => "mfa_removed",
            Self::RecoveryCodesRenewed => "recovery_codes_renewed",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::AppConnected => "app_connected",
            Self::AppRevoked => "app_revoked",
            Self::SessionRevoked => "session_revoked",
            Self::ProfileChanged => "profile_changed",
            Self::Export => "export",
        }
    }
}

/// Records an event of an identity.
pub fn record(
    env: &Env,
    identity_id: &str,
    kind: Kind,
    detail: Json,
    device: &Device,
) -> Result<()> {
    security_events::insert(
        env.sql,
        identity_id,
        kind.as_str(),
        &detail,
        &device.addr,
        &device.user_agent,
        env.now,
    )
}
