//! The generic OpenID provider: discovery, the token endpoint and the ID
//! token's verification against the provider's JWKS.

use super::providers::{Callback, Pending};
use super::{Connection, Upstream};
use crate::Env;
use crate::error::{Error, Result};

/// The provider's authorization URL for this sign-in.
pub fn authorize_url(
    _env: &Env,
    _conn: &Connection,
    _state: &str,
    _nonce: &str,
    _code_challenge: &str,
    _redirect_uri: &str,
) -> Result<String> {
    Err(Error::Unavailable(
        "OpenID sign-in is not built yet.".into(),
    ))
}

/// Exchanges the code and verifies the ID token.
pub fn finish(
    _env: &Env,
    _conn: &Connection,
    _cb: &Callback,
    _pending: &Pending,
    _redirect_uri: &str,
) -> Result<Upstream> {
    Err(Error::Unavailable(
        "OpenID sign-in is not built yet.".into(),
    ))
}
