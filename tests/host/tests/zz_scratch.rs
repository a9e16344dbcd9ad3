mod common;
use bytes::Bytes;
use common::*;
use std::time::Instant;

#[tokio::test(flavor = "current_thread")]
async fn scratch() {
    for (m, t) in [("8192", "1"), ("19456", "2"), ("65536", "1")] {
        let app = App::start(
            &[
                ("issuer", ISSUER),
                ("dev_mode", "true"),
                ("argon2_memory_kib", m),
                ("argon2_iterations", t),
                ("login_max_failures", "1000"),
                ("login_address_max_failures", "1000"),
            ],
            &[],
        )
        .await;
        let mut b = Browser::new(&app);
        b.get("/login").await;
        let mut v = vec![];
        for _ in 0..6 {
            let tt = Instant::now();
            let r = b
                .post(
                    "/login",
                    &[("email", "x@example.com"), ("password", "wrong password")],
                )
                .await;
            v.push(tt.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.status(), 401);
        }
        let tt = Instant::now();
        for _ in 0..6 {
            app.get("/static/lanyard.css").await;
        }
        eprintln!(
            "m={m} t={t}: login {:?} css {:.2}ms",
            v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>(),
            tt.elapsed().as_secs_f64() * 1e3 / 6.0
        );
        let _ = Bytes::new();
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(m.parse().unwrap(), t.parse().unwrap(), 1, None).unwrap();
        let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"benchmark-salt-1").unwrap();
        let mut nv = vec![];
        for _ in 0..6 {
            let tt = Instant::now();
            a2.hash_password(b"x", &salt).unwrap();
            nv.push(format!("{:.1}", tt.elapsed().as_secs_f64() * 1e3));
        }
        eprintln!("   native {nv:?}");
    }
}

fn touch_fresh(mib: usize) -> f64 {
    let n = mib << 20;
    let t = Instant::now();
    let mut v: Vec<u8> = Vec::with_capacity(n);
    unsafe {
        let p = v.as_mut_ptr();
        let mut i = 0;
        while i < n {
            std::ptr::write_volatile(p.add(i), 1);
            i += 4096;
        }
        v.set_len(n);
    }
    let e = t.elapsed().as_secs_f64() * 1e3;
    drop(v);
    e
}

#[test]
fn scratch_simdcheck() {
    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model(true);
    cfg.wasm_relaxed_simd(false);
    cfg.wasm_simd(false);
    let engine = wasmtime::Engine::new(&cfg).unwrap();
    let r = wasmtime::component::Component::from_file(
        &engine,
        "/work/main/target/wasm/wasm32-wasip2/release/lanyard_login.wasm",
    );
    eprintln!(
        "login.wasm without simd: {:?}",
        r.err()
            .map(|e| format!("{e:#}").chars().take(300).collect::<String>())
    );
}

#[test]
fn scratch_a2() {
    use wasmtime::*;
    let mut cfg = Config::new();
    if std::env::var("EPOCH").is_ok() {
        cfg.epoch_interruption(true);
    }
    let engine = Engine::new(&cfg).unwrap();
    for mib in [19usize, 64] {
        let v: Vec<String> = (0..5).map(|_| format!("{:.1}", touch_fresh(mib))).collect();
        eprintln!("native fresh-touch {mib} MiB: {v:?}");
    }
    for f in ["release-simd1", "release-simd0", "o3-simd1", "o3-simd0"] {
        let module = Module::from_file(&engine, format!("/tmp/a2-{f}.wasm")).unwrap();
        let mut linker: Linker<()> = Linker::new(&engine);
        linker.define_unknown_imports_as_traps(&module).unwrap();
        let pre = linker.instantiate_pre(&module).unwrap();
        for (m, t) in [(19456u32, 2u32)] {
            let mut fresh = vec![];
            for _ in 0..10 {
                let tt = Instant::now();
                let mut store = Store::new(&engine, ());
                if std::env::var("EPOCH").is_ok() {
                    store.set_epoch_deadline(1 << 40);
                }
                let inst = pre.instantiate(&mut store).unwrap();
                let h = inst
                    .get_typed_func::<(u32, u32), u32>(&mut store, "hash")
                    .unwrap();
                h.call(&mut store, (m, t)).unwrap();
                drop(store);
                fresh.push(format!("{:.1}", tt.elapsed().as_secs_f64() * 1e3));
            }
            let mut store = Store::new(&engine, ());
            if std::env::var("EPOCH").is_ok() {
                store.set_epoch_deadline(1 << 40);
            }
            let inst = pre.instantiate(&mut store).unwrap();
            let h = inst
                .get_typed_func::<(u32, u32), u32>(&mut store, "hash")
                .unwrap();
            let mut warm = vec![];
            for _ in 0..10 {
                let tt = Instant::now();
                h.call(&mut store, (m, t)).unwrap();
                warm.push(format!("{:.1}", tt.elapsed().as_secs_f64() * 1e3));
            }
            use argon2::password_hash::{PasswordHasher, SaltString};
            let params = argon2::Params::new(m, t, 1, None).unwrap();
            let a2 =
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let salt = SaltString::encode_b64(b"benchmark-salt-1").unwrap();
            let mut nv = vec![];
            for _ in 0..10 {
                let tt = Instant::now();
                a2.hash_password(b"x", &salt).unwrap();
                nv.push(format!("{:.1}", tt.elapsed().as_secs_f64() * 1e3));
            }
            eprintln!(
                "{f} m={m} t={t}: fresh-instance {fresh:?} same-instance {warm:?} native {nv:?}"
            );
        }
    }
}

#[test]
fn scratch_ab() {
    use wasmtime::*;
    let engine = Engine::new(&Config::new()).unwrap();
    let names = [
        "release-simd1",
        "sa-simd1",
        "stop-simd1",
        "o3-simd1",
        "o3-simd0",
        "release-simd0",
    ];
    let mut funcs = vec![];
    for f in names {
        let module = Module::from_file(&engine, format!("/tmp/a2-{f}.wasm")).unwrap();
        let mut linker: Linker<()> = Linker::new(&engine);
        linker.define_unknown_imports_as_traps(&module).unwrap();
        let pre = linker.instantiate_pre(&module).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = pre.instantiate(&mut store).unwrap();
        let h = inst
            .get_typed_func::<(u32, u32), u32>(&mut store, "hash")
            .unwrap();
        funcs.push((pre, store, h));
    }
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(19456, 2, 1, None).unwrap();
    let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"benchmark-salt-1").unwrap();
    let n = names.len();
    let mut warm = vec![vec![]; n];
    let mut fresh = vec![vec![]; n];
    let mut nat = vec![];
    let mut touch = vec![];
    for _ in 0..12 {
        for i in 0..n {
            let (pre, store, h) = &mut funcs[i];
            let t = Instant::now();
            h.call(&mut *store, (19456, 2)).unwrap();
            warm[i].push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let mut st = Store::new(&engine, ());
            let inst = pre.instantiate(&mut st).unwrap();
            let hh = inst
                .get_typed_func::<(u32, u32), u32>(&mut st, "hash")
                .unwrap();
            hh.call(&mut st, (19456, 2)).unwrap();
            drop(st);
            fresh[i].push(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        a2.hash_password(b"x", &salt).unwrap();
        nat.push(t.elapsed().as_secs_f64() * 1e3);
        touch.push(touch_fresh(64) * 19.0 / 64.0);
    }
    let st = |v: &Vec<f64>| {
        let mut x = v.clone();
        x.sort_by(|a, b| a.partial_cmp(b).unwrap());
        format!(
            "min {:5.1} p25 {:5.1} med {:5.1}",
            x[0],
            x[x.len() / 4],
            x[x.len() / 2]
        )
    };
    eprintln!("native warm          : {}", st(&nat));
    eprintln!("page-touch 19MiB est : {}", st(&touch));
    for i in 0..n {
        eprintln!(
            "{:14} same-inst: {} | fresh-inst: {}",
            names[i],
            st(&warm[i]),
            st(&fresh[i])
        );
    }
}

#[test]
fn scratch_sqlite() {
    let d = tempfile::tempdir().unwrap();
    let c = rusqlite::Connection::open(d.path().join("kv.db")).unwrap();
    c.execute("CREATE TABLE IF NOT EXISTS spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (store, key))", []).unwrap();
    let mut v = vec![];
    for i in 0..10 {
        let t = Instant::now();
        c.execute("INSERT INTO spin_key_value (store, key, value) VALUES ('default', ?1, x'00') ON CONFLICT(store, key) DO UPDATE SET value=excluded.value", [format!("k{}", i % 2)]).unwrap();
        v.push(format!("{:.2}", t.elapsed().as_secs_f64() * 1e3));
    }
    eprintln!("sqlite kv set ms: {v:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn scratch_login_ab() {
    for (m, t) in [("8192", "1"), ("19456", "2")] {
        let app = App::start(
            &[
                ("issuer", ISSUER),
                ("dev_mode", "true"),
                ("argon2_memory_kib", m),
                ("argon2_iterations", t),
                ("login_max_failures", "1000"),
                ("login_address_max_failures", "1000"),
            ],
            &[],
        )
        .await;
        let mut b = Browser::new(&app);
        b.get("/login").await;
        let mut v = vec![];
        let mut css = vec![];
        let mut lg = vec![];
        for _ in 0..10 {
            let tt = Instant::now();
            let r = b
                .post(
                    "/login",
                    &[("email", "x@example.com"), ("password", "wrong password")],
                )
                .await;
            v.push(tt.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.status(), 401);
            let tt = Instant::now();
            app.get("/static/lanyard.css").await;
            css.push(tt.elapsed().as_secs_f64() * 1e3);
            let tt = Instant::now();
            b.get("/login").await;
            lg.push(tt.elapsed().as_secs_f64() * 1e3);
        }
        let st = |v: &Vec<f64>| {
            let mut x = v.clone();
            x.sort_by(|a, b| a.partial_cmp(b).unwrap());
            format!("min {:5.1} med {:5.1}", x[0], x[x.len() / 2])
        };
        eprintln!(
            "m={m} t={t}: POST /login {} | GET css {} | GET /login {}",
            st(&v),
            st(&css),
            st(&lg)
        );
    }
}
