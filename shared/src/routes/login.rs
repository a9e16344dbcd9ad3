//! The login component: sign-up, email verification, login, logout, password
//! reset, the signed-in landing page, the dev outbox and static assets.

use http::{Method, StatusCode, header};

use super::page::Page;
use super::{get_only, not_found};
use crate::accounts::{self, Auth, LoggedIn, SignUp};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::html::{
    self, EmailFormPage, Field, HomePage, LoginPage, MessagePage, ResetPage, SignUpPage,
};
use crate::onetime::Purpose;
use crate::privacy::consent::Terms;
use crate::routes::errors;
use crate::social::Connection;
use crate::social::org_sso::{self, Realm};
use crate::store::dev_outbox;
use crate::web::{self, Params, Request, Response};
use crate::{Env, assets, client_addr, session, social, sweep};

/// Routes a request to the login component.
pub fn handle(env: &Env, req: Request) -> Response {
    // Static files read no settings but their own (the accent colour of
    // theme.css, the operator's logo): each variable read costs real time
    // on Spin.
    if req.uri().path().starts_with(assets::PREFIX) {
        let served = get_only(&req)
            .and_then(|()| assets::serve(&req, env.vars))
            .map(|asset| asset.unwrap_or_else(|| not_found(&req)));
        return served.unwrap_or_else(|e| e.into_response(super::style_for(req.uri().path())));
    }
    let result = Auth::load(env.vars).and_then(|auth| route(env, &auth, &req));
    result.unwrap_or_else(|e| e.into_response(super::style_for(req.uri().path())))
}

fn route(env: &Env, auth: &Auth, req: &Request) -> Result<Response> {
    let path = req.uri().path();
    // The passkey endpoints: JSON in and out, no page or CSRF cookie.
    if let Some(res) = super::passkey_login::route(env, auth, req) {
        return Ok(res);
    }
    let page = Page::new(auth, req)?;
    let post = match *req.method() {
        Method::GET | Method::HEAD => false,
        Method::POST => true,
        _ => return Err(Error::MethodNotAllowed("GET, POST")),
    };
    if post && matches!(path, "/signup" | "/login" | "/forgot" | "/reset") {
        sweep::maybe(env)?;
    }
    let res = match (path, post) {
        ("/", false) => home(env, auth, &page, req),
        ("/signup", false) => page.signup_with(
            auth,
            Terms::load(env.vars)?,
            None,
            "",
            &Params::default(),
            StatusCode::OK,
        ),
        ("/signup", true) => signup(env, auth, &page, req),
        ("/login", false) => {
            let query = Params::from_query(req)?;
            let hint = query.one("login_hint")?.unwrap_or("");
            let notice = match query.one("social")? {
                Some("cancelled") => Some(
                    "You cancelled the sign-in with the provider. Sign in another way, or try again.",
                ),
                _ => None,
            };
            // The email first when some organisation's domain signs in
            // with its own connection (unless the password form is asked
            // for by name).
            let step = if query.one("password")?.is_none() && org_sso::any(env.sql)? {
                Step::Identify
            } else {
                Step::Password
            };
            let target = return_to(&query)?;
            page.login_step(env, None, hint, target, notice, step, StatusCode::OK)
        }
        ("/login", true) => login(env, auth, &page, req),
        ("/login/identify", true) => identify(env, &page, req),
        ("/login/identify", false) => web::redirect("/login"),
        (super::login_mfa::PATH, _) => super::login_mfa::handle(env, auth, &page, req, post),
        ("/verify", false) => verify_form(env, &page, req),
        ("/verify", true) => verify(env, &page, req),
        ("/verify/resend", false) => page.email_form(EmailForm::Resend, None, "", StatusCode::OK),
        ("/verify/resend", true) => resend(env, auth, &page, req),
        ("/forgot", false) => page.email_form(EmailForm::Forgot, None, "", StatusCode::OK),
        ("/forgot", true) => forgot(env, auth, &page, req),
        ("/reset", false) => reset_form(env, &page, req),
        ("/reset", true) => reset(env, auth, &page, req),
        ("/dev/outbox", false) if auth.config.dev_mode()? => outbox(env, &page, req),
        ("/dev/outbox.json", false) if auth.config.dev_mode()? => outbox_json(env, req),
        _ if post && is_page(path) => Err(Error::MethodNotAllowed("GET")),
        _ => return Ok(not_found(req)),
    };
    res.map(|r| page.finish(r))
}

fn is_page(path: &str) -> bool {
    matches!(
        path,
        "/" | "/verify/resend" | "/dev/outbox" | "/dev/outbox.json"
    )
}

impl Page<'_> {
    fn login(
        &self,
        env: &Env,
        error: Option<String>,
        email: &str,
        return_to: Option<&str>,
        status: StatusCode,
    ) -> Result<Response> {
        self.login_with(env, error, email, return_to, None, status)
    }

    fn login_with(
        &self,
        env: &Env,
        error: Option<String>,
        email: &str,
        return_to: Option<&str>,
        notice: Option<&str>,
        status: StatusCode,
    ) -> Result<Response> {
        self.login_step(env, error, email, return_to, notice, Step::Password, status)
    }

    /// The login page at this step of home-realm discovery.
    #[allow(clippy::too_many_arguments)]
    fn login_step(
        &self,
        env: &Env,
        error: Option<String>,
        email: &str,
        return_to: Option<&str>,
        notice: Option<&str>,
        step: Step,
        status: StatusCode,
    ) -> Result<Response> {
        let back = return_to
            .map(|t| format!("return_to={}", web::pct(t)))
            .unwrap_or_default();
        let with_back = |path: &str| match (back.is_empty(), path.contains('?')) {
            (true, _) => path.to_owned(),
            (false, true) => format!("{path}&{back}"),
            (false, false) => format!("{path}?{back}"),
        };
        let (identify, sso) = match step {
            Step::Identify => (true, None),
            Step::Password => (false, None),
            Step::Sso(conn) => (
                false,
                Some((with_back(&format!("/social/{}/start", conn.id)), conn.name)),
            ),
        };
        let password_href = with_back(&format!("/login?password=1&login_hint={}", web::pct(email)));
        // Each enabled operator connection, carrying return_to along.
        let providers = social::connections::buttons(env)?
            .into_iter()
            .map(|(id, name)| {
                let mut href = format!("/social/{id}/start");
                if let Some(target) = return_to {
                    href.push_str(&format!("?return_to={}", web::pct(target)));
                }
                (href, name)
            })
            .collect();
        html::render(
            &LoginPage {
                product: self.product,
                csrf: &self.csrf,
                error,
                email,
                return_to,
                providers,
                notice,
                identify,
                sso,
                password_href,
            },
            status,
        )
    }

    fn email_form(
        &self,
        kind: EmailForm,
        error: Option<String>,
        email: &str,
        status: StatusCode,
    ) -> Result<Response> {
        let (heading, intro, action, button) = match kind {
            EmailForm::Forgot => (
                "Reset your password",
                "Enter the email address of your account and we will send you a link to choose a new password.",
                "/forgot",
                "Send the link",
            ),
            EmailForm::Resend => (
                "Verify your email",
                "Enter the email address you signed up with and we will send the verification link again.",
                "/verify/resend",
                "Send the link again",
            ),
        };
        html::render(
            &EmailFormPage {
                product: self.product,
                csrf: &self.csrf,
                error,
                email,
                heading,
                intro,
                action,
                button,
            },
            status,
        )
    }

    fn message(
        &self,
        heading: &str,
        text: &str,
        resend_for: Option<&str>,
        next: Option<(&str, &str)>,
    ) -> Result<Response> {
        html::render(
            &MessagePage {
                product: self.product,
                csrf: &self.csrf,
                heading,
                text,
                resend_for,
                next,
            },
            StatusCode::OK,
        )
    }
}

#[derive(Clone, Copy)]
enum EmailForm {
    Forgot,
    Resend,
}

/// Errors a person can fix are shown on the form itself, with the error's
/// status (and `Retry-After` when throttled); anything else is an error page.
fn on_form(
    err: Error,
    show: impl FnOnce(String, StatusCode) -> Result<Response>,
) -> Result<Response> {
    match err {
        Error::BadRequest(_)
        | Error::Unauthorized(_)
        | Error::TooManyRequests { .. }
        | Error::Unavailable(_) => {
            let mut res = show(err.detail(), err.status())?;
            errors::decorate(&mut res, &err);
            Ok(res)
        }
        other => Err(other),
    }
}

/// The client's address for the per-address limits (see [`client_addr`]).
fn client(env: &Env, req: &Request) -> Result<String> {
    client_addr::of(env.vars, req.headers())
}

/// A `return_to` that stays on this site: a path, not `//host` or `/\host`.
/// Only visible ASCII: browsers drop tabs and newlines from URLs, which would
/// turn `/\t/evil.example` into `//evil.example`.
/// Any other value is ignored, and a repeated one is an error.
fn return_to(params: &Params) -> Result<Option<&str>> {
    Ok(params.one("return_to")?.filter(|p| is_local_path(p)))
}

/// Whether `p` is a path on this site that `return_to` may name.
pub fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && p.len() <= 2048
        && p.bytes().all(|b| b.is_ascii_graphic())
}

fn home(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let Some((who, _)) = accounts::current(env, auth, req.headers())? else {
        let mut res = web::redirect("/login")?;
        // A dead session's cookie is cleared on the way out.
        if web::cookie(req.headers(), auth.policy()?.cookie_name()).is_some() {
            res.headers_mut()
                .append(header::SET_COOKIE, session::clear_cookie(auth.policy()?)?);
        }
        return Ok(res);
    };
    // Terms that changed since this person accepted them come first.
    if crate::privacy::consent::terms_needed(env, &who.id)?.is_some() {
        return web::redirect("/account/terms?return_to=/");
    }
    let attributes = auth
        .schema()?
        .0
        .iter()
        .filter_map(|a| {
            who.attributes
                .get(&a.name)
                .and_then(|v| v.as_str())
                .map(|v| (a.label.clone(), v.to_owned()))
        })
        .collect();
    let name = who
        .attributes
        .get("name")
        .or_else(|| who.attributes.get("given_name"))
        .and_then(|v| v.as_str());
    html::render(
        &HomePage {
            product: page.product,
            csrf: &page.csrf,
            name,
            email: &who.email,
            verified: who.email_verified,
            attributes,
            sub: &who.id,
        },
        StatusCode::OK,
    )
}

fn signup(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let form = page.form(req)?;
    let email = form.echo("email").to_owned();
    let done = SignUp::parse(auth, &form)
        .and_then(|s| accounts::sign_up(env, auth, &s, &client(env, req)?).map(|()| s.email));
    match done {
        Ok(email) => page.message(
            "Check your email",
            &format!("We sent a message to {email}. Open the link in it to finish setting up your account."),
            None,
            Some(("/login", "Go to sign in")),
        ),
        Err(e) => on_form(e, |msg, status| {
            page.signup_with(auth, Terms::load(env.vars)?, Some(msg), &email, &form, status)
        }),
    }
}

impl Page<'_> {
    fn signup_with(
        &self,
        auth: &Auth,
        terms: Option<Terms>,
        error: Option<String>,
        email: &str,
        form: &Params,
        status: StatusCode,
    ) -> Result<Response> {
        let fields = auth
            .schema()?
            .0
            .iter()
            .map(|a| Field::of(a, form.echo(&a.name).to_owned()))
            .collect();
        html::render(
            &SignUpPage {
                product: self.product,
                csrf: &self.csrf,
                error,
                email,
                fields,
                terms,
                accept_terms: form.one("accept_terms")?.is_some(),
                marketing: form.one("marketing")?.is_some(),
            },
            status,
        )
    }
}

/// A step of the login page.
enum Step {
    /// The email first (home-realm discovery): `/login/identify`.
    Identify,
    /// The password form.
    Password,
    /// The email's domain signs in with this organisation connection:
    /// offered above the password form.
    Sso(Box<Connection>),
}

/// `POST /login/identify`: the email-first step. The answer depends on the
/// email's domain alone (an organisation's proven domain with a
/// connection: "Continue with SSO"; anything else: the password form with
/// the email filled in), never on whether an account exists.
fn identify(env: &Env, page: &Page, req: &Request) -> Result<Response> {
    let form = page.form(req)?;
    let email = form.one("email")?.unwrap_or_default().trim().to_owned();
    let target = return_to(&form)?;
    if email.is_empty() {
        return page.login_step(
            env,
            Some("Enter your email.".into()),
            "",
            target,
            None,
            Step::Identify,
            StatusCode::BAD_REQUEST,
        );
    }
    let step = match org_sso::discover(env.sql, &email)? {
        Realm::Sso(conn) => Step::Sso(conn),
        Realm::Password => Step::Password,
    };
    page.login_step(env, None, &email, target, None, step, StatusCode::OK)
}

/// The login form, parsed at the edge: a repeated field is an error.
struct LoginForm {
    email: String,
    password: String,
    return_to: Option<String>,
}

impl LoginForm {
    fn parse(form: &Params) -> Result<Self> {
        Ok(Self {
            email: form.one("email")?.unwrap_or_default().to_owned(),
            password: form.one("password")?.unwrap_or_default().to_owned(),
            return_to: return_to(form)?.map(str::to_owned),
        })
    }
}

/// The one field of the resend and forgot forms.
fn email_field(form: &Params) -> Result<String> {
    Ok(form.one("email")?.unwrap_or_default().to_owned())
}

fn login(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let LoginForm {
        email,
        password,
        return_to: target,
    } = LoginForm::parse(&page.form(req)?)?;
    if email.is_empty() || password.is_empty() {
        return page.login(
            env,
            Some("Enter your email and password.".into()),
            &email,
            target.as_deref(),
            StatusCode::BAD_REQUEST,
        );
    }
    let device = Device::of(env.vars, req.headers())?;
    match accounts::log_in_to(env, auth, &email, &password, &device, target.as_deref()) {
        Ok(LoggedIn::SecondFactor(cookie)) => {
            let mut to = super::login_mfa::PATH.to_owned();
            if let Some(t) = &target {
                to.push_str(&format!("?return_to={}", web::pct(t)));
            }
            let mut res = web::redirect(&to)?;
            res.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(res)
        }
        Ok(LoggedIn::Session(cookie)) => {
            // A new session id at every login; the old one (if any) is gone.
            session::end(env, auth.policy()?, req.headers())?;
            let mut res = web::redirect(target.as_deref().unwrap_or("/"))?;
            res.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(res)
        }
        Ok(LoggedIn::Unverified(email)) => page.message(
            "Verify your email first",
            &format!("Your password is right, but {email} is not verified yet. Open the link we sent you, or get a new one."),
            Some(&email),
            None,
        ),
        Err(e) => on_form(e, |msg, status| page.login(env, Some(msg), &email, target.as_deref(), status)),
    }
}

fn token_of(params: &Params) -> Result<&str> {
    params.required("token").map_err(|_| {
        Error::bad_request("This link is incomplete. Check that you copied all of it.")
    })
}

fn verify_form(env: &Env, page: &Page, req: &Request) -> Result<Response> {
    let query = Params::from_query(req)?;
    let token = token_of(&query)?;
    accounts::check_link(env, Purpose::VerifyEmail, token)?;
    html::render(
        &html::ConfirmEmailPage {
            product: page.product,
            csrf: &page.csrf,
            token,
        },
        StatusCode::OK,
    )
}

fn verify(env: &Env, page: &Page, req: &Request) -> Result<Response> {
    let form = page.form(req)?;
    accounts::verify_email(env, token_of(&form)?)?;
    page.message(
        "Email verified",
        "Thank you: your email address is confirmed. You can sign in now.",
        None,
        Some(("/login", "Sign in")),
    )
}

fn resend(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let email = email_field(&page.form(req)?)?;
    match accounts::resend_verification(env, auth, &email, &client(env, req)?) {
        Ok(()) => page.message(
            "Check your email",
            "If an account with this address is waiting for verification, a new link is on its way.",
            None,
            Some(("/login", "Go to sign in")),
        ),
        Err(e) => on_form(e, |msg, status| page.email_form(EmailForm::Resend, Some(msg), &email, status)),
    }
}

fn forgot(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let email = email_field(&page.form(req)?)?;
    match accounts::forgot_password(env, auth, &email, &client(env, req)?) {
        Ok(()) => page.message(
            "Check your email",
            &format!("We sent a message to {}. If there is an account with this address, it has a link to choose a new password; the link works once, for an hour.", email.trim()),
            None,
            Some(("/login", "Back to sign in")),
        ),
        Err(e) => on_form(e, |msg, status| page.email_form(EmailForm::Forgot, Some(msg), &email, status)),
    }
}

fn reset_form(env: &Env, page: &Page, req: &Request) -> Result<Response> {
    let query = Params::from_query(req)?;
    let token = token_of(&query)?;
    accounts::check_link(env, Purpose::ResetPassword, token)?;
    html::render(
        &ResetPage {
            product: page.product,
            csrf: &page.csrf,
            error: None,
            token,
        },
        StatusCode::OK,
    )
}

fn reset(env: &Env, auth: &Auth, page: &Page, req: &Request) -> Result<Response> {
    let form = page.form(req)?;
    let token = token_of(&form)?.to_owned();
    let password = form.one("password")?.unwrap_or_default();
    match accounts::reset_password(env, auth, &token, password) {
        Ok(()) => {
            let mut res = page.message(
                "Password changed",
                "Your new password is saved, and every other session of your account has ended.",
                None,
                Some(("/login", "Sign in")),
            )?;
            // This browser's own session (if any) ended too.
            session::end(env, auth.policy()?, req.headers())?;
            res.headers_mut()
                .append(header::SET_COOKIE, session::clear_cookie(auth.policy()?)?);
            Ok(res)
        }
        // A dead link cannot be fixed on this form: show the error page.
        Err(e @ Error::DeadLink(_)) => Err(e),
        Err(e) => on_form(e, |msg, status| {
            html::render(
                &ResetPage {
                    product: page.product,
                    csrf: &page.csrf,
                    error: Some(msg),
                    token: &token,
                },
                status,
            )
        }),
    }
}

fn outbox(env: &Env, page: &Page, req: &Request) -> Result<Response> {
    let to = Params::from_query(req)?.one("to")?.map(str::to_owned);
    let mails = dev_outbox::newest(env.sql, to.as_deref())?;
    html::render(
        &html::OutboxPage {
            product: page.product,
            mails,
        },
        StatusCode::OK,
    )
}

fn outbox_json(env: &Env, req: &Request) -> Result<Response> {
    let to = Params::from_query(req)?.one("to")?.map(str::to_owned);
    let mut res = web::json(StatusCode::OK, &dev_outbox::newest(env.sql, to.as_deref())?);
    web::no_store(&mut res);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::is_local_path;
    use crate::social::org_sso::{self, Spec};
    use crate::store::domain_claims::{self, Claim};
    use crate::testkit::{self, World, get, post};
    use crate::{csrf, orgs};

    const NOW: i64 = 1_700_000_000;
    const CSRF: &str = "c3JmLXRlc3QtdG9rZW4tb2YtZW5vdWdoLWxlbmd0aC1";

    fn send(w: &World, req: http::Request<Vec<u8>>) -> (http::StatusCode, String) {
        let res = super::handle(&w.env(NOW), req);
        (
            res.status(),
            String::from_utf8_lossy(res.body()).into_owned(),
        )
    }

    fn page(w: &World, path: &str) -> (http::StatusCode, String) {
        send(w, get(path).build())
    }

    fn identify(w: &World, email: &str) -> (http::StatusCode, String) {
        let cookie = format!("{}={CSRF}", csrf::COOKIE);
        let form = [("csrf", CSRF), ("email", email), ("return_to", "/orgs")];
        send(
            w,
            post("/login/identify")
                .header("cookie", &cookie)
                .form(&form)
                .build(),
        )
    }

    /// Acme with an enabled connection, and its claim on acme.test
    /// (verified or not).
    fn acme(w: &mut World, verified: bool) -> String {
        let ada = testkit::person(&w.sql, "ada@acme.test", NOW);
        crate::identity::mark_verified(&w.sql, &ada.id, NOW).unwrap();
        let ada = crate::identity::by_id(&w.sql, &ada.id).unwrap().unwrap();
        let policy = orgs::Policy { self_service: true };
        orgs::create_own(&w.sql, policy, &ada, "Acme", "acme", NOW).unwrap();
        let access = orgs::open(&w.sql, "acme", &ada).unwrap();
        w.set(
            org_sso::GRANTS_VARIABLE,
            Some(&format!("{}=acme_sso", access.org.id)),
        );
        let spec = Spec {
            id: Some("org-acme-okta".into()),
            name: Some("Acme Okta".into()),
            issuer: "https://acme.okta.test".into(),
            client_id: "lanyard".into(),
            secret_variable: Some("acme_sso".into()),
            ..Spec::default()
        };
        let conn = org_sso::create(&w.env(NOW), &access, &spec).unwrap();
        let claim = Claim {
            domain: "acme.test".into(),
            org_id: access.org.id.clone(),
            connection_id: None,
            token: "t".into(),
            verified_at: None,
            created_at: NOW,
        };
        domain_claims::insert(&w.sql, &claim).unwrap();
        if verified {
            domain_claims::verify(&w.sql, "acme.test", &access.org.id, NOW).unwrap();
        }
        conn.id
    }

    #[test]
    fn the_login_page_asks_for_the_email_first_only_when_a_domain_has_sso() {
        let mut w = World::new();
        let (status, body) = page(&w, "/login");
        assert_eq!(status, http::StatusCode::OK);
        assert!(body.contains("action=\"/login\"") && body.contains("id=\"password\""));
        assert!(!body.contains("/login/identify"));

        // An unverified claim changes nothing.
        acme(&mut w, false);
        assert!(!page(&w, "/login").1.contains("/login/identify"));
        let (status, body) = identify(&w, "joe@acme.test");
        assert_eq!(status, http::StatusCode::OK);
        assert!(!body.contains("Continue with SSO") && body.contains("id=\"password\""));
    }

    #[test]
    fn a_proven_domain_is_offered_its_connection_whether_or_not_an_account_exists() {
        let mut w = World::new();
        let conn = acme(&mut w, true);
        let (_, body) = page(&w, "/login?return_to=%2Forgs");
        assert!(body.contains("action=\"/login/identify\""), "{body}");
        assert!(!body.contains("id=\"password\""), "{body}");
        assert!(
            body.contains("id=\"use-password\"") && body.contains("password=1"),
            "{body}"
        );
        let (_, body) = page(&w, "/login?password=1");
        assert!(body.contains("id=\"password\"") && !body.contains("/login/identify"));

        // Ada has an account, nobody@ has none: the same page but for the
        // address typed.
        let (status, ada) = identify(&w, "ada@acme.test");
        assert_eq!(status, http::StatusCode::OK);
        let start = format!("/social/{conn}/start?return_to=%2Forgs");
        assert!(
            ada.contains(&start) && ada.contains("Continue with SSO"),
            "{ada}"
        );
        assert!(
            ada.contains("Acme Okta") && ada.contains("id=\"password\""),
            "{ada}"
        );
        let (status, nobody) = identify(&w, "nobody@acme.test");
        assert_eq!(status, http::StatusCode::OK);
        assert_eq!(
            ada.replace("ada@acme.test", "X")
                .replace("ada%40acme.test", "X"),
            nobody
                .replace("nobody@acme.test", "X")
                .replace("nobody%40acme.test", "X")
        );

        // Another domain: the password form with the email filled in.
        let (status, other) = identify(&w, "joe@other.test");
        assert_eq!(status, http::StatusCode::OK);
        assert!(!other.contains("Continue with SSO") && other.contains("value=\"joe@other.test\""));

        // No email: asked again; no CSRF token: refused.
        assert_eq!(identify(&w, " ").0, http::StatusCode::BAD_REQUEST);
        let no_csrf = post("/login/identify")
            .form(&[("email", "ada@acme.test")])
            .build();
        assert_eq!(send(&w, no_csrf).0, http::StatusCode::FORBIDDEN);
    }

    #[test]
    fn return_to_stays_on_this_site() {
        for ok in [
            "/",
            "/authorize?client_id=a&scope=openid%20email",
            "/profile",
        ] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil",
            "https://evil.example",
            "evil",
            "/ /x",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
