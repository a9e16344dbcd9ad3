//! Brute-force and mail-bombing protection: attempt counters in SQLite, per
//! account, per client address and per mail recipient, with exponential
//! backoff.
//!
//! An attempt is counted *before* the work it guards (an argon2 hash, a
//! mail), by one conditional upsert that also refuses it while the key is
//! backing off. Key-value has no atomic increment, so a check before the work
//! and a count after it would let concurrent attempts all pass; here exactly
//! `max_failures` attempts get through, however many arrive at once.
//!
//! After `max_failures` attempts within `window` seconds, each further attempt
//! waits `backoff × 2^(attempts − max)` seconds after the last one (at most
//! the window). A refused attempt is not counted, so waiting always helps.
//! A successful login clears its account's counter and gives its address
//! back the attempt.

use crate::config::{self, Variables};
use crate::crypto;
use crate::error::{Error, Result};
use crate::session::seconds;
use crate::store::{SqlStore, throttles};

/// One limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Attempts allowed before backoff starts.
    pub max_failures: u32,
    /// Seconds after the first attempt that the counter lives.
    pub window: i64,
    /// The first backoff, in seconds; it doubles with each further attempt.
    pub backoff: i64,
}

/// The limits for credential endpoints and mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per account (keyed by the normalised email, whether or not it exists).
    pub account: Limit,
    /// Per client address.
    pub address: Limit,
    /// Mails per recipient (verification, reset, "already registered").
    pub recipient: Limit,
}

impl Limits {
    /// Reads `login_max_failures` (5), `login_address_max_failures` (50),
    /// `mail_recipient_max` (5), `login_window_seconds` (900) and
    /// `login_backoff_seconds` (30).
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
        let limit = |max_failures| Limit {
            max_failures,
            window,
            backoff,
        };
        Ok(Self {
            account: limit(count("login_max_failures", 5)?),
            address: limit(count("login_address_max_failures", 50)?),
            recipient: limit(count("mail_recipient_max", 5)?),
        })
    }
}

/// The key for an account's login attempts (the email is hashed, not stored).
pub fn account_key(email: &str) -> String {
    format!("acct:{}", crypto::hash_secret(email))
}

/// The key for the mails sent to one address (hashed, not stored).
pub fn recipient_key(email: &str) -> String {
    format!("mail-to:{}", crypto::hash_secret(email))
}

/// The key for a client address's attempts at one kind of action
/// (`login`, `signup`, `mail`, `admin`).
pub fn address_key(action: &str, addr: &str) -> String {
    format!("{action}:addr:{addr}")
}

impl Limit {
    fn policy(&self) -> throttles::Policy {
        throttles::Policy {
            max: i64::from(self.max_failures),
            window: self.window,
            backoff: self.backoff,
        }
    }
}

/// Counts one attempt against `key`, or refuses it with 429 (and the seconds
/// until the next attempt may pass) while the key is backing off. One
/// statement: of any number of concurrent attempts, at most `max_failures`
/// pass within a window.
pub fn reserve(db: &dyn SqlStore, key: &str, l: &Limit, now: i64) -> Result<()> {
    if throttles::count(db, key, &l.policy(), now)? {
        return Ok(());
    }
    let wait = throttles::wait(db, key, &l.policy(), now)?.unwrap_or(l.backoff);
    Err(Error::TooManyRequests {
        retry_after: wait.max(1) as u64,
    })
}

/// Gives one attempt back (a login that succeeded from this address).
pub fn refund(db: &dyn SqlStore, key: &str) -> Result<()> {
    throttles::refund(db, key)
}

/// Forgets the attempts (after a successful login or a password reset).
pub fn clear(db: &dyn SqlStore, key: &str) -> Result<()> {
    throttles::clear(db, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;

    const L: Limit = Limit {
        max_failures: 3,
        window: 600,
        backoff: 10,
    };

    fn db() -> SqliteSql {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        db
    }

    #[test]
    fn backs_off_exponentially_then_recovers() {
        let db = db();
        for t in 0..3 {
            reserve(&db, "k", &L, t).unwrap();
        }
        // Third attempt at t=2: wait 10 s.
        assert_eq!(
            reserve(&db, "k", &L, 5),
            Err(Error::TooManyRequests { retry_after: 7 })
        );
        // Refused attempts are not counted: the wait does not grow.
        assert_eq!(
            reserve(&db, "k", &L, 6),
            Err(Error::TooManyRequests { retry_after: 6 })
        );
        reserve(&db, "k", &L, 12).unwrap();
        assert_eq!(
            reserve(&db, "k", &L, 12),
            Err(Error::TooManyRequests { retry_after: 20 })
        );
        reserve(&db, "k", &L, 32).unwrap();
        // The window passes: the counter starts again.
        for t in 700..703 {
            reserve(&db, "k", &L, t).unwrap();
        }
        assert!(reserve(&db, "k", &L, 703).is_err());
        clear(&db, "k").unwrap();
        reserve(&db, "k", &L, 704).unwrap();
    }

    #[test]
    fn a_refund_gives_one_attempt_back() {
        let db = db();
        for _ in 0..3 {
            reserve(&db, "k", &L, 0).unwrap();
        }
        refund(&db, "k").unwrap();
        reserve(&db, "k", &L, 0).unwrap();
        assert!(reserve(&db, "k", &L, 0).is_err());
    }

    #[test]
    fn concurrent_attempts_pass_at_most_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        schema::ensure(&SqliteSql::open(&path).unwrap()).unwrap();
        let passed = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    // Each thread its own connection, as each Spin request is.
                    let db = SqliteSql::open(&path).unwrap();
                    for _ in 0..5 {
                        if reserve(&db, "k", &L, 100).is_ok() {
                            passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(passed.into_inner(), L.max_failures);
    }
}
