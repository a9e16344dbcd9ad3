//! The dispatch by connection [`Kind`]: where to send the browser
//! ([`authorize_url`]) and how to turn the provider's callback into a
//! verified [`Upstream`] person ([`finish`]).

use super::{Connection, Kind, Upstream, oidc};
use crate::Env;
use crate::error::{Error, Result};

/// What the provider sent back to the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The authorization code.
    pub code: String,
    /// Apple's `user` JSON (the name), sent with the first sign-in only.
    pub user: Option<String>,
}

/// What the sign-in in flight kept for its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier.
    pub code_verifier: String,
}

fn not_built(kind: Kind) -> Error {
    Error::Unavailable(format!(
        "Sign-in with {} connections is not built yet.",
        kind.as_str()
    ))
}

/// The provider's authorization URL for this sign-in: the authorization
/// code flow with PKCE (S256), `state`, `nonce` and `redirect_uri`.
pub fn authorize_url(
    env: &Env,
    conn: &Connection,
    state: &str,
    nonce: &str,
    code_challenge: &str,
    redirect_uri: &str,
) -> Result<String> {
    match conn.kind {
        Kind::Oidc | Kind::Google => {
            oidc::authorize_url(env, conn, state, nonce, code_challenge, redirect_uri)
        }
        kind @ (Kind::Microsoft | Kind::Apple | Kind::Github) => Err(not_built(kind)),
    }
}

/// Exchanges the callback's code and verifies who signed in.
pub fn finish(
    env: &Env,
    conn: &Connection,
    cb: &Callback,
    pending: &Pending,
    redirect_uri: &str,
) -> Result<Upstream> {
    match conn.kind {
        Kind::Oidc | Kind::Google => oidc::finish(env, conn, cb, pending, redirect_uri),
        kind @ (Kind::Microsoft | Kind::Apple | Kind::Github) => Err(not_built(kind)),
    }
}
