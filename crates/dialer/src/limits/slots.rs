//! Live-call slots per company: a ZSET of holder → lease expiry, so a slot always comes back.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Script;

use super::Limits;
use super::limiter::instant;
use crate::{CompanyRef, Error, IdempotencyKey, Result};

static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| super::script(include_str!("../../lua/slot_acquire.lua")));
static RENEW: LazyLock<Script> =
    LazyLock::new(|| super::script(include_str!("../../lua/slot_renew.lua")));

/// The answer of [`Limits::acquire_slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotGrant {
    /// The holder has a slot (a new one, or its own one with a fresh lease).
    Acquired {
        /// Live calls of the company, this one included.
        live: u32,
    },
    /// Every slot is taken. One frees up at the latest at `next_expiry` (a lease running
    /// out); usually sooner, when a call ends and its slot is released.
    Full {
        /// The earliest lease expiry among the holders.
        next_expiry: DateTime<Utc>,
    },
}

fn lease_ms(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Limits {
    /// Takes one of `company`'s `cap` live-call slots for `holder` (the call's idempotency
    /// key) until `lease` from now. Expired leases are dropped first. Acquiring again as the
    /// same holder keeps the one slot and renews it.
    pub async fn acquire_slot(
        &self,
        company: &CompanyRef,
        cap: u32,
        holder: &IdempotencyKey,
        lease: Duration,
    ) -> Result<SlotGrant> {
        let mut r = self
            .acquire_slots(company, cap, std::slice::from_ref(holder), lease)
            .await?;
        r.pop().ok_or(Error::ScriptReply("slot_acquire"))
    }

    /// [`Limits::acquire_slot`] for several holders of one company in one round trip,
    /// served in order: once the cap is reached, the later holders get `Full`. One answer
    /// per holder.
    pub async fn acquire_slots(
        &self,
        company: &CompanyRef,
        cap: u32,
        holders: &[IdempotencyKey],
        lease: Duration,
    ) -> Result<Vec<SlotGrant>> {
        if holders.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = ACQUIRE.key(self.keys.live_calls(company));
        invocation.arg(self.now_ms()).arg(cap).arg(lease_ms(lease));
        for holder in holders {
            invocation.arg(holder.as_str());
        }
        let reply: Vec<i64> = invocation.invoke_async(&mut self.conn.clone()).await?;
        if reply.len() != 2 * holders.len() {
            return Err(Error::ScriptReply("slot_acquire"));
        }
        reply
            .chunks(2)
            .map(|pair| match pair {
                [1, live] => Ok(SlotGrant::Acquired {
                    live: u32::try_from(*live).unwrap_or(u32::MAX),
                }),
                [0, expiry] => Ok(SlotGrant::Full {
                    next_expiry: instant(*expiry),
                }),
                _ => Err(Error::ScriptReply("slot_acquire")),
            })
            .collect()
    }

    /// Extends `holder`'s lease to `lease` from now. `false`: the lease was lost (it expired
    /// or was released); the call no longer counts against the cap.
    pub async fn renew_slot(
        &self,
        company: &CompanyRef,
        holder: &IdempotencyKey,
        lease: Duration,
    ) -> Result<bool> {
        let renewed: i64 = RENEW
            .key(self.keys.live_calls(company))
            .arg(self.now_ms())
            .arg(holder.as_str())
            .arg(lease_ms(lease))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(renewed == 1)
    }

    /// Gives `holder`'s slot back: on the call's end, failure, timeout, or when it was never
    /// placed. `false`: it had none (released twice, or the lease expired). Safe to call from
    /// any process that learns the call is over.
    pub async fn release_slot(
        &self,
        company: &CompanyRef,
        holder: &IdempotencyKey,
    ) -> Result<bool> {
        let released = self
            .release_slots(&[(company.clone(), holder.clone())])
            .await?;
        Ok(released.first().copied().unwrap_or(false))
    }

    /// [`Limits::release_slot`] for many holders (of any companies) in one round trip (a
    /// pipeline of `ZREM`; no script needed): one answer per holder.
    pub async fn release_slots(
        &self,
        holders: &[(CompanyRef, IdempotencyKey)],
    ) -> Result<Vec<bool>> {
        if holders.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (company, holder) in holders {
            pipe.cmd("ZREM")
                .arg(self.keys.live_calls(company))
                .arg(holder.as_str());
        }
        let released: Vec<i64> = pipe.query_async(&mut self.conn.clone()).await?;
        if released.len() != holders.len() {
            return Err(Error::ScriptReply("slot_release"));
        }
        Ok(released.into_iter().map(|r| r == 1).collect())
    }

    /// Live calls of `company` now (unexpired leases).
    pub async fn live_calls(&self, company: &CompanyRef) -> Result<u32> {
        let live: u64 = redis::cmd("ZCOUNT")
            .arg(self.keys.live_calls(company))
            .arg(format!("({}", self.now_ms()))
            .arg("+inf")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(u32::try_from(live).unwrap_or(u32::MAX))
    }
}
