//! Social and enterprise sign-in: people sign in with an upstream identity
//! provider (Google, Microsoft, Apple, GitHub, any OpenID provider), and the
//! upstream account is linked to their one Lanyard identity. See
//! docs/social.md.
//!
//! - [`providers`]: the dispatch by [`Kind`]: where to send the browser,
//!   and how to turn the callback into a verified [`Upstream`] person.
//! - [`oidc`]: the generic OpenID provider (discovery, token endpoint, ID
//!   token verification against the JWKS), which Google uses too.
//! - [`microsoft`], [`apple`], [`github`]: the presets that are more than
//!   an issuer (Entra ID's tenants, Apple's signed client secret and
//!   form_post, GitHub's OAuth 2.0 and REST API).
//! - [`flow`]: the sign-in in flight (state, nonce, PKCE, browser cookie).
//! - [`link`]: which Lanyard identity an upstream person is.
//! - [`connections`]: validation of the operator's connections.
//! - [`org_sso`]: organisations' own connections, home-realm discovery and
//!   just-in-time membership; [`domains`]: their proven email domains.

pub mod apple;
pub mod connections;
pub mod domains;
pub mod flow;
pub mod github;
pub mod link;
pub mod microsoft;
pub mod oidc;
pub mod org_sso;
pub mod providers;

use serde_json::{Map, Value as Json};

use crate::Env;
use crate::config;
use crate::error::{Error, Result};

pub use crate::store::connections::{Connection, Kind, Settings};

/// An upstream person, verified: who the provider says signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// The upstream issuer (`https://github.com` for GitHub).
    pub issuer: String,
    /// The upstream subject: stable per issuer.
    pub subject: String,
    /// The email the provider gives, if any (not yet normalised).
    pub email: Option<String>,
    /// Whether the provider says the email is verified.
    pub email_verified: bool,
    /// Every claim of the upstream person (for the attribute mapping).
    /// Apple's name, sent only at the first sign-in, is put here as
    /// `name`, `given_name` and `family_name`.
    pub claims: Map<String, Json>,
}

/// The client secret of a connection, from the Spin variable it names. A
/// variable that is not declared for the social component, or empty, is a
/// configuration error that names it.
pub fn secret(env: &Env, conn: &Connection) -> Result<String> {
    let name = conn.secret_variable.as_deref().ok_or_else(|| {
        Error::config(
            "secret_variable",
            format!("the connection `{}` names no secret variable", conn.id),
        )
    })?;
    // An organisation's connection may use only a variable the operator
    // still grants it, so that no secret but its own leaves for its provider.
    if !org_sso::secret_granted(env, conn)? {
        return Err(Error::config(
            org_sso::GRANTS_VARIABLE,
            format!(
                "the secret variable `{name}` of the organisation connection `{}` is not granted to its organisation",
                conn.id
            ),
        ));
    }
    config::optional(env.vars, name)?.ok_or_else(|| {
        Error::config(
            name,
            format!(
                "it holds the secret of the connection `{}`: declare it for the social component in spin.toml and give it a value",
                conn.id
            ),
        )
    })
}

/// The longest upstream answer read (discovery, JWKS, token, profile).
pub const MAX_UPSTREAM_BYTES: usize = 256 * 1024;

/// Sends a request to a connection's provider: a refused host, a transport
/// failure or time-out, a 5xx, or an answer that is too large is a clear
/// error naming the provider. Other statuses are the caller's to judge.
pub fn send(
    env: &Env,
    conn: &Connection,
    req: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>> {
    let res = env.http.send(req).map_err(|e| match e {
        Error::OutboundDenied(origin) => Error::OutboundDenied(origin),
        Error::Unavailable(why) => Error::Unavailable(format!(
            "{} is not answering right now ({why}). Please try again in a moment.",
            conn.name
        )),
        other => other,
    })?;
    if res.status().is_server_error() {
        return Err(Error::Unavailable(format!(
            "{} is having trouble right now (it answered {}). Please try again in a moment.",
            conn.name,
            res.status().as_u16()
        )));
    }
    if res.body().len() > MAX_UPSTREAM_BYTES {
        return Err(garbage(conn, "an answer that is too large"));
    }
    Ok(res)
}

/// The error for an upstream answer that cannot be read.
pub fn garbage(conn: &Connection, what: &str) -> Error {
    Error::Unavailable(format!(
        "{} sent {what}, so the sign-in cannot go on. Please try again later.",
        conn.name
    ))
}

/// Reads a JSON object from an upstream answer that must be a success.
pub fn json_object(
    conn: &Connection,
    res: &http::Response<Vec<u8>>,
    what: &str,
) -> Result<Map<String, Json>> {
    if !res.status().is_success() {
        return Err(garbage(
            conn,
            &format!("status {} for its {what}", res.status().as_u16()),
        ));
    }
    match serde_json::from_slice::<Json>(res.body()) {
        Ok(Json::Object(map)) => Ok(map),
        _ => Err(garbage(
            conn,
            &format!("a {what} that is not a JSON object"),
        )),
    }
}
