//! The worker's one error type.

/// Why a worker step failed. Every variant is transient from the loop's point of view: the
/// loop logs it, backs off and goes on (a call is never lost: Postgres holds it and the
/// reconciler re-enqueues it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Postgres.
    #[error("store: {0}")]
    Store(#[from] outdial_store::Error),
    /// Redis (queue).
    #[error("queue: {0}")]
    Queue(#[from] outdial_queue::Error),
    /// Redis (rate limits).
    #[error("limits: {0}")]
    Limits(#[from] outdial_dialer::Error),
    /// A coalesced step's group failed (the one error, shared by every step of the group).
    #[error("{0}")]
    Group(std::sync::Arc<Error>),
    /// The dispatcher stopped while the step waited.
    #[error("dispatcher stopped")]
    Stopped,
    /// A stored cadence no longer parses.
    #[error("cadence: {0}")]
    Cadence(#[from] outdial_domain::schedule::CadenceError),
}

/// The worker's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
