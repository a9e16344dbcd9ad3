//! Privacy under the GDPR (docs/account.md): the export of everything held
//! about a person ([`export`], Art. 15/20), the erasure of their account
//! ([`erase`], Art. 17), and their consent records ([`consent`]: the terms
//! version accepted and marketing choices, with history). The retention of
//! security events is a step of [`crate::sweep`]. The tests are those of
//! the account centre's privacy section (`routes::account::privacy`).

pub mod consent;
pub mod erase;
pub mod export;

/// What erasure writes in place of the person's id or address in the rows
/// that are kept (the organisation audit, mandates, invitations…).
pub const ERASED: &str = "erased";
