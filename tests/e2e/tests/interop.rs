//! Interop: `openid-client` v6 from npm (tests/interop) runs the whole code +
//! PKCE + refresh flow against Lanyard, served over real HTTP on a loopback
//! port by the test host.

use std::path::Path;
use std::process::Command;

mod common;

#[test]
fn openid_client_runs_the_code_flow_against_lanyard() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop");
    if !dir.join("node_modules/openid-client").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the interop test (Node.js 20+)");
        assert!(status.success(), "npm ci failed in tests/interop");
    }

    // The app, served from a background runtime while node runs.
    let admin = "interop-admin-token-0123456789abcdef";
    let server = common::serve("127.0.0.1", &[("admin_token", admin)]);
    let base = server.base.clone();

    let out = Command::new("node")
        .arg("flow.mjs")
        .current_dir(&dir)
        .env("LANYARD_URL", &base)
        .env("LANYARD_ADMIN_TOKEN", admin)
        .output()
        .expect("node is needed for the interop test");
    assert!(!server.task.is_finished(), "the host stopped serving");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openid-client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}
