//! Schedules that store only their first calls as rows (`Store::storing_ahead`): the rest
//! of the plan reads, lists, cancels and reschedules like stored calls, and workers store
//! each planned call exactly once as it comes due.

mod support;

use std::collections::HashSet;

use chrono::Duration;
use outdial_domain::schedule::{Cadence, CadenceDef};
use outdial_domain::scheduled_call::Event;
use outdial_domain::task::ScheduleType;
use outdial_domain::{CallId, CallStatus, Customer};
use outdial_store::{
    CallFilter, CompanyId, CreatedSchedule, Error, NewSchedule, ScheduledCallRecord, Store,
};
use sqlx::PgPool;

use support::*;

/// Calls are an hour apart from now + 24 h: this stores the first three (24, 25, 26 h).
fn ahead() -> Duration {
    Duration::minutes(26 * 60 + 30)
}

async fn setup(pool: PgPool, calls: usize) -> (Store, CompanyId, CreatedSchedule) {
    let store = Store::new(pool).storing_ahead(Some(ahead()));
    let acme = company(&store, "acme").await;
    store
        .insert_customer(acme, &customer("c1", false, false), now())
        .await
        .expect("customer");
    let created = create(&store, acme, "c1", calls).await;
    (store, acme, created)
}

async fn rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM scheduled_calls")
        .fetch_one(store.pool())
        .await
        .expect("count")
}

async fn list(store: &Store, company: CompanyId, filter: &CallFilter) -> Vec<CallId> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store
            .list_scheduled_calls(company, filter, after, 4)
            .await
            .expect("list");
        out.extend(page.iter().map(|c| c.id));
        match next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

fn ids(created: &CreatedSchedule) -> Vec<CallId> {
    created.calls.iter().map(|c| c.id).collect()
}

/// What a user reads of a call, without the fields a store or a cancel changes.
fn shown(r: &ScheduledCallRecord) -> (CallId, CallStatus, chrono::DateTime<chrono::Utc>, String) {
    (r.id, r.status, r.scheduled_at, r.local_time.clone())
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn unstored_calls_read_and_list_like_stored_ones_in_plan_order(pool: PgPool) {
    let (store, acme, created) = setup(pool, 10).await;
    assert_eq!(created.calls.len(), 10);
    assert_eq!(created.stored, 3);
    assert_eq!(
        rows(&store).await,
        3,
        "only the calls due within the horizon are rows"
    );
    assert_eq!(store.unstored_plan().await.expect("plan").0, 7);

    // Every call is listed once, in plan order, across pages of 4, by any matching filter.
    let all = CallFilter::default();
    assert_eq!(list(&store, acme, &all).await, ids(&created));
    let pending = CallFilter {
        status: Some(CallStatus::Scheduled),
        ..CallFilter::default()
    };
    assert_eq!(list(&store, acme, &pending).await, ids(&created));
    let mine = CallFilter {
        customer_id: Some("c1".into()),
        ..CallFilter::default()
    };
    assert_eq!(list(&store, acme, &mine).await, ids(&created));
    let cancelled = CallFilter {
        status: Some(CallStatus::Cancelled),
        ..CallFilter::default()
    };
    assert!(list(&store, acme, &cancelled).await.is_empty());
    let other = CallFilter {
        customer_id: Some("c2".into()),
        ..CallFilter::default()
    };
    assert!(list(&store, acme, &other).await.is_empty());

    // One unstored call reads like the stored one it becomes, with its "planned" entry.
    let seventh = created.calls[7].id;
    let before = store.scheduled_call(acme, seventh).await.expect("unstored");
    assert_eq!(before.status, CallStatus::Scheduled);
    assert_eq!(shown(&before), shown(&created.calls[7]));
    let trail = before.decision_trail.clone().expect("trail");
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].event, Event::Planned);
    let globex = company(&store, "globex").await;
    assert!(matches!(
        store.scheduled_call(globex, seventh).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store
            .list_scheduled_calls(globex, &all, None, 100)
            .await
            .map(|(p, _)| p.len()),
        Ok(0)
    ));

    let far = now() + Duration::days(30);
    let stored = store.store_planned(far, 100, now()).await.expect("store");
    assert_eq!(stored.len(), 7);
    let after = store.scheduled_call(acme, seventh).await.expect("stored");
    assert_eq!(shown(&after), shown(&before));
    assert_eq!(after.created_at, before.created_at);
    assert_eq!(after.decision_trail.expect("trail")[0], trail[0]);
    assert_eq!(list(&store, acme, &all).await, ids(&created));
    assert_eq!(rows(&store).await, 10);
    assert_eq!(store.unstored_plan().await.expect("plan"), (0, None));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn workers_store_each_planned_call_once_as_it_comes_due(pool: PgPool) {
    let (store, _acme, created) = setup(pool, 10).await;
    let (unstored, next) = store.unstored_plan().await.expect("plan");
    assert_eq!((unstored, next), (7, Some(created.calls[3].scheduled_at)));
    // Nothing is due within the horizon yet.
    let early = store
        .store_planned(now() + ahead(), 100, now())
        .await
        .expect("store");
    assert!(early.is_empty());
    // Two hours on: calls 3 and 4.
    let later = now() + ahead() + Duration::hours(2);
    let got = store.store_planned(later, 100, now()).await.expect("store");
    let got: Vec<CallId> = got.iter().map(|p| p.call).collect();
    assert_eq!(got, ids(&created)[3..5]);
    assert!(
        store
            .store_planned(later, 100, now())
            .await
            .expect("again")
            .is_empty()
    );

    // Several workers at once: every remaining call is stored by exactly one of them.
    let far = now() + Duration::days(30);
    let runs = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.store_planned(far, 100, now()).await })
    });
    let mut seen = Vec::new();
    for run in runs {
        seen.extend(
            run.await
                .expect("join")
                .expect("store")
                .into_iter()
                .map(|p| p.call),
        );
    }
    seen.sort_by_key(|c| c.to_string());
    let mut want = ids(&created)[5..].to_vec();
    want.sort_by_key(|c| c.to_string());
    assert_eq!(seen, want);
    assert_eq!(rows(&store).await, 10);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn cancelling_or_replacing_a_schedule_cancels_its_unstored_calls(pool: PgPool) {
    let (store, acme, created) = setup(pool, 10).await;
    let done = store
        .cancel_communications(acme, "c1", now())
        .await
        .expect("cancel");
    assert_eq!(done.cancelled, 10);
    let cancelled = CallFilter {
        status: Some(CallStatus::Cancelled),
        ..CallFilter::default()
    };
    assert_eq!(list(&store, acme, &cancelled).await, ids(&created));
    let far = now() + Duration::days(30);
    assert!(
        store
            .store_planned(far, 100, now())
            .await
            .expect("store")
            .is_empty()
    );
    assert_eq!(store.unstored_plan().await.expect("plan").0, 0);

    // A new schedule, then one replacing it: the first one's unstored calls are cancelled.
    let first = create(&store, acme, "c1", 10).await;
    let second = create(&store, acme, "c1", 4).await;
    let replaced: HashSet<CallId> = second.cancelled.iter().copied().collect();
    assert_eq!(replaced, ids(&first).into_iter().collect());
    let pending = CallFilter {
        status: Some(CallStatus::Scheduled),
        ..CallFilter::default()
    };
    assert_eq!(list(&store, acme, &pending).await, ids(&second));
    let stored = store.store_planned(far, 100, now()).await.expect("store");
    let stored: Vec<CallId> = stored.iter().map(|p| p.call).collect();
    assert_eq!(stored, ids(&second)[3..]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn one_unstored_call_is_cancelled_or_rescheduled_and_never_comes_back(pool: PgPool) {
    let (store, acme, created) = setup(pool, 10).await;
    let seventh = created.calls[7].id;
    let record = store
        .cancel_scheduled_call(acme, seventh, now())
        .await
        .expect("cancel");
    assert_eq!(record.status, CallStatus::Cancelled);
    assert!(matches!(
        store.cancel_scheduled_call(acme, seventh, now()).await,
        Err(Error::NotPending {
            status: CallStatus::Cancelled
        })
    ));
    let eighth = created.calls[8].id;
    let at = created.calls[8].scheduled_at + Duration::minutes(30);
    let moved = store
        .reschedule_call(acme, eighth, at, now())
        .await
        .expect("reschedule");
    assert_eq!(
        (moved.status, moved.scheduled_at),
        (CallStatus::Scheduled, at)
    );
    let due = store.pending_due_times(acme, "c1").await.expect("due");
    assert_eq!(
        due.len(),
        9,
        "every pending call, stored or not, but the cancelled one"
    );
    assert!(due.contains(&(eighth, at)));
    assert!(due.contains(&(created.calls[9].id, created.calls[9].scheduled_at)));

    // A worker stores only what is left: call 9; the cancelled call stays cancelled.
    let far = now() + Duration::days(30);
    let stored = store.store_planned(far, 100, now()).await.expect("store");
    let stored: Vec<CallId> = stored.iter().map(|p| p.call).collect();
    assert_eq!(stored, vec![created.calls[9].id]);
    let record = store.scheduled_call(acme, seventh).await.expect("read");
    assert_eq!(record.status, CallStatus::Cancelled);
    let all = CallFilter::default();
    assert_eq!(list(&store, acme, &all).await, ids(&created));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_claimed_call_sees_the_unstored_calls_among_the_customers_pending_ones(pool: PgPool) {
    // A retry is added only when no pending call comes sooner, and a quiet period moves
    // every pending call: both read this list.
    let (store, _acme, created) = setup(pool, 10).await;
    let first = created.calls[0].id;
    let at = created.calls[0].scheduled_at;
    let claimed = store
        .claim_calls(&[first], "w1", at, at + Duration::minutes(5))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let pending: Vec<CallId> = claimed[0]
        .context
        .pending
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(pending, ids(&created)[1..]);
    let due: Vec<_> = claimed[0]
        .context
        .pending
        .iter()
        .map(|(_, at)| *at)
        .collect();
    let want: Vec<_> = created.calls[1..].iter().map(|c| c.scheduled_at).collect();
    assert_eq!(due, want);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn schedules_made_together_with_equal_plans_share_one_stored_plan(pool: PgPool) {
    let store = Store::new(pool).storing_ahead(Some(ahead()));
    let acme = company(&store, "acme").await;
    // An import's chunk: three new customers, two with the same plan.
    let job = store
        .create_import(acme, "test", Some(ScheduleType::Collections), &[], now())
        .await
        .expect("job");
    let job = store
        .claim_import("me", Duration::minutes(1), now(), Some(job))
        .await
        .expect("claim")
        .expect("the job");
    let mut chunk = store
        .begin_import_chunk(&job, "me", now() + Duration::minutes(1))
        .await
        .expect("chunk")
        .expect("the lease");
    let people: Vec<Customer> = ["c1", "c2", "c3"]
        .into_iter()
        .map(|id| customer(id, false, false))
        .collect();
    chunk
        .insert_many(&people.iter().collect::<Vec<_>>(), now())
        .await
        .expect("customers");
    let def: CadenceDef = Cadence::default_def(ScheduleType::Collections).expect("a default");
    let (ten, six) = (plan(10), plan(6));
    let news: Vec<NewSchedule<'_>> = people
        .iter()
        .zip([&ten, &ten, &six])
        .map(|(c, plan)| collections(&c.id, &def, plan))
        .collect();
    let stored = chunk
        .first_schedules(&news, now())
        .await
        .expect("schedules");
    chunk.commit().await.expect("commit");
    assert_eq!(stored.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3]);
    let plans: i64 = sqlx::query_scalar("SELECT count(*) FROM schedule_plans")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(plans, 2, "one plan row per distinct plan");

    // Each customer still has its own calls: own ids, own times, listed once each.
    let of = |id: &str| CallFilter {
        customer_id: Some(id.into()),
        ..CallFilter::default()
    };
    let (c1, c2, c3) = (
        list(&store, acme, &of("c1")).await,
        list(&store, acme, &of("c2")).await,
        list(&store, acme, &of("c3")).await,
    );
    assert_eq!((c1.len(), c2.len(), c3.len()), (10, 10, 6));
    let all: HashSet<CallId> = c1.iter().chain(&c2).chain(&c3).copied().collect();
    assert_eq!(all.len(), 26);
    assert_eq!(list(&store, acme, &CallFilter::default()).await.len(), 26);
    let read = store.scheduled_call(acme, c2[9]).await.expect("unstored");
    assert_eq!(read.scheduled_at, ten.calls[9].at);

    // Cancelling one customer's calls leaves the others' shared plan alone.
    let done = store
        .cancel_communications(acme, "c1", now())
        .await
        .expect("cancel");
    assert_eq!(done.cancelled, 10);
    let pending = CallFilter {
        status: Some(CallStatus::Scheduled),
        ..CallFilter::default()
    };
    let left: HashSet<CallId> = list(&store, acme, &pending).await.into_iter().collect();
    assert_eq!(left, c2.iter().chain(&c3).copied().collect());
    let far = now() + Duration::days(30);
    let got = store.store_planned(far, 100, now()).await.expect("store");
    let got: HashSet<CallId> = got.iter().map(|p| p.call).collect();
    let want: HashSet<CallId> = c2[3..].iter().chain(&c3[3..]).copied().collect();
    assert_eq!(got, want);
    assert_eq!(rows(&store).await, 26);
}
