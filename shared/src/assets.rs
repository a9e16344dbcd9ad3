//! Static assets compiled into the components and served under `/static/`.
//!
//! Each answer carries an `ETag` (a hash of its bytes) and a day of public
//! caching; a matching `If-None-Match` gets `304 Not Modified`.

use http::{HeaderValue, StatusCode, header};

use crate::config::{self, Variables};
use crate::crypto;
use crate::web::{self, Request, Response};

/// The URL prefix of static assets.
pub const PREFIX: &str = "/static/";

const MAX_AGE: u32 = 86_400;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "lanyard.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../static/css/lanyard.css"),
    },
    Asset {
        name: "logo.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../static/img/logo.svg"),
    },
    Asset {
        name: "js/passkeys.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/js/passkeys.js"),
    },
    Asset {
        name: "js/signout.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/js/signout.js"),
    },
];

/// Serves `/static/<name>`, `Ok(None)` when there is no such asset.
/// `theme.css` is generated from the `accent_color` variable and `logo.svg`
/// comes from `logo_svg` when it is set; these two read their variable, the
/// other assets read none (each read costs 20–40 µs on real Spin). A bad
/// value is an error naming its variable, from the asset that uses it.
pub fn serve(req: &Request, vars: &dyn Variables) -> crate::error::Result<Option<Response>> {
    let Some(name) = req.uri().path().strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let generated = match name {
        "theme.css" => {
            let css = format!(":root {{ --accent: {}; }}\n", config::accent_color(vars)?);
            Some(("text/css; charset=utf-8", css.into_bytes()))
        }
        "logo.svg" => config::logo_svg(vars)?.map(|svg| ("image/svg+xml", svg.into_bytes())),
        _ => None,
    };
    let (content_type, bytes): (&'static str, std::borrow::Cow<'static, [u8]>) = match generated {
        Some((content_type, bytes)) => (content_type, bytes.into()),
        None => match ASSETS.iter().find(|a| a.name == name) {
            Some(asset) => (asset.content_type, asset.bytes.into()),
            None => return Ok(None),
        },
    };
    let etag = format!("\"{}\"", &crypto::b64url(&crypto::sha256(&bytes))[..16]);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        web::response(StatusCode::NOT_MODIFIED, content_type, Vec::new())
    } else {
        web::response(StatusCode::OK, content_type, bytes.into_owned())
    };
    web::cache_for(&mut res, MAX_AGE);
    // Opened directly, an SVG is a document: it may not run script.
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    Ok(Some(res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars() -> HashMap<String, String> {
        [("accent_color".into(), "#123456".into())].into()
    }

    fn get(path: &str, etag: Option<&str>) -> Option<Response> {
        let mut b = http::Request::builder().uri(path);
        if let Some(e) = etag {
            b = b.header("if-none-match", e);
        }
        serve(&b.body(Vec::new()).unwrap(), &vars()).unwrap()
    }

    #[test]
    fn serves_assets_with_cache_headers_and_etags() {
        let res = get("/static/lanyard.css", None).unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "public, max-age=86400");
        assert!(res.body().starts_with(b"/* Lanyard"));
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let again = get("/static/lanyard.css", Some(&etag)).unwrap();
        assert_eq!(again.status(), 304);
        assert!(again.body().is_empty());
        assert!(get("/static/nope.css", None).is_none());
        assert!(get("/static/../Cargo.toml", None).is_none());
    }

    #[test]
    fn the_operator_logo_replaces_the_default() {
        let mut v: HashMap<String, String> = HashMap::new();
        v.insert(
            "logo_svg".into(),
            "<svg xmlns='http://www.w3.org/2000/svg'><circle r='4'/></svg>".into(),
        );
        let req = http::Request::builder()
            .uri("/static/logo.svg")
            .body(Vec::new())
            .unwrap();
        let res = serve(&req, &v).unwrap().unwrap();
        assert!(
            res.body()
                .starts_with(b"<svg xmlns='http://www.w3.org/2000/svg'><circle")
        );
        assert!(
            res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
        v.insert("logo_svg".into(), "<script>alert(1)</script>".into());
        assert!(
            matches!(serve(&req, &v), Err(crate::Error::Config { name, .. }) if name == "logo_svg")
        );
    }

    #[test]
    fn theme_carries_the_accent_colour() {
        let res = get("/static/theme.css", None).unwrap();
        assert_eq!(
            std::str::from_utf8(res.body()).unwrap(),
            ":root { --accent: #123456; }\n"
        );
    }
}
