//! Configuration, read from Spin variables.
//!
//! Every setting is a Spin variable declared in `spin.toml`, overridable with
//! `SPIN_VARIABLE_<NAME>` or a secrets provider. The issuer is configured,
//! never guessed from the request. A missing or invalid value is an
//! [`Error::Config`] that names the variable.

use url::Url;

use crate::error::{Error, Result};

/// Where variable values come from: Spin's variables interface inside a
/// component, a map in tests.
pub trait Variables {
    /// The value of a component variable, or `None` when it is not declared
    /// for this component.
    fn get(&self, name: &str) -> Result<Option<String>>;
}

/// The limit used when `max_body_bytes` is not declared for a component.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES_CEILING: usize = 16 * 1024 * 1024;

/// The settings every component shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The issuer identifier, an absolute URL without a trailing slash,
    /// query or fragment (OIDC Discovery §4.3).
    pub issuer: String,
    /// Development mode: generated signing keys, the mail outbox page.
    pub dev_mode: bool,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The product name shown on pages.
    pub product_name: String,
    /// The accent colour of pages, `#rrggbb`.
    pub accent_color: String,
    /// The operator's logo, an SVG document served as `/static/logo.svg`.
    pub logo_svg: Option<String>,
}

impl Config {
    /// Reads and validates the shared settings.
    pub fn load(vars: &dyn Variables) -> Result<Config> {
        let dev_mode = parse_bool("dev_mode", &optional(vars, "dev_mode")?.unwrap_or_default())?;
        let issuer = parse_issuer(&required(vars, "issuer")?, dev_mode)?;
        let product_name = optional(vars, "product_name")?.unwrap_or_else(|| "Lanyard".into());
        if product_name.chars().count() > 64 || product_name.chars().any(char::is_control) {
            return Err(Error::config(
                "product_name",
                "use at most 64 printable characters",
            ));
        }
        let accent_color = optional(vars, "accent_color")?.unwrap_or_else(|| "#4f46e5".into());
        if !is_hex_colour(&accent_color) {
            return Err(Error::config("accent_color", "use a colour like #4f46e5"));
        }
        let logo_svg = optional(vars, "logo_svg")?;
        if let Some(svg) = &logo_svg {
            let head = svg.trim_start();
            if svg.len() > 64 * 1024
                || !(head.starts_with("<svg") || head.starts_with("<?xml"))
                || !svg.contains("</svg>")
            {
                return Err(Error::config(
                    "logo_svg",
                    "use an SVG document of at most 64 KiB",
                ));
            }
        }
        Ok(Config {
            issuer,
            dev_mode,
            max_body_bytes: max_body_bytes(vars)?,
            product_name,
            accent_color,
            logo_svg,
        })
    }

    /// An absolute URL under the issuer, for a path starting with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// The request-size limit alone; the adapter needs it before the body is read.
pub fn max_body_bytes(vars: &dyn Variables) -> Result<usize> {
    match optional(vars, "max_body_bytes")? {
        None => Ok(DEFAULT_MAX_BODY_BYTES),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1024..=MAX_BODY_BYTES_CEILING).contains(&n) => Ok(n),
            _ => Err(Error::config(
                "max_body_bytes",
                format!("use a whole number of bytes from 1024 to {MAX_BODY_BYTES_CEILING}"),
            )),
        },
    }
}

/// A variable that must be set to a non-empty value.
pub fn required(vars: &dyn Variables, name: &str) -> Result<String> {
    optional(vars, name)?.ok_or_else(|| Error::config(name, "it is required but has no value"))
}

/// A variable that may be absent or empty (both mean "not set").
pub fn optional(vars: &dyn Variables, name: &str) -> Result<Option<String>> {
    Ok(vars
        .get(name)?
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty()))
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" | "off" => Ok(false),
        "true" | "1" | "yes" | "on" => Ok(true),
        _ => Err(Error::config(name, "use true or false")),
    }
}

fn parse_issuer(value: &str, dev_mode: bool) -> Result<String> {
    let url = Url::parse(value).map_err(|e| Error::config("issuer", format!("not a URL ({e})")))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Error::config(
            "issuer",
            "it must have no query, fragment or user info",
        ));
    }
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if dev_mode || local => {}
        _ => {
            return Err(Error::config(
                "issuer",
                "it must be an https URL (http only on localhost or in dev_mode)",
            ));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Variables from a map, for native tests and tools.
impl Variables for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Result<Option<String>> {
        Ok(std::collections::HashMap::get(self, name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn loads_and_normalises() {
        let c = Config::load(&vars(&[
            ("issuer", "https://id.example.com/"),
            ("dev_mode", "false"),
        ]))
        .unwrap();
        assert_eq!(c.issuer, "https://id.example.com");
        assert!(!c.dev_mode);
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(c.url("/jwks.json"), "https://id.example.com/jwks.json");
        let c = Config::load(&vars(&[("issuer", "https://id.example.com/tenant")])).unwrap();
        assert_eq!(c.issuer, "https://id.example.com/tenant");
    }

    #[test]
    fn missing_issuer_is_named() {
        let err = Config::load(&vars(&[("dev_mode", "true")])).unwrap_err();
        assert!(matches!(&err, Error::Config { name, .. } if name == "issuer"));
        let err = Config::load(&vars(&[("issuer", "  ")])).unwrap_err();
        assert!(matches!(&err, Error::Config { name, .. } if name == "issuer"));
    }

    #[test]
    fn invalid_values_are_named() {
        let cases = [
            (vec![("issuer", "not a url")], "issuer"),
            (vec![("issuer", "http://id.example.com")], "issuer"),
            (vec![("issuer", "https://id.example.com/?x=1")], "issuer"),
            (
                vec![("issuer", "https://a.example"), ("dev_mode", "maybe")],
                "dev_mode",
            ),
            (
                vec![("issuer", "https://a.example"), ("max_body_bytes", "12")],
                "max_body_bytes",
            ),
            (
                vec![("issuer", "https://a.example"), ("accent_color", "red;}")],
                "accent_color",
            ),
        ];
        for (pairs, expected) in cases {
            let err = Config::load(&vars(&pairs)).unwrap_err();
            assert!(
                matches!(&err, Error::Config { name, .. } if name == expected),
                "{pairs:?}: {err:?}"
            );
        }
    }

    #[test]
    fn plain_http_only_for_local_or_dev() {
        assert!(Config::load(&vars(&[("issuer", "http://127.0.0.1:3000")])).is_ok());
        assert!(Config::load(&vars(&[("issuer", "http://id.test"), ("dev_mode", "true")])).is_ok());
    }
}
