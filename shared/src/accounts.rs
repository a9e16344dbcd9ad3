//! Account flows: sign-up, email verification, login, password reset.
//!
//! Each flow validates all its input before it writes anything, and answers
//! the same way whether or not the account exists: the difference goes into
//! the mail. Login runs exactly one argon2id computation on every path.

use std::cell::OnceCell;

use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value as Json, json};

use crate::Env;
use crate::config::{self, Config, Variables};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::identity::{self, Identity, ProfileSchema};
use crate::mail::{self, Mail};
use crate::mfa;
use crate::oidc::grants;
use crate::onetime::{self, Purpose, Status};
use crate::password::{self, Argon2Config};
use crate::session::{self, Policy, Session};
use crate::store::federated_identities;
use crate::throttle::{self, Limits};

/// Everything the account flows need from configuration: the shared
/// settings, and the account settings, each group read from its variables
/// on first use (a variable read costs 20–40 µs on real Spin) and then kept
/// for the request. A bad value is an error naming its variable when a
/// flow first uses its group.
#[derive(Clone)]
pub struct Auth<'a> {
    /// Shared settings (issuer, product name, dev mode).
    pub config: Config<'a>,
    vars: &'a dyn Variables,
    policy: OnceCell<Policy>,
    argon2: OnceCell<Argon2Config>,
    limits: OnceCell<Limits>,
    schema: OnceCell<ProfileSchema>,
}

impl<'a> Auth<'a> {
    /// Reads the issuer ([`Config::load`]); the rest waits for its first use.
    pub fn load(vars: &'a dyn Variables) -> Result<Self> {
        Ok(Self {
            config: Config::load(vars)?,
            vars,
            policy: OnceCell::new(),
            argon2: OnceCell::new(),
            limits: OnceCell::new(),
            schema: OnceCell::new(),
        })
    }

    /// Session lifetimes and cookie security.
    pub fn policy(&self) -> Result<&Policy> {
        config::once(&self.policy, || Policy::load(self.vars))
    }

    /// The argon2id cost.
    pub fn argon2(&self) -> Result<&Argon2Config> {
        config::once(&self.argon2, || Argon2Config::load(self.vars))
    }

    /// Brute-force limits.
    pub fn limits(&self) -> Result<&Limits> {
        config::once(&self.limits, || Limits::load(self.vars))
    }

    /// The attributes collected at sign-up.
    pub fn schema(&self) -> Result<&ProfileSchema> {
        config::once(&self.schema, || ProfileSchema::load(self.vars))
    }
}

impl std::fmt::Debug for Auth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.config)
            .field("policy", &self.policy.get())
            .field("argon2", &self.argon2.get())
            .field("limits", &self.limits.get())
            .field("schema", &self.schema.get())
            .finish_non_exhaustive()
    }
}

/// The answer to a wrong email or password, the same for both.
pub const BAD_CREDENTIALS: &str = "The email or password is incorrect.";

/// A validated sign-up.
pub struct SignUp {
    /// The normalised email.
    pub email: String,
    password: String,
    attributes: Map<String, Json>,
    /// The terms were accepted (`accept_terms`), needed when the operator
    /// sets `terms_version`.
    accept_terms: bool,
    /// Marketing mail opted in (`marketing`, optional).
    marketing: bool,
}

impl SignUp {
    /// Validates the sign-up fields. Nothing is written.
    pub fn parse(auth: &Auth, form: &crate::web::Params) -> Result<Self> {
        let email = identity::normalise_email(
            form.required("email")
                .map_err(|_| Error::bad_request("Enter your email address."))?,
        )?;
        let password = form
            .required("password")
            .map_err(|_| Error::bad_request("Choose a password."))?;
        password::check_policy(password)?;
        let attributes = auth.schema()?.validate(form)?;
        let ticked = |name: &str| -> Result<bool> {
            Ok(form
                .one(name)?
                .is_some_and(|v| matches!(v, "true" | "on" | "yes")))
        };
        Ok(Self {
            email,
            password: password.to_owned(),
            attributes,
            accept_terms: ticked("accept_terms")?,
            marketing: ticked("marketing")?,
        })
    }
}

/// Creates the account, or mails the owner of an existing one. The caller
/// shows "check your email" either way.
pub fn sign_up(env: &Env, auth: &Auth, s: &SignUp, client: &str) -> Result<()> {
    let terms = crate::privacy::consent::Terms::load(env.vars)?;
    if terms.is_some() && !s.accept_terms {
        return Err(Error::bad_request("Accept the terms to create an account."));
    }
    count_mail_request(env, auth, "signup", client, &s.email)?;
    let hash = password::hash(&s.password, auth.argon2()?)?;
    match identity::create(env.sql, &s.email, Some(&hash), &s.attributes, env.now)? {
        Some(created) => {
            crate::privacy::consent::record_sign_up(
                env,
                &created.id,
                terms.as_ref(),
                s.marketing,
                client,
            )?;
            let token = onetime::issue(env.sql, Purpose::VerifyEmail, &created.id, env.now)?;
            mail::send(
                env,
                &auth.config,
                &Mail::verify(&auth.config, &s.email, &token)?,
            )
        }
        None => mail::send(
            env,
            &auth.config,
            &Mail::already_registered(&auth.config, &s.email)?,
        ),
    }
}

/// Every request that sends mail (a sign-up, a resend, a reset) counts
/// against the client address and the recipient before anything is sent, so
/// that nobody can make Lanyard mail-bomb an inbox, from one address or many.
fn count_mail_request(env: &Env, auth: &Auth, action: &str, client: &str, to: &str) -> Result<()> {
    let limits = auth.limits()?;
    throttle::reserve(
        env.sql,
        &throttle::address_key(action, client),
        &limits.address,
        env.now,
    )?;
    throttle::reserve(
        env.sql,
        &throttle::recipient_key(to),
        &limits.recipient,
        env.now,
    )
}

/// Sends the verification mail again if the account exists and is not
/// verified, an "already verified" note if it is, and a "no account waiting"
/// note if there is none: every path sends one mail, so the answer (and a
/// mail API failure) is the same whether or not the account exists.
pub fn resend_verification(env: &Env, auth: &Auth, email: &str, client: &str) -> Result<()> {
    let email = identity::normalise_email(email)?;
    count_mail_request(env, auth, "mail", client, &email)?;
    let mail = match identity::by_email(env.sql, &email)? {
        Some(who) if !who.email_verified => {
            let token = onetime::issue(env.sql, Purpose::VerifyEmail, &who.id, env.now)?;
            Mail::verify(&auth.config, &email, &token)?
        }
        Some(_) => Mail::already_registered(&auth.config, &email)?,
        None => Mail::verify_unknown(&auth.config, &email)?,
    };
    mail::send(env, &auth.config, &mail)
}

/// Whether a verification link can still be used (for the page before the POST).
pub fn check_link(env: &Env, purpose: Purpose, token: &str) -> Result<()> {
    link_status(onetime::peek(env.sql, purpose, token, env.now)?).map(|_| ())
}

fn link_status(status: Status) -> Result<String> {
    match status {
        Status::Valid(id) => Ok(id),
        Status::Expired => Err(Error::DeadLink(
            "This link has expired. Ask for a new one and use it within its time.".into(),
        )),
        Status::Used => Err(Error::DeadLink(
            "This link has already been used. Each link works once.".into(),
        )),
        Status::Unknown => Err(Error::DeadLink(
            "This link is not valid. Check that you copied all of it.".into(),
        )),
    }
}

/// Uses a verification link and marks the email verified.
pub fn verify_email(env: &Env, token: &str) -> Result<()> {
    let id = link_status(onetime::redeem(
        env.sql,
        Purpose::VerifyEmail,
        token,
        env.now,
    )?)?;
    identity::mark_verified(env.sql, &id, env.now)
}

/// How a correct login ends.
#[derive(Debug)]
pub enum LoggedIn {
    /// A new session: set this cookie.
    Session(HeaderValue),
    /// Right password, but the email is not verified yet: no session.
    Unverified(String),
    /// Right password, and the account has a second factor: no session
    /// yet, but a pending sign-in (`mfa::pending`) whose cookie to set; the
    /// second factor is asked for at `/login/mfa`.
    SecondFactor(HeaderValue),
}

/// Checks an email and password. Wrong email and wrong password give the same
/// error after the same work (one argon2id computation); both count against
/// the per-account and per-address limits.
pub fn log_in(
    env: &Env,
    auth: &Auth,
    email: &str,
    password: &str,
    device: &Device,
) -> Result<LoggedIn> {
    log_in_to(env, auth, email, password, device, None)
}

/// [`log_in`], keeping `return_to` (a local path) with a sign-in that
/// waits for its second factor.
pub fn log_in_to(
    env: &Env,
    auth: &Auth,
    email: &str,
    password: &str,
    device: &Device,
    return_to: Option<&str>,
) -> Result<LoggedIn> {
    let who = prove(env, auth, email, password, device)?;
    if !who.email_verified {
        return Ok(LoggedIn::Unverified(who.email));
    }
    if mfa::factors(env.sql, &who.id)?.any() {
        return Ok(LoggedIn::SecondFactor(mfa::pending::begin(
            env,
            auth.policy()?,
            &who,
            &["pwd"],
            return_to,
        )?));
    }
    let cookie = session::start(
        env,
        auth.policy()?,
        &session::New {
            sub: &who.id,
            generation: who.session_generation,
            amr: &["pwd"],
            idp: None,
            device,
        },
    )?;
    events::record(
        env,
        &who.id,
        Kind::SignIn,
        json!({ "amr": ["pwd"] }),
        device,
    )?;
    Ok(LoggedIn::Session(cookie))
}

/// Checks an email and password, as [`log_in`] does (one argon2id
/// computation on every path, the same limits), without starting a
/// session: the identity when they are right. Linking an upstream account
/// to an existing one proves the existing one this way.
pub fn prove_password(
    env: &Env,
    auth: &Auth,
    email: &str,
    password: &str,
    client: &str,
) -> Result<Identity> {
    prove(env, auth, email, password, &Device::addr(client))
}

/// [`prove_password`] from a device: a wrong password for an existing
/// account is recorded as its `sign_in_failed` event.
fn prove(env: &Env, auth: &Auth, email: &str, password: &str, device: &Device) -> Result<Identity> {
    let client = device.addr.as_str();
    let email = identity::normalise_email(email)
        .map_err(|_| Error::Unauthorized(BAD_CREDENTIALS.into()))?;
    // Both attempts are counted before the hash, so that parallel guesses
    // cannot all pass; a success gives them back.
    let acct = throttle::account_key(&email);
    let addr = throttle::address_key("login", client);
    // The address first: from an address that is already backing off, a
    // spray of guesses cannot use up its victims' attempts.
    throttle::reserve(env.sql, &addr, &auth.limits()?.address, env.now)?;
    throttle::reserve(env.sql, &acct, &auth.limits()?.account, env.now)?;
    let who = identity::by_email(env.sql, &email)?;
    let verdict = password::verify(
        password,
        who.as_ref().and_then(|w| w.password_hash.as_deref()),
        auth.argon2()?,
    )?;
    let who = match who {
        Some(who) if verdict.ok() => who,
        Some(who) => {
            let detail = json!({ "method": "pwd" });
            events::record(env, &who.id, Kind::SignInFailed, detail, device)?;
            return Err(Error::Unauthorized(BAD_CREDENTIALS.into()));
        }
        None => return Err(Error::Unauthorized(BAD_CREDENTIALS.into())),
    };
    if let Some(upgraded) = verdict.rehash() {
        identity::store_rehash(env.sql, &who.id, upgraded, env.now)?;
    }
    throttle::clear(env.sql, &acct)?;
    throttle::refund(env.sql, &addr)?;
    Ok(who)
}

/// The signed-in identity and session, if the request has a live session
/// whose identity still exists and has not ended its sessions since.
pub fn current(env: &Env, auth: &Auth, headers: &HeaderMap) -> Result<Option<(Identity, Session)>> {
    let Some(s) = session::current(env, auth.policy()?, headers)? else {
        return Ok(None);
    };
    match identity::by_id(env.sql, &s.sub)? {
        Some(who) if who.session_generation == s.generation => Ok(Some((who, s))),
        _ => {
            session::end(env, auth.policy()?, headers)?;
            Ok(None)
        }
    }
}

/// Sends a reset link, or a "no account" note. The caller shows the same
/// page either way.
pub fn forgot_password(env: &Env, auth: &Auth, email: &str, client: &str) -> Result<()> {
    let email = identity::normalise_email(email)?;
    count_mail_request(env, auth, "mail", client, &email)?;
    match identity::by_email(env.sql, &email)? {
        Some(who) => {
            let token = onetime::issue(env.sql, Purpose::ResetPassword, &who.id, env.now)?;
            mail::send(
                env,
                &auth.config,
                &Mail::reset(&auth.config, &email, &token)?,
            )
        }
        None => mail::send(
            env,
            &auth.config,
            &Mail::reset_unknown(&auth.config, &email)?,
        ),
    }
}

/// Uses a reset link: sets the new password, verifies the email (the link
/// proved it), and ends every session and refresh-token family of the
/// account.
pub fn reset_password(env: &Env, auth: &Auth, token: &str, new_password: &str) -> Result<()> {
    password::check_policy(new_password)?;
    // Check before hashing so that a dead link costs no argon2 run, and hash
    // before redeeming so that a failure cannot burn the link.
    link_status(onetime::peek(
        env.sql,
        Purpose::ResetPassword,
        token,
        env.now,
    )?)?;
    let hash = password::hash(new_password, auth.argon2()?)?;
    let id = link_status(onetime::redeem(
        env.sql,
        Purpose::ResetPassword,
        token,
        env.now,
    )?)?;
    // An account whose address was not yet proven may have been made by
    // someone else through an upstream provider that vouched for an
    // address it had not verified: the reset proves the address, and the
    // upstream links made before go with the old password.
    if identity::by_id(env.sql, &id)?.is_some_and(|w| !w.email_verified) {
        federated_identities::delete_for_identity(env.sql, &id)?;
    }
    // OAuth grants end first, so that no interruption can leave an old
    // refresh token alive beside the new password; sessions end with the
    // generation bump of the reset itself.
    grants::end_all(env.sql, &id, env.now)?;
    identity::reset_password(env.sql, &id, &hash, env.now)?;
    // The generation bump killed the sessions; drop them from the listing too.
    session::revoke_all(env, &id, None)?;
    identity::mark_verified(env.sql, &id, env.now)?;
    onetime::void_all(env.sql, Purpose::ResetPassword, &id, env.now)?;
    if let Some(who) = identity::by_id(env.sql, &id)? {
        throttle::clear(env.sql, &throttle::account_key(&who.email))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::World;
    use crate::web::Params;

    fn verified_account(w: &World, auth: &Auth) {
        let form = Params::parse(b"email=ada%40example.com&password=correct+horse+battery+staple")
            .unwrap();
        sign_up(
            &w.env(0),
            auth,
            &SignUp::parse(auth, &form).unwrap(),
            "1.2.3.4",
        )
        .unwrap();
        let who = identity::by_email(&w.sql, "ada@example.com")
            .unwrap()
            .unwrap();
        identity::mark_verified(&w.sql, &who.id, 0).unwrap();
    }

    #[test]
    fn every_failed_login_path_runs_one_argon2_hash() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        verified_account(&w, &auth);
        for (email, password) in [
            ("ada@example.com", "wrong password"),
            ("nobody@example.com", "wrong password"),
            ("nobody@example.com", "correct horse battery staple"),
        ] {
            let before = password::hashes_run();
            let err =
                log_in(&w.env(1), &auth, email, password, &Device::addr("1.2.3.4")).unwrap_err();
            assert_eq!(err, Error::Unauthorized(BAD_CREDENTIALS.into()), "{email}");
            assert_eq!(password::hashes_run() - before, 1, "{email}/{password}");
        }
        let before = password::hashes_run();
        assert!(matches!(
            log_in(
                &w.env(2),
                &auth,
                "ada@example.com",
                "correct horse battery staple",
                &Device::addr("1.2.3.4")
            )
            .unwrap(),
            LoggedIn::Session(_)
        ));
        assert_eq!(password::hashes_run() - before, 1);
    }

    #[test]
    fn changed_argon2_parameters_upgrade_the_hash_at_login() {
        let mut w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        verified_account(&w, &auth);
        w.set("argon2_memory_kib", Some("9216"));
        let stronger = Auth::load(&w.vars).unwrap();
        log_in(
            &w.env(1),
            &stronger,
            "ada@example.com",
            "correct horse battery staple",
            &Device::addr("1.2.3.4"),
        )
        .unwrap();
        let stored = identity::by_email(&w.sql, "ada@example.com")
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        assert!(stored.contains("m=9216"), "{stored}");
        assert!(
            log_in(
                &w.env(2),
                &stronger,
                "ada@example.com",
                "correct horse battery staple",
                &Device::addr("1.2.3.4")
            )
            .is_ok()
        );
    }

    #[test]
    fn a_reset_that_proves_the_address_drops_the_upstream_links_made_before() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        let link = |who: &str, subject: &str| federated_identities::FederatedIdentity {
            issuer: "https://op.example".into(),
            subject: subject.into(),
            connection_id: "example".into(),
            identity_id: who.into(),
            email: None,
            created_at: 0,
            last_used_at: 0,
        };
        // Made through a provider that did not verify the address.
        let squatted = identity::create(&w.sql, "ada@example.com", None, &Map::new(), 0)
            .unwrap()
            .unwrap();
        federated_identities::insert(&w.sql, &link(&squatted.id, "s1")).unwrap();
        // A verified account keeps its links.
        let kept = identity::create(&w.sql, "bob@example.com", None, &Map::new(), 0)
            .unwrap()
            .unwrap();
        identity::mark_verified(&w.sql, &kept.id, 0).unwrap();
        federated_identities::insert(&w.sql, &link(&kept.id, "s2")).unwrap();
        for who in [&squatted, &kept] {
            let token = onetime::issue(&w.sql, Purpose::ResetPassword, &who.id, 1).unwrap();
            reset_password(&w.env(2), &auth, &token, "correct horse battery staple").unwrap();
        }
        assert!(
            federated_identities::for_identity(&w.sql, &squatted.id)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            federated_identities::for_identity(&w.sql, &kept.id)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_session_dies_when_the_generation_moves_on() {
        let w = World::new();
        let auth = Auth::load(&w.vars).unwrap();
        verified_account(&w, &auth);
        let LoggedIn::Session(cookie) = log_in(
            &w.env(1),
            &auth,
            "ada@example.com",
            "correct horse battery staple",
            &Device::addr("1.2.3.4"),
        )
        .unwrap() else {
            panic!("no session")
        };
        let mut headers = HeaderMap::new();
        let pair = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        headers.insert(http::header::COOKIE, HeaderValue::from_str(&pair).unwrap());
        assert!(current(&w.env(2), &auth, &headers).unwrap().is_some());
        let who = identity::by_email(&w.sql, "ada@example.com")
            .unwrap()
            .unwrap();
        identity::reset_password(&w.sql, &who.id, "x", 3).unwrap();
        assert!(current(&w.env(4), &auth, &headers).unwrap().is_none());
    }
}
