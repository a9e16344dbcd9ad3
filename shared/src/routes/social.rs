//! The social component: sign-in through upstream providers under
//! `/social/...` (start, callback, the password proof of a link, the
//! linked providers and unlink), and the operator's connections API under
//! `/api/admin/connections`.

use http::{HeaderValue, Method, StatusCode, header};

use super::not_found;
use super::page::Page;
use crate::accounts::{self, Auth};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::html::{self, LinkedAccount, SocialAccountsPage, SocialLinkPage};
use crate::routes::admin;
use crate::routes::errors::{self, Style};
use crate::routes::login::is_local_path;
use crate::social::connections::{self as conns, ConnectionSpec};
use crate::social::flow::{self, Outcome, SignIn};
use crate::social::{link, org_sso};
use crate::store::{connections, federated_identities};
use crate::web::{self, Params, Request, Response};
use crate::{Env, client_addr, session, sweep};

/// The prefix of the connections admin API.
const CONNECTIONS: &str = "/api/admin/connections";

/// Routes a request to the social component.
pub fn handle(env: &Env, req: Request) -> Response {
    let path = req.uri().path();
    if path == CONNECTIONS || path.starts_with("/api/admin/connections/") {
        return connections_api(env, &req).unwrap_or_else(|e| e.into_response(Style::Api));
    }
    let result = Auth::load(env.vars).and_then(|auth| route(env, &auth, &req));
    result.unwrap_or_else(|e| e.into_response(super::style_for(req.uri().path())))
}

fn route(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    let path = req.uri().path();
    let page = Page::new(auth, req)?;
    let post = match *req.method() {
        Method::GET | Method::HEAD => false,
        Method::POST => true,
        _ => return Err(Error::MethodNotAllowed("GET, POST")),
    };
    let rest = path.strip_prefix("/social/").unwrap_or("");
    let res = match (rest.split('/').collect::<Vec<_>>().as_slice(), post) {
        ([id, "start"], false) => start(env, auth, id, req),
        ([id, "callback"], false) => callback(env, auth, id, &Params::from_query(req)?, req),
        // form_post (Apple): a cross-site POST carries no SameSite=Lax
        // cookie, so it is turned into a GET of the same callback, which
        // does.
        ([id, "callback"], true) => repost_as_get(id, req),
        (["link"], false) => link_form(env, &page, req),
        (["link"], true) => link_confirm(env, auth, &page, req),
        (["accounts"], false) => accounts_page(env, auth, &page, req, None, None),
        (["unlink"], true) => unlink(env, auth, &page, req),
        (["start" | "callback" | "accounts"] | [_, "start"], true) => {
            Err(Error::MethodNotAllowed("GET"))
        }
        (["unlink"], false) => Err(Error::MethodNotAllowed("POST")),
        _ => return Ok(not_found(req)),
    };
    res.map(|r| page.finish(r))
}

fn start(env: &Env, auth: &Auth, id: &str, req: &Request) -> Result<Response> {
    let query = Params::from_query(req)?;
    let return_to = query.one("return_to")?.filter(|p| is_local_path(p));
    let conn = flow::connection(env, id)?;
    let link_identity = match query.one("link")? {
        None => None,
        Some("1") => match accounts::current(env, auth, req.headers())? {
            Some((who, _)) => Some(who.id),
            None => {
                return Err(Error::Unauthorized(
                    "Sign in first, then link another provider to your account.".into(),
                ));
            }
        },
        Some(_) => return Err(Error::bad_request("`link` must be 1.")),
    };
    sweep::maybe(env)?;
    let started = flow::start(
        env,
        auth,
        &conn,
        return_to,
        link_identity.as_deref(),
        req.headers(),
    )?;
    let mut res = web::redirect(&started.location)?;
    res.headers_mut().append(header::SET_COOKIE, started.cookie);
    Ok(res)
}

fn callback(env: &Env, auth: &Auth, id: &str, params: &Params, req: &Request) -> Result<Response> {
    match flow::callback(env, auth, id, params, req.headers())? {
        Outcome::SignedIn { cookie, return_to } => {
            // A new session id at every sign-in; the old one (if any) is gone.
            session::end(env, auth.policy()?, req.headers())?;
            let mut res = web::redirect(return_to.as_deref().unwrap_or("/"))?;
            res.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(res)
        }
        Outcome::SecondFactor { cookie } => {
            let mut res = web::redirect("/login/mfa")?;
            res.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(res)
        }
        Outcome::Linked { name, return_to } => {
            let target = return_to.unwrap_or_else(|| "/social/accounts".into());
            let sep = if target.contains('?') { '&' } else { '?' };
            web::redirect(&if target == "/social/accounts" {
                format!("{target}{sep}linked={}", web::pct(&name))
            } else {
                target
            })
        }
        Outcome::NeedsPassword { token } => {
            web::redirect(&format!("/social/link?token={}", web::pct(&token)))
        }
        Outcome::Cancelled { return_to } => {
            let mut to = "/login?social=cancelled".to_owned();
            if let Some(t) = return_to {
                to.push_str(&format!("&return_to={}", web::pct(&t)));
            }
            web::redirect(&to)
        }
    }
}

fn repost_as_get(id: &str, req: &Request) -> Result<Response> {
    if !web::content_type_is(req, web::FORM) {
        return Err(Error::bad_request("The provider's answer is not a form."));
    }
    // Re-encode what was posted, parsed strictly first.
    let form = Params::from_form(req)?;
    let query = form
        .pairs()
        .iter()
        .map(|(k, v)| format!("{}={}", web::pct(k), web::pct(v)))
        .collect::<Vec<_>>()
        .join("&");
    let id = web::pct(id);
    web::redirect(&format!("/social/{id}/callback?{query}"))
}

fn token_of(params: &Params) -> Result<&str> {
    params.required("token").map_err(|_| {
        Error::bad_request("This link is incomplete. Sign in with your provider again.")
    })
}

fn link_page(
    env: &Env,
    page: &Page,
    token: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    let (p, who) = link::pending(env, token)?;
    let provider = connections::get(env.sql, &p.connection_id)?
        .map_or_else(|| p.connection_id.clone(), |c| c.name);
    html::render(
        &SocialLinkPage {
            product: page.product,
            csrf: &page.csrf,
            error,
            token,
            email: &who.email,
            provider: &provider,
        },
        status,
    )
}

fn link_form(env: &Env, page: &Page, req: &Request) -> Result<Response> {
    let query = Params::from_query(req)?;
    link_page(env, page, token_of(&query)?, None, StatusCode::OK)
}

fn link_confirm(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let form = page.form(req)?;
    let token = token_of(&form)?;
    let password = form.one("password")?.unwrap_or_default();
    if password.is_empty() {
        return link_page(
            env,
            page,
            token,
            Some("Enter the password of your account.".into()),
            StatusCode::BAD_REQUEST,
        );
    }
    let client = client_addr::of(env.vars, req.headers())?;
    match link::confirm(env, auth, token, password, &client) {
        Ok((who, pending)) => {
            // An organisation's connection makes its people members.
            if let Some(conn) = connections::get(env.sql, &pending.connection_id)? {
                org_sso::after_sign_in(env.sql, &conn, &who.id, env.now)?;
            }
            let started = flow::sign_in(
                env,
                auth,
                &who,
                &pending.connection_id,
                &["fed", "pwd"],
                &Device::of(env.vars, req.headers())?,
                pending.return_to.as_deref(),
            )?;
            let (target, cookie) = match started {
                SignIn::Session(cookie) => {
                    session::end(env, auth.policy()?, req.headers())?;
                    (pending.return_to.as_deref().unwrap_or("/"), cookie)
                }
                SignIn::SecondFactor(cookie) => ("/login/mfa", cookie),
            };
            let mut res = web::redirect(target)?;
            res.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(res)
        }
        Err(e @ (Error::Unauthorized(_) | Error::TooManyRequests { .. })) => {
            let mut res = link_page(env, page, token, Some(e.detail()), e.status())?;
            errors::decorate(&mut res, &e);
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

fn signed_in(env: &Env, auth: &Auth, req: &Request) -> Result<crate::identity::Identity> {
    accounts::current(env, auth, req.headers())?
        .map(|(who, _)| who)
        .ok_or_else(|| Error::Unauthorized("Sign in first to see your sign-in providers.".into()))
}

fn accounts_page(
    env: &Env,
    auth: &Auth,
    page: &Page,
    req: &Request,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response> {
    let who = match signed_in(env, auth, req) {
        Ok(who) => who,
        Err(_) => return web::redirect("/login?return_to=%2Fsocial%2Faccounts"),
    };
    let notice = notice.or_else(|| {
        Params::from_query(req).ok().and_then(|q| {
            q.one("linked")
                .ok()
                .flatten()
                .map(|n| format!("{n} is linked to your account."))
        })
    });
    let available = conns::buttons(env)?;
    let links = federated_identities::for_identity(env.sql, &who.id)?
        .into_iter()
        .map(|l| {
            let name = available
                .iter()
                .find(|(id, _)| *id == l.connection_id)
                .map_or_else(|| l.connection_id.clone(), |(_, n)| n.clone());
            LinkedAccount {
                name,
                email: l.email,
                issuer: l.issuer,
                subject: l.subject,
            }
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    html::render(
        &SocialAccountsPage {
            product: page.product,
            csrf: &page.csrf,
            error,
            notice,
            links,
            available,
        },
        status,
    )
}

fn unlink(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let form = page.form(req)?;
    let who = signed_in(env, auth, req)?;
    let issuer = form.required("issuer")?;
    let subject = form.required("subject")?;
    match link::unlink(env, &who.id, issuer, subject) {
        Ok(()) => accounts_page(
            env,
            auth,
            page,
            req,
            None,
            Some("The provider is unlinked.".into()),
        ),
        Err(e @ Error::Conflict(_)) => accounts_page(env, auth, page, req, Some(e.detail()), None),
        Err(e) => Err(e),
    }
}

/// `/api/admin/connections[/{id}]`: GET list, POST; GET, PUT, DELETE one.
fn connections_api(env: &Env, req: &Request) -> Result<Response> {
    admin::authorise(env, req)?;
    let id = req
        .uri()
        .path()
        .strip_prefix(CONNECTIONS)
        .unwrap_or("")
        .trim_start_matches('/');
    let spec = || -> Result<ConnectionSpec> {
        if !web::content_type_is(req, "application/json") {
            return Err(Error::bad_request(
                "Send the connection as application/json.",
            ));
        }
        serde_json::from_slice(req.body())
            .map_err(|e| Error::bad_request(format!("Invalid connection: {e}")))
    };
    match (req.method().clone(), id.is_empty()) {
        (Method::GET, true) => Ok(web::json(
            StatusCode::OK,
            &serde_json::json!({ "connections": conns::list(env)? }),
        )),
        (Method::POST, true) => {
            let c = conns::create(env, &spec()?)?;
            let mut res = web::json(StatusCode::CREATED, &c);
            if let Ok(v) = HeaderValue::from_str(&format!("{CONNECTIONS}/{}", c.id)) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            Ok(res)
        }
        (Method::GET, false) => Ok(web::json(StatusCode::OK, &conns::get(env, id)?)),
        (Method::PUT, false) => Ok(web::json(
            StatusCode::OK,
            &conns::update(env, id, &spec()?)?,
        )),
        (Method::DELETE, false) => {
            conns::delete(env, id)?;
            Ok(web::response(
                StatusCode::NO_CONTENT,
                "application/json",
                Vec::new(),
            ))
        }
        (_, true) => Err(Error::MethodNotAllowed("GET, POST")),
        (_, false) => Err(Error::MethodNotAllowed("GET, PUT, DELETE")),
    }
}

#[cfg(test)]
mod tests;
