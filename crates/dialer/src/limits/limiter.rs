//! [`Limits`]: the Redis-backed limits shared by every worker process.

use std::fmt;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use outdial_domain::{Clock, PhoneNumber};
use outdial_redis::Redis;
use redis::Script;

use super::{Admission, CallLimits, Keys, Reservation, Throttle};
use crate::{CompanyRef, Error, Result};

static ADMIT: LazyLock<Script> =
    LazyLock::new(|| super::script(include_str!("../../lua/admit.lua")));
static RESERVE: LazyLock<Script> =
    LazyLock::new(|| super::script(include_str!("../../lua/reserve.lua")));
static SLOW_DOWN: LazyLock<Script> =
    LazyLock::new(|| super::script(include_str!("../../lua/slow_down.lua")));

/// The rate limits, slow-downs and live-call slots of every company, in Redis. Cheap to
/// clone; every method is one round trip.
#[derive(Clone)]
pub struct Limits {
    pub(super) conn: Redis,
    pub(super) keys: Keys,
    pub(super) clock: Arc<dyn Clock>,
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("keys", &self.keys)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

pub(super) fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Limits {
    /// Limits on `conn` under `namespace` (which needs a hash tag, e.g. `outdial:{limits}`),
    /// reading `now` from `clock` — every process must use a synchronized clock (NTP).
    pub fn new(conn: Redis, namespace: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        Ok(Self {
            conn,
            keys: Keys::new(namespace)?,
            clock,
        })
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Asks to place one call of `company` from `caller_id` now. `Admitted` counts the call
    /// against every limit; `Wait` counts nothing and says when to ask again (the later of
    /// the limits that refused, or the end of a slow-down).
    pub async fn admit(
        &self,
        company: &CompanyRef,
        caller_id: &PhoneNumber,
        limits: &CallLimits,
    ) -> Result<Admission> {
        let mut invocation = ADMIT.key(self.keys.slow_down(company));
        invocation.arg(self.now_ms());
        invocation
            .key(self.keys.company_rate(company))
            .arg(limits.company.interval_us())
            .arg(limits.company.tolerance_us());
        if let Some(rate) = limits.caller_id {
            invocation
                .key(self.keys.caller_rate(caller_id))
                .arg(rate.interval_us())
                .arg(rate.tolerance_us());
        }
        let reply: Vec<i64> = invocation.invoke_async(&mut self.conn.clone()).await?;
        match reply.as_slice() {
            [0, _] => Ok(Admission::Admitted),
            [1, until] => Ok(Admission::Wait {
                until: instant(*until),
                reason: Throttle::SlowedDown,
            }),
            [2, until] => Ok(Admission::Wait {
                until: instant(*until),
                reason: Throttle::Rate,
            }),
            _ => Err(Error::ScriptReply("admit")),
        }
    }

    /// Books the turn of one call of `company` from `caller_id`: the earliest instant that
    /// conforms to every limit, counted at once (`Booked`), unless it is more than
    /// `max_wait` away or the company is slowed down (`Wait`: nothing counted, ask again
    /// at `until`). The caller places the call at its turn.
    pub async fn reserve(
        &self,
        company: &CompanyRef,
        caller_id: &PhoneNumber,
        limits: &CallLimits,
        max_wait: std::time::Duration,
    ) -> Result<Reservation> {
        let mut r = self
            .reserve_many(company, caller_id, limits, max_wait, 1)
            .await?;
        r.pop().ok_or(Error::ScriptReply("reserve"))
    }

    /// [`Limits::reserve`] for `count` calls of one company and caller ID in one round
    /// trip: turns booked in order, each one interval after the last; once a turn would be
    /// more than `max_wait` away, that call and every later one get `Wait` (nothing booked
    /// for them). One answer per call.
    pub async fn reserve_many(
        &self,
        company: &CompanyRef,
        caller_id: &PhoneNumber,
        limits: &CallLimits,
        max_wait: std::time::Duration,
        count: usize,
    ) -> Result<Vec<Reservation>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = RESERVE.key(self.keys.slow_down(company));
        invocation
            .arg(self.now_ms())
            .arg(u64::try_from(max_wait.as_millis()).unwrap_or(u64::MAX));
        invocation
            .key(self.keys.company_rate(company))
            .arg(limits.company.interval_us())
            .arg(limits.company.tolerance_us());
        if let Some(rate) = limits.caller_id {
            invocation
                .key(self.keys.caller_rate(caller_id))
                .arg(rate.interval_us())
                .arg(rate.tolerance_us());
        }
        invocation.arg(count);
        let reply: Vec<i64> = invocation.invoke_async(&mut self.conn.clone()).await?;
        if reply.len() != 2 * count {
            return Err(Error::ScriptReply("reserve"));
        }
        reply
            .chunks(2)
            .map(|pair| match pair {
                [0, at] => Ok(Reservation::Booked { at: instant(*at) }),
                [1, until] => Ok(Reservation::Wait {
                    until: instant(*until),
                    reason: Throttle::SlowedDown,
                }),
                [2, until] => Ok(Reservation::Wait {
                    until: instant(*until),
                    reason: Throttle::Rate,
                }),
                _ => Err(Error::ScriptReply("reserve")),
            })
            .collect()
    }

    /// Holds every call of `company`, in every process, until `until` (a provider 429 with
    /// `Retry-After`). Never shortens a slow-down in force; returns the one in force.
    pub async fn slow_down(
        &self,
        company: &CompanyRef,
        until: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let in_force: i64 = SLOW_DOWN
            .key(self.keys.slow_down(company))
            .arg(self.now_ms())
            .arg(until.timestamp_millis())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((in_force > 0).then(|| instant(in_force)))
    }

    /// Until when `company` is slowed down, if it is.
    pub async fn slowed_until(&self, company: &CompanyRef) -> Result<Option<DateTime<Utc>>> {
        let until: Option<i64> = redis::cmd("GET")
            .arg(self.keys.slow_down(company))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(until.filter(|ms| *ms > self.now_ms()).map(instant))
    }
}
