//! The client's address, as the per-address limits key it.
//!
//! Spin keeps the request's own headers and appends its `spin-client-addr`
//! after them, so the *first* `spin-client-addr` is whatever the client sent
//! and only the *last* one is Spin's. Behind a reverse proxy or CDN, Spin sees
//! the proxy, and the trusted address is the one the proxy reports: the
//! `client_address_header` variable names that header, and which entry of it
//! to take counting from the right (`x-forwarded-for` is its last entry,
//! `x-forwarded-for:2` the one before). Entries left of the trusted hop are the
//! client's own words and are never used.
//!
//! IPv6 addresses are grouped by their /64, the block one subscriber gets,
//! so that nobody escapes a limit by walking through their own prefix.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::HeaderMap;

use crate::config::{self, Variables};
use crate::error::{Error, Result};

/// The header Spin adds with the address of the peer it accepted.
pub const SPIN_CLIENT_ADDR: &str = "spin-client-addr";

/// Where the trusted client address comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// Spin's own `spin-client-addr` (the last one): Lanyard faces clients.
    #[default]
    Spin,
    /// A header a trusted proxy sets, and the entry to take counted from the
    /// right (1 is the last).
    Header {
        /// The header's name, lower case.
        name: http::HeaderName,
        /// 1-based position from the right.
        hop: usize,
    },
}

impl Source {
    /// Reads `client_address_header`: empty for Spin's address, or
    /// `<header>` / `<header>:<hop>`.
    pub fn load(vars: &dyn Variables) -> Result<Self> {
        let Some(value) = config::optional(vars, "client_address_header")? else {
            return Ok(Self::Spin);
        };
        let bad = || {
            Error::config(
                "client_address_header",
                "use a header name, optionally with the hop counted from the right (x-forwarded-for:1)",
            )
        };
        let (name, hop) = match value.split_once(':') {
            Some((n, h)) => (
                n,
                h.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|h| (1..=16).contains(h))
                    .ok_or_else(bad)?,
            ),
            None => (value.as_str(), 1),
        };
        let name = http::HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
            .map_err(|_| bad())?;
        if name.as_str().starts_with("spin-") {
            return Err(bad());
        }
        Ok(Self::Header { name, hop })
    }
}

/// The client's address for this request, read as `client_address_header`
/// says (one variable read: call it only where a limit needs it).
pub fn of(vars: &dyn Variables, headers: &HeaderMap) -> Result<String> {
    Ok(client_address(headers, &Source::load(vars)?))
}

/// The client's address for rate limits: an IPv4 address, an IPv6 /64
/// (`2001:db8:1:2::/64`), or `unknown`.
pub fn client_address(headers: &HeaderMap, source: &Source) -> String {
    let from_proxy = match source {
        Source::Spin => None,
        Source::Header { name, hop } => {
            // Several header lines are one comma-separated list, in order.
            let entries: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect();
            entries
                .len()
                .checked_sub(*hop)
                .and_then(|i| entries.get(i))
                .and_then(|e| parse(e))
        }
    };
    // Without the proxy's header (a request that bypassed it), Spin's own
    // view is still not the client's choice.
    from_proxy
        .or_else(|| {
            headers
                .get_all(SPIN_CLIENT_ADDR)
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(parse)
        })
        .map(group)
        .unwrap_or_else(|| "unknown".into())
}

/// An address with or without a port: `1.2.3.4`, `1.2.3.4:5`, `::1`,
/// `[::1]:5`.
fn parse(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| text.trim_start_matches('[').trim_end_matches(']').parse())
        .ok()
}

fn group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn source(value: &str) -> Result<Source> {
        let vars: HashMap<String, String> =
            [("client_address_header".to_string(), value.to_string())].into();
        Source::load(&vars)
    }

    #[test]
    fn spins_own_value_is_the_last_one() {
        let h = headers(&[
            (SPIN_CLIENT_ADDR, "198.51.100.7:1"),
            (SPIN_CLIENT_ADDR, "203.0.113.5:41000"),
        ]);
        assert_eq!(client_address(&h, &Source::Spin), "203.0.113.5");
        assert_eq!(client_address(&HeaderMap::new(), &Source::Spin), "unknown");
    }

    #[test]
    fn ipv6_is_grouped_by_64() {
        for addr in ["[2001:db8:1:2:aaaa::1]:443", "[2001:db8:1:2:ffff::9]:1"] {
            let h = headers(&[(SPIN_CLIENT_ADDR, addr)]);
            assert_eq!(client_address(&h, &Source::Spin), "2001:db8:1:2::/64");
        }
        let mapped = headers(&[(SPIN_CLIENT_ADDR, "[::ffff:192.0.2.1]:80")]);
        assert_eq!(client_address(&mapped, &Source::Spin), "192.0.2.1");
    }

    #[test]
    fn a_trusted_proxy_header_is_read_from_the_right() {
        let last = source("X-Forwarded-For").unwrap();
        let second = source("x-forwarded-for:2").unwrap();
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 2.2.2.2"),
            ("x-forwarded-for", "3.3.3.3"),
            (SPIN_CLIENT_ADDR, "10.0.0.1:5000"),
        ]);
        assert_eq!(client_address(&h, &last), "3.3.3.3");
        assert_eq!(client_address(&h, &second), "2.2.2.2");
        // No header (the proxy was bypassed): Spin's view.
        let direct = headers(&[(SPIN_CLIENT_ADDR, "10.0.0.1:5000")]);
        assert_eq!(client_address(&direct, &last), "10.0.0.1");
        // Too few hops: never the client's own leftmost words.
        let short = headers(&[
            ("x-forwarded-for", "9.9.9.9"),
            (SPIN_CLIENT_ADDR, "10.0.0.1:5000"),
        ]);
        assert_eq!(client_address(&short, &second), "10.0.0.1");
    }

    #[test]
    fn bad_settings_name_the_variable() {
        for bad in [
            "x-forwarded-for:0",
            "x-forwarded-for:x",
            "bad header",
            "spin-client-addr",
        ] {
            assert!(
                matches!(source(bad), Err(Error::Config { name, .. }) if name == "client_address_header"),
                "{bad}"
            );
        }
        assert_eq!(source("").unwrap(), Source::Spin);
    }
}
