//! What a finished call does to the customer's other calls: the flags' effects and the
//! company's retry rule turned into concrete, lawful changes ([`FollowUp`]s) that the store
//! writes in the same transaction as the result.
//!
//! | effect | follow-ups |
//! |---|---|
//! | `SetDoNotCall` | `SetDoNotCall`, then cancel every pending call (`flag`), end the schedule |
//! | `StopAll` | cancel every pending call (`flag`), end the schedule |
//! | `CompleteSchedule` (verification schedules) | cancel the pending calls (`schedule_complete`), end the schedule |
//! | `QuietPeriod` | every pending call the conversation now makes unlawful moves to its next lawful instant (`Defer`, with the quiet-period rule) |
//! | `BookCallback` | a new call at the first lawful instant from [`CALLBACK_DELAY`] on |
//! | `Retry(reason)` | a new call at the first lawful instant from the cadence's spacing for `reason` on, while the schedule has attempts left and no pending call comes sooner |
//! | `Review` | nothing (the flags are stored and sent by webhook) |
//!
//! Pure: the caller passes the policy, the contact history (this call included) and the
//! pending calls.

use chrono::{DateTime, Duration, Utc};

use crate::AttemptOutcome;
use crate::call::CallId;
use crate::flags::{Effect, Flag, RetryReason, effects_of};
use crate::policy::{Block, Contact, Decision, Prepared, Subject};
use crate::schedule::RetrySpacing;
use crate::scheduled_call::CancelReason;
use crate::task::ScheduleType;

/// How long after a callback request the callback is placed (the provider reports no
/// requested time): the first lawful instant from then on.
pub const CALLBACK_DELAY: Duration = Duration::hours(1);

/// One change a result makes to the customer's other calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Mark the customer do-not-call.
    SetDoNotCall,
    /// Cancel every pending call of the customer; end the schedule when `end_schedule`.
    CancelPending {
        reason: CancelReason,
        end_schedule: bool,
    },
    /// Move one pending call to `due_at` because of `blocks`.
    Defer {
        call: CallId,
        due_at: DateTime<Utc>,
        blocks: Vec<Block>,
    },
    /// Add a call to the schedule at `due_at` (a retry or a callback), moved there by
    /// `reasons` when its first choice was not lawful.
    Schedule {
        due_at: DateTime<Utc>,
        reasons: Vec<Block>,
    },
}

/// Everything besides the result that the follow-ups depend on.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a, 'r> {
    /// The customer's rules for this schedule's purpose.
    pub policy: &'a Prepared<'r>,
    pub subject: Subject<'a>,
    /// Past contacts, the finished call included.
    pub history: &'a [Contact],
    pub schedule_type: ScheduleType,
    /// The schedule's retry spacing and attempt limit, and the calls it has placed.
    pub retry: RetrySpacing,
    pub max_attempts: u32,
    pub attempts_used: u32,
    /// The customer's pending calls and their due times.
    pub pending: &'a [(CallId, DateTime<Utc>)],
}

/// The follow-ups of a call that ended with `outcome` and `flags` at `now`.
pub fn follow_ups(
    outcome: AttemptOutcome,
    flags: &[Flag],
    ctx: &Context<'_, '_>,
    now: DateTime<Utc>,
) -> Vec<FollowUp> {
    let mut effects = effects_of(flags);
    if let Some(reason) = outcome.retry_reason() {
        effects.insert(Effect::Retry(reason));
    }
    let mut out = Vec::new();
    if effects.contains(Effect::SetDoNotCall) {
        out.push(FollowUp::SetDoNotCall);
    }
    if effects.contains(Effect::SetDoNotCall) || effects.contains(Effect::StopAll) {
        out.push(FollowUp::CancelPending {
            reason: CancelReason::Flag,
            end_schedule: true,
        });
        return out;
    }
    if effects.contains(Effect::CompleteSchedule) && ctx.schedule_type == ScheduleType::Verification
    {
        out.push(FollowUp::CancelPending {
            reason: CancelReason::ScheduleComplete,
            end_schedule: true,
        });
        return out;
    }
    if effects.contains(Effect::QuietPeriod) {
        for &(call, due) in ctx.pending {
            if let Decision::Deny {
                blocks,
                next_allowed: Some(next),
                ..
            } = ctx.policy.decide(due, &ctx.subject, ctx.history)
            {
                out.push(FollowUp::Defer {
                    call,
                    due_at: next,
                    blocks,
                });
            }
        }
    }
    if effects.contains(Effect::BookCallback)
        && let Some(f) = lawful_call(ctx, now + CALLBACK_DELAY)
    {
        out.push(f);
    }
    if let Some(reason) = effects.retry()
        && ctx.attempts_used < ctx.max_attempts
    {
        let spacing = match reason {
            RetryReason::NoAnswer => ctx.retry.no_answer,
            RetryReason::Busy => ctx.retry.busy,
            RetryReason::Voicemail => ctx.retry.voicemail,
        };
        let earliest = now + spacing;
        let sooner = ctx
            .pending
            .iter()
            .any(|&(_, due)| due <= earliest + spacing);
        if !sooner && let Some(f) = lawful_call(ctx, earliest) {
            out.push(f);
        }
    }
    out
}

/// A new call at the first lawful instant from `t`, if there is one in the search horizon.
fn lawful_call(ctx: &Context<'_, '_>, t: DateTime<Utc>) -> Option<FollowUp> {
    match ctx.policy.decide(t, &ctx.subject, ctx.history) {
        Decision::Allow { at } => Some(FollowUp::Schedule {
            due_at: at,
            reasons: vec![],
        }),
        Decision::Deny {
            blocks,
            next_allowed: Some(next),
            ..
        } => Some(FollowUp::Schedule {
            due_at: next,
            reasons: blocks,
        }),
        Decision::Deny { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::America::New_York;
    use uuid::Uuid;

    use super::*;
    use crate::policy::{Candidates, ContactKind, Ruleset};
    use crate::task::Purpose;

    fn spacing() -> RetrySpacing {
        RetrySpacing {
            no_answer: Duration::hours(4),
            busy: Duration::minutes(30),
            voicemail: Duration::days(1),
        }
    }

    fn ny(h: u32) -> DateTime<Utc> {
        New_York
            .with_ymd_and_hms(2026, 5, 5, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn run(
        outcome: AttemptOutcome,
        flags: &[Flag],
        kind: ScheduleType,
        pending: &[(CallId, DateTime<Utc>)],
        history: &[Contact],
    ) -> Vec<FollowUp> {
        let rules = Ruleset::bundled().unwrap();
        let candidates = Candidates::explicit(&[New_York], &[crate::UsState::NY]);
        let policy = rules.prepare(&candidates, Purpose::Collection);
        let ctx = Context {
            policy: &policy,
            subject: Subject {
                debt: Some("loan-1"),
                number: Some("+12125550100"),
            },
            history,
            schedule_type: kind,
            retry: spacing(),
            max_attempts: 6,
            attempts_used: 1,
            pending,
        };
        follow_ups(outcome, flags, &ctx, ny(19))
    }

    fn contact(at: DateTime<Utc>, kind: ContactKind) -> Contact {
        Contact {
            at,
            debt: Some("loan-1".into()),
            number: Some("+12125550100".into()),
            kind,
        }
    }

    #[test]
    fn dnc_sets_do_not_call_and_cancels_everything_and_nothing_else() {
        let pending = [(CallId::from_uuid(Uuid::from_u128(1)), ny(20))];
        let got = run(
            AttemptOutcome::Completed,
            &[Flag::Dnc, Flag::CallbackRequest],
            ScheduleType::Collections,
            &pending,
            &[],
        );
        assert_eq!(
            got,
            [
                FollowUp::SetDoNotCall,
                FollowUp::CancelPending {
                    reason: CancelReason::Flag,
                    end_schedule: true
                }
            ]
        );
    }

    #[test]
    fn cip_passed_completes_only_a_verification_schedule() {
        let got = run(
            AttemptOutcome::Completed,
            &[Flag::CipPassed],
            ScheduleType::Verification,
            &[],
            &[],
        );
        assert!(matches!(
            got[..],
            [FollowUp::CancelPending {
                reason: CancelReason::ScheduleComplete,
                ..
            }]
        ));
        let got = run(
            AttemptOutcome::Completed,
            &[Flag::CipPassed],
            ScheduleType::Collections,
            &[],
            &[],
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn no_answer_at_19h_retries_the_next_lawful_morning() {
        // 19:00 + 4 h = 23:00 New York: outside the window, so 08:00 the next day.
        let got = run(
            AttemptOutcome::NoAnswer,
            &[Flag::NoAnswer],
            ScheduleType::Collections,
            &[],
            &[],
        );
        let [FollowUp::Schedule { due_at, reasons }] = &got[..] else {
            panic!("{got:?}")
        };
        assert_eq!(
            due_at.with_timezone(&New_York).to_rfc3339(),
            "2026-05-06T08:00:00-04:00"
        );
        assert!(!reasons.is_empty());
        // A pending call before then makes the retry unnecessary.
        let pending = [(CallId::from_uuid(Uuid::from_u128(1)), ny(23))];
        assert!(
            run(
                AttemptOutcome::NoAnswer,
                &[],
                ScheduleType::Collections,
                &pending,
                &[]
            )
            .is_empty()
        );
    }

    #[test]
    fn a_conversation_defers_pending_calls_out_of_the_quiet_period() {
        let pending = [(
            CallId::from_uuid(Uuid::from_u128(7)),
            ny(10) + Duration::days(2),
        )];
        let history = [contact(ny(18), ContactKind::Conversation)];
        let got = run(
            AttemptOutcome::Completed,
            &[Flag::Rpc],
            ScheduleType::Collections,
            &pending,
            &history,
        );
        let [
            FollowUp::Defer {
                call,
                due_at,
                blocks,
            },
        ] = &got[..]
        else {
            panic!("{got:?}")
        };
        assert_eq!(*call, pending[0].0);
        assert!(*due_at >= ny(18) + Duration::days(7), "{due_at}");
        assert!(!blocks.is_empty());
    }
}
