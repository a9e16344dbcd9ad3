//! Shared helpers for the end-to-end tests: the app from the repository's
//! `spin.toml` on the test host, a cookie-keeping browser, a mock upstream;
//! in `orgs`, organisations, people and the code flow of a b2b client.
#![allow(dead_code)]

pub mod orgs;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde_json::Value;
use spin_test_host::{HostConfig, SpinHost, built_wasm_dir, repo_manifest};
use tempfile::TempDir;

pub const ISSUER: &str = "https://id.example.test";

/// The app, its data directory (kept alive with it), and where it sends outbound calls.
pub struct App {
    pub host: SpinHost,
    pub data: TempDir,
    /// The `issuer` variable.
    pub issuer: String,
}

/// `SPIN_VARIABLE_*` settings for these variables.
fn spin_env(vars: &[(&str, &str)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.to_string()))
        .collect()
}

impl App {
    /// The app with these `SPIN_VARIABLE_*` values and outbound overrides.
    pub async fn start(vars: &[(&str, &str)], overrides: &[(&str, SocketAddr)]) -> App {
        let data = tempfile::tempdir().unwrap();
        let host = SpinHost::new(HostConfig {
            manifest: repo_manifest(),
            wasm_dir: Some(built_wasm_dir()),
            data_dir: data.path().to_owned(),
            env: spin_env(vars),
            outbound_overrides: overrides.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
        let issuer = vars
            .iter()
            .rev()
            .find(|(k, _)| *k == "issuer")
            .map_or(ISSUER, |(_, v)| *v)
            .to_owned();
        App { host, data, issuer }
    }

    /// Like [`App::dev`], but the issuer is `http://127.0.0.1:<port>`, where
    /// a second host on the same data serves the app over real HTTP: for
    /// the demo, which calls the issuer like any application, and for
    /// back-channel logout to the demo (`logout_outbound_host_1`).
    pub async fn dev_on_loopback(extra: &[(&str, &str)]) -> App {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let mut vars = vec![
            ("issuer", base.as_str()),
            ("dev_mode", "true"),
            ("argon2_memory_kib", "8192"),
            ("argon2_iterations", "1"),
            ("logout_outbound_host_1", base.as_str()),
        ];
        vars.extend_from_slice(extra);
        let app = App::start(&vars, &[]).await;
        let served = SpinHost::new(HostConfig {
            manifest: repo_manifest(),
            wasm_dir: Some(built_wasm_dir()),
            data_dir: app.data.path().to_owned(),
            env: spin_env(&vars),
            ..Default::default()
        })
        .await
        .unwrap();
        tokio::spawn(Arc::new(served).serve(listener));
        app
    }

    /// dev_mode on, cheap argon2 (tests are about behaviour; the benchmark uses the defaults).
    pub async fn dev(extra: &[(&str, &str)]) -> App {
        let mut vars = vec![
            ("issuer", ISSUER),
            ("dev_mode", "true"),
            ("argon2_memory_kib", "8192"),
            ("argon2_iterations", "1"),
        ];
        vars.extend_from_slice(extra);
        App::start(&vars, &[]).await
    }

    pub async fn send_from(&self, req: Request<Bytes>, client: &str) -> Response<Bytes> {
        self.host.handle(req, client.parse().unwrap()).await
    }

    pub async fn send(&self, req: Request<Bytes>) -> Response<Bytes> {
        self.send_from(req, "127.0.0.1:40000").await
    }

    pub async fn get(&self, path: &str) -> Response<Bytes> {
        self.send(Request::get(path).body(Bytes::new()).unwrap())
            .await
    }

    /// A direct look into the app's SQLite database, as an operator would take.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data.path().join("sqlite_db.db")).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap_or(0)
    }

    /// The dev outbox for one recipient, newest first.
    pub async fn outbox(&self, to: &str) -> Vec<Value> {
        let res = self
            .get(&format!("/dev/outbox.json?to={}", urlencode(to)))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        json(&res).as_array().unwrap().clone()
    }

    /// The path and query of the newest link mailed to `to`.
    pub async fn mailed_link(&self, to: &str) -> String {
        let mails = self.outbox(to).await;
        let link = mails
            .first()
            .and_then(|m| m["link"].as_str())
            .expect("a mail with a link")
            .to_owned();
        link.strip_prefix(self.issuer.as_str()).unwrap().to_owned()
    }
}

/// The app served over real HTTP on a loopback port from a background
/// runtime, for clients outside the process (Chromium, Node.js).
pub struct Served {
    /// `http://<hostname>:<port>`, also the issuer.
    pub base: String,
    /// The serving task: finished only if the host stopped.
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _data: TempDir,
    _runtime: tokio::runtime::Runtime,
}

/// Serves the app at `http://<hostname>:<free port>` in `dev_mode` with cheap
/// argon2, the issuer being that address, plus these variables.
pub fn serve(hostname: &str, vars: &[(&str, &str)]) -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!(
        "http://{hostname}:{}",
        listener.local_addr().unwrap().port()
    );
    let data = tempfile::tempdir().unwrap();
    let mut all = vec![
        ("issuer", base.as_str()),
        ("dev_mode", "true"),
        ("argon2_memory_kib", "8192"),
        ("argon2_iterations", "1"),
    ];
    all.extend_from_slice(vars);
    let env = all
        .iter()
        .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.to_string()))
        .collect();
    let host = runtime
        .block_on(SpinHost::new(HostConfig {
            manifest: repo_manifest(),
            wasm_dir: Some(built_wasm_dir()),
            data_dir: data.path().to_owned(),
            env,
            ..Default::default()
        }))
        .unwrap();
    let task = runtime.spawn(Arc::new(host).serve(listener));
    Served {
        base,
        task,
        _data: data,
        _runtime: runtime,
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn form_body(fields: &[(&str, &str)]) -> Bytes {
    Bytes::from(
        fields
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

pub fn json(res: &Response<Bytes>) -> Value {
    serde_json::from_slice(res.body())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", res.body()))
}

pub fn text(res: &Response<Bytes>) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

pub fn header<'a>(res: &'a Response<Bytes>, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// A browser: keeps cookies, fills CSRF tokens, comes from one address.
pub struct Browser<'a> {
    pub app: &'a App,
    pub cookies: HashMap<String, String>,
    pub addr: String,
    pub set_cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a App) -> Self {
        Self::from_addr(app, "127.0.0.1:40000")
    }

    pub fn from_addr(app: &'a App, addr: &str) -> Self {
        Browser {
            app,
            cookies: HashMap::new(),
            addr: addr.into(),
            set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, mut builder: http::request::Builder, body: Bytes) -> Response<Bytes> {
        if !self.cookies.is_empty() {
            builder = builder.header("cookie", self.cookie_header());
        }
        let res = self
            .app
            .send_from(builder.body(body).unwrap(), &self.addr)
            .await;
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap().to_owned();
            let pair = v.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if v.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.into(), value.into());
            }
            self.set_cookies.push(v);
        }
        res
    }

    pub async fn get(&mut self, path: &str) -> Response<Bytes> {
        self.send(Request::get(path), Bytes::new()).await
    }

    /// POSTs a form, adding the CSRF token from the cookie (fetching a page first if needed).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response<Bytes> {
        if !self.cookies.contains_key("__Host-lanyard_csrf") {
            self.get("/login").await;
        }
        let token = self.cookies["__Host-lanyard_csrf"].clone();
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, form_body(&all)).await
    }

    pub async fn post_raw(&mut self, path: &str, body: Bytes) -> Response<Bytes> {
        let b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        self.send(b, body).await
    }

    pub fn session(&self) -> Option<String> {
        self.cookies.get("__Host-lanyard_session").cloned()
    }
}

/// A mock upstream (mail API, identity provider, an application's logout
/// endpoint) on a loopback port: it records each request and answers with
/// the status set in `status`, after `delay` seconds.
#[derive(Clone)]
pub struct Mock {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<(http::request::Parts, Bytes)>>>,
    pub status: Arc<Mutex<u16>>,
    pub delay: Arc<Mutex<u64>>,
}

impl Mock {
    pub async fn start(status: u16) -> Mock {
        Mock::start_at("127.0.0.1:0".parse().unwrap(), status).await
    }

    /// A mock at `addr` (a port that refused connections until now).
    pub async fn start_at(addr: SocketAddr, status: u16) -> Mock {
        use http_body_util::{BodyExt, Full};
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let mock = Mock {
            addr: listener.local_addr().unwrap(),
            requests: Default::default(),
            status: Arc::new(Mutex::new(status)),
            delay: Default::default(),
        };
        let m = mock.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let m = m.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let m = m.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            m.requests.lock().unwrap().push((parts, body));
                            let delay = *m.delay.lock().unwrap();
                            if delay > 0 {
                                tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
                            }
                            let status = *m.status.lock().unwrap();
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"{\"id\":\"mock\"}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let io = wasmtime_wasi_http::io::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        mock
    }

    pub fn set_status(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    /// Seconds to wait before each answer from now on.
    pub fn set_delay(&self, seconds: u64) {
        *self.delay.lock().unwrap() = seconds;
    }

    /// The `logout_token` of each form POSTed so far.
    pub fn logout_tokens(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, b)| {
                url::form_urlencoded::parse(b)
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
            })
            .collect()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap_or(Value::Null))
            .collect()
    }
}
