//! Interop: `openid-client` v6 from npm (tests/interop) runs the whole code +
//! PKCE + refresh flow against Lanyard, served over real HTTP on a loopback
//! port by the test host.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use spin_test_host::{HostConfig, SpinHost, built_wasm_dir, repo_manifest};

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let data = tempfile::tempdir().unwrap();
    let admin = "interop-admin-token-0123456789abcdef";
    let env = [
        ("SPIN_VARIABLE_ISSUER", base.as_str()),
        ("SPIN_VARIABLE_DEV_MODE", "true"),
        ("SPIN_VARIABLE_ADMIN_TOKEN", admin),
        ("SPIN_VARIABLE_ARGON2_MEMORY_KIB", "8192"),
        ("SPIN_VARIABLE_ARGON2_ITERATIONS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let host = runtime
        .block_on(SpinHost::new(HostConfig {
            manifest: repo_manifest(),
            wasm_dir: Some(built_wasm_dir()),
            data_dir: data.path().to_owned(),
            env,
            ..Default::default()
        }))
        .unwrap();
    let server = runtime.spawn(Arc::new(host).serve(listener));

    let out = Command::new("node")
        .arg("flow.mjs")
        .current_dir(&dir)
        .env("LANYARD_URL", &base)
        .env("LANYARD_ADMIN_TOKEN", admin)
        .output()
        .expect("node is needed for the interop test");
    assert!(!server.is_finished(), "the host stopped serving");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openid-client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}
