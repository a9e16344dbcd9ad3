//! The Spin adapter: the storage traits and variables over spin-sdk 5.2, and
//! [`serve`], which turns an incoming Spin request into a domain request and
//! writes the domain's response through wasi-http itself (every header kept,
//! repeated `Set-Cookie` included). Built only for `wasm32`; everything else
//! in the crate is native too.

use std::cell::{OnceCell, RefCell};

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types as wh};
use spin_sdk::{key_value, sqlite, variables};
use wasi::clocks::monotonic_clock;
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::StreamError;

use crate::config::{self, Variables};
use crate::error::{Error, Result};
use crate::routes::errors::Style;
use crate::store::schema::Migrated;
use crate::store::{KvStore, Row, Rows, SqlStore, Value};
use crate::web::{self, Request, Response};
use crate::{Env, time};

/// Spin variables of the running component. Each host call costs tens of
/// microseconds, so a value read twice in one request is read once.
#[derive(Default)]
pub struct SpinVariables {
    seen: RefCell<Vec<(String, Option<String>)>>,
}

impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<Option<String>> {
        if let Some((_, v)) = self.seen.borrow().iter().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        let value = match variables::get(name) {
            Ok(v) => Some(v),
            Err(variables::Error::Undefined(_)) => None,
            Err(e) => return Err(Error::config(name, format!("{e:?}"))),
        };
        self.seen
            .borrow_mut()
            .push((name.to_owned(), value.clone()));
        Ok(value)
    }
}

/// The `default` key-value store, opened on first use.
#[derive(Default)]
pub struct SpinKv {
    store: OnceCell<key_value::Store>,
}

impl SpinKv {
    fn store(&self) -> Result<&key_value::Store> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let opened = key_value::Store::open_default()
            .map_err(|e| Error::Storage(format!("key-value: {e:?}")))?;
        Ok(self.store.get_or_init(|| opened))
    }
}

fn kv_err(e: key_value::Error) -> Error {
    Error::Storage(format!("key-value: {e:?}"))
}

impl KvStore for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.store()?.get(key).map_err(kv_err)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.store()?.set(key, value).map_err(kv_err)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.store()?.delete(key).map_err(kv_err)
    }
}

/// The `default` SQLite database, opened on first use.
#[derive(Default)]
pub struct SpinSql {
    conn: OnceCell<sqlite::Connection>,
}

impl SpinSql {
    fn conn(&self) -> Result<&sqlite::Connection> {
        if let Some(c) = self.conn.get() {
            return Ok(c);
        }
        let opened = sqlite::Connection::open_default().map_err(sql_err)?;
        Ok(self.conn.get_or_init(|| opened))
    }
}

fn sql_err(e: sqlite::Error) -> Error {
    match e {
        sqlite::Error::Io(msg) => Error::Storage(msg),
        other => Error::Storage(format!("sqlite: {other:?}")),
    }
}

impl SqlStore for SpinSql {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows> {
        let params: Vec<sqlite::Value> = params
            .iter()
            .map(|v| match v {
                Value::Integer(i) => sqlite::Value::Integer(*i),
                Value::Real(r) => sqlite::Value::Real(*r),
                Value::Text(t) => sqlite::Value::Text(t.clone()),
                Value::Blob(b) => sqlite::Value::Blob(b.clone()),
                Value::Null => sqlite::Value::Null,
            })
            .collect();
        let result = self.conn()?.execute(sql, &params).map_err(sql_err)?;
        let rows = result
            .rows
            .into_iter()
            .map(|r| {
                Row(r
                    .values
                    .into_iter()
                    .map(|v| match v {
                        sqlite::Value::Integer(i) => Value::Integer(i),
                        sqlite::Value::Real(r) => Value::Real(r),
                        sqlite::Value::Text(t) => Value::Text(t),
                        sqlite::Value::Blob(b) => Value::Blob(b),
                        sqlite::Value::Null => Value::Null,
                    })
                    .collect())
            })
            .collect();
        Ok(Rows {
            columns: result.columns,
            rows,
        })
    }
}

/// Outbound HTTP through Spin (`wasi:http/outgoing-handler`), limited by the
/// component's `allowed_outbound_hosts`, with bounded time-outs: a host
/// that does not connect within [`CONNECT_TIMEOUT_NS`] or answer within
/// [`ANSWER_TIMEOUT_NS`] fails the request instead of holding it. A host
/// the component may not reach is reported as [`Error::OutboundDenied`].
pub struct SpinHttp;

/// Nanoseconds to connect.
pub const CONNECT_TIMEOUT_NS: u64 = 5_000_000_000;
/// Nanoseconds to the first byte of the answer, and between its bytes.
pub const ANSWER_TIMEOUT_NS: u64 = 10_000_000_000;
/// The largest answer read.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

impl crate::mail::HttpClient for SpinHttp {
    fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>> {
        let origin = origin(req.uri());
        send_bounded(req).map_err(|e| outbound_error(&origin, e))
    }

    /// Sends every request at once over `wasi:http/outgoing-handler`, each
    /// with its connect, first-byte and between-bytes time-outs at `limit`,
    /// and waits for the answers together with one deadline at `limit`; a
    /// request unanswered by then is abandoned and fails as
    /// [`Error::Unavailable`].
    fn send_all(
        &self,
        reqs: Vec<http::Request<Vec<u8>>>,
        limit: std::time::Duration,
    ) -> Vec<Result<http::StatusCode>> {
        send_parallel(reqs, limit)
    }
}

/// `scheme://authority` of `uri`, the whole URI when it has neither: how
/// errors name the host.
fn origin(uri: &http::Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(s), Some(a)) => format!("{s}://{a}"),
        _ => uri.to_string(),
    }
}

/// The domain's error for a request to `origin` that failed: a host the
/// component may not reach is [`Error::OutboundDenied`], anything else
/// [`Error::Unavailable`].
fn outbound_error(origin: &str, e: Failure) -> Error {
    use wh::ErrorCode as C;
    match e {
        Failure::Code(C::HttpRequestDenied) => Error::OutboundDenied(origin.to_owned()),
        Failure::Code(
            C::ConnectionTimeout
            | C::ConnectionReadTimeout
            | C::ConnectionWriteTimeout
            | C::HttpResponseTimeout,
        ) => Error::Unavailable(format!("{origin} timed out")),
        Failure::Code(C::DnsError(_)) => {
            Error::Unavailable(format!("the name of {origin} does not resolve"))
        }
        Failure::Code(C::ConnectionRefused) => {
            Error::Unavailable(format!("{origin} refused the connection"))
        }
        Failure::Code(other) => Error::Unavailable(format!("{origin}: {other:?}")),
        Failure::Other(why) => Error::Unavailable(format!("{origin}: {why}")),
    }
}

/// Why an outbound request failed.
enum Failure {
    /// The host's wasi-http error code.
    Code(wh::ErrorCode),
    /// Anything else (a request the bindings refuse, a broken stream).
    Other(String),
}

fn other(why: impl Into<String>) -> Failure {
    Failure::Other(why.into())
}

/// Hands `req` to the host (`outgoing-handler.handle`) with the time-outs
/// `connect_ns` to connect and `answer_ns` to the answer's first byte and
/// between its bytes. Returns the answer's future, and the request's body
/// handle with the bytes still to write into it (then finish it).
fn dispatch(
    req: http::Request<Vec<u8>>,
    connect_ns: u64,
    answer_ns: u64,
) -> Result<(wh::FutureIncomingResponse, wh::OutgoingBody, Vec<u8>), Failure> {
    let (parts, body) = req.into_parts();
    let headers = wh::Fields::new();
    for (name, value) in &parts.headers {
        headers
            .append(name.as_str(), value.as_bytes())
            .map_err(|e| other(format!("header {name}: {e:?}")))?;
    }
    let out = wh::OutgoingRequest::new(headers);
    let method = match parts.method {
        http::Method::GET => wh::Method::Get,
        http::Method::POST => wh::Method::Post,
        http::Method::PUT => wh::Method::Put,
        http::Method::DELETE => wh::Method::Delete,
        http::Method::HEAD => wh::Method::Head,
        http::Method::PATCH => wh::Method::Patch,
        http::Method::OPTIONS => wh::Method::Options,
        ref m => wh::Method::Other(m.to_string()),
    };
    let scheme = match parts.uri.scheme_str() {
        Some("https") => wh::Scheme::Https,
        Some("http") => wh::Scheme::Http,
        Some(s) => wh::Scheme::Other(s.to_owned()),
        None => return Err(other("the URL has no scheme")),
    };
    out.set_method(&method).map_err(|()| refused("method"))?;
    out.set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    out.set_authority(parts.uri.authority().map(|a| a.as_str()))
        .map_err(|()| refused("host"))?;
    out.set_path_with_query(parts.uri.path_and_query().map(|p| p.as_str()))
        .map_err(|()| refused("path"))?;
    let options = wh::RequestOptions::new();
    options
        .set_connect_timeout(Some(connect_ns))
        .and_then(|()| options.set_first_byte_timeout(Some(answer_ns)))
        .and_then(|()| options.set_between_bytes_timeout(Some(answer_ns)))
        .map_err(|()| refused("time-out"))?;
    let outgoing = out.body().map_err(|()| refused("body"))?;
    let future = outgoing_handler::handle(out, Some(options)).map_err(Failure::Code)?;
    Ok((future, outgoing, body))
}

fn refused(what: &str) -> Failure {
    other(format!("the {what} is refused"))
}

/// Sends a request with time-outs (`request-options`), writing and reading
/// the bodies with blocking calls: the handler is synchronous anyway.
fn send_bounded(req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, Failure> {
    let (future, outgoing, body) = dispatch(req, CONNECT_TIMEOUT_NS, ANSWER_TIMEOUT_NS)?;
    {
        let stream = outgoing.write().map_err(|()| refused("body"))?;
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| other(format!("writing the body: {e:?}")))?;
        }
    }
    wh::OutgoingBody::finish(outgoing, None).map_err(Failure::Code)?;
    future.subscribe().block();
    let incoming = match future.get() {
        Some(Ok(Ok(res))) => res,
        Some(Ok(Err(code))) => return Err(Failure::Code(code)),
        Some(Err(())) | None => return Err(other("no answer")),
    };
    let mut builder = http::Response::builder().status(incoming.status());
    for (name, value) in incoming.headers().entries() {
        builder = builder.header(name, value);
    }
    let body = incoming
        .consume()
        .map_err(|()| other("the answer has no body"))?;
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| other("the answer has no body"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(wasi::io::streams::StreamError::Closed) => break,
                Err(wasi::io::streams::StreamError::LastOperationFailed(e)) => {
                    return Err(other(format!(
                        "reading the answer: {}",
                        e.to_debug_string()
                    )));
                }
            }
            if bytes.len() > MAX_ANSWER_BYTES {
                return Err(other("the answer is too large"));
            }
        }
    }
    drop(wh::IncomingBody::finish(body));
    builder
        .body(bytes)
        .map_err(|e| other(format!("the answer is malformed: {e}")))
}

/// A request of [`send_parallel`] sent, its answer awaited.
struct InFlight {
    /// Its place in the requests (and the answers).
    slot: usize,
    /// Ready once `future` is. Declared before `future` so that it is
    /// dropped first: wasi-http makes it the future's child resource, and
    /// dropping a resource that still has children traps.
    ready: Pollable,
    /// The answer, or why there is none.
    future: wh::FutureIncomingResponse,
}

/// Sends every request at once, each with its time-outs at `limit`, and
/// waits for their answers (all of them polled together with one deadline
/// `limit` from the start) until every one is in or the deadline passes.
/// Returns each answer's status, in the order of `reqs`; the answers'
/// bodies are never read. A request still unanswered at the deadline fails
/// as [`Error::Unavailable`] and is abandoned (its future dropped, which
/// cancels it).
fn send_parallel(
    reqs: Vec<http::Request<Vec<u8>>>,
    limit: std::time::Duration,
) -> Vec<Result<http::StatusCode>> {
    if reqs.is_empty() {
        return Vec::new();
    }
    let limit_ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
    let origins: Vec<String> = reqs.iter().map(|r| origin(r.uri())).collect();
    // Until it is answered, every request counts as late.
    let mut results: Vec<Result<http::StatusCode>> = origins
        .iter()
        .map(|o| {
            Err(Error::Unavailable(format!(
                "{o} did not answer within {} ms",
                limit.as_millis()
            )))
        })
        .collect();
    // The deadline runs from before the first request: writing the bodies
    // counts against it too.
    let deadline = monotonic_clock::subscribe_duration(limit_ns);
    let mut flights = Vec::with_capacity(reqs.len());
    for (slot, req) in reqs.into_iter().enumerate() {
        match launch(req, limit_ns, &deadline) {
            Ok(Some(future)) => flights.push(InFlight {
                slot,
                ready: future.subscribe(),
                future,
            }),
            // The deadline passed while the body was written: late.
            Ok(None) => {}
            Err(e) => results[slot] = Err(outbound_error(&origins[slot], e)),
        }
    }
    while !flights.is_empty() {
        // The same pollables are polled again on each round: polling does
        // not consume them, and the futures still pending are all that are
        // polled, so the call only returns for news.
        let fired = {
            let mut list: Vec<&Pollable> = flights.iter().map(|f| &f.ready).collect();
            list.push(&deadline);
            poll::poll(&list)
        };
        let mut is_ready = vec![false; flights.len() + 1];
        for i in fired {
            if let Some(r) = usize::try_from(i).ok().and_then(|i| is_ready.get_mut(i)) {
                *r = true;
            }
        }
        let expired = is_ready.last().copied().unwrap_or(true);
        let mut waiting = Vec::with_capacity(flights.len());
        for (flight, ready) in flights.into_iter().zip(is_ready) {
            // Answers in at the deadline's round are still taken. A ready
            // future has its answer (`get` is `some`); were it not so, it
            // would only be polled again until the deadline.
            match ready.then(|| status_of(&flight.future)).flatten() {
                Some(status) => {
                    results[flight.slot] =
                        status.map_err(|e| outbound_error(&origins[flight.slot], e));
                }
                None => waiting.push(flight),
            }
        }
        flights = waiting;
        if expired {
            break;
        }
    }
    // Whatever is left is late: dropping its future abandons the request.
    drop(flights);
    drop(deadline);
    results
}

/// Hands `req` to the host with every time-out a second past `limit_ns`, writes its
/// body and finishes it. Returns the answer's future, or `None` when the
/// body could not be written before `deadline` (the request is then
/// abandoned, its body unfinished).
///
/// The body goes in one non-blocking write when the stream takes it all,
/// as it does a small body before the connection is even made; only a
/// larger one waits for room, and no later than `deadline`.
fn launch(
    req: http::Request<Vec<u8>>,
    limit_ns: u64,
    deadline: &Pollable,
) -> Result<Option<wh::FutureIncomingResponse>, Failure> {
    // The host's own time-outs are a backstop a second past the deadline:
    // the deadline decides, so that a late answer is always reported as
    // late, whichever of the two the host would notice first.
    let backstop_ns = limit_ns.saturating_add(1_000_000_000);
    let (future, outgoing, body) = dispatch(req, backstop_ns, backstop_ns)?;
    {
        let stream = outgoing.write().map_err(|()| refused("body"))?;
        let failed = |e: StreamError| other(format!("writing the body: {e:?}"));
        let mut rest = body.as_slice();
        while !rest.is_empty() {
            let room = stream.check_write().map_err(failed)?;
            if room == 0 {
                let writable = stream.subscribe();
                if poll::poll(&[&writable, deadline]).contains(&1) {
                    return Ok(None);
                }
                continue;
            }
            let n = usize::try_from(room).unwrap_or(usize::MAX).min(rest.len());
            let (now, later) = rest.split_at(n);
            stream.write(now).map_err(failed)?;
            rest = later;
        }
        stream.flush().map_err(failed)?;
    }
    wh::OutgoingBody::finish(outgoing, None).map_err(Failure::Code)?;
    Ok(Some(future))
}

/// The status of `future`'s answer, or why there is none; `None` while it
/// is not in yet. The answer's body is not read: the response is dropped
/// unconsumed, which drops its body with it.
fn status_of(future: &wh::FutureIncomingResponse) -> Option<Result<http::StatusCode, Failure>> {
    let incoming = match future.get()? {
        Ok(Ok(res)) => res,
        Ok(Err(code)) => return Some(Err(Failure::Code(code))),
        Err(()) => return Some(Err(other("no answer"))),
    };
    let status = incoming.status();
    drop(incoming);
    Some(
        http::StatusCode::from_u16(status)
            .map_err(|_| other(format!("the answer's status {status} is invalid"))),
    )
}

/// A domain request handler, as exported by `crate::routes`.
pub type Handler = fn(&Env, Request) -> Response;

/// Reads the request (refusing bodies over `max_body_bytes` with 413), runs
/// the handler against Spin's stores, and sends its response through `out`.
///
/// The response is written here rather than returned to spin-sdk: its
/// `IntoResponse` keeps headers in a map, one value per name, which would
/// drop all but one of several `Set-Cookie` headers.
pub async fn serve(req: IncomingRequest, out: ResponseOutparam, handler: Handler) {
    let path = req.path_with_query().unwrap_or_else(|| "/".into());
    let style = crate::routes::style_for(&path);
    let vars = SpinVariables::default();
    let res = respond(req, &vars, handler).await;
    send_response(out, res, style);
}

async fn respond(req: IncomingRequest, vars: &SpinVariables, handler: Handler) -> Response {
    let mut res = match read_request(req, vars).await {
        Ok(request) => {
            let (kv, sql) = (SpinKv::default(), SpinSql::default());
            // The schema is checked once, before the request's first statement.
            let sql = Migrated::new(&sql);
            let env = Env {
                kv: &kv,
                sql: &sql,
                vars,
                http: &SpinHttp,
                now: time::now(),
                logout: &crate::oidc::signout::HandOver,
            };
            handler(&env, request)
        }
        Err((err, style)) => err.into_response(style),
    };
    web::transport_security(&mut res, vars);
    res
}

/// Sends `res` through `out`: its status, every header (a name repeated is
/// sent repeated), and its body. A response whose headers wasi-http refuses
/// becomes the domain's 500 (in `style`) instead.
pub fn send_response(out: ResponseOutparam, res: Response, style: Style) {
    let out = out.into_inner();
    let (response, outgoing_body, body) = match outgoing_response(res) {
        Ok(ready) => ready,
        Err(why) => {
            eprintln!("lanyard: the response could not be sent: {why}");
            let fallback = Error::Internal(why).into_response(style);
            match outgoing_response(fallback) {
                Ok(ready) => ready,
                Err(why) => {
                    eprintln!("lanyard: nor could the error response: {why}");
                    wh::ResponseOutparam::set(out, Err(wh::ErrorCode::InternalError(Some(why))));
                    return;
                }
            }
        }
    };
    wh::ResponseOutparam::set(out, Ok(response));
    if let Err(why) = write_body(outgoing_body, &body) {
        // The status and headers are sent already; the body, dropped
        // unfinished, reaches the client as cut short.
        eprintln!("lanyard: the response body could not be written: {why}");
    }
}

/// The wasi-http response for `res` (status and headers) with its body
/// handle, and the body bytes to write.
fn outgoing_response(
    res: Response,
) -> Result<(wh::OutgoingResponse, wh::OutgoingBody, Vec<u8>), String> {
    let (parts, body) = res.into_parts();
    let headers = wh::Fields::new();
    for (name, value) in &parts.headers {
        headers
            .append(name.as_str(), value.as_bytes())
            .map_err(|e| format!("header {name}: {e:?}"))?;
    }
    let response = wh::OutgoingResponse::new(headers);
    response
        .set_status_code(parts.status.as_u16())
        .map_err(|()| format!("status {} refused", parts.status))?;
    let outgoing_body = response
        .body()
        .map_err(|()| "the body was taken".to_owned())?;
    Ok((response, outgoing_body, body))
}

/// Writes the whole body, 4096 bytes at a time (the most a blocking write
/// takes), and finishes it.
fn write_body(outgoing: wh::OutgoingBody, body: &[u8]) -> Result<(), String> {
    {
        let stream = outgoing
            .write()
            .map_err(|()| "the body stream was taken".to_owned())?;
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    wh::OutgoingBody::finish(outgoing, None).map_err(|e| format!("{e:?}"))
}

async fn read_request(
    req: IncomingRequest,
    vars: &dyn Variables,
) -> Result<Request, (Error, Style)> {
    let path = req.path_with_query().unwrap_or_else(|| "/".into());
    let style = crate::routes::style_for(&path);
    let fail = |e: Error| (e, style);
    // The limit is read only for a body that could pass it: every valid
    // limit is at least MIN_MAX_BODY_BYTES, and a variable read costs real
    // time on Spin. A bad value is named by the first such request.
    let limit = std::cell::OnceCell::new();
    let check = |len: usize| -> Result<()> {
        if len <= config::MIN_MAX_BODY_BYTES {
            return Ok(());
        }
        let limit = config::once(&limit, || config::max_body_bytes(vars))?;
        web::check_body_size(len, *limit)
    };

    let mut builder = http::Request::builder().method(method(&req)).uri(&path);
    let mut declared = None;
    for (name, value) in req.headers().entries() {
        if name.eq_ignore_ascii_case("content-length") {
            declared = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        }
        builder = builder.header(name, value);
    }
    if let Some(len) = declared {
        check(len).map_err(fail)?;
    }
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            fail(Error::bad_request(format!(
                "The request body could not be read: {e:?}"
            )))
        })?;
        check(body.len() + chunk.len()).map_err(fail)?;
        body.extend_from_slice(&chunk);
    }
    builder.body(body).map_err(|_| {
        fail(Error::bad_request(
            "The request line or a header is malformed.",
        ))
    })
}

fn method(req: &IncomingRequest) -> http::Method {
    use spin_sdk::http::Method as M;
    match req.method() {
        M::Get => http::Method::GET,
        M::Head => http::Method::HEAD,
        M::Post => http::Method::POST,
        M::Put => http::Method::PUT,
        M::Delete => http::Method::DELETE,
        M::Connect => http::Method::CONNECT,
        M::Options => http::Method::OPTIONS,
        M::Trace => http::Method::TRACE,
        M::Patch => http::Method::PATCH,
        M::Other(o) => http::Method::from_bytes(o.as_bytes()).unwrap_or(http::Method::GET),
    }
}
