//! Account centre section `mfa` (docs/account.md): second factors and
//! re-entry. Pages `/account/mfa` (an authenticator app: set up with a QR
//! code, confirmed by a first code, removed; recovery codes: how many are
//! left, a new set) and `/account/reauth` (the password or a code again,
//! for a change that needs a recent sign-in), and the same as JSON.
//!
//! Secrets and recovery codes are shown once, in the answer to the request
//! that made them, and never again.

use askama::Template;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{Answer, Ctx, body, done, ok};
use crate::accounts;
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::html;
use crate::mfa::{self, check, recovery, totp};
use crate::routes::errors;
use crate::routes::login::is_local_path;
use crate::session;
use crate::store::{recovery_codes, totp_secrets};
use crate::web::{self, Params, Response};

/// `/account/mfa`.
#[derive(Template)]
#[template(path = "account_mfa.html")]
struct MfaPage<'a> {
    product: &'a str,
    csrf: &'a str,
    notice: Option<&'static str>,
    error: Option<String>,
    /// A confirmed authenticator app.
    totp: bool,
    /// An authenticator being set up: what to show, once.
    enrolment: Option<totp::Enrolment>,
    passkeys: i64,
    recovery_left: i64,
    /// Recovery codes just made, to show once.
    new_codes: Option<Vec<String>>,
    /// Where to go on once done (`require_mfa` sends people here).
    return_to: Option<&'a str>,
    /// The operator requires a second factor and the person has none.
    required: bool,
}

/// `/account/reauth`.
#[derive(Template)]
#[template(path = "account_reauth.html")]
struct ReauthPage<'a> {
    product: &'a str,
    csrf: &'a str,
    error: Option<String>,
    return_to: &'a str,
    /// Offer the password.
    password: bool,
    /// Offer a TOTP or recovery code.
    code: bool,
    /// Offer a passkey (`static/js/passkeys.js`).
    passkey: bool,
}

/// A notice after a change, from `?done=`: a fixed text per key.
fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "totp_removed" => "The authenticator app is removed.",
        "reauth" => "Thank you. You can make the change now.",
        _ => return None,
    })
}

/// Answers the pages of this section under `/account`.
pub fn page(ctx: &Ctx, rest: &str) -> Answer {
    let post = *ctx.req.method() == Method::POST;
    let res = match (rest, post) {
        ("/mfa", false) => {
            let query = Params::from_query(ctx.req)?;
            let back = local(&query)?;
            let shown = Shown {
                notice: notice(query.one("done")?),
                back,
                ..Shown::default()
            };
            mfa_page(ctx, shown, StatusCode::OK)
        }
        ("/mfa/totp", true) => start_page(ctx),
        ("/mfa/totp/confirm", true) => confirm_page(ctx),
        ("/mfa/totp/remove", true) => remove_page(ctx),
        ("/mfa/recovery-codes", true) => codes_page(ctx),
        ("/reauth", false) => {
            let query = Params::from_query(ctx.req)?;
            reauth_page(ctx, local(&query)?, None, StatusCode::OK)
        }
        ("/reauth", true) => reauth_submit(ctx),
        ("/mfa/totp" | "/mfa/totp/confirm" | "/mfa/totp/remove" | "/mfa/recovery-codes", false) => {
            Err(Error::MethodNotAllowed("POST"))
        }
        ("/mfa", true) => Err(Error::MethodNotAllowed("GET")),
        _ => return Ok(None),
    }?;
    Ok(Some(res))
}

/// A local `return_to`, or none.
fn local(params: &Params) -> Result<Option<&str>> {
    Ok(params.one("return_to")?.filter(|p| is_local_path(p)))
}

/// What `/account/mfa` shows besides the status.
#[derive(Default)]
struct Shown<'a> {
    notice: Option<&'static str>,
    error: Option<String>,
    enrolment: Option<totp::Enrolment>,
    new_codes: Option<Vec<String>>,
    back: Option<&'a str>,
}

fn mfa_page(ctx: &Ctx, shown: Shown<'_>, status: StatusCode) -> Result<Response> {
    let page = ctx.page()?;
    let factors = mfa::factors(ctx.env.sql, &ctx.who.id)?;
    let required = !factors.any() && mfa::policy::require_mfa(ctx.env.vars)?;
    let res = html::render(
        &MfaPage {
            product: page.product,
            csrf: &page.csrf,
            notice: shown.notice,
            error: shown.error,
            totp: factors.totp,
            enrolment: shown.enrolment,
            passkeys: factors.passkeys,
            recovery_left: factors.recovery_left,
            new_codes: shown.new_codes,
            return_to: shown.back,
            required,
        },
        status,
    )?;
    let mut res = page.finish(res);
    web::no_store(&mut res);
    Ok(res)
}

/// Shows an error a person can fix on the MFA page; a change that needs a
/// recent sign-in goes to `/account/reauth` and back to the page.
fn on_mfa_form(ctx: &Ctx, err: Error, back: Option<&str>) -> Result<Response> {
    match err {
        Error::RecentSignInRequired => super::to_reauth(&with_back("/account/mfa", back)),
        Error::BadRequest(_)
        | Error::Unauthorized(_)
        | Error::Conflict(_)
        | Error::TooManyRequests { .. } => {
            let status = err.status();
            let shown = Shown {
                error: Some(err.detail()),
                back,
                ..Shown::default()
            };
            let mut res = mfa_page(ctx, shown, status)?;
            errors::decorate(&mut res, &err);
            Ok(res)
        }
        other => Err(other),
    }
}

fn with_back(path: &str, back: Option<&str>) -> String {
    match back {
        Some(b) => format!("{path}?return_to={}", web::pct(b)),
        None => path.to_owned(),
    }
}

fn start_page(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    let back = local(&form)?;
    match start(ctx) {
        Ok(enrolment) => mfa_page(
            ctx,
            Shown {
                enrolment: Some(enrolment),
                back,
                ..Shown::default()
            },
            StatusCode::OK,
        ),
        Err(e) => on_mfa_form(ctx, e, back),
    }
}

fn start(ctx: &Ctx) -> Result<totp::Enrolment> {
    ctx.require_recent()?;
    totp::start(ctx.env, ctx.auth.config.product_name()?, &ctx.who)
}

fn confirm_page(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    let back = local(&form)?;
    let code = form.one("code")?.unwrap_or_default();
    match confirm(ctx, code) {
        Ok(new_codes) => mfa_page(
            ctx,
            Shown {
                notice: Some(
                    "Your authenticator app is set up. From now on, signing in asks for a code.",
                ),
                new_codes,
                back,
                ..Shown::default()
            },
            StatusCode::OK,
        ),
        Err(e) => on_mfa_form(ctx, e, back),
    }
}

/// Confirms the authenticator; the recovery codes made with it when the
/// person had none.
fn confirm(ctx: &Ctx, code: &str) -> Result<Option<Vec<String>>> {
    totp::confirm(ctx.env, &ctx.who.id, code)?;
    events::record(
        ctx.env,
        &ctx.who.id,
        Kind::MfaAdded,
        json!({ "method": "totp" }),
        &ctx.device,
    )?;
    if recovery_codes::left(ctx.env.sql, &ctx.who.id)? > 0 {
        return Ok(None);
    }
    let codes = recovery::generate(ctx.env, &ctx.who.id)?;
    Ok(Some(codes))
}

fn remove_page(ctx: &Ctx) -> Result<Response> {
    ctx.page()?.form(ctx.req)?;
    match remove(ctx) {
        Ok(()) => web::redirect("/account/mfa?done=totp_removed"),
        Err(e) => on_mfa_form(ctx, e, None),
    }
}

fn remove(ctx: &Ctx) -> Result<()> {
    ctx.require_recent()?;
    if !totp_secrets::delete(ctx.env.sql, &ctx.who.id)? {
        return Err(Error::Conflict("No authenticator app is set up.".into()));
    }
    events::record(
        ctx.env,
        &ctx.who.id,
        Kind::MfaRemoved,
        json!({ "method": "totp" }),
        &ctx.device,
    )?;
    // Recovery codes stand in for a second factor: with none left, they go.
    if !mfa::factors(ctx.env.sql, &ctx.who.id)?.any() {
        recovery_codes::delete_all(ctx.env.sql, &ctx.who.id)?;
    }
    Ok(())
}

fn codes_page(ctx: &Ctx) -> Result<Response> {
    ctx.page()?.form(ctx.req)?;
    match renew_codes(ctx) {
        Ok(codes) => mfa_page(
            ctx,
            Shown {
                notice: Some("Here are your new recovery codes. The old ones no longer work."),
                new_codes: Some(codes),
                ..Shown::default()
            },
            StatusCode::OK,
        ),
        Err(e) => on_mfa_form(ctx, e, None),
    }
}

fn renew_codes(ctx: &Ctx) -> Result<Vec<String>> {
    ctx.require_recent()?;
    if !mfa::factors(ctx.env.sql, &ctx.who.id)?.any() {
        return Err(Error::Conflict(
            "Set up an authenticator app or a passkey first: recovery codes stand in for one."
                .into(),
        ));
    }
    let codes = recovery::generate(ctx.env, &ctx.who.id)?;
    events::record(
        ctx.env,
        &ctx.who.id,
        Kind::RecoveryCodesRenewed,
        json!({}),
        &ctx.device,
    )?;
    Ok(codes)
}

fn reauth_page(
    ctx: &Ctx,
    back: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    let page = ctx.page()?;
    let factors = mfa::factors(ctx.env.sql, &ctx.who.id)?;
    let res = html::render(
        &ReauthPage {
            product: page.product,
            csrf: &page.csrf,
            error,
            return_to: back.unwrap_or("/account"),
            password: ctx.who.password_hash.is_some(),
            code: factors.totp || factors.recovery_left > 0,
            passkey: factors.passkeys > 0,
        },
        status,
    )?;
    Ok(page.finish(res))
}

fn reauth_submit(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    let back = local(&form)?;
    let password = form.one("password")?.filter(|p| !p.is_empty());
    let code = form.one("code")?.filter(|c| !c.trim().is_empty());
    match reauth(ctx, password, code) {
        Ok(()) => web::redirect(back.unwrap_or("/account?done=reauth")),
        Err(
            e @ (Error::BadRequest(_) | Error::Unauthorized(_) | Error::TooManyRequests { .. }),
        ) => {
            let mut res = reauth_page(ctx, back, Some(e.detail()), e.status())?;
            errors::decorate(&mut res, &e);
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

/// Proves the person again by their password or a second-factor code, and
/// marks the session as recently authenticated.
fn reauth(ctx: &Ctx, password: Option<&str>, code: Option<&str>) -> Result<()> {
    match (password, code) {
        (Some(pw), None) => {
            if ctx.who.password_hash.is_none() {
                return Err(Error::bad_request(
                    "Your account has no password: enter a code instead.",
                ));
            }
            let proven =
                accounts::prove_password(ctx.env, ctx.auth, &ctx.who.email, pw, &ctx.device.addr)?;
            if proven.id != ctx.who.id {
                return Err(Error::Unauthorized(accounts::BAD_CREDENTIALS.into()));
            }
        }
        (None, Some(code)) => {
            check::prove_code(ctx.env, ctx.auth.limits()?, &ctx.who, code, &ctx.device)?;
        }
        (Some(_), Some(_)) => {
            return Err(Error::bad_request(
                "Enter either your password or a code, not both.",
            ));
        }
        (None, None) => {
            return Err(Error::bad_request(
                "Enter your password, or a code from your authenticator app.",
            ));
        }
    }
    let mut s = ctx.session.clone();
    s.reauth_at = ctx.env.now;
    session::update(ctx.env, ctx.auth.policy()?, ctx.req.headers(), &s)
}

/// Answers the JSON API of this section under `/api/account/`.
pub fn api(ctx: &Ctx, rest: &str) -> Answer {
    let method = ctx.req.method().clone();
    match (rest, method) {
        ("mfa", Method::GET | Method::HEAD) => {
            let f = mfa::factors(ctx.env.sql, &ctx.who.id)?;
            ok(&json!({
                "totp": f.totp,
                "passkeys": f.passkeys,
                "recovery_codes_left": f.recovery_left,
            }))
        }
        ("mfa/totp", Method::POST) => {
            let e = start(ctx)?;
            ok(&json!({
                "secret": e.secret,
                "otpauth_uri": e.otpauth_uri,
                "qr_svg": e.qr_svg,
            }))
        }
        ("mfa/totp", Method::DELETE) => {
            remove(ctx)?;
            done()
        }
        ("mfa/totp/confirm", Method::POST) => {
            let b: CodeBody = body(ctx.req)?;
            let codes = confirm(ctx, &b.code)?;
            ok(&json!({ "status": "confirmed", "recovery_codes": codes }))
        }
        ("mfa/recovery-codes", Method::POST) => {
            let codes = renew_codes(ctx)?;
            ok(&json!({ "recovery_codes": codes }))
        }
        ("reauth", Method::POST) => {
            let b: ReauthBody = body(ctx.req)?;
            reauth(ctx, b.password.as_deref(), b.code.as_deref())?;
            ok(&json!({ "status": "ok", "reauth_at": ctx.env.now }))
        }
        ("mfa", _) => Err(Error::MethodNotAllowed("GET")),
        ("mfa/totp", _) => Err(Error::MethodNotAllowed("POST, DELETE")),
        ("mfa/totp/confirm" | "mfa/recovery-codes" | "reauth", _) => {
            Err(Error::MethodNotAllowed("POST"))
        }
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReauthBody {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    code: Option<String>,
}
