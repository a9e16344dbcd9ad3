//! Server-rendered pages. Templates live in `static/templates/`, are compiled
//! into the component by askama, and escape every value they print.

use askama::Template;
use http::StatusCode;

use crate::error::{Error, Result};
use crate::web::{self, Response};

/// Renders a page with the page security headers.
pub fn render(page: &impl Template, status: StatusCode) -> Result<Response> {
    let body = page
        .render()
        .map_err(|e| Error::Internal(format!("template: {e}")))?;
    Ok(web::html(status, body))
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    product: &'a str,
    title: &'a str,
    detail: &'a str,
    status: u16,
}

/// The page shown to a person when something went wrong.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let page = ErrorPage {
        product: "",
        title,
        detail,
        status: status.as_u16(),
    };
    render(&page, status).unwrap_or_else(|_| {
        web::response(
            status,
            "text/plain; charset=utf-8",
            detail.as_bytes().to_vec(),
        )
    })
}

/// One profile field on the sign-up form.
pub struct Field {
    /// Form and claim name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Whether it must be filled in.
    pub required: bool,
    /// Longest value.
    pub max_length: usize,
    /// `autocomplete` token.
    pub autocomplete: &'static str,
    /// The value to show again after an error.
    pub value: String,
}

/// The sign-up form.
#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignUpPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The form-level error, if any.
    pub error: Option<String>,
    /// The email typed so far.
    pub email: &'a str,
    /// The operator's profile fields.
    pub fields: Vec<Field>,
}

/// The login form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The form-level error, if any.
    pub error: Option<String>,
    /// The email typed so far.
    pub email: &'a str,
    /// Where to go after signing in (a local path).
    pub return_to: Option<&'a str>,
}

/// A form that asks only for an email (forgot password, resend verification).
#[derive(Template)]
#[template(path = "email_form.html")]
pub struct EmailFormPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The form-level error, if any.
    pub error: Option<String>,
    /// The email typed so far.
    pub email: &'a str,
    /// Heading.
    pub heading: &'a str,
    /// What the form does.
    pub intro: &'a str,
    /// Where it posts.
    pub action: &'a str,
    /// The button label.
    pub button: &'a str,
}

/// A page that tells the person what happened and what to do next.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token (for the resend form).
    pub csrf: &'a str,
    /// Heading.
    pub heading: &'a str,
    /// The message.
    pub text: &'a str,
    /// Offer to resend the verification mail to this address.
    pub resend_for: Option<&'a str>,
    /// A link onwards: (href, label).
    pub next: Option<(&'a str, &'a str)>,
}

/// "Confirm your email", which POSTs the token (mail scanners only GET).
#[derive(Template)]
#[template(path = "confirm_email.html")]
pub struct ConfirmEmailPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The link's token.
    pub token: &'a str,
}

/// The new-password form of a reset link.
#[derive(Template)]
#[template(path = "reset.html")]
pub struct ResetPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The form-level error, if any.
    pub error: Option<String>,
    /// The link's token.
    pub token: &'a str,
}

/// The signed-in landing page.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token (for sign-out).
    pub csrf: &'a str,
    /// Display name, if known.
    pub name: Option<&'a str>,
    /// Email.
    pub email: &'a str,
    /// Whether the email is verified.
    pub verified: bool,
    /// Profile attributes as (label, value).
    pub attributes: Vec<(String, String)>,
    /// Subject id.
    pub sub: &'a str,
}

/// The dev outbox.
#[derive(Template)]
#[template(path = "outbox.html")]
pub struct OutboxPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// Messages, newest first.
    pub mails: Vec<crate::store::dev_outbox::OutboxMail>,
}

/// The consent page of the authorization endpoint.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The application's name.
    pub client: &'a str,
    /// Who is signed in.
    pub email: &'a str,
    /// What the application asks for, in words.
    pub scopes: Vec<String>,
    /// The authorization request, carried to the POST.
    pub params: Vec<(String, String)>,
}

/// One choice on the organisation picker: a membership, a mandate, or "just
/// me".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgOption {
    /// What is sent back as `org`: `org:<id>`, `mandate:<id>` or
    /// `personal`.
    pub value: String,
    /// The button: the organisation's name, "B on behalf of A", or "Just
    /// me".
    pub label: String,
    /// Beside it: the slug, or what a mandate is.
    pub detail: String,
}

/// The organisation picker of the authorization endpoint, for a b2b client.
#[derive(Template)]
#[template(path = "org_picker.html")]
pub struct OrgPickerPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The application's name.
    pub client: &'a str,
    /// Who is signed in.
    pub email: &'a str,
    /// What to choose from: memberships, mandates, "just me".
    pub orgs: Vec<OrgOption>,
    /// The authorization request, carried to the POST.
    pub params: Vec<(String, String)>,
}

/// The end-session page: a confirmation, or the result.
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// Heading.
    pub heading: &'a str,
    /// Message.
    pub text: &'a str,
    /// Ask before signing out (no valid `id_token_hint`).
    pub confirm: bool,
}
