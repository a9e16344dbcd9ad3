//! `allowed_outbound_hosts`, with Spin's syntax and matching rules:
//! `<scheme>://<host>[:<port>]`, where the scheme may be `*`, the host `*`,
//! `*.domain` (subdomains only) or an IP network in CIDR form, and the port
//! `*`, a number or a range `a..b`; with no port, the scheme's well-known port.
//!
//! Service chaining needs nothing special here: `http://backend.spin.internal`
//! is an exact host and `http://*.spin.internal` a subdomain wildcard, as in
//! Spin; the outbound hook then runs the named component in-process.

use std::net::IpAddr;
use std::ops::Range;

use anyhow::{Context, bail};

/// One entry of `allowed_outbound_hosts`.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    AnySubdomain(String),
    Exact(String),
    Cidr(IpAddr, u8),
    /// `self` / `self.alt`: self-requests (a relative URL, or
    /// `http://self.alt/...`), which this host does not support: nothing
    /// matches it.
    ToSelf,
}

#[derive(Debug, Clone)]
enum PortPattern {
    Any,
    Port(u16),
    Range(Range<u16>),
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one entry.
    pub fn parse(url: &str) -> anyhow::Result<AllowedHost> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            bail!("{url:?} does not contain a scheme (e.g., 'http://' or '*://')");
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((port, path)) => {
                if !path.is_empty() {
                    bail!("{url:?} has a path but is not allowed to");
                }
                port
            }
            None => rest,
        };

        let scheme = if scheme == "*" {
            None
        } else {
            if scheme.starts_with('{') {
                bail!("scheme lists are not yet supported");
            }
            if scheme.chars().any(|c| !c.is_alphabetic()) {
                bail!("scheme {scheme:?} contains non alphabetic character");
            }
            Some(scheme.to_owned())
        };

        let host = host.trim();
        let host = if host == "*" {
            HostPattern::Any
        } else if host == "self" || host == "self.alt" {
            HostPattern::ToSelf
        } else if host.starts_with('{') {
            bail!("host lists are not yet supported");
        } else if let Some(net) = parse_cidr(host) {
            net
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("Invalid allowed host {host}: wildcards are allowed only as prefixes");
            }
            HostPattern::AnySubdomain(format!(".{domain}"))
        } else if host.contains('*') {
            bail!("Invalid allowed host {host}: wildcards are allowed only as subdomains");
        } else {
            if matches!(host.split('/').nth(1), Some(path) if !path.is_empty()) {
                bail!("hosts must not contain paths");
            }
            HostPattern::Exact(host.trim_end_matches('/').to_owned())
        };

        let port = if port.is_empty() {
            let scheme_name = scheme.as_deref().unwrap_or("*");
            PortPattern::Port(well_known_port(scheme_name).with_context(|| {
                format!("no port was provided and the scheme {scheme_name:?} does not have a known default port number")
            })?)
        } else if port == "*" {
            PortPattern::Any
        } else if let Some((start, end)) = port.split_once("..") {
            let start = start
                .parse()
                .with_context(|| format!("port range {port:?} contains non-number"))?;
            let end = end
                .parse()
                .with_context(|| format!("port range {port:?} contains non-number"))?;
            PortPattern::Range(start..end)
        } else {
            PortPattern::Port(
                port.parse()
                    .with_context(|| format!("port {port:?} is not a number"))?,
            )
        };

        Ok(AllowedHost { scheme, host, port })
    }

    /// Whether a request to `scheme://host[:port]` is allowed by this entry.
    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::AnySubdomain(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(h) => h == host,
            HostPattern::ToSelf => false,
            HostPattern::Cidr(net, prefix) => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                host.parse::<IpAddr>()
                    .is_ok_and(|ip| cidr_contains(*net, *prefix, ip))
            }
        };
        let port_ok = match &self.port {
            PortPattern::Any => true,
            other => match port.or_else(|| well_known_port(scheme)) {
                Some(p) => match other {
                    PortPattern::Port(q) => *q == p,
                    PortPattern::Range(r) => r.contains(&p),
                    PortPattern::Any => true,
                },
                None => false,
            },
        };
        scheme_ok && host_ok && port_ok
    }
}

/// A component's whole allow-list.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedHosts {
    hosts: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Parses every entry (templates already expanded).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> anyhow::Result<AllowedHosts> {
        if entries.len() == 1 && entries[0].as_ref() == "insecure:allow-all" {
            bail!(
                "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'"
            );
        }
        let hosts = entries
            .iter()
            .map(|e| {
                AllowedHost::parse(e.as_ref()).with_context(|| {
                    format!("invalid allowed_outbound_hosts entry {:?}", e.as_ref())
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(AllowedHosts { hosts })
    }

    /// Whether `uri` (absolute) may be requested.
    pub fn allows_uri(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        let host = authority.host();
        self.hosts
            .iter()
            .any(|h| h.allows(scheme, host, authority.port_u16()))
    }
}

fn parse_cidr(host: &str) -> Option<HostPattern> {
    let (addr, prefix) = match host.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (host, None),
    };
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some(HostPattern::Cidr(ip, prefix))
}

fn cidr_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], url: &str) -> bool {
        AllowedHosts::parse(entries)
            .unwrap()
            .allows_uri(&url.parse().unwrap())
    }

    #[test]
    fn matching() {
        let google = ["https://accounts.google.com"];
        assert!(allows(&google, "https://accounts.google.com/o/oauth2"));
        assert!(allows(&google, "https://accounts.google.com:443/x"));
        assert!(!allows(&google, "http://accounts.google.com/x"));
        assert!(!allows(&google, "https://accounts.google.com:8443/x"));
        assert!(!allows(&google, "https://evil.com/x"));

        let local = ["http://127.0.0.1:*"];
        assert!(allows(&local, "http://127.0.0.1:3000/"));
        assert!(allows(&local, "http://127.0.0.1/"));
        assert!(!allows(&local, "http://127.0.0.2:3000/"));

        let sub = ["https://*.example.com"];
        assert!(allows(&sub, "https://api.example.com/"));
        assert!(!allows(&sub, "https://example.com/"));

        let any = ["*://*:*"];
        assert!(allows(&any, "http://whatever:1/"));

        let range = ["http://localhost:8000..8010"];
        assert!(allows(&range, "http://localhost:8005/"));
        assert!(!allows(&range, "http://localhost:8010/"));

        let cidr = ["http://10.0.0.0/8:80"];
        assert!(allows(&cidr, "http://10.1.2.3/"));
        assert!(!allows(&cidr, "http://11.1.2.3/"));

        // Service chaining: an exact component, or any with a wildcard.
        let one = ["http://backend.spin.internal"];
        assert!(allows(&one, "http://backend.spin.internal/a?b=c"));
        assert!(!allows(&one, "http://other.spin.internal/"));
        assert!(!allows(&one, "https://backend.spin.internal/"));
        let all = ["http://*.spin.internal"];
        assert!(allows(&all, "http://backend.spin.internal/"));
        assert!(allows(&all, "http://other.spin.internal/"));
        assert!(!allows(&all, "http://spin.internal/"));
        assert!(!allows(&["http://self"], "http://backend.spin.internal/"));

        assert!(!allows(&[], "https://accounts.google.com/"));
        assert!(AllowedHosts::parse(&["accounts.google.com"]).is_err());
        assert!(AllowedHosts::parse(&["insecure:allow-all"]).is_err());
    }
}
