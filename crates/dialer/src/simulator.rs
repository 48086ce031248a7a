//! The built-in simulated provider: deterministic outcomes under a seed, idempotency keys,
//! lookup, realistic or instant timing, call events, and injected faults.
//!
//! Every random choice about a call (scenario, ring and talk time, provider id) comes from
//! `sha256(seed, key)`, so the same seed and key give the same call whatever the arrival
//! order, the process or the number of workers. Time runs on `tokio::time` (a call's state is
//! derived from the time elapsed since it was placed), so `start_paused` tests drive it;
//! timestamps come from the [`Clock`] given at construction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use outdial_domain::{Clock, PhoneNumber};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::callback::{CallEvent, EventKind};
use crate::scenario::Pickup;
use crate::{
    CallResult, CallState, CompanyRef, DialError, DialRequest, Dialer, Fault, IdempotencyKey,
    KeyStats, OutcomeMix, Placed, ProviderCall, Scenario, SimConfig, SimStats, Timing, Unavailable,
};

/// The per-call random draws, from `sha256(seed, key)`.
struct Draws([u64; 4]);

impl Draws {
    fn new(seed: u64, key: &IdempotencyKey) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(seed.to_le_bytes());
        hasher.update(key.as_str().as_bytes());
        let digest = hasher.finalize();
        let mut out = [0u64; 4];
        for (slot, chunk) in out.iter_mut().zip(digest.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *slot = u64::from_le_bytes(bytes);
        }
        Draws(out)
    }
}

fn uniform(draw: u64, min: Duration, max: Duration) -> Duration {
    let (min_ms, max_ms) = (
        min.as_millis() as u64,
        max.as_millis().max(min.as_millis()) as u64,
    );
    Duration::from_millis(min_ms + draw % (max_ms - min_ms + 1))
}

#[derive(Debug)]
struct SimCall {
    id: String,
    key: IdempotencyKey,
    to: PhoneNumber,
    created_at: DateTime<Utc>,
    started: Instant,
    scenario: Scenario,
    ring: Duration,
    talk: Duration,
    recording_url: Option<String>,
    callback_url: Option<String>,
}

impl SimCall {
    fn at(&self, since_start: Duration) -> DateTime<Utc> {
        self.created_at + chrono::Duration::from_std(since_start).unwrap_or_default()
    }

    fn answered(&self) -> bool {
        self.scenario.pickup() == Pickup::Answered
    }

    fn duration(&self) -> Duration {
        self.ring + self.talk
    }

    fn snapshot(&self, now: Instant) -> ProviderCall {
        let elapsed = now.saturating_duration_since(self.started);
        let ended = elapsed >= self.duration();
        let answered = self.answered() && elapsed >= self.ring;
        let state = if ended {
            CallState::Ended
        } else if answered {
            CallState::InProgress
        } else {
            CallState::Ringing
        };
        ProviderCall {
            id: self.id.clone(),
            key: self.key.clone(),
            state,
            created_at: self.created_at,
            answered_at: answered.then(|| self.at(self.ring)),
            ended_at: ended.then(|| self.at(self.duration())),
            result: ended.then(|| CallResult {
                outcome: self.scenario.outcome(),
                flags: self.scenario.flags(),
                transcript: self.scenario.transcript().map(str::to_owned),
                recording_url: self.recording_url.clone(),
            }),
        }
    }
}

#[derive(Default)]
struct State {
    calls: HashMap<IdempotencyKey, SimCall>,
    requests: HashMap<IdempotencyKey, u32>,
    faults: Vec<Fault>,
    scripted: HashMap<String, Scenario>,
}

impl State {
    /// Takes one use of the first fault that applies to `company`.
    fn take_fault(&mut self, company: &CompanyRef) -> Option<Fault> {
        let index = self.faults.iter().position(|f| match f {
            Fault::RateLimit { company: c, .. } => c == company,
            Fault::Unavailable { .. } | Fault::Slow { .. } => true,
        })?;
        let fault = self.faults[index].clone();
        let times = self.faults[index].times();
        *times = times.saturating_sub(1);
        if *times == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }
}

struct Inner {
    config: SimConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    events: broadcast::Sender<CallEvent>,
}

/// The simulated provider. Cheap to clone (shared state). `Debug` prints the settings and
/// counts, never the calls (their numbers and transcripts are personal data).
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (calls, faults) = {
            let state = self.lock();
            (state.calls.len(), state.faults.len())
        };
        f.debug_struct("Simulator")
            .field("seed", &self.inner.config.seed)
            .field("timing", &self.inner.config.timing)
            .field("calls", &calls)
            .field("faults", &faults)
            .finish_non_exhaustive()
    }
}

/// Events buffered per subscriber before the slowest one starts missing some.
const EVENT_BUFFER: usize = 16_384;

impl Simulator {
    /// A simulator with `config`, stamping calls with `clock`.
    pub fn new(config: SimConfig, clock: Arc<dyn Clock>) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            inner: Arc::new(Inner {
                config,
                clock,
                state: Mutex::new(State::default()),
                events,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a holder: every update is one step.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Call events (answered, ended) of calls placed from now on, while someone subscribes.
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.inner.events.subscribe()
    }

    /// Injects `fault` into the next place requests (after the faults already queued).
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every queued fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Calls to `to` (E.164) go the way of `scenario` from now on, whatever the seed says.
    pub fn script(&self, to: &PhoneNumber, scenario: Scenario) {
        self.lock()
            .scripted
            .insert(to.as_e164().to_owned(), scenario);
    }

    /// Place requests per key and whether each key has a call.
    pub fn stats(&self) -> SimStats {
        let state = self.lock();
        let keys = state
            .requests
            .iter()
            .map(|(key, n)| {
                let stats = KeyStats {
                    place_requests: *n,
                    created: state.calls.contains_key(key),
                };
                (key.clone(), stats)
            })
            .collect();
        SimStats { keys }
    }

    /// Place requests received under `key`.
    pub fn place_requests(&self, key: &IdempotencyKey) -> u32 {
        self.lock().requests.get(key).copied().unwrap_or(0)
    }

    /// The callback URL given when the call under `key` was placed.
    pub fn callback_url(&self, key: &IdempotencyKey) -> Option<String> {
        self.lock().calls.get(key)?.callback_url.clone()
    }

    /// The call `request` would produce, without placing it.
    pub fn preview(&self, request: &DialRequest) -> Scenario {
        let scripted = self.lock().scripted.get(request.to.as_e164()).copied();
        scripted.unwrap_or_else(|| {
            let draws = Draws::new(self.inner.config.seed, &request.key);
            self.mix_for(request).pick(draws.0[0])
        })
    }

    fn mix_for(&self, request: &DialRequest) -> &OutcomeMix {
        if request
            .context
            .task_type
            .to_ascii_lowercase()
            .contains("verif")
        {
            &self.inner.config.verification
        } else {
            &self.inner.config.collections
        }
    }

    fn new_call(
        &self,
        request: &DialRequest,
        scenario: Scenario,
        callback_url: Option<String>,
    ) -> SimCall {
        let config = &self.inner.config;
        let draws = Draws::new(config.seed, &request.key);
        let (ring, talk) = match (&config.timing, scenario.pickup()) {
            (Timing::Instant, _) => (Duration::ZERO, Duration::ZERO),
            (Timing::Realistic { ring_max, .. }, Pickup::RingsOut) => (*ring_max, Duration::ZERO),
            (
                Timing::Realistic {
                    ring_min, ring_max, ..
                },
                Pickup::Short,
            ) => (
                uniform(
                    draws.0[1],
                    (*ring_min).min(Duration::from_secs(1)),
                    (*ring_max).min(Duration::from_secs(4)),
                ),
                Duration::ZERO,
            ),
            (
                Timing::Realistic {
                    ring_min,
                    ring_max,
                    talk_min,
                    talk_max,
                },
                Pickup::Answered,
            ) => (
                uniform(draws.0[1], *ring_min, *ring_max),
                uniform(draws.0[2], *talk_min, *talk_max),
            ),
        };
        let id = format!("sim-{:016x}", draws.0[3]);
        let recording_url = (scenario.pickup() == Pickup::Answered)
            .then(|| format!("{}/recordings/{id}.mp3", config.recording_base_url));
        SimCall {
            id,
            key: request.key.clone(),
            to: request.to.clone(),
            created_at: self.inner.clock.now(),
            started: Instant::now(),
            scenario,
            ring,
            talk,
            recording_url,
            callback_url,
        }
    }

    /// Sends the call's events: at once for an instant call, else from a timer task (only
    /// while someone listens).
    fn emit_events(&self, call: &SimCall) {
        if self.inner.events.receiver_count() == 0 {
            return;
        }
        if call.duration().is_zero() {
            let _ = self.inner.events.send(CallEvent::new(
                EventKind::Ended,
                call.snapshot(call.started),
            ));
            return;
        }
        let sim = self.clone();
        let key = call.key.clone();
        let (started, ring, end, answered) =
            (call.started, call.ring, call.duration(), call.answered());
        tokio::spawn(async move {
            if answered {
                tokio::time::sleep_until(started + ring).await;
                sim.send_snapshot(&key, EventKind::Answered, started + ring);
            }
            tokio::time::sleep_until(started + end).await;
            sim.send_snapshot(&key, EventKind::Ended, started + end);
        });
    }

    fn send_snapshot(&self, key: &IdempotencyKey, kind: EventKind, at: Instant) {
        let call = self.lock().calls.get(key).map(|c| c.snapshot(at));
        if let Some(call) = call {
            let _ = self.inner.events.send(CallEvent::new(kind, call));
        }
    }

    /// [`Dialer::place`] with a callback URL for this call's events (the HTTP server's
    /// `callbackUrl` field).
    pub async fn place_with_callback(
        &self,
        request: DialRequest,
        callback_url: Option<String>,
    ) -> Result<Placed, DialError> {
        let scenario = self.preview(&request);
        let (result, delay) = {
            let mut state = self.lock();
            *state.requests.entry(request.key.clone()).or_default() += 1;
            let fault = state.take_fault(&request.company);
            match &fault {
                Some(Fault::RateLimit { retry_after, .. }) => {
                    let retry_after = *retry_after;
                    return Err(DialError::RateLimited { retry_after });
                }
                Some(Fault::Unavailable {
                    after_create: false,
                    ..
                }) => return Err(DialError::Unavailable(Unavailable::Server { status: 503 })),
                _ => {}
            }
            let now = Instant::now();
            let placed = match state.calls.get(&request.key) {
                Some(call) if call.to != request.to => {
                    return Err(DialError::Rejected {
                        status: 409,
                        code: "idempotency_key_reused".to_owned(),
                    });
                }
                Some(call) => Placed {
                    call: call.snapshot(now),
                    replayed: true,
                },
                None => {
                    let call = self.new_call(&request, scenario, callback_url);
                    self.emit_events(&call);
                    let snapshot = call.snapshot(call.started);
                    state.calls.insert(request.key.clone(), call);
                    tracing::debug!(
                        call.key = %request.key,
                        call.to = %request.to,
                        sim.scenario = ?scenario,
                        "simulated call placed"
                    );
                    Placed {
                        call: snapshot,
                        replayed: false,
                    }
                }
            };
            match fault {
                Some(Fault::Unavailable { .. }) => (
                    Err(DialError::Unavailable(Unavailable::Server { status: 503 })),
                    None,
                ),
                Some(Fault::Slow { delay, .. }) => (Ok(placed), Some(delay)),
                _ => (Ok(placed), None),
            }
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        result
    }
}

#[async_trait]
impl Dialer for Simulator {
    async fn place(&self, request: DialRequest) -> Result<Placed, DialError> {
        self.place_with_callback(request, None).await
    }

    async fn lookup(&self, key: &IdempotencyKey) -> Result<Option<ProviderCall>, DialError> {
        let now = Instant::now();
        Ok(self.lock().calls.get(key).map(|call| call.snapshot(now)))
    }
}
