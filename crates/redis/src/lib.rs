//! Redis connections for outdial. One URL ([`Target`]) names a single server, a Redis
//! Cluster or a Sentinel-monitored primary; [`Redis`] is the one reconnecting, cheaply
//! cloned connection every crate (queue, limits, binaries) sends its commands through.
//!
//! On a cluster, a command goes to the node owning its key's slot; a pipeline is split into
//! runs of commands on one slot (a pipeline is not a transaction, so this keeps its meaning);
//! a script runs on its keys' node. On Sentinel, the connection asks the Sentinels for the
//! primary and asks again after a connection error or a `READONLY` answer (a failover).
//!
//! Depends on the redis crate only: no queue or domain types.

mod conn;
mod sentinel;
mod target;
#[cfg(feature = "testing")]
pub mod testing;

pub use conn::{Options, Redis};
pub use target::{Auth, Node, Target};

/// What can go wrong opening a connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not one of the accepted forms (the message never holds the password).
    #[error("bad Redis URL: {0}")]
    Url(String),
    /// The server (or cluster, or Sentinel) refused or did not answer.
    #[error("cannot connect to Redis")]
    Connect(#[source] redis::RedisError),
    /// The server refused a `#!lua` script: older than Redis 7.0, or an ACL without `EVAL`.
    #[error(
        "outdial needs Redis 7.0 or later and EVAL (its scripts use #!lua flags); the server refused a test script: {0}"
    )]
    Version(String),
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether trying again later can succeed: the server is away, restarting, loading its
/// data or failing over.
pub fn transient(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
}
