//! Recovery codes: ten random codes such as `7k2m-q9xd-4hbt`, shown once
//! and stored as SHA-256. Each is spent by one conditional UPDATE, so that
//! it works once even between concurrent requests. Making a new set
//! replaces the old one.

use crate::Env;
use crate::crypto;
use crate::error::Result;
use crate::store::recovery_codes;

/// Codes in a set.
pub const COUNT: usize = 10;

/// Crockford's base32 alphabet, lower case: no `i`, `l`, `o` or `u`, so
/// that nothing reads as something else.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters of a code, without the dashes (60 bits).
const LEN: usize = 12;

/// A new random code, `xxxx-xxxx-xxxx`.
fn new_code() -> Result<String> {
    let bytes = crypto::random_bytes::<LEN>()?;
    let chars: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    Ok(format!("{}-{}-{}", &chars[..4], &chars[4..8], &chars[8..]))
}

/// A code as typed, in the form it was hashed: lower case, without dashes
/// or spaces, with `i`/`l` read as `1` and `o` as `0`; `None` when it
/// cannot be a code.
pub fn normalise(code: &str) -> Option<String> {
    let mut out = String::with_capacity(LEN);
    for c in code.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() == LEN {
            return None;
        }
        out.push(c);
    }
    (out.len() == LEN).then_some(out)
}

fn hash(normalised: &str) -> String {
    crypto::hash_secret(normalised)
}

/// Makes a new set of codes for the identity, replacing the old one; the
/// codes, to show once.
pub fn generate(env: &Env, identity_id: &str) -> Result<Vec<String>> {
    let codes = (0..COUNT).map(|_| new_code()).collect::<Result<Vec<_>>>()?;
    let hashes: Vec<String> = codes
        .iter()
        .filter_map(|c| normalise(c))
        .map(|c| hash(&c))
        .collect();
    recovery_codes::replace(env.sql, identity_id, &hashes, env.now)?;
    Ok(codes)
}

/// Spends `code` if it is one of the identity's unused codes.
pub fn spend(env: &Env, identity_id: &str, code: &str) -> Result<bool> {
    let Some(code) = normalise(code) else {
        return Ok(false);
    };
    recovery_codes::spend(env.sql, identity_id, &hash(&code), env.now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::World;

    #[test]
    fn codes_look_right_and_read_leniently() {
        let code = new_code().unwrap();
        assert_eq!(code.len(), 14);
        assert_eq!(normalise(&code).unwrap().len(), LEN);
        assert_eq!(normalise("ABCD-EFGH-JK01").unwrap(), "abcdefghjk01");
        assert_eq!(normalise("abcd efgh jkOI").unwrap(), "abcdefghjk01");
        assert_eq!(normalise("abcd-efgh-jk0"), None);
        assert_eq!(normalise("abcd-efgh-jk0uu"), None);
        assert_eq!(normalise("123456"), None);
    }

    #[test]
    fn each_code_works_once_and_a_new_set_replaces_the_old() {
        let w = World::new();
        let env = w.env(5);
        let codes = generate(&env, "ada").unwrap();
        assert_eq!(codes.len(), COUNT);
        assert_eq!(recovery_codes::left(&w.sql, "ada").unwrap(), 10);
        assert!(!spend(&env, "bob", &codes[0]).unwrap(), "not Bob's");
        assert!(spend(&env, "ada", &codes[0].to_uppercase()).unwrap());
        assert!(!spend(&env, "ada", &codes[0]).unwrap(), "used");
        assert_eq!(recovery_codes::left(&w.sql, "ada").unwrap(), 9);
        // Two requests racing with the same code: the conditional UPDATE
        // lets exactly one through.
        let h = hash(&normalise(&codes[1]).unwrap());
        let first = recovery_codes::spend(&w.sql, "ada", &h, 6).unwrap();
        let second = recovery_codes::spend(&w.sql, "ada", &h, 6).unwrap();
        assert_eq!((first, second), (true, false));
        let fresh = generate(&w.env(7), "ada").unwrap();
        assert_eq!(recovery_codes::left(&w.sql, "ada").unwrap(), 10);
        assert!(
            !spend(&env, "ada", &codes[2]).unwrap(),
            "the old set is gone"
        );
        assert!(spend(&env, "ada", &fresh[2]).unwrap());
    }
}
