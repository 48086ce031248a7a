//! Expanding a cadence into concrete, lawful UTC instants.
//!
//! Slots come from the cadence (first-asap, cron matches and explicit local times, all in
//! the customer's own zone) within the horizon. In time order, each slot is moved to the
//! next lawful instant (window, guard band, holidays, caps, quiet periods — with earlier
//! planned attempts counted against the caps, so the plan itself never breaks them) or
//! dropped with its reason. A moved slot that would reach the next slot is dropped as
//! superseded, so moving never bunches calls together.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::cadence::Cadence;
use crate::policy::local::earliest_at_or_after;
use crate::policy::{Block, Contact, ContactKind, Prepared, Subject};

/// Most slots considered in one expansion (bounds work for dense cron expressions).
pub const MAX_SLOTS: usize = 2_000;

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
    let slots = slots(cadence, req.zone, req.start, end);
    let mut history = req.policy.history(req.history);
    let mut plan = Plan::default();
    let mut last: Option<DateTime<Utc>> = None;
    // The last denied decision `(t, next lawful, blocks)`, valid until a call is planned:
    // no instant in [t, next) is lawful, so a later slot inside it needs no new decision.
    let mut known: Option<(DateTime<Utc>, DateTime<Utc>, Vec<Block>)> = None;
    for (i, &slot) in slots.iter().enumerate() {
        if plan.calls.len() >= cadence.max_attempts as usize {
            plan.dropped.push(DroppedSlot {
                slot,
                reason: DropReason::MaxAttempts,
                blocks: vec![],
            });
            continue;
        }
        let t = last.map_or(slot, |l| slot.max(l + cadence.min_gap));
        let (next, blocks) = match &known {
            Some((from, next, blocks)) if *from <= t && t <= *next => (Some(*next), blocks.clone()),
            _ => {
                let decision = req.policy.decide_with(t, &req.subject, &history);
                let next = decision.earliest_allowed();
                if let (Some(n), false) = (next, decision.is_allow()) {
                    known = Some((t, n, decision.blocks().to_vec()));
                }
                (next, decision.blocks().to_vec())
            }
        };
        let at = match next {
            Some(at) if at < end => at,
            _ => {
                plan.dropped.push(DroppedSlot {
                    slot,
                    reason: DropReason::NoLawfulInstant,
                    blocks,
                });
                continue;
            }
        };
        if slots.get(i + 1).is_some_and(|next| at >= *next) {
            plan.dropped.push(DroppedSlot {
                slot,
                reason: DropReason::Superseded,
                blocks,
            });
            continue;
        }
        history.push(Contact {
            at,
            debt: req.subject.debt.map(str::to_owned),
            number: req.subject.number.map(str::to_owned),
            kind: ContactKind::Placed,
        });
        last = Some(at);
        known = None;
        plan.calls.push(PlannedCall {
            at,
            local: at.with_timezone(&req.zone).naive_local(),
            slot,
            moved_by: if at == slot { vec![] } else { blocks },
        });
    }
    plan
}

/// Cadence slots in `[start, end)`, sorted and distinct.
fn slots(
    cadence: &Cadence,
    zone: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    if cadence.first_asap {
        out.push(start);
    }
    let local_start = zone.from_utc_datetime(&start.naive_utc());
    for schedule in &cadence.crons {
        // `after` is exclusive; include a match exactly at `start`.
        if schedule.includes(local_start) {
            out.push(start);
        }
        out.extend(
            schedule
                .after(&local_start)
                .map(|t| t.with_timezone(&Utc))
                .take_while(|t| *t < end)
                .take(MAX_SLOTS),
        );
    }
    for local in &cadence.local_times {
        let at = earliest_at_or_after(zone, local.date(), secs_of_day(local));
        if at >= start && at < end {
            out.push(at);
        }
    }
    out.sort_unstable();
    out.dedup();
    out.truncate(MAX_SLOTS);
    out
}

fn secs_of_day(t: &NaiveDateTime) -> u32 {
    use chrono::Timelike;
    t.time().num_seconds_from_midnight()
}

#[cfg(test)]
mod tests;
