//! Human passwords: the NIST SP 800-63B policy and argon2id hashing.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), which carry
//! their own parameters: when the configured parameters change, a successful
//! login re-hashes the password ([`Verified::rehash`]).

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::{self, Variables};
use crate::crypto;
use crate::error::{Error, Result};

/// The shortest password accepted (NIST: at least 8).
pub const MIN_LEN: usize = 8;
/// The longest password accepted (NIST: at least 64 must be allowed).
pub const MAX_LEN: usize = 128;

const COMMON: &str = include_str!("../../static/data/common-passwords.txt");

/// argon2id cost parameters.
///
/// The default is OWASP's m = 7 MiB, t = 5, p = 1, one of its five settings
/// of equal strength (the others: 46 MiB/1, 19 MiB/2, 12 MiB/3, 9 MiB/4).
/// At the edge it is the fastest of them: every Spin request is a fresh
/// instance, so all of argon2's memory is new pages each time, and 7 MiB
/// take the least to touch (docs/performance.md, "Password login at the
/// edge").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Config {
    /// Memory in KiB (default 7 MiB = 7168).
    pub memory_kib: u32,
    /// Iterations (default 5).
    pub iterations: u32,
    /// Lanes (OWASP: 1).
    pub parallelism: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Self {
            memory_kib: 7_168,
            iterations: 5,
            parallelism: 1,
        }
    }
}

impl Argon2Config {
    /// Reads `argon2_memory_kib`, `argon2_iterations` and `argon2_parallelism`.
    pub fn load(vars: &dyn Variables) -> Result<Self> {
        let d = Self::default();
        let c = Self {
            memory_kib: number(vars, "argon2_memory_kib", d.memory_kib, 7 * 1024..=262_144)?,
            iterations: number(vars, "argon2_iterations", d.iterations, 1..=10)?,
            parallelism: number(vars, "argon2_parallelism", d.parallelism, 1..=4)?,
        };
        c.hasher()
            .map(|_| c)
            .map_err(|_| Error::config("argon2_memory_kib", "parameters rejected by argon2"))
    }

    fn hasher(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| Error::Internal(format!("argon2 params: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

fn number(
    vars: &dyn Variables,
    name: &str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32> {
    match config::optional(vars, name)? {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                Error::config(
                    name,
                    format!(
                        "use a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            }),
    }
}

/// Checks a new password against the policy: 8 to 128 characters, any
/// characters, not on the list of common passwords. No composition rules.
pub fn check_policy(password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(Error::bad_request(format!(
            "Use a password of at least {MIN_LEN} characters."
        )));
    }
    if len > MAX_LEN {
        return Err(Error::bad_request(format!(
            "Use a password of at most {MAX_LEN} characters."
        )));
    }
    if is_common(password) {
        return Err(Error::bad_request(
            "This password is one of the most common passwords, which attackers try first. Choose another.",
        ));
    }
    Ok(())
}

/// Whether the password (case-insensitively) is on the bundled common list.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON.lines().any(|l| l == lower)
}

/// Hashes a new password with fresh salt.
pub fn hash(password: &str, cfg: &Argon2Config) -> Result<String> {
    count_hash();
    let salt = SaltString::encode_b64(&crypto::random_bytes::<16>()?)
        .map_err(|e| Error::Internal(format!("salt: {e}")))?;
    cfg.hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

/// The outcome of a password check.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password (or no account: see [`verify`]).
    No,
    /// Right password, hash parameters current.
    Yes,
    /// Right password; the stored hash used other parameters. Store this one.
    Rehash(String),
}

impl Verified {
    /// Whether the password matched.
    pub fn ok(&self) -> bool {
        !matches!(self, Verified::No)
    }

    /// The new hash to store, if the parameters changed.
    pub fn rehash(&self) -> Option<&str> {
        match self {
            Verified::Rehash(h) => Some(h),
            _ => None,
        }
    }
}

/// Checks a password against a stored PHC hash. With no stored hash (no such
/// account, or an account without a password) it still runs one argon2id
/// computation at the configured cost and answers `No`, so that both paths
/// take the same time.
pub fn verify(password: &str, stored: Option<&str>, cfg: &Argon2Config) -> Result<Verified> {
    let hasher = cfg.hasher()?;
    let parsed = stored.and_then(|s| PasswordHash::new(s).ok());
    let Some(parsed) = parsed else {
        count_hash();
        let mut out = [0u8; 32];
        hasher
            .hash_password_into(password.as_bytes(), b"lanyard-no-such-account", &mut out)
            .map_err(|e| Error::Internal(format!("argon2: {e}")))?;
        return Ok(Verified::No);
    };
    count_hash();
    let computed = PasswordHash::generate(
        hasher_for(&parsed)?,
        password.as_bytes(),
        parsed
            .salt
            .ok_or_else(|| Error::Internal("hash without salt".into()))?,
    )
    .map_err(|e| Error::Internal(format!("argon2: {e}")))?;
    let matches = match (computed.hash, parsed.hash) {
        (Some(a), Some(b)) => crypto::ct_eq(a.as_bytes(), b.as_bytes()),
        _ => false,
    };
    if !matches {
        return Ok(Verified::No);
    }
    let current = Params::try_from(&parsed).ok().is_some_and(|p| {
        p.m_cost() == cfg.memory_kib
            && p.t_cost() == cfg.iterations
            && p.p_cost() == cfg.parallelism
    }) && parsed.algorithm.as_str() == "argon2id";
    if current {
        Ok(Verified::Yes)
    } else {
        Ok(Verified::Rehash(hash(password, cfg)?))
    }
}

/// The hasher that reproduces a stored hash: its own algorithm and parameters.
fn hasher_for(parsed: &PasswordHash<'_>) -> Result<Argon2<'static>> {
    let algorithm = Algorithm::try_from(parsed.algorithm)
        .map_err(|e| Error::Internal(format!("argon2: {e}")))?;
    let params = Params::try_from(parsed).map_err(|e| Error::Internal(format!("argon2: {e}")))?;
    Ok(Argon2::new(algorithm, Version::V0x13, params))
}

thread_local! {
    static HASHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_hash() {
    HASHES.with(|c| c.set(c.get() + 1));
}

/// How many argon2id computations this thread has run: lets tests check that
/// every login path costs exactly one.
pub fn hashes_run() -> u64 {
    HASHES.with(|c| c.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so that unit tests stay fast; production uses the default.
    pub(crate) const FAST: Argon2Config = Argon2Config {
        memory_kib: 8192,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn policy_follows_nist() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("correct horse battery staple").is_ok());
        assert!(check_policy(&"é".repeat(MAX_LEN)).is_ok());
        assert!(check_policy(&"x".repeat(MAX_LEN + 1)).is_err());
        for common in [
            "password",
            "PASSWORD1",
            "iloveyou",
            "12345678",
            "qwertyuiop",
        ] {
            assert!(check_policy(common).is_err(), "{common}");
        }
        // No composition rules: lower-case letters only is fine.
        assert!(check_policy("purple monkey dishwasher").is_ok());
    }

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse battery staple", &FAST).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        assert_eq!(
            verify("correct horse battery staple", Some(&h), &FAST).unwrap(),
            Verified::Yes
        );
        assert_eq!(
            verify("correct horse battery stapler", Some(&h), &FAST).unwrap(),
            Verified::No
        );
        assert_ne!(
            hash("correct horse battery staple", &FAST).unwrap(),
            h,
            "fresh salt each time"
        );
    }

    #[test]
    fn changed_parameters_rehash_on_success_only() {
        let old = hash("correct horse battery staple", &FAST).unwrap();
        let newer = Argon2Config {
            memory_kib: 9216,
            ..FAST
        };
        let v = verify("correct horse battery staple", Some(&old), &newer).unwrap();
        let fresh = v.rehash().unwrap().to_owned();
        assert!(fresh.contains("m=9216"));
        assert_eq!(
            verify("correct horse battery staple", Some(&fresh), &newer).unwrap(),
            Verified::Yes
        );
        assert_eq!(
            verify("wrong password here", Some(&old), &newer).unwrap(),
            Verified::No
        );
    }

    #[test]
    fn every_path_runs_exactly_one_hash() {
        let h = hash("correct horse battery staple", &FAST).unwrap();
        for stored in [Some(h.as_str()), None, Some("not a phc string")] {
            let before = hashes_run();
            assert!(!verify("wrong password", stored, &FAST).unwrap().ok());
            assert_eq!(hashes_run() - before, 1, "{stored:?}");
        }
    }

    #[test]
    fn the_default_is_owasps_7_mib_5_passes_and_its_memory_is_accepted() {
        let none = std::collections::HashMap::<String, String>::new();
        let d = Argon2Config::load(&none).unwrap();
        assert_eq!((d.memory_kib, d.iterations, d.parallelism), (7168, 5, 1));
        for (kib, ok) in [("7168", true), ("7167", false), ("19456", true)] {
            let vars: std::collections::HashMap<String, String> =
                [("argon2_memory_kib".to_string(), kib.to_string())].into();
            assert_eq!(Argon2Config::load(&vars).is_ok(), ok, "{kib}");
        }
    }

    #[test]
    fn parameters_are_validated_and_named() {
        let vars: std::collections::HashMap<String, String> =
            [("argon2_iterations".to_string(), "0".to_string())].into();
        assert!(
            matches!(Argon2Config::load(&vars), Err(Error::Config { name, .. }) if name == "argon2_iterations")
        );
        assert_eq!(
            Argon2Config::load(&std::collections::HashMap::new()).unwrap(),
            Argon2Config::default()
        );
    }
}
