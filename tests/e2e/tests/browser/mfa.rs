//! Browser tests of the account centre: `mfa` (uses the parent's
//! `Browser`): an authenticator app set up on the page, its code computed
//! here from the key the page shows, then a sign-in with the password and
//! a code.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Browser, common};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The TOTP code (SHA-1, 6 digits, 30 s) of a base32 key at `time`.
fn code_at(secret: &str, time: u64) -> String {
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("a base32 key");
    totp_rs::Builder::new()
        .with_secret(<[u8; 20]>::try_from(bytes).expect("160 bits"))
        .build()
        .unwrap()
        .generate(time)
        .to_string()
}

/// Waits for the start of the next 30-second step (a code is accepted
/// once, so a second sign-in needs the next one), or of this one when it
/// is about to end.
fn fresh_step(after: Option<u64>) -> u64 {
    loop {
        let t = now();
        let step = t / 30;
        if after.is_none_or(|a| step > a) && t % 30 < 25 {
            return step;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn set_up_an_authenticator_app_then_sign_in_with_it_in_chromium() {
    let server = common::serve("localhost", &[("product_name", "Acme ID")]);
    let b = Browser::start();
    let base = &server.base;
    let email = "grace@example.com";
    let password = "a long and memorable passphrase";
    b.sign_up_and_verify(base, email, password);
    b.sign_in_to(base, "/account/mfa", email, password);
    b.wait_for("No authenticator app is set up.");

    b.click("#totp-start");
    b.wait_for("totp-secret");
    b.screenshot("account-mfa-enrol");
    // The QR code is drawn inline, as SVG.
    let svg = b.script("return String(document.querySelectorAll('#totp-qr svg').length)");
    assert_eq!(svg, "1");
    let secret = b.text("#totp-secret");
    assert_eq!(secret.len(), 32, "{secret}");
    let step = fresh_step(None);
    b.fill("#totp-code", &code_at(&secret, now()));
    b.click("form[action='/account/mfa/totp/confirm'] button[type=submit]");
    b.wait_for("Your recovery codes");
    b.wait_for("An authenticator app is set up.");
    let codes =
        b.script("return String(document.querySelectorAll('#new-recovery-codes li').length)");
    assert_eq!(codes, "10");
    b.screenshot("account-mfa-codes");

    b.sign_out(base);
    b.go(&format!("{base}/account/mfa"));
    b.wait_for("Sign in");
    b.fill("#email", email);
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for("Two-step verification");
    assert!(
        b.url().starts_with(&format!("{base}/login/mfa")),
        "{}",
        b.url()
    );
    b.screenshot("login-mfa");
    // The code of the step that confirmed the app is spent: the next one.
    fresh_step(Some(step));
    b.fill("#code", &code_at(&secret, now()));
    b.click("button[type=submit]");
    let deadline = Instant::now() + Duration::from_secs(15);
    while b.url() != format!("{base}/account/mfa") {
        assert!(
            Instant::now() < deadline,
            "still at {}: {}",
            b.url(),
            b.source()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    b.wait_for("An authenticator app is set up.");
    b.wait_for("10 unused codes left");
}
