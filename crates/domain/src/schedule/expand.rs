//! Expanding a cadence into concrete, lawful UTC instants.
//!
//! Slots come from the cadence (first-asap, cron matches and explicit local times, all in
//! the customer's own zone) within the horizon. In time order, each slot is moved to the
//! next lawful instant (window, guard band, holidays, caps, quiet periods — with earlier
//! planned attempts counted against the caps, so the plan itself never breaks them) or
//! dropped with its reason. A moved slot that would reach the next slot is dropped as
//! superseded, so moving never bunches calls together.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::cadence::Cadence;
pub use super::slots::MAX_SLOTS;
use crate::policy::local::local_datetime;
use crate::policy::{Block, Contact, ContactKind, Decision, History, Prepared, Subject};

/// One planned call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedCall {
    /// When to dial (UTC).
    pub at: DateTime<Utc>,
    /// The same instant in the customer's zone, wall-clock.
    pub local: NaiveDateTime,
    /// The cadence slot it came from.
    pub slot: DateTime<Utc>,
    /// Why it was moved from its slot (empty when on time).
    pub moved_by: Vec<Block>,
}

/// Why a slot produced no call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// No lawful instant before the horizon ends.
    NoLawfulInstant,
    /// Its next lawful instant is at or after the next slot, which takes over.
    Superseded,
    /// The cadence's attempt limit was reached.
    MaxAttempts,
}

/// One dropped slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedSlot {
    /// The slot.
    pub slot: DateTime<Utc>,
    /// Why it was dropped.
    pub reason: DropReason,
    /// The rules that blocked it at the slot time.
    pub blocks: Vec<Block>,
}

/// The result of an expansion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Calls to place, in time order.
    pub calls: Vec<PlannedCall>,
    /// Slots that produced no call.
    pub dropped: Vec<DroppedSlot>,
}

/// Inputs of an expansion besides the cadence.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a, 'r> {
    /// The customer's rules (candidates and purpose already applied).
    pub policy: &'a Prepared<'r>,
    /// The customer's own zone: cron and local times are read in it.
    pub zone: Tz,
    /// Debt and number of the calls.
    pub subject: Subject<'a>,
    /// Past contacts with the person.
    pub history: &'a [Contact],
    /// Plan from this instant on (usually now).
    pub start: DateTime<Utc>,
}

/// Expand `cadence` for one customer.
pub fn expand(cadence: &Cadence, req: &Request<'_, '_>) -> Plan {
    let end = req.start + cadence.horizon;
    let slots = cadence.slots(req.zone, req.start, end);
    let max_attempts = cadence.max_attempts as usize;
    let mut history = req.policy.history(req.subject, req.history);
    history.reserve(cadence.max_attempts as usize);
    let mut plan = Plan {
        calls: Vec::with_capacity(slots.len().min(max_attempts)),
        dropped: Vec::new(),
    };
    let mut last: Option<DateTime<Utc>> = None;
    // The last decision, valid until a call is planned. A denial `(t, Some(next), blocks)`
    // says no instant in [t, next) is lawful, so a later slot inside it needs no new
    // decision.
    let mut known: Option<Known> = None;
    for (i, &slot) in slots.iter().enumerate() {
        if plan.calls.len() >= max_attempts {
            plan.dropped.push(DroppedSlot {
                slot,
                reason: DropReason::MaxAttempts,
                blocks: vec![],
            });
            continue;
        }
        let t = last.map_or(slot, |l| slot.max(l + cadence.min_gap));
        let k = match known {
            Some(ref k) if k.covers(t) => k,
            _ => known.insert(Known::decide(req, t, &history)),
        };
        let at = match k.next {
            Some(at) if at < end => at,
            _ => {
                plan.dropped.push(DroppedSlot {
                    slot,
                    reason: DropReason::NoLawfulInstant,
                    blocks: k.blocks.clone(),
                });
                continue;
            }
        };
        if slots.get(i + 1).is_some_and(|next| at >= *next) {
            plan.dropped.push(DroppedSlot {
                slot,
                reason: DropReason::Superseded,
                blocks: k.blocks.clone(),
            });
            continue;
        }
        let blocks = known.take().map(|k| k.blocks).unwrap_or_default();
        // The planned call enters the history without debt or number. An unknown key
        // part matches every subject (`Contact::same_key`), and the only subject decided
        // on here is this one, whose debt and number the call would carry: the decisions
        // are the same, without two string allocations per call.
        history.push(Contact {
            at,
            debt: None,
            number: None,
            kind: ContactKind::Placed,
        });
        last = Some(at);
        plan.calls.push(PlannedCall {
            at,
            local: local_datetime(req.zone, at),
            slot,
            moved_by: if at == slot { vec![] } else { blocks },
        });
    }
    plan
}

/// A decision at `from`: the earliest lawful instant at or after it and the blocks at it.
struct Known {
    from: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    blocks: Vec<Block>,
}

impl Known {
    fn decide(req: &Request<'_, '_>, t: DateTime<Utc>, history: &History<'_>) -> Self {
        match req.policy.decide_with(t, history) {
            Decision::Allow { at } => Known {
                from: t,
                next: Some(at),
                blocks: Vec::new(),
            },
            Decision::Deny {
                blocks,
                next_allowed,
                ..
            } => Known {
                from: t,
                next: next_allowed,
                blocks,
            },
        }
    }

    /// Whether the decision holds for `t` too: nothing is lawful in [from, next), and the
    /// answer at `next` is known.
    fn covers(&self, t: DateTime<Utc>) -> bool {
        self.next.is_some_and(|next| self.from <= t && t <= next)
    }
}

#[cfg(test)]
mod tests;
