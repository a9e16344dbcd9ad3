//! `/probe/sig/<what>`: signature implementations side by side inside wasm
//! (issue 14). Owned by the signing work; answers 404 until it lands.

use spin_sdk::http::Response;

/// Runs the signature probe `what` with the request's query.
pub fn handle(what: &str, _query: &str) -> Response {
    Response::builder()
        .status(404)
        .header("content-type", "text/plain")
        .body(format!("probe: no signature probe {what:?}"))
        .build()
}
