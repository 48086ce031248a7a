//! The one source of wall-clock time. Library code takes `now` as an argument or a
//! `&dyn Clock`; `clippy.toml` bans `Utc::now` everywhere but [`SystemClock`].

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Something that tells the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one permitted wall-clock read
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The real clock shifted by a fixed offset: every process of a test fleet (or a drill) runs
/// "at" the same other instant, e.g. a lawful calling hour when the real one is not.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShiftedClock {
    /// Added to the real time.
    pub offset: Duration,
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + self.offset
    }
}

/// A clock that only moves when told to; for tests and previews.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(at),
        }
    }

    /// Move the clock to `at` (backwards too: tests of clock skew need it).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    /// Move the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A poisoned lock still holds a valid instant.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 8, 12, 0, 0).unwrap();
        let clock = ManualClock::new(t0);
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::minutes(5));
        assert_eq!(clock.now(), t0 + Duration::minutes(5));
        clock.set(t0);
        assert_eq!(clock.now(), t0);
    }
}
