//! End-to-end tests of the account centre (issue 13, docs/account.md): real
//! requests through the test host to the real components. One test binary,
//! one module per section.

mod common;

#[path = "account_centre/centre.rs"]
mod centre;
#[path = "account_centre/mfa.rs"]
mod mfa;
#[path = "account_centre/passkeys.rs"]
mod passkeys;
#[path = "account_centre/privacy.rs"]
mod privacy;
