//! The one place where a domain [`Error`] becomes an HTTP response.
//!
//! The same error is shown in the style of the endpoint ([`Style`]): OAuth
//! error JSON (RFC 6749 §5.2) at OAuth endpoints, the same with a Bearer
//! challenge (RFC 6750 §3) at protected resources, `application/problem+json`
//! (RFC 9457) on JSON APIs, and a friendly HTML page for browsers. Status
//! codes and the headers that go with them (`Retry-After`, `Allow`,
//! `WWW-Authenticate`) are chosen here and nowhere else.

use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::error::{Error, OAuthCode};
use crate::web::{self, Response};

/// The problem type of [`Error::RecentSignInRequired`], so that an app can
/// tell it from other refusals and ask for the password again
/// (`POST /api/account/reauth`).
pub const RECENT_SIGN_IN_TYPE: &str = "urn:lanyard:problem:recent-sign-in-required";

/// Seconds a client is asked to wait after a store or upstream fault.
pub const RETRY_UNAVAILABLE: u64 = 5;

/// How an endpoint shows its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `{"error": "...", "error_description": "..."}`, RFC 6749 §5.2.
    OAuth,
    /// The OAuth JSON with a `WWW-Authenticate: Bearer` challenge, for a
    /// protected resource such as userinfo (RFC 6750 §3).
    Bearer,
    /// `application/problem+json`, RFC 9457.
    Api,
    /// An HTML page for people.
    Page,
}

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::DeadLink(_) => StatusCode::BAD_REQUEST,
            Self::OAuth { code, .. } => match code {
                OAuthCode::InvalidClient | OAuthCode::InvalidToken => StatusCode::UNAUTHORIZED,
                OAuthCode::AccessDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            },
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::RecentSignInRequired => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) | Self::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) | Self::OutboundDenied(_) => StatusCode::BAD_GATEWAY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Config { .. } | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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

    /// The error code of a protected resource (RFC 6750 §3.1), with its status.
    fn bearer_code(&self) -> Option<(&'static str, StatusCode)> {
        match self {
            Self::OAuth {
                code: OAuthCode::InvalidToken,
                ..
            } => Some(("invalid_token", StatusCode::UNAUTHORIZED)),
            Self::Forbidden(_) => Some(("insufficient_scope", StatusCode::FORBIDDEN)),
            Self::OAuth { .. } | Self::BadRequest(_) => {
                Some(("invalid_request", StatusCode::BAD_REQUEST))
            }
            _ => None,
        }
    }

    /// Turns the error into a response in the endpoint's style.
    pub fn into_response(self, style: Style) -> Response {
        if matches!(
            self,
            Self::Config { .. } | Self::Storage(_) | Self::Internal(_) | Self::OutboundDenied(_)
        ) {
            // Operators read this in the Spin log; callers see `detail()`.
            eprintln!("lanyard: {self:?}");
        }
        let mut res = match style {
            Style::OAuth => oauth_body(self.oauth_code(), &self),
            Style::Bearer => match self.bearer_code() {
                Some((code, _)) => oauth_body(code, &self),
                None => oauth_body(self.oauth_code(), &self),
            },
            Style::Api => problem(&self),
            Style::Page => crate::html::error_page(self.status(), self.title(), &self.detail()),
        };
        decorate(&mut res, &self);
        challenge(&mut res, &self, style);
        res
    }
}

fn oauth_body(code: &str, err: &Error) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
        error_description: String,
    }
    let mut res = web::json(
        err.status(),
        &Body {
            error: code,
            error_description: err.detail(),
        },
    );
    web::no_store(&mut res);
    res
}

fn problem(err: &Error) -> Response {
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
    let variable = match err {
        Error::Config { name, .. } => Some(name.as_str()),
        _ => None,
    };
    let mut res = web::json(
        err.status(),
        &Problem {
            kind: match err {
                Error::RecentSignInRequired => RECENT_SIGN_IN_TYPE,
                _ => "about:blank",
            },
            title: err.title(),
            status: err.status().as_u16(),
            detail: err.detail(),
            variable,
        },
    );
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

/// Gives a response the status of `err` and the headers that go with it:
/// `Retry-After` when throttled or unavailable, `Allow` for a wrong method.
/// Pages that show an error on their own form use it too.
pub fn decorate(res: &mut Response, err: &Error) {
    *res.status_mut() = err.status();
    let h = res.headers_mut();
    match err {
        Error::TooManyRequests { retry_after } => {
            h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        Error::Storage(_) | Error::Unavailable(_) => {
            h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_UNAVAILABLE));
        }
        Error::MethodNotAllowed(allow) => {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        _ => {}
    }
}

/// The `WWW-Authenticate` challenge a 401 (or a protected resource's 403)
/// carries (RFC 9110 §11.6.1).
fn challenge(res: &mut Response, err: &Error, style: Style) {
    let value = match style {
        Style::Bearer => match err.bearer_code() {
            Some((code, status)) => {
                *res.status_mut() = status;
                format!("Bearer error=\"{code}\"")
            }
            None => return,
        },
        _ if res.status() != StatusCode::UNAUTHORIZED => return,
        Style::OAuth => "Basic realm=\"lanyard\"".to_owned(),
        Style::Api => "Bearer realm=\"lanyard\"".to_owned(),
        Style::Page => return,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OAuthCode;

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
    fn a_protected_resource_answers_with_a_bearer_challenge() {
        let res = Error::oauth(OAuthCode::InvalidToken, "expired").into_response(Style::Bearer);
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        let res = Error::Forbidden("no openid scope".into()).into_response(Style::Bearer);
        assert_eq!(res.status(), 403);
        assert_eq!(body(&res)["error"], "insufficient_scope");
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer error=\"insufficient_scope\""
        );
        let res = Error::Unauthorized("sign in".into()).into_response(Style::Api);
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"lanyard\""
        );
    }

    #[test]
    fn a_form_error_keeps_its_status_and_headers() {
        let mut res = crate::web::html(StatusCode::OK, String::new());
        decorate(&mut res, &Error::TooManyRequests { retry_after: 9 });
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()["retry-after"], "9");
    }

    #[test]
    fn rate_limit_carries_retry_after() {
        let res = Error::TooManyRequests { retry_after: 30 }.into_response(Style::Page);
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()["retry-after"], "30");
    }
}
