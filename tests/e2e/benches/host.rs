//! Lanyard's benchmark: component sizes, instantiation, request latency
//! through the Spin-compatible host, and the login request against a native
//! argon2id hash at the same parameters.
//!
//! `cargo bench -p lanyard-e2e` runs it in full and prints a table (copy the
//! figures into docs/performance.md, which measures it in the test profile:
//! `cargo test -p lanyard-e2e --bench host --config
//! 'profile.dev.package.lanyard-e2e.opt-level=2' -- --bench`, since this
//! package is otherwise unoptimised). Under `cargo test` it runs a short pass
//! of the same code, so that CI keeps it working. The signing section uses the
//! host's probe component (`tests/probe`, served by
//! `tests/host/fixtures/probe.toml`), which the host's build script builds with
//! the app's components.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use spin_test_host::{HostConfig, SpinHost, built_wasm_dir, repo_manifest};

/// The end-to-end tests' fake upstream providers (social-callback section).
#[path = "../tests/common/idp.rs"]
mod idp;
/// Issue 14's ratios against the platform's floors (section `ratios`).
mod ratios;
/// Signature implementations side by side inside wasm (in `ratios`).
mod sig;

const COMPONENTS: &[&str] = &["login", "token", "social", "profile", "orgs"];

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len().max(1);
    let at = |q: f64| samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    let mean = samples.iter().sum::<Duration>() / n as u32;
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        mean,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    // `LANYARD_BENCH=refresh,verifier` runs only the named sections.
    let only = std::env::var("LANYARD_BENCH").unwrap_or_default();
    // One core, as the targets are stated: the runtime is single-threaded and
    // the whole process (SQLite's blocking threads too) is pinned to one CPU.
    pin_to_one_cpu()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(full, &only))
}

/// Pins this process, and the threads it starts later, to the first CPU it
/// may run on.
fn pin_to_one_cpu() -> anyhow::Result<()> {
    // SAFETY: plain libc calls on a zeroed, stack-owned cpu_set_t.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        anyhow::ensure!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0,
            "sched_getaffinity failed"
        );
        let first = (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &set))
            .ok_or_else(|| anyhow::anyhow!("no CPU to run on"))?;
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(first, &mut one);
        anyhow::ensure!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0,
            "sched_setaffinity failed"
        );
    }
    Ok(())
}

async fn app(vars: &[(&str, &str)], data: &std::path::Path) -> anyhow::Result<SpinHost> {
    app_from(repo_manifest(), vars, data).await
}

/// The app's `spin.toml` with the probe component (`tests/probe`) mounted at
/// `/probe/...` beside it, written into `data`: the platform's floors
/// measured on the same host as Lanyard's requests.
fn bench_manifest(data: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let mut manifest = std::fs::read_to_string(repo_manifest())?;
    manifest.push_str(
        r#"
[[trigger.http]]
route = "/probe/..."
component = "probe"

[component.probe]
source = "target/wasm32-wasip2/release/lanyard_probe.wasm"
sqlite_databases = ["default"]
"#,
    );
    let path = data.join("spin-with-probe.toml");
    std::fs::write(&path, manifest)?;
    Ok(path)
}

async fn app_from(
    manifest: std::path::PathBuf,
    vars: &[(&str, &str)],
    data: &std::path::Path,
) -> anyhow::Result<SpinHost> {
    SpinHost::new(HostConfig {
        manifest,
        wasm_dir: Some(built_wasm_dir()),
        data_dir: data.to_owned(),
        env: vars
            .iter()
            .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.to_string()))
            .collect(),
        ..Default::default()
    })
    .await
}

async fn run(full: bool, only: &str) -> anyhow::Result<()> {
    // Not in the default run: a loop of one request, for `perf record`.
    if let Ok(path) = std::env::var("LANYARD_BENCH_LOOP") {
        return loop_benchmark(&path, if full { 20_000 } else { 100 }).await;
    }
    let wanted = |section: &str| only.is_empty() || only.split(',').any(|s| s == section);
    let (n_inst, n_req, n_login) = if full { (500, 5000, 30) } else { (20, 200, 3) };
    println!(
        "# Lanyard benchmark ({} run)\n",
        if full { "full" } else { "short" }
    );

    if wanted("foundation") {
        foundation_benchmark(n_inst, n_req).await?;
    }
    if wanted("login") {
        login_benchmark(n_login).await?;
    }
    if wanted("signing") {
        signing_benchmark(if full { 2000 } else { 50 }).await?;
    }
    if wanted("verifier") {
        verifier_benchmark(if full { 20_000 } else { 200 })?;
    }
    if wanted("refresh") {
        println!("\n## Refresh-token grant through the host, one core\n");
        println!(
            "| POST /token (refresh_token) | p50 one at a time | p99 | req/s | p50 with 8 in flight | p99 | req/s | target |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        for alg in ["ES256", "EdDSA"] {
            refresh_benchmark(if full { 2000 } else { 30 }, alg).await?;
        }
    }
    if wanted("refresh-b2b") {
        refresh_b2b_benchmark(if full { 2000 } else { 30 }).await?;
    }
    if wanted("ratios") {
        ratios::ratios_benchmark(full).await?;
    }
    if wanted("social-callback") {
        social_callback_benchmark(if full { 1000 } else { 10 }).await?;
    }
    Ok(())
}

/// `n` GETs of `path` one after another, on the app with keys from
/// variables and the probe beside it (`LANYARD_BENCH_LOOP=/probe/noop`,
/// `=/.well-known/openid-configuration`, or `=/login` for a hundredth as
/// many password sign-ins): a steady load to profile.
async fn loop_benchmark(path: &str, n: usize) -> anyhow::Result<()> {
    let setup = refresh_setup("EdDSA", 1, false).await?;
    // `/login`: the refresh person's password sign-in, as a form post.
    let csrf = csrf_cookie(&setup.host).await?;
    let make = || {
        if path == "/login" {
            login_request(&csrf)
        } else {
            Ok(Request::get(path).body(Bytes::new())?)
        }
    };
    let ok =
        |s: StatusCode| s == StatusCode::OK || (path == "/login" && s == StatusCode::SEE_OTHER);
    let n = if path == "/login" { n / 100 } else { n };
    let started = Instant::now();
    for _ in 0..n {
        let res = setup.host.handle(make()?, "127.0.0.1:1".parse()?).await;
        anyhow::ensure!(ok(res.status()), "{path}: {}", res.status());
    }
    let took = started.elapsed();
    println!(
        "{n} × GET {path}: {:.1} µs each, {:.0}/s",
        took.as_secs_f64() * 1e6 / n as f64,
        n as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// Component sizes, instantiation, and cheap requests through the host.
async fn foundation_benchmark(n_inst: usize, n_req: usize) -> anyhow::Result<()> {
    println!("## Component sizes (wasm32-wasip2, release, stripped)\n");
    println!("| component | size | target |");
    println!("| --- | ---: | --- |");
    for c in COMPONENTS {
        let bytes = std::fs::metadata(built_wasm_dir().join(format!("lanyard_{c}.wasm")))?.len();
        let mib = bytes as f64 / (1024.0 * 1024.0);
        println!(
            "| {c} | {:.2} MiB ({bytes} B) | ≤ 2 MiB {} |",
            mib,
            if mib <= 2.0 { "✓" } else { "✗" }
        );
    }

    let data = tempfile::tempdir()?;
    let host = app(
        &[("issuer", "https://id.example.test"), ("dev_mode", "true")],
        data.path(),
    )
    .await?;

    println!("\n## Instantiation (fresh instance, as per request)\n");
    println!("| component | p50 | p99 | mean |");
    println!("| --- | ---: | ---: | ---: |");
    for c in COMPONENTS {
        let mut samples = Vec::with_capacity(n_inst);
        for _ in 0..n_inst {
            let t = Instant::now();
            host.instantiate(c).await?;
            samples.push(t.elapsed());
        }
        let s = stats(samples);
        println!("| {c} | {} | {} | {} |", ms(s.p50), ms(s.p99), ms(s.mean));
    }

    // Variable reads are counted, since on real Spin each costs 20–40 µs of
    // host time that this host's lookup does not (issue 14).
    println!("\n## Requests through the host, one core, sequential\n");
    println!("| request | p50 | p99 | req/s | variable reads | target |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    for (label, path, target) in [
        (
            "GET /.well-known/openid-configuration",
            "/.well-known/openid-configuration",
            Some(1.0),
        ),
        ("GET /jwks.json (dev keys from SQLite)", "/jwks.json", None),
        ("GET /static/lanyard.css", "/static/lanyard.css", None),
        ("GET /login (page)", "/login", None),
    ] {
        let mut samples = Vec::with_capacity(n_req);
        let mut reads = 0;
        for i in 0..n_req + 50 {
            let req = Request::get(path).body(Bytes::new())?;
            let before = host.variable_reads();
            let t = Instant::now();
            let res = host.handle(req, "127.0.0.1:1".parse()?).await;
            let took = t.elapsed();
            anyhow::ensure!(res.status() == StatusCode::OK, "{path}: {}", res.status());
            if i >= 50 {
                samples.push(took);
                reads = host.variable_reads() - before;
            }
        }
        let s = stats(samples);
        let verdict = target.map(|t: f64| {
            format!(
                "p50 ≤ {t} ms {}",
                if s.p50.as_secs_f64() * 1e3 <= t {
                    "✓"
                } else {
                    "✗"
                }
            )
        });
        println!(
            "| {label} | {} | {} | {:.0} | {reads} | {} |",
            ms(s.p50),
            ms(s.p99),
            1.0 / s.mean.as_secs_f64(),
            verdict.unwrap_or_default()
        );
    }

    Ok(())
}

/// ES256, EdDSA and RS256 (2048 bits) sign and verify with jwt-simple (pure
/// Rust): natively, and inside a component (the probe times its own loop with
/// the wasm clock).
async fn signing_benchmark(n: u32) -> anyhow::Result<()> {
    use jwt_simple::prelude::*;
    fn per_sec(f: impl Fn(), n: u32) -> f64 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        f64::from(n) / t.elapsed().as_secs_f64()
    }
    let claims = || {
        Claims::create(jwt_simple::prelude::Duration::from_secs(300))
            .with_issuer("https://id.example.com")
            .with_subject("user")
    };
    let es = ES256KeyPair::generate();
    let ed = Ed25519KeyPair::generate();
    let (es_pub, ed_pub) = (es.public_key(), ed.public_key());
    let es_t = es.sign(claims()).map_err(anyhow::Error::msg)?;
    let ed_t = ed.sign(claims()).map_err(anyhow::Error::msg)?;
    let native = [
        per_sec(|| drop(es.sign(claims())), n),
        per_sec(
            || drop(es_pub.verify_token::<NoCustomClaims>(&es_t, None)),
            n,
        ),
        per_sec(|| drop(ed.sign(claims())), n),
        per_sec(
            || drop(ed_pub.verify_token::<NoCustomClaims>(&ed_t, None)),
            n,
        ),
    ];

    let data = tempfile::tempdir()?;
    anyhow::ensure!(
        built_wasm_dir().join("lanyard_probe.wasm").is_file(),
        "the signing section needs the probe component: build it with the app \
         (LANYARD_WASM_PACKAGES unset, or naming lanyard-probe)"
    );
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/fixtures/probe.toml");
    let probe = SpinHost::new(HostConfig {
        manifest: fixture,
        wasm_dir: Some(built_wasm_dir()),
        data_dir: data.path().to_owned(),
        ..Default::default()
    })
    .await?;
    let res = probe
        .handle(
            Request::get(format!("/probe/jwt?n={}", n.min(500))).body(Bytes::new())?,
            "127.0.0.1:1".parse()?,
        )
        .await;
    let body = String::from_utf8_lossy(res.body()).into_owned();
    let wasm: Vec<f64> = body
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok())
        .map(|us| 1e6 / us)
        .collect();
    anyhow::ensure!(wasm.len() == 4, "probe answered {body:?}");

    let cold = probe
        .handle(
            Request::get("/probe/jwt-cold").body(Bytes::new())?,
            "127.0.0.1:1".parse()?,
        )
        .await;
    let cold: Vec<String> = String::from_utf8_lossy(cold.body())
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(cold.len() == 4, "probe answered {cold:?}");

    // RS256: µs per key generation (mean of `keys`), private-JWK load,
    // signature and verification; natively, then in wasm.
    let keys = if n > 100 { 5 } else { 1 };
    let rsa_n = n.min(200);
    let micros = |f: &mut dyn FnMut(), times: u32| {
        let t = Instant::now();
        for _ in 0..times {
            f();
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(times)
    };
    let mut rs = None;
    let keygen = micros(&mut || rs = RS256KeyPair::generate(2048).ok(), keys);
    let rs = rs.ok_or_else(|| anyhow::anyhow!("RSA key generation failed"))?;
    let rs_jwk = rs.to_jwk();
    let rs_pub = rs.public_key();
    let rs_t = rs.sign(claims()).map_err(anyhow::Error::msg)?;
    let rsa_native = [
        keygen,
        micros(&mut || drop(RS256KeyPair::from_jwk(&rs_jwk)), rsa_n.min(50)),
        micros(&mut || drop(rs.sign(claims())), rsa_n),
        micros(
            &mut || drop(rs_pub.verify_token::<NoCustomClaims>(&rs_t, None)),
            rsa_n,
        ),
    ];
    let res = probe
        .handle(
            Request::get(format!("/probe/rsa?n={rsa_n}&keys={keys}")).body(Bytes::new())?,
            "127.0.0.1:1".parse()?,
        )
        .await;
    let body = String::from_utf8_lossy(res.body()).into_owned();
    let rsa_wasm: Vec<f64> = body
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok())
        .collect();
    anyhow::ensure!(rsa_wasm.len() == 4, "probe answered {body:?}");

    println!("\n## JWT signatures (jwt-simple 0.15, pure Rust), one core\n");
    println!("| operation | native /s | in wasm /s | wasm cost |");
    println!("| --- | ---: | ---: | ---: |");
    for (i, op) in ["ES256 sign", "ES256 verify", "EdDSA sign", "EdDSA verify"]
        .iter()
        .enumerate()
    {
        println!(
            "| {op} | {:.0} | {:.0} | {:.1}× |",
            native[i],
            wasm[i],
            native[i] / wasm[i]
        );
    }
    for (i, op) in [(2, "RS256-2048 sign"), (3, "RS256-2048 verify")] {
        let (native, wasm) = (1e6 / rsa_native[i], 1e6 / rsa_wasm[i]);
        println!("| {op} | {native:.0} | {wasm:.0} | {:.1}× |", native / wasm);
    }
    println!(
        "\nRS256-2048, µs per operation (native / wasm): sign {:.0} / {:.0}, verify {:.0} / {:.0}, \
         loading a private JWK {:.0} / {:.0}, generating a key (mean of {keys}) {:.0} / {:.0}.",
        rsa_native[2],
        rsa_wasm[2],
        rsa_native[3],
        rsa_wasm[3],
        rsa_native[1],
        rsa_wasm[1],
        rsa_native[0],
        rsa_wasm[0]
    );
    println!(
        "\nIn a fresh instance (as every Spin request is), the first ES256 operation also builds p256's \
         base-point table: key generation took {} µs, the first signature {} µs, the second {} µs, \
         and loading a private JWK {} µs.",
        cold[0], cold[1], cold[2], cold[3]
    );
    Ok(())
}

/// The verifier apps use: tokens/s per core, first sight and repeat.
fn verifier_benchmark(n: u32) -> anyhow::Result<()> {
    use jwt_simple::prelude::*;
    use lanyard_verifier::{Fetched, TokenKind, Verifier};
    /// How often an API sees each access token in the mixed workload: a few
    /// calls within the token's lifetime.
    const USES: u32 = 5;
    let iss = "https://id.example.com";
    let options = HeaderOptions {
        signature_type: Some("at+jwt".into()),
        ..Default::default()
    };
    let claims = || {
        Claims::create(jwt_simple::prelude::Duration::from_secs(3600))
            .with_issuer(iss)
            .with_subject("u")
            .with_audience("app")
    };
    let distinct = (n / USES).max(1);
    let mut rows = Vec::new();
    for alg in ["ES256", "EdDSA"] {
        // `distinct` different tokens, as many users' sessions would bring.
        let (jwk, tokens) = if alg == "ES256" {
            let k = ES256KeyPair::generate().with_key_id("k");
            let tokens = (0..distinct)
                .map(|_| k.sign_with_options(claims(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            (k.public_key().to_jwk(), tokens)
        } else {
            let k = Ed25519KeyPair::generate().with_key_id("k");
            let tokens = (0..distinct)
                .map(|_| k.sign_with_options(claims(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            (k.public_key().to_jwk(), tokens)
        };
        let body = format!("{{\"keys\":[{jwk}]}}").into_bytes();
        let fetch = move |_: &str| {
            Ok(Fetched {
                status: 200,
                body: body.clone(),
                cache_control: Some("max-age=3600".into()),
            })
        };
        let rate = |verifier: &Verifier<_>, order: &mut dyn Iterator<Item = &String>| {
            let t = Instant::now();
            let mut count = 0u32;
            for token in order {
                verifier
                    .verify::<serde_json::Value>(token, TokenKind::Access)
                    .map_err(anyhow::Error::msg)?;
                count += 1;
            }
            Ok::<f64, anyhow::Error>(f64::from(count) / t.elapsed().as_secs_f64())
        };
        let cold = Verifier::new(iss, "app", fetch.clone());
        cold.verify::<serde_json::Value>(&tokens[0], TokenKind::Access)
            .map_err(anyhow::Error::msg)?;
        // Every token once, without a cache: each is a signature check.
        let first = rate(&cold, &mut tokens.iter())?;
        // The same token again and again, cache on.
        let warm = Verifier::new(iss, "app", fetch.clone()).with_cache(1000);
        let again = rate(&warm, &mut std::iter::repeat_n(&tokens[0], n as usize))?;
        // Each token USES times, interleaved across sessions, cache on.
        let mixed_verifier = Verifier::new(iss, "app", fetch).with_cache(distinct as usize);
        let window = 50.min(tokens.len());
        let mut order = Vec::with_capacity(n as usize);
        for chunk in tokens.chunks(window) {
            for _ in 0..USES {
                order.extend(chunk.iter());
            }
        }
        let mixed = rate(&mixed_verifier, &mut order.into_iter())?;
        rows.push((alg, first, mixed, again));
    }
    println!("\n## lanyard-verifier, native, one core (target ≥ 20,000 tokens/s)\n");
    println!(
        "| access token | every token new (signature each time) /s | each token {USES}×, cache on /s | one token repeated, cache on /s |"
    );
    println!("| --- | ---: | ---: | ---: |");
    let mark = |r: f64| if r >= 20_000.0 { "✓" } else { "✗" };
    for (alg, first, mixed, again) in rows {
        println!(
            "| {alg} | {first:.0} {} | {mixed:.0} {} | {again:.0} {} |",
            mark(first),
            mark(mixed),
            mark(again)
        );
    }
    Ok(())
}

/// A client with refresh-token families ready to rotate, on a host that
/// reads its signing keys from variables as production does.
struct RefreshSetup {
    host: std::sync::Arc<SpinHost>,
    basic: String,
    tokens: Vec<String>,
    /// The `Authorization` header of a confidential client that uses
    /// `client_credentials` and signs with the same algorithm.
    cc_basic: String,
    /// When asked for: a b2b client's `Authorization` header and families,
    /// the same person signed in through an organisation.
    b2b: Option<(String, Vec<String>)>,
    _data: tempfile::TempDir,
}

/// The bench's b2b client and the organisation that activated it.
const B2B_CLIENT: &str = "bench-b2b";
const B2B_ORG: &str = "bench-org";
/// The person the refresh setup signs up.
const REFRESH_EMAIL: &str = "refresh@example.com";
const REFRESH_PASSWORD: &str = "correct horse battery staple";

/// The refresh person's password sign-in, as the login form posts it.
fn login_request(csrf: &str) -> anyhow::Result<Request<Bytes>> {
    let creds = [("email", REFRESH_EMAIL), ("password", REFRESH_PASSWORD)];
    post("/login", csrf, form(csrf, &creds))
}

/// Registers a client signing with `alg`, signs a person in, and starts
/// `families` refresh-token families through /authorize and /token. With
/// `b2b`, also registers a b2b client (one role, `viewer`), has the person
/// create an organisation, activate the client in it and take the role, and
/// starts as many families for that client.
async fn refresh_setup(alg: &str, families: usize, b2b: bool) -> anyhow::Result<RefreshSetup> {
    let data = tempfile::tempdir()?;
    let admin = "bench-admin-token-0123456789abcdefgh";
    let host = app(
        &[
            ("issuer", "https://id.example.test"),
            ("dev_mode", "true"),
            ("admin_token", admin),
            ("argon2_memory_kib", "8192"),
            ("argon2_iterations", "1"),
        ],
        data.path(),
    )
    .await?;
    let client = "127.0.0.1:1".parse()?;
    let reg = Request::post("/api/admin/clients")
        .header("authorization", format!("Bearer {admin}"))
        .body(Bytes::from(format!(r#"{{"client_name":"bench","client_id":"bench","first_party":true,"redirect_uris":["https://app.example/cb"],"id_token_signed_response_alg":"{alg}","access_token_signed_response_alg":"{alg}"}}"#)))?;
    let reg: serde_json::Value = serde_json::from_slice(host.handle(reg, client).await.body())?;
    let secret = reg["client_secret"].as_str().unwrap_or_default().to_owned();
    let reg = Request::post("/api/admin/clients")
        .header("authorization", format!("Bearer {admin}"))
        .body(Bytes::from(format!(r#"{{"client_name":"bench service","client_id":"bench-cc","grant_types":["client_credentials"],"scope":"reports","access_token_signed_response_alg":"{alg}"}}"#)))?;
    let res = host.handle(reg, client).await;
    anyhow::ensure!(
        res.status() == StatusCode::CREATED,
        "client_credentials client: {} {}",
        res.status(),
        String::from_utf8_lossy(res.body())
    );
    let reg: serde_json::Value = serde_json::from_slice(res.body())?;
    let cc_secret = reg["client_secret"].as_str().unwrap_or_default();
    let cc_basic = format!("Basic {}", base64_encode(&format!("bench-cc:{cc_secret}")));
    let csrf = csrf_cookie(&host).await?;
    let (email, password) = (REFRESH_EMAIL, REFRESH_PASSWORD);
    host.handle(
        post(
            "/signup",
            &csrf,
            form(&csrf, &[("email", email), ("password", password)]),
        )?,
        client,
    )
    .await;
    let outbox: serde_json::Value = serde_json::from_slice(
        host.handle(Request::get("/dev/outbox.json").body(Bytes::new())?, client)
            .await
            .body(),
    )?;
    let token = outbox[0]["link"]
        .as_str()
        .unwrap_or_default()
        .split("token=")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    host.handle(
        post("/verify", &csrf, form(&csrf, &[("token", &token)]))?,
        client,
    )
    .await;
    let login = host
        .handle(
            post(
                "/login",
                &csrf,
                form(&csrf, &[("email", email), ("password", password)]),
            )?,
            client,
        )
        .await;
    let session = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-lanyard_session="))
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let basic = format!("Basic {}", base64_encode(&format!("bench:{secret}")));
    let tokens = refresh_families(&host, &session, "bench", &basic, families).await?;
    let b2b = if b2b {
        let basic = b2b_setup(&host, admin, alg, &session).await?;
        let tokens = refresh_families(&host, &session, B2B_CLIENT, &basic, families).await?;
        Some((basic, tokens))
    } else {
        None
    };

    // Measure the way production runs: keys from variables, not from SQLite
    // (the same keys, read from the dev key table, so the tokens stay valid).
    let db = rusqlite::Connection::open(data.path().join("sqlite_db.db"))?;
    let key = |alg: &str| -> anyhow::Result<String> {
        Ok(db.query_row(
            "SELECT CAST(private_key AS TEXT) FROM signing_keys WHERE role = 'current' AND alg = ?1",
            [alg],
            |r| r.get(0),
        )?)
    };
    let (es, ed) = (key("ES256")?, key("EdDSA")?);
    drop(host);
    let host = app_from(
        bench_manifest(data.path())?,
        &[
            ("issuer", "https://id.example.test"),
            ("signing_key", &es),
            ("signing_key_eddsa", &ed),
        ],
        data.path(),
    )
    .await?;
    Ok(RefreshSetup {
        host: std::sync::Arc::new(host),
        basic,
        tokens,
        cc_basic,
        b2b,
        _data: data,
    })
}

/// Starts `n` refresh-token families of `client_id` for the person signed in
/// by `session` (a first-party client: no consent; a b2b client: her one
/// organisation, chosen silently); returns their refresh tokens.
async fn refresh_families(
    host: &SpinHost,
    session: &str,
    client_id: &str,
    basic: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let client = "127.0.0.1:1".parse()?;
    let verifier = "bench-verifier-bench-verifier-bench-verifier-0123";
    let challenge = lanyard::crypto::b64url(&lanyard::crypto::sha256(verifier.as_bytes()));
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        let authz = Request::get(format!("/authorize?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid%20offline_access&code_challenge={challenge}&code_challenge_method=S256"))
            .header("cookie", session)
            .body(Bytes::new())?;
        let res = host.handle(authz, client).await;
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        anyhow::ensure!(
            !location.is_empty(),
            "/authorize for {client_id}: {} {}",
            res.status(),
            String::from_utf8_lossy(res.body())
        );
        let code = url::Url::parse(&location)?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let exchange = Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic)
            .body(Bytes::from(format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={verifier}")))?;
        let t: serde_json::Value =
            serde_json::from_slice(host.handle(exchange, client).await.body())?;
        let refresh = t["refresh_token"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(!refresh.is_empty(), "no refresh token for {client_id}: {t}");
        tokens.push(refresh);
    }
    Ok(tokens)
}

/// Registers the b2b client (signing with `alg`, one role `viewer`,
/// self-service activation); the person signed in by `session` creates an
/// organisation, activates the client in it and gives herself the role, over
/// the JSON API. Returns the client's `Authorization` header.
async fn b2b_setup(
    host: &SpinHost,
    admin: &str,
    alg: &str,
    session: &str,
) -> anyhow::Result<String> {
    let client = "127.0.0.1:1".parse()?;
    let reg = serde_json::json!({
        "client_name": "bench b2b", "client_id": B2B_CLIENT, "first_party": true,
        "redirect_uris": ["https://app.example/cb"],
        "scope": "openid profile email offline_access",
        "id_token_signed_response_alg": alg, "access_token_signed_response_alg": alg,
        "b2b": true,
        "roles": [{"name": "viewer", "description": "Views"}],
        "activation_policy": "self_service",
    });
    let res = host
        .handle(
            Request::post("/api/admin/clients")
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "application/json")
                .body(Bytes::from(reg.to_string()))?,
            client,
        )
        .await;
    anyhow::ensure!(
        res.status() == StatusCode::CREATED,
        "b2b client: {} {}",
        res.status(),
        String::from_utf8_lossy(res.body())
    );
    let reg: serde_json::Value = serde_json::from_slice(res.body())?;
    anyhow::ensure!(reg["b2b"] == true, "not a b2b client: {reg}");
    let secret = reg["client_secret"].as_str().unwrap_or_default();

    // The JSON API as the person's browser calls it.
    let call = |method: &str, path: &str, body: Option<serde_json::Value>| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", session)
            .header("content-type", "application/json")
            .header("origin", "https://id.example.test")
            .body(body.map(|b| Bytes::from(b.to_string())).unwrap_or_default())
    };
    let me = host
        .handle(call("GET", "/api/account/me", None)?, client)
        .await;
    let me: serde_json::Value = serde_json::from_slice(me.body())?;
    let sub = me["sub"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!sub.is_empty(), "/api/account/me: {me}");
    for (path, body, status) in [
        (
            "/api/orgs".to_owned(),
            Some(serde_json::json!({"name": "Bench Oy", "slug": B2B_ORG})),
            StatusCode::CREATED,
        ),
        (
            format!("/api/orgs/{B2B_ORG}/services/{B2B_CLIENT}/activate"),
            None,
            StatusCode::OK,
        ),
        (
            format!("/api/orgs/{B2B_ORG}/roles"),
            Some(serde_json::json!({"sub": sub, "client_id": B2B_CLIENT, "role": "viewer"})),
            StatusCode::CREATED,
        ),
    ] {
        let res = host.handle(call("POST", &path, body)?, client).await;
        anyhow::ensure!(
            res.status() == status,
            "POST {path}: {} {}",
            res.status(),
            String::from_utf8_lossy(res.body())
        );
    }
    Ok(format!(
        "Basic {}",
        base64_encode(&format!("{B2B_CLIENT}:{secret}"))
    ))
}

/// Rotates `token` `n` times in a row; returns each request's latency and
/// the family's token now.
async fn refresh_chain(
    host: std::sync::Arc<SpinHost>,
    basic: String,
    mut token: String,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, String)> {
    let client = "127.0.0.1:1".parse()?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let req = Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", &basic)
            .body(Bytes::from(format!(
                "grant_type=refresh_token&refresh_token={token}"
            )))?;
        let t0 = Instant::now();
        let res = host.handle(req, client).await;
        samples.push(t0.elapsed());
        anyhow::ensure!(
            res.status() == StatusCode::OK,
            "refresh: {}",
            String::from_utf8_lossy(res.body())
        );
        let body: serde_json::Value = serde_json::from_slice(res.body())?;
        token = body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    Ok((samples, token))
}

/// The refresh-token grant through the host: one conditional UPDATE rotates
/// the family, then an access token and an ID token are signed. Measured one
/// request at a time (latency), then with `CONCURRENCY` families rotating at
/// once on the single pinned core (throughput: the CPU never waits for the
/// disk).
async fn refresh_benchmark(n: usize, alg: &str) -> anyhow::Result<()> {
    const CONCURRENCY: usize = 8;
    let setup = refresh_setup(alg, 1 + CONCURRENCY, false).await?;
    let mut tokens = setup.tokens.clone();
    let sequential = stats(
        refresh_chain(setup.host.clone(), setup.basic.clone(), tokens.remove(0), n)
            .await?
            .0,
    );
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for token in tokens {
        set.spawn(refresh_chain(
            setup.host.clone(),
            setup.basic.clone(),
            token,
            n / CONCURRENCY,
        ));
    }
    let mut all = Vec::with_capacity(n);
    while let Some(chain) = set.join_next().await {
        all.extend(chain??.0);
    }
    let throughput = all.len() as f64 / started.elapsed().as_secs_f64();
    let loaded = stats(all);
    println!(
        "| {alg} access + ID token | {} | {} | {:.0} | {} | {} | {throughput:.0} | ≥ 1,200/s {} |",
        ms(sequential.p50),
        ms(sequential.p99),
        1.0 / sequential.mean.as_secs_f64(),
        ms(loaded.p50),
        ms(loaded.p99),
        if throughput >= 1200.0 { "✓" } else { "✗" }
    );
    Ok(())
}

/// The refresh grant of a b2b client next to a plain one, on the same host,
/// database and person: the b2b refresh re-checks the organisation (in the
/// rotating statement, which also reads the person) and carries it in both
/// tokens. Measured one request at a time, the two clients taking turns in
/// rounds so that both see the same machine, with the SQL statements each
/// refresh runs, as the host counts them. Fails unless both run at most
/// three: the schema check, the client and the rotation (issue 14).
async fn refresh_b2b_benchmark(n: usize) -> anyhow::Result<()> {
    const ALG: &str = "EdDSA";
    /// The statements a refresh may run, plain or b2b.
    const REFRESH_STATEMENTS: u64 = 3;
    const ROUNDS: usize = 10;
    let setup = refresh_setup(ALG, 1, true).await?;
    let (b2b_basic, b2b_tokens) = setup
        .b2b
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no b2b client"))?;
    let client = "127.0.0.1:1".parse()?;
    // Each refresh in turn: its latency and the statements the host ran for it.
    let mut tokens = [setup.tokens[0].clone(), b2b_tokens[0].clone()];
    let basics = [setup.basic.clone(), b2b_basic];
    let mut samples: [Vec<Duration>; 2] = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut statements: [Vec<u64>; 2] = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let per_round = n.div_ceil(ROUNDS).max(1);
    for _ in 0..ROUNDS {
        for kind in 0..2 {
            for _ in 0..per_round {
                let req = Request::post("/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", &basics[kind])
                    .body(Bytes::from(format!(
                        "grant_type=refresh_token&refresh_token={}",
                        tokens[kind]
                    )))?;
                let before = setup.host.sql_statements();
                let t0 = Instant::now();
                let res = setup.host.handle(req, client).await;
                samples[kind].push(t0.elapsed());
                statements[kind].push(setup.host.sql_statements() - before);
                anyhow::ensure!(
                    res.status() == StatusCode::OK,
                    "refresh: {}",
                    String::from_utf8_lossy(res.body())
                );
                let body: serde_json::Value = serde_json::from_slice(res.body())?;
                if kind == 1 {
                    let access = body["access_token"].as_str().unwrap_or_default();
                    let claims = access.split('.').nth(1).unwrap_or_default();
                    let claims: serde_json::Value =
                        serde_json::from_slice(&base64::Engine::decode(
                            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                            claims,
                        )?)?;
                    anyhow::ensure!(
                        claims["org_slug"] == B2B_ORG
                            && claims["roles"] == serde_json::json!(["viewer"]),
                        "the b2b access token lacks its organisation: {claims}"
                    );
                }
                tokens[kind] = body["refresh_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            }
        }
    }
    // Per refresh: the usual count (the median), and the mean, which includes
    // the requests that also sweep dead rows (one in 32, at random:
    // lanyard::sweep::maybe), so it differs from run to run.
    let count = |v: &mut Vec<u64>| {
        v.sort_unstable();
        let median = v.get(v.len() / 2).copied().unwrap_or(0);
        let mean = v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
        (median, mean)
    };
    let [plain, b2b] = statements.each_mut().map(count);
    println!("\n## Refresh-token grant, plain and b2b client ({ALG}), one core, one at a time\n");
    println!(
        "| POST /token (refresh_token) | SQL statements per refresh | mean, with the sampled sweep | p50 | p99 | req/s |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for ((label, (median, mean)), samples) in [
        ("plain client", plain),
        (
            "b2b client (organisation re-checked and in the tokens)",
            b2b,
        ),
    ]
    .into_iter()
    .zip(samples)
    {
        let s = stats(samples);
        println!(
            "| {label} | {median} | {mean:.2} | {} | {} | {:.0} |",
            ms(s.p50),
            ms(s.p99),
            1.0 / s.mean.as_secs_f64()
        );
    }
    let ok = plain.0 <= REFRESH_STATEMENTS && b2b.0 <= REFRESH_STATEMENTS;
    println!(
        "\nA b2b refresh runs {} SQL statements, a plain one {}: {:+} (target both at most {REFRESH_STATEMENTS} {})",
        b2b.0,
        plain.0,
        b2b.0 as i64 - plain.0 as i64,
        if ok { "✓" } else { "✗" }
    );
    anyhow::ensure!(
        ok,
        "a refresh runs more than {REFRESH_STATEMENTS} SQL statements: plain {}, b2b {}",
        plain.0,
        b2b.0
    );
    Ok(())
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The full login request (form parsing, throttle checks, SQLite lookup,
/// argon2id verify, session write) through the host, against the bare
/// argon2id verify natively, both at Lanyard's default parameters.
async fn login_benchmark(n: usize) -> anyhow::Result<()> {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
    let d = lanyard::password::Argon2Config::default();
    let params = argon2::Params::new(d.memory_kib, d.iterations, d.parallelism, None)
        .map_err(anyhow::Error::msg)?;
    let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"benchmark-salt-1").map_err(anyhow::Error::msg)?;
    let hash = a2
        .hash_password(b"correct horse battery staple", &salt)
        .map_err(anyhow::Error::msg)?;
    let mut native = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        a2.verify_password(b"correct horse battery staple", &hash)
            .map_err(anyhow::Error::msg)?;
        native.push(t.elapsed());
    }
    let native = stats(native);

    let data = tempfile::tempdir()?;
    let host = app(
        &[
            ("issuer", "https://id.example.test"),
            ("dev_mode", "true"),
            ("login_max_failures", "1000"),
        ],
        data.path(),
    )
    .await?;
    let email = "bench@example.com";
    let password = "correct horse battery staple";
    // Sign up and verify through the pages.
    let csrf = csrf_cookie(&host).await?;
    let signup = form(&csrf, &[("email", email), ("password", password)]);
    let res = host
        .handle(post("/signup", &csrf, signup)?, "127.0.0.1:1".parse()?)
        .await;
    anyhow::ensure!(res.status() == StatusCode::OK, "sign-up: {}", res.status());
    let outbox = host
        .handle(
            Request::get("/dev/outbox.json").body(Bytes::new())?,
            "127.0.0.1:1".parse()?,
        )
        .await;
    let mails: serde_json::Value = serde_json::from_slice(outbox.body())?;
    let link = mails[0]["link"].as_str().unwrap_or_default();
    let token = link.split("token=").nth(1).unwrap_or_default().to_owned();
    let res = host
        .handle(
            post("/verify", &csrf, form(&csrf, &[("token", &token)]))?,
            "127.0.0.1:1".parse()?,
        )
        .await;
    anyhow::ensure!(res.status() == StatusCode::OK, "verify: {}", res.status());

    let mut through_host = Vec::new();
    for _ in 0..n + 1 {
        let req = post(
            "/login",
            &csrf,
            form(&csrf, &[("email", email), ("password", password)]),
        )?;
        let t = Instant::now();
        let res = host.handle(req, "127.0.0.1:1".parse()?).await;
        through_host.push(t.elapsed());
        anyhow::ensure!(
            res.status() == StatusCode::SEE_OTHER,
            "login: {}",
            res.status()
        );
    }
    through_host.remove(0);
    let wasm = stats(through_host);
    let ratio = wasm.mean.as_secs_f64() / native.mean.as_secs_f64();

    println!(
        "\n## Password login (argon2id m = {} KiB, t = {}, p = {}), one core\n",
        d.memory_kib, d.iterations, d.parallelism
    );
    println!("| what | p50 | mean | logins/s per core |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| native argon2id verify | {} | {} | {:.1} |",
        ms(native.p50),
        ms(native.mean),
        1.0 / native.mean.as_secs_f64()
    );
    println!(
        "| POST /login through the host (wasm) | {} | {} | {:.1} |",
        ms(wasm.p50),
        ms(wasm.mean),
        1.0 / wasm.mean.as_secs_f64()
    );
    println!(
        "\nwasm login / native hash: {ratio:.2}× (target ≤ 1.5× {})",
        if ratio <= 1.5 { "✓" } else { "✗" }
    );
    Ok(())
}

async fn csrf_cookie(host: &SpinHost) -> anyhow::Result<String> {
    let res = host
        .handle(
            Request::get("/login").body(Bytes::new())?,
            "127.0.0.1:1".parse()?,
        )
        .await;
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(cookie
        .split(';')
        .next()
        .unwrap_or_default()
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default())
}

fn form(csrf: &str, fields: &[(&str, &str)]) -> String {
    let mut out = format!("csrf={csrf}");
    for (k, v) in fields {
        out.push_str(&format!("&{k}={}", v.replace(' ', "+").replace('@', "%40")));
    }
    out
}

fn post(path: &str, csrf: &str, body: String) -> anyhow::Result<Request<Bytes>> {
    Ok(Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("__Host-lanyard_csrf={csrf}"))
        .body(Bytes::from(body))?)
}

/// The social sign-in's callback through the host (docs/social.md): the
/// state taken (one conditional UPDATE), the code exchanged over outbound
/// HTTP with a loopback provider (the fake of the end-to-end tests, behind
/// `idp.example`, its ID token signed before the clock starts), the JWKS
/// from the key-value cache, one RS256-2048 verification in wasm, the
/// account resolved, and a session written. A returning person (the link
/// exists) and a first sign-in (an account and a link made), next to the
/// start request and a callback whose state is unknown (no upstream call):
/// the parts, to see where the time goes.
async fn social_callback_benchmark(n: usize) -> anyhow::Result<()> {
    const SECRET: &str = "bench-provider-secret";
    const CONN: &str = "bench-idp";
    let provider = idp::Oidc::start(
        idp::OidcConfig::generic("https://idp.example", "bench-rp", SECRET),
        idp::Alg::Rs256,
    )
    .await;
    provider.set_presign(true);
    let data = tempfile::tempdir()?;
    let admin = "bench-admin-token-0123456789abcdefgh";
    let vars = [
        ("issuer", "https://id.example.test"),
        ("dev_mode", "true"),
        ("admin_token", admin),
        ("google_client_secret", SECRET),
        ("social_outbound_host_1", "https://idp.example"),
    ];
    let host = SpinHost::new(HostConfig {
        manifest: repo_manifest(),
        wasm_dir: Some(built_wasm_dir()),
        data_dir: data.path().to_owned(),
        env: vars
            .iter()
            .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.to_string()))
            .collect(),
        outbound_overrides: [("idp.example".to_owned(), provider.addr)].into(),
        ..Default::default()
    })
    .await?;
    let client = "127.0.0.1:1".parse()?;
    let res = host
        .handle(
            Request::post("/api/admin/connections")
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "application/json")
                .body(Bytes::from(
                    serde_json::json!({
                        "id": CONN, "kind": "oidc", "name": "Bench IdP",
                        "issuer": "https://idp.example", "client_id": "bench-rp",
                        "secret_variable": "google_client_secret",
                    })
                    .to_string(),
                ))?,
            client,
        )
        .await;
    anyhow::ensure!(
        res.status() == StatusCode::CREATED,
        "connection: {} {}",
        res.status(),
        String::from_utf8_lossy(res.body())
    );
    // One browser that came from the login page: its binding and CSRF
    // cookies on every request.
    let cookie = format!(
        "__Host-lanyard_social={}; __Host-lanyard_csrf={}",
        lanyard::crypto::random_token().map_err(anyhow::Error::msg)?,
        csrf_cookie(&host).await?
    );
    let get = |path: &str| {
        Request::get(path)
            .header("cookie", &cookie)
            .body(Bytes::new())
    };
    // A start (timed), then the callback (timed) for `who`.
    let sign_in = async |who: &idp::Person| -> anyhow::Result<(Duration, Duration, u64)> {
        let t = Instant::now();
        let res = host
            .handle(get(&format!("/social/{CONN}/start"))?, client)
            .await;
        let start = t.elapsed();
        anyhow::ensure!(
            res.status() == StatusCode::SEE_OTHER,
            "start: {}",
            res.status()
        );
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let a = provider.code_for(&location, who);
        let path = format!("/social/{CONN}/callback?code={}&state={}", a.code, a.state);
        let req = get(&path)?;
        let before = host.sql_statements();
        let t = Instant::now();
        let res = host.handle(req, client).await;
        let took = t.elapsed();
        let statements = host.sql_statements() - before;
        anyhow::ensure!(
            res.status() == StatusCode::SEE_OTHER
                && res
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .any(|c| c.as_bytes().starts_with(b"__Host-lanyard_session=")),
            "callback: {} {}",
            res.status(),
            String::from_utf8_lossy(res.body())
        );
        Ok((start, took, statements))
    };
    let returning = idp::Person::new("bench-returning", "returning@example.com");
    // Warm-up: the link is made, discovery and the JWKS cached.
    for _ in 0..5 {
        sign_in(&returning).await?;
    }
    let (mut starts, mut again, mut first) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sql_again, mut sql_first) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (s, t, q) = sign_in(&returning).await?;
        starts.push(s);
        again.push(t);
        sql_again.push(q);
        let newcomer = idp::Person::new(&format!("bench-new-{i}"), &format!("new{i}@example.com"));
        let (_, t, q) = sign_in(&newcomer).await?;
        first.push(t);
        sql_first.push(q);
    }
    // The provider refuses the code (a 400 from its token endpoint): the
    // state taken and the exchange's round trip, without an ID token.
    provider.set_faults(idp::Faults {
        token_status: Some(400),
        ..Default::default()
    });
    let mut refused = Vec::new();
    for _ in 0..n {
        let res = host
            .handle(get(&format!("/social/{CONN}/start"))?, client)
            .await;
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let a = provider.code_for(&location, &returning);
        let req = get(&format!(
            "/social/{CONN}/callback?code={}&state={}",
            a.code, a.state
        ))?;
        let t = Instant::now();
        let res = host.handle(req, client).await;
        refused.push(t.elapsed());
        anyhow::ensure!(
            res.status() == StatusCode::BAD_GATEWAY,
            "refused: {}",
            res.status()
        );
    }
    provider.set_faults(idp::Faults::default());
    // A callback whose state is unknown: the component, the state lookup and
    // the error page, without the provider.
    let mut dead = Vec::new();
    for _ in 0..n {
        let req = get(&format!(
            "/social/{CONN}/callback?code=x&state=not-a-state-we-started"
        ))?;
        let t = Instant::now();
        let res = host.handle(req, client).await;
        dead.push(t.elapsed());
        anyhow::ensure!(
            res.status() == StatusCode::BAD_REQUEST,
            "dead state: {}",
            res.status()
        );
    }
    anyhow::ensure!(
        provider.jwks_requests() == 1 && provider.discovery_requests() == 1,
        "discovery and the JWKS must come from the cache: fetched {} and {} times",
        provider.discovery_requests(),
        provider.jwks_requests()
    );
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    println!(
        "\n## Social sign-in callback (RS256 ID token, loopback provider), one core, one at a time\n"
    );
    println!("| request | SQL statements | p50 | p99 | req/s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (label, samples, statements) in [
        (
            "GET /social/{id}/callback, returning person",
            again,
            Some(median(&mut sql_again)),
        ),
        (
            "GET /social/{id}/callback, first sign-in (account + link)",
            first,
            Some(median(&mut sql_first)),
        ),
        ("GET /social/{id}/start (discovery cached)", starts, None),
        (
            "GET /social/{id}/callback, the provider refuses the code (no ID token)",
            refused,
            None,
        ),
        (
            "GET /social/{id}/callback, unknown state (no upstream)",
            dead,
            None,
        ),
    ] {
        let s = stats(samples);
        println!(
            "| {label} | {} | {} | {} | {:.0} |",
            statements
                .map(|q| q.to_string())
                .unwrap_or_else(|| "".into()),
            ms(s.p50),
            ms(s.p99),
            1.0 / s.mean.as_secs_f64()
        );
    }
    Ok(())
}
