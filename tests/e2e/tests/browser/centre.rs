//! Browser tests of the account centre: `centre` (uses the parent's `Browser`).
