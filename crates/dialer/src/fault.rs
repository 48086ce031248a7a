//! Failures the simulator can be told to inject, for tests.

use std::time::Duration;

use crate::CompanyRef;

/// A failure the simulator injects into the next place requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer the next `times` place requests of `company` with 429 + `Retry-After`; no call
    /// is created. Other companies are unaffected.
    RateLimit {
        /// The throttled company.
        company: CompanyRef,
        /// The wait asked for.
        retry_after: Duration,
        /// How many requests it applies to.
        times: u32,
    },
    /// Answer the next `times` place requests with 503. With `after_create` the call is
    /// created first (the answer is lost, as on a real timeout); without, nothing is created.
    Unavailable {
        /// How many requests it applies to.
        times: u32,
        /// Whether the call exists despite the error.
        after_create: bool,
    },
    /// Create the call, then hold the answer for `delay` (a client timeout then fires).
    Slow {
        /// How long the answer is held.
        delay: Duration,
        /// How many requests it applies to.
        times: u32,
    },
}

impl Fault {
    pub(crate) fn times(&mut self) -> &mut u32 {
        match self {
            Fault::RateLimit { times, .. }
            | Fault::Unavailable { times, .. }
            | Fault::Slow { times, .. } => times,
        }
    }
}
