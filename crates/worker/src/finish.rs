//! Recording a finished call: the follow-ups its flags and the retry rule demand (computed
//! by `outdial_domain::follow_up` against the policy), written with the result and the
//! webhook event in one transaction, then mirrored in the queue (cancelled calls removed,
//! new and moved calls enqueued).

use chrono::{DateTime, Utc};
use outdial_dialer::ProviderCall;
use outdial_domain::follow_up::{Context, follow_ups};
use outdial_domain::policy::Contact;
use outdial_domain::schedule::RetrySpacing;
use outdial_domain::{AttemptNo, AttemptOutcome, Flag};
use outdial_queue::NewJob;
use outdial_store::{Applied, CallResult, ClaimedCall, LeaseToken};

use crate::Result;
use crate::dispatch::{Dispatcher, Steps, partition};

/// How a call ended, as the worker records it.
#[derive(Debug, Clone)]
pub struct Ended {
    pub outcome: AttemptOutcome,
    pub provider_ref: Option<String>,
    pub transcript: Option<String>,
    pub recording_url: Option<String>,
    pub flags: Vec<Flag>,
    pub ended_at: DateTime<Utc>,
}

impl Ended {
    /// From an ended provider call (a missing result counts as a failed call).
    pub fn from_provider(call: &ProviderCall, now: DateTime<Utc>) -> Self {
        let ended_at = call.ended_at.unwrap_or(now);
        match &call.result {
            Some(r) => Ended {
                outcome: r.outcome,
                provider_ref: Some(call.id.clone()),
                transcript: r.transcript.clone(),
                recording_url: r.recording_url.clone(),
                flags: r.flags.clone(),
                ended_at,
            },
            None => Ended {
                outcome: AttemptOutcome::Failed,
                provider_ref: Some(call.id.clone()),
                transcript: None,
                recording_url: None,
                flags: vec![],
                ended_at,
            },
        }
    }
}

/// Records `ended` for attempt `attempt` of `call` (fenced by `token`; `None` on the
/// recovery path) with its follow-ups, and mirrors the follow-ups in the queue.
pub async fn finish(
    d: &Dispatcher,
    call: &ClaimedCall,
    token: Option<LeaseToken>,
    attempt: AttemptNo,
    ended: &Ended,
) -> Result<Applied> {
    finish_with(d, None, call, token, attempt, ended).await
}

/// [`finish`], with the follow-ups' enqueue coalesced through a running dispatcher's
/// `steps` when given.
pub(crate) async fn finish_with(
    d: &Dispatcher,
    steps: Option<&Steps>,
    call: &ClaimedCall,
    token: Option<LeaseToken>,
    attempt: AttemptNo,
    ended: &Ended,
) -> Result<Applied> {
    let now = d.clock.now();
    let context = &call.context;
    // The retry rule only: the cadence's cron expressions were checked when the schedule
    // was made and plan nothing here.
    let retry = RetrySpacing::of(&context.cadence)?;
    // The history read with the claim holds the customer's other attempts; this one is
    // added as it ended, at `now` (its end, not its start: a quiet period counted from it
    // ends no earlier than one counted from the start).
    let mut history = context.history.clone();
    history.push(Contact {
        at: now,
        debt: call.loan_id.clone(),
        number: Some(call.customer.phone.as_e164().to_owned()),
        kind: ended.outcome.contact_kind(&ended.flags),
    });
    let used = context.attempts_used + 1;
    let candidates = call.customer.candidates();
    let policy = d.rules.prepare(&candidates, call.schedule_type.purpose());
    let mut subject = call.customer.subject();
    if call.loan_id.is_some() {
        subject.debt = call.loan_id.as_deref();
    }
    let plan = follow_ups(
        ended.outcome,
        &ended.flags,
        &Context {
            policy: &policy,
            subject,
            history: &history,
            schedule_type: call.schedule_type,
            retry,
            max_attempts: context.cadence.max_attempts,
            attempts_used: used,
            pending: &context.pending,
        },
        now,
    );
    let mut applied = d
        .store
        .record_result(
            call.id,
            token,
            attempt,
            &CallResult {
                outcome: ended.outcome,
                provider_ref: ended.provider_ref.as_deref(),
                transcript: ended.transcript.as_deref(),
                recording_url: ended.recording_url.as_deref(),
                flags: &ended.flags,
                ended_at: ended.ended_at,
            },
            &plan,
            now,
        )
        .await?;
    if let (Some(delivery), Some(webhooks)) = (applied.delivery.take(), &d.webhooks) {
        webhooks.send(delivery);
    }
    tracing::info!(
        outcome = ended.outcome.as_str(),
        flags = ?ended.flags,
        cancelled = applied.cancelled.len(),
        created = applied.created.len(),
        deferred = applied.deferred.len(),
        "call ended"
    );
    let part = partition(call.company)?;
    for id in &applied.cancelled {
        let job = d.queue.job_ref(&part, *id, &call.customer.id);
        d.queue.cancel(&job).await?;
    }
    let jobs: Vec<NewJob> = applied
        .created
        .iter()
        .chain(&applied.deferred)
        .map(|(id, due)| NewJob {
            call: *id,
            partition: part.clone(),
            customer: call.customer.id.clone(),
            due: *due,
        })
        .collect();
    match steps {
        _ if jobs.is_empty() => {}
        Some(steps) => steps.enqueue.run(jobs).await?,
        None => {
            d.queue.enqueue_many(&jobs).await?;
        }
    }
    Ok(applied)
}
