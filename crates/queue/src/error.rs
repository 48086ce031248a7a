//! The queue's one error type.

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis could not be reached or answered with an error, after the configured retries.
    #[error("redis error")]
    Redis(#[source] redis::RedisError),
    /// The Redis URL is not one of the accepted forms.
    #[error(transparent)]
    Url(#[from] outdial_redis::Error),
    /// A script answered with a shape this crate does not expect (a bug or a foreign key).
    #[error("unexpected reply from {script}: {what}")]
    Reply {
        /// The script or command.
        script: &'static str,
        /// What was wrong.
        what: String,
    },
    /// A partition name that cannot be used in a key.
    #[error("invalid partition name {0:?}: 1 to 64 characters of [A-Za-z0-9_.:-]")]
    InvalidPartition(String),
    /// A namespace that cannot be used as a key prefix.
    #[error("invalid namespace {0:?}: 1 to 64 characters of [A-Za-z0-9_.:-]")]
    InvalidNamespace(String),
    /// A configuration value out of range.
    #[error("invalid queue config: {0}")]
    Config(&'static str),
    /// The source of truth failed during reconciliation.
    #[error("reconcile source failed")]
    Truth(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Redis(e)
    }
}

/// The queue's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
