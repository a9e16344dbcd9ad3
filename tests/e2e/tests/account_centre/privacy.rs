//! Account centre e2e tests: `privacy`.
