//! One error type for the whole domain, and the one place where it becomes an
//! HTTP response.
//!
//! The same error is shown three ways, chosen by the endpoint ([`Style`]):
//! OAuth error JSON (RFC 6749 §5.2) at OAuth endpoints, `application/problem+json`
//! (RFC 9457) on JSON APIs, and a friendly HTML page for browsers.

use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::web::{self, Response};

/// Seconds a client is asked to wait after a store or upstream fault.
pub const RETRY_UNAVAILABLE: u64 = 5;

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How an endpoint shows its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `{"error": "...", "error_description": "..."}`, RFC 6749 §5.2.
    OAuth,
    /// `application/problem+json`, RFC 9457.
    Api,
    /// An HTML page for people.
    Page,
}

/// The OAuth 2.0 / OpenID Connect error codes Lanyard returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    /// RFC 6749 `invalid_request`.
    InvalidRequest,
    /// RFC 6749 `invalid_client`.
    InvalidClient,
    /// RFC 6749 `invalid_grant`.
    InvalidGrant,
    /// RFC 6749 `unauthorized_client`.
    UnauthorizedClient,
    /// RFC 6749 `unsupported_grant_type`.
    UnsupportedGrantType,
    /// RFC 6749 `invalid_scope`.
    InvalidScope,
    /// RFC 6749 `access_denied`.
    AccessDenied,
    /// RFC 6749 `unsupported_response_type`.
    UnsupportedResponseType,
    /// RFC 6750 `invalid_token`.
    InvalidToken,
    /// OIDC `login_required`.
    LoginRequired,
    /// OIDC `consent_required`.
    ConsentRequired,
}

impl OAuthCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidToken => "invalid_token",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
        }
    }
}

/// Everything that can go wrong while handling a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The input is malformed or fails validation. The message is shown to the caller.
    BadRequest(String),
    /// An OAuth protocol error with its RFC 6749 code.
    OAuth {
        /// The error code.
        code: OAuthCode,
        /// A human-readable description for the developer.
        description: String,
    },
    /// The caller must authenticate first.
    Unauthorized(String),
    /// The caller may not do this (including a missing or wrong CSRF token).
    Forbidden(String),
    /// Nothing lives at this path, or the thing asked for does not exist.
    NotFound,
    /// The path exists but not for this method; the allowed methods are listed.
    MethodNotAllowed(&'static str),
    /// The request body is larger than `max_body_bytes`.
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A form or API call that conflicts with existing state.
    Conflict(String),
    /// Too many attempts; try again after this many seconds.
    TooManyRequests {
        /// Seconds until the next attempt may succeed.
        retry_after: u64,
    },
    /// A Spin variable is missing or invalid. Names the variable.
    Config {
        /// The variable's name, as in `spin.toml`.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A service we depend on (the mail API) failed; the message is shown.
    Unavailable(String),
    /// The key-value store or the database failed. Answered `503` with
    /// `Retry-After`: a store fault is usually brief (a lock, a full disk, a
    /// restart), and every change is one statement, so a retry is safe.
    Storage(String),
    /// A bug or an unexpected failure; details go to the log, not the caller.
    Internal(String),
}

impl Error {
    /// A `BadRequest` with this message.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// An OAuth error with this code and description.
    pub fn oauth(code: OAuthCode, description: impl Into<String>) -> Self {
        Self::OAuth {
            code,
            description: description.into(),
        }
    }

    /// A configuration error naming the variable.
    pub fn config(name: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::OAuth { code, .. } => match code {
                OAuthCode::InvalidClient | OAuthCode::InvalidToken => StatusCode::UNAUTHORIZED,
                OAuthCode::AccessDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            },
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) | Self::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Config { .. } | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short title for the error, the same for every instance of a kind.
    pub fn title(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "Invalid request",
            Self::OAuth { .. } => "OAuth error",
            Self::Unauthorized(_) => "Authentication required",
            Self::Forbidden(_) => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed(_) => "Method not allowed",
            Self::PayloadTooLarge { .. } => "Request too large",
            Self::Conflict(_) => "Conflict",
            Self::Unavailable(_) | Self::Storage(_) => "Temporarily unavailable",
            Self::TooManyRequests { .. } => "Too many attempts",
            Self::Config { .. } => "Server misconfigured",
            Self::Internal(_) => "Internal error",
        }
    }

    /// What the caller is told. Storage and internal details stay in the log;
    /// a configuration error names the variable so that the operator can fix it.
    pub fn detail(&self) -> String {
        match self {
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::Conflict(m)
            | Self::Unavailable(m) => m.clone(),
            Self::OAuth { description, .. } => description.clone(),
            Self::NotFound => "There is nothing at this address.".into(),
            Self::MethodNotAllowed(allow) => format!("This address accepts {allow} only."),
            Self::PayloadTooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes.")
            }
            Self::TooManyRequests { retry_after } => {
                format!("Too many attempts. Try again in {retry_after} seconds.")
            }
            Self::Config { name, reason } => {
                format!("The Spin variable `{name}` is not set correctly: {reason}")
            }
            Self::Storage(_) => {
                "We cannot reach our data store right now. Nothing was changed; please try again in a moment.".into()
            }
            Self::Internal(_) => "Something went wrong on our side. Please try again.".into(),
        }
    }

    /// The OAuth code used when this error is shown at an OAuth endpoint.
    fn oauth_code(&self) -> &'static str {
        match self {
            Self::OAuth { code, .. } => code.as_str(),
            Self::Unauthorized(_) => "invalid_client",
            Self::TooManyRequests { .. } => "slow_down",
            Self::Unavailable(_) | Self::Storage(_) => "temporarily_unavailable",
            Self::Config { .. } | Self::Internal(_) => "server_error",
            _ => "invalid_request",
        }
    }

    /// Turns the error into a response in the endpoint's style. This is the
    /// only place where domain errors meet HTTP.
    pub fn into_response(self, style: Style) -> Response {
        if matches!(
            self,
            Self::Config { .. } | Self::Storage(_) | Self::Internal(_)
        ) {
            // Operators read this in the Spin log; callers see `detail()`.
            eprintln!("lanyard: {self:?}");
        }
        let status = self.status();
        let mut res = match style {
            Style::OAuth => {
                #[derive(Serialize)]
                struct Body<'a> {
                    error: &'a str,
                    error_description: String,
                }
                let body = Body {
                    error: self.oauth_code(),
                    error_description: self.detail(),
                };
                let mut res = web::json(status, &body);
                web::no_store(&mut res);
                if status == StatusCode::UNAUTHORIZED {
                    res.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"lanyard\""),
                    );
                }
                res
            }
            Style::Api => {
                #[derive(Serialize)]
                struct Problem<'a> {
                    #[serde(rename = "type")]
                    kind: &'a str,
                    title: &'a str,
                    status: u16,
                    detail: String,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    variable: Option<&'a str>,
                }
                let variable = match &self {
                    Self::Config { name, .. } => Some(name.as_str()),
                    _ => None,
                };
                let body = Problem {
                    kind: "about:blank",
                    title: self.title(),
                    status: status.as_u16(),
                    detail: self.detail(),
                    variable,
                };
                let mut res = web::json(status, &body);
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/problem+json"),
                );
                res
            }
            Style::Page => crate::html::error_page(status, self.title(), &self.detail()),
        };
        match self {
            Self::TooManyRequests { retry_after } => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Self::Storage(_) | Self::Unavailable(_) => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_UNAVAILABLE));
            }
            _ => {}
        }
        if let Self::MethodNotAllowed(allow) = self {
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title(), self.detail())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(res: &Response) -> serde_json::Value {
        serde_json::from_slice(res.body()).unwrap()
    }

    #[test]
    fn oauth_style_follows_rfc6749() {
        let res = Error::oauth(OAuthCode::InvalidGrant, "code expired").into_response(Style::OAuth);
        assert_eq!(res.status(), 400);
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(res.headers()["content-type"], "application/json");
        let b = body(&res);
        assert_eq!(b["error"], "invalid_grant");
        assert_eq!(b["error_description"], "code expired");
    }

    #[test]
    fn invalid_client_is_401_with_challenge() {
        let res = Error::oauth(OAuthCode::InvalidClient, "bad secret").into_response(Style::OAuth);
        assert_eq!(res.status(), 401);
        assert!(res.headers().contains_key("www-authenticate"));
    }

    #[test]
    fn api_style_is_problem_json_and_names_the_variable() {
        let res = Error::config("signing_key", "missing").into_response(Style::Api);
        assert_eq!(res.status(), 500);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let b = body(&res);
        assert_eq!(b["status"], 500);
        assert_eq!(b["variable"], "signing_key");
        assert!(b["detail"].as_str().unwrap().contains("signing_key"));
    }

    #[test]
    fn internal_details_are_not_shown() {
        let res = Error::Storage("disk I/O error at /var/x".into()).into_response(Style::Api);
        assert!(!String::from_utf8_lossy(res.body()).contains("/var/x"));
    }

    #[test]
    fn a_store_fault_is_503_with_retry_after_in_every_style() {
        for style in [Style::OAuth, Style::Api, Style::Page] {
            let res =
                Error::Storage("attempt to write a readonly database".into()).into_response(style);
            assert_eq!(res.status(), 503, "{style:?}");
            assert_eq!(res.headers()["retry-after"], "5", "{style:?}");
            if style == Style::OAuth {
                assert_eq!(body(&res)["error"], "temporarily_unavailable");
            }
        }
    }

    #[test]
    fn page_style_is_escaped_html() {
        let res = Error::bad_request("<script>alert(1)</script>").into_response(Style::Page);
        assert_eq!(res.status(), 400);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let text = String::from_utf8(res.body().clone()).unwrap();
        assert!(!text.contains("<script>alert"));
        assert!(text.contains("&#60;script&#62;") || text.contains("&lt;script&gt;"));
    }

    #[test]
    fn rate_limit_carries_retry_after() {
        let res = Error::TooManyRequests { retry_after: 30 }.into_response(Style::Page);
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()["retry-after"], "30");
    }
}
