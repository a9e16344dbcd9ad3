//! Browser tests of the account centre: `privacy` (uses the parent's
//! `Browser`): download the export, erase the account on the page, and
//! find the account gone.

use serde_json::{Value, json};

use super::{Browser, common};

#[test]
fn export_and_erase_the_account_in_chromium() {
    let server = common::serve("localhost", &[]);
    let base = server.base.as_str();
    let b = Browser::start();
    let email = "erin@example.com";
    let password = "a long and memorable passphrase";
    b.sign_up_and_verify(base, email, password);
    let sign_in = |b: &Browser| {
        b.go(&format!("{base}/login"));
        b.wait_for("Sign in");
        b.fill("#email", email);
        b.fill("#password", password);
        b.click("button[type=submit]");
    };
    sign_in(&b);
    b.wait_for("You are signed in.");

    b.go(&format!("{base}/account/privacy"));
    b.wait_for("Download my data");
    b.screenshot("account-privacy");
    assert!(b.source().contains("href=\"/account/export\""));
    // The download, fetched by the page with its session.
    let got = b.call(
        "POST",
        "/execute/async",
        json!({
            "script": "const done = arguments[0]; \
                       fetch('/account/export').then(r => r.text().then(t => done(JSON.stringify({ \
                         disposition: r.headers.get('content-disposition'), body: t })))) \
                       .catch(e => done(JSON.stringify({ error: String(e) })));",
            "args": []
        }),
    );
    let got: Value = serde_json::from_str(got.as_str().unwrap()).unwrap();
    assert_eq!(
        got["disposition"],
        "attachment; filename=\"lanyard-export.json\""
    );
    let doc: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(doc["identity"]["email"], email);
    assert_eq!(doc["format"], "lanyard-export/1");

    // Erase: the address typed again, then signed out.
    b.fill("#confirm", email);
    b.click("#delete-account");
    b.wait_for("Your account is deleted");
    b.go(&format!("{base}/"));
    b.wait_for("Sign in");
    // Signing in again fails: the account is gone.
    sign_in(&b);
    b.wait_for("The email or password is incorrect.");
}
