//! Brute-force protection: failure counters in key-value, per account and per
//! client address, with exponential backoff.
//!
//! After `max_failures` failures within `window` seconds, each further attempt
//! waits `backoff × 2^(failures − max)` seconds after the last failure (at most
//! the window). A success clears the account's counter. Key-value has no
//! compare-and-swap, so racing failures may be undercounted by a few; the
//! limit is approximate by design and nothing single-use depends on it.

use serde::{Deserialize, Serialize};

use crate::config::{self, Variables};
use crate::crypto;
use crate::error::{Error, Result};
use crate::session::seconds;
use crate::store::{KvStore, kv};

/// One limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures allowed before backoff starts.
    pub max_failures: u32,
    /// Seconds after the first failure that the counter lives.
    pub window: i64,
    /// The first backoff, in seconds; it doubles with each further failure.
    pub backoff: i64,
}

/// The limits for credential endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per account (keyed by the normalised email, whether or not it exists).
    pub account: Limit,
    /// Per client address.
    pub address: Limit,
}

impl Limits {
    /// Reads `login_max_failures` (5), `login_address_max_failures` (50),
    /// `login_window_seconds` (900) and `login_backoff_seconds` (30).
    pub fn load(vars: &dyn Variables) -> Result<Self> {
        let window = seconds(vars, "login_window_seconds", 900)?;
        let backoff = seconds(vars, "login_backoff_seconds", 30)?;
        let count = |name: &str, default: u32| -> Result<u32> {
            match config::optional(vars, name)? {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| Error::config(name, "use a whole number from 1 to 10000")),
            }
        };
        Ok(Self {
            account: Limit {
                max_failures: count("login_max_failures", 5)?,
                window,
                backoff,
            },
            address: Limit {
                max_failures: count("login_address_max_failures", 50)?,
                window,
                backoff,
            },
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    failures: u32,
    first: i64,
    last: i64,
}

impl Counter {
    fn locked_until(&self, l: &Limit) -> Option<i64> {
        let over = self.failures.checked_sub(l.max_failures)?;
        let wait = l.backoff.saturating_mul(1i64 << over.min(30)).min(l.window);
        Some(self.last + wait)
    }
}

/// The key for an account's counter (the email is hashed, not stored).
pub fn account_key(email: &str) -> String {
    format!("throttle:acct:{}", crypto::hash_secret(email))
}

/// The key for a client address's counter.
pub fn address_key(addr: &str) -> String {
    format!("throttle:addr:{addr}")
}

/// Refuses with 429 (and `Retry-After`) while the key is backing off.
pub fn check(store: &dyn KvStore, key: &str, l: &Limit, now: i64) -> Result<()> {
    let Some(c) = kv::get_json::<Counter>(store, key, now)? else {
        return Ok(());
    };
    match c.locked_until(l) {
        Some(until) if until > now => Err(Error::TooManyRequests {
            retry_after: (until - now) as u64,
        }),
        _ => Ok(()),
    }
}

/// Records a failure.
pub fn fail(store: &dyn KvStore, key: &str, l: &Limit, now: i64) -> Result<()> {
    let c = match kv::get_json::<Counter>(store, key, now)? {
        Some(c) if now < c.first + l.window => Counter {
            failures: c.failures + 1,
            first: c.first,
            last: now,
        },
        _ => Counter {
            failures: 1,
            first: now,
            last: now,
        },
    };
    let expires = (c.first + l.window)
        .max(c.locked_until(l).unwrap_or(0))
        .max(now + 1);
    kv::put_json(store, key, &c, expires)
}

/// Forgets the failures (after a success).
pub fn clear(store: &dyn KvStore, key: &str) -> Result<()> {
    store.delete(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::MemoryKv;

    const L: Limit = Limit {
        max_failures: 3,
        window: 600,
        backoff: 10,
    };

    #[test]
    fn backs_off_exponentially_then_recovers() {
        let kv = MemoryKv::default();
        for t in 0..3 {
            check(&kv, "k", &L, t).unwrap();
            fail(&kv, "k", &L, t).unwrap();
        }
        // Third failure at t=2: wait 10 s.
        assert_eq!(
            check(&kv, "k", &L, 5),
            Err(Error::TooManyRequests { retry_after: 7 })
        );
        check(&kv, "k", &L, 12).unwrap();
        fail(&kv, "k", &L, 12).unwrap();
        assert_eq!(
            check(&kv, "k", &L, 12),
            Err(Error::TooManyRequests { retry_after: 20 })
        );
        check(&kv, "k", &L, 32).unwrap();
        // The window passes: the counter starts again.
        fail(&kv, "k", &L, 700).unwrap();
        check(&kv, "k", &L, 700).unwrap();
        clear(&kv, "k").unwrap();
        check(&kv, "k", &L, 701).unwrap();
    }
}
