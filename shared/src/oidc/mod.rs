//! The OpenID Connect provider, without HTTP: discovery, signing keys,
//! clients and their authentication, the authorization request, the token
//! grants (and RFC 8693 token exchange), the tokens themselves,
//! introspection and revocation.

pub mod assertion;
pub mod authorize;
pub mod clients;
pub mod discovery;
pub mod exchange;
pub mod grants;
pub mod introspection;
pub mod jws;
pub mod keys;
pub mod logout;
pub mod logout_token;
pub mod signout;
pub mod tokens;
