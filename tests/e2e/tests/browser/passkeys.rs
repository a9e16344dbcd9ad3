//! Browser tests of the account centre: `passkeys` (uses the parent's `Browser`).
