//! Schedules and scheduled calls against a fresh Postgres database per test.

mod support;

use std::collections::HashSet;

use outdial_domain::schedule::Cadence;
use outdial_domain::task::ScheduleType;
use outdial_domain::{CallId, CallStatus, CustomerRef};
use outdial_store::{CallFilter, Error, Store};
use sqlx::PgPool;

use support::*;

async fn active_schedules(store: &Store, customer: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM schedules WHERE customer_id = $1 AND active")
        .bind(customer)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn one_active_schedule_per_customer_and_the_old_ones_pending_calls_are_cancelled(
    pool: PgPool,
) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    store
        .insert_customer(acme, &customer("c1", false, false), now())
        .await
        .expect("customer");
    let first = create(&store, acme, "c1", 5).await;
    assert_eq!(first.replaced, None);
    let second = create(&store, acme, "c1", 3).await;
    assert_eq!(second.replaced, Some(first.schedule_id));
    let cancelled: HashSet<CallId> = second.cancelled.iter().copied().collect();
    let old: HashSet<CallId> = first.calls.iter().map(|c| c.id).collect();
    assert_eq!(cancelled, old);
    assert_eq!(active_schedules(&store, "c1").await, 1);
    let filter = CallFilter {
        customer_id: Some("c1".into()),
        status: Some(CallStatus::Scheduled),
        flag: None,
    };
    let (pending, _) = store
        .list_scheduled_calls(acme, &filter, None, 100)
        .await
        .expect("list");
    let pending: HashSet<CallId> = pending.iter().map(|c| c.id).collect();
    let new: HashSet<CallId> = second.calls.iter().map(|c| c.id).collect();
    assert_eq!(pending, new);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn do_not_call_and_other_companies_customers_get_no_schedule(pool: PgPool) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    let globex = company(&store, "globex").await;
    store
        .insert_customer(acme, &customer("dnc", false, true), now())
        .await
        .expect("customer");
    let def = Cadence::default_def(ScheduleType::Collections).expect("a default");
    let id: CustomerRef = "dnc".parse().expect("ref");
    let two = plan(2);
    let new = collections(&id, &def, &two);
    assert!(matches!(
        store.create_schedule(acme, &new, now()).await,
        Err(Error::DoNotCall)
    ));
    assert!(matches!(
        store.create_schedule(globex, &new, now()).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(active_schedules(&store, "dnc").await, 0);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn scheduled_call_pages_return_every_call_exactly_once_under_concurrent_inserts(
    pool: PgPool,
) {
    let store = Store::new(pool);
    let acme = company(&store, "acme").await;
    for i in 0..40 {
        store
            .insert_customer(acme, &customer(&format!("c{i:02}"), false, false), now())
            .await
            .expect("customer");
    }
    let mut all: HashSet<CallId> = HashSet::new();
    for i in 0..10 {
        let created = create(&store, acme, &format!("c{i:02}"), 10).await;
        all.extend(created.calls.iter().map(|c| c.id));
    }

    let filter = CallFilter::default();
    let mut seen: Vec<CallId> = Vec::new();
    let mut writers = Vec::new();
    let mut cursor = None;
    // Eight pages of 10 (of the 100 calls present before) while 30 schedules of 6 calls are
    // created for other customers in the background.
    for page_no in 0..8 {
        for writer in 0..3 {
            let store = store.clone();
            let customer = format!("c{:02}", 10 + page_no * 3 + writer);
            writers.push(tokio::spawn(async move {
                create(&store, acme, &customer, 6)
                    .await
                    .calls
                    .iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
            }));
        }
        let (page, next) = store
            .list_scheduled_calls(acme, &filter, cursor, 10)
            .await
            .expect("a page");
        assert_eq!(page.len(), 10);
        seen.extend(page.iter().map(|c| c.id));
        cursor = Some(next.expect("more pages"));
    }
    for writer in writers {
        all.extend(writer.await.expect("writer"));
    }
    while let Some(after) = cursor {
        let (page, next) = store
            .list_scheduled_calls(acme, &filter, Some(after), 7)
            .await
            .expect("a page");
        seen.extend(page.iter().map(|c| c.id));
        cursor = next;
    }
    let unique: HashSet<CallId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a call was returned twice");
    assert_eq!(unique, all, "a call was skipped");
    assert_eq!(seen.len(), 100 + 24 * 6);
}
