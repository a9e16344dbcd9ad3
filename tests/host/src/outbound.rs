//! Outbound HTTP (`wasi:http/outgoing-handler`): the allow-list check; then
//! Spin's local service chaining (a request to
//! `http://<component-id>.spin.internal/<path>` runs that component
//! in-process); else an optional redirect of the authority to a local mock
//! server, then wasmtime-wasi-http's default client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::Shared;
use crate::allowed_hosts::AllowedHosts;

/// The `send_request` hook of one request's store.
pub(crate) struct OutboundHooks {
    pub component_id: Arc<str>,
    pub allowed: Arc<AllowedHosts>,
    pub overrides: Arc<HashMap<String, SocketAddr>>,
    /// The host, to run the target of a service-chaining request. Weak, so
    /// that a store outliving the host does not keep it alive.
    pub host: Weak<Shared>,
}

/// The domain of service-chaining hosts (`<component-id>.spin.internal`).
const SERVICE_CHAINING_DOMAIN: &str = "spin.internal";

/// The component a service-chaining host names, as Spin parses it: an
/// optional `:port` dropped, the first label is the component id and the
/// rest must be exactly `spin.internal` (so `a.b.spin.internal` is not one).
pub(crate) fn service_chaining_target(host: &str) -> Option<&str> {
    let host = host.trim();
    let host = host.rsplit_once(':').map_or(host, |(host, _)| host);
    let (first, rest) = host.split_once('.')?;
    (rest == SERVICE_CHAINING_DOMAIN).then_some(first)
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
        let host = self.host.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            if !allowed.allows_uri(&uri) {
                eprintln!(
                    "spin-test-host: component {component_id:?} tried to make an HTTP request to {uri}, which is not in its allowed_outbound_hosts"
                );
                return Err(Error::HttpRequestDenied);
            }
            // As in Spin, service chaining comes after the allow-list check
            // and before any network access.
            if let Some(target) = uri.host().and_then(service_chaining_target) {
                let target = target.to_owned();
                let response = chain(&host, &component_id, &target, request).await?;
                return Ok((
                    response,
                    Box::new(async { Ok(()) })
                        as Box<dyn Future<Output = Result<(), Error>> + Send>,
                ));
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

/// Runs a service-chaining request the way Spin's outbound interceptor does:
/// the body is read in full, the request goes straight to a fresh instance of
/// `target` (whatever its routes, even a private one) with the headers Spin
/// gives a chained request ([`crate::prepare_chained_request`]), and the
/// component's answer is the response. A failure of the target (a trap, no
/// response) is a 500 with an empty body, as Spin answers an incoming
/// request. A target that is not an HTTP component of the app is
/// `DestinationNotFound`: Spin fails the call harder, with a trap of the
/// caller (`unknown routing destination`), which a `WasiHttpHooks` cannot
/// raise.
async fn chain(
    host: &Weak<Shared>,
    caller: &str,
    target: &str,
    request: http::Request<WasiBody>,
) -> Result<http::Response<WasiBody>, Error> {
    let Some(host) = host.upgrade() else {
        return Err(Error::InternalError(Some("the host has shut down".into())));
    };
    let Some(component) = host.components.get(target) else {
        eprintln!(
            "spin-test-host: component {caller:?} made a service-chaining request to {target:?}, which is not an HTTP component of the app"
        );
        return Err(Error::DestinationNotFound);
    };
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let request = http::Request::from_parts(parts, body);
    let result = match crate::prepare_chained_request(request, target) {
        Ok(request) => host.execute(component, request).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        eprintln!(
            "spin-test-host: error processing the service-chaining request from {caller:?} to {target:?}: {e:?}"
        );
        crate::status_only(http::StatusCode::INTERNAL_SERVER_ERROR)
    });
    Ok(response.map(|body: Bytes| {
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync()
    }))
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

#[cfg(test)]
mod tests {
    use super::service_chaining_target;

    #[test]
    fn service_chaining_hosts_are_parsed_as_in_spin() {
        assert_eq!(
            service_chaining_target("backend.spin.internal"),
            Some("backend")
        );
        assert_eq!(
            service_chaining_target("backend.spin.internal:80"),
            Some("backend")
        );
        assert_eq!(service_chaining_target("a.b.spin.internal"), None);
        assert_eq!(service_chaining_target("spin.internal"), None);
        assert_eq!(
            service_chaining_target("backend.spin.internal.evil.com"),
            None
        );
        assert_eq!(service_chaining_target("example.com"), None);
    }
}
