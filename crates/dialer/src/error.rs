//! The crate's error for everything but dialing itself (dialing errors are [`crate::DialError`]).

/// Failures of the limits, the simulator server and the HTTP adapter's set-up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Redis command or script failed (connection lost, timeout, script error).
    #[error("redis command failed")]
    Redis(#[from] redis::RedisError),
    /// A Redis key namespace without a hash tag (`{...}`): multi-key scripts need one slot.
    #[error("redis namespace {0:?} must contain a hash tag such as `outdial:{{limits}}`")]
    Namespace(String),
    /// A limits script answered something it is documented never to answer.
    #[error("unexpected reply from the {0} script")]
    ScriptReply(&'static str),
    /// The HTTP client could not be built (TLS backend, bad settings).
    #[error("cannot build the http client")]
    HttpClient(#[source] reqwest::Error),
    /// A configured URL is not an absolute http(s) URL.
    #[error("invalid url {0:?}: expected an absolute http or https url")]
    Url(String),
    /// The simulator server's socket failed.
    #[error("simulator server i/o failed")]
    Io(#[from] std::io::Error),
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
