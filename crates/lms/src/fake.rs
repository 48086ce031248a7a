//! A fake LMS for tests and demos (feature `fake`): a real HTTP server on loopback speaking
//! the contract, whose answers a test sets per customer, including slow, failing,
//! malformed and partial ones. It counts requests and keeps the last request's headers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

/// How the fake answers for one customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// The stored customer and loans.
    Normal,
    /// Waits this long, then answers normally.
    Slow(Duration),
    /// Answers 500 to the first `n` requests (customer and loans each), then normally.
    FailFirst(u32),
    /// Always this status with an empty JSON object.
    Status(u16),
    /// `200` with a body that is not JSON.
    Malformed,
}

#[derive(Debug, Default)]
struct Inner {
    customers: HashMap<String, Value>,
    loans: HashMap<String, Value>,
    behaviour: HashMap<String, Behaviour>,
    failures_left: HashMap<(String, &'static str), u32>,
    requests: HashMap<String, u32>,
    last_headers: Option<HeaderMap>,
}

/// The running fake; it stops when dropped.
#[derive(Debug, Clone)]
pub struct FakeLms {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _stop: Arc<tokio::sync::oneshot::Sender<()>>,
}

impl FakeLms {
    /// Starts the fake on a free loopback port, on the current runtime.
    pub async fn start() -> FakeLms {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/customers/{id}", get(customer))
            .route("/customers/{id}/loans", get(loans))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake LMS on loopback");
        let addr = listener.local_addr().expect("the fake LMS's address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeLms {
            addr,
            inner,
            _stop: Arc::new(stop),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:<port>`: what errors name.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores customer `id`'s record and loans (any JSON, so tests can send wrong shapes).
    pub fn put(&self, id: &str, customer: Value, loans: Value) {
        let mut inner = self.lock();
        inner.customers.insert(id.to_owned(), customer);
        inner.loans.insert(id.to_owned(), loans);
    }

    /// Sets how the fake answers for `id`.
    pub fn behave(&self, id: &str, behaviour: Behaviour) {
        let mut inner = self.lock();
        if let Behaviour::FailFirst(n) = behaviour {
            inner.failures_left.insert((id.to_owned(), "customer"), n);
            inner.failures_left.insert((id.to_owned(), "loans"), n);
        }
        inner.behaviour.insert(id.to_owned(), behaviour);
    }

    /// Requests received for `id` (customer and loans together).
    pub fn requests(&self, id: &str) -> u32 {
        self.lock().requests.get(id).copied().unwrap_or(0)
    }

    /// Header `name` of the last request, if it had one.
    pub fn last_header(&self, name: &str) -> Option<String> {
        let inner = self.lock();
        inner
            .last_headers
            .as_ref()?
            .get(name)?
            .to_str()
            .ok()
            .map(str::to_owned)
    }
}

async fn customer(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(&inner, id, "customer", headers).await
}

async fn loans(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(&inner, id, "loans", headers).await
}

async fn answer(
    inner: &Mutex<Inner>,
    id: String,
    kind: &'static str,
    headers: HeaderMap,
) -> Response {
    let (behaviour, fail, body) = {
        let mut g = inner.lock().unwrap_or_else(|p| p.into_inner());
        *g.requests.entry(id.clone()).or_default() += 1;
        g.last_headers = Some(headers);
        let behaviour = g.behaviour.get(&id).cloned().unwrap_or(Behaviour::Normal);
        let fail = match g.failures_left.get_mut(&(id.clone(), kind)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        let store = if kind == "customer" {
            &g.customers
        } else {
            &g.loans
        };
        (behaviour, fail, store.get(&id).cloned())
    };
    match behaviour {
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        Behaviour::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, axum::Json(serde_json::json!({}))).into_response();
        }
        Behaviour::Malformed => return (StatusCode::OK, "{\"firstName\": ").into_response(),
        Behaviour::Normal | Behaviour::FailFirst(_) => {}
    }
    if fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response();
    }
    match body {
        Some(value) => axum::Json(value).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({}))).into_response(),
    }
}
