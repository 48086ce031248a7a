//! The worker's conditional writes against a fresh Postgres database per test: claims,
//! leases and fencing, dial intents, results with their follow-ups and webhook events.

mod support;

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use outdial_domain::scheduled_call::{CancelReason, Event};
use outdial_domain::{AttemptNo, AttemptOutcome, CallId, CallStatus, Flag};
use outdial_store::{CallResult, ClaimedCall, CompanyId, DialIntent, Error, FollowUp, Store};
use sqlx::PgPool;

use support::*;

/// Well after every call of `plan(n)` is due.
fn later() -> DateTime<Utc> {
    now() + Duration::days(3)
}

async fn setup(store: &Store, calls: usize) -> (CompanyId, Vec<CallId>) {
    let acme = company(store, "acme").await;
    store
        .insert_customer(acme, &customer("c1", false, false), now())
        .await
        .expect("customer");
    let created = create(store, acme, "c1", calls).await;
    (acme, created.calls.iter().map(|c| c.id).collect())
}

async fn claim(store: &Store, ids: &[CallId], owner: &str, at: DateTime<Utc>) -> Vec<ClaimedCall> {
    store
        .claim_calls(ids, owner, at, at + Duration::seconds(30))
        .await
        .expect("claim")
}

/// The claims in `seen` were each of a different call, `calls` of them in all.
fn assert_claimed_once(seen: &[CallId], calls: usize) {
    let unique: HashSet<CallId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a call was claimed twice");
    assert_eq!(unique.len(), calls);
}

/// The events of a call's decision trail.
fn events(call: &outdial_store::ScheduledCallRecord) -> Vec<Event> {
    let trail = call.decision_trail.clone().expect("trail");
    trail.into_iter().map(|e| e.event).collect()
}

/// The trail of a call planned, claimed, dialed and ended with `outcome`.
fn dispatched(outcome: AttemptOutcome) -> Vec<Event> {
    vec![
        Event::Planned,
        Event::Claimed,
        Event::Dialed,
        Event::Ended { outcome },
    ]
}

/// A busy signal at `t`: no transcript, recording or flags.
fn busy(t: DateTime<Utc>) -> CallResult<'static> {
    CallResult {
        outcome: AttemptOutcome::Busy,
        provider_ref: None,
        transcript: None,
        recording_url: None,
        flags: &[],
        ended_at: t,
    }
}

async fn status(store: &Store, company: CompanyId, id: CallId) -> CallStatus {
    store
        .scheduled_call(company, id)
        .await
        .expect("call")
        .status
}

fn intent(c: &ClaimedCall) -> DialIntent<'_> {
    DialIntent {
        call: c.id,
        token: c.token,
        attempt: c.attempt,
        number: c.customer.phone.as_e164(),
        loan_id: c.loan_id.as_deref(),
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_call_is_claimed_once_and_only_when_due_and_pending(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, ids) = setup(&store, 4).await;
    // Not due yet: nothing.
    assert!(claim(&store, &ids, "w1", now()).await.is_empty());
    store
        .cancel_scheduled_call(acme, ids[3], now())
        .await
        .expect("cancel");
    let first = claim(&store, &ids, "w1", later()).await;
    let got: HashSet<CallId> = first.iter().map(|c| c.id).collect();
    assert_eq!(got, ids[..3].iter().copied().collect());
    assert!(
        first
            .iter()
            .all(|c| c.attempt == AttemptNo::FIRST && c.schedule_active)
    );
    assert_eq!(first[0].customer.id.as_str(), "c1");
    // A duplicate delivery, or another worker, gets nothing.
    assert!(claim(&store, &ids, "w2", later()).await.is_empty());
    assert_eq!(status(&store, acme, ids[0]).await, CallStatus::Dialing);
    let trail = store
        .scheduled_call(acme, ids[0])
        .await
        .expect("call")
        .decision_trail
        .expect("trail");
    assert_eq!(trail.last().expect("entry").event, Event::Claimed);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn concurrent_claimers_never_share_a_call(pool: PgPool) {
    let store = Store::new(pool);
    let (_, ids) = setup(&store, 40).await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            claim(&store, &ids, &format!("w{w}"), later()).await
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await.expect("claimer").into_iter().map(|c| c.id));
    }
    assert_claimed_once(&seen, 40);
}

/// The worker claims one call per task, so the claims of one process are grouped into one
/// transaction: a call asked for by several tasks at once (a duplicate queue delivery) is
/// still claimed once, and every task gets only calls it asked for.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn claims_grouped_in_one_transaction_claim_each_call_once(pool: PgPool) {
    let store = Store::new(pool);
    let (_, ids) = setup(&store, 60).await;
    let mut tasks = Vec::new();
    // 180 single-call claims at once: every call asked for by three tasks.
    for k in 0..180 {
        let store = store.clone();
        let id = ids[k % ids.len()];
        tasks.push(tokio::spawn(async move {
            // (the 60th call is due 60 hours after `now()`)
            let at = later() + Duration::days(1);
            (id, claim(&store, &[id], &format!("w{k}"), at).await)
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        let (asked, got) = task.await.expect("claimer");
        assert!(
            got.iter().all(|c| c.id == asked),
            "a task got a call it did not ask for"
        );
        seen.extend(got.into_iter().map(|c| c.id));
    }
    assert_claimed_once(&seen, 60);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn an_expired_lease_is_taken_over_only_before_the_dial_intent(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, ids) = setup(&store, 2).await;
    let t = later();
    let old = claim(&store, &ids, "dead-worker", t).await;
    // The first call got its dial intent before the worker died; the second did not.
    let recorded = store
        .record_dial_intents(acme, &[intent(&old[0])], t)
        .await
        .expect("intent");
    assert_eq!(recorded.len(), 1);
    let after_expiry = t + Duration::seconds(31);
    let taken = claim(&store, &ids, "w2", after_expiry).await;
    assert_eq!(taken.len(), 1, "only the call without a dial intent");
    assert_eq!(taken[0].id, old[1].id);
    assert!(taken[0].token > old[1].token);
    // The dead worker's late writes are fenced.
    assert!(matches!(
        store
            .release(old[1].id, old[1].token, t, Event::HandedBack, vec![], t)
            .await,
        Err(Error::Fenced)
    ));
    let late = store
        .record_dial_intents(acme, &[intent(&old[1])], after_expiry)
        .await
        .expect("no error");
    assert!(late.is_empty(), "a fenced worker records no intent");
    // The new holder's intent is accepted.
    let mine = store
        .record_dial_intents(acme, &[intent(&taken[0])], after_expiry)
        .await
        .expect("intent");
    assert_eq!(mine.len(), 1);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_released_call_is_scheduled_again_without_consuming_an_attempt(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, ids) = setup(&store, 1).await;
    let t = later();
    let claimed = claim(&store, &ids, "w1", t).await;
    let next = t + Duration::hours(12);
    store
        .release(ids[0], claimed[0].token, next, Event::Deferred, vec![], t)
        .await
        .expect("release");
    let call = store.scheduled_call(acme, ids[0]).await.expect("call");
    assert_eq!(
        (call.status, call.scheduled_at, call.attempts),
        (CallStatus::Scheduled, next, 0)
    );
    assert!(
        claim(&store, &ids, "w1", t).await.is_empty(),
        "not due until `next`"
    );
    let again = claim(&store, &ids, "w1", next).await;
    assert_eq!(again[0].attempt, AttemptNo::FIRST);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_dnc_result_is_stored_with_its_follow_ups_and_webhook_event_at_once(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, ids) = setup(&store, 5).await;
    store
        .set_webhook(acme, Some("http://127.0.0.1:9/hook"))
        .await
        .expect("webhook");
    let t = later() - Duration::days(2) + Duration::hours(1);
    let claimed = claim(&store, &ids[..1], "w1", t).await;
    let c = &claimed[0];
    store
        .record_dial_intents(acme, &[intent(c)], t)
        .await
        .expect("intent");
    store
        .mark_dialed(c.id, c.token, Some("sim-1"), t)
        .await
        .expect("dialed");
    // An unknown flag is stored verbatim, whatever its characters.
    let odd = Flag::Other(r#"odd, "quoted" \ {flag}"#.to_owned());
    let flags = [Flag::Connect, Flag::Dnc, odd];
    let applied = store
        .record_result(
            c.id,
            Some(c.token),
            c.attempt,
            &CallResult {
                outcome: AttemptOutcome::Completed,
                provider_ref: Some("sim-1"),
                transcript: Some("Customer: stop calling me."),
                recording_url: Some("https://rec.example/1.mp3"),
                flags: &flags,
                ended_at: t + Duration::minutes(2),
            },
            &[
                FollowUp::SetDoNotCall,
                FollowUp::CancelPending {
                    reason: CancelReason::Flag,
                    end_schedule: true,
                },
            ],
            t + Duration::minutes(2),
        )
        .await
        .expect("result");
    let cancelled: HashSet<CallId> = applied.cancelled.iter().copied().collect();
    assert_eq!(cancelled, ids[1..].iter().copied().collect());
    assert!(applied.event.is_some(), "a webhook event was written");
    assert!(
        store
            .customer(acme, "c1")
            .await
            .expect("customer")
            .do_not_call
    );
    let call = store.scheduled_call(acme, c.id).await.expect("call");
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.attempts, 1);
    assert_eq!(call.post_processing_flags, flags.to_vec());
    assert_eq!(events(&call), dispatched(AttemptOutcome::Completed));
    let placed = store
        .call(acme, applied.call)
        .await
        .expect("the placed call");
    assert_eq!(
        placed.transcript.as_deref(),
        Some("Customer: stop calling me.")
    );
    assert_eq!(placed.status, CallStatus::Completed);
    assert_eq!(placed.post_processing_flags, flags.to_vec());
    // A repeat of the same result (a duplicate provider event) changes nothing.
    assert!(matches!(
        store
            .record_result(
                c.id,
                None,
                c.attempt,
                &CallResult {
                    outcome: AttemptOutcome::Completed,
                    provider_ref: None,
                    transcript: None,
                    recording_url: None,
                    flags: &[],
                    ended_at: t,
                },
                &[],
                t,
            )
            .await,
        Err(Error::Fenced)
    ));
    let payload: serde_json::Value =
        sqlx::query_scalar("SELECT payload FROM webhook_outbox WHERE id = $1")
            .bind(applied.event.expect("event"))
            .fetch_one(store.pool())
            .await
            .expect("outbox row");
    assert_eq!(payload["customerId"], "c1");
    assert_eq!(
        payload["postProcessingFlags"],
        serde_json::json!(["CONNECT", "DNC", r#"odd, "quoted" \ {flag}"#])
    );
    assert_eq!(payload["recording_url"], "https://rec.example/1.mp3");
    assert_eq!(payload["scheduledCallId"], c.id.to_string());
}

/// Results ending at the same moment are written together (one transaction, set
/// statements): each still gets its own answer — written with its trail and, where the
/// company has a webhook, its event; fenced when its lease was taken over; not found when
/// no dial intent was recorded — and the others are written all the same.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn results_written_together_each_get_their_own_answer(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, acme_ids) = setup(&store, 8).await;
    store
        .set_webhook(acme, Some("http://127.0.0.1:9/hook"))
        .await
        .expect("webhook");
    let globex = company(&store, "globex").await;
    store
        .insert_customer(globex, &customer("g1", false, false), now())
        .await
        .expect("customer");
    let globex_ids: Vec<CallId> = create(&store, globex, "g1", 8)
        .await
        .calls
        .iter()
        .map(|c| c.id)
        .collect();
    let t = later() + Duration::days(1);
    let mut claimed = claim(&store, &acme_ids, "w1", t).await;
    claimed.extend(claim(&store, &globex_ids, "w1", t).await);
    assert_eq!(claimed.len(), 16);
    // Every call but the last gets its dial intent; the first has its lease taken over.
    for c in &claimed[..15] {
        let recorded = store
            .record_dial_intents(c.company, &[intent(c)], t)
            .await
            .expect("intent");
        assert_eq!(recorded.len(), 1);
    }
    let mut stale = claimed[0].clone();
    stale.token = outdial_store::LeaseToken(stale.token.0 - 1);
    claimed[0] = stale;
    let mut tasks = Vec::new();
    for c in claimed.clone() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let flags = [Flag::NoAnswer];
            let result = CallResult {
                outcome: AttemptOutcome::NoAnswer,
                provider_ref: Some("sim"),
                transcript: Some("no one answered"),
                recording_url: None,
                flags: &flags,
                ended_at: t,
            };
            let retry = FollowUp::Schedule {
                due_at: t + Duration::days(1),
                reasons: vec![],
            };
            let answer = store
                .record_result(c.id, Some(c.token), c.attempt, &result, &[retry], t)
                .await;
            (c, answer)
        }));
    }
    for task in tasks {
        let (c, answer) = task.await.expect("writer");
        if c.id == claimed[0].id {
            assert!(matches!(answer, Err(Error::Fenced)), "{answer:?}");
            assert_eq!(status(&store, c.company, c.id).await, CallStatus::Dialing);
            continue;
        }
        if c.id == claimed[15].id {
            assert!(matches!(answer, Err(Error::NotFound { .. })), "{answer:?}");
            assert_eq!(status(&store, c.company, c.id).await, CallStatus::Dialing);
            continue;
        }
        let applied = answer.expect("written");
        assert_eq!(
            applied.event.is_some(),
            c.company == acme,
            "events only with a webhook"
        );
        assert_eq!(applied.created.len(), 1, "its retry");
        let call = store.scheduled_call(c.company, c.id).await.expect("call");
        assert_eq!(call.status, CallStatus::NoAnswer);
        assert_eq!(call.attempts, 1);
        assert_eq!(call.post_processing_flags, vec![Flag::NoAnswer]);
        assert_eq!(events(&call), dispatched(AttemptOutcome::NoAnswer));
        let placed = store.call(c.company, applied.call).await.expect("attempt");
        assert_eq!(placed.transcript.as_deref(), Some("no one answered"));
        let (retry, due) = applied.created[0];
        let retry = store.scheduled_call(c.company, retry).await.expect("retry");
        let trail = retry.decision_trail.expect("trail");
        assert_eq!(trail.len(), 1);
        assert_eq!(
            (trail[0].event.clone(), trail[0].due_at),
            (Event::Planned, due)
        );
    }
}

/// A retry planned by one result and a DNC reported by another for the same customer, at
/// once (in one group or not, in either order): the customer is left with no pending call —
/// the retry is cancelled with the rest, or never planned on the ended schedule.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_dnc_beside_a_retry_of_the_same_customer_leaves_nothing_pending(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, ids) = setup(&store, 6).await;
    let t = later() + Duration::days(1);
    let claimed = claim(&store, &ids[..2], "w1", t).await;
    assert_eq!(claimed.len(), 2);
    for c in &claimed {
        store
            .record_dial_intents(acme, &[intent(c)], t)
            .await
            .expect("intent");
    }
    let (retry, dnc) = (claimed[0].clone(), claimed[1].clone());
    let no_answer = {
        let store = store.clone();
        tokio::spawn(async move {
            let follow_up = FollowUp::Schedule {
                due_at: t + Duration::days(1),
                reasons: vec![],
            };
            let result = CallResult {
                flags: &[Flag::NoAnswer],
                ..busy(t)
            };
            store
                .record_result(
                    retry.id,
                    Some(retry.token),
                    retry.attempt,
                    &result,
                    &[follow_up],
                    t,
                )
                .await
        })
    };
    let stop = {
        let store = store.clone();
        tokio::spawn(async move {
            let result = CallResult {
                outcome: AttemptOutcome::Completed,
                flags: &[Flag::Dnc],
                ..busy(t)
            };
            let follow_ups = [
                FollowUp::SetDoNotCall,
                FollowUp::CancelPending {
                    reason: CancelReason::Flag,
                    end_schedule: true,
                },
            ];
            store
                .record_result(
                    dnc.id,
                    Some(dnc.token),
                    dnc.attempt,
                    &result,
                    &follow_ups,
                    t,
                )
                .await
        })
    };
    let planned = no_answer.await.expect("writer").expect("no answer written");
    let stopped = stop.await.expect("writer").expect("dnc written");
    for (call, _) in &planned.created {
        assert_eq!(status(&store, acme, *call).await, CallStatus::Cancelled);
    }
    assert!(stopped.cancelled.len() >= 4, "{stopped:?}");
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM scheduled_calls WHERE company_id = $1 AND status = 'scheduled'",
    )
    .bind(acme.as_uuid())
    .fetch_one(store.pool())
    .await
    .expect("count");
    assert_eq!(pending, 0);
}

/// A worker that delivers webhooks itself gets each result's event back to send at once;
/// the event falls due in the outbox only after the hold, so the outbox poll leaves it
/// alone until then — and delivers it then if the worker never recorded the delivery.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_held_webhook_event_is_handed_back_and_polled_only_after_the_hold(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, ids) = setup(&store, 1).await;
    let company = store
        .set_webhook(acme, Some("http://127.0.0.1:9/hook"))
        .await
        .expect("webhook");
    let t = later();
    let c = &claim(&store, &ids, "w1", t).await[0];
    store
        .record_dial_intents(acme, &[intent(c)], t)
        .await
        .expect("intent");
    let hold = Duration::seconds(30);
    let applied = store
        .delivering_webhooks(hold)
        .record_result(c.id, Some(c.token), c.attempt, &busy(t), &[], t)
        .await
        .expect("result");
    let delivery = applied.delivery.expect("the event to deliver now");
    assert_eq!(Some(delivery.id), applied.event);
    assert_eq!(delivery.url, "http://127.0.0.1:9/hook");
    assert_eq!(Some(&delivery.secret), company.webhook_secret.as_ref());
    assert_eq!(delivery.payload["scheduledCallId"], c.id.to_string());
    assert_eq!(delivery.payload["eventId"], delivery.id.to_string());
    assert_eq!(delivery.attempts, 0);
    let soon = t + hold - Duration::seconds(1);
    let none = store
        .claim_deliveries(soon, soon + hold, 10)
        .await
        .expect("poll");
    assert!(none.is_empty(), "held from the outbox poll");
    let after = t + hold;
    let polled = store
        .claim_deliveries(after, after + hold, 10)
        .await
        .expect("poll");
    assert_eq!(polled, vec![delivery]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_no_answer_schedules_its_retry_in_the_same_schedule(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, ids) = setup(&store, 1).await;
    let t = later();
    let claimed = claim(&store, &ids, "w1", t).await;
    let c = &claimed[0];
    store
        .record_dial_intents(acme, &[intent(c)], t)
        .await
        .expect("intent");
    // An immediate outcome: dialing -> no_answer, the Dialed step recorded on the way.
    let retry_at = t + Duration::hours(4);
    let applied = store
        .record_result(
            c.id,
            Some(c.token),
            c.attempt,
            &CallResult {
                outcome: AttemptOutcome::NoAnswer,
                provider_ref: Some("sim-2"),
                transcript: None,
                recording_url: None,
                flags: &[Flag::NoAnswer],
                ended_at: t,
            },
            &[FollowUp::Schedule {
                due_at: retry_at,
                reasons: vec![],
            }],
            t,
        )
        .await
        .expect("result");
    assert_eq!(applied.created.len(), 1);
    assert_eq!(applied.event, None, "no webhook configured");
    let (retry, due) = applied.created[0];
    assert_eq!(due, retry_at);
    assert_eq!(status(&store, acme, c.id).await, CallStatus::NoAnswer);
    assert_eq!(status(&store, acme, retry).await, CallStatus::Scheduled);
    // The contact history the API plans with, read with the customer, is the one the
    // worker reads.
    let (customer, history) = store
        .customer_and_contacts(acme, "c1")
        .await
        .expect("customer and contacts");
    assert_eq!(customer.id.as_str(), "c1");
    assert_eq!(history, store.contacts(acme, "c1").await.expect("contacts"));
    assert_eq!(history.len(), 1);
    let again = claim(&store, &[retry], "w1", retry_at).await;
    assert_eq!(again.len(), 1);
    // What the claim read for the retry: the first call in the customer's history (not the
    // retry's own attempt), one call placed under the schedule, the cadence it was made
    // with, and no other pending call.
    let context = &again[0].context;
    assert_eq!(context.history.len(), 1);
    assert_eq!(context.history[0].at, t);
    assert_eq!(
        context.history[0].number.as_deref(),
        Some(c.customer.phone.as_e164())
    );
    assert_eq!(context.attempts_used, 1);
    assert_eq!(context.cadence, c.context.cadence);
    assert!(context.pending.is_empty());
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_claim_reads_the_customers_other_pending_calls_and_an_empty_history(pool: PgPool) {
    let store = Store::new(pool);
    let (_, ids) = setup(&store, 3).await;
    let claimed = claim(&store, &ids[..1], "w1", later()).await;
    let context = &claimed[0].context;
    assert!(context.history.is_empty());
    assert_eq!(context.attempts_used, 0);
    let pending: Vec<CallId> = context.pending.iter().map(|(id, _)| *id).collect();
    assert_eq!(pending, ids[1..].to_vec(), "the others, in due order");
    let default = outdial_domain::schedule::Cadence::default_def(
        outdial_domain::task::ScheduleType::Collections,
    )
    .expect("a default");
    assert_eq!(context.cadence, default);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn webhook_events_are_claimed_once_retried_dead_lettered_and_redriven(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, ids) = setup(&store, 1).await;
    let company = store
        .set_webhook(acme, Some("http://127.0.0.1:9/hook"))
        .await
        .expect("webhook");
    let secret = company.webhook_secret.expect("a signing secret");
    assert!(secret.starts_with("whsec_") && secret.len() == 70);
    let t = later();
    let claimed = claim(&store, &ids, "w1", t).await;
    let c = &claimed[0];
    store
        .record_dial_intents(acme, &[intent(c)], t)
        .await
        .expect("intent");
    let applied = store
        .record_result(c.id, Some(c.token), c.attempt, &busy(t), &[], t)
        .await
        .expect("result");
    let event = applied.event.expect("an event");

    let lease = t + Duration::seconds(30);
    let got = store.claim_deliveries(t, lease, 10).await.expect("claim");
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].id, got[0].secret.as_str()),
        (event, secret.as_str())
    );
    assert!(
        store
            .claim_deliveries(t, lease, 10)
            .await
            .expect("claim")
            .is_empty(),
        "claimed once"
    );
    // A deliverer that died: the event comes back when its claim runs out.
    assert_eq!(
        store
            .claim_deliveries(lease, lease + Duration::seconds(30), 10)
            .await
            .expect("claim")
            .len(),
        1
    );

    let retry = t + Duration::minutes(5);
    store
        .delivery_failed(event, "HTTP 503", Some(retry), t)
        .await
        .expect("failed");
    assert!(
        store
            .claim_deliveries(t + Duration::minutes(4), lease, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let again = store
        .claim_deliveries(retry, retry + Duration::seconds(30), 10)
        .await
        .expect("claim");
    assert_eq!(again[0].attempts, 1);
    store
        .delivery_failed(event, "HTTP 503", None, retry)
        .await
        .expect("dead");
    let dead = store.deliveries(acme, "dead", 10).await.expect("list");
    assert_eq!((dead.len(), dead[0].attempts), (1, 2));
    assert_eq!(
        store
            .redrive_deliveries(acme, None, retry)
            .await
            .expect("redrive"),
        1
    );
    let redriven = store
        .claim_deliveries(retry, retry + Duration::seconds(30), 10)
        .await
        .expect("claim");
    assert_eq!(redriven.len(), 1);
    store.delivered(event, retry).await.expect("delivered");
    let delivered = store.deliveries(acme, "delivered", 10).await.expect("list");
    assert_eq!(delivered[0].delivered_at, Some(retry));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn reconciliation_pages_every_pending_call_once_and_names_the_settled(pool: PgPool) {
    let store = Store::new(pool);
    let (acme, ids) = setup(&store, 25).await;
    store
        .cancel_scheduled_call(acme, ids[0], now())
        .await
        .expect("cancel");
    let claimed = claim(&store, &ids[1..2], "w1", later()).await;
    assert_eq!(claimed.len(), 1);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.pending_page(after, 7).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.call);
        seen.extend(page.iter().map(|p| p.call));
    }
    let expected: HashSet<CallId> = ids[2..].iter().copied().collect();
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), expected);
    let unknown = CallId::from_uuid(uuid::Uuid::from_u128(42));
    let settled = store
        .settled_among(&[ids[0], ids[1], ids[2], unknown])
        .await
        .expect("settled");
    assert_eq!(
        settled,
        [ids[0], unknown],
        "cancelled and unknown; dialing is live"
    );
}
