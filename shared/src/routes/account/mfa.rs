//! Account centre section `mfa` (docs/account.md). Filled in by its issue work.

use super::{Answer, Ctx};

/// Answers the pages of this section under `/account`.
pub fn page(_ctx: &Ctx, _rest: &str) -> Answer {
    Ok(None)
}

/// Answers the JSON API of this section under `/api/account/`.
pub fn api(_ctx: &Ctx, _rest: &str) -> Answer {
    Ok(None)
}
