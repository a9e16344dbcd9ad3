//! Builds the Spin components (and the test probe) for `wasm32-wasip2` so the
//! host's tests and binary, and the end-to-end tests and benchmark in
//! `tests/e2e`, always run the current code. The probe serves the host's own
//! tests and the benchmark's signing section.
//!
//! The nested `cargo build` uses its own target directory
//! (`<workspace>/target/wasm`), so it never waits on the lock that the outer
//! cargo holds on `<workspace>/target`.
//!
//! `LANYARD_WASM_PACKAGES` (space-separated) overrides the package list, e.g.
//! `LANYARD_WASM_PACKAGES=lanyard-probe` to build only the probe.

use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_PACKAGES: &[&str] = &[
    "lanyard-login",
    "lanyard-token",
    "lanyard-social",
    "lanyard-profile",
    "lanyard-orgs",
    "lanyard-demo",
    "lanyard-probe",
];

fn main() {
    if let Err(e) = run() {
        // A build script reports failure by exiting non-zero; the message is
        // shown by cargo.
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?,
    );
    let workspace = workspace_root(&manifest_dir)?;
    let wasm_target_dir = workspace.join("target").join("wasm");
    let wasm_out = wasm_target_dir.join("wasm32-wasip2").join("release");

    for watched in [
        "components",
        "shared",
        "static",
        "tests/probe",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LANYARD_WASM_PACKAGES");
    println!("cargo:rustc-env=LANYARD_WASM_DIR={}", wasm_out.display());
    println!(
        "cargo:rustc-env=LANYARD_WORKSPACE_DIR={}",
        workspace.display()
    );

    let packages: Vec<String> = match std::env::var("LANYARD_WASM_PACKAGES") {
        Ok(list) if !list.trim().is_empty() => list.split_whitespace().map(str::to_owned).collect(),
        _ => DEFAULT_PACKAGES.iter().map(|p| (*p).to_owned()).collect(),
    };

    // Lets tests that need every component skip while only some are built.
    println!(
        "cargo:rustc-env=LANYARD_WASM_PACKAGES_BUILT={}",
        packages.join(" ")
    );

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg("wasm32-wasip2")
        .arg("--target-dir")
        .arg(&wasm_target_dir);
    for package in &packages {
        cmd.arg("-p").arg(package);
    }
    // The outer cargo sets these for build scripts; inherited, they would
    // override `.cargo/config.toml` (the +simd128 rustflags), send the output
    // to the outer target directory (and deadlock on its lock) or wrap rustc
    // in clippy.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }

    let output = cmd
        .output()
        .map_err(|e| format!("failed to run the nested cargo build: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "nested `cargo build --release --target wasm32-wasip2 -p {}` failed ({}):\n{}\n{}",
            packages.join(" -p "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    Ok(())
}

/// The workspace root is two levels above `tests/host`.
fn workspace_root(manifest_dir: &Path) -> Result<PathBuf, String> {
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("tests/host has no workspace two levels up")?;
    if !root.join("Cargo.toml").is_file() {
        return Err(format!("no Cargo.toml in {}", root.display()));
    }
    Ok(root.to_path_buf())
}
