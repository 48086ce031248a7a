//! Decisions: values with machine-readable reasons, never errors.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::ruleset::RuleId;

/// Why a rule blocks a dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Before the day's window opens.
    BeforeWindow,
    /// After the window's last lawful dial start (window end − guard − max ring).
    AfterWindow,
    /// The rule allows no calls on this weekday (e.g. Sunday).
    ClosedDay,
    /// The local date is a holiday in the rule's calendar.
    Holiday,
    /// A frequency cap is reached.
    FrequencyCap,
    /// Inside a quiet period (e.g. 7 days after a conversation about the debt).
    Cooldown,
    /// The consumer named this time inconvenient.
    ConsumerDesignated,
    /// No candidate time zone: the customer's location is unknown.
    NoCandidateLocation,
    /// The operator paused the company's calls (rule [`PAUSE_RULE`]); not a calling rule:
    /// the call waits for the resume, then for its next lawful instant.
    Paused,
}

/// The rule id of an operator's pause in blocks and decision trails.
pub const PAUSE_RULE: &str = "operator.pause";

/// One rule blocking a dial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The rule, or `policy.candidates` for an empty candidate set.
    pub rule: RuleId,
    /// Why.
    pub reason: Reason,
    /// The zone in which it blocks (windows and local-day spans).
    pub zone: Option<Tz>,
    /// The earliest instant this rule alone would allow; `None` = not within the horizon.
    pub until: Option<DateTime<Utc>>,
}

/// The answer to "may we dial at `at`?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Lawful at `at` under every applicable rule in every candidate zone.
    Allow {
        /// The instant decided on.
        at: DateTime<Utc>,
    },
    /// Not lawful at `at`.
    Deny {
        /// The instant decided on.
        at: DateTime<Utc>,
        /// Every rule that blocks at `at`.
        blocks: Vec<Block>,
        /// The earliest lawful instant after `at`, or `None` if there is none before
        /// `searched_until`.
        next_allowed: Option<DateTime<Utc>>,
        /// The end of the search horizon.
        searched_until: DateTime<Utc>,
    },
}

impl Decision {
    /// Whether the dial is allowed.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The earliest lawful instant at or after the decided instant, if any within the horizon.
    pub fn earliest_allowed(&self) -> Option<DateTime<Utc>> {
        match self {
            Decision::Allow { at } => Some(*at),
            Decision::Deny { next_allowed, .. } => *next_allowed,
        }
    }

    /// The rules blocking (empty when allowed).
    pub fn blocks(&self) -> &[Block] {
        match self {
            Decision::Allow { .. } => &[],
            Decision::Deny { blocks, .. } => blocks,
        }
    }
}
