//! Interop: `openid-client` v6 from npm (tests/interop) runs the whole code +
//! PKCE + refresh flow against the `spin-test-host` binary serving Lanyard.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

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

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let data = tempfile::tempdir().unwrap();
    let admin = "interop-admin-token-0123456789abcdef";
    let mut host = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data.path())
        .env("SPIN_VARIABLE_ISSUER", &base)
        .env("SPIN_VARIABLE_DEV_MODE", "true")
        .env("SPIN_VARIABLE_ADMIN_TOKEN", admin)
        .env("SPIN_VARIABLE_ARGON2_MEMORY_KIB", "8192")
        .env("SPIN_VARIABLE_ARGON2_ITERATIONS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(host.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on"), "{line}");

    let out = Command::new("node")
        .arg("flow.mjs")
        .current_dir(&dir)
        .env("LANYARD_URL", &base)
        .env("LANYARD_ADMIN_TOKEN", admin)
        .output()
        .expect("node is needed for the interop test");
    let _ = host.kill();
    let _ = host.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openid-client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}
