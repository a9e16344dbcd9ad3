//! The second step of a sign-in, `/login/mfa` (the login component's): a
//! TOTP code or a recovery code after the password, for a person with a
//! second factor (or a passkey, through `static/js/passkeys.js`). With
//! `step_up=1` it is a step-up instead: a person already signed in with a
//! password alone, sent by `/authorize` for an application that asked for
//! `acr_values=urn:lanyard:acr:mfa`, adds the second factor to the session.

use askama::Template;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::errors;
use super::login::is_local_path;
use super::page::Page;
use crate::Env;
use crate::accounts::{self, Auth};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::html;
use crate::identity::{self, Identity};
use crate::mfa::{self, check, pending};
use crate::session::{self, Session};
use crate::web::{self, Params, Request, Response};

/// The page's path.
pub const PATH: &str = "/login/mfa";

/// The second-factor form.
#[derive(Template)]
#[template(path = "login_mfa.html")]
struct LoginMfaPage<'a> {
    product: &'a str,
    csrf: &'a str,
    error: Option<String>,
    return_to: Option<&'a str>,
    step_up: bool,
    /// Offer "Use a passkey" (the person has one, at the sign-in step).
    passkeys: bool,
    /// Offer a TOTP or recovery code (the person has an authenticator app
    /// or recovery codes).
    codes: bool,
}

/// Whose second factor is asked for.
enum Step {
    /// A password sign-in waiting for it.
    SignIn(pending::Pending, Identity),
    /// A signed-in person stepping up.
    StepUp(Identity, Session),
}

fn step(env: &Env, auth: &Auth, req: &Request, step_up: bool) -> Result<Option<Step>> {
    if step_up {
        return Ok(
            accounts::current(env, auth, req.headers())?.map(|(who, s)| Step::StepUp(who, s))
        );
    }
    let Some(p) = pending::current(env, auth.policy()?, req.headers())? else {
        return Ok(None);
    };
    Ok(identity::by_id(env.sql, &p.sub)?.map(|who| Step::SignIn(p, who)))
}

fn target(params: &Params) -> Result<Option<&str>> {
    Ok(params.one("return_to")?.filter(|p| is_local_path(p)))
}

/// `GET` and `POST /login/mfa`.
pub fn handle(env: &Env, auth: &Auth, page: &Page, req: &Request, post: bool) -> Result<Response> {
    let form = if post {
        page.form(req)?
    } else {
        Params::from_query(req)?
    };
    let step_up = form.one("step_up")? == Some("1");
    let back = target(&form)?;
    let Some(step) = step(env, auth, req, step_up)? else {
        // Nothing waits for a second factor (it expired, or it was used):
        // start again.
        let mut to = String::from("/login");
        if let Some(b) = back {
            to.push_str(&format!("?return_to={}", web::pct(b)));
        }
        let mut res = web::redirect(&to)?;
        if !step_up {
            res.headers_mut()
                .append(header::SET_COOKIE, pending::clear_cookie(auth.policy()?)?);
        }
        return Ok(res);
    };
    let (who, back) = match &step {
        Step::SignIn(p, who) => (who, p.return_to.as_deref().or(back)),
        Step::StepUp(who, _) => (who, back),
    };
    let factors = mfa::factors(env.sql, &who.id)?;
    let show = |error: Option<String>, status: StatusCode| {
        html::render(
            &LoginMfaPage {
                product: page.product,
                csrf: &page.csrf,
                error,
                return_to: back,
                step_up,
                passkeys: factors.passkeys > 0,
                codes: factors.totp || factors.recovery_left > 0,
            },
            status,
        )
    };
    if !post {
        return show(None, StatusCode::OK);
    }
    let device = Device::of(env.vars, req.headers())?;
    let code = form.one("code")?.unwrap_or_default();
    let proof = match check::prove_code(env, auth.limits()?, who, code, &device) {
        Ok(p) => p,
        Err(
            e @ (Error::BadRequest(_) | Error::Unauthorized(_) | Error::TooManyRequests { .. }),
        ) => {
            let mut res = show(Some(e.detail()), e.status())?;
            errors::decorate(&mut res, &e);
            return Ok(res);
        }
        Err(e) => return Err(e),
    };
    let cookies = finish(env, auth, req, &step, proof, &device)?;
    let mut res = web::redirect(back.unwrap_or("/"))?;
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}

/// Ends the step after a right code: a new session for a sign-in, the
/// second factor added to the session for a step-up. The `Set-Cookie`
/// values.
fn finish(
    env: &Env,
    auth: &Auth,
    req: &Request,
    step: &Step,
    proof: check::Proof,
    device: &Device,
) -> Result<Vec<HeaderValue>> {
    match step {
        Step::SignIn(p, _) => {
            pending::complete(env, auth.policy()?, req.headers(), p, proof.amr(), device)
        }
        Step::StepUp(who, s) => {
            step_up(env, auth, req, who, s, proof.amr(), device)?;
            Ok(Vec::new())
        }
    }
}

/// Adds a second factor `method` to the request's session: its `amr`
/// gains `method` and `mfa`, and it counts as a recent sign-in.
pub fn step_up(
    env: &Env,
    auth: &Auth,
    req: &Request,
    who: &Identity,
    s: &Session,
    method: &str,
    device: &Device,
) -> Result<()> {
    let mut s = s.clone();
    s.amr = pending::with_second_factor(&s.amr, method);
    s.reauth_at = env.now;
    session::update(env, auth.policy()?, req.headers(), &s)?;
    crate::events::record(
        env,
        &who.id,
        crate::events::Kind::SignIn,
        json!({ "amr": s.amr, "step_up": true }),
        device,
    )
}

/// `POST /api/account/login/mfa` `{code}`: the second step of a sign-in
/// through the JSON API, after `login` answered `second_factor_required`.
pub fn api(env: &Env, auth: &Auth, req: &Request, body: &Params) -> Result<Response> {
    let Some(Step::SignIn(p, who)) = step(env, auth, req, false)? else {
        return Err(Error::Unauthorized(
            "No sign-in is waiting for a second factor: sign in with the password first.".into(),
        ));
    };
    let device = Device::of(env.vars, req.headers())?;
    let code = body.one("code")?.unwrap_or_default();
    let proof = check::prove_code(env, auth.limits()?, &who, code, &device)?;
    let cookies = pending::complete(env, auth.policy()?, req.headers(), &p, proof.amr(), &device)?;
    let mut res = web::json(StatusCode::OK, &json!({ "status": "signed_in" }));
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    web::no_store(&mut res);
    Ok(res)
}
