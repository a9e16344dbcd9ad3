//! One wasmtime [`Engine`] per process and a compiled-component cache.
//!
//! Compiling a component with Cranelift takes seconds; the tests start many
//! hosts. So a component is compiled once per process (kept in memory, keyed
//! by the SHA-256 of its bytes) and serialized to
//! `<cache dir>/<sha256>-<engine hash>.cwasm`, which later processes
//! deserialize instead of compiling again.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, anyhow};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

static ENGINE: OnceLock<Engine> = OnceLock::new();
static COMPILED: Mutex<Option<HashMap<String, Component>>> = Mutex::new(None);

/// The process-wide engine (the compiled-component cache is only valid for
/// one engine configuration).
pub(crate) fn engine() -> anyhow::Result<Engine> {
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let mut config = Config::new();
    config.wasm_component_model(true);
    if std::env::var_os("SPIN_TEST_HOST_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if use_pooling_allocator() {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(spin_pooling_config()));
    }
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("failed to create the wasmtime engine")?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// Spin's own pooling allocator settings (spin-core's `Config::default`):
/// instance slots, stacks and memories are reused between requests, and at
/// most 2 MiB of a linear memory stays resident when a slot is reused.
fn spin_pooling_config() -> PoolingAllocationConfig {
    const MB: usize = 1 << 20;
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(1_000)
        .max_component_instance_size(10 * MB)
        .max_core_instance_size(10 * MB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(20)
        .table_elements(100_000)
        .max_memories_per_component(32)
        .total_memories(1_000)
        .total_tables(2_000)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(2 * MB)
        .table_keep_resident(MB / 2);
    pooling
}

/// Spin uses the pooling allocator when the machine has the virtual address
/// space for it (its probe: one 2^42-byte static memory), and
/// `SPIN_WASMTIME_POOLING=0|1` overrides the probe, as in Spin.
fn use_pooling_allocator() -> bool {
    match std::env::var("SPIN_WASMTIME_POOLING").as_deref() {
        Ok("1") => return true,
        Ok("0") => return false,
        _ => {}
    }
    const BITS_TO_TEST: u32 = 42;
    let mut config = Config::new();
    config.wasm_memory64(true);
    config.memory_reservation(1 << BITS_TO_TEST);
    let Ok(engine) = Engine::new(&config) else {
        return false;
    };
    let mut store = wasmtime::Store::new(&engine, ());
    let ty = wasmtime::MemoryType::new64(0, Some(1 << (BITS_TO_TEST - 16)));
    wasmtime::Memory::new(&mut store, ty).is_ok()
}

/// Where compiled components are kept: `$SPIN_TEST_HOST_CACHE_DIR`, or
/// `<workspace>/target/spin-test-host-cache`.
pub(crate) fn cache_dir() -> PathBuf {
    match std::env::var_os("SPIN_TEST_HOST_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("LANYARD_WORKSPACE_DIR"))
            .join("target")
            .join("spin-test-host-cache"),
    }
}

/// Loads the component at `wasm_path`: from memory, from the on-disk cache,
/// or by compiling it (and then caching it). Blocking: call it off the async
/// runtime's worker threads.
pub(crate) fn load_component(engine: &Engine, wasm_path: &Path) -> anyhow::Result<Component> {
    let bytes = std::fs::read(wasm_path)
        .with_context(|| format!("failed to read component {}", wasm_path.display()))?;
    let key = cache_key(engine, &bytes);

    // Held while compiling, so concurrent hosts in one process compile each
    // component once.
    let mut compiled = COMPILED
        .lock()
        .map_err(|_| anyhow!("compiled-component cache lock poisoned"))?;
    let compiled = compiled.get_or_insert_with(HashMap::new);
    if let Some(component) = compiled.get(&key) {
        return Ok(component.clone());
    }

    let dir = cache_dir();
    let cached = dir.join(format!("{key}.cwasm"));
    let component = match load_cached(engine, &cached) {
        Some(component) => component,
        None => {
            let component = Component::new(engine, &bytes)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("failed to compile {}", wasm_path.display()))?;
            if let Err(e) = store_cached(&dir, &cached, &component) {
                eprintln!(
                    "spin-test-host: warning: could not cache the compiled component in {}: {e:#}",
                    dir.display()
                );
            }
            component
        }
    };
    compiled.insert(key, component.clone());
    Ok(component)
}

fn load_cached(engine: &Engine, path: &Path) -> Option<Component> {
    if !path.is_file() {
        return None;
    }
    // SAFETY: the file was written by `Component::serialize` (below), into a
    // cache directory that only this crate writes, under a name that includes
    // the engine's precompile-compatibility hash. wasmtime still checks the
    // header and refuses an incompatible or foreign file.
    match unsafe { Component::deserialize_file(engine, path) } {
        Ok(component) => Some(component),
        Err(e) => {
            eprintln!(
                "spin-test-host: warning: ignoring the unusable cached component {}: {e:#}",
                path.display()
            );
            None
        }
    }
}

fn store_cached(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    prune(dir);
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    // Write then rename, so another process never reads half a file.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("failed to write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("failed to rename {}", tmp.display()))?;
    Ok(())
}

/// Drops compiled components not rewritten for a week: every rebuild of a
/// component leaves its old entry behind.
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = path.extension().is_some_and(|e| e == "cwasm")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > week);
        if stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64 + 17);
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex.push_str(&format!("-{:016x}", hasher.finish()));
    hex
}
