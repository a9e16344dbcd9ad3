//! The account centre's domain (docs/account.md): what a signed-in person
//! can do to their own account. Each module validates all its input before
//! it writes, records a security event, and leaves nothing half-changed.
//! The pages and the JSON API are in `routes::account::centre`.

pub mod activity;
pub mod apps;
pub mod email;
pub mod methods;
pub mod password;
pub mod profile;
pub mod sessions;
