//! `spin-test-host`: serve a Spin manifest over HTTP, like `spin up`.
//!
//! ```text
//! spin-test-host [--manifest spin.toml] [--listen 127.0.0.1:3000]
//!                [--data-dir .spin] [--wasm-dir DIR]
//! ```
//!
//! Defaults: the repository's `spin.toml`, the components the build script
//! built, and `.spin`. Prints `listening on http://ADDR` once ready
//! (`--listen 127.0.0.1:0` picks a free port).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use spin_test_host::{HostConfig, SpinHost, built_wasm_dir, repo_manifest};

const USAGE: &str = "usage: spin-test-host [--manifest spin.toml] [--listen 127.0.0.1:3000] [--data-dir .spin] [--wasm-dir DIR]";

struct Args {
    manifest: PathBuf,
    listen: SocketAddr,
    data_dir: PathBuf,
    wasm_dir: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        manifest: repo_manifest(),
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        data_dir: PathBuf::from(".spin"),
        wasm_dir: built_wasm_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (flag, None),
        };
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?,
        };
        match flag.as_str() {
            "--manifest" | "-f" => args.manifest = PathBuf::from(value),
            "--listen" => {
                args.listen = value.parse().with_context(|| {
                    format!("--listen {value:?} is not an address like 127.0.0.1:3000")
                })?
            }
            "--data-dir" => args.data_dir = PathBuf::from(value),
            "--wasm-dir" => args.wasm_dir = PathBuf::from(value),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let host = SpinHost::new(HostConfig {
        manifest: args.manifest.clone(),
        wasm_dir: Some(args.wasm_dir),
        data_dir: args.data_dir,
        ..Default::default()
    })
    .await
    .with_context(|| format!("failed to load {}", args.manifest.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("unable to listen on {}", args.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    println!("listening on http://{addr}");
    std::io::stdout()
        .flush()
        .context("failed to flush stdout")?;
    Arc::new(host).serve(listener).await
}
