//! Claiming: fair across partitions, through the partition index.
//!
//! The index (`<ns>:parts`, a sorted set in its own slot) maps each partition to the
//! earliest instant it may have work: its earliest due job, earliest lease expiry, or the
//! end of its throttle. A claimer reads the partitions whose instant has come (bounded),
//! splits its batch among them and runs each partition's claim script; the script reports
//! the partition's next instant, which the claimer writes back (never later than
//! `now + idle_recheck`). A throttled or capped partition is therefore never even visited
//! before it can give work, and never delays another partition's due jobs. A partition
//! served in this round that still has due work is moved behind those that waited longer
//! (its instant becomes `now`), so partitions take turns.
//!
//! The index is only a hint. Every write to it is a separate command after the partition
//! script, so it can lag or be lost (a crash between the two, a racing enqueue); it repairs
//! itself: every enqueue lowers it again, every claim rewrites it, no entry is ever later
//! than `idle_recheck` after it was last written, and [`Queue::repair_index`] rebuilds it
//! from each partition's own keys.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::join_all;

use crate::{Error, Result};
use redis::Value;

use crate::job::{Job, JobRef};
use crate::keys::Partition;
use crate::queue::{Queue, at, ms};
use crate::reply::{array, bytes, int, text};
use crate::scripts::SCRIPTS;

/// The fewest jobs a claim asks of one partition (unless it wants fewer in total).
const MIN_SHARE: usize = 16;

/// With more due partitions than one claim reads, claims rotate over the oldest
/// `SPREAD × (partitions one claim visits)` of them: about as many claims as processes
/// claim at one moment.
const SPREAD: usize = 4;

/// The most jobs one partition's claim script leases in one call.
pub const MAX_CLAIM: usize = 1000;

impl Queue {
    /// Leases up to `n` due jobs across partitions, fairly, each for `lease`.
    pub async fn claim(&self, now: DateTime<Utc>, n: usize, lease: Duration) -> Result<Vec<Job>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let index = self.keys.index();
        let rotation = self.keys.rotation();
        let now_ms = ms(now);
        let limit = self.config.partitions_per_claim;
        // Visit at most n / MIN_SHARE partitions (a script call per job would waste Redis).
        let per_claim = (n / MIN_SHARE).max(1);
        // The due partitions, and this claim's place in the fleet's rotation (advanced in
        // the same round trip).
        let (cursor, v) = self
            .conn
            .run("claim", |mut c| {
                let (index, rotation) = (index.clone(), rotation.clone());
                async move {
                    redis::pipe()
                        .cmd("INCRBY")
                        .arg(&rotation)
                        .arg(per_claim)
                        .cmd("ZRANGEBYSCORE")
                        .arg(&index)
                        .arg("-inf")
                        .arg(now_ms)
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit)
                        .query_async::<(u64, redis::Value)>(&mut c)
                        .await
                }
            })
            .await?;
        let mut parts: Vec<Partition> = array(&v)
            .iter()
            .filter_map(|p| Partition::new(&text(p)?).ok())
            .collect();
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        // Every due partition was read: the rotation alone takes them in turn, so one that
        // is still due keeps its index entry (no write); a truncated read needs the write
        // (`now`) to put a served partition behind the ones that waited longer.
        let all_read = array(&v).len() < limit;
        let mut jobs = Vec::with_capacity(n);
        let mut wake = Vec::with_capacity(parts.len());
        let mut again = Vec::new();
        // Each visited partition gets an equal share. Which ones: the next `per_claim` of
        // the fleet's rotation (a counter in Redis every claim advances, so processes that
        // claim at the same moment visit different partitions), around the ring of due
        // partitions in name order when every due one was read (a stable ring, whatever
        // their wake times). When the read was truncated, it holds the partitions that have
        // waited longest, oldest first, and a served one is written back behind them: the
        // rotation then runs over the oldest `SPREAD` visits' worth only, so the longest
        // waiting are never skipped for long, and claims of different processes at the
        // same moment still take different ones.
        let ring = if all_read {
            parts.sort();
            parts.len()
        } else {
            parts.len().min(SPREAD * per_claim)
        };
        let start = usize::try_from(cursor)
            .unwrap_or(usize::MAX)
            .wrapping_sub(per_claim)
            % ring;
        parts[..ring].rotate_left(start);
        let visit = parts.len().min(per_claim);
        parts.truncate(visit);
        let share = n.div_ceil(visit);
        let mut wants = Vec::with_capacity(parts.len());
        let mut left = n;
        for p in &parts {
            let want = share.min(left);
            if want == 0 {
                break;
            }
            left -= want;
            wants.push((p, want));
        }
        // the partitions are independent: claim from them concurrently (boxed, so that the
        // future stays `Send` for callers that spawn it)
        let results = join_all(
            wants
                .iter()
                .map(|&(p, want)| self.claim_partition(p, now, want, lease).boxed()),
        )
        .await;
        for (&(p, want), r) in wants.iter().zip(results) {
            let (got, next) = r?;
            if got.len() == want && next >= 0 && next <= now_ms {
                again.push(p.clone());
            }
            jobs.extend(got);
            wake.push((p.to_string(), next));
        }
        // Second pass: leftover room goes to partitions that filled their share.
        for p in &again {
            let want = n - jobs.len();
            if want == 0 {
                break;
            }
            let (got, next) = self.claim_partition(p, now, want, lease).await?;
            jobs.extend(got);
            if let Some(w) = wake.iter_mut().find(|(q, _)| q == p.as_str()) {
                w.1 = next;
            }
        }
        let wake: Vec<(String, i64)> = wake
            .into_iter()
            .filter(|&(_, next)| !all_read || next < 0 || next > now_ms)
            .map(|(p, next)| (p, self.wake_after(next, now_ms)))
            .collect();
        if wake.is_empty() {
            return Ok(jobs);
        }
        let index = self.keys.index();
        self.conn
            .run("claim", |mut c| {
                let mut pipe = redis::pipe();
                for (p, w) in &wake {
                    pipe.cmd("ZADD").arg(&index).arg(*w).arg(p).ignore();
                }
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .await?;
        Ok(jobs)
    }

    /// The instant written back to the index for a partition whose script said `next`.
    fn wake_after(&self, next: i64, now: i64) -> i64 {
        let cap = now.saturating_add(
            i64::try_from(self.config.idle_recheck.as_millis()).unwrap_or(i64::MAX),
        );
        if next < 0 {
            cap
        } else {
            // Still due: go behind partitions that have waited longer.
            next.max(now).min(cap)
        }
    }

    /// Leases up to `n` due jobs of one partition (recovering its expired leases and
    /// promoting its due jobs first, both bounded). Returns the jobs and the partition's
    /// next instant with possible work (ms since the epoch; -1 when it has none). Does not
    /// touch the partition index.
    pub async fn claim_partition(
        &self,
        partition: &Partition,
        now: DateTime<Utc>,
        n: usize,
        lease: Duration,
    ) -> Result<(Vec<Job>, i64)> {
        let now_ms = ms(now);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        // bounded: the script returns 4 values per job in one reply
        let n = n.min(MAX_CLAIM);
        let args = [
            now_ms.to_string().into_bytes(),
            n.to_string().into_bytes(),
            lease_ms.to_string().into_bytes(),
            self.config.promote_batch.to_string().into_bytes(),
            self.config.recover_batch.to_string().into_bytes(),
        ];
        let v = self.eval("claim", &SCRIPTS.claim, partition, &args).await?;
        let (jobs, next) = self.parse_claim(partition, now_ms, lease_ms, &v)?;
        let a = array(&v);
        let (recovered, reconcile) = (
            a.get(1).and_then(int).unwrap_or(0),
            a.get(2).and_then(int).unwrap_or(0),
        );
        if recovered > 0 || reconcile > 0 {
            tracing::info!(partition = %partition, recovered, reconcile, "expired leases recovered");
        }
        Ok((jobs, next))
    }

    /// Parses a claim reply into jobs and the partition's next wake time (ms, -1: none).
    pub(crate) fn parse_claim(
        &self,
        p: &Partition,
        now: i64,
        lease: i64,
        v: &Value,
    ) -> Result<(Vec<Job>, i64)> {
        let a = array(v);
        let bad = |what: &str| Error::Reply {
            script: "claim",
            what: what.to_owned(),
        };
        let next = a.first().and_then(int).ok_or_else(|| bad("no wake time"))?;
        let mut jobs = Vec::with_capacity(a.len().saturating_sub(3) / 4);
        for c in a.get(3..).unwrap_or_default().chunks(4) {
            let [m, due, token, attempt] = c else {
                return Err(bad("a job is not 4 values"));
            };
            let job = bytes(m)
                .and_then(|m| JobRef::from_member(p, m))
                .ok_or_else(|| bad("bad member"))?;
            jobs.push(Job {
                job,
                due: at(int(due).ok_or_else(|| bad("bad due"))?),
                token: int(token)
                    .and_then(|t| u64::try_from(t).ok())
                    .ok_or_else(|| bad("bad token"))?,
                attempt: int(attempt)
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(|| bad("bad attempt"))?,
                lease_until: at(now + lease),
            });
        }
        Ok((jobs, next))
    }
}
