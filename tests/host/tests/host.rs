//! The test host's own tests: real requests through `SpinHost::handle` (and
//! once through the binary) to the probe component (`tests/probe`), checking
//! that the host behaves as Spin does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use spin_test_host::{HostConfig, SpinHost, built_wasm_dir};

const CLIENT: &str = "127.0.0.1:50123";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn config(manifest: &str, data_dir: &tempfile::TempDir) -> HostConfig {
    HostConfig {
        manifest: fixture(manifest),
        wasm_dir: Some(built_wasm_dir()),
        data_dir: data_dir.path().to_path_buf(),
        ..Default::default()
    }
}

async fn host_with(cfg: HostConfig) -> SpinHost {
    match SpinHost::new(cfg).await {
        Ok(host) => host,
        Err(e) => panic!("host failed to start: {e:?}"),
    }
}

async fn probe_host() -> (SpinHost, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with(config("probe.toml", &dir)).await;
    (host, dir)
}

async fn get(host: &SpinHost, path: &str) -> (StatusCode, String) {
    let req = Request::get(path)
        .header("host", "test.local")
        .body(Bytes::new())
        .unwrap();
    let resp = host.handle(req, CLIENT.parse().unwrap()).await;
    (resp.status(), body_text(resp))
}

fn body_text(resp: Response<Bytes>) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

/// The probe's `/headers` answer as a map (last value wins).
fn headers_of(body: &str) -> HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn header_probe(host: &SpinHost, path: &str) -> HashMap<String, String> {
    let (status, body) = get(host, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    headers_of(&body)
}

#[tokio::test]
async fn exact_routes_beat_wildcards_and_the_longest_prefix_wins() {
    let (host, _dir) = probe_host().await;
    let h = header_probe(&host, "/probe/headers").await;
    assert_eq!(h["spin-raw-component-route"], "/probe/headers");
    let h = header_probe(&host, "/probe/headers/deep/x/y").await;
    assert_eq!(h["spin-raw-component-route"], "/probe/headers/deep/...");
    let h = header_probe(&host, "/probe/headers/other").await;
    assert_eq!(h["spin-raw-component-route"], "/probe/...");

    let dir = tempfile::tempdir().unwrap();
    let host = host_with(config("catchall.toml", &dir)).await;
    let h = header_probe(&host, "/probe/headers/a/b/c").await;
    assert_eq!(h["spin-raw-component-route"], "/probe/headers/a/b/...");
    let h = header_probe(&host, "/probe/headers/a/c").await;
    assert_eq!(h["spin-raw-component-route"], "/probe/headers/a/...");
    let h = header_probe(&host, "/probe/headers/z").await;
    assert_eq!(h["spin-raw-component-route"], "/...");
    assert_eq!(h["spin-component-route"], "");
    assert_eq!(h["spin-path-info"], "/probe/headers/z");
}

#[tokio::test]
async fn spin_headers_reach_the_guest() {
    let (host, _dir) = probe_host().await;
    let h = header_probe(&host, "/probe/headers/user/42/rest/of/it?x=1&y=2").await;
    assert_eq!(h["spin-path-match-user-id"], "42");
    assert_eq!(h["spin-path-info"], "/rest/of/it");
    assert_eq!(h["spin-matched-route"], "/probe/headers/user/:user_id/...");
    assert_eq!(
        h["spin-raw-component-route"],
        "/probe/headers/user/:user_id/..."
    );
    assert_eq!(h["spin-component-route"], "/probe/headers/user/:user_id");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(
        h["spin-full-url"],
        "http://test.local/probe/headers/user/42/rest/of/it?x=1&y=2"
    );
    assert_eq!(h["spin-client-addr"], CLIENT);

    // An exact route: empty path info; a trailing slash is kept.
    let h = header_probe(&host, "/probe/headers").await;
    assert_eq!(h["spin-path-info"], "");
    assert_eq!(h["spin-matched-route"], "/probe/headers");
    assert_eq!(h["spin-component-route"], "/probe/headers");
    let h = header_probe(&host, "/probe/headers/deep/").await;
    assert_eq!(h["spin-path-info"], "/");
    assert_eq!(h["spin-component-route"], "/probe/headers/deep");
}

#[tokio::test]
async fn private_and_unknown_routes_are_404() {
    let (host, _dir) = probe_host().await;
    for path in ["/", "/hidden", "/nope", "/prob", "/.well-known/spin/nope"] {
        let (status, body) = get(&host, path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body, "", "{path}");
    }
    let (status, body) = get(&host, "/.well-known/spin/health").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "OK"));
}

#[tokio::test]
async fn key_value_and_sqlite_follow_the_manifest() {
    let (host, dir) = probe_host().await;
    assert_eq!(
        get(&host, "/probe/kv/default").await,
        (StatusCode::OK, "ok:probe-value".to_owned())
    );
    assert_eq!(
        get(&host, "/probe/db/default").await,
        (StatusCode::OK, "ok:1".to_owned())
    );
    assert_eq!(
        get(&host, "/probe/db/default").await,
        (StatusCode::OK, "ok:2".to_owned())
    );
    assert!(dir.path().join("sqlite_key_value.db").is_file());
    assert!(dir.path().join("sqlite_db.db").is_file());

    // Not declared by the component: access-denied, never a silent success.
    for path in [
        "/probe/kv/sessions",
        "/locked/probe/kv/default",
        "/probe/db/other",
        "/locked/probe/db/default",
    ] {
        let (status, body) = get(&host, path).await;
        assert_eq!(status, 500, "{path}: {body}");
        assert!(body.contains("AccessDenied"), "{path}: {body}");
    }
}

#[tokio::test]
async fn data_persists_across_hosts_in_the_same_data_dir() {
    let (host, dir) = probe_host().await;
    assert_eq!(get(&host, "/probe/db/default").await.1, "ok:1");
    drop(host);
    let host = host_with(config("probe.toml", &dir)).await;
    assert_eq!(get(&host, "/probe/db/default").await.1, "ok:2");
}

#[tokio::test]
async fn each_request_gets_its_own_sqlite_connection() {
    // As in Spin's in-process SQLite: a TEMP table dies with the request's
    // connection, while the database file itself persists.
    let (host, _dir) = probe_host().await;
    for _ in 0..3 {
        assert_eq!(get(&host, "/probe/db-temp/default").await.1, "temp:1");
    }
    assert_eq!(get(&host, "/probe/db/default").await.1, "ok:1");
    assert_eq!(get(&host, "/probe/db/default").await.1, "ok:2");
}

#[tokio::test]
async fn the_host_counts_the_sql_statements_guests_run() {
    let (host, _dir) = probe_host().await;
    assert_eq!(host.sql_statements(), 0);
    // CREATE, INSERT and SELECT.
    assert_eq!(get(&host, "/probe/db/default").await.1, "ok:1");
    assert_eq!(host.sql_statements(), 3);
    // Key-value operations and a refused open are not SQL statements.
    assert_eq!(get(&host, "/probe/kv/default").await.1, "ok:probe-value");
    assert_eq!(get(&host, "/probe/db/other").await.0, 500);
    assert_eq!(host.sql_statements(), 3);
    // Counting changes nothing the guest sees.
    assert_eq!(get(&host, "/probe/db/default").await.1, "ok:2");
    assert_eq!(host.sql_statements(), 6);
}

#[tokio::test]
async fn an_undefined_store_stops_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let err = SpinHost::new(config("unknown_store.toml", &dir))
        .await
        .err()
        .expect("the host must refuse an unknown store label");
    assert!(format!("{err:#}").contains("\"sessions\""), "{err:#}");
}

/// A tiny upstream: answers `mock:<path> host=<Host header>`.
async fn mock_server() -> SocketAddr {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let host = req
                        .headers()
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let body = format!("mock:{} host={host}", req.uri().path());
                    Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::from(body))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(wasmtime_wasi_http::io::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn outbound_http_is_limited_to_allowed_hosts() {
    let mock = mock_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("probe.toml", &dir);
    cfg.outbound_overrides
        .insert("accounts.google.com:443".to_owned(), mock);
    let host = host_with(cfg).await;

    // Allowed, and sent to the mock instead of Google.
    let (status, body) = get(&host, "/probe/http?url=https://accounts.google.com/token").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "200 mock:/token host=accounts.google.com");

    // Allowed by `http://127.0.0.1:*`.
    let (status, body) = get(&host, &format!("/probe/http?url=http://{mock}/direct")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("200 mock:/direct"), "{body}");

    // Not allowed: denied before any connection is made.
    for path in [
        "/probe/http?url=https://evil.example.com/".to_owned(),
        "/probe/http?url=http://accounts.google.com/token".to_owned(),
        format!("/locked/probe/http?url=http://{mock}/direct"),
    ] {
        let (status, body) = get(&host, &path).await;
        assert_eq!(status, 502, "{path}: {body}");
        assert!(body.contains("HttpRequestDenied"), "{path}: {body}");
    }
}

#[tokio::test]
async fn every_request_gets_a_fresh_instance() {
    let (host, _dir) = probe_host().await;
    for _ in 0..3 {
        assert_eq!(
            get(&host, "/probe/counter").await,
            (StatusCode::OK, "1".to_owned())
        );
    }
}

#[tokio::test]
async fn variables_follow_spin_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("probe.toml", &dir);
    cfg.env.insert(
        "SPIN_VARIABLE_ISSUER".to_owned(),
        "https://id.example.com".to_owned(),
    );
    let host = host_with(cfg).await;
    assert_eq!(
        get(&host, "/probe/var/issuer").await,
        (StatusCode::OK, "https://id.example.com".to_owned())
    );
    // A template over an app variable's default.
    assert_eq!(
        get(&host, "/probe/var/greeting").await,
        (StatusCode::OK, "hello, world".to_owned())
    );
    assert_eq!(
        get(&host, "/probe/var/token").await,
        (StatusCode::OK, String::new())
    );

    // Only the component's own variables are visible.
    let (status, body) = get(&host, "/probe/var/api_token").await;
    assert_eq!(status, 500);
    assert!(body.contains("Undefined"), "{body}");
    let (status, body) = get(&host, "/locked/probe/var/issuer").await;
    assert_eq!(status, 500);
    assert!(body.contains("Undefined"), "{body}");
    let (status, body) = get(&host, "/probe/var/Issuer").await;
    assert_eq!(status, 500);
    assert!(body.contains("InvalidName"), "{body}");
    // Every read with a valid name is counted, defined or not (what real
    // Spin's host pays for); the badly named one never reached the store.
    assert_eq!(host.variable_reads(), 5);
}

#[tokio::test]
async fn a_variable_read_costs_host_time_as_on_spin() {
    assert_eq!(
        spin_test_host::SPIN_VARIABLE_READ_COST,
        std::time::Duration::from_micros(20)
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("probe.toml", &dir);
    // Large enough to stand out from the request itself.
    cfg.variable_read_cost = Some(std::time::Duration::from_millis(200));
    let host = host_with(cfg).await;
    let t = std::time::Instant::now();
    assert_eq!(get(&host, "/probe/var/greeting").await.0, StatusCode::OK);
    assert!(t.elapsed() >= std::time::Duration::from_millis(200));
    // A request that reads no variable pays nothing for them.
    let t = std::time::Instant::now();
    assert_eq!(get(&host, "/probe/counter").await.0, StatusCode::OK);
    assert!(t.elapsed() < std::time::Duration::from_millis(200));
}

#[tokio::test]
async fn a_required_variable_without_a_value_stops_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let err = SpinHost::new(config("required.toml", &dir))
        .await
        .err()
        .expect("the host must refuse to start");
    let msg = format!("{err:#}");
    assert!(msg.contains("signing_secret"), "{msg}");

    let mut cfg = config("required.toml", &dir);
    cfg.env.insert(
        "SPIN_VARIABLE_SIGNING_SECRET".to_owned(),
        "s3cret".to_owned(),
    );
    let host = host_with(cfg).await;
    assert_eq!(get(&host, "/probe/var/signing_secret").await.1, "s3cret");
}

#[tokio::test]
async fn a_trap_is_a_500_and_the_host_keeps_serving() {
    let (host, _dir) = probe_host().await;
    let (status, body) = get(&host, "/probe/trap").await;
    assert_eq!(status, 500);
    assert_eq!(body, "");
    assert_eq!(
        get(&host, "/probe/counter").await,
        (StatusCode::OK, "1".to_owned())
    );
}

#[tokio::test]
async fn request_bodies_reach_the_guest() {
    let (host, _dir) = probe_host().await;
    let req = Request::post("/probe/echo")
        .body(Bytes::from(vec![b'x'; 100_000]))
        .unwrap();
    let resp = host.handle(req, CLIENT.parse().unwrap()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body_text(resp), "100000");
}

#[test]
fn the_binary_serves_over_http() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--manifest")
        .arg(fixture("probe.toml"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--wasm-dir")
        .arg(built_wasm_dir())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the binary never printed `listening on`");

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(
            b"GET /probe/headers HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("spin-full-url: http://example.test/probe/headers"),
        "{response}"
    );
    assert!(
        response.contains("spin-client-addr: 127.0.0.1:"),
        "{response}"
    );
    drop(child);
}

/// The repository's own `spin.toml` starts on the host: every component's
/// imports are provided, every store and variable resolves. Skipped when the
/// build script was told to build only some packages.
#[tokio::test]
async fn the_repo_manifest_starts() {
    let built = env!("LANYARD_WASM_PACKAGES_BUILT");
    if !built.split_whitespace().any(|p| p == "lanyard-login") {
        eprintln!("skipped: only {built} were built (LANYARD_WASM_PACKAGES)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let host = host_with(HostConfig {
        manifest: spin_test_host::repo_manifest(),
        wasm_dir: Some(built_wasm_dir()),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .await;
    let (status, body) = get(&host, "/.well-known/spin/health").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "OK"));
}

/// The probe's `/probe/http` answer for a successful call: the status and the
/// body of the outbound response.
fn outbound_answer(body: &str) -> (&str, &str) {
    body.split_once(' ').unwrap_or((body, ""))
}

/// Local service chaining, as in Spin: `http://<component>.spin.internal`
/// runs that component in-process, if the caller's allow-list names it (or
/// `*.spin.internal`); its answer is the outbound response.
#[tokio::test]
async fn service_chaining_runs_the_named_component_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with(config("chaining.toml", &dir)).await;

    // `backend` has no public route, yet answers a chained request, with its
    // own variables.
    assert_eq!(get(&host, "/probe/var/who").await.0, StatusCode::NOT_FOUND);
    for caller in ["caller", "wild"] {
        let path = format!("/{caller}/probe/http?url=http://backend.spin.internal/probe/var/who");
        let (status, body) = get(&host, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(outbound_answer(&body), ("200", "backend"), "{path}");
    }

    // The path and query as sent, with the headers Spin gives a chained
    // request: a match of the whole path on `/...`, no `Host`.
    let (status, body) = get(
        &host,
        "/caller/probe/http?url=http://backend.spin.internal/x/probe/headers/y/?q=1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (inner_status, inner) = outbound_answer(&body);
    assert_eq!(inner_status, "200", "{body}");
    let h = headers_of(inner);
    assert_eq!(h["spin-path-info"], "/x/probe/headers/y/");
    assert_eq!(
        h["spin-full-url"],
        "http://localhost/x/probe/headers/y/?q=1"
    );
    assert_eq!(h["spin-matched-route"], "/...");
    assert_eq!(h["spin-raw-component-route"], "/...");
    assert_eq!(h["spin-component-route"], "");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(h["spin-client-addr"], "0.0.0.0:0");
    assert!(!h.contains_key("host"), "{inner}");

    // A fresh instance each time.
    for _ in 0..2 {
        let (_, body) = get(
            &host,
            "/caller/probe/http?url=http://backend.spin.internal/probe/counter",
        )
        .await;
        assert_eq!(outbound_answer(&body), ("200", "1"));
    }

    // A trap in the target is a 500 for the caller, which keeps running.
    let (status, body) = get(
        &host,
        "/caller/probe/http?url=http://backend.spin.internal/probe/trap",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(outbound_answer(&body), ("500", ""));
}

#[tokio::test]
async fn service_chaining_needs_the_allow_list_and_a_known_component() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with(config("chaining.toml", &dir)).await;

    // Not in the caller's allowed_outbound_hosts: denied, whether the
    // component exists or not.
    for path in [
        "/caller/probe/http?url=http://wild.spin.internal/probe/noop",
        "/caller/probe/http?url=http://nope.spin.internal/probe/noop",
        "/caller/probe/http?url=https://backend.spin.internal/probe/noop",
        "/plain/probe/http?url=http://backend.spin.internal/probe/noop",
    ] {
        let (status, body) = get(&host, path).await;
        assert_eq!(status, 502, "{path}: {body}");
        assert!(body.contains("HttpRequestDenied"), "{path}: {body}");
    }

    // Allowed, but no such HTTP component: an unknown id, or a component
    // that no trigger uses.
    for target in ["nope", "orphan"] {
        let path = format!("/wild/probe/http?url=http://{target}.spin.internal/probe/var/who");
        let (status, body) = get(&host, &path).await;
        assert_eq!(status, 502, "{path}: {body}");
        assert!(body.contains("DestinationNotFound"), "{path}: {body}");
    }

    // The wildcard reaches every HTTP component, public ones included, and
    // the path is not matched against the target's routes.
    let (status, body) = get(
        &host,
        "/wild/probe/http?url=http://caller.spin.internal/elsewhere/probe/noop",
    )
    .await;
    assert_eq!(
        (status, outbound_answer(&body)),
        (StatusCode::OK, ("200", ""))
    );
}
