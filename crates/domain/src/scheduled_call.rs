//! A scheduled call: one planned dial of a customer, its status (the state machine in
//! [`crate::call`]) and its decision trail — every change with the machine-readable reasons
//! behind it. Changes go through [`ScheduledCall::apply`], so an illegal transition is
//! refused and leaves the call as it was.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::call::{AttemptOutcome, CallId, CallStatus, IllegalTransition, ScheduleId};
use crate::customer::CustomerRef;
use crate::policy::Block;
use crate::schedule::PlannedCall;

/// Why a pending call was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The company asked (cancel one, cancel all, cancel communications).
    Requested,
    /// The customer is marked do-not-call.
    DoNotCall,
    /// A post-processing flag stops calls (DNC, deceased, bankruptcy, ...).
    Flag,
    /// The schedule's goal was met (e.g. identity verified).
    ScheduleComplete,
    /// A newer schedule for the customer replaced this one.
    ScheduleReplaced,
}

/// What happened to a call, in trail order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Created by schedule expansion (moved from its slot when the trail entry has blocks).
    Planned,
    /// A worker claimed it to dial.
    Claimed,
    /// Not lawful at fire time: back to scheduled at a later due time, no attempt used.
    Deferred,
    /// A worker handed it back before the dial intent (shutdown, lease expiry).
    HandedBack,
    /// Held back by an operator's pause of its company (or task type); still scheduled, at
    /// its own due time, and dialed after the resume.
    Paused,
    /// The company moved it to another time (checked against the policy); still scheduled.
    Rescheduled,
    /// The provider accepted the call.
    Dialed,
    /// The attempt ended.
    Ended {
        /// How.
        outcome: AttemptOutcome,
    },
    /// Cancelled before it was dialed.
    Cancelled {
        /// Why.
        reason: CancelReason,
    },
    /// Permanently forbidden by policy.
    Blocked,
    /// Passed its schedule's horizon undialed.
    Expired,
}

/// One entry of a call's decision trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrailEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
    /// The status after it.
    pub status: CallStatus,
    /// The due time after it.
    pub due_at: DateTime<Utc>,
    /// The rules behind it (policy blocks that moved, deferred or blocked the call).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
}

/// A scheduled call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledCall {
    /// The call's id (also the idempotency key towards the provider, with the attempt).
    pub id: CallId,
    /// The schedule it belongs to.
    pub schedule_id: ScheduleId,
    /// The customer (the company's own reference).
    pub customer_id: CustomerRef,
    /// When it should be dialed.
    pub due_at: DateTime<Utc>,
    /// Where it is in its life.
    pub status: CallStatus,
    /// Attempts dialed so far.
    pub attempts: u32,
    /// Everything that happened to it, oldest first.
    pub trail: Vec<TrailEntry>,
}

impl ScheduledCall {
    /// A call created from a planned slot at `now`.
    pub fn planned(
        id: CallId,
        schedule_id: ScheduleId,
        customer_id: CustomerRef,
        plan: &PlannedCall,
        now: DateTime<Utc>,
    ) -> Self {
        let entry = TrailEntry {
            at: now,
            event: Event::Planned,
            status: CallStatus::Scheduled,
            due_at: plan.at,
            blocks: plan.moved_by.clone(),
        };
        ScheduledCall {
            id,
            schedule_id,
            customer_id,
            due_at: plan.at,
            status: CallStatus::Scheduled,
            attempts: 0,
            trail: vec![entry],
        }
    }

    /// Record `event` at `at`, moving to the status it implies; `due_at` changes the due
    /// time (a deferral). Refused, with nothing changed, if the state machine forbids it.
    pub fn apply(
        &mut self,
        at: DateTime<Utc>,
        event: Event,
        due_at: Option<DateTime<Utc>>,
        blocks: Vec<Block>,
    ) -> Result<(), IllegalTransition> {
        if matches!(event, Event::Rescheduled) && self.status != CallStatus::Scheduled {
            return Err(IllegalTransition {
                from: self.status,
                to: CallStatus::Scheduled,
            });
        }
        let to = match &event {
            // A reschedule keeps the call scheduled: it is the one event that changes no status.
            Event::Rescheduled => CallStatus::Scheduled,
            Event::Planned | Event::Deferred | Event::HandedBack | Event::Paused => {
                CallStatus::Scheduled
            }
            Event::Claimed => CallStatus::Dialing,
            Event::Dialed => CallStatus::InProgress,
            Event::Ended { outcome } => outcome.status(),
            Event::Cancelled { .. } => CallStatus::Cancelled,
            Event::Blocked => CallStatus::Blocked,
            Event::Expired => CallStatus::Expired,
        };
        if !matches!(event, Event::Rescheduled) {
            self.status = self.status.transition(to)?;
        }
        if let Some(due) = due_at {
            self.due_at = due;
        }
        if matches!(event, Event::Dialed) {
            self.attempts += 1;
        }
        self.trail.push(TrailEntry {
            at,
            event,
            status: to,
            due_at: self.due_at,
            blocks,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn call() -> ScheduledCall {
        let plan = PlannedCall {
            at: utc("2026-11-23T14:00:00Z"),
            local: utc("2026-11-23T14:00:00Z").naive_utc(),
            slot: utc("2026-11-23T14:00:00Z"),
            moved_by: vec![],
        };
        ScheduledCall::planned(
            CallId::from(Uuid::from_u128(1)),
            ScheduleId::from(Uuid::from_u128(2)),
            "cust-1".parse().unwrap(),
            &plan,
            utc("2026-11-22T10:00:00Z"),
        )
    }

    #[test]
    fn a_call_is_claimed_deferred_then_dialed_and_every_step_is_in_the_trail() {
        let mut c = call();
        let later = utc("2026-11-24T14:00:00Z");
        c.apply(utc("2026-11-23T14:00:01Z"), Event::Claimed, None, vec![])
            .unwrap();
        c.apply(
            utc("2026-11-23T14:00:02Z"),
            Event::Deferred,
            Some(later),
            vec![],
        )
        .unwrap();
        assert_eq!(
            (c.status, c.due_at, c.attempts),
            (CallStatus::Scheduled, later, 0)
        );
        c.apply(later, Event::Claimed, None, vec![]).unwrap();
        c.apply(later, Event::Dialed, None, vec![]).unwrap();
        c.apply(
            later,
            Event::Ended {
                outcome: AttemptOutcome::NoAnswer,
            },
            None,
            vec![],
        )
        .unwrap();
        assert_eq!((c.status, c.attempts), (CallStatus::NoAnswer, 1));
        let events: Vec<&str> = c
            .trail
            .iter()
            .map(|e| match e.event {
                Event::Planned => "planned",
                Event::Claimed => "claimed",
                Event::Deferred => "deferred",
                Event::Dialed => "dialed",
                Event::Ended { .. } => "ended",
                _ => "other",
            })
            .collect();
        assert_eq!(
            events,
            [
                "planned", "claimed", "deferred", "claimed", "dialed", "ended"
            ]
        );
    }

    #[test]
    fn an_illegal_change_is_refused_and_changes_nothing() {
        let mut c = call();
        c.apply(
            utc("2026-11-23T14:00:01Z"),
            Event::Cancelled {
                reason: CancelReason::Requested,
            },
            None,
            vec![],
        )
        .unwrap();
        let before = c.clone();
        let err = c
            .apply(utc("2026-11-23T14:00:02Z"), Event::Claimed, None, vec![])
            .unwrap_err();
        assert_eq!(
            (err.from, err.to),
            (CallStatus::Cancelled, CallStatus::Dialing)
        );
        assert_eq!(c, before);
        // A scheduled call cannot be dialed without being claimed first.
        let mut fresh = call();
        assert!(
            fresh
                .apply(utc("2026-11-23T14:00:01Z"), Event::Dialed, None, vec![])
                .is_err()
        );
    }

    #[test]
    fn trail_entries_serialize_with_machine_readable_events() {
        let mut c = call();
        c.apply(
            utc("2026-11-23T14:00:01Z"),
            Event::Cancelled {
                reason: CancelReason::DoNotCall,
            },
            None,
            vec![],
        )
        .unwrap();
        let json = serde_json::to_value(&c.trail[1]).unwrap();
        assert_eq!(json["event"], "cancelled");
        assert_eq!(json["reason"], "do_not_call");
        assert_eq!(json["status"], "cancelled");
    }
}
