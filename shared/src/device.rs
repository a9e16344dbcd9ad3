//! Where a request comes from, as recorded with sessions and security
//! events: the client address (see [`crate::client_addr`]) and the browser's
//! `User-Agent`.

use http::{HeaderMap, header};

use crate::client_addr;
use crate::config::Variables;
use crate::error::Result;

/// The longest `User-Agent` kept, in characters.
const MAX_USER_AGENT: usize = 256;

/// A request's client address and browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    /// The client address.
    pub addr: String,
    /// The `User-Agent` header, cut to 256 characters (empty when absent or
    /// not text).
    pub user_agent: String,
}

impl Device {
    /// The device of a request.
    pub fn of(vars: &dyn Variables, headers: &HeaderMap) -> Result<Self> {
        Ok(Self {
            addr: client_addr::of(vars, headers)?,
            user_agent: user_agent(headers),
        })
    }

    /// A device with only an address (requests that carry no browser).
    pub fn addr(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            user_agent: String::new(),
        }
    }
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(MAX_USER_AGENT)
                .collect()
        })
        .unwrap_or_default()
}

/// A short description of a `User-Agent` for people: the browser and the
/// system, such as "Chrome on Linux" (or "Unknown device").
pub fn describe(user_agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| user_agent.contains(needle))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| user_agent.contains(needle))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => "Unknown device".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_common_browsers() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(describe(chrome), "Chrome on Linux");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe(safari), "Safari on iOS");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0";
        assert_eq!(describe(edge), "Edge on Windows");
        assert_eq!(describe(""), "Unknown device");
    }

    #[test]
    fn keeps_a_bounded_printable_user_agent() {
        let mut h = HeaderMap::new();
        h.insert(header::USER_AGENT, "x".repeat(1000).parse().unwrap());
        assert_eq!(user_agent(&h).len(), MAX_USER_AGENT);
        assert_eq!(user_agent(&HeaderMap::new()), "");
    }
}
