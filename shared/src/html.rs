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

/// One profile field of a form (sign-up, the account centre's profile).
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
    /// The value shown: the saved one, or what was typed before an error.
    pub value: String,
}

impl Field {
    /// The field of a profile attribute, showing `value`.
    pub fn of(a: &crate::identity::Attribute, value: String) -> Self {
        Self {
            name: a.name.clone(),
            label: a.label.clone(),
            required: a.required,
            max_length: a.max_length,
            autocomplete: a.autocomplete,
            value,
        }
    }
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
    /// The terms to accept, when the operator sets `terms_version`.
    pub terms: Option<crate::privacy::consent::Terms>,
    /// The terms box was ticked (shown again after an error).
    pub accept_terms: bool,
    /// The marketing box was ticked.
    pub marketing: bool,
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
    /// "Continue with …" buttons: (start URL, connection name).
    pub providers: Vec<(String, String)>,
    /// A note above the form (the sign-in at a provider was cancelled).
    pub notice: Option<&'a str>,
    /// The email-first step (home-realm discovery): only the email,
    /// posted to `/login/identify`.
    pub identify: bool,
    /// The email's organisation signs in with its own connection: (start
    /// URL, connection name), offered above the password form.
    pub sso: Option<(String, String)>,
    /// The password form itself, skipping the email-first step.
    pub password_href: String,
}

/// The password proof before an upstream account is linked to an
/// existing one with the same email.
#[derive(Template)]
#[template(path = "social_link.html")]
pub struct SocialLinkPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The form-level error, if any.
    pub error: Option<String>,
    /// The pending link's token.
    pub token: &'a str,
    /// The existing account's email.
    pub email: &'a str,
    /// The connection's name.
    pub provider: &'a str,
}

/// One upstream account linked to the signed-in person.
pub struct LinkedAccount {
    /// The connection's name (or its id, if it is gone).
    pub name: String,
    /// The upstream email, if known.
    pub email: Option<String>,
    /// The upstream issuer.
    pub issuer: String,
    /// The upstream subject.
    pub subject: String,
}

/// The signed-in person's linked providers: unlink one, link another.
#[derive(Template)]
#[template(path = "social_accounts.html")]
pub struct SocialAccountsPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The form-level error, if any.
    pub error: Option<String>,
    /// What just happened, if anything.
    pub notice: Option<String>,
    /// The linked accounts.
    pub links: Vec<LinkedAccount>,
    /// The connections to link: (id, name).
    pub available: Vec<(String, String)>,
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
    /// The application's request, carried through the confirmation.
    pub carried: Vec<(String, String)>,
    /// Front-channel logout URIs, loaded in hidden iframes.
    pub frames: Vec<String>,
    /// Where to go once the iframes loaded (empty: stay).
    pub next: &'a str,
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_time(ts: i64) -> String {
    let secs = ts.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02} UTC",
        utc_day(ts),
        secs / 3600,
        secs % 3600 / 60
    )
}

/// A Unix time as its UTC day, `YYYY-MM-DD`.
pub fn utc_day(ts: i64) -> String {
    let (year, month, day) = civil(ts.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// 00:00 UTC of a `YYYY-MM-DD` day (an `<input type=date>`), if it is one.
pub fn parse_utc_day(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let mut next = |len: usize| {
        parts
            .next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<i64>().ok())
    };
    let (y, m, d) = (next(4)?, next(2)?, next(2)?);
    if !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // A day past the month's end (2023-02-30) comes back as another date.
    (civil(days) == (y, m, d)).then_some(days * 86_400)
}

/// Days since 1970-01-01 as (year, month, day).
fn civil(days: i64) -> (i64, i64, i64) {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_time(NOW), "2023-11-14 22:13 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn days_are_utc_and_parsed_strictly() {
        assert_eq!(utc_day(NOW), "2023-11-14");
        assert_eq!(parse_utc_day("2023-11-14"), Some(NOW - NOW % 86_400));
        assert_eq!(parse_utc_day("2000-02-29"), Some(951_782_400));
        assert_eq!(parse_utc_day("1970-01-01"), Some(0));
        for bad in [
            "",
            "2023-02-30",
            "2023-13-01",
            "2023-1-01",
            "23-01-01",
            "2023-01-01x",
            "2023-00-10",
            "+023-01-01",
        ] {
            assert_eq!(parse_utc_day(bad), None, "{bad}");
        }
    }
}
