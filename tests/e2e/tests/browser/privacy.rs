//! Browser tests of the account centre: `privacy` (uses the parent's `Browser`).
