//! The closed set of ways a provider request can fail, each with one thing the worker does.

use std::fmt;
use std::time::Duration;

/// Why the provider could not be reached or did not answer usefully. The request may or may
/// not have been acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// No answer within the timeout. The provider may have placed the call.
    Timeout,
    /// No connection could be made; the request was not sent.
    Connect,
    /// The provider answered 5xx (or 408). It may have placed the call.
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The answer could not be read (broken body, unexpected status). It may have placed the
    /// call.
    Protocol,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Timeout => f.write_str("timed out"),
            Unavailable::Connect => f.write_str("connection failed"),
            Unavailable::Server { status } => write!(f, "server error {status}"),
            Unavailable::Protocol => f.write_str("unreadable response"),
        }
    }
}

/// A failed [`crate::Dialer`] request. Closed: the worker handles every variant.
///
/// | variant        | cause                 | attempt consumed | what the worker does |
/// |----------------|-----------------------|------------------|----------------------|
/// | `RateLimited`  | 429 + `Retry-After`   | no               | `limits::Limits::slow_down` the company until then, defer the call |
/// | `Unauthorized` | 401 / 403             | no               | stop dialing, hand the call back, alert a human (configuration) |
/// | `Rejected`     | any other 4xx         | yes              | record the attempt as `failed`; do not re-send the same request |
/// | `Unavailable`  | 5xx, 408, timeout, connection, unreadable answer | not yet known | **`lookup` the key before anything else**, then record the call found, or place again with the same key |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// The provider is throttling this account or company; nothing was placed.
    #[error("provider rate limited the request (retry after {retry_after:?})")]
    RateLimited {
        /// How long the provider asked us to wait.
        retry_after: Duration,
    },
    /// The provider refused our credentials; nothing was placed. A configuration problem.
    #[error("provider refused the credentials (status {status})")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The provider refused this request for good (bad number, key reused with another
    /// payload, ...); nothing was placed.
    #[error("provider rejected the request (status {status}, code {code})")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The provider's machine-readable error code (`http_<status>` when it gave none).
        code: String,
    },
    /// The provider could not be reached or answered with a server error: whether the call
    /// was placed is unknown until [`crate::Dialer::lookup`] says.
    #[error("provider unavailable: {0}")]
    Unavailable(Unavailable),
}

impl DialError {
    /// The wait a `RateLimited` asks for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DialError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether the provider may have placed the call despite the error (so a lookup is
    /// needed before any re-dial). Only a failed connection proves it did not; the worker
    /// looks up after every `Unavailable` anyway.
    pub fn may_have_placed(&self) -> bool {
        matches!(self, DialError::Unavailable(u) if *u != Unavailable::Connect)
    }

    /// Whether the attempt is used up: only a permanent `Rejected`.
    pub fn consumes_attempt(&self) -> bool {
        matches!(self, DialError::Rejected { .. })
    }

    /// Whether trying again later (after a lookup, for `Unavailable`) can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DialError::RateLimited { .. } | DialError::Unavailable(_)
        )
    }
}
