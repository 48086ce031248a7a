//! Providers for outdial: how a call reaches a telephony / voice-agent provider, and how fast.
//!
//! Owns the [`Dialer`] trait and its closed error set ([`DialError`]), the wire types of a
//! placed call ([`DialRequest`], [`ProviderCall`]), the HTTP provider adapter
//! ([`HttpDialer`]), the built-in simulated provider ([`Simulator`], in process or as an HTTP
//! server through [`server::serve`]), the callback signature scheme ([`signature`]), and the
//! rate limits that hold across worker processes ([`limits`]: GCRA per company and caller ID,
//! live-call slots with leases, provider slow-downs, all in Redis).
//!
//! It depends on `outdial-domain` only: it must not depend on the store, the queue, the API or
//! the worker. It never reads the wall clock directly (a [`outdial_domain::Clock`] is passed
//! in; timers use `tokio::time`), never reads the environment, and never logs a full phone
//! number or a transcript.
//!
//! The one rule the worker must follow, spelled out on [`Dialer`]: a call is placed under an
//! idempotency key `"{call_id}:{attempt}"`; after any [`DialError::Unavailable`] (or a crash
//! after the dial intent was recorded) the worker asks [`Dialer::lookup`] about that key
//! before it places anything again.

pub mod callback;
mod dial_error;
mod dialer;
mod error;
mod fault;
mod http_dialer;
pub mod limits;
mod provider_call;
mod request;
mod scenario;
pub mod server;
pub mod signature;
mod sim_config;
mod sim_stats;
mod simulator;
mod wire;

pub use dial_error::{DialError, Unavailable};
pub use dialer::{Dialer, lookup_then_place};
pub use error::{Error, Result};
pub use fault::Fault;
pub use http_dialer::{HttpDialer, HttpDialerConfig};
pub use provider_call::{CallResult, CallState, Placed, ProviderCall};
pub use request::{CompanyRef, DialContext, DialRequest, IdempotencyKey, InvalidName};
pub use scenario::{OutcomeMix, Scenario};
pub use sim_config::{SimConfig, Timing};
pub use sim_stats::{KeyStats, SimStats};
pub use simulator::Simulator;
