//! Browser tests of the account centre: `passkeys` (uses the parent's
//! `Browser`): register a passkey on `/account/passkeys` with ChromeDriver's
//! virtual authenticator (the WebAuthn WebDriver extension), sign out, and
//! sign in with "Sign in with a passkey" alone.

use serde_json::{Value, json};

use super::{Browser, common};

impl Browser {
    /// Adds a virtual CTAP2 platform authenticator that keeps discoverable
    /// credentials and verifies the user; its id.
    fn virtual_authenticator(&self) -> String {
        let id = self.call(
            "POST",
            "/webauthn/authenticator",
            json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            }),
        );
        id.as_str().expect("an authenticator id").to_owned()
    }
}

#[test]
fn register_a_passkey_then_sign_in_with_it_alone_in_chromium() {
    // WebAuthn needs a secure context and a domain as the RP id: localhost.
    let server = common::serve("localhost", &[("product_name", "Acme ID")]);
    let base = server.base.as_str();
    let b = Browser::start();
    let authenticator = b.virtual_authenticator();
    let email = "pia@example.com";
    let password = "a long and memorable passphrase";
    b.sign_up_and_verify(base, email, password);
    b.go(&format!("{base}/login"));
    b.wait_for("Sign in");
    b.fill("#email", email);
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for("You are signed in.");

    b.go(&format!("{base}/account/passkeys"));
    b.wait_for("You have no passkey yet.");
    b.fill("#passkey-name", "Test laptop");
    b.click("#passkey-add button[type=submit]");
    b.wait_for("Your passkey is added.");
    assert!(b.source().contains("Test laptop"));
    b.screenshot("account-passkeys");
    // The authenticator keeps it as a discoverable credential.
    let creds = b.call(
        "GET",
        &format!("/webauthn/authenticator/{authenticator}/credentials"),
        Value::Null,
    );
    let creds = creds.as_array().unwrap();
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["isResidentCredential"], true, "{creds:?}");
    assert_eq!(creds[0]["rpId"], "localhost");

    b.sign_out(base);
    b.go(&format!("{base}/login"));
    b.wait_for("Sign in with a passkey");
    b.screenshot("login-passkey");
    b.click("#passkey-sign-in");
    b.wait_for("You are signed in.");
    assert_eq!(b.url(), format!("{base}/"));
    assert!(b.source().contains(email));
    // The counter moved on in the authenticator and was recorded.
    b.go(&format!("{base}/account/passkeys"));
    b.wait_for("Test laptop");
    assert!(
        !b.text("table.passkeys tbody tr td:nth-of-type(2)")
            .contains("never")
    );
}
