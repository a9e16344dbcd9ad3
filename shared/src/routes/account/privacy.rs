//! Account centre section `privacy` (docs/account.md): the export, the
//! erasure of the account, the terms and the marketing choice.
//!
//! Pages: `/account/privacy`, `GET /account/export` (a download),
//! `POST /account/privacy/marketing`, `POST /account/delete`,
//! `/account/terms` (`?return_to=`). API under `/api/account/`:
//! `GET export`, `GET consents`, `POST consents` (`{"marketing": bool}` or
//! `{"terms": "<version>"}`), `POST delete` (`{"confirm": "<email>"}`;
//! `DELETE /api/account` itself is not a section path).

use askama::Template;
use http::{HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use super::{Answer, Ctx, body, ok};
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::html::{self, SignedOutPage};
use crate::privacy::consent::{self, Status, Terms};
use crate::privacy::{erase, export};
use crate::routes::login::is_local_path;
use crate::session;
use crate::web::{self, Params, Response};

/// The privacy page.
#[derive(Template)]
#[template(path = "account_privacy.html")]
pub struct PrivacyPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The form-level error, if any.
    pub error: Option<String>,
    /// A confirmation to show, if any.
    pub notice: Option<&'a str>,
    /// The person's address (to type as confirmation of erasure).
    pub email: &'a str,
    /// Their choices.
    pub status: Status,
    /// When they accepted the terms, formatted.
    pub terms_accepted_at: Option<String>,
    /// Their choices over time: (kind, value, when), oldest first.
    pub history: Vec<(String, String, String)>,
}

/// The page that asks for acceptance of the current terms.
#[derive(Template)]
#[template(path = "account_terms.html")]
pub struct TermsPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The form-level error, if any.
    pub error: Option<String>,
    /// The terms to accept.
    pub terms: Terms,
    /// The version accepted before, if any.
    pub previous: Option<String>,
    /// Where to go after.
    pub return_to: &'a str,
}

/// Answers the pages of this section under `/account`.
pub fn page(ctx: &Ctx, rest: &str) -> Answer {
    let post = *ctx.req.method() == Method::POST;
    match rest {
        "/privacy" if !post => privacy_page(ctx, None, None, StatusCode::OK).map(Some),
        "/privacy/marketing" if post => {
            let form = ctx.page()?.form(ctx.req)?;
            let opt_in = form.one("marketing")?.is_some();
            consent::set_marketing(ctx.env, &ctx.who.id, opt_in, &ctx.device.addr)?;
            web::redirect("/account/privacy?done=marketing").map(Some)
        }
        "/export" if !post => download(ctx).map(Some),
        "/delete" if post => delete_page(ctx).map(Some),
        "/terms" => terms_page(ctx, post).map(Some),
        "/privacy" | "/privacy/marketing" | "/export" | "/delete" => {
            Err(Error::MethodNotAllowed(if post { "GET" } else { "POST" }))
        }
        _ => Ok(None),
    }
}

/// Answers the JSON API of this section under `/api/account/`.
pub fn api(ctx: &Ctx, rest: &str) -> Answer {
    let method = ctx.req.method().clone();
    match (rest, method) {
        ("export", Method::GET | Method::HEAD) => {
            let doc = export_recorded(ctx)?;
            ok(&doc)
        }
        ("consents", Method::GET | Method::HEAD) => ok(&json!(status(ctx)?)),
        ("consents", Method::POST) => {
            let change: ConsentChange = body(ctx.req)?;
            match (change.marketing, change.terms.as_deref()) {
                (Some(m), None) => {
                    consent::set_marketing(ctx.env, &ctx.who.id, m, &ctx.device.addr)?;
                }
                (None, Some(v)) => {
                    consent::accept_terms(ctx.env, &ctx.who.id, v, &ctx.device.addr)?;
                }
                _ => {
                    return Err(Error::bad_request(
                        "Send either {\"marketing\": true|false} or {\"terms\": \"<version>\"}.",
                    ));
                }
            }
            ok(&json!(status(ctx)?))
        }
        ("delete", Method::POST) => {
            ctx.require_recent()?;
            let ask: DeleteAsk = body(ctx.req)?;
            erase::erase(ctx.env, &ctx.who, &ask.confirm)?;
            let mut res = web::response(StatusCode::NO_CONTENT, "application/json", Vec::new());
            res.headers_mut().append(
                header::SET_COOKIE,
                session::clear_cookie(ctx.auth.policy()?)?,
            );
            Ok(Some(res))
        }
        ("export" | "consents" | "delete", _) => Err(Error::MethodNotAllowed(match rest {
            "export" => "GET",
            "consents" => "GET, POST",
            _ => "POST",
        })),
        _ => Ok(None),
    }
}

/// `POST /api/account/consents`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentChange {
    marketing: Option<bool>,
    terms: Option<String>,
}

/// `POST /api/account/delete`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteAsk {
    confirm: String,
}

fn status(ctx: &Ctx) -> Result<Status> {
    let terms = Terms::load(ctx.env.vars)?;
    consent::status(ctx.env, &ctx.who.id, terms.as_ref())
}

/// The export, recorded as a security event.
fn export_recorded(ctx: &Ctx) -> Result<serde_json::Value> {
    events::record(ctx.env, &ctx.who.id, Kind::Export, json!({}), &ctx.device)?;
    export::export(ctx.env, &ctx.who)
}

fn download(ctx: &Ctx) -> Result<Response> {
    let doc = export_recorded(ctx)?;
    let body =
        serde_json::to_vec_pretty(&doc).map_err(|e| Error::Internal(format!("export: {e}")))?;
    let mut res = web::response(StatusCode::OK, "application/json", body);
    web::no_store(&mut res);
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"lanyard-export.json\""),
    );
    Ok(res)
}

fn privacy_page(
    ctx: &Ctx,
    error: Option<String>,
    notice: Option<&str>,
    code: StatusCode,
) -> Result<Response> {
    let page = ctx.page()?;
    let status = status(ctx)?;
    let notice =
        notice.or_else(
            || match Params::from_query(ctx.req).ok()?.one("done").ok()?? {
                "marketing" => Some("Your marketing choice is saved."),
                _ => None,
            },
        );
    let res = html::render(
        &PrivacyPage {
            product: page.product,
            csrf: &page.csrf,
            error,
            notice,
            email: &ctx.who.email,
            terms_accepted_at: status.terms_accepted_at.map(html::utc_time),
            history: status
                .history
                .iter()
                .map(|r| (r.kind.clone(), r.value.clone(), html::utc_time(r.at)))
                .collect(),
            status,
        },
        code,
    )?;
    Ok(page.finish(res))
}

fn delete_page(ctx: &Ctx) -> Result<Response> {
    let page = ctx.page()?;
    let form = page.form(ctx.req)?;
    if ctx.require_recent().is_err() {
        return super::to_reauth("/account/privacy");
    }
    let confirm = form.one("confirm")?.unwrap_or_default();
    match erase::erase(ctx.env, &ctx.who, confirm) {
        Ok(()) => {
            let mut res = html::render(
                &SignedOutPage {
                    product: page.product,
                    csrf: &page.csrf,
                    heading: "Your account is deleted",
                    text: "Everything we held about you is gone, and you are signed out everywhere.",
                    confirm: false,
                    carried: Vec::new(),
                    frames: Vec::new(),
                    next: "",
                },
                StatusCode::OK,
            )?;
            res.headers_mut().append(
                header::SET_COOKIE,
                session::clear_cookie(ctx.auth.policy()?)?,
            );
            Ok(page.finish(res))
        }
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_))) => {
            privacy_page(ctx, Some(e.detail()), None, e.status())
        }
        Err(e) => Err(e),
    }
}

fn terms_page(ctx: &Ctx, post: bool) -> Result<Response> {
    let page = ctx.page()?;
    let params = if post {
        page.form(ctx.req)?
    } else {
        Params::from_query(ctx.req)?
    };
    let return_to = params
        .one("return_to")?
        .filter(|p| is_local_path(p))
        .unwrap_or("/account");
    let Some(terms) = Terms::load(ctx.env.vars)? else {
        return web::redirect(return_to);
    };
    let mut error = None;
    if post {
        if params.one("accept")?.is_none() {
            error = Some("Tick the box to accept the terms, or sign out.".to_owned());
        } else {
            let version = params.one("version")?.unwrap_or_default();
            match consent::accept_terms(ctx.env, &ctx.who.id, version, &ctx.device.addr) {
                Ok(()) => return web::redirect(return_to),
                Err(e @ (Error::BadRequest(_) | Error::Conflict(_))) => error = Some(e.detail()),
                Err(e) => return Err(e),
            }
        }
    }
    let previous = consent::status(ctx.env, &ctx.who.id, Some(&terms))?.terms_accepted;
    let code = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let res = html::render(
        &TermsPage {
            product: page.product,
            csrf: &page.csrf,
            error,
            terms,
            previous,
            return_to,
        },
        code,
    )?;
    Ok(page.finish(res))
}

#[cfg(test)]
mod tests;
