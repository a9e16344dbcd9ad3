//! The account centre's pages (askama templates `static/templates/account*.html`).

use askama::Template;

/// A notice after a change (post/redirect/get), from the `done` query
/// parameter: a fixed text per key, never text from the request.
pub fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "profile" => "Your profile is saved.",
        "email" => {
            "We sent a link to the new address. Your email changes when you open it; until then, the old address stays."
        }
        "password" => "Your password is changed.",
        "password_set" => "Your password is set. You can sign in with it now.",
        "session" => "The session has ended.",
        "sessions" => "Every other session has ended.",
        "app" => "The app's access is revoked. It must ask you again to sign you in.",
        _ => return None,
    })
}

/// `/account`: the email address and the profile.
#[derive(Template)]
#[template(path = "account.html")]
pub struct ProfilePage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// A notice after a change.
    pub notice: Option<&'static str>,
    /// The profile form's error.
    pub error: Option<String>,
    /// The email form's error.
    pub email_error: Option<String>,
    /// The current address.
    pub email: &'a str,
    /// Whether it is verified.
    pub verified: bool,
    /// The new address typed so far.
    pub new_email: &'a str,
    /// The operator's profile fields.
    pub fields: Vec<crate::html::Field>,
}

/// `/account/password`: change, or set a first password.
#[derive(Template)]
#[template(path = "account_password.html")]
pub struct PasswordPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// A notice after a change.
    pub notice: Option<&'static str>,
    /// The form's error.
    pub error: Option<String>,
    /// Whether the account has a password (else: set one).
    pub has_password: bool,
    /// Whether "sign out my other sessions" is ticked.
    pub sign_out_others: bool,
}

/// One session row.
pub struct SessionRow {
    /// Public id.
    pub sid: String,
    /// Browser and system in words.
    pub device: String,
    /// Address at sign-in.
    pub addr: String,
    /// Sign-in time.
    pub started: String,
    /// Last use.
    pub last_used: String,
    /// This request's session.
    pub current: bool,
}

/// `/account/sessions`.
#[derive(Template)]
#[template(path = "account_sessions.html")]
pub struct SessionsPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// A notice after a change.
    pub notice: Option<&'static str>,
    /// An error.
    pub error: Option<String>,
    /// The live sessions.
    pub sessions: Vec<SessionRow>,
}

/// One connected app.
pub struct AppRow {
    /// `client_id`.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// Scopes, space-separated.
    pub scopes: String,
    /// When granted.
    pub granted: String,
}

/// `/account/apps`.
#[derive(Template)]
#[template(path = "account_apps.html")]
pub struct AppsPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// A notice after a change.
    pub notice: Option<&'static str>,
    /// An error.
    pub error: Option<String>,
    /// The apps.
    pub apps: Vec<AppRow>,
}

/// One linked upstream account.
pub struct LinkedRow {
    /// Provider name.
    pub provider: String,
    /// Upstream email, if known.
    pub email: Option<String>,
    /// When linked.
    pub linked: String,
}

/// `/account/methods`.
#[derive(Template)]
#[template(path = "account_methods.html")]
pub struct MethodsPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// Whether the account has a password.
    pub password: bool,
    /// Linked upstream accounts.
    pub linked: Vec<LinkedRow>,
    /// Number of passkeys.
    pub passkeys: i64,
    /// Whether an authenticator app is set up (`None`: not known here).
    pub totp: Option<bool>,
}

/// One event row.
pub struct EventRow {
    /// What happened.
    pub text: String,
    /// Address.
    pub addr: String,
    /// Device in words.
    pub device: String,
    /// When.
    pub at: String,
}

/// `/account/events`.
#[derive(Template)]
#[template(path = "account_events.html")]
pub struct EventsPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// The events, newest first.
    pub events: Vec<EventRow>,
    /// The link to older events.
    pub older: Option<String>,
}

/// `/account/email/confirm`: confirms a new address with a POST (mail
/// scanners only GET).
#[derive(Template)]
#[template(path = "account_email_confirm.html")]
pub struct EmailConfirmPage<'a> {
    /// Product name.
    pub product: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// The link's token.
    pub token: &'a str,
    /// The new address.
    pub new_email: &'a str,
}
