//! The HTTP adapter against the simulator's HTTP server on loopback (real HTTP), and signed
//! call-event callbacks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use outdial_dialer::callback::{CallEvent, DeliveryConfig, EventKind};
use outdial_dialer::server::{ServerConfig, serve};
use outdial_dialer::signature::{
    EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature,
};
use outdial_dialer::{
    CompanyRef, DialContext, DialError, DialRequest, Dialer, Fault, HttpDialer, HttpDialerConfig,
    IdempotencyKey, Scenario, SimConfig, SimStats, Simulator, Timing, Unavailable,
    lookup_then_place,
};
use outdial_domain::{Clock, PhoneNumber, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const TOKEN: &str = "test-token";
const SECRET: &[u8] = b"callback-secret";

struct Provider {
    sim: Simulator,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Provider {
    async fn start(config: SimConfig, callback_url: Option<String>) -> Provider {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let sim = Simulator::new(config, clock.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let mut delivery = DeliveryConfig::new(SECRET);
        delivery.first_backoff = Duration::from_millis(20);
        let server_config = ServerConfig {
            api_token: TOKEN.to_owned(),
            default_callback_url: callback_url,
            delivery: Some(delivery),
        };
        let shutdown = async move {
            let _ = stopped.await;
        };
        tokio::spawn(serve(listener, sim.clone(), server_config, clock, shutdown));
        Provider {
            sim,
            addr,
            _stop: stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn dialer(&self, timeout: Duration) -> HttpDialer {
        let mut config = HttpDialerConfig::new(self.url(), TOKEN);
        config.timeout = timeout;
        HttpDialer::new(config).expect("a client")
    }

    async fn stats(&self) -> SimStats {
        reqwest::Client::new()
            .get(format!("{}/stats", self.url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("stats answered")
            .json()
            .await
            .expect("stats json")
    }
}

fn request(key: &str, n: u32, company: &str) -> DialRequest {
    DialRequest {
        key: IdempotencyKey::new(key).expect("a key"),
        to: PhoneNumber::parse(&format!("+1415555{:04}", n)).expect("a number"),
        caller_id: PhoneNumber::parse("+12125550100").expect("a number"),
        company: CompanyRef::new(company).expect("a company"),
        context: DialContext {
            customer_id: "cust-1".to_owned(),
            task_type: "collections".to_owned(),
        },
    }
}

const FAST: Duration = Duration::from_secs(5);

#[tokio::test]
async fn the_same_key_placed_twice_over_http_makes_one_call() {
    let provider = Provider::start(SimConfig::new(1).instant(), None).await;
    let dialer = provider.dialer(FAST);
    let first = dialer.place(request("c1:1", 1, "acme")).await.unwrap();
    let second = dialer.place(request("c1:1", 1, "acme")).await.unwrap();
    assert!(!first.replayed && second.replayed);
    assert_eq!(first.call, second.call);
    assert!(first.call.result.is_some(), "instant calls have ended");
    let key = IdempotencyKey::new("c1:1").unwrap();
    let stats = provider.stats().await;
    assert_eq!(stats.place_requests(&key), 2);
    assert_eq!(stats.calls_created(), 1);
    assert_eq!(dialer.lookup(&key).await.unwrap(), Some(first.call));
    assert_eq!(
        dialer
            .lookup(&IdempotencyKey::new("c9:1").unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_place_that_times_out_is_resolved_by_lookup_without_a_second_call() {
    let provider = Provider::start(SimConfig::new(2).instant(), None).await;
    provider.sim.inject(Fault::Slow {
        delay: Duration::from_secs(3),
        times: 1,
    });
    let dialer = provider.dialer(Duration::from_millis(300));
    let req = request("slow:1", 2, "acme");
    let err = dialer.place(req.clone()).await.unwrap_err();
    assert_eq!(err, DialError::Unavailable(Unavailable::Timeout));
    assert!(err.may_have_placed() && err.is_retryable() && !err.consumes_attempt());
    let found = dialer
        .lookup(&req.key)
        .await
        .unwrap()
        .expect("the provider made the call");
    let resolved = lookup_then_place(&dialer, req.clone()).await.unwrap();
    assert!(resolved.replayed);
    assert_eq!(resolved.call.id, found.id);
    let stats = provider.stats().await;
    assert_eq!(stats.place_requests(&req.key), 1);
    assert_eq!(stats.calls_created(), 1);
}

#[tokio::test]
async fn a_provider_429_becomes_rate_limited_with_its_retry_after() {
    let provider = Provider::start(SimConfig::new(3).instant(), None).await;
    provider.sim.inject(Fault::RateLimit {
        company: CompanyRef::new("busy-co").unwrap(),
        retry_after: Duration::from_millis(1500),
        times: 1,
    });
    let dialer = provider.dialer(FAST);
    assert!(dialer.place(request("other:1", 3, "calm-co")).await.is_ok());
    let err = dialer
        .place(request("busy:1", 4, "busy-co"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DialError::RateLimited {
            retry_after: Duration::from_secs(2)
        }
    );
    assert!(!err.consumes_attempt());
    assert!(dialer.place(request("busy:1", 4, "busy-co")).await.is_ok());
}

#[tokio::test]
async fn every_other_failure_maps_to_the_closed_error_set() {
    let provider = Provider::start(SimConfig::new(4).instant(), None).await;
    let dialer = provider.dialer(FAST);

    let mut wrong = HttpDialerConfig::new(provider.url(), "not-the-token");
    wrong.timeout = FAST;
    let wrong = HttpDialer::new(wrong).unwrap();
    assert_eq!(
        wrong.place(request("k:1", 1, "acme")).await.unwrap_err(),
        DialError::Unauthorized { status: 401 }
    );

    provider.sim.inject(Fault::Unavailable {
        times: 1,
        after_create: false,
    });
    assert_eq!(
        dialer.place(request("k:2", 2, "acme")).await.unwrap_err(),
        DialError::Unavailable(Unavailable::Server { status: 503 })
    );

    dialer.place(request("k:3", 3, "acme")).await.unwrap();
    let reused = dialer.place(request("k:3", 4, "acme")).await.unwrap_err();
    assert_eq!(
        reused,
        DialError::Rejected {
            status: 409,
            code: "idempotency_key_reused".to_owned()
        }
    );
    assert!(reused.consumes_attempt() && !reused.is_retryable());

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let nowhere = HttpDialer::new(HttpDialerConfig::new(closed_url, TOKEN)).unwrap();
    let err = nowhere.place(request("k:4", 5, "acme")).await.unwrap_err();
    assert_eq!(err, DialError::Unavailable(Unavailable::Connect));
    assert!(!err.may_have_placed());

    assert!(HttpDialer::new(HttpDialerConfig::new("not a url", TOKEN)).is_err());
}

#[derive(Clone)]
struct Receiver {
    events: mpsc::UnboundedSender<(CallEvent, String)>,
    requests: Arc<AtomicU32>,
}

async fn receive(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if rx.requests.fetch_add(1, Ordering::SeqCst) == 0 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let verified = verify_signature(
        SECRET,
        &header(TIMESTAMP_HEADER),
        &body,
        &header(SIGNATURE_HEADER),
        SystemClock.now(),
        Duration::from_secs(300),
    );
    if verified.is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let event: CallEvent = serde_json::from_slice(&body).expect("an event body");
    let _ = rx.events.send((event, header(EVENT_ID_HEADER)));
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn call_events_reach_the_callback_signed_and_a_refused_delivery_is_retried() {
    let (events, mut received) = mpsc::unbounded_channel();
    let receiver = Receiver {
        events,
        requests: Arc::new(AtomicU32::new(0)),
    };
    let requests = receiver.requests.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = SimConfig {
        timing: Timing::Realistic {
            ring_min: Duration::from_millis(50),
            ring_max: Duration::from_millis(50),
            talk_min: Duration::from_millis(50),
            talk_max: Duration::from_millis(50),
        },
        ..SimConfig::new(5)
    };
    // No server-wide callback: the adapter names outdial's route with each call.
    let provider = Provider::start(config, None).await;
    let mut with_callback = HttpDialerConfig::new(provider.url(), TOKEN);
    with_callback.callback_url = Some(hook);
    let dialer = HttpDialer::new(with_callback).unwrap();
    let req = request("evt:1", 6, "acme");
    provider.sim.script(&req.to, Scenario::RightPartyContact);
    let placed = dialer.place(req).await.unwrap();

    let wait = Duration::from_secs(10);
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            tokio::time::timeout(wait, received.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // The refused first delivery is retried, so the two events may arrive in either order.
    got.sort_by_key(|(event, _)| event.kind == EventKind::Ended);
    let [(answered, answered_id), (ended, ended_id)] = <[_; 2]>::try_from(got).unwrap();
    assert_eq!(
        (answered.kind, ended.kind),
        (EventKind::Answered, EventKind::Ended)
    );
    assert_eq!(answered_id, format!("{}.answered", placed.call.id));
    assert_eq!(ended_id, ended.id);
    let result = ended.call.result.expect("an ended call has a result");
    assert!(result.transcript.is_some());
    assert_eq!(
        requests.load(Ordering::SeqCst),
        3,
        "one refused delivery, retried once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_http_places_under_one_key_make_exactly_one_call() {
    let provider = Provider::start(SimConfig::new(6).instant(), None).await;
    let dialer = provider.dialer(FAST);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let dialer = dialer.clone();
            tokio::spawn(async move { dialer.place(request("race:1", 7, "acme")).await })
        })
        .collect();
    let mut ids = Vec::new();
    let mut fresh = 0;
    for task in tasks {
        let placed = task.await.unwrap().unwrap();
        fresh += usize::from(!placed.replayed);
        ids.push(placed.call.id);
    }
    assert_eq!(fresh, 1);
    assert!(ids.iter().all(|id| *id == ids[0]));
    let stats = provider.stats().await;
    assert_eq!(stats.calls_created(), 1);
    assert_eq!(stats.max_place_requests(), 16);
    assert!(format!("{dialer:?}").contains("<redacted>"));
    assert!(!format!("{dialer:?}").contains(TOKEN));
}
