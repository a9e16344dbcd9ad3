//! Issue 14's targets, as ratios against what the platform allows, measured
//! side by side in one run on one host: Lanyard's app (`spin.toml`, keys
//! from variables as in production) with the probe component mounted at
//! `/probe/...` beside it (`bench_manifest`), so that the floors (`noop`,
//! `sql-read`, `sql-write`, `argon2`) and Lanyard's requests share the
//! process, the pinned core, the database file and the host's variable cost.
//!
//! Each ratio alternates its two sides in rounds, so that both see the same
//! machine; throughput is measured with `IN_FLIGHT` requests at once on the
//! one core, as a load generator would drive Spin.

use std::sync::Arc;

use super::*;

/// Requests in flight for every throughput figure.
const IN_FLIGHT: usize = 8;

/// What one side of a ratio measured.
#[derive(Default, Clone, Copy)]
struct Side {
    requests: usize,
    busy: Duration,
}

impl Side {
    fn per_sec(self) -> f64 {
        self.requests as f64 / self.busy.as_secs_f64().max(1e-9)
    }
}

/// A request to make again and again: the `i`-th request of a run.
type Make = Arc<dyn Fn(usize) -> anyhow::Result<Request<Bytes>> + Send + Sync>;

/// Runs `n` requests of `make`, `IN_FLIGHT` at a time; each must answer
/// `status`. Returns the wall time of the run.
async fn burst(
    host: &Arc<SpinHost>,
    n: usize,
    make: &Make,
    status: StatusCode,
) -> anyhow::Result<Side> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for lane in 0..IN_FLIGHT {
        let (host, make) = (host.clone(), make.clone());
        set.spawn(async move {
            let mut i = lane;
            while i < n {
                let res = host.handle(make(i)?, "127.0.0.1:1".parse()?).await;
                anyhow::ensure!(
                    res.status() == status,
                    "{}: {}",
                    res.status(),
                    String::from_utf8_lossy(res.body())
                );
                i += IN_FLIGHT;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(lane) = set.join_next().await {
        lane??;
    }
    Ok(Side {
        requests: n,
        busy: started.elapsed(),
    })
}

/// Rotates each family's token `per_family` times, the families at once;
/// the tokens move on.
async fn refresh_burst(
    host: &Arc<SpinHost>,
    basic: &str,
    tokens: &mut [String],
    per_family: usize,
) -> anyhow::Result<Side> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let chain = refresh_chain(host.clone(), basic.to_owned(), token.clone(), per_family);
        set.spawn(async move { (i, chain.await) });
    }
    while let Some(done) = set.join_next().await {
        let (i, chain) = done?;
        tokens[i] = chain?.1;
    }
    Ok(Side {
        requests: per_family * tokens.len(),
        busy: started.elapsed(),
    })
}

/// One request at a time, `n` of them: each latency.
async fn one_by_one(
    host: &SpinHost,
    n: usize,
    make: &Make,
    status: StatusCode,
) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let req = make(i)?;
        let t = Instant::now();
        let res = host.handle(req, "127.0.0.1:1".parse()?).await;
        out.push(t.elapsed());
        anyhow::ensure!(
            res.status() == status,
            "{}: {}",
            res.status(),
            String::from_utf8_lossy(res.body())
        );
    }
    Ok(out)
}

fn get(path: &'static str) -> Make {
    Arc::new(move |_| Ok(Request::get(path).body(Bytes::new())?))
}

/// The variable reads and SQL statements of a request of `make`: the
/// fewest of `COST_SAMPLES` requests, since one request in 32 also sweeps
/// dead rows (`lanyard::sweep::maybe`).
async fn cost_of(host: &SpinHost, make: &Make, status: StatusCode) -> anyhow::Result<(u64, u64)> {
    let mut least = (u64::MAX, u64::MAX);
    for i in 0..COST_SAMPLES {
        let (reads, statements) = (host.variable_reads(), host.sql_statements());
        let res = host.handle(make(i)?, "127.0.0.1:1".parse()?).await;
        anyhow::ensure!(res.status() == status, "{}", res.status());
        least.0 = least.0.min(host.variable_reads() - reads);
        least.1 = least.1.min(host.sql_statements() - statements);
    }
    Ok(least)
}

/// Requests counted for their variable reads and statements.
const COST_SAMPLES: usize = 5;

/// The variable reads and SQL statements of a rotation of `token` (which
/// moves on): the fewest of `COST_SAMPLES`, as for [`cost_of`].
async fn refresh_cost(
    host: &Arc<SpinHost>,
    basic: &str,
    token: &mut String,
) -> anyhow::Result<(u64, u64)> {
    let mut least = (u64::MAX, u64::MAX);
    for _ in 0..COST_SAMPLES {
        let (reads, statements) = (host.variable_reads(), host.sql_statements());
        let rotated = refresh_chain(host.clone(), basic.to_owned(), std::mem::take(token), 1);
        *token = rotated.await?.1;
        least.0 = least.0.min(host.variable_reads() - reads);
        least.1 = least.1.min(host.sql_statements() - statements);
    }
    Ok(least)
}

/// A ratio's row: what, the measure, the figure, the target (≥ or ≤).
struct Row {
    what: &'static str,
    measure: String,
    ratio: f64,
    at_least: Option<f64>,
    at_most: Option<f64>,
}

impl Row {
    fn met(&self) -> bool {
        self.at_least.is_none_or(|t| self.ratio >= t)
            && self.at_most.is_none_or(|t| self.ratio <= t)
    }
}

/// OWASP's equivalent argon2id settings (memory KiB, passes; p = 1).
const OWASP_ARGON2ID: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// The connection settings the probe may try before its upsert.
const PRAGMAS: [&str; 5] = [
    "journal_size_limit=0",
    "journal_size_limit=1048576",
    "wal_autocheckpoint=0",
    "wal_autocheckpoint=10000",
    "synchronous=NORMAL",
];

/// The argon2id parameters Lanyard uses by default (`spin.toml`).
fn default_argon2() -> (u32, u32) {
    let d = lanyard::password::Argon2Config::default();
    (d.memory_kib, d.iterations)
}

/// The ratio section: baselines, Lanyard's requests, and the targets.
pub async fn ratios_benchmark(full: bool) -> anyhow::Result<()> {
    let (rounds, per_round, logins) = if full { (5, 400, 6) } else { (1, 16, 1) };
    let setup = refresh_setup("EdDSA", IN_FLIGHT, false).await?;
    let es = refresh_setup("ES256", IN_FLIGHT, false).await?;
    let host = setup.host.clone();
    let cc_basic = setup.cc_basic.clone();
    let cc: Make = Arc::new(move |_| {
        Ok(Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", &cc_basic)
            .body(Bytes::from_static(b"grant_type=client_credentials"))?)
    });
    let write: Make = Arc::new(|i| {
        Ok(Request::get(format!("/probe/sql-write?k={}", i % IN_FLIGHT)).body(Bytes::new())?)
    });
    let (noop, read) = (get("/probe/noop"), get("/probe/sql-read"));
    let discovery = get("/.well-known/openid-configuration");
    let ok = StatusCode::OK;

    // Warm every path once (compilation caches, the tables' pages).
    for make in [&noop, &read, &write, &discovery, &cc] {
        burst(&host, IN_FLIGHT, make, ok).await?;
    }

    let (mut s_noop, mut s_read, mut s_write) = (Side::default(), Side::default(), Side::default());
    let (mut s_disc, mut s_cc, mut s_ed, mut s_es) = (
        Side::default(),
        Side::default(),
        Side::default(),
        Side::default(),
    );
    let mut ed_tokens = setup.tokens.clone();
    let mut es_tokens = es.tokens.clone();
    let per_family = (per_round / IN_FLIGHT).max(1);
    let add = |s: &mut Side, o: Side| {
        s.requests += o.requests;
        s.busy += o.busy;
    };
    for _ in 0..rounds {
        add(&mut s_noop, burst(&host, per_round, &noop, ok).await?);
        add(&mut s_disc, burst(&host, per_round, &discovery, ok).await?);
        add(&mut s_read, burst(&host, per_round, &read, ok).await?);
        add(&mut s_cc, burst(&host, per_round, &cc, ok).await?);
        add(&mut s_write, burst(&host, per_round, &write, ok).await?);
        add(
            &mut s_ed,
            refresh_burst(&host, &setup.basic, &mut ed_tokens, per_family).await?,
        );
        add(
            &mut s_es,
            refresh_burst(&es.host, &es.basic, &mut es_tokens, per_family).await?,
        );
    }

    // Password login against the argon2 probe at the same parameters, one
    // at a time, alternating; then the probe at both OWASP settings.
    let (m, t) = default_argon2();
    let csrf = csrf_cookie(&host).await?;
    let login: Make = {
        let csrf = csrf.clone();
        Arc::new(move |_| login_request(&csrf))
    };
    let argon2_default: Make = Arc::new(move |_| {
        Ok(Request::get(format!("/probe/argon2?m={m}&t={t}")).body(Bytes::new())?)
    });
    let owasp: Vec<Make> = OWASP_ARGON2ID
        .iter()
        .map(|&(m, t)| {
            let make: Make = Arc::new(move |_| {
                Ok(Request::get(format!("/probe/argon2?m={m}&t={t}")).body(Bytes::new())?)
            });
            make
        })
        .collect();
    // The first login re-hashes the setup's cheap hash at the defaults.
    one_by_one(&host, 1, &login, StatusCode::SEE_OTHER).await?;
    let (mut l_login, mut l_probe) = (vec![], vec![]);
    let mut l_owasp = vec![Vec::new(); owasp.len()];
    // In blocks of `BLOCK`, as requests for one component follow each other
    // under load: an instance that follows another component's in the
    // pooling allocator's slot pays for mapping its own memory image, which
    // would charge one side or the other for the alternation itself.
    const BLOCK: usize = 4;
    for _ in 0..logins {
        // The first of each block only warms its component's slot.
        let mut block = one_by_one(&host, BLOCK + 1, &login, StatusCode::SEE_OTHER).await?;
        l_login.extend(block.drain(1..));
        let mut block = one_by_one(&host, BLOCK + 1, &argon2_default, ok).await?;
        l_probe.extend(block.drain(1..));
    }
    for _ in 0..logins {
        for (samples, make) in l_owasp.iter_mut().zip(&owasp) {
            let mut block = one_by_one(&host, BLOCK + 1, make, ok).await?;
            samples.extend(block.drain(1..));
        }
    }
    let (l_login, l_probe) = (stats(l_login), stats(l_probe));
    let l_owasp: Vec<Stats> = l_owasp.into_iter().map(stats).collect();
    let old_default = OWASP_ARGON2ID
        .iter()
        .position(|&s| s == (19_456, 2))
        .unwrap_or_default();
    let l_19 = &l_owasp[old_default];

    // Connection settings against the plain upsert (issue 14's last lever).
    let mut pragmas = Vec::new();
    for pragma in [None].into_iter().chain(PRAGMAS.iter().map(Some)) {
        let make: Make = Arc::new(move |i| {
            let extra = pragma.map(|p| format!("&pragma={p}")).unwrap_or_default();
            Ok(
                Request::get(format!("/probe/sql-write?k={}{extra}", i % IN_FLIGHT))
                    .body(Bytes::new())?,
            )
        });
        pragmas.push((pragma.copied().unwrap_or("(none)"), make, Side::default()));
    }
    for _ in 0..rounds {
        for (_, make, side) in pragmas.iter_mut() {
            add(side, burst(&host, per_round, make, ok).await?);
        }
    }

    println!(
        "\n## Issue 14: every request against what Spin allows (one run, one host, one core)\n"
    );
    println!(
        "Throughput with {IN_FLIGHT} requests in flight, {rounds} alternating rounds of {per_round}; \
         each `variables::get` costs the host {} µs, as on real Spin.\n",
        spin_test_host::SPIN_VARIABLE_READ_COST.as_micros()
    );
    println!("| request | req/s | variable reads | SQL statements |");
    println!("| --- | ---: | ---: | ---: |");
    let line = |label: &str, side: Side, cost: (u64, u64)| {
        println!(
            "| {label} | {:.0} | {} | {} |",
            side.per_sec(),
            cost.0,
            cost.1
        );
    };
    line("probe/noop", s_noop, cost_of(&host, &noop, ok).await?);
    line("probe/sql-read", s_read, cost_of(&host, &read, ok).await?);
    line(
        "probe/sql-write",
        s_write,
        cost_of(&host, &write, ok).await?,
    );
    line(
        "discovery (JWKS keys from variables)",
        s_disc,
        cost_of(&host, &discovery, ok).await?,
    );
    line(
        "`client_credentials`, EdDSA",
        s_cc,
        cost_of(&host, &cc, ok).await?,
    );
    line(
        "refresh, EdDSA",
        s_ed,
        refresh_cost(&host, &setup.basic, &mut ed_tokens[0]).await?,
    );
    line(
        "refresh, ES256",
        s_es,
        refresh_cost(&es.host, &es.basic, &mut es_tokens[0]).await?,
    );
    println!();
    let login_cost = cost_of(&host, &login, StatusCode::SEE_OTHER).await?;
    println!("| one at a time | p50 | mean |");
    println!("| --- | ---: | ---: |");
    println!(
        "| POST /login (argon2id m = {m} KiB, t = {t}; {} variable reads, {} SQL statements) | {} | {} |",
        login_cost.0,
        login_cost.1,
        ms(l_login.p50),
        ms(l_login.mean)
    );
    println!(
        "| probe/argon2 at the default, m = {m} KiB, t = {t} | {} | {} |",
        ms(l_probe.p50),
        ms(l_probe.mean)
    );
    for ((pm, pt), s) in OWASP_ARGON2ID.iter().zip(&l_owasp) {
        println!(
            "| probe/argon2 m = {pm} KiB, t = {pt} (OWASP) | {} | {} |",
            ms(s.p50),
            ms(s.mean)
        );
    }
    println!();
    println!("| `probe/sql-write` with, first, `PRAGMA` | req/s | ÷ without |");
    println!("| --- | ---: | ---: |");
    let plain = pragmas[0].2.per_sec();
    for (label, _, side) in &pragmas {
        println!(
            "| {label} | {:.0} | {:.2} |",
            side.per_sec(),
            side.per_sec() / plain
        );
    }

    // Signatures inside wasm: the probe beside the app times each candidate.
    println!();
    let sig = super::sig::section(&host, if full { 2000 } else { 50 }).await?;

    let rows = [
        Row {
            what: "refresh grant, EdDSA",
            measure: "req/s ÷ `sql-write` req/s".into(),
            ratio: s_ed.per_sec() / s_write.per_sec(),
            at_least: Some(0.6),
            at_most: None,
        },
        Row {
            what: "refresh grant, ES256",
            measure: "req/s ÷ EdDSA refresh req/s".into(),
            ratio: s_es.per_sec() / s_ed.per_sec(),
            at_least: Some(0.8),
            at_most: None,
        },
        Row {
            what: "`client_credentials`, EdDSA",
            measure: "req/s ÷ `sql-read` req/s".into(),
            ratio: s_cc.per_sec() / s_read.per_sec(),
            at_least: Some(0.6),
            at_most: None,
        },
        Row {
            what: "discovery, JWKS from variables",
            measure: "req/s ÷ `noop` req/s".into(),
            ratio: s_disc.per_sec() / s_noop.per_sec(),
            at_least: Some(0.8),
            at_most: None,
        },
        Row {
            what: "password login",
            measure: "p50 ÷ `argon2` probe p50".into(),
            ratio: l_login.p50.as_secs_f64() / l_probe.p50.as_secs_f64(),
            at_least: None,
            at_most: Some(1.1),
        },
        Row {
            what: "login at equal OWASP strength",
            measure: format!(
                "hashes/s at the default (m = {m} KiB, t = {t}) ÷ at m = 19 MiB, t = 2"
            ),
            ratio: l_19.mean.as_secs_f64() / l_probe.mean.as_secs_f64(),
            at_least: Some(1.15),
            at_most: None,
        },
        Row {
            what: "EdDSA verify inside wasm (an app at the edge)",
            measure: "verifications/s with the verifier crate ÷ with jwt-simple (before)".into(),
            ratio: sig.eddsa_verify_wasm,
            at_least: Some(2.0),
            at_most: None,
        },
    ];
    println!();
    println!("| what | measure | ratio | target |");
    println!("| --- | --- | ---: | --- |");
    for r in &rows {
        let target = match (r.at_least, r.at_most) {
            (Some(t), _) => format!("≥ {t}"),
            (_, Some(t)) => format!("≤ {t}"),
            _ => String::new(),
        };
        println!(
            "| {} | {} | {:.2} | {target} {} |",
            r.what,
            r.measure,
            r.ratio,
            if r.met() { "✓" } else { "✗" }
        );
    }
    Ok(())
}
