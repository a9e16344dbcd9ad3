//! Lanyard's domain crate.
//!
//! Everything Lanyard does lives here as plain Rust over `http` types and two
//! storage traits ([`store::KvStore`] and [`store::SqlStore`]). The Spin
//! components are thin adapters: they build an [`Env`], call one of the
//! handlers in [`routes`], and send the response. Each SQLite table has one
//! module under [`store`] that owns its statements. Natively the traits are backed
//! by real SQLite, so the whole domain is tested without a wasm runtime.

#![forbid(unsafe_code)]

pub mod accounts;
pub mod assets;
pub mod centre;
pub mod client_addr;
pub mod config;
pub mod crypto;
pub mod csrf;
pub mod device;
pub mod error;
pub mod events;
pub mod html;
pub mod identity;
pub mod mail;
pub mod mfa;
pub mod oidc;
pub mod onetime;
pub mod orgs;
pub mod password;
pub mod privacy;
pub mod routes;
pub mod session;
#[cfg(test)]
mod shape;
pub mod social;
pub mod store;
pub mod sweep;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod throttle;
pub mod time;
pub mod web;

#[cfg(target_arch = "wasm32")]
pub mod spin;

pub use config::{Config, Variables};
pub use error::{Error, Result};
pub use routes::errors::Style;

/// What a request handler may touch: the stores, the variables and the clock.
///
/// Built once per request by the adapter (a fresh Spin instance each time),
/// so everything in it is cheap to create and opened lazily.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Short-lived state: sessions, CSRF tokens, rate-limit counters.
    pub kv: &'a dyn store::KvStore,
    /// Durable state: identities, clients, keys, single-use records.
    pub sql: &'a dyn store::SqlStore,
    /// Spin variables (configuration and secrets).
    pub vars: &'a dyn Variables,
    /// Outbound HTTP (the mail API, upstream identity providers).
    pub http: &'a dyn mail::HttpClient,
    /// The time of the request, in seconds since the Unix epoch.
    pub now: i64,
    /// How logout tokens reach the applications when sessions end: signed
    /// and sent here ([`oidc::signout::Direct`], the token component, which
    /// holds the signing keys), or handed to the token component
    /// ([`oidc::signout::HandOver`], every other component, which then
    /// links no signing code).
    pub logout: &'a dyn oidc::signout::Courier,
}
