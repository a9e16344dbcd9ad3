//! Small, audited building blocks: secure random values, hashing of stored
//! secrets and constant-time comparison. No cryptography is implemented here;
//! these wrap `getrandom`, `sha2` and `subtle`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Fills an array with bytes from the operating system's secure random source
/// (`wasi:random` inside Spin).
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| Error::Internal(format!("secure random source failed: {e}")))?;
    Ok(buf)
}

/// A fresh 256-bit secret, base64url without padding (43 characters).
/// Used for session ids, codes, refresh tokens and invitation links.
pub fn random_token() -> Result<String> {
    Ok(b64url(&random_bytes::<32>()?))
}

/// A fresh 128-bit identifier, base64url without padding (22 characters).
/// Used for stable subject ids and row ids that are not secrets.
pub fn random_id() -> Result<String> {
    Ok(b64url(&random_bytes::<16>()?))
}

/// SHA-256 of a high-entropy secret, base64url. Secrets that are looked up
/// (codes, tokens, session ids) are stored only in this form; a slow hash adds
/// nothing for 256-bit random values.
pub fn hash_secret(secret: &str) -> String {
    b64url(&Sha256::digest(secret.as_bytes()))
}

/// SHA-256 of arbitrary bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-512 of arbitrary bytes (the hash of Ed25519, for its `at_hash`).
pub fn sha512(data: &[u8]) -> [u8; 64] {
    Sha512::digest(data).into()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Base64url without padding, as JOSE and OAuth use it.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn hashing_is_stable_and_hides_the_secret() {
        let h = hash_secret("s3cret");
        assert_eq!(h, hash_secret("s3cret"));
        assert_ne!(h, hash_secret("s3cret!"));
        assert!(!h.contains("s3cret"));
        // SHA-256("abc"), RFC 6234 test vector, in base64url.
        assert_eq!(
            hash_secret("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn constant_time_comparison_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
