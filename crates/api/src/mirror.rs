//! Mirroring Postgres changes into the Redis queue right after they commit: new and moved
//! calls are enqueued, cancelled ones removed. Postgres stays the truth: a failure here is
//! logged and repaired by the reconciler within one period (a cancelled call is never dialed
//! anyway: the worker's claim requires the row to be `scheduled`).

use chrono::{DateTime, Utc};
use outdial_domain::{CallId, CustomerRef};
use outdial_queue::{NewJob, Partition};
use outdial_store::CompanyId;

use crate::AppState;

fn partition(company: CompanyId) -> Option<Partition> {
    Partition::new(&company.to_string()).ok()
}

/// Enqueues (or moves) `calls` of one customer.
pub(crate) async fn enqueue(
    state: &AppState,
    company: CompanyId,
    customer: &CustomerRef,
    calls: &[(CallId, DateTime<Utc>)],
) {
    let (Some(queue), Some(partition)) = (&state.queue, partition(company)) else {
        return;
    };
    if calls.is_empty() {
        return;
    }
    let jobs: Vec<NewJob> = calls
        .iter()
        .map(|(call, due)| NewJob {
            call: *call,
            partition: partition.clone(),
            customer: customer.clone(),
            due: *due,
        })
        .collect();
    if let Err(e) = queue.enqueue_many(&jobs).await {
        tracing::warn!(error = %e, calls = jobs.len(), "enqueue failed; the reconciler will restore them");
    }
}

/// Enqueues calls of many customers at once (an import chunk's).
pub(crate) async fn enqueue_calls(
    state: &AppState,
    company: CompanyId,
    calls: &[(CustomerRef, CallId, DateTime<Utc>)],
) {
    let (Some(queue), Some(partition)) = (&state.queue, partition(company)) else {
        return;
    };
    if calls.is_empty() {
        return;
    }
    let jobs: Vec<NewJob> = calls
        .iter()
        .map(|(customer, call, due)| NewJob {
            call: *call,
            partition: partition.clone(),
            customer: customer.clone(),
            due: *due,
        })
        .collect();
    if let Err(e) = queue.enqueue_many(&jobs).await {
        tracing::warn!(error = %e, calls = jobs.len(), "enqueue failed; the reconciler will restore them");
    }
}

/// Removes `calls` of one customer from the queue.
pub(crate) async fn cancel(
    state: &AppState,
    company: CompanyId,
    customer: &CustomerRef,
    calls: &[CallId],
) {
    let (Some(queue), Some(partition)) = (&state.queue, partition(company)) else {
        return;
    };
    for call in calls {
        let job = queue.job_ref(&partition, *call, customer);
        if let Err(e) = queue.cancel(&job).await {
            tracing::warn!(error = %e, "queue cancel failed; the reconciler will drop the job");
            return;
        }
    }
}
