//! End to end against real Postgres (a fresh database), real Redis (a namespace of its
//! own), the built-in simulator and a webhook receiver on a loopback port owned by the test:
//! customer → schedule → reconcile (Postgres → Redis) → dispatch → simulated call → result
//! → flags applied → signed webhook received and verified.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::{DateTime, TimeZone, Utc};
use outdial_dialer::callback::{CallEvent, EventKind};
use outdial_dialer::limits::Limits;
use outdial_dialer::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature};
use outdial_dialer::{
    CallState, DialError, DialRequest, Dialer, IdempotencyKey, Placed, ProviderCall, Scenario,
    SimConfig, Simulator,
};
use outdial_domain::policy::Ruleset;
use outdial_domain::schedule::{Cadence, Plan, PlannedCall};
use outdial_domain::task::ScheduleType;
use outdial_domain::{
    AttemptNo, CallStatus, Clock, CustomerInput, CustomerRef, ManualClock, PhoneNumber,
};
use outdial_queue::{Queue, QueueConfig};
use outdial_redis::testing::{OwnCluster, OwnSentinel};
use outdial_redis::{Options, Redis};
use outdial_store::{CompanyId, CreatedSchedule, NewSchedule, Store};
use outdial_worker::webhooks::WebhookConfig;
use outdial_worker::{Dispatcher, WorkerConfig, reconciler, webhooks};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::watch;
use tower::ServiceExt;

/// Tuesday 5 May 2026, 11:00 in New York: inside every window.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 5, 15, 0, 0).unwrap()
}

fn redis_url() -> String {
    std::env::var("OUTDIAL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn redis(url: &str) -> Redis {
    let hint = format!("Redis must answer at {url} (start one with ops/stack.sh)");
    tokio::time::timeout(
        Duration::from_secs(5),
        Redis::open(url, &Options::default()),
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

/// Schedules three calls for customer `c1`: one due now, two later the same week.
async fn three_calls(store: &Store, company: CompanyId) -> CreatedSchedule {
    let at = |h: i64| now() + chrono::Duration::hours(h);
    calls_at(store, company, &[at(0), at(26), at(50)]).await
}

/// Schedules customer `c1`'s calls at `ats`.
async fn calls_at(store: &Store, company: CompanyId, ats: &[DateTime<Utc>]) -> CreatedSchedule {
    let def = Cadence::default_def(ScheduleType::Collections).expect("default");
    let plan = Plan {
        calls: ats
            .iter()
            .map(|&at| PlannedCall {
                at,
                local: at.naive_utc(),
                slot: at,
                moved_by: vec![],
            })
            .collect(),
        dropped: vec![],
    };
    let id: CustomerRef = "c1".parse().expect("ref");
    store
        .create_schedule(
            company,
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
        .expect("schedule")
}

/// A dispatcher on its own queue namespace, dialing through `dialer`, polling live calls
/// every 50 ms.
async fn dispatcher(
    redis_url: &str,
    store: &Store,
    clock: &Arc<dyn Clock>,
    dialer: Arc<dyn Dialer>,
    callbacks: bool,
) -> Arc<Dispatcher> {
    let test = uuid::Uuid::new_v4();
    // The queue adds its own hash tag per partition; the limits take a tagged namespace.
    let queue =
        Queue::open(redis_url, &format!("t:{test}"), QueueConfig::default()).expect("queue");
    let limits = Limits::new(
        redis(redis_url).await,
        &format!("t:{{{test}}}:limits"),
        Arc::clone(clock),
    )
    .expect("limits");
    // Webhooks go out right after each result (the outbox poll delivers what this misses).
    let webhooks =
        webhooks::Deliverer::new(store.clone(), Arc::clone(clock), WebhookConfig::default())
            .expect("deliverer");
    Arc::new(Dispatcher {
        store: store.delivering_webhooks(webhooks.hold()),
        queue,
        dialer,
        limits,
        rules: Arc::new(Ruleset::bundled().expect("rules")),
        clock: Arc::clone(clock),
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
            callbacks,
        },
        webhooks: Some(webhooks),
        pauses: Arc::default(),
    })
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_scheduled_call_is_dialed_once_its_dnc_applied_and_a_signed_webhook_delivered(
    pool: PgPool,
) {
    dialed_once_with_dnc_and_a_signed_webhook(pool, &redis_url()).await;
}

/// The same dispatch, end to end, on a Redis Cluster of three primaries of the test's own:
/// the queue's partition scripts and the limits' scripts each stay on one slot.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn the_dispatch_runs_end_to_end_on_a_redis_cluster(pool: PgPool) {
    let cluster = OwnCluster::start();
    dialed_once_with_dnc_and_a_signed_webhook(pool, &cluster.url()).await;
}

/// And through Sentinel, to the monitored primary.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn the_dispatch_runs_end_to_end_through_redis_sentinel(pool: PgPool) {
    let own = OwnSentinel::start();
    dialed_once_with_dnc_and_a_signed_webhook(pool, &own.url()).await;
}

async fn dialed_once_with_dnc_and_a_signed_webhook(pool: PgPool, redis_url: &str) {
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

    let created = three_calls(&store, company.id).await;
    let first = created.calls[0].id;

    let simulator = Simulator::new(SimConfig::new(7).instant(), Arc::clone(&clock));
    let phone = PhoneNumber::parse("+12125550123").expect("phone");
    simulator.script(&phone, Scenario::DoNotCall);
    let dispatcher = dispatcher(
        redis_url,
        &store,
        &clock,
        Arc::new(simulator.clone()),
        false,
    )
    .await;
    let queue = dispatcher.queue.clone();

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

/// A provider that never reports an end by lookup: the place request and every lookup say
/// "ringing", so a call can only finish from the event posted to the callback route. It
/// dials through the instant simulator and keeps each ended call for the test to post.
#[derive(Debug)]
struct SilentProvider {
    inner: Simulator,
    ended: Mutex<Vec<ProviderCall>>,
    lookups: AtomicU32,
}

fn ringing(mut call: ProviderCall) -> ProviderCall {
    call.state = CallState::Ringing;
    call.answered_at = None;
    call.ended_at = None;
    call.result = None;
    call
}

#[async_trait::async_trait]
impl Dialer for SilentProvider {
    async fn place(&self, request: DialRequest) -> Result<Placed, DialError> {
        let placed = self.inner.place(request).await?;
        self.ended.lock().expect("lock").push(placed.call.clone());
        Ok(Placed {
            call: ringing(placed.call),
            replayed: placed.replayed,
        })
    }

    async fn lookup(&self, key: &IdempotencyKey) -> Result<Option<ProviderCall>, DialError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(self.inner.lookup(key).await?.map(ringing))
    }
}

async fn post_event(app: &axum::Router, body: &[u8], signature: &str, at: i64) -> (u16, Value) {
    let request = axum::http::Request::post("/provider/events")
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, at.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(axum::body::Body::from(body.to_vec()))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_live_call_finishes_from_the_providers_signed_callback(pool: PgPool) {
    const SECRET: &[u8] = b"provider-signing-secret";
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now()));
    let store = Store::new(pool);
    let (company, _) = store.create_company("acme", now()).await.expect("company");
    store
        .insert_customer(company.id, &customer(), now())
        .await
        .expect("customer");
    let created = three_calls(&store, company.id).await;
    let first = created.calls[0].id;
    let app = outdial_api::router(
        outdial_api::AppState::new(
            store.clone(),
            Arc::clone(&clock),
            Arc::new(Ruleset::bundled().expect("rules")),
            None,
        )
        .with_provider_secret(SECRET),
    );

    let provider = Arc::new(SilentProvider {
        inner: Simulator::new(SimConfig::new(7).instant(), Arc::clone(&clock)),
        ended: Mutex::default(),
        lookups: AtomicU32::new(0),
    });
    provider.inner.script(
        &PhoneNumber::parse("+12125550123").expect("phone"),
        Scenario::VoicemailMessageLeft,
    );
    let dispatcher = dispatcher(&redis_url(), &store, &clock, provider.clone(), true).await;
    reconciler::pass(&dispatcher).await.expect("reconcile");
    let (stop, shutdown) = watch::channel(false);
    let worker = tokio::spawn(Arc::clone(&dispatcher).run(shutdown));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let ended = loop {
        if let Some(call) = provider.ended.lock().expect("lock").first().cloned() {
            break call;
        }
        assert!(tokio::time::Instant::now() < deadline, "never dialed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Lookups keep saying "ringing": the call stays live until the callback arrives.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let live = store.scheduled_call(company.id, first).await.expect("call");
    assert_eq!(live.status, CallStatus::InProgress, "{live:?}");
    assert!(
        provider.lookups.load(Ordering::SeqCst) >= 1,
        "with callbacks the provider is still looked up now and then"
    );

    let event = CallEvent::new(EventKind::Ended, ended.clone());
    let body = serde_json::to_vec(&event).expect("event json");
    let at = clock.now().timestamp();
    // Refused: no signature, a wrong secret, a stale timestamp.
    let (status, error) = post_event(&app, &body, "", at).await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(error["error"]["code"], "invalid_signature");
    let (status, _) = post_event(&app, &body, &sign(b"another secret", at, &body), at).await;
    assert_eq!(status, 401);
    let stale = at - 3600;
    let (status, _) = post_event(&app, &body, &sign(SECRET, stale, &body), stale).await;
    assert_eq!(status, 401);
    let live = store.scheduled_call(company.id, first).await.expect("call");
    assert_eq!(
        live.status,
        CallStatus::InProgress,
        "a refused event changes nothing"
    );
    // Signed but not an event: 400 naming the missing field.
    let junk = br#"{"id":"x"}"#;
    let (status, error) = post_event(&app, junk, &sign(SECRET, at, junk), at).await;
    assert_eq!(status, 400, "{error}");
    // Accepted once; a retried delivery is acknowledged as a duplicate.
    let signature = sign(SECRET, at, &body);
    let (status, ack) = post_event(&app, &body, &signature, at).await;
    assert_eq!(
        (status, ack["duplicate"].as_bool()),
        (200, Some(false)),
        "{ack}"
    );
    let (status, ack) = post_event(&app, &body, &signature, at).await;
    assert_eq!(
        (status, ack["duplicate"].as_bool()),
        (200, Some(true)),
        "{ack}"
    );

    let done = loop {
        let call = store.scheduled_call(company.id, first).await.expect("call");
        if call.status != CallStatus::InProgress && call.status != CallStatus::Dialing {
            break call;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the callback did not finish the call: {call:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.send(true).expect("stop");
    worker.await.expect("worker");

    let result = ended.result.as_ref().expect("an ended call has a result");
    assert_eq!(done.status, result.outcome.status(), "{done:?}");
    let (calls, _) = store
        .list_calls(company.id, "c1", None, 10)
        .await
        .expect("calls");
    assert_eq!(calls.len(), 1, "dialed once");
    assert_eq!(
        calls[0].transcript, result.transcript,
        "the event's result is stored"
    );
    assert_eq!(
        provider
            .inner
            .place_requests(&IdempotencyKey::for_attempt(first, AttemptNo::FIRST)),
        1
    );
    dispatcher.queue.delete_namespace().await.expect("cleanup");
}

/// A call due at 20:50 in New York while its company is paused, resumed at 21:10 (the
/// federal window has closed): it is not dialed, it moves to the next lawful morning, and
/// its trail names the pause (`operator.pause`, reason `paused`) beside the window rule.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_call_held_by_a_pause_past_its_window_moves_to_the_next_lawful_instant(pool: PgPool) {
    // Tuesday 5 May 2026, 20:50 EDT.
    let due = Utc.with_ymd_and_hms(2026, 5, 6, 0, 50, 0).unwrap();
    let manual = Arc::new(ManualClock::new(due - chrono::Duration::minutes(5)));
    let clock: Arc<dyn Clock> = manual.clone();
    let store = Store::new(pool);
    let (company, _) = store.create_company("acme", now()).await.expect("company");
    store
        .insert_customer(company.id, &customer(), now())
        .await
        .expect("customer");
    let created = calls_at(&store, company.id, &[due]).await;
    let call = created.calls[0].id;
    assert!(
        store
            .pause(company.id, None, "test", clock.now())
            .await
            .expect("pause")
    );
    manual.set(due + chrono::Duration::minutes(20));
    store
        .resume(company.id, None, "test", clock.now())
        .await
        .expect("resume")
        .expect("the pause ended");

    let simulator = Simulator::new(SimConfig::new(7).instant(), Arc::clone(&clock));
    let dispatcher = dispatcher(
        &redis_url(),
        &store,
        &clock,
        Arc::new(simulator.clone()),
        false,
    )
    .await;
    reconciler::pass(&dispatcher).await.expect("reconcile");
    let (stop, shutdown) = watch::channel(false);
    let worker = tokio::spawn(Arc::clone(&dispatcher).run(shutdown));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let record = loop {
        let r = store.scheduled_call(company.id, call).await.expect("call");
        if r.scheduled_at > due {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call did not move within 20 s: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(true).expect("stop");
    worker.await.expect("worker");

    assert_eq!(
        simulator.stats().calls_created(),
        0,
        "nothing dialed at 21:10"
    );
    assert_eq!(record.status, CallStatus::Scheduled, "{record:?}");
    // Wednesday 08:00 EDT, the window's next opening.
    assert_eq!(
        record.scheduled_at,
        Utc.with_ymd_and_hms(2026, 5, 6, 12, 0, 0).unwrap(),
        "{record:?}"
    );
    let trail = record.decision_trail.expect("trail");
    let last = trail.last().expect("an entry");
    let rules: Vec<&str> = last.blocks.iter().map(|b| &*b.rule).collect();
    assert!(
        rules.contains(&outdial_domain::policy::PAUSE_RULE),
        "the pause is named: {last:?}"
    );
    assert!(rules.len() >= 2, "and the window rule beside it: {last:?}");
    assert!(
        last.blocks
            .iter()
            .any(|b| b.reason == outdial_domain::policy::Reason::Paused),
        "{last:?}"
    );
}

/// The calls `d`'s queue holds as scheduled jobs.
async fn queued(d: &Dispatcher) -> Vec<outdial_domain::CallId> {
    let mut out = Vec::new();
    for part in d.queue.partitions().await.expect("partitions") {
        let page = d
            .queue
            .list(&part, outdial_queue::State::Scheduled, None, 100)
            .await
            .expect("list");
        out.extend(page.items.iter().map(|l| l.job.call));
    }
    out
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn workers_queue_planned_calls_a_horizon_ahead_of_their_time(pool: PgPool) {
    let manual = Arc::new(ManualClock::new(now()));
    let clock: Arc<dyn Clock> = manual.clone();
    // Calls at +0 h, +26 h and +50 h; only the first is within the hour stored at once.
    let store = Store::new(pool).storing_ahead(Some(chrono::Duration::hours(1)));
    let (company, _) = store.create_company("acme", now()).await.expect("company");
    store
        .insert_customer(company.id, &customer(), now())
        .await
        .expect("customer");
    let created = three_calls(&store, company.id).await;
    assert_eq!(created.stored, 1);
    let simulator = Simulator::new(SimConfig::new(7).instant(), Arc::clone(&clock));
    let d = dispatcher(&redis_url(), &store, &clock, Arc::new(simulator), false).await;

    reconciler::store_planned(&d).await.expect("store");
    assert!(
        queued(&d).await.is_empty(),
        "nothing is due within the hour"
    );
    manual.set(now() + chrono::Duration::hours(25) + chrono::Duration::minutes(5));
    reconciler::store_planned(&d).await.expect("store");
    reconciler::store_planned(&d).await.expect("again");
    assert_eq!(queued(&d).await, vec![created.calls[1].id]);
    let row = store
        .pending_call(created.calls[1].id)
        .await
        .expect("read")
        .expect("a pending row");
    assert_eq!(row.due_at, created.calls[1].scheduled_at);
    manual.set(now() + chrono::Duration::hours(49) + chrono::Duration::minutes(5));
    reconciler::store_planned(&d).await.expect("store");
    let mut got = queued(&d).await;
    got.sort_by_key(|c| c.to_string());
    let mut want = vec![created.calls[1].id, created.calls[2].id];
    want.sort_by_key(|c| c.to_string());
    assert_eq!(got, want);
    assert_eq!(store.unstored_plan().await.expect("plan"), (0, None));
}
