//! Account centre section `passkeys` (docs/account.md): the list of a
//! person's passkeys with rename and delete at `/account/passkeys`, and the
//! JSON API that `static/js/passkeys.js` calls to add one (WebAuthn needs
//! script), under `/api/account/passkeys`. The work is done in
//! [`crate::mfa::passkeys`].

use askama::Template;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{Answer, Ctx, body, done, ok};
use crate::error::{Error, Result};
use crate::html::{self, utc_time};
use crate::mfa::passkeys as domain;
use crate::routes::errors;
use crate::routes::login::is_local_path;
use crate::routes::passkey_login::settings;
use crate::session;
use crate::store::passkeys::{self as rows, Listed};
use crate::web::{self, Params, Response};

/// One passkey on the page.
pub struct Item {
    /// The credential id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was added (UTC).
    pub created: String,
    /// When it last signed in (UTC), or "never".
    pub last_used: String,
}

/// `/account/passkeys`.
#[derive(Template)]
#[template(path = "account_passkeys.html")]
pub struct PasskeysPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// A notice after a change.
    pub notice: Option<&'static str>,
    /// An error to show.
    pub error: Option<String>,
    /// The passkeys.
    pub passkeys: Vec<Item>,
}

fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "added" => "Your passkey is added. You can sign in with it now.",
        "renamed" => "The passkey is renamed.",
        "deleted" => "The passkey is deleted. It no longer signs in to your account.",
        _ => return None,
    })
}

/// Answers the pages of this section under `/account`.
pub fn page(ctx: &Ctx, rest: &str) -> Answer {
    let post = *ctx.req.method() == Method::POST;
    let res = match (rest, post) {
        ("/passkeys", false) => {
            let query = Params::from_query(ctx.req)?;
            list_page(ctx, notice(query.one("done")?), None, StatusCode::OK)
        }
        ("/passkeys/rename", true) => rename_form(ctx),
        ("/passkeys/delete", true) => delete_form(ctx),
        ("/passkeys/rename" | "/passkeys/delete", false) => Err(Error::MethodNotAllowed("POST")),
        ("/passkeys", true) => Err(Error::MethodNotAllowed("GET")),
        _ => return Ok(None),
    }?;
    Ok(Some(res))
}

fn list_page(
    ctx: &Ctx,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    let page = ctx.page()?;
    let passkeys = rows::for_identity(ctx.env.sql, &ctx.who.id)?
        .into_iter()
        .map(|p| Item {
            id: p.id,
            name: p.name,
            created: utc_time(p.created_at),
            last_used: p.last_used_at.map_or_else(|| "never".into(), utc_time),
        })
        .collect();
    let res = html::render(
        &PasskeysPage {
            product: page.product,
            csrf: &page.csrf,
            notice,
            error,
            passkeys,
        },
        status,
    )?;
    Ok(page.finish(res))
}

/// Errors a person can fix are shown on the page with their status; a
/// change that needs a recent sign-in goes to `/account/reauth` and back.
fn on_form(ctx: &Ctx, err: Error) -> Result<Response> {
    match err {
        Error::RecentSignInRequired => super::to_reauth("/account/passkeys"),
        Error::BadRequest(_) | Error::NotFound | Error::TooManyRequests { .. } => {
            let status = err.status();
            let mut res = list_page(ctx, None, Some(err.detail()), status)?;
            errors::decorate(&mut res, &err);
            Ok(res)
        }
        other => Err(other),
    }
}

fn rename_form(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    let changed = form
        .required("id")
        .and_then(|id| domain::rename(ctx.env, &ctx.who.id, id, form.one("name")?));
    match changed {
        Ok(_) => web::redirect("/account/passkeys?done=renamed"),
        Err(e) => on_form(ctx, e),
    }
}

fn delete_form(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    let deleted = ctx.require_recent().and_then(|()| {
        let id = form.required("id")?;
        domain::delete(ctx.env, &ctx.who.id, id, &ctx.device)
    });
    match deleted {
        Ok(()) => web::redirect("/account/passkeys?done=deleted"),
        Err(e) => on_form(ctx, e),
    }
}

/// `POST /api/account/passkeys/register`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    handle: String,
    #[serde(default)]
    name: Option<String>,
    credential: Json,
}

/// `PATCH /api/account/passkeys/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

/// `POST /api/account/passkeys/reauth`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reauth {
    handle: String,
    credential: Json,
    #[serde(default)]
    return_to: Option<String>,
}

fn listed(p: &Listed) -> Json {
    json!({
        "id": p.id,
        "name": p.name,
        "created_at": p.created_at,
        "last_used_at": p.last_used_at,
    })
}

/// Answers the JSON API of this section under `/api/account/`.
pub fn api(ctx: &Ctx, rest: &str) -> Answer {
    let m = ctx.req.method().clone();
    let get = m == Method::GET || m == Method::HEAD;
    let post = m == Method::POST;
    match rest {
        "passkeys" if get => {
            let all = rows::for_identity(ctx.env.sql, &ctx.who.id)?;
            ok(&json!({ "passkeys": all.iter().map(listed).collect::<Vec<_>>() }))
        }
        "passkeys/register/options" if post => {
            ctx.require_recent()?;
            body::<serde_json::Map<String, Json>>(ctx.req)?;
            let started = domain::start_registration(ctx.env, &ctx.auth.config, &ctx.who)?;
            ok(&started.to_json())
        }
        "passkeys/register" if post => {
            ctx.require_recent()?;
            let b: Register = body(ctx.req)?;
            let added = domain::finish_registration(
                ctx.env,
                &ctx.auth.config,
                &ctx.who,
                &b.handle,
                b.name.as_deref(),
                &b.credential,
                &ctx.device,
            )?;
            Ok(Some(web::json(
                StatusCode::CREATED,
                &json!({ "passkey": listed(&added), "redirect": "/account/passkeys?done=added" }),
            )))
        }
        "passkeys/reauth/options" if post => {
            body::<serde_json::Map<String, Json>>(ctx.req)?;
            let started = domain::start_for(ctx.env, &ctx.auth.config, &ctx.who.id)?;
            ok(&started.to_json())
        }
        "passkeys/reauth" if post => reauth(ctx),
        "passkeys" => Err(Error::MethodNotAllowed("GET")),
        "passkeys/register/options"
        | "passkeys/register"
        | "passkeys/reauth/options"
        | "passkeys/reauth" => Err(Error::MethodNotAllowed("POST")),
        _ => {
            let Some(id) = rest.strip_prefix("passkeys/") else {
                return Ok(None);
            };
            if id.is_empty() || id.contains('/') {
                return Ok(None);
            }
            match m {
                Method::PATCH => {
                    let b: Rename = body(ctx.req)?;
                    let name = domain::rename(ctx.env, &ctx.who.id, id, Some(&b.name))?;
                    ok(&json!({ "id": id, "name": name }))
                }
                Method::DELETE => {
                    ctx.require_recent()?;
                    domain::delete(ctx.env, &ctx.who.id, id, &ctx.device)?;
                    done()
                }
                _ => Err(Error::MethodNotAllowed("PATCH, DELETE")),
            }
        }
    }
}

/// A re-entry with a passkey: the session counts as recent again, and has
/// used a passkey (`hwk`, and `mfa` beside a password), so that it also
/// meets an application's `acr_values` for two factors (the step-up page
/// offers it).
fn reauth(ctx: &Ctx) -> Answer {
    let b: Reauth = body(ctx.req)?;
    domain::finish_for(
        ctx.env,
        settings(ctx.auth)?,
        (&ctx.who.id, &ctx.who.email),
        &b.handle,
        &b.credential,
        &ctx.device,
    )?;
    let mut s = ctx.session.clone();
    s.reauth_at = ctx.env.now;
    s.amr = crate::mfa::pending::with_second_factor(&s.amr, "hwk");
    session::update(ctx.env, ctx.auth.policy()?, ctx.req.headers(), &s)?;
    let target = b
        .return_to
        .filter(|t| is_local_path(t))
        .unwrap_or_else(|| "/account".into());
    ok(&json!({ "redirect": target }))
}
