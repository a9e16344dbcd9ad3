//! TOTP authenticators (RFC 6238): SHA-1, six digits, 30-second steps, a
//! 160-bit random secret. Enrolment stores the secret unconfirmed and shows
//! it once (as base32 text, an `otpauth://` URI and a QR code drawn as SVG);
//! a first code confirms it. A code is accepted for the current step or the
//! one before or after, and once: accepting it moves `last_step` by one
//! conditional UPDATE.

use qrcode::QrCode;
use qrcode::render::svg;
use totp_rs::{Algorithm, Builder, Totp};

use crate::Env;
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::store::totp_secrets;
use crate::web;

/// Seconds per time step.
pub const STEP: i64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;

/// What enrolment shows, once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Enrolment {
    /// The secret as base32 text (RFC 4648, no padding), for typing in.
    pub secret: String,
    /// The `otpauth://totp/…` URI that authenticator apps read.
    pub otpauth_uri: String,
    /// The URI as a QR code, an inline `<svg>` element.
    pub qr_svg: String,
}

fn totp(secret: [u8; 20]) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(1)
        .with_step_duration(STEP as u64)
        .with_secret(secret)
        .build()
        .map_err(|e| Error::Internal(format!("totp: {e}")))
}

fn decode_secret(stored: &str) -> Result<[u8; 20]> {
    crypto::b64url_decode(stored)
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .ok_or_else(|| Error::Internal("a stored TOTP secret does not decode".into()))
}

/// A code as typed (spaces allowed), if it has the shape of one: six digits.
pub fn normalise(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The time step of `code` for `secret` at `now`, within one step either
/// way; `None` when it matches none.
pub fn step_of(secret: [u8; 20], code: &str, now: i64) -> Result<Option<i64>> {
    let Some(code) = normalise(code) else {
        return Ok(None);
    };
    let now = u64::try_from(now).map_err(|_| Error::Internal("time before 1970".into()))?;
    Ok(totp(secret)?
        .check(&code, now)
        .and_then(|s| i64::try_from(s).ok()))
}

/// The code of `secret` at `now` (for tests and examples).
pub fn code_at(secret: [u8; 20], now: i64) -> Result<String> {
    let now = u64::try_from(now).map_err(|_| Error::Internal("time before 1970".into()))?;
    Ok(totp(secret)?.generate(now).to_string())
}

/// RFC 4648 base32 without padding.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Starts (or restarts) enrolment: a new secret, stored unconfirmed, and
/// what to show. A person with a confirmed authenticator must remove it
/// first.
pub fn start(env: &Env, issuer: &str, who: &Identity) -> Result<Enrolment> {
    let secret = crypto::random_bytes::<20>()?;
    if !totp_secrets::start(env.sql, &who.id, &crypto::b64url(&secret), env.now)? {
        return Err(Error::Conflict(
            "An authenticator app is already set up. Remove it first to set up another.".into(),
        ));
    }
    let text = base32(&secret);
    let label = web::pct(&format!("{issuer}:{}", who.email));
    let otpauth_uri = format!(
        "otpauth://totp/{label}?secret={text}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        web::pct(issuer)
    );
    Ok(Enrolment {
        qr_svg: qr_svg(&otpauth_uri)?,
        secret: text,
        otpauth_uri,
    })
}

/// The QR code of `text` as an inline `<svg>` element (no XML prolog).
pub fn qr_svg(text: &str) -> Result<String> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| Error::Internal(format!("qr: {e}")))?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let svg = image.find("<svg").map_or(image.as_str(), |at| &image[at..]);
    Ok(svg.replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code for your authenticator app\" ",
        1,
    ))
}

/// Confirms the pending enrolment by a first code. A wrong code is a
/// `BadRequest` that names the problem; no enrolment waiting is a conflict.
pub fn confirm(env: &Env, identity_id: &str, code: &str) -> Result<()> {
    let Some(row) = totp_secrets::get(env.sql, identity_id)?.filter(|r| r.confirmed_at.is_none())
    else {
        return Err(Error::Conflict(
            "No authenticator app is waiting for confirmation. Start again.".into(),
        ));
    };
    if normalise(code).is_none() {
        return Err(Error::bad_request(
            "Enter the 6-digit code your authenticator app shows.",
        ));
    }
    let Some(step) = step_of(decode_secret(&row.secret)?, code, env.now)? else {
        return Err(Error::bad_request(
            "That code is not right. Check that the app's clock is correct and enter the code it shows now.",
        ));
    };
    if totp_secrets::confirm(env.sql, identity_id, step, env.now)? {
        Ok(())
    } else {
        Err(Error::Conflict(
            "No authenticator app is waiting for confirmation. Start again.".into(),
        ))
    }
}

/// Whether `code` is a right, unused code of the identity's confirmed
/// authenticator; a right one is spent.
pub fn verify(env: &Env, identity_id: &str, code: &str) -> Result<bool> {
    let Some(row) = totp_secrets::get(env.sql, identity_id)?.filter(|r| r.confirmed_at.is_some())
    else {
        return Ok(false);
    };
    match step_of(decode_secret(&row.secret)?, code, env.now)? {
        Some(step) => totp_secrets::use_step(env.sql, identity_id, step),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{World, person};

    fn secret_of(w: &World, id: &str) -> [u8; 20] {
        decode_secret(&totp_secrets::get(&w.sql, id).unwrap().unwrap().secret).unwrap()
    }

    #[test]
    fn base32_follows_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn rfc_6238_test_vector() {
        // Appendix B, SHA-1, the 8-digit codes cut to their last 6 digits.
        let secret = *b"12345678901234567890";
        assert_eq!(code_at(secret, 59).unwrap(), "287082");
        assert_eq!(code_at(secret, 1_111_111_109).unwrap(), "081804");
        assert_eq!(code_at(secret, 1_234_567_890).unwrap(), "005924");
    }

    #[test]
    fn enrolment_shows_the_secret_once_and_a_first_code_confirms_it() {
        let w = World::new();
        let ada = person(&w.sql, "ada@example.com", 0);
        let e = start(&w.env(1000), "Lanyard", &ada).unwrap();
        assert_eq!(e.secret.len(), 32);
        assert!(
            e.otpauth_uri
                .starts_with("otpauth://totp/Lanyard%3Aada%40example.com?secret=")
        );
        assert!(e.otpauth_uri.contains(&e.secret));
        assert!(e.qr_svg.starts_with("<svg ") && e.qr_svg.ends_with("</svg>"));
        let secret = secret_of(&w, &ada.id);
        assert_eq!(base32(&secret), e.secret);
        // Not confirmed: its codes do not sign in.
        assert!(!verify(&w.env(1000), &ada.id, &code_at(secret, 1000).unwrap()).unwrap());
        // Starting again replaces the unconfirmed secret.
        start(&w.env(1001), "Lanyard", &ada).unwrap();
        let secret = secret_of(&w, &ada.id);
        assert!(matches!(
            confirm(&w.env(1002), &ada.id, "12345"),
            Err(Error::BadRequest(_))
        ));
        let wrong = format!(
            "{:06}",
            (code_at(secret, 1002).unwrap().parse::<u32>().unwrap() + 1) % 1_000_000
        );
        assert!(matches!(
            confirm(&w.env(1002), &ada.id, &wrong),
            Err(Error::BadRequest(_))
        ));
        confirm(&w.env(1002), &ada.id, &code_at(secret, 1002).unwrap()).unwrap();
        // Confirmed: no new enrolment over it, and the confirming code is spent.
        assert!(matches!(
            start(&w.env(1003), "Lanyard", &ada),
            Err(Error::Conflict(_))
        ));
        assert!(!verify(&w.env(1003), &ada.id, &code_at(secret, 1002).unwrap()).unwrap());
        assert!(matches!(
            confirm(&w.env(1003), &ada.id, "123456"),
            Err(Error::Conflict(_))
        ));
    }

    #[test]
    fn a_code_works_in_its_window_and_once() {
        let w = World::new();
        let ada = person(&w.sql, "ada@example.com", 0);
        start(&w.env(0), "Lanyard", &ada).unwrap();
        let secret = secret_of(&w, &ada.id);
        confirm(&w.env(0), &ada.id, &code_at(secret, 0).unwrap()).unwrap();
        let now = 30_000;
        // One step back and one ahead are accepted; two are not.
        assert!(
            !verify(
                &w.env(now),
                &ada.id,
                &code_at(secret, now - 2 * STEP).unwrap()
            )
            .unwrap()
        );
        assert!(
            !verify(
                &w.env(now),
                &ada.id,
                &code_at(secret, now + 2 * STEP).unwrap()
            )
            .unwrap()
        );
        assert!(verify(&w.env(now), &ada.id, &code_at(secret, now - STEP).unwrap()).unwrap());
        let current = code_at(secret, now).unwrap();
        assert!(
            verify(
                &w.env(now),
                &ada.id,
                &format!("{} {}", &current[..3], &current[3..])
            )
            .unwrap()
        );
        // A replay of the same code, or of an older one, is refused.
        assert!(!verify(&w.env(now + 1), &ada.id, &current).unwrap());
        assert!(
            !verify(
                &w.env(now + 1),
                &ada.id,
                &code_at(secret, now - STEP).unwrap()
            )
            .unwrap()
        );
        assert!(
            verify(
                &w.env(now + STEP),
                &ada.id,
                &code_at(secret, now + STEP).unwrap()
            )
            .unwrap()
        );
        // The conditional UPDATE alone settles a race for the same step.
        assert!(!totp_secrets::use_step(&w.sql, &ada.id, (now + STEP) / STEP).unwrap());
        assert!(!verify(&w.env(now), &ada.id, "abcdef").unwrap());
    }

    #[test]
    fn removal_ends_the_authenticator() {
        let w = World::new();
        let ada = person(&w.sql, "ada@example.com", 0);
        start(&w.env(0), "Lanyard", &ada).unwrap();
        let secret = secret_of(&w, &ada.id);
        confirm(&w.env(0), &ada.id, &code_at(secret, 0).unwrap()).unwrap();
        assert!(totp_secrets::delete(&w.sql, &ada.id).unwrap());
        assert!(!verify(&w.env(90), &ada.id, &code_at(secret, 90).unwrap()).unwrap());
    }
}
