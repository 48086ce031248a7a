//! What the simulator counted per idempotency key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::IdempotencyKey;

/// What the simulator saw for one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStats {
    /// Place requests received under the key, faulted ones included.
    pub place_requests: u32,
    /// Whether a call exists under the key (at most one ever does).
    pub created: bool,
}

/// Per-key counts, for tests that assert "dialed at most once".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    /// Every key seen.
    pub keys: BTreeMap<IdempotencyKey, KeyStats>,
}

impl SimStats {
    /// Place requests received under `key`.
    pub fn place_requests(&self, key: &IdempotencyKey) -> u32 {
        self.keys.get(key).map_or(0, |k| k.place_requests)
    }

    /// Calls created (one per key at most).
    pub fn calls_created(&self) -> usize {
        self.keys.values().filter(|k| k.created).count()
    }

    /// The largest number of place requests any key received.
    pub fn max_place_requests(&self) -> u32 {
        self.keys
            .values()
            .map(|k| k.place_requests)
            .max()
            .unwrap_or(0)
    }
}
