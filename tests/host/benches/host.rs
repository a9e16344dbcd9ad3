//! Lanyard's benchmark: component sizes, instantiation, request latency
//! through the Spin-compatible host, and the login request against a native
//! argon2id hash at the same parameters.
//!
//! `cargo bench -p spin-test-host` runs it in full and prints a table (copy
//! the figures into docs/performance.md). Under `cargo test` it runs a short
//! pass of the same code, so that CI keeps it working.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use spin_test_host::{HostConfig, SpinHost, built_wasm_dir, repo_manifest};

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
    // One core, as the targets are stated.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(full))
}

async fn app(vars: &[(&str, &str)], data: &std::path::Path) -> anyhow::Result<SpinHost> {
    SpinHost::new(HostConfig {
        manifest: repo_manifest(),
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

async fn run(full: bool) -> anyhow::Result<()> {
    let (n_inst, n_req, n_login) = if full { (500, 5000, 30) } else { (20, 200, 3) };
    println!(
        "# Lanyard benchmark ({} run)\n",
        if full { "full" } else { "short" }
    );

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

    println!("\n## Requests through the host, one core, sequential\n");
    println!("| request | p50 | p99 | req/s | target |");
    println!("| --- | ---: | ---: | ---: | --- |");
    for (label, path, target) in [
        (
            "GET /.well-known/openid-configuration",
            "/.well-known/openid-configuration",
            Some(1.0),
        ),
        ("GET /jwks.json (dev keys from SQLite)", "/jwks.json", None),
        ("GET /static/lanyard.css", "/static/lanyard.css", None),
    ] {
        let mut samples = Vec::with_capacity(n_req);
        for i in 0..n_req + 50 {
            let req = Request::get(path).body(Bytes::new())?;
            let t = Instant::now();
            let res = host.handle(req, "127.0.0.1:1".parse()?).await;
            let took = t.elapsed();
            anyhow::ensure!(res.status() == StatusCode::OK, "{path}: {}", res.status());
            if i >= 50 {
                samples.push(took);
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
            "| {label} | {} | {} | {:.0} | {} |",
            ms(s.p50),
            ms(s.p99),
            1.0 / s.mean.as_secs_f64(),
            verdict.unwrap_or_default()
        );
    }

    login_benchmark(n_login).await?;
    Ok(())
}

/// The full login request (form parsing, throttle checks, SQLite lookup,
/// argon2id verify, session write) through the host, against the bare
/// argon2id verify natively, both at the OWASP defaults (m = 19 MiB, t = 2, p = 1).
async fn login_benchmark(n: usize) -> anyhow::Result<()> {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
    let params = argon2::Params::new(19_456, 2, 1, None).map_err(anyhow::Error::msg)?;
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

    println!("\n## Password login (argon2id m = 19 MiB, t = 2, p = 1), one core\n");
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
