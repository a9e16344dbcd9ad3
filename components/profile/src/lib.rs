//! The profile component: a thin Spin adapter. It turns the request into an
//! `http::Request`, lets the domain crate answer it, and sends the response.

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    lanyard::spin::serve(req, out, lanyard::routes::account::handle).await
}
