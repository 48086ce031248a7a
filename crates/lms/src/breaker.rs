//! A circuit breaker: after `threshold` failed fetches in a row the LMS is not asked for
//! `cooldown`; then one fetch probes it (others are refused meanwhile) and its outcome
//! closes the breaker or opens it for another cooldown. Failures are outages only (timeouts,
//! 5xx, malformed answers), not "unknown customer".
//!
//! Written here rather than taken from a crate: it is a 3-state machine over `Instant`s and
//! the crates found (failsafe) bring their own futures wrappers and backoff types that the
//! fetch's deadline already covers.

use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed fetches that open it.
    pub threshold: u32,
    /// How long it stays open before one probe.
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else waits for its outcome.
    Probing,
}

/// One company's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: State,
    failures: u32,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Self {
        Breaker {
            policy,
            state: State::Closed,
            failures: 0,
        }
    }

    /// Failed fetches in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a fetch may go out at `now`; `Err(retry_after)` when not.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Closed => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } => {
                self.state = State::Probing;
                Ok(())
            }
            State::Probing => Err(Duration::from_secs(1)),
        }
    }

    /// Records a failed fetch; true when this opened the breaker.
    pub fn failure(&mut self, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        let open = match self.state {
            State::Probing => true,
            State::Closed => self.failures >= self.policy.threshold,
            State::Open { .. } => false,
        };
        if open {
            self.state = State::Open {
                until: now + self.policy.cooldown,
            };
        }
        open
    }

    /// Records a fetch that reached the LMS and got a usable answer: closed again.
    pub fn success(&mut self) {
        self.state = State::Closed;
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_after_the_cooldown_and_closes_on_success() {
        let policy = BreakerPolicy {
            threshold: 3,
            cooldown: Duration::from_secs(10),
        };
        let mut b = Breaker::new(policy);
        let t0 = Instant::now();
        assert!(!b.failure(t0));
        b.success();
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        assert_eq!(b.admit(t0), Ok(()), "two in a row after a success");
        assert!(b.failure(t0), "the third in a row opens it");
        assert_eq!(
            b.admit(t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.admit(later), Ok(()), "one probe");
        assert!(b.admit(later).is_err(), "only one");
        assert!(b.failure(later), "a failed probe opens it again");
        assert!(b.admit(later + Duration::from_secs(9)).is_err());
        assert_eq!(b.admit(later + Duration::from_secs(10)), Ok(()));
        b.success();
        assert_eq!(b.admit(later + Duration::from_secs(10)), Ok(()));
        assert_eq!(b.failures(), 0);
    }
}
