//! Front-channel logout in Chromium (issue 15; uses the parent's
//! `Browser`): signing out at Lanyard loads the demo's
//! `frontchannel_logout_uri` in a hidden iframe, which ends the demo's own
//! cookie session, and then the browser goes back to the demo.

use serde_json::{Value, json};

use super::{Browser, common, edit_demo_client};

/// The demo client with front-channel logout only (its back-channel
/// endpoint unregistered), so that only the iframe can end its session.
fn front_channel_only(base: &str, admin_token: &str) {
    let body = edit_demo_client(base, admin_token, |meta| {
        assert_eq!(
            meta["frontchannel_logout_uri"],
            json!(format!("{base}/demo/frontchannel-logout"))
        );
        let fields = meta.as_object_mut().unwrap();
        fields.remove("backchannel_logout_uri");
        fields.remove("backchannel_logout_session_required");
    });
    assert!(
        body.get("backchannel_logout_uri")
            .is_none_or(Value::is_null),
        "{body}"
    );
}

#[test]
fn signing_out_at_lanyard_ends_the_demo_session_through_its_front_channel_iframe() {
    let admin_token = "an-admin-token-of-at-least-32-characters";
    let server = common::serve(
        "127.0.0.1",
        &[("product_name", "Acme ID"), ("admin_token", admin_token)],
    );
    let base = server.base.as_str();
    front_channel_only(base, admin_token);
    let b = Browser::start();
    let email = "fran@example.com";
    let password = "a front channel passphrase";
    b.sign_up_and_verify(base, email, password);

    b.go(&format!("{base}/demo"));
    b.wait_for("Sign in with Acme ID");
    b.click("a.button");
    b.wait_for("Sign in");
    b.fill("#email", email);
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for("Signed in through Acme ID");
    assert!(b.source().contains(email));

    // The demo's sign-out link: Lanyard asks first (no id_token_hint).
    b.go(&format!(
        "{base}/logout?client_id=demo&post_logout_redirect_uri={}",
        common::urlencode(&format!("{base}/demo"))
    ));
    b.wait_for("Sign out?");
    b.click("button[type=submit]");
    // The logout page frames the demo's front-channel URI, then goes back
    // to the demo, whose own session the iframe ended.
    b.wait_for("Sign in with Acme ID");
    assert_eq!(b.url(), format!("{base}/demo"));
    let page = b.source();
    assert!(
        !page.contains(email),
        "the demo still shows the claims: {page}"
    );
    b.screenshot("front-channel-logout");
    // Signed out of Lanyard too.
    b.go(&format!("{base}/account"));
    b.wait_for("Sign in");
}
