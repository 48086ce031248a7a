//! The queue: every state transition, each one Lua script on one partition's keys.

use futures_util::FutureExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use outdial_domain::{CallId, CustomerRef};
use redis::Value;

use crate::connection::Connection;
use crate::job::{Cancel, CustomerCancel, DialIntent, HandBack, JobRef};
use crate::keys::{Keys, Partition, bucket_of};
use crate::reply::{array, bytes, int};
use crate::scripts::SCRIPTS;
use crate::{Error, QueueConfig, Resolution, Result};

/// Milliseconds since the Unix epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant `ms` milliseconds after the Unix epoch.
pub(crate) fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The most jobs one ack or mark_dialing script call handles.
const MAX_ACK: usize = 1000;

/// The indices of `jobs` grouped by partition, in pieces of at most [`MAX_ACK`]: one script
/// call each.
fn pieces(jobs: &[(JobRef, u64)]) -> Vec<(&Partition, Vec<usize>)> {
    let mut by_partition: BTreeMap<&Partition, Vec<usize>> = BTreeMap::new();
    for (i, (j, _)) in jobs.iter().enumerate() {
        by_partition.entry(&j.partition).or_default().push(i);
    }
    by_partition
        .into_iter()
        .flat_map(|(p, idx)| {
            idx.chunks(MAX_ACK)
                .map(|c| (p, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A handle on one queue namespace in Redis. Cheap to clone; share one per process.
#[derive(Clone, Debug)]
pub struct Queue {
    pub(crate) conn: Connection,
    pub(crate) keys: Keys,
    pub(crate) config: QueueConfig,
    /// Partitions this process has registered in the `known` set.
    pub(crate) registered: Arc<Mutex<HashSet<Partition>>>,
}

impl Queue {
    /// A queue on the Redis at `url` under `namespace`. Connects lazily: a Redis that is
    /// down is retried by each operation, so a worker can start before Redis does.
    pub fn open(url: &str, namespace: &str, config: QueueConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            conn: Connection::open(url, &config)?,
            keys: Keys::new(namespace)?,
            config,
            registered: Arc::default(),
        })
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The reference of a call's job, from its partition and customer.
    pub fn job_ref(&self, partition: &Partition, call: CallId, customer: &CustomerRef) -> JobRef {
        JobRef {
            partition: partition.clone(),
            call,
            bucket: bucket_of(customer.as_str(), self.config.buckets),
        }
    }

    /// Runs one script on one partition (KEYS\[1\] is the partition's meta key).
    pub(crate) async fn eval(
        &self,
        what: &'static str,
        script: &'static redis::Script,
        p: &Partition,
        args: &[Vec<u8>],
    ) -> Result<Value> {
        self.eval_keys(what, script, p, &[], args).await
    }

    /// Runs one script on one partition with more keys after its meta key.
    pub(crate) async fn eval_keys(
        &self,
        what: &'static str,
        script: &'static redis::Script,
        p: &Partition,
        keys: &[String],
        args: &[Vec<u8>],
    ) -> Result<Value> {
        let meta = self.keys.meta(p);
        self.conn
            .run(what, |mut c| {
                let mut inv = script.key(&meta);
                for k in keys {
                    inv.key(k.as_str());
                }
                for a in args {
                    inv.arg(a.as_slice());
                }
                async move { inv.invoke_async::<Value>(&mut c).await }
            })
            .await
    }

    async fn eval_int(
        &self,
        what: &'static str,
        script: &'static redis::Script,
        p: &Partition,
        args: &[Vec<u8>],
    ) -> Result<i64> {
        let v = self.eval(what, script, p, args).await?;
        int(&v).ok_or_else(|| Error::Reply {
            script: what,
            what: format!("expected an integer, got {v:?}"),
        })
    }

    /// Forgets which partitions this process registered (they are registered again by the
    /// next enqueue: after a flush, the registry must be rebuilt).
    pub(crate) fn registered_clear(&self) {
        self.registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Extends a held lease to `until`. `false`: the lease is lost (expired and recovered,
    /// or the job was killed): stop working on it.
    pub async fn renew(&self, job: &JobRef, token: u64, until: DateTime<Utc>) -> Result<bool> {
        let args = [
            job.member(),
            token.to_string().into(),
            ms(until).to_string().into(),
        ];
        Ok(self
            .eval_int("renew", &SCRIPTS.renew, &job.partition, &args)
            .await?
            == 1)
    }

    /// Records dial intent in the queue, just before dialing (after the worker recorded it
    /// in Postgres). From here an expired lease sends the job to reconcile, never back to
    /// due. Idempotent for the holder.
    pub async fn mark_dialing(
        &self,
        job: &JobRef,
        token: u64,
        now: DateTime<Utc>,
    ) -> Result<DialIntent> {
        let r = self.mark_dialing_many(&[(job.clone(), token)], now).await?;
        Ok(r.first().copied().unwrap_or(DialIntent::LeaseLost))
    }

    /// [`Queue::mark_dialing`] for many held jobs: one script call per partition (and per
    /// 1,000 jobs). Returns, per job, what the queue recorded.
    pub async fn mark_dialing_many(
        &self,
        jobs: &[(JobRef, u64)],
        now: DateTime<Utc>,
    ) -> Result<Vec<DialIntent>> {
        let calls = pieces(jobs).into_iter().map(|(p, idx)| {
            async move {
                let mut args = Vec::with_capacity(idx.len() * 2 + 1);
                args.push(ms(now).to_string().into_bytes());
                for &i in &idx {
                    args.push(jobs[i].0.member());
                    args.push(jobs[i].1.to_string().into_bytes());
                }
                let v = self
                    .eval("mark_dialing", &SCRIPTS.mark_dialing, p, &args)
                    .await?;
                let a: Vec<i64> = array(&v).iter().filter_map(int).collect();
                if a.len() != idx.len() {
                    return Err(Error::Reply {
                        script: "mark_dialing",
                        what: format!("{} values for {} jobs", a.len(), idx.len()),
                    });
                }
                Ok((idx, a))
            }
            .boxed()
        });
        let mut out = vec![DialIntent::LeaseLost; jobs.len()];
        for r in futures_util::future::join_all(calls).await {
            let (idx, a) = r?;
            for (&i, code) in idx.iter().zip(a) {
                out[i] = match code {
                    1 => DialIntent::Marked,
                    -1 => DialIntent::Cancelled,
                    _ => DialIntent::LeaseLost,
                };
            }
        }
        Ok(out)
    }

    /// The holder is done with the job: it is forgotten. `false`: the lease was lost.
    pub async fn ack(&self, job: &JobRef, token: u64) -> Result<bool> {
        let r = self.ack_many(&[(job.clone(), token)]).await?;
        Ok(r.first().copied().unwrap_or(false))
    }

    /// Acknowledges many held jobs: one script call per partition. Returns, per job,
    /// whether it was acknowledged (`false`: its lease was lost).
    pub async fn ack_many(&self, jobs: &[(JobRef, u64)]) -> Result<Vec<bool>> {
        let mut out = vec![false; jobs.len()];
        let mut wake = Vec::new();
        let calls = pieces(jobs).into_iter().map(|(p, idx)| {
            async move {
                let mut args = Vec::with_capacity(idx.len() * 2);
                let mut keys = Vec::with_capacity(idx.len());
                for &i in &idx {
                    args.push(jobs[i].0.member());
                    args.push(jobs[i].1.to_string().into_bytes());
                    keys.push(self.keys.table(p, jobs[i].0.bucket));
                }
                let v = self.eval_keys("ack", &SCRIPTS.ack, p, &keys, &args).await?;
                let a: Vec<i64> = array(&v).iter().filter_map(int).collect();
                if a.len() != idx.len() + 1 {
                    return Err(Error::Reply {
                        script: "ack",
                        what: format!("{} values for {} jobs", a.len(), idx.len()),
                    });
                }
                Ok((p, idx, a))
            }
            .boxed()
        });
        for r in futures_util::future::join_all(calls).await {
            let (p, idx, a) = r?;
            if a[0] == 1 {
                // Room under the live-call cap: let claimers look at the partition now.
                wake.push((p.to_string(), 0));
            }
            for (k, &i) in idx.iter().enumerate() {
                out[i] = a[k + 1] == 1;
            }
        }
        self.wake_partitions(&wake).await?;
        Ok(out)
    }

    /// Hands a held job back to run at `until`, consuming no attempt (a closed window, a
    /// cap or a rate limit).
    pub async fn defer(&self, job: &JobRef, token: u64, until: DateTime<Utc>) -> Result<HandBack> {
        let args = [
            job.member(),
            token.to_string().into(),
            ms(until).to_string().into(),
        ];
        let r = self
            .eval_int("defer", &SCRIPTS.defer, &job.partition, &args)
            .await?;
        if r == 1 {
            self.wake_partitions(&[(job.partition.to_string(), ms(until))])
                .await?;
        }
        Ok(hand_back(r))
    }

    /// The attempt failed: consumes it and schedules the next at `now + backoff`, or moves
    /// the job to dead (with `reason`) when `max_attempts` are used up.
    pub async fn retry(
        &self,
        job: &JobRef,
        token: u64,
        now: DateTime<Utc>,
        backoff: Duration,
        reason: &str,
    ) -> Result<HandBack> {
        let due = ms(now).saturating_add(duration_ms(backoff));
        let args = [
            job.member(),
            token.to_string().into(),
            ms(now).to_string().into(),
            due.to_string().into(),
            self.config.max_attempts.to_string().into(),
            reason.as_bytes().to_vec(),
        ];
        let r = self
            .eval_int("retry", &SCRIPTS.retry, &job.partition, &args)
            .await?;
        if r == 1 {
            self.wake_partitions(&[(job.partition.to_string(), due)])
                .await?;
        }
        Ok(hand_back(r))
    }

    /// Moves a job to dead from any state (a human must act). `false`: no such job or
    /// already dead. A holder of its lease finds the lease lost.
    pub async fn dead(&self, job: &JobRef, now: DateTime<Utc>, reason: &str) -> Result<bool> {
        let args = [
            job.member(),
            ms(now).to_string().into(),
            reason.as_bytes().to_vec(),
        ];
        Ok(self
            .eval_int("dead", &SCRIPTS.dead, &job.partition, &args)
            .await?
            == 1)
    }

    /// Cancels one job.
    pub async fn cancel(&self, job: &JobRef) -> Result<Cancel> {
        Ok(
            match self
                .eval_int("cancel", &SCRIPTS.cancel, &job.partition, &[job.member()])
                .await?
            {
                1 => Cancel::Removed,
                2 => Cancel::InFlight,
                _ => Cancel::Unknown,
            },
        )
    }

    /// Cancels every job of one customer in one partition, through the customer's table
    /// bucket; returns what was removed and what is in flight.
    pub async fn cancel_customer(
        &self,
        partition: &Partition,
        customer: &CustomerRef,
    ) -> Result<CustomerCancel> {
        let b = bucket_of(customer.as_str(), self.config.buckets);
        let args = [
            b.to_string().into_bytes(),
            customer.as_str().as_bytes().to_vec(),
        ];
        let v = self
            .eval(
                "cancel_customer",
                &SCRIPTS.cancel_customer,
                partition,
                &args,
            )
            .await?;
        let mut out = CustomerCancel::default();
        let mut flying = false;
        for item in array(&v) {
            let b = bytes(item).unwrap_or_default();
            if b.is_empty() {
                flying = true;
                continue;
            }
            let Ok(id) = uuid::Uuid::from_slice(b) else {
                return Err(Error::Reply {
                    script: "cancel_customer",
                    what: "a call id is not 16 bytes".into(),
                });
            };
            if flying {
                out.in_flight.push(CallId::from_uuid(id));
            } else {
                out.cancelled.push(CallId::from_uuid(id));
            }
        }
        Ok(out)
    }

    /// Settles a job waiting for reconcile. `false`: it was not waiting for reconcile.
    pub async fn resolve_reconcile(
        &self,
        job: &JobRef,
        outcome: Resolution,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (kind, when, reason) = match &outcome {
            Resolution::Done => ("done", ms(now), String::new()),
            Resolution::Requeue(t) => ("requeue", ms(*t), String::new()),
            Resolution::Dead(r) => ("dead", ms(now), r.clone()),
        };
        let args = [
            job.member(),
            kind.into(),
            when.to_string().into(),
            reason.into_bytes(),
        ];
        let ok = self
            .eval_int("resolve", &SCRIPTS.resolve, &job.partition, &args)
            .await?
            == 1;
        if ok && kind == "requeue" {
            self.wake_partitions(&[(job.partition.to_string(), when)])
                .await?;
        }
        Ok(ok)
    }

    /// Re-drives one dead job: scheduled at `due` with its attempts reset. `false`: it was
    /// not dead.
    pub async fn redrive(&self, job: &JobRef, due: DateTime<Utc>) -> Result<bool> {
        let args = [
            ms(due).to_string().into_bytes(),
            job.member(),
            b"0".to_vec(),
        ];
        let v = self
            .eval("redrive", &SCRIPTS.redrive, &job.partition, &args)
            .await?;
        let ok = !array(&v).is_empty();
        if ok {
            self.wake_partitions(&[(job.partition.to_string(), ms(due))])
                .await?;
        }
        Ok(ok)
    }

    /// Re-drives the `limit` oldest dead jobs of a partition; returns them.
    pub async fn redrive_oldest(
        &self,
        partition: &Partition,
        due: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<JobRef>> {
        let args = [
            ms(due).to_string().into_bytes(),
            Vec::new(),
            limit.max(1).to_string().into_bytes(),
        ];
        let v = self
            .eval("redrive", &SCRIPTS.redrive, partition, &args)
            .await?;
        let jobs: Vec<JobRef> = array(&v)
            .iter()
            .filter_map(|m| JobRef::from_member(partition, bytes(m)?))
            .collect();
        if !jobs.is_empty() {
            self.wake_partitions(&[(partition.to_string(), ms(due))])
                .await?;
        }
        Ok(jobs)
    }
}

fn hand_back(code: i64) -> HandBack {
    match code {
        1 => HandBack::Scheduled,
        2 => HandBack::Dead,
        -1 => HandBack::Cancelled,
        _ => HandBack::LeaseLost,
    }
}
