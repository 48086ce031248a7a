//! The fire-time check: with the call claimed, is it still to be dialed now?
//!
//! Re-read at fire time, never trusted from planning: the customer's `doNotCall`, the
//! schedule still active, and the calling policy *now* (windows with the guard band,
//! holidays, caps and quiet periods from the stored attempt history). The answer is a value
//! the loop acts on, never an error.

use chrono::{DateTime, Utc};
use outdial_domain::policy::{Block, Contact, Decision, Ruleset};
use outdial_domain::scheduled_call::CancelReason;
use outdial_store::ClaimedCall;

/// What to do with a claimed call now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fire {
    /// Dial it.
    Dial,
    /// Not lawful now: back to scheduled at `until` (no attempt consumed), for `blocks`.
    Defer {
        until: DateTime<Utc>,
        blocks: Vec<Block>,
    },
    /// Never lawful within the search horizon: blocked for good.
    Block { blocks: Vec<Block> },
    /// The customer or the schedule says stop.
    Cancel { reason: CancelReason },
}

/// Decides the claimed call `call` at `now`, given the customer's contact `history`.
pub fn check(rules: &Ruleset, call: &ClaimedCall, history: &[Contact], now: DateTime<Utc>) -> Fire {
    if call.customer.do_not_call {
        return Fire::Cancel {
            reason: CancelReason::DoNotCall,
        };
    }
    if !call.schedule_active {
        return Fire::Cancel {
            reason: CancelReason::ScheduleReplaced,
        };
    }
    let candidates = call.customer.candidates();
    let policy = rules.prepare(&candidates, call.schedule_type.purpose());
    let mut subject = call.customer.subject();
    if call.loan_id.is_some() {
        subject.debt = call.loan_id.as_deref();
    }
    match policy.decide(now, &subject, history) {
        Decision::Allow { .. } => Fire::Dial,
        Decision::Deny {
            blocks,
            next_allowed: Some(until),
            ..
        } => Fire::Defer { until, blocks },
        Decision::Deny { blocks, .. } => Fire::Block { blocks },
    }
}
