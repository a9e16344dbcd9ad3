//! Configuration, read from Spin variables.
//!
//! Every setting is a Spin variable declared in `spin.toml`, overridable with
//! `SPIN_VARIABLE_<NAME>` or a secrets provider. The issuer is configured,
//! never guessed from the request. A missing or invalid value is an
//! [`Error::Config`] that names the variable.
//!
//! A variable read costs 20–40 µs of host time on real Spin, so each is read
//! when a request first needs it, and at most once (the adapter remembers
//! what it read). [`Config::load`] reads the issuer alone (and `dev_mode`
//! only to judge a plain-http issuer); the other settings are read on first
//! use. A bad value is reported, naming its variable, by the requests that
//! use it: a bad `product_name` by pages and mail, a bad `accent_color` by
//! `/static/theme.css`, a bad `logo_svg` by `/static/logo.svg`, a bad
//! `max_body_bytes` by any request with a body over [`MIN_MAX_BODY_BYTES`].

use std::cell::OnceCell;

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
/// The smallest `max_body_bytes` allowed: a body of this size or less fits
/// every valid limit, so the adapter reads the variable only for larger ones.
pub const MIN_MAX_BODY_BYTES: usize = 1024;
const MAX_BODY_BYTES_CEILING: usize = 16 * 1024 * 1024;

/// The settings every component shares: the issuer, read and checked at
/// [`Config::load`], and the rest read on first use.
#[derive(Clone)]
pub struct Config<'a> {
    /// The issuer identifier, an absolute URL without a trailing slash,
    /// query or fragment (OIDC Discovery §4.3).
    pub issuer: String,
    // Crate-visible so that tests can copy a configuration with another
    // issuer (`Config { issuer, ..config.clone() }`).
    pub(crate) vars: &'a dyn Variables,
    pub(crate) dev_mode: OnceCell<bool>,
    pub(crate) product_name: OnceCell<String>,
}

impl std::fmt::Debug for Config<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("dev_mode", &self.dev_mode.get())
            .field("product_name", &self.product_name.get())
            .finish_non_exhaustive()
    }
}

impl<'a> Config<'a> {
    /// Reads and checks the issuer; the other settings wait for their first
    /// use. `dev_mode` is read here only for a plain-http issuer on a host
    /// other than localhost, which only `dev_mode` allows.
    pub fn load(vars: &'a dyn Variables) -> Result<Config<'a>> {
        let dev_mode = OnceCell::new();
        let issuer = parse_issuer(&required(vars, "issuer")?, || {
            let on = dev_mode_of(vars)?;
            Ok(*dev_mode.get_or_init(|| on))
        })?;
        Ok(Config {
            issuer,
            vars,
            dev_mode,
            product_name: OnceCell::new(),
        })
    }

    /// Development mode: generated signing keys, the mail outbox page.
    pub fn dev_mode(&self) -> Result<bool> {
        once(&self.dev_mode, || dev_mode_of(self.vars)).copied()
    }

    /// The product name shown on pages and in mail.
    pub fn product_name(&self) -> Result<&str> {
        once(&self.product_name, || product_name(self.vars)).map(String::as_str)
    }

    /// An absolute URL under the issuer, for a path starting with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// The value in `cell`, computed by `init` the first time (a value read
/// from variables is read once; an error is not kept, so it comes again).
pub fn once<T>(cell: &OnceCell<T>, init: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = init()?;
    Ok(cell.get_or_init(|| v))
}

/// `dev_mode`, default false.
pub fn dev_mode_of(vars: &dyn Variables) -> Result<bool> {
    parse_bool("dev_mode", &optional(vars, "dev_mode")?.unwrap_or_default())
}

/// `product_name`, default "Lanyard": at most 64 printable characters.
pub fn product_name(vars: &dyn Variables) -> Result<String> {
    let name = optional(vars, "product_name")?.unwrap_or_else(|| "Lanyard".into());
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Error::config(
            "product_name",
            "use at most 64 printable characters",
        ));
    }
    Ok(name)
}

/// `accent_color`, the accent colour of pages, `#rrggbb` (default `#4f46e5`).
pub fn accent_color(vars: &dyn Variables) -> Result<String> {
    let colour = optional(vars, "accent_color")?.unwrap_or_else(|| "#4f46e5".into());
    if !is_hex_colour(&colour) {
        return Err(Error::config("accent_color", "use a colour like #4f46e5"));
    }
    Ok(colour)
}

/// `logo_svg`, the operator's logo served as `/static/logo.svg`: an SVG
/// document of at most 64 KiB, or `None` for Lanyard's own.
pub fn logo_svg(vars: &dyn Variables) -> Result<Option<String>> {
    let logo = optional(vars, "logo_svg")?;
    if let Some(svg) = &logo {
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
    Ok(logo)
}

/// The request-size limit alone; the adapter needs it before the body is read.
pub fn max_body_bytes(vars: &dyn Variables) -> Result<usize> {
    match optional(vars, "max_body_bytes")? {
        None => Ok(DEFAULT_MAX_BODY_BYTES),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (MIN_MAX_BODY_BYTES..=MAX_BODY_BYTES_CEILING).contains(&n) => Ok(n),
            _ => Err(Error::config(
                "max_body_bytes",
                format!(
                    "use a whole number of bytes from {MIN_MAX_BODY_BYTES} to {MAX_BODY_BYTES_CEILING}"
                ),
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

/// Checks the issuer; `dev_mode` is asked for only when the issuer is plain
/// http on a host other than localhost.
fn parse_issuer(value: &str, dev_mode: impl FnOnce() -> Result<bool>) -> Result<String> {
    let url = Url::parse(value).map_err(|e| Error::config("issuer", format!("not a URL ({e})")))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Error::config(
            "issuer",
            "it must have no query, fragment or user info",
        ));
    }
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let allowed = match url.scheme() {
        "https" => true,
        "http" => local || dev_mode()?,
        _ => false,
    };
    if !allowed {
        return Err(Error::config(
            "issuer",
            "it must be an https URL (http only on localhost or in dev_mode)",
        ));
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
    use std::cell::RefCell;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Variables that remember which names were read.
    struct Counted(HashMap<String, String>, RefCell<Vec<String>>);

    impl Variables for Counted {
        fn get(&self, name: &str) -> Result<Option<String>> {
            self.1.borrow_mut().push(name.to_owned());
            Variables::get(&self.0, name)
        }
    }

    fn counted(pairs: &[(&str, &str)]) -> Counted {
        Counted(vars(pairs), RefCell::default())
    }

    #[test]
    fn loads_and_normalises() {
        let v = vars(&[("issuer", "https://id.example.com/"), ("dev_mode", "false")]);
        let c = Config::load(&v).unwrap();
        assert_eq!(c.issuer, "https://id.example.com");
        assert!(!c.dev_mode().unwrap());
        assert_eq!(c.product_name().unwrap(), "Lanyard");
        assert_eq!(max_body_bytes(&v).unwrap(), DEFAULT_MAX_BODY_BYTES);
        assert_eq!(c.url("/jwks.json"), "https://id.example.com/jwks.json");
        let v = vars(&[("issuer", "https://id.example.com/tenant")]);
        assert_eq!(
            Config::load(&v).unwrap().issuer,
            "https://id.example.com/tenant"
        );
    }

    #[test]
    fn load_reads_the_issuer_alone_and_the_rest_once_on_first_use() {
        let v = counted(&[
            ("issuer", "https://id.example.com"),
            ("product_name", "Acme"),
        ]);
        let c = Config::load(&v).unwrap();
        assert_eq!(*v.1.borrow(), ["issuer"]);
        assert_eq!(c.product_name().unwrap(), "Acme");
        assert_eq!(c.product_name().unwrap(), "Acme");
        assert!(!c.dev_mode().unwrap());
        assert!(!c.dev_mode().unwrap());
        assert_eq!(*v.1.borrow(), ["issuer", "product_name", "dev_mode"]);
        // A plain-http issuer elsewhere than localhost needs dev_mode, read once.
        let v = counted(&[("issuer", "http://id.test"), ("dev_mode", "true")]);
        let c = Config::load(&v).unwrap();
        assert!(c.dev_mode().unwrap());
        assert_eq!(*v.1.borrow(), ["issuer", "dev_mode"]);
    }

    #[test]
    fn missing_issuer_is_named() {
        let err = Config::load(&vars(&[("dev_mode", "true")])).unwrap_err();
        assert!(matches!(&err, Error::Config { name, .. } if name == "issuer"));
        let err = Config::load(&vars(&[("issuer", "  ")])).unwrap_err();
        assert!(matches!(&err, Error::Config { name, .. } if name == "issuer"));
    }

    #[test]
    fn invalid_values_are_named_where_they_are_used() {
        let named = |err: Error, expected: &str| {
            assert!(
                matches!(&err, Error::Config { name, .. } if name == expected),
                "{expected}: {err:?}"
            );
        };
        for bad in [
            "not a url",
            "http://id.example.com",
            "https://id.example.com/?x=1",
        ] {
            named(
                Config::load(&vars(&[("issuer", bad)])).unwrap_err(),
                "issuer",
            );
        }
        // A plain-http issuer asks dev_mode, which must then be valid.
        let v = vars(&[("issuer", "http://id.test"), ("dev_mode", "maybe")]);
        named(Config::load(&v).unwrap_err(), "dev_mode");
        // The other settings do not stop the load; their first use names them.
        let v = vars(&[
            ("issuer", "https://a.example"),
            ("dev_mode", "maybe"),
            ("max_body_bytes", "12"),
            ("accent_color", "red;}"),
            ("product_name", "a\u{7}bell"),
            ("logo_svg", "<script>alert(1)</script>"),
        ]);
        let c = Config::load(&v).unwrap();
        named(c.dev_mode().unwrap_err(), "dev_mode");
        named(c.product_name().unwrap_err(), "product_name");
        named(max_body_bytes(&v).unwrap_err(), "max_body_bytes");
        named(accent_color(&v).unwrap_err(), "accent_color");
        named(logo_svg(&v).unwrap_err(), "logo_svg");
        // An error is not remembered as a value: the next use names it again.
        named(c.dev_mode().unwrap_err(), "dev_mode");
    }

    #[test]
    fn plain_http_only_for_local_or_dev() {
        let local = vars(&[("issuer", "http://127.0.0.1:3000")]);
        assert!(Config::load(&local).is_ok());
        let dev = vars(&[("issuer", "http://id.test"), ("dev_mode", "true")]);
        assert!(Config::load(&dev).is_ok());
    }
}
