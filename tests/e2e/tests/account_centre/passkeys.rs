//! Account centre e2e tests: `passkeys`.
