//! Browser tests: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs) drives the real pages served
//! by the test host, through WebDriver.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
#[path = "common/idp.rs"]
mod idp;

// The account centre's browser tests (issue 13), one module per section.
#[path = "browser/centre.rs"]
mod centre;
// Front-channel logout (issue 15).
#[path = "browser/logout.rs"]
mod logout;
#[path = "browser/mfa.rs"]
mod mfa;
#[path = "browser/passkeys.rs"]
mod passkeys;
#[path = "browser/privacy.rs"]
mod privacy;

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session.
struct Browser {
    driver: Child,
    endpoint: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: run .ci/run, or apt-get install chromium chromium-driver");
        let endpoint = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(format!("{endpoint}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=420,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let mut res = agent
            .post(format!("{endpoint}/session"))
            .send_json(&caps)
            .unwrap();
        let body: Value = res.body_mut().read_json().unwrap();
        let session = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {body}"))
            .to_owned();
        Browser {
            driver,
            endpoint,
            session,
            agent,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{}", self.endpoint, self.session, path);
        let mut res = match method {
            "GET" => self.agent.get(&url).call(),
            _ => self.agent.post(&url).send_json(&body),
        }
        .unwrap();
        let v: Value = res.body_mut().read_json().unwrap();
        assert!(v["value"].get("error").is_none(), "{method} {path}: {v}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    fn fill(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.call(
            "POST",
            &format!("/element/{el}/value"),
            json!({ "text": text }),
        );
    }

    fn click(&self, css: &str) {
        let el = self.find(css);
        self.call("POST", &format!("/element/{el}/click"), json!({}));
    }

    fn source(&self) -> String {
        self.call("GET", "/source", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn url(&self) -> String {
        self.call("GET", "/url", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page shows `text` (navigation after a click is asynchronous).
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.source().contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {text:?}; it is:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let png = self.call("GET", "/screenshot", Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .agent
            .delete(format!("{}/session/{}", self.endpoint, self.session))
            .call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn sign_up_verify_and_log_in_in_chromium() {
    // `localhost` is a secure context, so `__Host-` cookies work over plain http.
    let server = common::serve("localhost", &[("product_name", "Acme ID")]);
    let b = Browser::start();
    let email = "grace@example.com";
    let password = "a long and memorable passphrase";

    b.go(&format!("{}/signup", server.base));
    b.wait_for("Create your account");
    b.screenshot("signup");
    b.fill("#email", email);
    b.fill("#password", password);
    b.fill("#attr-name", "Grace Hopper");
    b.click("button[type=submit]");
    b.wait_for("Check your email");

    // The verification mail, read from the dev outbox page like a developer would.
    b.go(&format!("{}/dev/outbox", server.base));
    b.wait_for("Verify your email");
    b.click(".mail a");
    b.wait_for("Confirm my email");
    b.click("button[type=submit]");
    b.wait_for("Email verified");

    b.click("main a[href='/login']");
    b.wait_for("Sign in");
    b.fill("#email", email);
    b.fill("#password", "not my password");
    b.click("button[type=submit]");
    b.wait_for("The email or password is incorrect.");
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for("You are signed in.");
    b.screenshot("home");
    let page = b.source();
    assert!(page.contains(email) && page.contains("Grace Hopper"));
    assert_eq!(b.url(), format!("{}/", server.base));
    // The session cookie is HttpOnly: scripts on the page cannot read it.
    let script = b.call(
        "POST",
        "/execute/sync",
        json!({"script": "return document.cookie", "args": []}),
    );
    assert!(
        !script
            .as_str()
            .unwrap_or_default()
            .contains("lanyard_session")
    );

    b.click("button.secondary");
    b.wait_for("You are signed out.");
    b.go(&format!("{}/", server.base));
    b.wait_for("Sign in");
}

#[test]
fn the_demo_app_signs_in_through_lanyard_and_shows_validated_claims() {
    // The demo calls the issuer over HTTP like any app: here the test host itself.
    let server = common::serve("127.0.0.1", &[("product_name", "Acme ID")]);
    let b = Browser::start();
    let email = "demo.user@example.com";
    let password = "the demo user passphrase";
    b.go(&format!("{}/signup", server.base));
    b.fill("#email", email);
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for("Check your email");
    b.go(&format!("{}/dev/outbox", server.base));
    b.click(".mail a");
    b.wait_for("Confirm my email");
    b.click("button[type=submit]");
    b.wait_for("Email verified");

    b.go(&format!("{}/demo", server.base));
    b.wait_for("Sign in with Acme ID");
    b.click("a.button");
    // Not signed in at Lanyard yet: its login page, then straight back.
    b.wait_for("Sign in");
    b.fill("#email", email);
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for("Signed in through Acme ID");
    b.screenshot("demo");
    let page = b.source();
    assert!(page.contains(email), "{page}");
    assert!(
        page.contains(&format!("\"iss\": \"{}\"", server.base))
            || page.contains(&format!("&#34;iss&#34;: &#34;{}&#34;", server.base)),
        "{page}"
    );
    assert_eq!(b.url(), format!("{}/demo", server.base));
}

impl Browser {
    /// The text of the element `css`.
    fn text(&self, css: &str) -> String {
        let el = self.find(css);
        self.call("GET", &format!("/element/{el}/text"), Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sets the window's size.
    fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            json!({ "width": width, "height": height }),
        );
    }

    /// The text of the page's body (a JSON document, for instance).
    fn body_text(&self) -> String {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": "return document.body.innerText", "args": []}),
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Signs up, verifies the address from the dev outbox, and stays signed out.
    fn sign_up_and_verify(&self, base: &str, email: &str, password: &str) {
        self.go(&format!("{base}/signup"));
        self.wait_for("Create your account");
        self.fill("#email", email);
        self.fill("#password", password);
        self.click("button[type=submit]");
        self.wait_for("Check your email");
        self.go(&format!(
            "{base}/dev/outbox?to={}",
            common::urlencode(email)
        ));
        self.wait_for("Verify your email");
        self.click(".mail a");
        self.wait_for("Confirm my email");
        self.click("button[type=submit]");
        self.wait_for("Email verified");
    }

    /// On an organisation's page: activates the service `client_id` and
    /// invites `email` with one of its roles.
    fn activate_and_invite(&self, client_id: &str, email: &str, role: &str) {
        self.click(&format!("button[data-activate='{client_id}']"));
        self.wait_for(&format!("data-service-status=\"{client_id}\">active<"));
        self.fill("#invite-email", email);
        self.click(&format!(
            "#invite-service-role option[value='{client_id} {role}']"
        ));
        self.click("#invite-submit");
        self.wait_for(">pending<");
    }
}

/// Changes the demo client through the admin API, as an operator would:
/// its registered metadata (less what only the server sets), edited by
/// `edit`, PUT back; the answer.
fn edit_demo_client(base: &str, admin_token: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    // dev_mode seeds the demo client at the first request to /authorize.
    agent.get(format!("{base}/authorize")).call().unwrap();
    let url = format!("{base}/api/admin/clients/demo");
    let bearer = format!("Bearer {admin_token}");
    let mut res = agent
        .get(&url)
        .header("authorization", &bearer)
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut meta: Value = res.body_mut().read_json().unwrap();
    meta.as_object_mut().unwrap().remove("client_id_issued_at");
    edit(&mut meta);
    let mut res = agent
        .put(&url)
        .header("authorization", &bearer)
        .send_json(&meta)
        .unwrap();
    let body: Value = res.body_mut().read_json().unwrap();
    assert_eq!(res.status(), 200, "{body}");
    body
}

/// The demo client made a b2b service by the operator, through the admin API.
fn make_demo_a_service(base: &str, admin_token: &str) {
    let body = edit_demo_client(base, admin_token, |meta| {
        meta["b2b"] = json!(true);
        meta["roles"] = json!([
            {"name": "viewer", "description": "Sees the demo"},
            {"name": "editor", "description": "Changes the demo"},
        ]);
    });
    assert_eq!(body["b2b"], json!(true));
}

#[test]
fn organisations_invitations_and_the_organisation_picker_in_chromium() {
    let admin_token = "an-admin-token-of-at-least-32-characters";
    let server = common::serve(
        "127.0.0.1",
        &[("product_name", "Keyring"), ("admin_token", admin_token)],
    );
    let base = server.base.as_str();
    make_demo_a_service(base, admin_token);
    let b = Browser::start();
    let owner = "olivia.owner@example.com";
    let invitee = "ivan.invitee@example.com";
    let password = "a long and memorable passphrase";

    // The owner signs up, verifies, and signs in on the way to /orgs.
    b.sign_up_and_verify(base, owner, password);
    b.go(&format!("{base}/orgs"));
    b.wait_for("Sign in");
    assert!(b.url().contains("return_to=%2Forgs"), "{}", b.url());
    b.fill("#email", owner);
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for("Create an organisation");
    assert_eq!(b.url(), format!("{base}/orgs"));

    // Two organisations, each with the demo active and an invitation.
    for (name, slug, role) in [("Acme", "acme", "viewer"), ("Globex", "globex", "editor")] {
        b.go(&format!("{base}/orgs"));
        b.wait_for("Create an organisation");
        b.fill("#org-name", name);
        b.fill("#org-slug", slug);
        b.click("button[type=submit]");
        b.wait_for(&format!("<h1>{name}</h1>"));
        assert_eq!(b.url(), format!("{base}/orgs/{slug}"));
        b.activate_and_invite("demo", invitee, role);
        assert!(b.source().contains(&format!("Lanyard demo: {role}")));
    }
    b.screenshot("org-admin");
    // On a phone-sized window, wide tables scroll on their own: the page does not.
    let widths = b.call(
        "POST",
        "/execute/sync",
        json!({"script": "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]", "args": []}),
    );
    assert_eq!(
        widths[0], widths[1],
        "the organisation page is wider than the window"
    );
    b.resize(1280, 2400);
    b.screenshot("org-admin-wide");
    b.resize(420, 900);
    b.go(&format!("{base}/"));
    b.wait_for("You are signed in.");
    b.click("button.secondary");
    b.wait_for("You are signed out.");

    // The invitee opens the newest invitation (Globex) from the outbox and
    // creates the account on the join page.
    b.go(&format!(
        "{base}/dev/outbox?to={}",
        common::urlencode(invitee)
    ));
    b.wait_for("Join Globex");
    b.click("article.mail:nth-of-type(1) a");
    b.wait_for("Create your account");
    b.screenshot("org-join");
    assert!(b.source().contains(invitee));
    b.fill("#password", password);
    b.fill("#attr-name", "Ivan Invitee");
    b.click("button[type=submit]");
    b.wait_for("<h1>Globex</h1>");
    assert_eq!(b.url(), format!("{base}/orgs/globex"));
    assert!(b.source().contains("id=\"my-role\">member<"));
    // Then the other one (Acme), signed in now: one button.
    b.go(&format!(
        "{base}/dev/outbox?to={}",
        common::urlencode(invitee)
    ));
    b.wait_for("Join Acme");
    b.click("article.mail:nth-of-type(2) a");
    b.wait_for("Join Acme</button>");
    b.click("button[type=submit]");
    b.wait_for("<h1>Acme</h1>");
    assert!(b.source().contains("Lanyard demo: <strong>viewer</strong>"));
    b.screenshot("org-member");

    // Acme's id, as the organisations API tells the invitee.
    b.go(&format!("{base}/api/orgs"));
    let text = b.body_text();
    let json_text = &text[text.find('{').unwrap()..=text.rfind('}').unwrap()];
    let orgs: Value = serde_json::from_str(json_text).unwrap();
    let acme_id = orgs["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["slug"] == "acme")
        .and_then(|o| o["id"].as_str())
        .unwrap()
        .to_owned();
    assert_eq!(orgs["organisations"].as_array().unwrap().len(), 2);

    // The demo app: two organisations, so the picker; Acme it is.
    b.go(&format!("{base}/demo"));
    b.wait_for("Sign in with Keyring");
    b.click("a.button");
    b.wait_for("Which organisation?");
    b.screenshot("org-picker");
    let page = b.source();
    assert!(
        page.contains(">Acme</button>") && page.contains(">Globex</button>"),
        "{page}"
    );
    b.click(&format!("button[name=org][value='org:{acme_id}']"));
    b.wait_for("Signed in through Keyring");
    b.screenshot("demo-org");
    assert_eq!(b.text("#org-id"), acme_id);
    assert_eq!(b.text("#roles"), "viewer");
    assert_eq!(b.url(), format!("{base}/demo"));
}

impl Browser {
    /// Signs out of Lanyard from the account page.
    fn sign_out(&self, base: &str) {
        self.go(&format!("{base}/"));
        self.wait_for("You are signed in.");
        self.click("button.secondary");
        self.wait_for("You are signed out.");
    }

    /// Opens `path`, which sends a signed-out browser to the login page, and
    /// signs in there on the way back.
    fn sign_in_to(&self, base: &str, path: &str, email: &str, password: &str) {
        self.go(&format!("{base}{path}"));
        self.wait_for("Sign in");
        self.fill("#email", email);
        self.fill("#password", password);
        self.click("button[type=submit]");
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.url() != format!("{base}{path}") {
            assert!(Instant::now() < deadline, "still at {}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a script on the page and answers its result as a string.
    fn script(&self, script: &str) -> String {
        self.call(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }
}

#[test]
fn a_mandate_offered_and_accepted_on_the_pages_signs_a_member_in_for_the_principal_in_chromium() {
    let admin_token = "an-admin-token-of-at-least-32-characters";
    let server = common::serve(
        "127.0.0.1",
        &[("product_name", "Keyring"), ("admin_token", admin_token)],
    );
    let base = server.base.as_str();
    make_demo_a_service(base, admin_token);
    let b = Browser::start();
    let olivia = "olivia@acme.example";
    let ben = "ben@ledger.example";
    let mia = "mia@ledger.example";
    let password = "a long and memorable passphrase";

    // Ben creates Ledger, which uses the demo too, and invites Mia into it.
    b.sign_up_and_verify(base, ben, password);
    b.sign_in_to(base, "/orgs", ben, password);
    b.wait_for("Create an organisation");
    b.fill("#org-name", "Ledger");
    b.fill("#org-slug", "ledger");
    b.click("button[type=submit]");
    b.wait_for("<h1>Ledger</h1>");
    let ledger_id = b.text("#org-id");
    b.activate_and_invite("demo", mia, "editor");
    b.sign_out(base);

    // Mia joins Ledger by creating her account on the join page.
    b.go(&format!("{base}/dev/outbox?to={}", common::urlencode(mia)));
    b.wait_for("Join Ledger");
    b.click("article.mail:nth-of-type(1) a");
    b.wait_for("Create your account");
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for("<h1>Ledger</h1>");
    b.sign_out(base);

    // Olivia creates Acme, activates the demo and offers Ledger a mandate
    // for it: viewer, until a day about a month from now.
    b.sign_up_and_verify(base, olivia, password);
    b.sign_in_to(base, "/orgs", olivia, password);
    b.wait_for("Create an organisation");
    b.fill("#org-name", "Acme");
    b.fill("#org-slug", "acme");
    b.click("button[type=submit]");
    b.wait_for("<h1>Acme</h1>");
    let acme_id = b.text("#org-id");
    b.click("button[data-activate='demo']");
    b.wait_for("data-service-status=\"demo\">active<");
    b.wait_for("Offer a mandate");
    b.fill("#offer-agent", "ledger");
    b.click("#offer-service option[value='demo']");
    b.click("input[name=role][value='demo viewer']");
    let until = b.script(
        "const d = new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10);\
         document.querySelector('#offer-expires').value = d; return d;",
    );
    assert_eq!(until.len(), 10, "{until}");
    b.click("#offer-submit");
    b.wait_for(">offered<");
    b.script("document.querySelector('#given-heading').scrollIntoView(); return '';");
    b.screenshot("mandate-given");
    let mandate_id =
        b.script("return document.querySelector('[data-mandate-state]').dataset.mandateState;");
    assert!(mandate_id.starts_with("mnd_"), "{mandate_id}");
    let row = b.text(&format!("tr[data-mandate='{mandate_id}']"));
    assert!(
        row.contains("Ledger (ledger)") && row.contains("viewer") && row.contains(&until),
        "{row}"
    );
    b.sign_out(base);

    // Ben accepts it for Mia only.
    b.sign_in_to(base, "/orgs/ledger", ben, password);
    b.wait_for("Mandates received");
    b.script("document.querySelector('#received-heading').scrollIntoView(); return '';");
    b.screenshot("mandate-received");
    // On a phone-sized window the page still does not scroll sideways.
    let widths = b.call(
        "POST",
        "/execute/sync",
        json!({"script": "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]", "args": []}),
    );
    assert_eq!(widths[0], widths[1], "the page is wider than the window");
    let mia_sub = b.script(&format!(
        "return Array.from(document.querySelectorAll('input[name=delegate]'))\
         .find(i => i.parentElement.textContent.includes('{mia}')).value;"
    ));
    assert!(!mia_sub.is_empty());
    b.click("input[name=delegates][value=chosen]");
    b.click(&format!("input[name=delegate][value='{mia_sub}']"));
    b.click(&format!(
        "tr[data-mandate='{mandate_id}'] form.stack button[type=submit]"
    ));
    b.wait_for(&format!("data-mandate-state=\"{mandate_id}\">accepted<"));
    assert!(b.source().contains(&format!("Now: {mia}")));
    b.resize(1280, 1000);
    b.script("document.querySelector('#given-heading').scrollIntoView(); return '';");
    b.screenshot("mandate-accepted-wide");
    b.resize(420, 900);
    b.sign_out(base);

    // Mia signs in to the demo: her own Ledger, or Ledger for Acme.
    b.go(&format!("{base}/demo/"));
    b.wait_for("Sign in with Keyring");
    b.click("a.button");
    b.wait_for("id=\"email\"");
    b.fill("#email", mia);
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for("Which organisation?");
    b.screenshot("mandate-picker");
    let page = b.source();
    assert!(
        page.contains(">Ledger</button>") && page.contains(">Ledger on behalf of Acme</button>"),
        "{page}"
    );
    b.click(&format!("button[name=org][value='mandate:{mandate_id}']"));
    b.wait_for("Signed in through Keyring");
    b.screenshot("demo-mandate");
    assert_eq!(b.text("#org-id"), acme_id);
    assert_eq!(b.text("#roles"), "viewer");
    assert_eq!(b.text("#act-sub"), mia_sub);
    assert_eq!(b.text("#act-org"), ledger_id);
    assert_eq!(b.text("#mandate-id"), mandate_id);
    assert_eq!(b.text("#mandate-expires"), format!("{until} 00:00 UTC"));
    assert!(b.source().contains(&mia_sub));
}

#[test]
fn continue_with_a_provider_signs_in_to_the_demo_in_chromium() {
    // The fake provider at http://127.0.0.1:<port>, on its own runtime:
    // Chromium visits its page, and the app (allowed to reach it through
    // social_outbound_host_1) exchanges the code there.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let provider = rt.block_on(idp::Oidc::start_with(
        |addr| {
            let mut c = idp::OidcConfig::generic(
                &format!("http://127.0.0.1:{}", addr.port()),
                "lanyard-demo-rp",
                "provider-secret",
            );
            c.display_name = "Fake IdP".into();
            c
        },
        idp::Alg::Rs256,
    ));
    provider.set_browser_person(
        idp::Person::new("chromium-ada", "ada@example.com").with("name", "Ada Lovelace"),
    );
    let issuer = provider.config.issuer.clone();
    let admin_token = "an-admin-token-of-at-least-32-characters";
    let server = common::serve(
        "127.0.0.1",
        &[
            ("product_name", "Acme ID"),
            ("admin_token", admin_token),
            ("google_client_secret", "provider-secret"),
            ("social_outbound_host_1", issuer.as_str()),
        ],
    );
    let base = server.base.as_str();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent
        .post(format!("{base}/api/admin/connections"))
        .header("authorization", format!("Bearer {admin_token}"))
        .send_json(json!({
            "id": "fake-idp", "kind": "oidc", "name": "Fake IdP", "issuer": issuer,
            "client_id": "lanyard-demo-rp", "secret_variable": "google_client_secret",
            "settings": {"mapping": {"name": "name"}},
        }))
        .unwrap();
    let body: Value = res.body_mut().read_json().unwrap();
    assert_eq!(res.status(), 201, "{body}");

    let b = Browser::start();
    b.go(&format!("{base}/demo/"));
    b.wait_for("Sign in with Acme ID");
    b.click("a.button");
    // Lanyard's login page offers the provider.
    b.wait_for("Continue with Fake IdP");
    b.screenshot("social-login");
    b.click("a[href^='/social/fake-idp/start']");
    // The provider's own page.
    b.wait_for("Sign in as Ada Lovelace");
    assert!(b.url().starts_with(&issuer), "{}", b.url());
    b.click("#sign-in-as");
    // Back through the callback to /authorize, and on to the demo.
    b.wait_for("Signed in through Acme ID");
    b.screenshot("social-demo");
    let page = b.source();
    assert!(page.contains("ada@example.com"), "{page}");
    assert!(
        page.contains("\"idp\": \"fake-idp\"")
            || page.contains("&#34;idp&#34;: &#34;fake-idp&#34;")
            || page.contains("&quot;idp&quot;: &quot;fake-idp&quot;"),
        "{page}"
    );
    assert!(page.contains("fed"), "{page}");
    assert!(b.url().starts_with(&format!("{base}/demo")), "{}", b.url());
    // The provider exchanged one code for the app.
    assert_eq!(provider.token_requests().len(), 1);
    drop(rt);
}
