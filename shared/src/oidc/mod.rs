//! OpenID Connect provider: discovery and signing keys. Authorization, tokens,
//! userinfo and logout arrive with the OIDC issue.

pub mod assertion;
pub mod authorize;
pub mod clients;
pub mod discovery;
pub mod grants;
pub mod keys;
pub mod tokens;
