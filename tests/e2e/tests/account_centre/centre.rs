//! Account centre e2e tests: `centre`.
