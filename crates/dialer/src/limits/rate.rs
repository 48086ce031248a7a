//! Rates and the answer of an admission check.

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A GCRA limit: one call per `interval` on average, with bursts of up to `burst` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    interval: Duration,
    burst: NonZeroU32,
}

impl Rate {
    /// `calls` per `per`, burst 1.
    pub fn new(calls: NonZeroU32, per: Duration) -> Self {
        let interval = (per / calls.get()).max(Duration::from_micros(1));
        Self {
            interval,
            burst: NonZeroU32::MIN,
        }
    }

    /// `calls` per second (`None` for 0), burst 1.
    pub fn per_second(calls: u32) -> Option<Self> {
        NonZeroU32::new(calls).map(|c| Self::new(c, Duration::from_secs(1)))
    }

    /// The same rate allowing bursts of `burst` calls (and late callers to catch up).
    #[must_use]
    pub fn with_burst(mut self, burst: NonZeroU32) -> Self {
        self.burst = burst;
        self
    }

    /// The time between two calls at the steady rate.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The burst size.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    pub(crate) fn interval_us(&self) -> u64 {
        u64::try_from(self.interval.as_micros()).unwrap_or(u64::MAX)
    }

    pub(crate) fn tolerance_us(&self) -> u64 {
        self.interval_us()
            .saturating_mul(u64::from(self.burst.get() - 1))
    }
}

/// The rate limits one call is subject to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// The company's calls per second (all its caller IDs together).
    pub company: Rate,
    /// Each caller ID's calls per second (shared by every company using the number), if
    /// limited.
    pub caller_id: Option<Rate>,
}

/// Why a call has to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Throttle {
    /// The provider asked us to slow the company down (429 / `Retry-After`).
    SlowedDown,
    /// The company's or the caller ID's calls-per-second limit.
    Rate,
}

/// The answer of [`crate::limits::Limits::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The call may be placed now; the limits have counted it.
    Admitted,
    /// Not now: ask again at `until`. Nothing was counted.
    Wait {
        /// The earliest moment the call can conform.
        until: DateTime<Utc>,
        /// Which limit refused it.
        reason: Throttle,
    },
}

/// The answer of [`crate::limits::Limits::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The call is counted against every limit and may be placed at `at` (now or soon).
    Booked {
        /// The call's turn.
        at: DateTime<Utc>,
    },
    /// No turn within the wait allowed: ask again at `until`. Nothing was counted.
    Wait {
        /// When to ask again (a turn is then within the wait allowed, or the slow-down is
        /// over).
        until: DateTime<Utc>,
        /// Which limit refused it.
        reason: Throttle,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_tolerances_come_from_calls_per_period_and_burst() {
        let r = Rate::per_second(40).unwrap();
        assert_eq!(r.interval(), Duration::from_millis(25));
        assert_eq!(r.tolerance_us(), 0);
        let r = r.with_burst(NonZeroU32::new(3).unwrap());
        assert_eq!(r.tolerance_us(), 50_000);
        assert_eq!(Rate::per_second(0), None);
        let slow = Rate::new(NonZeroU32::new(1).unwrap(), Duration::from_secs(60));
        assert_eq!(slow.interval_us(), 60_000_000);
    }
}
