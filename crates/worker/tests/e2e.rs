//! End to end against real Postgres (a fresh database), real Redis (a namespace of its
//! own), the built-in simulator and a webhook receiver on a loopback port owned by the test:
//! customer → schedule → reconcile (Postgres → Redis) → dispatch → simulated call → result
//! → flags applied → signed webhook received and verified.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::{DateTime, TimeZone, Utc};
use outdial_dialer::limits::Limits;
use outdial_dialer::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature};
use outdial_dialer::{IdempotencyKey, Scenario, SimConfig, Simulator};
use outdial_domain::policy::Ruleset;
use outdial_domain::schedule::{Cadence, Plan, PlannedCall};
use outdial_domain::task::ScheduleType;
use outdial_domain::{
    AttemptNo, CallStatus, Clock, CustomerInput, CustomerRef, ManualClock, PhoneNumber,
};
use outdial_queue::{Queue, QueueConfig};
use outdial_store::{NewSchedule, Store};
use outdial_worker::webhooks::WebhookConfig;
use outdial_worker::{Dispatcher, WorkerConfig, reconciler, webhooks};
use sqlx::PgPool;
use tokio::sync::watch;

/// Tuesday 5 May 2026, 11:00 in New York: inside every window.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 5, 15, 0, 0).unwrap()
}

fn redis_url() -> String {
    std::env::var("OUTDIAL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn redis() -> redis::aio::ConnectionManager {
    let url = redis_url();
    let hint = format!("Redis must answer at {url} (start one with ops/stack.sh)");
    let client = redis::Client::open(url.as_str()).expect(&hint);
    tokio::time::timeout(
        Duration::from_secs(5),
        redis::aio::ConnectionManager::new(client),
    )
    .await
    .expect(&hint)
    .expect(&hint)
}

/// Webhook deliveries received: headers and raw body.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(r): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    r.lock().expect("lock").push((headers, body));
                    "ok"
                },
            ),
        )
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

fn customer() -> outdial_domain::Customer {
    let input: CustomerInput = serde_json::from_value(serde_json::json!({
        "id": "c1",
        "taskType": "collections",
        "firstName": "Sam",
        "lastName": "Lee",
        "timezone": "America/New_York",
        "phoneNumber": "+12125550123",
        "streetAddress1": "1 Broadway",
        "city": "New York",
        "state": "NY",
        "zipCode": "10004",
        "loanId": "loan-1"
    }))
    .expect("input");
    input
        .validate(
            &outdial_domain::schedule::Catalog::builtin().task_types(),
            now().date_naive(),
        )
        .expect("valid")
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_scheduled_call_is_dialed_once_its_dnc_applied_and_a_signed_webhook_delivered(
    pool: PgPool,
) {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now()));
    let store = Store::new(pool);
    let (company, _) = store.create_company("acme", now()).await.expect("company");
    let (hook, received) = receiver().await;
    let company = store
        .set_webhook(company.id, Some(&hook))
        .await
        .expect("webhook");
    let secret = company.webhook_secret.clone().expect("secret");
    let c = customer();
    store
        .insert_customer(company.id, &c, now())
        .await
        .expect("customer");

    // Three calls: one due now, two later the same week.
    let def = Cadence::default_def(ScheduleType::Collections).expect("default");
    let plan = Plan {
        calls: [0, 26, 50]
            .iter()
            .map(|h| {
                let at = now() + chrono::Duration::hours(*h);
                PlannedCall {
                    at,
                    local: at.naive_utc(),
                    slot: at,
                    moved_by: vec![],
                }
            })
            .collect(),
        dropped: vec![],
    };
    let id: CustomerRef = "c1".parse().expect("ref");
    let created = store
        .create_schedule(
            company.id,
            &NewSchedule {
                customer_id: &id,
                schedule_type: ScheduleType::Collections,
                task_type: "collections",
                loan_id: Some("loan-1"),
                cadence: &def,
                ruleset: "test",
                zone: chrono_tz::America::New_York,
                plan: &plan,
            },
            now(),
        )
        .await
        .expect("schedule");
    let first = created.calls[0].id;

    let test = uuid::Uuid::new_v4();
    // The queue adds its own hash tag per partition; the limits take a tagged namespace.
    let queue =
        Queue::open(&redis_url(), &format!("t:{test}"), QueueConfig::default()).expect("queue");
    let limits = Limits::new(
        redis().await,
        &format!("t:{{{test}}}:limits"),
        Arc::clone(&clock),
    )
    .expect("limits");
    let simulator = Simulator::new(SimConfig::new(7).instant(), Arc::clone(&clock));
    let phone = PhoneNumber::parse("+12125550123").expect("phone");
    simulator.script(&phone, Scenario::DoNotCall);
    let dispatcher = Arc::new(Dispatcher {
        store: store.clone(),
        queue: queue.clone(),
        dialer: Arc::new(simulator.clone()),
        limits,
        rules: Arc::new(Ruleset::bundled().expect("rules")),
        clock: Arc::clone(&clock),
        config: WorkerConfig {
            owner: "test-worker".into(),
            batch: 16,
            max_in_flight: 8,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(50),
            max_call: Duration::from_secs(10),
            idle: Duration::from_millis(50),
            default_caller_id: PhoneNumber::parse("+12125550100").expect("caller id"),
            shutdown_grace: Duration::from_secs(5),
        },
    });

    // Postgres → Redis: the reconciler enqueues every pending row.
    reconciler::pass(&dispatcher).await.expect("reconcile");
    let (stop, shutdown) = watch::channel(false);
    let worker = tokio::spawn(Arc::clone(&dispatcher).run(shutdown.clone()));
    let hooks = tokio::spawn(webhooks::run(
        store.clone(),
        Arc::clone(&clock),
        WebhookConfig {
            idle: Duration::from_millis(50),
            ..WebhookConfig::default()
        },
        shutdown,
    ));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while received.lock().expect("lock").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no webhook within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    worker.await.expect("worker");
    hooks.await.expect("webhooks");

    // Dialed exactly once, under the call's idempotency key.
    let key = IdempotencyKey::for_attempt(first, AttemptNo::FIRST);
    assert_eq!(simulator.place_requests(&key), 1);
    assert_eq!(
        simulator.stats().calls_created(),
        1,
        "only the due call was placed"
    );

    // The result and its flags are stored; DNC set doNotCall and cancelled the others.
    let call = store.scheduled_call(company.id, first).await.expect("call");
    assert_eq!(call.status, CallStatus::Completed, "{call:?}");
    assert!(
        call.post_processing_flags
            .iter()
            .any(|f| f.as_str() == "DNC")
    );
    assert!(
        store
            .customer(company.id, "c1")
            .await
            .expect("customer")
            .do_not_call
    );
    for later in &created.calls[1..] {
        let other = store
            .scheduled_call(company.id, later.id)
            .await
            .expect("call");
        assert_eq!(other.status, CallStatus::Cancelled);
    }
    let (calls, _) = store
        .list_calls(company.id, "c1", None, 10)
        .await
        .expect("calls");
    assert_eq!(calls.len(), 1);
    assert!(calls[0].transcript.is_some());

    // The webhook: signed, with the seed's fields.
    let (headers, body) = received.lock().expect("lock")[0].clone();
    let timestamp = headers[TIMESTAMP_HEADER].to_str().expect("timestamp");
    let signature = headers[SIGNATURE_HEADER].to_str().expect("signature");
    verify_signature(
        secret.as_bytes(),
        timestamp,
        &body,
        signature,
        clock.now(),
        Duration::from_secs(300),
    )
    .expect("a valid signature");
    let payload: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(payload["customerId"], "c1");
    assert_eq!(payload["scheduledCallId"], first.to_string());
    assert_eq!(payload["callId"], calls[0].id.to_string());
    assert_eq!(payload["status"], "completed");
    assert!(payload["transcript"].is_string());
    assert!(payload.get("recording_url").is_some());
    assert!(payload["timestamp"].is_string());
    assert!(
        payload["postProcessingFlags"]
            .as_array()
            .expect("flags")
            .iter()
            .any(|f| f == "DNC")
    );
    queue.delete_namespace().await.expect("cleanup");
}
