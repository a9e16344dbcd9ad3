//! Signatures inside wasm, every candidate side by side in one run (issue
//! 14): the probe's `/probe/sig/…` routes (`tests/probe/src/sig.rs`) time
//! each implementation inside the component, `cold` in a fresh instance (as
//! every Spin request is) and `warm` over many operations; natively, the same
//! signers as Lanyard's `Signer` uses them, beside jwt-simple.

use std::time::Instant;

use bytes::Bytes;
use http::Request;
use spin_test_host::SpinHost;

/// The ratios of issue 14's signature rows, measured in one run.
#[derive(Debug, Clone, Copy)]
pub struct SigRatios {
    /// EdDSA verifications/s in wasm through the verifier crate ÷ through
    /// jwt-simple's `verify_token` (what the verifier ran in wasm before).
    pub eddsa_verify_wasm: f64,
    /// EdDSA signatures/s in wasm with Lanyard's signer (ed25519-dalek, key
    /// loaded without deriving its public half) ÷ with jwt-simple.
    pub eddsa_sign_wasm: f64,
    /// A fresh instance's key load and first EdDSA signature: jwt-simple's
    /// time ÷ ed25519-dalek's.
    pub eddsa_cold_wasm: f64,
    /// A fresh instance's key load and first ES256 signature: jwt-simple's
    /// (p256, whose base-point table is built first) time ÷ libcrux's.
    pub es256_cold_wasm: f64,
    /// The first ES256 verification of a fresh instance: jwt-simple's time
    /// (p256 builds its table) ÷ the verifier crate's.
    pub es256_verify_cold_wasm: f64,
}

/// One implementation's figures in wasm, µs.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    cold_load: f64,
    cold_first_sign: f64,
    cold_second_sign: f64,
    cold_first_verify: f64,
    load: f64,
    sign: f64,
    verify: f64,
}

const IMPLS: [(&str, &str); 9] = [
    (
        "ed25519-jwt-simple",
        "Ed25519, jwt-simple (ed25519-compact, u64 limbs): today",
    ),
    (
        "ed25519-compact",
        "Ed25519, ed25519-compact direct, d and x as given",
    ),
    (
        "ed25519-dalek",
        "Ed25519, ed25519-dalek 3 (u32 backend), d and x as given",
    ),
    (
        "ed25519-dalek-derive",
        "Ed25519, ed25519-dalek 3, x derived from d",
    ),
    (
        "ed25519-verifier",
        "Ed25519, lanyard-verifier (whole token)",
    ),
    (
        "es256-jwt-simple",
        "ES256, jwt-simple (p256, lazy table): today",
    ),
    (
        "es256-libcrux",
        "ES256, libcrux-ecdsa 0.0.9 (static tables)",
    ),
    (
        "es256-jwt-simple-verify",
        "ES256, jwt-simple `verify_token` only (the verifier's wasm path before)",
    ),
    ("es256-verifier", "ES256, lanyard-verifier (whole token)"),
];

async fn ask(probe: &SpinHost, path: &str, want: usize) -> anyhow::Result<Vec<f64>> {
    let res = probe
        .handle(
            Request::get(path.to_owned()).body(Bytes::new())?,
            "127.0.0.1:1".parse()?,
        )
        .await;
    let body = String::from_utf8_lossy(res.body()).into_owned();
    let figures: Vec<f64> = body
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    anyhow::ensure!(
        res.status() == 200 && figures.len() == want,
        "{path}: the probe answered {} {body:?}",
        res.status()
    );
    Ok(figures)
}

/// The median of each column over `runs` rows.
fn median_rows(rows: &[Vec<f64>]) -> Vec<f64> {
    let width = rows.first().map_or(0, Vec::len);
    (0..width)
        .map(|i| {
            let mut col: Vec<f64> = rows.iter().map(|r| r[i]).collect();
            col.sort_by(f64::total_cmp);
            col[col.len() / 2]
        })
        .collect()
}

/// µs per call of `f`, mean of `n`.
fn micros(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// Native µs per key load and signature: jwt-simple against Lanyard's own
/// signer, for both algorithms.
fn native(n: u32) -> anyhow::Result<Vec<(&'static str, f64, f64)>> {
    use jwt_simple::prelude::*;
    use lanyard::oidc::jws;
    let claims = || {
        Claims::create(Duration::from_secs(300))
            .with_issuer("https://id.example.com")
            .with_subject("person")
    };
    let typed = HeaderOptions {
        signature_type: Some("at+jwt".into()),
        ..Default::default()
    };
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let es = ES256KeyPair::generate().with_key_id("es");
    let (ed_jwk, es_jwk) = (ed.to_jwk(), es.to_jwk());
    let ed_new = jws::SigningKey::from_jwk(&ed_jwk).map_err(|e| anyhow::anyhow!("{e}"))?;
    let es_new = jws::SigningKey::from_jwk(&es_jwk).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(vec![
        (
            "Ed25519, jwt-simple: today",
            micros(n, || drop(Ed25519KeyPair::from_jwk(&ed_jwk))),
            micros(n, || drop(ed.sign_with_options(claims(), &typed))),
        ),
        (
            "Ed25519, Lanyard's signer",
            micros(n, || drop(jws::SigningKey::from_jwk(&ed_jwk))),
            micros(n, || drop(ed_new.sign(&claims(), "ed", "at+jwt"))),
        ),
        (
            "ES256, jwt-simple: today",
            micros(n, || drop(ES256KeyPair::from_jwk(&es_jwk))),
            micros(n, || drop(es.sign_with_options(claims(), &typed))),
        ),
        (
            "ES256, Lanyard's signer",
            micros(n, || drop(jws::SigningKey::from_jwk(&es_jwk))),
            micros(n, || drop(es_new.sign(&claims(), "es", "at+jwt"))),
        ),
    ])
}

/// Runs the section: prints the table of every candidate and returns the
/// ratios. `n` operations per warm figure (at most 500 inside wasm); each
/// cold figure is the median of several fresh instances.
pub async fn section(probe: &SpinHost, n: u32) -> anyhow::Result<SigRatios> {
    let n_wasm = n.clamp(5, 500);
    let cold_runs = if n > 100 { 9 } else { 3 };
    let mut figures = Vec::new();
    for (name, _) in IMPLS {
        let mut colds = Vec::new();
        for _ in 0..cold_runs {
            colds.push(ask(probe, &format!("/probe/sig/cold?impl={name}"), 4).await?);
        }
        let cold = median_rows(&colds);
        let warm = ask(probe, &format!("/probe/sig/warm?impl={name}&n={n_wasm}"), 3).await?;
        figures.push(Figures {
            cold_load: cold[0],
            cold_first_sign: cold[1],
            cold_second_sign: cold[2],
            cold_first_verify: cold[3],
            load: warm[0],
            sign: warm[1],
            verify: warm[2],
        });
    }
    let native = native(n.clamp(20, 2000))?;

    println!("\n## Signatures inside wasm (issue 14), one core\n");
    println!(
        "µs per operation inside the component. Fresh instance: the median of {cold_runs} \
         requests, each a new instance; warm: {n_wasm} operations in ten batches, the fastest batch's mean. A signature is a whole compact \
         JWS; verify is the signature check, except jwt-simple (`verify_token`) and the \
         verifier, which check the whole token.\n"
    );
    println!(
        "| implementation | fresh: load | fresh: 1st sign | fresh: 2nd sign | fresh: 1st verify \
         | load | sign | verify | sign/s | verify/s |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for ((_, label), f) in IMPLS.iter().zip(&figures) {
        let signs = !label.contains("verif");
        let dash = |v: f64, shown: bool| {
            if shown {
                format!("{v:.1}")
            } else {
                "–".to_owned()
            }
        };
        let rate = |us: f64, shown: bool| {
            if shown {
                format!("{:.0}", 1e6 / us)
            } else {
                "–".to_owned()
            }
        };
        println!(
            "| {label} | {} | {} | {} | {:.1} | {} | {} | {:.1} | {} | {:.0} |",
            dash(f.cold_load, signs),
            dash(f.cold_first_sign, signs),
            dash(f.cold_second_sign, signs),
            f.cold_first_verify,
            dash(f.load, signs),
            dash(f.sign, signs),
            f.verify,
            rate(f.sign, signs),
            1e6 / f.verify,
        );
    }
    println!("\n| natively (this process) | load µs | sign µs | sign/s |");
    println!("| --- | ---: | ---: | ---: |");
    for (label, load, sign) in &native {
        println!("| {label} | {load:.1} | {sign:.1} | {:.0} |", 1e6 / sign);
    }

    let by = |name: &str| {
        IMPLS
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| figures[i])
            .unwrap_or_default()
    };
    let (ed_today, ed_new) = (by("ed25519-jwt-simple"), by("ed25519-dalek"));
    let (es_today, es_new) = (by("es256-jwt-simple"), by("es256-libcrux"));
    let ratios = SigRatios {
        eddsa_verify_wasm: ed_today.verify / by("ed25519-verifier").verify,
        eddsa_sign_wasm: ed_today.sign / ed_new.sign,
        eddsa_cold_wasm: (ed_today.cold_load + ed_today.cold_first_sign)
            / (ed_new.cold_load + ed_new.cold_first_sign),
        es256_cold_wasm: (es_today.cold_load + es_today.cold_first_sign)
            / (es_new.cold_load + es_new.cold_first_sign),
        es256_verify_cold_wasm: by("es256-jwt-simple-verify").cold_first_verify
            / by("es256-verifier").cold_first_verify,
    };
    println!(
        "\nRatios (today ÷ new, higher is better): EdDSA verify in wasm {:.2}× (target ≥ 2.0), \
         EdDSA sign {:.2}×, EdDSA key load + first signature in a fresh instance {:.2}×, \
         ES256 key load + first signature in a fresh instance {:.2}×, \
         ES256 first verification in a fresh instance {:.2}×.",
        ratios.eddsa_verify_wasm,
        ratios.eddsa_sign_wasm,
        ratios.eddsa_cold_wasm,
        ratios.es256_cold_wasm,
        ratios.es256_verify_cold_wasm
    );
    Ok(ratios)
}
