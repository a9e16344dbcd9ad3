//! Passkeys (WebAuthn): registration, a passkey as the second factor after
//! a password, and passwordless sign-in with a discoverable credential.
//!
//! The relying party is webauthn-rs, built per request from the issuer: its
//! host is the RP id, its origin the only origin accepted. Each ceremony is
//! two requests; the state between them lives in `webauthn_states` for
//! [`STATE_SECONDS`] under the SHA-256 of a random handle given to the
//! browser, and is taken once. Every identity has one random user handle (a
//! UUID) on all its passkeys, which a discoverable sign-in returns and which
//! must match the passkey's owner. webauthn-rs refuses a signature counter
//! that does not move forward, and a use is recorded only if the counter is
//! still the one it was checked against. Wrong passkeys count against the
//! same limits as wrong passwords.

use http::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::Env;
use crate::config::Config;
use crate::crypto;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::identity::{self, Identity};
use crate::session::{self, Policy};
use crate::store::passkeys::{self as rows, Listed, Row};
use crate::store::webauthn_states::{self as states, Purpose};
use crate::throttle::{self, Limits};

/// Seconds between a ceremony's options and its answer.
pub const STATE_SECONDS: i64 = 300;
/// The name of a passkey whose owner gave none.
pub const DEFAULT_NAME: &str = "Passkey";
/// The longest name, in characters.
pub const MAX_NAME: usize = 64;
/// The `amr` of a passwordless sign-in: a user-verified passkey is two
/// factors (something held, and a PIN or biometric).
pub const AMR: [&str; 2] = ["hwk", "mfa"];

const EXPIRED: &str = "This passkey request has expired or was already used. Try again.";
const REFUSED: &str = "This passkey could not be verified. Try again, or sign in another way.";

/// The settings a sign-in with a passkey needs (from `accounts::Auth`).
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// The issuer (the relying party) and product name.
    pub config: &'a Config<'a>,
    /// Session lifetimes and cookies.
    pub policy: &'a Policy,
    /// The limits wrong passkeys count against.
    pub limits: &'a Limits,
}

/// How a right passwordless sign-in ends.
#[derive(Debug)]
pub enum SignedIn {
    /// A new session: set this cookie.
    Session(HeaderValue),
    /// The passkey is right, but the email is not verified yet: no session.
    Unverified(String),
}

/// A ceremony started: the handle that names its state, and the options for
/// `navigator.credentials.create()` or `.get()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The random handle the browser sends back with its answer.
    pub handle: String,
    /// The options (`{"publicKey": …}`).
    pub options: Json,
}

impl Started {
    /// `{"handle": …, "publicKey": …}`, as the browser gets it.
    pub fn to_json(&self) -> Json {
        let mut out = self.options.clone();
        if let Some(map) = out.as_object_mut() {
            map.insert("handle".into(), Json::String(self.handle.clone()));
        }
        out
    }
}

/// The relying party of this issuer.
pub fn relying_party(config: &Config) -> Result<Webauthn> {
    let bad = || Error::config("issuer", "passkeys need an issuer with a host name");
    let origin = Url::parse(&config.issuer).map_err(|_| bad())?;
    let rp_id = origin.host_str().ok_or_else(bad)?.to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .map_err(|_| {
            Error::config(
                "issuer",
                "passkeys need an issuer whose host is a domain name, not an IP address",
            )
        })?
        .rp_name(config.product_name()?)
        .build()
        .map_err(|e| Error::Internal(format!("webauthn: {e:?}")))
}

/// A passkey's name: trimmed, 1 to [`MAX_NAME`] printable characters;
/// [`DEFAULT_NAME`] when none is given.
pub fn validate_name(raw: Option<&str>) -> Result<String> {
    let name = raw.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Ok(DEFAULT_NAME.to_owned());
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::bad_request(format!(
            "Give the passkey a name of at most {MAX_NAME} printable characters."
        )));
    }
    Ok(name.to_owned())
}

fn json_of<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("webauthn state: {e}")))
}

fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("webauthn state: {e}")))
}

fn credential<T: for<'de> Deserialize<'de>>(value: &Json) -> Result<T> {
    T::deserialize(value).map_err(|e| {
        Error::bad_request(format!(
            "The passkey's answer (credential) is not valid: {e}"
        ))
    })
}

/// Saves a ceremony's state under a new handle.
fn save(
    env: &Env,
    identity_id: Option<&str>,
    purpose: Purpose,
    state: &str,
    options: Json,
) -> Result<Started> {
    let handle = crypto::random_token()?;
    states::insert(
        env.sql,
        &crypto::hash_secret(&handle),
        identity_id,
        purpose,
        state,
        env.now + STATE_SECONDS,
    )?;
    Ok(Started { handle, options })
}

/// Takes a ceremony's state, once, before it expires; refused when it is
/// not `identity_id`'s (when one is expected).
fn take(env: &Env, handle: &str, purpose: Purpose, identity_id: Option<&str>) -> Result<String> {
    let taken = states::take(env.sql, &crypto::hash_secret(handle), purpose, env.now)?
        .ok_or_else(|| Error::bad_request(EXPIRED))?;
    if identity_id.is_some() && taken.identity_id.as_deref() != identity_id {
        return Err(Error::bad_request(EXPIRED));
    }
    Ok(taken.state)
}

fn to_options<T: Serialize>(value: &T) -> Result<Json> {
    serde_json::to_value(value).map_err(|e| Error::Internal(format!("webauthn options: {e}")))
}

/// What a registration keeps between its two requests.
#[derive(Serialize, Deserialize)]
struct Registering {
    user_handle: String,
    state: PasskeyRegistration,
}

/// The user handle of an identity: the one on its passkeys, or a new one.
fn user_handle(env: &Env, identity_id: &str) -> Result<String> {
    match rows::handle_of(env.sql, identity_id)? {
        Some(h) => Ok(h),
        None => Ok(Uuid::new_v4().hyphenated().to_string()),
    }
}

/// Starts adding a passkey to `who`: the options ask for a discoverable,
/// user-verified credential, and exclude the passkeys `who` has.
pub fn start_registration(env: &Env, config: &Config, who: &Identity) -> Result<Started> {
    let rp = relying_party(config)?;
    let handle = user_handle(env, &who.id)?;
    let uuid = Uuid::parse_str(&handle)
        .map_err(|_| Error::Internal("a stored user handle is not a UUID".into()))?;
    let exclude = rows::records(env.sql, &who.id)?
        .iter()
        .filter_map(|r| crypto::b64url_decode(&r.credential_id))
        .collect::<Vec<_>>();
    let display = who
        .attributes
        .get("name")
        .and_then(Json::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(&who.email);
    let (ccr, state) = rp
        .start_passkey_registration(uuid, &who.email, display, Some(exclude))
        .map_err(|e| Error::Internal(format!("webauthn: {e:?}")))?;
    let mut options = to_options(&ccr)?;
    // webauthn-rs asks for a non-resident key; a passwordless sign-in needs
    // one the authenticator can discover.
    if let Some(sel) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(Json::as_object_mut)
    {
        sel.insert("residentKey".into(), json!("required"));
        sel.insert("requireResidentKey".into(), json!(true));
    }
    let state = json_of(&Registering {
        user_handle: handle,
        state,
    })?;
    save(env, Some(&who.id), Purpose::Register, &state, options)
}

/// Finishes adding a passkey: verifies the authenticator's answer against
/// the state of `handle` (which must be `who`'s), and stores it under
/// `name`. The name is checked before the state is used.
pub fn finish_registration(
    env: &Env,
    config: &Config,
    who: &Identity,
    handle: &str,
    name: Option<&str>,
    answer: &Json,
    device: &Device,
) -> Result<Listed> {
    let name = validate_name(name)?;
    let answer: RegisterPublicKeyCredential = credential(answer)?;
    let rp = relying_party(config)?;
    let reg: Registering = parse(&take(env, handle, Purpose::Register, Some(&who.id))?)?;
    let passkey = rp
        .finish_passkey_registration(&answer, &reg.state)
        .map_err(|_| Error::bad_request(REFUSED))?;
    let record = serde_json::to_value(&passkey)
        .map_err(|e| Error::Internal(format!("webauthn credential: {e}")))?;
    let row = Row {
        credential_id: crypto::b64url(passkey.cred_id()),
        identity_id: who.id.clone(),
        user_handle: reg.user_handle,
        name,
        passkey: record.to_string(),
        sign_count: record
            .pointer("/cred/counter")
            .and_then(Json::as_i64)
            .unwrap_or(0),
        created_at: env.now,
        last_used_at: None,
    };
    if !rows::insert(env.sql, &row)? {
        return Err(Error::Conflict(
            "This passkey is already registered.".into(),
        ));
    }
    events::record(
        env,
        &who.id,
        Kind::MfaAdded,
        json!({ "method": "passkey", "name": row.name }),
        device,
    )?;
    Ok(Listed {
        id: row.credential_id,
        name: row.name,
        created_at: row.created_at,
        last_used_at: None,
    })
}

/// Renames one of `who`'s passkeys.
pub fn rename(env: &Env, identity_id: &str, id: &str, name: Option<&str>) -> Result<String> {
    let name = validate_name(name)?;
    if !rows::rename(env.sql, identity_id, id, &name)? {
        return Err(Error::NotFound);
    }
    Ok(name)
}

/// Deletes one of `who`'s passkeys (the caller checks the recent sign-in).
pub fn delete(env: &Env, identity_id: &str, id: &str, device: &Device) -> Result<()> {
    let Some(row) = rows::by_credential(env.sql, id)?.filter(|r| r.identity_id == identity_id)
    else {
        return Err(Error::NotFound);
    };
    if !rows::delete(env.sql, identity_id, id)? {
        return Err(Error::NotFound);
    }
    events::record(
        env,
        identity_id,
        Kind::MfaRemoved,
        json!({ "method": "passkey", "name": row.name }),
        device,
    )
}

/// Starts a passwordless sign-in: options for any discoverable passkey of
/// this site, with user verification, for an explicit button (no
/// conditional mediation).
pub fn start_sign_in(env: &Env, config: &Config) -> Result<Started> {
    let rp = relying_party(config)?;
    let (mut rcr, state) = rp
        .start_discoverable_authentication()
        .map_err(|e| Error::Internal(format!("webauthn: {e:?}")))?;
    rcr.mediation = None;
    save(
        env,
        None,
        Purpose::Discover,
        &json_of(&state)?,
        to_options(&rcr)?,
    )
}

/// The limits a passkey attempt counts against: the client address, and
/// the account once it is known.
struct Attempt<'a> {
    addr: String,
    account: Option<String>,
    limits: &'a Limits,
}

impl<'a> Attempt<'a> {
    fn new(env: &Env, limits: &'a Limits, device: &Device) -> Result<Self> {
        let addr = throttle::address_key("login", &device.addr);
        throttle::reserve(env.sql, &addr, &limits.address, env.now)?;
        Ok(Self {
            addr,
            account: None,
            limits,
        })
    }

    fn account(&mut self, env: &Env, email: &str) -> Result<()> {
        let key = throttle::account_key(email);
        throttle::reserve(env.sql, &key, &self.limits.account, env.now)?;
        self.account = Some(key);
        Ok(())
    }

    /// A right passkey: the account's attempts are forgotten, the address
    /// gets its attempt back.
    fn succeeded(&self, env: &Env) -> Result<()> {
        if let Some(key) = &self.account {
            throttle::clear(env.sql, key)?;
        }
        throttle::refund(env.sql, &self.addr)
    }
}

/// Verifies `answer` against the stored passkey `row` with `check`, and
/// records the use: the updated record, its counter and the time.
fn use_passkey(
    env: &Env,
    row: &Row,
    device: &Device,
    check: impl FnOnce(&Passkey) -> Result<webauthn_rs::prelude::AuthenticationResult>,
) -> Result<()> {
    let mut passkey: Passkey = parse(&row.passkey)?;
    let result = match check(&passkey) {
        Ok(r) => r,
        Err(e) => {
            events::record(
                env,
                &row.identity_id,
                Kind::SignInFailed,
                json!({ "method": "passkey" }),
                device,
            )?;
            return Err(e);
        }
    };
    passkey.update_credential(&result);
    let record = json_of(&passkey)?;
    // Of two answers checked against one counter, one is recorded.
    if !rows::record_use(
        env.sql,
        &row.credential_id,
        &record,
        row.sign_count,
        i64::from(result.counter()).max(row.sign_count),
        env.now,
    )? {
        return Err(Error::Unauthorized(REFUSED.into()));
    }
    Ok(())
}

/// Finishes a passwordless sign-in: the passkey named by the answer must
/// be stored, carry the user handle the authenticator returned, and sign
/// the challenge with user verification and a counter that moved forward.
/// A verified account gets a session (`amr` [`AMR`]); an unverified one
/// none.
pub fn finish_sign_in(
    env: &Env,
    auth: Settings<'_>,
    handle: &str,
    answer: &Json,
    device: &Device,
) -> Result<SignedIn> {
    let answer: PublicKeyCredential = credential(answer)?;
    let rp = relying_party(auth.config)?;
    let state: DiscoverableAuthentication = parse(&take(env, handle, Purpose::Discover, None)?)?;
    let refused = || Error::Unauthorized(REFUSED.into());
    let mut attempt = Attempt::new(env, auth.limits, device)?;
    let (uuid, cred_id) = rp
        .identify_discoverable_authentication(&answer)
        .map_err(|_| refused())?;
    let row = rows::by_credential(env.sql, &crypto::b64url(cred_id))?.ok_or_else(refused)?;
    // The user handle is the passkey owner's, and names that owner.
    if row.user_handle != uuid.hyphenated().to_string()
        || rows::identity_of_handle(env.sql, &row.user_handle)?.as_deref()
            != Some(row.identity_id.as_str())
    {
        return Err(refused());
    }
    let who = identity::by_id(env.sql, &row.identity_id)?.ok_or_else(refused)?;
    attempt.account(env, &who.email)?;
    use_passkey(env, &row, device, |passkey| {
        rp.finish_discoverable_authentication_v2(&answer, state, passkey)
            .map_err(|_| refused())
    })?;
    attempt.succeeded(env)?;
    if !who.email_verified {
        return Ok(SignedIn::Unverified(who.email));
    }
    let cookie: HeaderValue = session::start(
        env,
        auth.policy,
        &session::New {
            sub: &who.id,
            generation: who.session_generation,
            amr: &AMR,
            idp: None,
            device,
        },
    )?;
    events::record(env, &who.id, Kind::SignIn, json!({ "amr": AMR }), device)?;
    Ok(SignedIn::Session(cookie))
}

/// Starts proving `identity_id` with one of its passkeys (the second factor
/// after a password, or a re-entry).
pub fn start_for(env: &Env, config: &Config, identity_id: &str) -> Result<Started> {
    let rp = relying_party(config)?;
    let passkeys = rows::records(env.sql, identity_id)?
        .iter()
        .map(|r| parse::<Passkey>(&r.passkey))
        .collect::<Result<Vec<_>>>()?;
    if passkeys.is_empty() {
        return Err(Error::bad_request("There is no passkey on this account."));
    }
    let (rcr, state) = rp
        .start_passkey_authentication(&passkeys)
        .map_err(|e| Error::Internal(format!("webauthn: {e:?}")))?;
    save(
        env,
        Some(identity_id),
        Purpose::Authenticate,
        &json_of(&state)?,
        to_options(&rcr)?,
    )
}

/// Finishes proving `who` with a passkey: the answer must come from one of
/// `who`'s passkeys, with user verification and a counter that moved
/// forward. A returned user handle must be `who`'s too. Counted against
/// `who`'s limits.
pub fn finish_for(
    env: &Env,
    auth: Settings<'_>,
    who: (&str, &str),
    handle: &str,
    answer: &Json,
    device: &Device,
) -> Result<()> {
    let (identity_id, email) = who;
    let answer: PublicKeyCredential = credential(answer)?;
    let rp = relying_party(auth.config)?;
    let state: PasskeyAuthentication = parse(&take(
        env,
        handle,
        Purpose::Authenticate,
        Some(identity_id),
    )?)?;
    let refused = || Error::Unauthorized(REFUSED.into());
    let mut attempt = Attempt::new(env, auth.limits, device)?;
    attempt.account(env, email)?;
    let row = rows::by_credential(env.sql, &crypto::b64url(&answer.raw_id))?
        .filter(|r| r.identity_id == identity_id)
        .ok_or_else(refused)?;
    if let Some(returned) = answer.get_user_unique_id() {
        let ours = Uuid::parse_str(&row.user_handle).ok();
        if ours.as_ref().map(|u| u.as_bytes().as_slice()) != Some(returned) {
            return Err(refused());
        }
    }
    use_passkey(env, &row, device, |_| {
        rp.finish_passkey_authentication(&answer, &state)
            .map_err(|_| refused())
    })?;
    attempt.succeeded(env)
}

#[cfg(test)]
#[path = "passkey_authenticator.rs"]
pub(crate) mod authenticator;

#[cfg(test)]
mod tests;
