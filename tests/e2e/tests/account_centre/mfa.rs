//! Account centre e2e tests: `mfa`.
