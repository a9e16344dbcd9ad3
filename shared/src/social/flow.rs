//! A sign-in through an upstream provider, from the start to the callback.
//!
//! [`start`] stores a state (256-bit `state`, `nonce`, PKCE verifier; the
//! `state` and the browser's `__Host-lanyard_social` cookie stored as
//! SHA-256) for [`STATE_TTL`] and returns the provider's URL. [`callback`]
//! takes the state once, only from the browser that started it, has the
//! provider verify who signed in, and resolves the Lanyard identity
//! ([`super::link`]).

use http::{HeaderMap, HeaderValue};

use super::link::{self, Resolved};
use super::providers::{self, Callback, Pending};
use super::{Connection, Upstream};
use crate::Env;
use crate::accounts::Auth;
use crate::crypto;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::session::{self, is_token};
use crate::store::connections;
use crate::store::social_states::{self, SocialState};
use crate::web::{self, Params, SetCookie};

/// The browser cookie that binds a sign-in to the browser that started it,
/// with `Secure`.
pub const COOKIE: &str = "__Host-lanyard_social";
/// Its name when `cookie_secure` is off (plain-http development).
pub const COOKIE_PLAIN: &str = "lanyard_social";
/// How long a sign-in may take at the provider.
pub const STATE_TTL: i64 = 600;

fn cookie_name(auth: &Auth) -> Result<&'static str> {
    Ok(if auth.policy()?.secure {
        COOKIE
    } else {
        COOKIE_PLAIN
    })
}

/// An enabled connection, or a page saying there is none.
pub fn connection(env: &Env, id: &str) -> Result<Connection> {
    connections::get(env.sql, id)?
        .filter(|c| c.enabled)
        .ok_or_else(|| {
            Error::DeadLink(
                "This sign-in option is not available (any more). Go back and choose another way to sign in."
                    .into(),
            )
        })
}

/// The callback URL of a connection, which its provider must know.
pub fn redirect_uri(auth: &Auth, conn_id: &str) -> String {
    auth.config.url(&format!("/social/{conn_id}/callback"))
}

/// Where to send the browser, and the binding cookie to set.
#[derive(Debug)]
pub struct Started {
    /// The provider's authorization URL.
    pub location: String,
    /// `Set-Cookie` for the browser binding.
    pub cookie: HeaderValue,
}

/// Starts a sign-in (or, with `link_identity`, the link of another
/// upstream account to that signed-in identity).
pub fn start(
    env: &Env,
    auth: &Auth,
    conn: &Connection,
    return_to: Option<&str>,
    link_identity: Option<&str>,
    headers: &HeaderMap,
) -> Result<Started> {
    // One binding per browser: two tabs signing in at once both work.
    let browser = match web::cookie(headers, cookie_name(auth)?).filter(|v| is_token(v)) {
        Some(existing) => existing.to_owned(),
        None => crypto::random_token()?,
    };
    let state = crypto::random_token()?;
    let nonce = crypto::random_token()?;
    let verifier = crypto::random_token()?;
    let challenge = crypto::b64url(&crypto::sha256(verifier.as_bytes()));
    // The provider's URL first: if it cannot be had, nothing is stored.
    let location = providers::authorize_url(
        env,
        conn,
        &state,
        &nonce,
        &challenge,
        &redirect_uri(auth, &conn.id),
    )?;
    social_states::insert(
        env.sql,
        &crypto::hash_secret(&state),
        &SocialState {
            connection_id: conn.id.clone(),
            browser_hash: crypto::hash_secret(&browser),
            nonce,
            code_verifier: verifier,
            return_to: return_to.map(str::to_owned),
            link_identity_id: link_identity.map(str::to_owned),
            created_at: env.now,
            expires_at: env.now + STATE_TTL,
        },
    )?;
    let cookie = SetCookie {
        name: cookie_name(auth)?,
        value: &browser,
        max_age: Some(STATE_TTL),
        secure: auth.policy()?.secure,
    }
    .to_header()?;
    Ok(Started { location, cookie })
}

/// How a callback ends.
#[derive(Debug)]
pub enum Outcome {
    /// Signed in: the new session's cookie, and where to go.
    SignedIn {
        /// `Set-Cookie` of the session.
        cookie: HeaderValue,
        /// Where to go (a local path).
        return_to: Option<String>,
    },
    /// A signed-in person linked another upstream account.
    Linked {
        /// The connection's name.
        name: String,
        /// Where to go (a local path).
        return_to: Option<String>,
    },
    /// Signed in upstream, but the person has a second factor: a pending
    /// sign-in's cookie, and `/login/mfa` asks for the factor.
    SecondFactor {
        /// `Set-Cookie` of the pending sign-in.
        cookie: HeaderValue,
    },
    /// The existing account with this email must be proven first.
    NeedsPassword {
        /// The pending link's token.
        token: String,
    },
    /// The person cancelled at the provider.
    Cancelled {
        /// Where they were going (a local path).
        return_to: Option<String>,
    },
}

fn dead(why: &str) -> Error {
    Error::DeadLink(format!(
        "{why} Nothing was changed; please start the sign-in again."
    ))
}

/// Takes the state once, for this connection and browser; a clear error
/// for an unknown, used, expired or other browser's state.
fn take_state(
    env: &Env,
    auth: &Auth,
    conn_id: &str,
    state: &str,
    headers: &HeaderMap,
) -> Result<SocialState> {
    let hash = crypto::hash_secret(state);
    let browser = web::cookie(headers, cookie_name(auth)?)
        .filter(|v| is_token(v))
        .map(crypto::hash_secret);
    if let Some(browser) = &browser
        && let Some(taken) = social_states::take(env.sql, &hash, conn_id, browser, env.now)?
    {
        return Ok(taken);
    }
    Err(match social_states::get(env.sql, &hash)? {
        None => dead("This sign-in is not one we started."),
        Some(r) if r.used_at.is_some() => dead("This sign-in was finished already."),
        Some(r) if r.state.expires_at <= env.now => {
            dead("This sign-in took too long (more than 10 minutes).")
        }
        Some(_) => dead(
            "This sign-in was started in another browser (or this browser does not keep cookies for this site).",
        ),
    })
}

/// Handles the provider's callback (its query, or its form for
/// `form_post`).
pub fn callback(
    env: &Env,
    auth: &Auth,
    conn_id: &str,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Outcome> {
    if let Some(error) = params.one("error")? {
        let conn = connection(env, conn_id)?;
        // The state is spent either way; it tells where the person was going.
        let return_to = match params.one("state")? {
            Some(state) => take_state(env, auth, conn_id, state, headers)
                .ok()
                .and_then(|s| s.return_to),
            None => None,
        };
        if error == "access_denied" {
            return Ok(Outcome::Cancelled { return_to });
        }
        let detail = params
            .one("error_description")?
            .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        return Err(Error::Upstream(format!(
            "{} could not sign you in ({}{detail}). Please try again.",
            conn.name,
            error.chars().take(64).collect::<String>()
        )));
    }
    let state = params
        .one("state")?
        .ok_or_else(|| dead("The provider's answer has no state."))?;
    let code = params
        .one("code")?
        .ok_or_else(|| Error::Upstream("The provider's answer has no code.".into()))?
        .to_owned();
    let taken = take_state(env, auth, conn_id, state, headers)?;
    let conn = connection(env, conn_id)?;
    let up = providers::finish(
        env,
        &conn,
        &Callback {
            code,
            user: params.one("user")?.map(str::to_owned),
        },
        &Pending {
            nonce: taken.nonce.clone(),
            code_verifier: taken.code_verifier.clone(),
        },
        &redirect_uri(auth, &conn.id),
    )?;
    let device = Device::of(env.vars, headers)?;
    finish_as(env, auth, &conn, &up, &taken, &device)
}

fn finish_as(
    env: &Env,
    auth: &Auth,
    conn: &Connection,
    up: &Upstream,
    taken: &SocialState,
    device: &Device,
) -> Result<Outcome> {
    if let Some(identity_id) = &taken.link_identity_id {
        link::link_to(env, conn, up, identity_id)?;
        return Ok(Outcome::Linked {
            name: conn.name.clone(),
            return_to: taken.return_to.clone(),
        });
    }
    match link::resolve(env, auth, conn, up, taken.return_to.as_deref())? {
        Resolved::Identity(who) => {
            // An organisation's connection makes its people members.
            super::org_sso::after_sign_in(env.sql, conn, &who.id, env.now)?;
            let return_to = taken.return_to.clone();
            Ok(
                match sign_in(
                    env,
                    auth,
                    &who,
                    &conn.id,
                    &["fed"],
                    device,
                    return_to.as_deref(),
                )? {
                    SignIn::Session(cookie) => Outcome::SignedIn { cookie, return_to },
                    SignIn::SecondFactor(cookie) => Outcome::SecondFactor { cookie },
                },
            )
        }
        Resolved::NeedsPassword { token, .. } => Ok(Outcome::NeedsPassword { token }),
    }
}

/// How a federated sign-in goes on.
#[derive(Debug)]
pub enum SignIn {
    /// A session: its `Set-Cookie`.
    Session(HeaderValue),
    /// The person has a second factor, which an upstream sign-in does not
    /// replace: a pending sign-in's `Set-Cookie`, for `/login/mfa`.
    SecondFactor(HeaderValue),
}

/// Starts the session of a federated sign-in: `amr` as given, `idp` the
/// connection. A person with a second factor is asked for it first
/// (`return_to` waits with the pending sign-in).
pub fn sign_in(
    env: &Env,
    auth: &Auth,
    who: &Identity,
    conn_id: &str,
    amr: &[&str],
    device: &Device,
    return_to: Option<&str>,
) -> Result<SignIn> {
    if crate::mfa::factors(env.sql, &who.id)?.any() {
        return Ok(SignIn::SecondFactor(crate::mfa::pending::begin_via(
            env,
            auth.policy()?,
            who,
            amr,
            Some(conn_id),
            return_to,
        )?));
    }
    let cookie = session::start(
        env,
        auth.policy()?,
        &session::New {
            sub: &who.id,
            generation: who.session_generation,
            amr,
            idp: Some(conn_id),
            device,
        },
    )?;
    let detail = serde_json::json!({ "amr": amr, "idp": conn_id });
    crate::events::record(env, &who.id, crate::events::Kind::SignIn, detail, device)?;
    Ok(SignIn::Session(cookie))
}
