//! The simulator's settings: seed, timing, outcome mixes.

use std::time::Duration;

use crate::OutcomeMix;

/// How long simulated calls take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// Every call has ended by the time `place` returns (benchmarks).
    Instant,
    /// Calls ring, are answered, talk and end over time.
    Realistic {
        /// Ring time of an answered call is uniform in `ring_min..=ring_max`; a call nobody
        /// answers rings for `ring_max`; busy and failed calls end within 1-4 s (capped by
        /// `ring_min` and `ring_max`).
        ring_min: Duration,
        /// See `ring_min`.
        ring_max: Duration,
        /// Talk time of an answered call is uniform in `talk_min..=talk_max`.
        talk_min: Duration,
        /// See `talk_min`.
        talk_max: Duration,
    },
}

impl Timing {
    /// Ring 5-30 s, talk 15-180 s.
    pub fn realistic() -> Self {
        Timing::Realistic {
            ring_min: Duration::from_secs(5),
            ring_max: Duration::from_secs(30),
            talk_min: Duration::from_secs(15),
            talk_max: Duration::from_secs(180),
        }
    }
}

/// The simulator's settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Same seed, same key: same call.
    pub seed: u64,
    /// How long calls take.
    pub timing: Timing,
    /// The mix for calls whose task type mentions `verif`.
    pub verification: OutcomeMix,
    /// The mix for every other call.
    pub collections: OutcomeMix,
    /// Recording URLs are `{recording_base_url}/recordings/{call id}.mp3`.
    pub recording_base_url: String,
}

impl SimConfig {
    /// Realistic timing, the default mixes.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            timing: Timing::realistic(),
            verification: OutcomeMix::verification(),
            collections: OutcomeMix::collections(),
            recording_base_url: "https://recordings.sim.invalid".to_owned(),
        }
    }

    /// Calls end as soon as they are placed.
    #[must_use]
    pub fn instant(mut self) -> Self {
        self.timing = Timing::Instant;
        self
    }

    /// Every call, whatever its task type, draws from `mix`.
    #[must_use]
    pub fn with_mix(mut self, mix: OutcomeMix) -> Self {
        self.verification = mix.clone();
        self.collections = mix;
        self
    }
}
