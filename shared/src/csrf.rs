//! CSRF protection for forms: the double-submit pattern with a `__Host-`
//! cookie. Every form carries the token from the browser's CSRF cookie in a
//! hidden `csrf` field; a POST whose field does not match its cookie is
//! refused with 403. Other origins can neither read nor set a `__Host-`
//! cookie, so they cannot forge the pair.

use http::{HeaderMap, HeaderValue};

use crate::crypto;
use crate::error::{Error, Result};
use crate::session::is_token;
use crate::web::{self, Params, SetCookie};

/// The CSRF cookie's name with `Secure`.
pub const COOKIE: &str = "__Host-lanyard_csrf";
/// The name used when `cookie_secure` is off.
pub const COOKIE_PLAIN: &str = "lanyard_csrf";
/// The form field.
pub const FIELD: &str = "csrf";

fn name(secure: bool) -> &'static str {
    if secure { COOKIE } else { COOKIE_PLAIN }
}

/// The token to put in a form, and the cookie to set if the browser has none yet.
pub fn token(headers: &HeaderMap, secure: bool) -> Result<(String, Option<HeaderValue>)> {
    if let Some(existing) = web::cookie(headers, name(secure)).filter(|v| is_token(v)) {
        return Ok((existing.to_owned(), None));
    }
    let fresh = crypto::random_token()?;
    let cookie = SetCookie {
        name: name(secure),
        value: &fresh,
        max_age: None,
        secure,
    }
    .to_header()?;
    Ok((fresh, Some(cookie)))
}

/// Checks a form's token against the browser's cookie, in constant time.
pub fn check(headers: &HeaderMap, form: &Params, secure: bool) -> Result<()> {
    let cookie = web::cookie(headers, name(secure)).filter(|v| is_token(v));
    let field = form.one(FIELD)?;
    match (cookie, field) {
        (Some(c), Some(f)) if crypto::ct_eq(c.as_bytes(), f.as_bytes()) => Ok(()),
        _ => Err(Error::Forbidden(
            "This form has expired or was not sent by this site. Reload the page and try again."
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_submit() {
        let (tok, cookie) = token(&HeaderMap::new(), true).unwrap();
        let cookie = cookie.unwrap();
        assert!(cookie.to_str().unwrap().starts_with("__Host-lanyard_csrf="));
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            HeaderValue::from_str(cookie.to_str().unwrap().split(';').next().unwrap()).unwrap(),
        );
        // An existing cookie is reused.
        let (again, none) = token(&h, true).unwrap();
        assert_eq!(again, tok);
        assert!(none.is_none());
        assert!(
            check(
                &h,
                &Params::parse(format!("csrf={tok}").as_bytes()).unwrap(),
                true
            )
            .is_ok()
        );
        assert!(check(&h, &Params::parse(b"csrf=wrong").unwrap(), true).is_err());
        assert!(check(&h, &Params::parse(b"").unwrap(), true).is_err());
        let other = crypto::random_token().unwrap();
        assert!(
            check(
                &HeaderMap::new(),
                &Params::parse(format!("csrf={other}").as_bytes()).unwrap(),
                true
            )
            .is_err()
        );
    }
}
