//! `lanyard-probe`: a tiny Spin component that exercises one host capability
//! per route. It is used only by the test host's own tests
//! (`tests/host/tests/host.rs`), never deployed.
//!
//! Routes (the component sees the full request path; everything before the
//! first `/probe/` is ignored, so the probe can sit under any route prefix):
//! - `/probe/kv/<label>`: open KV store `<label>`, set a key and read it back.
//! - `/probe/db/<name>`: open SQLite database `<name>`, create a table, insert, count.
//! - `/probe/http?url=<url>`: outbound GET through `wasi:http/outgoing-handler`.
//! - `/probe/jwt?n=N`: time N ES256 and EdDSA signatures and verifications
//!   inside the component (µs per operation), for the benchmark.
//! - `/probe/jwt-cold`: the first ES256 operations of a fresh instance (µs).
//! - `/probe/rsa?n=N&keys=K`: RS256 with a 2048-bit key inside the component
//!   (µs): K key generations, loading a private JWK, N signatures and
//!   verifications.
//! - `/probe/noop`: answer 200 and nothing else (the floor of any request).
//! - `/probe/sql-read`: open the `default` database and `SELECT 1`.
//! - `/probe/sql-write?k=<key>&pragma=<p>`: open it and upsert one row (the
//!   floor of a request that must write); with `pragma`, first set one of
//!   [`PRAGMAS`] on the connection, to measure what it changes.
//! - `/probe/argon2?m=<KiB>&t=<passes>`: one argon2id hash (p = 1) with these
//!   parameters (the floor of a password login).
//! - `/probe/counter`: bump a static counter (a fresh instance always answers 1).
//! - `/probe/var/<name>`: read a Spin variable.
//! - `/probe/headers`: echo every request header as `name: value` lines.
//! - `/probe/trap`: panic, which traps the instance.
//! - `/probe/echo`: answer with the length of the request body.

#[cfg(target_arch = "wasm32")]
mod sig;

#[cfg(target_arch = "wasm32")]
mod probe {
    use std::sync::atomic::{AtomicU64, Ordering};

    use spin_sdk::http::{Request, Response};
    use spin_sdk::http_component;

    /// Lives in guest memory: if an instance were reused it would count up.
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    #[http_component]
    async fn handle(req: Request) -> Response {
        let path = req.path().to_owned();
        let query = req.query().to_owned();
        // Everything after the first `/probe/`, so that a probe can sit under
        // any route prefix (`/locked/probe/kv/default`).
        let rest = match path.find("/probe/") {
            Some(i) => &path[i + "/probe/".len()..],
            None => "",
        };
        let (first, arg) = match rest.split_once('/') {
            Some((first, arg)) => (first, arg),
            None => (rest, ""),
        };
        match first {
            "kv" => kv(arg),
            "db" => db(arg),
            "db-temp" => db_temp(arg),
            "http" => outbound(&query).await,
            "noop" => text(200, String::new()),
            "sql-read" => sql_read(),
            "sql-write" => sql_write(&query),
            "argon2" => argon2_hash(&query),
            "counter" => {
                let n = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
                text(200, n.to_string())
            }
            "var" => match spin_sdk::variables::get(arg) {
                Ok(value) => text(200, value),
                Err(e) => text(500, format!("{e:?}")),
            },
            "headers" => {
                let mut out = String::new();
                for (name, value) in req.headers() {
                    out.push_str(name);
                    out.push_str(": ");
                    out.push_str(&String::from_utf8_lossy(value.as_bytes()));
                    out.push('\n');
                }
                text(200, out)
            }
            "trap" => panic!("the probe was asked to trap"),
            "echo" => text(200, req.body().len().to_string()),
            "jwt" => jwt_bench(&query),
            "jwt-cold" => jwt_cold(),
            "rsa" => rsa_bench(&query),
            "sig" => crate::sig::handle(arg, &query),
            _ => text(404, format!("probe: no such probe {path:?}")),
        }
    }

    /// A plain-text response.
    pub(crate) fn text(status: u16, body: String) -> Response {
        Response::builder()
            .status(status)
            .header("content-type", "text/plain")
            .body(body)
            .build()
    }

    fn kv(label: &str) -> Response {
        let store = match spin_sdk::key_value::Store::open(label) {
            Ok(store) => store,
            Err(e) => return text(500, format!("open: {e:?}")),
        };
        if let Err(e) = store.set("probe-key", b"probe-value") {
            return text(500, format!("set: {e:?}"));
        }
        match store.get("probe-key") {
            Ok(Some(value)) => text(200, format!("ok:{}", String::from_utf8_lossy(&value))),
            Ok(None) => text(500, "get: value missing after set".to_owned()),
            Err(e) => text(500, format!("get: {e:?}")),
        }
    }

    /// Creates `table` (TEMP or not), adds a row, and answers
    /// `<label>:<rows now in it>`.
    fn count_rows(name: &str, create: &str, table: &str, label: &str) -> Response {
        use spin_sdk::sqlite::Connection;
        let conn = match Connection::open(name) {
            Ok(conn) => conn,
            Err(e) => return text(500, format!("open: {e:?}")),
        };
        let insert = format!("INSERT INTO {table}(x) VALUES (1)");
        for (what, stmt) in [("create", create), ("insert", insert.as_str())] {
            if let Err(e) = conn.execute(stmt, &[]) {
                return text(500, format!("{what}: {e:?}"));
            }
        }
        match conn.execute(&format!("SELECT count(*) FROM {table}"), &[]) {
            Ok(result) => {
                let count = result
                    .rows
                    .first()
                    .and_then(|row| row.get::<i64>(0))
                    .unwrap_or(-1);
                text(200, format!("{label}:{count}"))
            }
            Err(e) => text(500, format!("select: {e:?}")),
        }
    }

    /// A TEMP table lives only as long as its connection: 1 on every request
    /// when each request gets its own.
    fn db_temp(name: &str) -> Response {
        count_rows(
            name,
            "CREATE TEMP TABLE IF NOT EXISTS scratch(x)",
            "scratch",
            "temp",
        )
    }

    /// A query parameter, parsed.
    fn param<T: std::str::FromStr>(query: &str, name: &str) -> Option<T> {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    }

    fn sql_read() -> Response {
        use spin_sdk::sqlite::Connection;
        match Connection::open_default().and_then(|c| c.execute("SELECT 1", &[])) {
            Ok(_) => text(200, String::new()),
            Err(e) => text(500, format!("{e:?}")),
        }
    }

    /// Connection settings the benchmark may try before the upsert
    /// (issue 14: can they lower the checkpoint of the connection's close?).
    const PRAGMAS: &[&str] = &[
        "journal_size_limit=0",
        "journal_size_limit=1048576",
        "wal_autocheckpoint=0",
        "wal_autocheckpoint=10000",
        "synchronous=NORMAL",
    ];

    /// One upsert; the table is made by the first request that misses it.
    fn sql_write(query: &str) -> Response {
        use spin_sdk::sqlite::{Connection, Value};
        const UPSERT: &str = "INSERT INTO probe_writes (k, n) VALUES (?, 1) \
                              ON CONFLICT (k) DO UPDATE SET n = n + 1";
        let key = Value::Text(param(query, "k").unwrap_or_else(|| "0".to_owned()));
        let conn = match Connection::open_default() {
            Ok(conn) => conn,
            Err(e) => return text(500, format!("open: {e:?}")),
        };
        if let Some(pragma) = param::<String>(query, "pragma") {
            if !PRAGMAS.contains(&pragma.as_str()) {
                return text(400, format!("pragma {pragma:?} is not one of {PRAGMAS:?}"));
            }
            if let Err(e) = conn.execute(&format!("PRAGMA {pragma}"), &[]) {
                return text(500, format!("pragma: {e:?}"));
            }
        }
        let mut done = conn.execute(UPSERT, std::slice::from_ref(&key));
        if done.is_err() {
            let made = conn.execute(
                "CREATE TABLE IF NOT EXISTS probe_writes (k TEXT PRIMARY KEY, n INTEGER NOT NULL)",
                &[],
            );
            if let Err(e) = made {
                return text(500, format!("create: {e:?}"));
            }
            done = conn.execute(UPSERT, &[key]);
        }
        match done {
            Ok(_) => text(200, String::new()),
            Err(e) => text(500, format!("upsert: {e:?}")),
        }
    }

    /// One argon2id hash of a password, as a login's verification computes.
    fn argon2_hash(query: &str) -> Response {
        use argon2::{Algorithm, Argon2, Params, Version};
        let m = param(query, "m").unwrap_or(19_456);
        let t = param(query, "t").unwrap_or(2);
        let params = match Params::new(m, t, 1, Some(32)) {
            Ok(p) => p,
            Err(e) => return text(400, format!("params: {e}")),
        };
        let mut out = [0u8; 32];
        match Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password_into(
            b"correct horse battery staple",
            b"a probe salt, 16+",
            &mut out,
        ) {
            Ok(()) => text(200, format!("{:02x}", out[0])),
            Err(e) => text(500, format!("hash: {e}")),
        }
    }

    fn db(name: &str) -> Response {
        count_rows(name, "CREATE TABLE IF NOT EXISTS t(x)", "t", "ok")
    }

    async fn outbound(query: &str) -> Response {
        let url = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("url="))
            .map(percent_decode)
            .unwrap_or_default();
        if url.is_empty() {
            return text(400, "missing url".to_owned());
        }
        let request = Request::get(url).build();
        match spin_sdk::http::send::<_, Response>(request).await {
            Ok(resp) => text(
                200,
                format!("{} {}", resp.status(), String::from_utf8_lossy(resp.body())),
            ),
            Err(e) => text(502, format!("{e:?}")),
        }
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 3;
                        }
                        Err(_) => {
                            out.push(b'%');
                            i += 1;
                        }
                    }
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Signs and verifies a small token N times per algorithm, inside wasm.
    fn jwt_bench(query: &str) -> Response {
        use jwt_simple::prelude::*;
        let n: u32 = query
            .split('&')
            .find_map(|p| p.strip_prefix("n="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(20)
            .clamp(1, 10_000);
        fn time(n: u32, mut f: impl FnMut()) -> f64 {
            let t = std::time::Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        }
        let claims = || {
            Claims::create(Duration::from_secs(300))
                .with_issuer("https://id.example.com")
                .with_subject("user")
        };
        let es = ES256KeyPair::generate();
        let es_pub = es.public_key();
        let ed = Ed25519KeyPair::generate();
        let ed_pub = ed.public_key();
        let es_token = es.sign(claims()).unwrap_or_default();
        let ed_token = ed.sign(claims()).unwrap_or_default();
        let es_sign = time(n, || {
            let _ = es.sign(claims());
        });
        let es_verify = time(n, || {
            let _ = es_pub.verify_token::<NoCustomClaims>(&es_token, None);
        });
        let ed_sign = time(n, || {
            let _ = ed.sign(claims());
        });
        let ed_verify = time(n, || {
            let _ = ed_pub.verify_token::<NoCustomClaims>(&ed_token, None);
        });
        text(
            200,
            format!("{es_sign:.1} {es_verify:.1} {ed_sign:.1} {ed_verify:.1}"),
        )
    }

    /// RS256 (2048 bits) inside wasm, in µs per operation: key generation
    /// (mean of `keys`), loading the private JWK, signing, verifying.
    fn rsa_bench(query: &str) -> Response {
        use jwt_simple::prelude::*;
        let param = |name: &str, default: u32| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
                .clamp(1, 1000)
        };
        let (n, keys) = (param("n", 20), param("keys", 1));
        fn time(n: u32, mut f: impl FnMut()) -> f64 {
            let t = std::time::Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        }
        let mut key = None;
        let keygen = time(keys, || key = RS256KeyPair::generate(2048).ok());
        let Some(key) = key else {
            return text(500, "RSA key generation failed".to_owned());
        };
        let jwk = key.to_jwk();
        let load = time(n.min(50), || {
            let _ = RS256KeyPair::from_jwk(&jwk);
        });
        let claims = || {
            Claims::create(Duration::from_secs(300))
                .with_issuer("https://id.example.com")
                .with_subject("user")
        };
        let public = key.public_key();
        let token = key.sign(claims()).unwrap_or_default();
        let sign = time(n, || {
            let _ = key.sign(claims());
        });
        let verify = time(n, || {
            let _ = public.verify_token::<NoCustomClaims>(&token, None);
        });
        text(200, format!("{keygen:.0} {load:.1} {sign:.1} {verify:.1}"))
    }

    /// What the first ES256 operations cost in a fresh instance (µs): key
    /// generation (which builds p256's base-point table), the first
    /// signature, the second signature, and loading a private JWK.
    fn jwt_cold() -> Response {
        use jwt_simple::prelude::*;
        let t = std::time::Instant::now();
        let k = ES256KeyPair::generate();
        let a = t.elapsed().as_micros();
        let _ = k.sign(Claims::create(Duration::from_secs(60)));
        let b = t.elapsed().as_micros();
        let _ = k.sign(Claims::create(Duration::from_secs(60)));
        let c = t.elapsed().as_micros();
        let jwk = k.to_jwk();
        let d = t.elapsed().as_micros();
        let k2 = ES256KeyPair::from_jwk(&jwk);
        let e = t.elapsed().as_micros();
        let _ = k2.map(|k| k.public_key().to_jwk());
        let f = t.elapsed().as_micros();
        let _ = d;
        text(
            200,
            format!("{a} {} {} {}", b - a, c - b, (e - d) + (f - e)),
        )
    }
}
