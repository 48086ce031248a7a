//! outdial's Redis job queue: the fast index of due calls, with per-job leases and fencing
//! tokens, dial-intent marking, deferral, retries, cancellation (per call and per
//! customer), dead jobs, reconciliation with the system of record, fair claiming across
//! partitions (companies) with throttles and live-call caps, and read-only inspection.
//!
//! It owns the Redis keys of one namespace and the Lua scripts (`lua/*.lua`, one per
//! transition) that change them. Postgres stays the truth: a job carries only a call id, a
//! partition, a customer reference and a due time. This crate depends on `outdial-domain`
//! for ids only; it must not depend on the store, the API, sqlx or axum. Time always comes
//! in as an argument (`now`), never from the clock.
//!
//! # Dial-intent contract (for the worker)
//! 1. [`Queue::claim`] leases a job with a fencing token.
//! 2. The worker moves the call row `scheduled → dialing` in Postgres (the conditional
//!    update that makes a duplicate delivery harmless), checks policy, and records its dial
//!    intent there.
//! 3. Just before dialing it calls [`Queue::mark_dialing`]. Only on
//!    [`DialIntent::Marked`] may it dial; `LeaseLost` or `Cancelled` mean: do not dial.
//! 4. It ends with [`Queue::ack`], [`Queue::defer`] (no attempt consumed) or
//!    [`Queue::retry`] (consumes one; dead after `max_attempts`), renewing the lease with
//!    [`Queue::renew`] while the call lasts.
//!
//! If the lease expires first (the worker died), the next claim in that partition recovers
//! the job: back to due when it was never marked (no call was placed, no attempt
//! consumed), otherwise to the `reconcile` state, never back to due: a call may have been
//! placed, so someone (the reconciler, asking the provider by the call id used as its
//! idempotency key) settles it with [`Queue::resolve_reconcile`]. A call is therefore
//! never dialed twice because of the queue.

mod claim;
mod config;
mod connection;
mod enqueue;
mod error;
mod inspect;
mod job;
mod keys;
mod queue;
mod reconcile;
mod reply;
mod scripts;
mod throttle;

pub use config::QueueConfig;
pub use error::{Error, Result};
pub use inspect::{Cursor, JobView, LeaseView, Listed, MAX_PAGE, Page, SlabCursor, Stats};
pub use job::{
    Cancel, CustomerCancel, DialIntent, Enqueued, HandBack, Job, JobRef, NewJob, Resolution, State,
};
pub use keys::{Keys, Partition, bucket_of};
pub use queue::Queue;
pub use reconcile::{Reconciled, ScheduledRow, Truth};
