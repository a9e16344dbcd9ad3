//! The dispatch by connection [`Kind`]: where to send the browser
//! ([`authorize_url`]) and how to turn the provider's callback into a
//! verified [`Upstream`] person ([`finish`]).

use super::{Connection, Kind, Upstream, apple, github, microsoft, oidc};
use crate::Env;
use crate::error::Result;

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
        Kind::Microsoft => {
            microsoft::authorize_url(env, conn, state, nonce, code_challenge, redirect_uri)
        }
        Kind::Apple => apple::authorize_url(env, conn, state, nonce, code_challenge, redirect_uri),
        // No ID token, so no nonce.
        Kind::Github => github::authorize_url(env, conn, state, code_challenge, redirect_uri),
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
        Kind::Microsoft => microsoft::finish(env, conn, cb, pending, redirect_uri),
        Kind::Apple => apple::finish(env, conn, cb, pending, redirect_uri),
        Kind::Github => github::finish(env, conn, cb, pending, redirect_uri),
    }
}
