//! Rate limits that hold across every worker process: Redis is the one authority, each
//! decision one Lua script with `now` passed in (from the [`outdial_domain::Clock`]).
//!
//! # What is limited
//!
//! - **Calls per second, per company and per caller ID** ([`Limits::admit`]): a GCRA
//!   (generic cell rate algorithm) per limit, kept in Redis as one number (the theoretical
//!   arrival time of the next conforming call). A call must conform to its company's rate
//!   *and* its caller ID's rate; both are checked and advanced in one script, so a call
//!   refused by one limit spends nothing from the other. A refusal says when to come back
//!   ([`Admission::Wait`]), which the worker turns into a deferral (no attempt consumed) or a
//!   short `tokio::time` sleep.
//! - **Turns instead of a gate** ([`Limits::reserve`]): the same limits, but a call is
//!   counted at once and told the instant it may be placed (its turn), if that is within
//!   the wait the caller allows. Turns are absolute instants one interval apart, so callers
//!   that wake a little late do not lose capacity and nobody polls; the worker uses this.
//! - **A provider's 429** ([`Limits::slow_down`]): holds the company's calls until the
//!   `Retry-After` has passed, for every process (checked first by the same admit script).
//!   Other companies are untouched: every key is per company (or per caller ID).
//! - **Concurrent live calls per company** ([`Limits::acquire_slot`]): a ZSET of holder
//!   (the call's idempotency key) → lease expiry. Acquire drops expired leases, then admits
//!   while fewer than the cap are held. The slot is released by key
//!   ([`Limits::release_slot`]) by whoever learns the call is over — the worker on an
//!   immediate outcome, failure or timeout, the callback route on `call.ended` — and the
//!   lease (renewed while the call is known to be live, [`Limits::renew_slot`]) returns the
//!   slot of a crashed worker or a call whose end was never reported.
//!
//! # Why GCRA in Redis (and what `governor` adds)
//!
//! A limit that must hold for N processes together needs one shared state; a per-process
//! limiter given `R / N` breaks whenever N changes (deploys, crashes, autoscaling) and wastes
//! the share of idle processes. GCRA needs one key and one round trip per decision, has no
//! window-edge bursts (unlike fixed windows), needs no timers or refill jobs (unlike token
//! buckets with a refiller), and its refusal carries the exact moment to retry, so waiters
//! sleep instead of polling Redis. With `burst` > 1 the tolerance lets late callers catch up,
//! so the long-run rate is exactly the configured one.
//!
//! [`Pacer`] composes an in-process `governor` limiter in front of it: each process first
//! waits on its own local limiter, set to the company's full rate, then asks Redis. The local
//! layer never decides anything alone (it only ever allows at least as much as the global
//! limit), it smooths a process's own bursts — so that, say, 64 dispatch tasks released at
//! once do not all hit Redis just to be refused — and keeps one process from taking more than
//! the whole rate. Correctness rests on Redis only.
//!
//! # Keys
//!
//! All keys live under one namespace with a hash tag (`outdial:{limits}` in production,
//! `t:{<uuid>}` in tests), so every multi-key script is legal on a Redis cluster. See
//! [`Keys`].

mod keys;
mod limiter;
mod pacer;
mod rate;
mod slots;

pub use keys::Keys;
pub use limiter::Limits;
pub use pacer::Pacer;
pub use rate::{Admission, CallLimits, Rate, Reservation, Throttle};
pub use slots::SlotGrant;

/// A limits script with the `#!lua` shebang (Redis 7.0 or later): Redis then refuses any key
/// access outside the slot of its keys, so a cluster-illegal script fails on every setup.
fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("#!lua\n{body}"))
}
