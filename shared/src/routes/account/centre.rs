//! Account centre section `centre` (docs/account.md): the profile, email
//! change, password change and set, sessions, connected apps, sign-in
//! methods and activity, as pages under `/account` and as JSON under
//! `/api/account/`. The work is done in [`crate::centre`].
//!
//! Pages follow post/redirect/get: a change redirects back with a notice
//! (`?done=…`, a fixed text per key), an error a person can fix is shown on
//! the form with its status, and a change that needs a recent sign-in sends
//! the person to `/account/reauth` and back.

mod pages;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{Answer, Ctx, body, done, ok};
use crate::accounts::Auth;
use crate::centre::{activity, apps, email, methods, password, profile, sessions};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::html::{self, Field, MessagePage, utc_time};
use crate::routes::errors;
use crate::routes::page::Page;
use crate::web::{self, Params, Request, Response};
use crate::{Env, identity};
use pages::{
    AppRow, AppsPage, EmailConfirmPage, EventRow, EventsPage, LinkedRow, MethodsPage, PasswordPage,
    ProfilePage, SessionRow, SessionsPage,
};

/// Answers the pages of this section under `/account`.
pub fn page(ctx: &Ctx, rest: &str) -> Answer {
    let post = *ctx.req.method() == Method::POST;
    let res = match (rest, post) {
        ("/", false) => profile_page(ctx, None, None, "", StatusCode::OK),
        ("/", true) => save_profile(ctx),
        ("/email", true) => request_email(ctx),
        ("/password", false) => password_page(ctx, None, true, StatusCode::OK),
        ("/password", true) => change_password(ctx),
        ("/sessions", false) => sessions_page(ctx, None, StatusCode::OK),
        ("/sessions/revoke", true) => revoke_session(ctx),
        ("/sessions/revoke-others", true) => revoke_other_sessions(ctx),
        ("/apps", false) => apps_page(ctx, None, StatusCode::OK),
        ("/apps/revoke", true) => revoke_app(ctx),
        ("/methods", false) => methods_page(ctx),
        ("/events", false) => events_page(ctx),
        ("/email" | "/sessions/revoke" | "/sessions/revoke-others" | "/apps/revoke", false) => {
            Err(Error::MethodNotAllowed("POST"))
        }
        ("/methods" | "/events", true) => Err(Error::MethodNotAllowed("GET")),
        _ => return Ok(None),
    }?;
    Ok(Some(res))
}

/// Pages that need no session (the link confirming a new email address).
pub fn public_page(env: &Env, auth: &Auth, req: &Request, rest: &str) -> Answer {
    if rest != "/email/confirm" {
        return Ok(None);
    }
    let page = Page::new(auth, req)?;
    let res = if *req.method() == Method::POST {
        let form = page.form(req)?;
        let token = token_of(&form)?;
        let changed = email::confirm(env, auth, token, &Device::of(env.vars, req.headers())?)?;
        html::render(
            &MessagePage {
                product: page.product,
                csrf: &page.csrf,
                heading: "Email changed",
                text: &format!(
                    "Your account's email address is now {}. We told your old address about the change.",
                    changed.new_email
                ),
                resend_for: None,
                next: Some(("/account", "Go to your account")),
            },
            StatusCode::OK,
        )?
    } else {
        let query = Params::from_query(req)?;
        let token = token_of(&query)?;
        let new_email = email::check(env, token)?;
        html::render(
            &EmailConfirmPage {
                product: page.product,
                csrf: &page.csrf,
                token,
                new_email: &new_email,
            },
            StatusCode::OK,
        )?
    };
    Ok(Some(page.finish(res)))
}

fn token_of(params: &Params) -> Result<&str> {
    params.required("token").map_err(|_| {
        Error::bad_request("This link is incomplete. Check that you copied all of it.")
    })
}

/// Answers the JSON API of this section under `/api/account/`.
pub fn api(ctx: &Ctx, rest: &str) -> Answer {
    let m = ctx.req.method().clone();
    let get = m == Method::GET || m == Method::HEAD;
    match rest {
        "profile" if get => ok(&profile_json(ctx.auth, &ctx.who)?),
        "profile" if m == Method::POST => api_save_profile(ctx),
        "email" if m == Method::POST => api_request_email(ctx),
        "email/confirm" if m == Method::POST => api_confirm_email(ctx),
        "password" if m == Method::POST => api_change_password(ctx),
        "sessions" if get => ok(&json!({
            "sessions": sessions::list(ctx.env, &ctx.who.id, &ctx.session.sid)?
        })),
        "sessions/revoke-others" if m == Method::POST => {
            let ended =
                sessions::revoke_others(ctx.env, &ctx.who.id, &ctx.session.sid, &ctx.device)?;
            ok(&json!({ "ended": ended }))
        }
        "apps" if get => ok(&json!({ "apps": apps::list(ctx.env, &ctx.who.id)? })),
        "methods" if get => ok(&json!(methods::of(ctx.env, &ctx.who)?)),
        "events" if get => {
            let before = before_of(&Params::from_query(ctx.req)?)?;
            ok(&json!(activity::page(ctx.env, &ctx.who.id, before)?))
        }
        "profile" => Err(Error::MethodNotAllowed("GET, POST")),
        "email" | "email/confirm" | "password" | "sessions/revoke-others" => {
            Err(Error::MethodNotAllowed("POST"))
        }
        "sessions" | "apps" | "methods" | "events" => Err(Error::MethodNotAllowed("GET")),
        _ => {
            if let Some(sid) = rest.strip_prefix("sessions/") {
                if m != Method::DELETE {
                    return Err(Error::MethodNotAllowed("DELETE"));
                }
                sessions::revoke(
                    ctx.env,
                    &ctx.who.id,
                    &ctx.session.sid,
                    &path_segment(sid)?,
                    &ctx.device,
                )?;
                return done();
            }
            if let Some(client_id) = rest.strip_prefix("apps/") {
                if m != Method::DELETE {
                    return Err(Error::MethodNotAllowed("DELETE"));
                }
                apps::revoke(ctx.env, &ctx.who.id, &path_segment(client_id)?, &ctx.device)?;
                return done();
            }
            Ok(None)
        }
    }
}

/// A percent-decoded path segment (a session or client id).
fn path_segment(raw: &str) -> Result<String> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| Error::NotFound)?;
    if decoded.is_empty() || decoded.contains('/') {
        return Err(Error::NotFound);
    }
    Ok(decoded.into_owned())
}

/// The `before` cursor of the events list.
fn before_of(query: &Params) -> Result<Option<i64>> {
    query
        .one("before")?
        .map(|b| {
            b.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::bad_request("`before` must be an event id (a positive number).")
            })
        })
        .transpose()
}

// ---- Shared page helpers.

/// Shows an error a person can fix on the form (with the error's status and
/// headers); sends a change that needs a recent sign-in to `/account/reauth`
/// and back to `back`; anything else is an error page.
fn on_form(
    err: Error,
    back: &str,
    show: impl FnOnce(String, StatusCode) -> Result<Response>,
) -> Result<Response> {
    match err {
        Error::RecentSignInRequired => super::to_reauth(back),
        Error::BadRequest(_)
        | Error::Unauthorized(_)
        | Error::Conflict(_)
        | Error::NotFound
        | Error::TooManyRequests { .. }
        | Error::Unavailable(_) => {
            let mut res = show(err.detail(), err.status())?;
            errors::decorate(&mut res, &err);
            Ok(res)
        }
        other => Err(other),
    }
}

/// The redirect after a change: back to the page, with its notice.
fn done_page(path: &str, key: &str) -> Result<Response> {
    web::redirect(&format!("{path}?done={key}"))
}

/// The notice of a page shown after a change (`?done=`); none on a page
/// that shows an error.
fn notice_of(ctx: &Ctx, status: StatusCode) -> Result<Option<&'static str>> {
    if status != StatusCode::OK {
        return Ok(None);
    }
    Ok(pages::notice(Params::from_query(ctx.req)?.one("done")?))
}

// ---- Profile and email.

fn profile_page(
    ctx: &Ctx,
    error: Option<String>,
    email_error: Option<String>,
    new_email: &str,
    status: StatusCode,
) -> Result<Response> {
    profile_page_with(ctx, error, email_error, new_email, None, status)
}

fn profile_page_with(
    ctx: &Ctx,
    error: Option<String>,
    email_error: Option<String>,
    new_email: &str,
    typed: Option<&Params>,
    status: StatusCode,
) -> Result<Response> {
    let page = ctx.page()?;
    let fields = profile::fields(ctx.auth, &ctx.who)?
        .into_iter()
        .map(|f| {
            let value = typed.map_or(f.value, |t| t.echo(&f.attribute.name).to_owned());
            Field::of(f.attribute, value)
        })
        .collect();
    let notice = notice_of(ctx, status)?;
    let res = html::render(
        &ProfilePage {
            product: page.product,
            csrf: &page.csrf,
            notice,
            error,
            email_error,
            email: &ctx.who.email,
            verified: ctx.who.email_verified,
            new_email,
            fields,
        },
        status,
    )?;
    Ok(page.finish(res))
}

fn save_profile(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    match profile::save(ctx.env, ctx.auth, &ctx.who, &form, &ctx.device) {
        Ok(_) => done_page("/account", "profile"),
        Err(e) => on_form(e, "/account", |msg, status| {
            profile_page_with(ctx, Some(msg), None, "", Some(&form), status)
        }),
    }
}

fn request_email(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    let typed = form.one("email")?.unwrap_or_default().to_owned();
    let result = ctx
        .require_recent()
        .and_then(|()| email::request(ctx.env, ctx.auth, &ctx.who, &typed, &ctx.device));
    match result {
        Ok(_) => done_page("/account", "email"),
        Err(e) => on_form(e, "/account", |msg, status| {
            profile_page(ctx, None, Some(msg), &typed, status)
        }),
    }
}

fn profile_json(auth: &Auth, who: &identity::Identity) -> Result<Json> {
    let schema: Vec<Json> = auth
        .schema()?
        .0
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "label": a.label,
                "required": a.required,
                "max_length": a.max_length,
            })
        })
        .collect();
    let attributes: Map<String, Json> = auth
        .schema()?
        .0
        .iter()
        .filter_map(|a| {
            who.attributes
                .get(&a.name)
                .map(|v| (a.name.clone(), v.clone()))
        })
        .collect();
    Ok(json!({
        "email": who.email,
        "email_verified": who.email_verified,
        "attributes": attributes,
        "schema": schema,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    attributes: Map<String, Json>,
}

fn api_save_profile(ctx: &Ctx) -> Answer {
    let b: ProfileBody = body(ctx.req)?;
    let params = profile::params_from_json(ctx.auth, &b.attributes)?;
    let attributes = profile::save(ctx.env, ctx.auth, &ctx.who, &params, &ctx.device)?;
    let mut who = ctx.who.clone();
    who.attributes = attributes;
    ok(&profile_json(ctx.auth, &who)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailBody {
    email: String,
}

fn api_request_email(ctx: &Ctx) -> Answer {
    ctx.require_recent()?;
    let b: EmailBody = body(ctx.req)?;
    let to = email::request(ctx.env, ctx.auth, &ctx.who, &b.email, &ctx.device)?;
    Ok(Some(web::json(
        StatusCode::ACCEPTED,
        &json!({
            "status": "link_sent",
            "email": to,
            "detail": "A link was sent to the new address. The email changes when it is opened.",
        }),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    token: String,
}

fn api_confirm_email(ctx: &Ctx) -> Answer {
    let b: ConfirmBody = body(ctx.req)?;
    let changed = email::confirm(ctx.env, ctx.auth, &b.token, &ctx.device)?;
    ok(&json!({ "email": changed.new_email, "email_verified": true }))
}

// ---- Password.

fn password_page(
    ctx: &Ctx,
    error: Option<String>,
    sign_out_others: bool,
    status: StatusCode,
) -> Result<Response> {
    let page = ctx.page()?;
    let notice = notice_of(ctx, status)?;
    let res = html::render(
        &PasswordPage {
            product: page.product,
            csrf: &page.csrf,
            notice,
            error,
            has_password: ctx.who.password_hash.is_some(),
            sign_out_others,
        },
        status,
    )?;
    Ok(page.finish(res))
}

fn change_password(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    let sign_out_others = form.one("sign_out_others")?.is_some();
    let change = password::Change {
        current: form.one("current_password")?,
        new: form.one("new_password")?.unwrap_or_default(),
        sign_out_others,
    };
    let result = ctx.require_recent().and_then(|()| {
        password::change(
            ctx.env,
            ctx.auth,
            &ctx.who,
            &ctx.session,
            &change,
            &ctx.device,
        )
    });
    match result {
        Ok(c) => done_page(
            "/account/password",
            if c.first { "password_set" } else { "password" },
        ),
        Err(e) => on_form(e, "/account/password", |msg, status| {
            password_page(ctx, Some(msg), sign_out_others, status)
        }),
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: Option<String>,
    new_password: String,
    #[serde(default = "yes")]
    sign_out_others: bool,
}

fn api_change_password(ctx: &Ctx) -> Answer {
    ctx.require_recent()?;
    let b: PasswordBody = body(ctx.req)?;
    let c = password::change(
        ctx.env,
        ctx.auth,
        &ctx.who,
        &ctx.session,
        &password::Change {
            current: b.current_password.as_deref(),
            new: &b.new_password,
            sign_out_others: b.sign_out_others,
        },
        &ctx.device,
    )?;
    ok(&json!({
        "password_set": c.first,
        "ended_sessions": c.ended_sessions.len(),
    }))
}

// ---- Sessions.

fn sessions_page(ctx: &Ctx, error: Option<String>, status: StatusCode) -> Result<Response> {
    let page = ctx.page()?;
    let rows = sessions::list(ctx.env, &ctx.who.id, &ctx.session.sid)?
        .into_iter()
        .map(|s| SessionRow {
            sid: s.sid,
            device: s.device,
            addr: s.client_addr,
            started: utc_time(s.created_at),
            last_used: utc_time(s.last_seen_at),
            current: s.current,
        })
        .collect();
    let notice = notice_of(ctx, status)?;
    let res = html::render(
        &SessionsPage {
            product: page.product,
            csrf: &page.csrf,
            notice,
            error,
            sessions: rows,
        },
        status,
    )?;
    Ok(page.finish(res))
}

fn revoke_session(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    let sid = form.one("sid")?.unwrap_or_default();
    match sessions::revoke(ctx.env, &ctx.who.id, &ctx.session.sid, sid, &ctx.device) {
        Ok(()) => done_page("/account/sessions", "session"),
        Err(Error::NotFound) => on_form(
            Error::bad_request("This session has ended already."),
            "/account/sessions",
            |msg, status| sessions_page(ctx, Some(msg), status),
        ),
        Err(e) => on_form(e, "/account/sessions", |msg, status| {
            sessions_page(ctx, Some(msg), status)
        }),
    }
}

fn revoke_other_sessions(ctx: &Ctx) -> Result<Response> {
    ctx.page()?.form(ctx.req)?;
    sessions::revoke_others(ctx.env, &ctx.who.id, &ctx.session.sid, &ctx.device)?;
    done_page("/account/sessions", "sessions")
}

// ---- Connected apps.

fn apps_page(ctx: &Ctx, error: Option<String>, status: StatusCode) -> Result<Response> {
    let page = ctx.page()?;
    let rows = apps::list(ctx.env, &ctx.who.id)?
        .into_iter()
        .map(|a| AppRow {
            client_id: a.client_id,
            name: a.name,
            scopes: a.scopes.join(" "),
            granted: utc_time(a.granted_at),
        })
        .collect();
    let notice = notice_of(ctx, status)?;
    let res = html::render(
        &AppsPage {
            product: page.product,
            csrf: &page.csrf,
            notice,
            error,
            apps: rows,
        },
        status,
    )?;
    Ok(page.finish(res))
}

fn revoke_app(ctx: &Ctx) -> Result<Response> {
    let form = ctx.page()?.form(ctx.req)?;
    let client_id = form.one("client_id")?.unwrap_or_default();
    match apps::revoke(ctx.env, &ctx.who.id, client_id, &ctx.device) {
        Ok(()) => done_page("/account/apps", "app"),
        Err(Error::NotFound) => on_form(
            Error::bad_request("This app has no access to revoke."),
            "/account/apps",
            |msg, status| apps_page(ctx, Some(msg), status),
        ),
        Err(e) => Err(e),
    }
}

// ---- Sign-in methods and activity.

fn methods_page(ctx: &Ctx) -> Result<Response> {
    let m = methods::of(ctx.env, &ctx.who)?;
    let page = ctx.page()?;
    let res = html::render(
        &MethodsPage {
            product: page.product,
            password: m.password,
            linked: m
                .linked
                .into_iter()
                .map(|l| LinkedRow {
                    provider: l.provider,
                    email: l.email,
                    linked: html::utc_day(l.linked_at),
                })
                .collect(),
            passkeys: m.passkeys,
            totp: Some(m.totp),
        },
        StatusCode::OK,
    )?;
    Ok(page.finish(res))
}

fn events_page(ctx: &Ctx) -> Result<Response> {
    let before = before_of(&Params::from_query(ctx.req)?)?;
    let p = activity::page(ctx.env, &ctx.who.id, before)?;
    let page = ctx.page()?;
    let res = html::render(
        &EventsPage {
            product: page.product,
            events: p
                .events
                .into_iter()
                .map(|e| EventRow {
                    text: e.text,
                    addr: e.client_addr,
                    device: e.device,
                    at: utc_time(e.at),
                })
                .collect(),
            older: p.next_before.map(|b| format!("/account/events?before={b}")),
        },
        StatusCode::OK,
    )?;
    Ok(page.finish(res))
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use serde_json::json;

    use crate::accounts::Auth;
    use crate::store::{count_rows, dev_outbox};
    use crate::testkit::{self, World, get, post};
    use crate::{csrf, identity, password};

    const NOW: i64 = 1_700_000_000;
    const CSRF: &str = "c3JmLXRlc3QtdG9rZW4tb2YtZW5vdWdoLWxlbmd0aC1";
    const PASSWORD: &str = "correct horse battery staple";

    /// A verified person with a password, signed in at `NOW`: the cookie
    /// header of their browser (session and CSRF).
    fn signed_in(w: &World) -> (String, String) {
        let auth = Auth::load(&w.vars).unwrap();
        let hash = password::hash(PASSWORD, auth.argon2().unwrap()).unwrap();
        let who = identity::create(
            &w.sql,
            "ada@example.com",
            Some(&hash),
            &Default::default(),
            0,
        )
        .unwrap()
        .unwrap();
        identity::mark_verified(&w.sql, &who.id, 0).unwrap();
        let set = testkit::signed_in(w, auth.policy().unwrap(), &who.id, 0, NOW);
        let session = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        (format!("{session}; {}={CSRF}", csrf::COOKIE), who.id)
    }

    fn send(w: &World, now: i64, req: http::Request<Vec<u8>>) -> (StatusCode, String, String) {
        let res = super::super::handle(&w.env(now), req);
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (
            res.status(),
            location,
            String::from_utf8_lossy(res.body()).into_owned(),
        )
    }

    #[test]
    fn the_confirmation_link_changes_nothing_on_get_and_needs_the_csrf_token() {
        let w = World::new();
        let (cookie, id) = signed_in(&w);
        let req = post("/account/email")
            .header("cookie", &cookie)
            .form(&[("csrf", CSRF), ("email", "ada@new.example")])
            .build();
        assert_eq!(send(&w, NOW, req).1, "/account?done=email");
        let link = dev_outbox::newest(&w.sql, Some("ada@new.example")).unwrap()[0]
            .link
            .clone()
            .unwrap();
        let path = link.strip_prefix(testkit::ISSUER).unwrap();
        let token = path.split("token=").nth(1).unwrap();
        // A GET (a mail scanner), from a browser without a session.
        let (status, _, page) = send(&w, NOW + 1, get(path).build());
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Confirm my new email"));
        let email = || identity::by_id(&w.sql, &id).unwrap().unwrap().email;
        assert_eq!(email(), "ada@example.com");
        // A POST without the CSRF token: refused, the link still works.
        let forged = post("/account/email/confirm")
            .form(&[("token", token)])
            .build();
        assert_eq!(send(&w, NOW + 2, forged).0, StatusCode::FORBIDDEN);
        assert_eq!(email(), "ada@example.com");
        let real = post("/account/email/confirm")
            .header("cookie", &format!("{}={CSRF}", csrf::COOKIE))
            .form(&[("csrf", CSRF), ("token", token)])
            .build();
        let (status, _, page) = send(&w, NOW + 3, real);
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(email(), "ada@new.example");
    }

    #[test]
    fn sensitive_changes_need_a_sign_in_within_five_minutes() {
        let w = World::new();
        let (cookie, _) = signed_in(&w);
        let api = |body: serde_json::Value| {
            post("/api/account/email")
                .header("cookie", &cookie)
                .header("origin", testkit::ISSUER)
                .json(&body)
                .build()
        };
        let (status, _, _) = send(&w, NOW + 300, api(json!({"email": "a@new.example"})));
        assert_eq!(status, StatusCode::ACCEPTED);
        let (status, _, body) = send(&w, NOW + 301, api(json!({"email": "b@new.example"})));
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("urn:lanyard:problem:recent-sign-in-required"));
        let page = post("/account/password")
            .header("cookie", &cookie)
            .form(&[
                ("csrf", CSRF),
                ("current_password", PASSWORD),
                ("new_password", "a whole new passphrase"),
            ])
            .build();
        let (status, location, _) = send(&w, NOW + 301, page);
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location, "/account/reauth?return_to=%2Faccount%2Fpassword");
        assert_eq!(count_rows(&w.sql, "email_changes").unwrap(), 1);
    }

    #[test]
    fn the_api_wants_json_and_answers_problems() {
        let w = World::new();
        let (cookie, _) = signed_in(&w);
        let form = post("/api/account/profile")
            .header("cookie", &cookie)
            .header("origin", testkit::ISSUER)
            .form(&[("name", "Ada")])
            .build();
        assert_eq!(send(&w, NOW, form).0, StatusCode::BAD_REQUEST);
        let sessions = get("/api/account/sessions")
            .header("cookie", &cookie)
            .build();
        let (status, _, body) = send(&w, NOW, sessions);
        assert_eq!(status, StatusCode::OK);
        let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
        let own = listed["sessions"][0]["sid"].as_str().unwrap().to_owned();
        let delete = http::Request::delete(format!("/api/account/sessions/{own}"))
            .header("cookie", &cookie)
            .header("origin", testkit::ISSUER)
            .body(Vec::new())
            .unwrap();
        let (status, _, body) = send(&w, NOW, delete);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("Sign out"));
        let events = get("/api/account/events?before=x")
            .header("cookie", &cookie)
            .build();
        assert_eq!(send(&w, NOW, events).0, StatusCode::BAD_REQUEST);
    }
}
