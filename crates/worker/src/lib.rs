//! outdial's dispatch worker: takes due calls from the Redis queue, claims each in Postgres
//! (the truth) with a lease and fencing token, re-checks the customer, the schedule and the
//! calling policy at fire time, holds the cross-process rate limits and live-call cap, records
//! the dial intent before the provider is called, places the call once under its idempotency
//! key, records the result with the flags' follow-ups and the webhook event in one
//! transaction, delivers webhooks, and reconciles Redis with Postgres, recovering the calls of
//! a worker that died by asking the provider, never by re-dialing.
//!
//! It depends on the domain, store, queue and dialer crates; it must not depend on the API
//! or the CLI, and reads no environment: the binary passes config, pools and a clock.

mod coalesce;
mod dispatch;
mod error;
mod finish;
pub mod fire;
pub mod pause;
pub mod reconciler;
mod telemetry;
pub mod webhooks;

pub use dispatch::{Dispatcher, WorkerConfig, partition};
pub use error::{Error, Result};
pub use finish::{Ended, finish};
