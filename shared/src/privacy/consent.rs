//! Consent records: the version of the terms (and privacy notice) a person
//! accepted, and their marketing choices, each with its history.
//!
//! The operator's `terms_version` (and `terms_url`, the page that shows the
//! terms) make sign-up ask for acceptance; when the version changes, the
//! next sign-in (at `/authorize` and the signed-in home page) sends the
//! person to `/account/terms` before it goes on.

use serde::Serialize;

use crate::Env;
use crate::config::{self, Variables};
use crate::error::{Error, Result};
use crate::store::consent_records::{self, Record};

/// The kind of a terms acceptance.
pub const TERMS: &str = "terms";
/// The kind of a marketing choice.
pub const MARKETING: &str = "marketing";

/// The terms the operator asks people to accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Terms {
    /// The current version (`terms_version`).
    pub version: String,
    /// Where the terms are shown (`terms_url`), if set.
    pub url: Option<String>,
}

impl Terms {
    /// Reads `terms_version` (1–64 printable characters) and `terms_url`
    /// (an `https://` or `http://` URL, or a local path); `None` when no
    /// version is set, and nobody is asked.
    pub fn load(vars: &dyn Variables) -> Result<Option<Terms>> {
        let Some(version) = config::optional(vars, "terms_version")? else {
            return Ok(None);
        };
        if version.chars().count() > 64 || version.chars().any(char::is_control) {
            return Err(Error::config(
                "terms_version",
                "use at most 64 printable characters, such as 2026-01",
            ));
        }
        let url = config::optional(vars, "terms_url")?;
        if let Some(u) = &url {
            let shaped = (u.starts_with("https://")
                || u.starts_with("http://")
                || (u.starts_with('/') && !u.starts_with("//")))
                && u.len() <= 2048
                && u.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'<' && b != b'>');
            if !shaped {
                return Err(Error::config(
                    "terms_url",
                    "use an https:// URL or a local path, without spaces or quotes",
                ));
            }
        }
        Ok(Some(Terms { version, url }))
    }
}

/// A person's current choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The terms version they last accepted, if any.
    pub terms_accepted: Option<String>,
    /// When.
    pub terms_accepted_at: Option<i64>,
    /// The version the operator asks for now, if any.
    pub terms_current: Option<String>,
    /// Where the terms are shown.
    pub terms_url: Option<String>,
    /// Whether they must accept the current version before going on.
    pub terms_needed: bool,
    /// Whether they opted in to marketing mail (`false` when never asked).
    pub marketing: bool,
    /// Every choice, oldest first.
    pub history: Vec<Record>,
}

/// The current choices of a person, against the operator's terms.
pub fn status(env: &Env, identity_id: &str, terms: Option<&Terms>) -> Result<Status> {
    let history = consent_records::for_identity(env.sql, identity_id)?;
    let last = |kind: &str| history.iter().rev().find(|r| r.kind == kind);
    let accepted = last(TERMS);
    Ok(Status {
        terms_accepted: accepted.map(|r| r.value.clone()),
        terms_accepted_at: accepted.map(|r| r.at),
        terms_current: terms.map(|t| t.version.clone()),
        terms_url: terms.and_then(|t| t.url.clone()),
        terms_needed: terms.is_some_and(|t| accepted.is_none_or(|r| r.value != t.version)),
        marketing: last(MARKETING).is_some_and(|r| r.value == "opt_in"),
        history,
    })
}

/// The terms a person must accept before going on: the operator's, when
/// they set a version this person has not accepted (the last one they did
/// is older, or they never did). Reads the variables only here.
pub fn terms_needed(env: &Env, identity_id: &str) -> Result<Option<Terms>> {
    let Some(terms) = Terms::load(env.vars)? else {
        return Ok(None);
    };
    let accepted = consent_records::latest(env.sql, identity_id, TERMS)?;
    Ok(accepted
        .is_none_or(|r| r.value != terms.version)
        .then_some(terms))
}

/// Records the acceptance of the terms `version`, which must be the
/// current one (an old page cannot accept terms that changed since).
pub fn accept_terms(env: &Env, identity_id: &str, version: &str, client_addr: &str) -> Result<()> {
    let Some(terms) = Terms::load(env.vars)? else {
        return Err(Error::bad_request(
            "There are no terms to accept on this service.",
        ));
    };
    if version != terms.version {
        return Err(Error::Conflict(format!(
            "The terms changed: the current version is {}. Read it and accept that one.",
            terms.version
        )));
    }
    consent_records::insert(env.sql, identity_id, TERMS, version, client_addr, env.now)
}

/// Records a marketing opt-in (`true`) or opt-out, unless it is already
/// the current choice (the history records changes, not repeats).
pub fn set_marketing(env: &Env, identity_id: &str, opt_in: bool, client_addr: &str) -> Result<()> {
    let value = if opt_in { "opt_in" } else { "opt_out" };
    let current = consent_records::latest(env.sql, identity_id, MARKETING)?;
    if current.is_some_and(|r| r.value == value) {
        return Ok(());
    }
    consent_records::insert(env.sql, identity_id, MARKETING, value, client_addr, env.now)
}

/// Records the choices made at sign-up: the terms accepted (when the
/// operator asks for them) and a marketing opt-in (when ticked).
pub fn record_sign_up(
    env: &Env,
    identity_id: &str,
    terms: Option<&Terms>,
    marketing: bool,
    client_addr: &str,
) -> Result<()> {
    if let Some(t) = terms {
        consent_records::insert(
            env.sql,
            identity_id,
            TERMS,
            &t.version,
            client_addr,
            env.now,
        )?;
    }
    if marketing {
        consent_records::insert(
            env.sql,
            identity_id,
            MARKETING,
            "opt_in",
            client_addr,
            env.now,
        )?;
    }
    Ok(())
}
