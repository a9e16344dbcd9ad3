//! Browser tests of the account centre: `mfa` (uses the parent's `Browser`).
