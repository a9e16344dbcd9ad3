//! A Spin-compatible HTTP host for Lanyard's tests.
//!
//! It loads a Spin application manifest (`spin_manifest_version = 2`) and
//! serves its HTTP triggers with wasmtime the way Spin 3/4 does:
//!
//! - **Routing** with `routefinder`, as Spin's router: exact routes beat
//!   parameters and wildcards, the longest wildcard prefix wins, `/...` is a
//!   trailing wildcard, `:name` captures a segment, private routes are never
//!   reachable, and no match is a 404.
//! - **Headers**: the guest sees the full URL and `spin-full-url`,
//!   `spin-path-info`, `spin-matched-route`, `spin-base-path`,
//!   `spin-component-route`, `spin-raw-component-route`, `spin-client-addr`
//!   and `spin-path-match-<name>`.
//! - **A fresh instance per request** from a pre-instantiated component, with
//!   Spin's engine settings: the pooling allocator (Spin's slot counts, 2 MiB
//!   of linear memory kept resident between instances) when the machine has
//!   the address space, as Spin probes for it.
//! - **SQLite as Spin runs it in-process**: each guest `open` gets its own
//!   connection, opened at the first statement and closed with the request.
//! - **Capabilities**: `fermyon:spin/key-value`, `fermyon:spin/sqlite` and
//!   `fermyon:spin/variables` (2.0.0), WASI 0.2 and `wasi:http`, with Spin's
//!   access rules (`key_value_stores`, `sqlite_databases`,
//!   `allowed_outbound_hosts`).
//! - **Local service chaining**: an outbound request to
//!   `http://<component-id>.spin.internal/<path>`, when the caller's
//!   `allowed_outbound_hosts` lets it (`http://<component-id>.spin.internal`
//!   or `http://*.spin.internal`), runs that component in-process, in a
//!   fresh instance, whatever its routes (a private one too), with the
//!   headers Spin gives a chained request (the whole path as
//!   `spin-path-info`, route `/...`, client `0.0.0.0:0`); its answer is the
//!   outbound response. An id that is no HTTP component of the app fails
//!   the request with `DestinationNotFound`. Self-requests (relative URLs,
//!   `self`) are not supported.
//! - **Traps** answer 500 and the host keeps serving.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use spin_test_host::{HostConfig, SpinHost};
//! let host = SpinHost::new(HostConfig {
//!     manifest: "spin.toml".into(),
//!     wasm_dir: Some(spin_test_host::built_wasm_dir()),
//!     data_dir: ".spin".into(),
//!     ..Default::default()
//! })
//! .await?;
//! let req = http::Request::get("/jwks.json").body(bytes::Bytes::new())?;
//! let resp = host.handle(req, "127.0.0.1:50000".parse()?).await;
//! assert_eq!(resp.status(), 200);
//! # Ok(())
//! # }
//! ```

mod allowed_hosts;
mod cache;
mod capabilities;
mod manifest;
mod outbound;
mod router;
mod variables;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use wasmtime::Store;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::allowed_hosts::AllowedHosts;
use crate::capabilities::{ComponentAccess, SpinCtx, SpinView, Stores};
use crate::manifest::{Manifest, RouteDecl};
use crate::outbound::OutboundHooks;
use crate::router::{RouteMatch, Router};

/// Where the build script put the `wasm32-wasip2` components
/// (`<workspace>/target/wasm/wasm32-wasip2/release`).
pub fn built_wasm_dir() -> PathBuf {
    PathBuf::from(env!("LANYARD_WASM_DIR"))
}

/// The repository's own `spin.toml`.
pub fn repo_manifest() -> PathBuf {
    Path::new(env!("LANYARD_WORKSPACE_DIR")).join("spin.toml")
}

/// How to run an application.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// The Spin manifest (`spin.toml`).
    pub manifest: PathBuf,
    /// When set, a component's `source` is looked up as
    /// `wasm_dir/<file name of source>` instead of relative to the manifest.
    pub wasm_dir: Option<PathBuf>,
    /// Where the `default` key-value store (`sqlite_key_value.db`) and the
    /// `default` SQLite database (`sqlite_db.db`) live; created if missing.
    pub data_dir: PathBuf,
    /// Extra environment for the variables provider, e.g.
    /// `SPIN_VARIABLE_ISSUER`; consulted before the process environment.
    pub env: HashMap<String, String>,
    /// Outbound authorities (`host:port`, or just `host`) to send to a local
    /// mock instead, over plain HTTP. The allow-list is checked against the
    /// original URL first.
    pub outbound_overrides: HashMap<String, SocketAddr>,
    /// The host time one `variables::get` costs. `None` is what real Spin 4
    /// costs on the project's machine, [`SPIN_VARIABLE_READ_COST`]
    /// (`SPIN_TEST_HOST_VARIABLE_COST_US` overrides it; 0 turns it off).
    pub variable_read_cost: Option<std::time::Duration>,
}

/// What a `variables::get` costs on real Spin 4.0.2 on the project's
/// machine: twenty reads took a no-op component from 6,300 to 1,830 req/s,
/// about 20 µs each (`../shared/DESIGN.md` §8). A lookup in this host's map
/// costs almost nothing, which would hide from benchmarks the reads a route
/// makes, so the host spends this much CPU on each.
pub const SPIN_VARIABLE_READ_COST: std::time::Duration = std::time::Duration::from_micros(20);

/// The variable read cost for `cfg`: its own, the environment's, or Spin's.
fn variable_read_cost(cfg: &HostConfig) -> anyhow::Result<std::time::Duration> {
    if let Some(cost) = cfg.variable_read_cost {
        return Ok(cost);
    }
    match std::env::var("SPIN_TEST_HOST_VARIABLE_COST_US") {
        Ok(us) => Ok(std::time::Duration::from_micros(
            us.trim().parse().with_context(|| {
                format!("SPIN_TEST_HOST_VARIABLE_COST_US={us:?} is not a whole number of µs")
            })?,
        )),
        Err(_) => Ok(SPIN_VARIABLE_READ_COST),
    }
}

/// A running application: compiled components, router, stores.
pub struct SpinHost {
    app_name: String,
    app_version: String,
    router: Router,
    shared: Arc<Shared>,
}

/// What running a component takes: shared between the host and the stores
/// of the requests in flight, whose outbound hooks hold it weakly (a
/// service-chaining request runs another component through it; a store must
/// not keep a dropped host alive).
struct Shared {
    components: HashMap<String, ComponentRuntime>,
    stores: Arc<Stores>,
    outbound_overrides: Arc<HashMap<String, SocketAddr>>,
    clock: GuestClock,
}

/// The wall clock guests see: the system's, moved forward by what a test
/// asked for ([`SpinHost::advance_clock`]). Spin gives guests the system
/// clock; the offset is zero unless a test moves it.
#[derive(Clone, Default)]
struct GuestClock {
    offset_seconds: Arc<std::sync::atomic::AtomicU64>,
}

impl wasmtime_wasi::HostWallClock for GuestClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(1)
    }

    fn now(&self) -> std::time::Duration {
        let offset = self
            .offset_seconds
            .load(std::sync::atomic::Ordering::SeqCst);
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            + std::time::Duration::from_secs(offset)
    }
}

/// One component, ready to instantiate.
struct ComponentRuntime {
    id: Arc<str>,
    pre: ProxyPre<InstanceState>,
    access: Arc<ComponentAccess>,
    allowed_hosts: Arc<AllowedHosts>,
    environment: Vec<(String, String)>,
}

/// The data of one request's `Store`.
struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    spin: SpinCtx,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl SpinView for InstanceState {
    fn spin(&mut self) -> (&mut SpinCtx, &mut ResourceTable) {
        (&mut self.spin, &mut self.table)
    }
}

impl SpinHost {
    /// Loads the manifest, resolves variables, opens the stores and compiles
    /// (or loads from the cache) every component. Fails, as `spin up` would,
    /// on a required variable without a value, an unknown store or database,
    /// a bad `allowed_outbound_hosts` entry, or a component whose imports the
    /// host does not provide.
    ///
    /// Must be called on a tokio runtime (compilation runs in its blocking
    /// pool); `handle` and `serve` need one too.
    pub async fn new(cfg: HostConfig) -> anyhow::Result<SpinHost> {
        let manifest = Manifest::load(&cfg.manifest)?;
        let manifest_dir = cfg
            .manifest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();

        let resolver = variables::Resolver::new(&manifest.variables, &cfg.env)?;

        let mut accesses = Vec::new();
        let mut policies = Vec::new();
        for (id, decl) in &manifest.component {
            let access = ComponentAccess {
                id: id.clone(),
                key_value_stores: decl.key_value_stores.iter().cloned().collect(),
                sqlite_databases: decl.sqlite_databases.iter().cloned().collect(),
                variables: variables::resolve_component(id, &decl.variables, &resolver)?,
            };
            let hosts = decl
                .allowed_outbound_hosts
                .iter()
                .map(|h| {
                    let template = variables::Template::parse(h)?;
                    resolver.check(&template)?;
                    resolver.expand(&template)
                })
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| format!("component {id:?}: allowed_outbound_hosts"))?;
            let allowed_hosts = AllowedHosts::parse(&hosts)
                .with_context(|| format!("component {id:?}: allowed_outbound_hosts"))?;
            let source = match &cfg.wasm_dir {
                Some(dir) => dir.join(
                    Path::new(decl.source_path())
                        .file_name()
                        .ok_or_else(|| anyhow!("component {id:?}: source has no file name"))?,
                ),
                None => manifest_dir.join(decl.source_path()),
            };
            let environment = decl
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            accesses.push(access);
            policies.push((id.clone(), source, allowed_hosts, environment));
        }

        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("failed to create {}", cfg.data_dir.display()))?;
        let mut stores = Stores::open(&cfg.data_dir, accesses.iter().map(|a| (a.id.as_str(), a)))?;
        stores.variable_cost = variable_read_cost(&cfg)?;

        // Only components that a trigger uses are compiled, as in Spin.
        let used: HashSet<&str> = manifest
            .trigger
            .http
            .iter()
            .filter_map(|t| t.component.as_ref().and_then(|c| c.as_str()))
            .collect();

        let engine = cache::engine()?;
        let mut linker: Linker<InstanceState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)?;
        capabilities::add_to_linker(&mut linker)?;

        let mut components = HashMap::new();
        for (access, (id, source, allowed_hosts, environment)) in accesses.into_iter().zip(policies)
        {
            if !used.contains(id.as_str()) {
                continue;
            }
            let component = {
                let engine = engine.clone();
                let source = source.clone();
                tokio::task::spawn_blocking(move || cache::load_component(&engine, &source))
                    .await
                    .context("component compilation panicked")?
                    .with_context(|| format!("component {id:?}"))?
            };
            let instance_pre = linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component {id:?} ({}) imports something the host does not provide",
                        source.display()
                    )
                })?;
            let pre = ProxyPre::new(instance_pre)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("component {id:?} does not export wasi:http/incoming-handler@0.2")
                })?;
            components.insert(
                id.clone(),
                ComponentRuntime {
                    id: Arc::from(id.as_str()),
                    pre,
                    access: Arc::new(access),
                    allowed_hosts: Arc::new(allowed_hosts),
                    environment,
                },
            );
        }

        let router = Router::build(manifest.trigger.http.iter().filter_map(|t| {
            let component = t.component.as_ref()?.as_str()?;
            Some(match &t.route {
                RouteDecl::Path(route) => (component, Some(route.as_str())),
                RouteDecl::Private { .. } => (component, None),
            })
        }))?;

        Ok(SpinHost {
            app_name: manifest.application.name,
            app_version: manifest.application.version,
            router,
            shared: Arc::new(Shared {
                components,
                stores: Arc::new(stores),
                outbound_overrides: Arc::new(cfg.outbound_overrides),
                clock: GuestClock::default(),
            }),
        })
    }

    /// Serves one request as Spin would: routes it, instantiates the
    /// component afresh and runs it. The response body is buffered. Errors
    /// and traps become a 500 with an empty body (details on stderr).
    ///
    /// A request without a `Host` header (as in-process tests may build
    /// them) is given `Host: localhost`, or the URI's authority if it has
    /// one.
    pub async fn handle(&self, req: Request<Bytes>, client: SocketAddr) -> Response<Bytes> {
        match self.try_handle(req, client).await {
            Ok(resp) => resp,
            Err(e) => {
                eprintln!("spin-test-host: error processing request: {e:?}");
                status_only(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// Accepts HTTP/1.1 connections on `listener` until an accept fails.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        loop {
            let (stream, client) = listener
                .accept()
                .await
                .context("failed to accept a connection")?;
            let host = self.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let host = host.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let resp = match body.collect().await {
                                Ok(body) => {
                                    host.handle(Request::from_parts(parts, body.to_bytes()), client)
                                        .await
                                }
                                Err(_) => status_only(StatusCode::BAD_REQUEST),
                            };
                            Ok::<_, Infallible>(resp.map(Full::new))
                        }
                    });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(wasmtime_wasi_http::io::TokioIo::new(stream), service)
                    .await
                {
                    eprintln!("spin-test-host: error serving connection from {client}: {e}");
                }
            });
        }
    }

    async fn try_handle(
        &self,
        mut req: Request<Bytes>,
        client: SocketAddr,
    ) -> anyhow::Result<Response<Bytes>> {
        strip_forbidden_headers(&mut req);
        let path = req.uri().path().to_owned();

        if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
            return Ok(match well_known {
                "health" => Response::new(Bytes::from_static(b"OK")),
                "info" => {
                    let body = serde_json::json!({
                        "name": self.app_name,
                        "version": self.app_version,
                    });
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Bytes::from(serde_json::to_vec_pretty(&body)?))?
                }
                _ => status_only(StatusCode::NOT_FOUND),
            });
        }

        let Some(route_match) = self.router.route(&path) else {
            return Ok(status_only(StatusCode::NOT_FOUND));
        };
        let component = self
            .shared
            .components
            .get(&route_match.component_id)
            .ok_or_else(|| anyhow!("unknown component {:?}", route_match.component_id))?;
        let req = prepare_request(req, &route_match, client)?;
        self.shared.execute(component, req).await
    }

    /// Moves the guests' wall clock forward by `seconds` (on top of any
    /// earlier move), for tests of what time changes: a sign-in that is no
    /// longer recent, an expired link. The host's own clock is untouched.
    pub fn advance_clock(&self, seconds: u64) {
        self.shared
            .clock
            .offset_seconds
            .fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes every key-value and/or SQLite operation fail from now on, as
    /// Spin reports a broken backend (`attempt to write a readonly
    /// database`), or heals them again. For tests of how the app answers a
    /// store fault.
    pub fn inject_fault(&self, key_value: bool, sqlite: bool) {
        use std::sync::atomic::Ordering;
        let stores = &self.shared.stores;
        stores.fault.key_value.store(key_value, Ordering::SeqCst);
        stores.fault.sqlite.store(sqlite, Ordering::SeqCst);
    }

    /// How many SQL statements the guests have run on SQLite databases
    /// (`fermyon:spin/sqlite` `execute` calls that reached the database,
    /// failed ones included; key-value operations and calls refused by an
    /// injected fault are not counted) since the host started: a running
    /// total, for benchmarks and tests to take differences of.
    pub fn sql_statements(&self) -> u64 {
        self.shared
            .stores
            .statements
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many `variables::get` calls the guests have made (valid names,
    /// defined or not) since the host started: a running total, for
    /// benchmarks to take differences of.
    pub fn variable_reads(&self) -> u64 {
        self.shared
            .stores
            .variable_reads
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Instantiates a component without calling it: the per-request setup
    /// cost, for benchmarks.
    pub async fn instantiate(&self, component: &str) -> anyhow::Result<()> {
        let runtime = self
            .shared
            .components
            .get(component)
            .ok_or_else(|| anyhow!("unknown component {component:?}"))?;
        let mut store = self.shared.new_store(runtime);
        runtime.pre.instantiate_async(&mut store).await?;
        Ok(())
    }
}

impl Shared {
    /// A fresh `Store` for one request to `component`, as Spin gives each request.
    fn new_store(self: &Arc<Self>, component: &ComponentRuntime) -> Store<InstanceState> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        wasi.envs(&component.environment);
        wasi.wall_clock(self.clock.clone());
        let state = InstanceState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks {
                component_id: component.id.clone(),
                allowed: component.allowed_hosts.clone(),
                overrides: self.outbound_overrides.clone(),
                host: Arc::downgrade(self),
            },
            spin: SpinCtx {
                access: component.access.clone(),
                stores: self.stores.clone(),
            },
        };
        Store::new(component.pre.engine(), state)
    }

    /// Runs one request through a fresh instance of `component`: an incoming
    /// request once routed, or a service-chaining request.
    async fn execute(
        self: &Arc<Self>,
        component: &ComponentRuntime,
        req: Request<Bytes>,
    ) -> anyhow::Result<Response<Bytes>> {
        let mut store = self.new_store(component);

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req.map(Full::new))
            .map_err(anyhow::Error::from)?;
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(anyhow::Error::from)?;

        let pre = component.pre.clone();
        let id = component.id.clone();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        });

        match receiver.await {
            Ok(Ok(resp)) => {
                // The guest may go on running after sending the head; report
                // a failure then on stderr, as Spin does.
                let watch_id = id.clone();
                let (parts, body) = resp.into_parts();
                let body = body.collect().await;
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => eprintln!(
                            "spin-test-host: component {watch_id:?} failed after its response started: {e:?}"
                        ),
                        Err(e) => eprintln!(
                            "spin-test-host: component {watch_id:?} task failed after its response started: {e}"
                        ),
                    }
                });
                let body = body
                    .map_err(|code| anyhow!("component {id:?}: response body failed: {code:?}"))?
                    .to_bytes();
                Ok(Response::from_parts(parts, body))
            }
            Ok(Err(code)) => {
                bail!("component {id:?}: guest failed to produce a response: {code:?}")
            }
            Err(_) => {
                let result = task
                    .await
                    .with_context(|| format!("component {id:?}: guest invocation panicked"))?;
                result
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("component {id:?}: guest invocation failed"))?;
                bail!("component {id:?}: guest failed to produce a response prior to returning")
            }
        }
    }
}

fn status_only(status: StatusCode) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::new());
    *resp.status_mut() = status;
    resp
}

/// Spin drops a `Host` header that names a service-chaining host
/// (`*.spin.internal`).
fn strip_forbidden_headers(req: &mut Request<Bytes>) {
    let chaining = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| outbound::service_chaining_target(h).is_some());
    if chaining {
        req.headers_mut().remove(http::header::HOST);
    }
}

/// Gives the request an absolute `http://` URI and the headers Spin adds.
fn prepare_request(
    mut req: Request<Bytes>,
    route: &RouteMatch,
    client: SocketAddr,
) -> anyhow::Result<Request<Bytes>> {
    // The authority: the Host header, else the URI's, else localhost; both
    // present must agree (as in Spin).
    let header_authority = req
        .headers()
        .get(http::header::HOST)
        .map(|h| -> anyhow::Result<http::uri::Authority> {
            h.to_str()
                .context("'Host' header is not valid UTF-8")?
                .parse()
                .context("'Host' header contains an invalid authority")
        })
        .transpose()?;
    let authority = match (header_authority, req.uri().authority().cloned()) {
        (Some(a), Some(b)) if a != b => {
            bail!("authority in 'Host' header does not match authority in URI")
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => http::uri::Authority::from_static("localhost"),
    };
    if !req.headers().contains_key(http::header::HOST) {
        req.headers_mut().insert(
            http::header::HOST,
            HeaderValue::from_str(authority.as_str())?,
        );
    }
    set_http_uri(&mut req, authority)?;
    set_spin_headers(&mut req, route, client)?;
    Ok(req)
}

/// Makes the request's URI `http://<authority><path and query>`, as Spin
/// hands requests to components.
fn set_http_uri(req: &mut Request<Bytes>, authority: http::uri::Authority) -> anyhow::Result<()> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    *req.uri_mut() = http::Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path_and_query.as_str())
        .build()
        .context("invalid request URI")?;
    Ok(())
}

/// The client address a service-chaining request carries (Spin's
/// `CHAINED_CLIENT_ADDR`).
pub(crate) const CHAINED_CLIENT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// A service-chaining request (`http://<component>.spin.internal/<path>`)
/// as Spin hands it to the target component: the URI as sent, with scheme
/// `http`; the caller's headers without `Host` (Spin's outbound client drops
/// it), so `spin-full-url` names `localhost`; and the headers of a match of
/// the whole path against a synthetic `/...` route: `spin-path-info` is the
/// path, `spin-matched-route` and `spin-raw-component-route` are `/...`,
/// `spin-component-route` is empty, and `spin-client-addr` is `0.0.0.0:0`.
pub(crate) fn prepare_chained_request(
    mut req: Request<Bytes>,
    component_id: &str,
) -> anyhow::Result<Request<Bytes>> {
    req.headers_mut().remove(http::header::HOST);
    let authority = req
        .uri()
        .authority()
        .cloned()
        .context("a service-chaining request has no authority")?;
    set_http_uri(&mut req, authority)?;
    let route = RouteMatch::synthetic(component_id, req.uri().path());
    set_spin_headers(&mut req, &route, CHAINED_CLIENT_ADDR)?;
    Ok(req)
}

/// Rebuilds the header map as Spin does: the client's headers (which must be
/// UTF-8), then its own, appended. `spin-full-url` is built from the `Host`
/// header (`localhost` without one) and the URI's path and query.
fn set_spin_headers(
    req: &mut Request<Bytes>,
    route: &RouteMatch,
    client: SocketAddr,
) -> anyhow::Result<()> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in req.headers() {
        let value = std::str::from_utf8(value.as_bytes())
            .with_context(|| format!("header {name} is not valid UTF-8"))?;
        headers.push((name.to_string(), value.to_owned()));
    }
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let full_url = format!("http://{host}{path_and_query}");
    headers.push(("spin-path-info".into(), route.path_info.clone()));
    headers.push(("spin-full-url".into(), full_url));
    headers.push(("spin-matched-route".into(), route.based_route.clone()));
    headers.push(("spin-base-path".into(), "/".into()));
    headers.push(("spin-raw-component-route".into(), route.raw_route.clone()));
    headers.push((
        "spin-component-route".into(),
        route.raw_route_or_prefix().to_owned(),
    ));
    headers.push(("spin-client-addr".into(), client.to_string()));
    for (name, value) in &route.named_wildcards {
        headers.push((
            format!(
                "spin-path-match-{}",
                name.to_ascii_lowercase().replace('_', "-")
            ),
            value.clone(),
        ));
    }

    let map = req.headers_mut();
    map.clear();
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (
            name.parse::<HeaderName>(),
            HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    Ok(())
}
