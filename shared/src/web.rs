//! HTTP helpers shared by every endpoint: responses, strict query and form
//! parsing, cookies and the request-size limit.

use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::error::{Error, Result};

/// A request as the domain sees it: the whole body is already read (within
/// `max_body_bytes`).
pub type Request = http::Request<Vec<u8>>;
/// A response as the domain produces it.
pub type Response = http::Response<Vec<u8>>;

/// Headers every HTML page carries: a strict CSP with no inline script or
/// style, no framing, no referrer, no MIME sniffing. Scripts may call this
/// origin only (the passkey ceremonies).
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// A response with a body and content type.
pub fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut res = http::Response::new(body);
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// A JSON response. Serialising our own types cannot fail; if it ever did,
/// the caller gets a 500 rather than a broken body.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => response(status, "application/json", body),
        Err(_) => response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            b"{}".to_vec(),
        ),
    }
}

/// An HTML page with the page security headers.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut res = response(status, "text/html; charset=utf-8", body.into_bytes());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// HSTS lifetime: one year, this host only (the operator's other hosts are
/// theirs to decide).
const HSTS: &str = "max-age=31536000";

/// Adds `Strict-Transport-Security` to every response of an `https` issuer,
/// so that a browser never again reaches it over plain http. Plain-http
/// issuers (local development) get none: browsers ignore it there anyway.
pub fn transport_security(res: &mut Response, vars: &dyn crate::config::Variables) {
    let https = crate::config::optional(vars, "issuer")
        .ok()
        .flatten()
        .is_some_and(|i| i.to_ascii_lowercase().starts_with("https://"));
    if https {
        res.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}

/// A `303 See Other` to `to`, never cached.
pub fn redirect(to: &str) -> Result<Response> {
    let mut res = response(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Vec::new(),
    );
    let location =
        HeaderValue::from_str(to).map_err(|_| Error::bad_request("Invalid redirect."))?;
    res.headers_mut().insert(header::LOCATION, location);
    no_store(&mut res);
    Ok(res)
}

/// Percent-encodes a URL component (everything but unreserved characters).
pub fn pct(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, URL_COMPONENT).to_string()
}

const URL_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Marks a response as never to be cached (tokens, errors at OAuth endpoints).
pub fn no_store(res: &mut Response) {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Sets a public cache lifetime.
pub fn cache_for(res: &mut Response, seconds: u32) {
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={seconds}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
}

/// Refuses a body over the limit. The adapter calls this with the
/// `Content-Length` before reading, and again with the bytes actually read.
pub fn check_body_size(len: usize, limit: usize) -> Result<()> {
    if len > limit {
        Err(Error::PayloadTooLarge { limit })
    } else {
        Ok(())
    }
}

/// The media type of a form body.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Refuses a request whose `Origin`, when sent, is not the issuer's: a
/// cookie alone must never authorise a cross-site call.
pub fn same_origin(req: &Request, issuer: &str) -> crate::error::Result<()> {
    let Some(origin) = req.headers().get(http::header::ORIGIN) else {
        return Ok(());
    };
    let ours = url::Url::parse(issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if origin.as_bytes() != ours.as_bytes() {
        return Err(crate::error::Error::Forbidden(
            "Requests from other origins are not accepted.".into(),
        ));
    }
    Ok(())
}

/// Reads a JSON API request's body into `T`: it must say `Content-Type:
/// application/json` (which a cross-site form cannot send without a CORS
/// preflight), and a body that does not fit `T` is a clear 400.
pub fn json_body<T: serde::de::DeserializeOwned>(req: &Request) -> crate::error::Result<T> {
    if !content_type_is(req, "application/json") {
        return Err(crate::error::Error::bad_request(
            "Send a JSON body with Content-Type: application/json.",
        ));
    }
    serde_json::from_slice(req.body()).map_err(|e| {
        crate::error::Error::bad_request(format!("The JSON body is not valid here: {e}."))
    })
}

/// Whether the request's `Content-Type` is this media type (compared without
/// case, its parameters such as `charset` aside).
pub fn content_type_is(req: &Request, mime: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(mime))
}

/// Decoded `name=value` pairs from a query string or form body, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

/// The longest parameter value accepted anywhere (OAuth values, form fields).
pub const MAX_PARAM_LEN: usize = 4096;

impl Params {
    /// Parses `application/x-www-form-urlencoded` text strictly: `+` is a
    /// space, percent-escapes must decode to valid UTF-8, and every name and
    /// value is at most [`MAX_PARAM_LEN`] bytes.
    pub fn parse(text: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(text)
            .map_err(|_| Error::bad_request("The request is not valid UTF-8."))?;
        let mut pairs = Vec::new();
        for part in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode_component(name)?;
            let value = decode_component(value)?;
            if name.len() > MAX_PARAM_LEN || value.len() > MAX_PARAM_LEN {
                return Err(Error::bad_request(format!(
                    "The parameter `{}` is too long.",
                    truncate(&name)
                )));
            }
            pairs.push((name, value));
        }
        Ok(Self(pairs))
    }

    /// Pairs that are already decoded (a JSON body, for instance).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The query string of a request.
    pub fn from_query(req: &Request) -> Result<Self> {
        Self::parse(req.uri().query().unwrap_or("").as_bytes())
    }

    /// The form body of a request, which must be `application/x-www-form-urlencoded`.
    pub fn from_form(req: &Request) -> Result<Self> {
        if !content_type_is(req, FORM) {
            return Err(Error::bad_request(
                "Expected an application/x-www-form-urlencoded body.",
            ));
        }
        Self::parse(req.body())
    }

    /// The value of a parameter that may appear at most once. A repeated
    /// parameter is an error (RFC 6749 §3.1), and an empty value counts as absent.
    pub fn one(&self, name: &str) -> Result<Option<&str>> {
        let mut found = None;
        for (n, v) in &self.0 {
            if n == name {
                if found.is_some() {
                    return Err(Error::bad_request(format!(
                        "The parameter `{name}` is repeated."
                    )));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    /// The value to show again in a form after an error: the first one sent,
    /// or empty. Never for deciding anything: [`Params::one`] does that.
    pub fn echo(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The value of a required parameter that appears exactly once.
    pub fn required(&self, name: &str) -> Result<&str> {
        self.one(name)?
            .ok_or_else(|| Error::bad_request(format!("The parameter `{name}` is missing.")))
    }

    /// All pairs in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

fn decode_component(raw: &str) -> Result<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::bad_request("A parameter is not valid UTF-8."))
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The token of an `Authorization: Bearer` header (the scheme is
/// case-insensitive, RFC 9110 §11.1), if there is exactly one such header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of a cookie sent by the browser, if it is there exactly once.
/// A cookie sent twice (a shadowing attempt) counts as absent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            let Some((n, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if n == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v.trim_matches('"'));
            }
        }
    }
    found
}

/// A `Set-Cookie` value. Cookies are always `Path=/`, `HttpOnly` and
/// `SameSite=Lax`; with `secure` they are also `Secure`, and then the name
/// should carry the `__Host-` prefix.
#[derive(Debug, Clone)]
pub struct SetCookie<'a> {
    /// The cookie's name.
    pub name: &'a str,
    /// Its value (already URL-safe).
    pub value: &'a str,
    /// Lifetime in seconds; `Some(0)` deletes it, `None` makes a browser-session cookie.
    pub max_age: Option<i64>,
    /// Whether to mark it `Secure` (turn off only for plain-http development).
    pub secure: bool,
}

impl SetCookie<'_> {
    /// The header value.
    pub fn to_header(&self) -> Result<HeaderValue> {
        let mut s = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax",
            self.name, self.value
        );
        if self.secure {
            s.push_str("; Secure");
        }
        if let Some(age) = self.max_age {
            s.push_str(&format!("; Max-Age={age}"));
        }
        HeaderValue::from_str(&s).map_err(|_| Error::Internal("invalid cookie value".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms_strictly() {
        let p = Params::parse(b"a=1&b=hello+world&c=%C3%A9&empty=").unwrap();
        assert_eq!(p.one("a").unwrap(), Some("1"));
        assert_eq!(p.one("b").unwrap(), Some("hello world"));
        assert_eq!(p.one("c").unwrap(), Some("é"));
        assert_eq!(p.one("empty").unwrap(), None);
        assert_eq!(p.one("missing").unwrap(), None);
        assert!(p.required("missing").is_err());
    }

    #[test]
    fn refuses_duplicates_invalid_utf8_and_long_values() {
        let p = Params::parse(b"a=1&a=2").unwrap();
        assert!(matches!(p.one("a"), Err(Error::BadRequest(m)) if m.contains("repeated")));
        assert!(Params::parse(b"a=%FF%FE").is_err());
        assert!(Params::parse(&[b'a', b'=', 0xff]).is_err());
        let long = format!("a={}", "x".repeat(MAX_PARAM_LEN + 1));
        assert!(Params::parse(long.as_bytes()).is_err());
    }

    #[test]
    fn form_needs_its_content_type() {
        let req = http::Request::builder().body(b"a=1".to_vec()).unwrap();
        assert!(Params::from_form(&req).is_err());
        let req = http::Request::builder()
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(b"a=1".to_vec())
            .unwrap();
        assert_eq!(
            Params::from_form(&req).unwrap().one("a").unwrap(),
            Some("1")
        );
    }

    #[test]
    fn cookies_are_found_once() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("x=1; __Host-s=abc"),
        );
        assert_eq!(cookie(&h, "__Host-s"), Some("abc"));
        assert_eq!(cookie(&h, "y"), None);
        h.append(header::COOKIE, HeaderValue::from_static("__Host-s=evil"));
        assert_eq!(cookie(&h, "__Host-s"), None);
    }

    #[test]
    fn set_cookie_has_safe_attributes() {
        let c = SetCookie {
            name: "__Host-s",
            value: "v",
            max_age: Some(60),
            secure: true,
        };
        let v = c.to_header().unwrap();
        assert_eq!(
            v,
            "__Host-s=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=60"
        );
    }

    #[test]
    fn https_issuers_send_hsts() {
        let vars = |i: &str| -> std::collections::HashMap<String, String> {
            [("issuer".to_string(), i.to_string())].into()
        };
        let mut res = html(StatusCode::OK, String::new());
        transport_security(&mut res, &vars("https://id.example.com"));
        assert_eq!(
            res.headers()["strict-transport-security"],
            "max-age=31536000"
        );
        let mut res = html(StatusCode::OK, String::new());
        transport_security(&mut res, &vars("http://127.0.0.1:3000"));
        assert!(!res.headers().contains_key("strict-transport-security"));
    }

    #[test]
    fn body_limit() {
        assert!(check_body_size(10, 10).is_ok());
        assert_eq!(
            check_body_size(11, 10),
            Err(Error::PayloadTooLarge { limit: 10 })
        );
    }
}
