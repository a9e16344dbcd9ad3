//! Browser tests of the account centre: `centre` (uses the parent's `Browser`).

use serde_json::json;

use super::{Browser, common};

/// Edits the profile on `/account` in Chromium, on a phone-sized window,
/// and sees the saved value after a reload.
#[test]
fn edit_the_profile_in_the_account_centre_in_chromium() {
    let server = common::serve("localhost", &[("product_name", "Acme ID")]);
    let b = Browser::start();
    let base = &server.base;
    let email = "grace@example.com";
    let password = "a long and memorable passphrase";
    b.sign_up_and_verify(base, email, password);
    b.sign_in_to(base, "/account", email, password);
    b.wait_for("Your profile");
    b.resize(390, 844);
    assert!(b.text("#account-email").contains(email));

    // The form shows the value given at sign-up (none here); the server's
    // refusals of bad values are tested in account_centre/centre.rs.
    let field = b.find("#attr-name");
    b.call("POST", &format!("/element/{field}/clear"), json!({}));
    b.fill("#attr-name", "Grace Brewster Hopper");
    b.click("form[action='/account'] button[type=submit]");
    b.wait_for("Your profile is saved.");
    b.screenshot("account-profile");

    b.go(&format!("{base}/account"));
    b.wait_for("Your profile");
    let value = b.script("return document.querySelector('#attr-name').value");
    assert_eq!(value, "Grace Brewster Hopper");
    // Nothing wider than the phone's screen.
    let fits = b.script("return String(document.documentElement.scrollWidth <= window.innerWidth)");
    assert_eq!(fits, "true", "the page scrolls sideways on a phone");

    // Every page of the navigation is there, the sessions page among them,
    // with this session marked.
    b.click("nav.account-nav a[href='/account/sessions']");
    b.wait_for("this session");
    b.click("nav.account-nav a[href='/account/events']");
    b.wait_for("Profile changed");
    b.screenshot("account-events");
}
