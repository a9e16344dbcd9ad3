//! Outbound HTTP (`wasi:http/outgoing-handler`): the allow-list check, then
//! an optional redirect of the authority to a local mock server, then
//! wasmtime-wasi-http's default client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::allowed_hosts::AllowedHosts;

/// The `send_request` hook of one request's store.
pub(crate) struct OutboundHooks {
    pub component_id: Arc<str>,
    pub allowed: Arc<AllowedHosts>,
    pub overrides: Arc<HashMap<String, SocketAddr>>,
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let allowed = self.allowed.clone();
        let overrides = self.overrides.clone();
        let component_id = self.component_id.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            if !allowed.allows_uri(&uri) {
                eprintln!(
                    "spin-test-host: component {component_id:?} tried to make an HTTP request to {uri}, which is not in its allowed_outbound_hosts"
                );
                return Err(Error::HttpRequestDenied);
            }
            if let Some(target) = override_for(&overrides, &uri) {
                let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                *request.uri_mut() = http::Uri::builder()
                    .scheme("http")
                    .authority(target.to_string())
                    .path_and_query(path)
                    .build()
                    .map_err(|_| Error::HttpRequestUriInvalid)?;
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

/// The mock address for `uri`'s authority: looked up as `host:port` (with the
/// scheme's default port filled in), then as `host`.
fn override_for(overrides: &HashMap<String, SocketAddr>, uri: &http::Uri) -> Option<SocketAddr> {
    let authority = uri.authority()?;
    let port = authority.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    overrides
        .get(&format!("{}:{port}", authority.host()))
        .or_else(|| overrides.get(authority.host()))
        .copied()
}
