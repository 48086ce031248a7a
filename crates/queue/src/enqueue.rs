//! Enqueueing: idempotent by call id, batched per partition, then the partition index.

use futures_util::FutureExt;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use outdial_domain::CallId;

use futures_util::{StreamExt, stream};

use crate::job::{Enqueued, NewJob};
use crate::keys::{Partition, bucket_of};
use crate::queue::{Queue, ms};
use crate::reply::{array, int};
use crate::scripts::SCRIPTS;
use crate::{Error, Result};

impl Queue {
    /// Schedules one call (see [`enqueue_many`](Self::enqueue_many)).
    pub async fn enqueue(&self, job: &NewJob) -> Result<Enqueued> {
        let r = self.enqueue_many(std::slice::from_ref(job)).await?;
        r.into_iter().next().ok_or(Error::Reply {
            script: "enqueue",
            what: "no code returned".into(),
        })
    }

    /// Schedules calls, idempotent by call id: a call already scheduled or due moves to its
    /// new due time; one that is leased, dead or waiting for reconcile is left alone (the
    /// returned code says which). Jobs are grouped by partition, cut into chunks of
    /// `enqueue_chunk` and sent concurrently; the partition index is updated afterwards.
    pub async fn enqueue_many(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
        self.enqueue_mode(jobs, "move").await
    }

    /// Like [`enqueue_many`](Self::enqueue_many) but leaves every existing job alone
    /// (reconciliation: Redis keeps deferrals Postgres has not seen yet).
    pub async fn enqueue_missing(&self, jobs: &[NewJob]) -> Result<Vec<Option<Enqueued>>> {
        let (codes, raw) = self.enqueue_codes(jobs, "nx").await?;
        Ok(codes
            .into_iter()
            .zip(raw)
            .map(|(c, r)| (r != 5).then_some(c))
            .collect())
    }

    async fn enqueue_mode(&self, jobs: &[NewJob], mode: &str) -> Result<Vec<Enqueued>> {
        Ok(self.enqueue_codes(jobs, mode).await?.0)
    }

    async fn enqueue_codes(
        &self,
        jobs: &[NewJob],
        mode: &str,
    ) -> Result<(Vec<Enqueued>, Vec<i64>)> {
        // One entry per (partition, call): the script sees each call once. A call given
        // again in the same batch is its own repeat: in "move" mode the last due wins (as
        // if enqueued one after the other), in "nx" mode the first stays.
        let mut by_partition: BTreeMap<&Partition, Vec<usize>> = BTreeMap::new();
        let mut seen: HashMap<(&Partition, CallId), (usize, usize)> = HashMap::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new(); // (occurrence, first occurrence)
        for (i, j) in jobs.iter().enumerate() {
            let list = by_partition.entry(&j.partition).or_default();
            match seen.entry((&j.partition, j.call)) {
                Entry::Vacant(v) => {
                    v.insert((i, list.len()));
                    list.push(i);
                }
                Entry::Occupied(o) => {
                    let (first, slot) = *o.get();
                    repeats.push((i, first));
                    if mode != "nx" {
                        list[slot] = i;
                    }
                }
            }
        }
        let mut chunks = Vec::new();
        for (p, idx) in &by_partition {
            for c in idx.chunks(self.config.enqueue_chunk) {
                // the script inserts runs of jobs per slab: send each chunk in due order
                let mut c = c.to_vec();
                c.sort_by_key(|&i| jobs[i].due);
                chunks.push(((*p).clone(), c));
            }
        }
        let results: Vec<Result<(Vec<usize>, Vec<i64>)>> = stream::iter(chunks)
            .map(|(p, idx)| {
                async move {
                    let mut args = Vec::with_capacity(1 + idx.len());
                    let mut keys = Vec::with_capacity(idx.len());
                    args.push(mode.as_bytes().to_vec());
                    for &i in &idx {
                        let j = &jobs[i];
                        let bucket = bucket_of(j.customer.as_str(), self.config.buckets);
                        let mut member = Vec::with_capacity(24 + j.customer.as_str().len());
                        let due = ms(j.due);
                        let due6 = &due.clamp(0, (1 << 48) - 1).to_be_bytes()[2..];
                        // the slab element: member (call id, bucket), then the due
                        member.extend_from_slice(j.call.as_uuid().as_bytes());
                        member.extend_from_slice(&bucket.to_be_bytes());
                        member.extend_from_slice(due6);
                        // then the customer reference: the table row is the due onwards
                        member.extend_from_slice(j.customer.as_str().as_bytes());
                        args.push(member);
                        keys.push(self.keys.table(&p, bucket));
                    }
                    let v = self
                        .eval_keys("enqueue", &SCRIPTS.enqueue, &p, &keys, &args)
                        .await?;
                    // (position from 1, code) for every job not newly scheduled
                    let pairs: Vec<i64> = array(&v).iter().filter_map(int).collect();
                    let mut codes = vec![0i64; idx.len()];
                    for pair in pairs.chunks(2) {
                        let &[at, code] = pair else {
                            return Err(Error::Reply {
                                script: "enqueue",
                                what: "odd number of values".into(),
                            });
                        };
                        let slot = usize::try_from(at - 1)
                            .ok()
                            .and_then(|k| codes.get_mut(k))
                            .ok_or_else(|| Error::Reply {
                                script: "enqueue",
                                what: format!("position {at} of {} jobs", idx.len()),
                            })?;
                        *slot = code;
                    }
                    Ok((idx, codes))
                }
                .boxed()
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let mut raw = vec![0i64; jobs.len()];
        for r in results {
            let (idx, codes) = r?;
            for (i, c) in idx.into_iter().zip(codes) {
                raw[i] = c;
            }
        }
        // The code the script gave for a repeated call belongs to its first occurrence;
        // the later ones found the job it created or moved ("moved" in "move" mode,
        // "exists" in "nx" mode) or the same leased, dead or reconcile state.
        if !repeats.is_empty() {
            let sent: HashMap<usize, i64> = repeats
                .iter()
                .map(|&(_, first)| {
                    let j = &jobs[first];
                    let (_, slot) = seen[&(&j.partition, j.call)];
                    (first, raw[by_partition[&j.partition][slot]])
                })
                .collect();
            for (&first, &c) in &sent {
                raw[first] = c;
            }
            for &(i, first) in &repeats {
                raw[i] = match sent[&first] {
                    0 | 1 if mode == "nx" => 5,
                    0 | 1 => 1,
                    c => c,
                };
            }
        }
        // Wake each partition no later than its earliest due (also for jobs that already
        // existed: this is what repairs a lost index entry during reconciliation).
        let mut wake: BTreeMap<&Partition, i64> = BTreeMap::new();
        for j in jobs {
            let w = wake.entry(&j.partition).or_insert(i64::MAX);
            *w = (*w).min(ms(j.due));
        }
        let wake: Vec<(String, i64)> = wake.into_iter().map(|(p, w)| (p.to_string(), w)).collect();
        self.wake_partitions(&wake).await?;
        let codes = raw
            .iter()
            .map(|&c| match c {
                0 => Enqueued::Scheduled,
                2 => Enqueued::Leased,
                3 => Enqueued::Dead,
                4 => Enqueued::Reconcile,
                _ => Enqueued::Moved,
            })
            .collect();
        Ok((codes, raw))
    }

    /// Lowers each partition's wake time in the index to at most the given instant, and
    /// registers partitions this process has not registered yet.
    pub(crate) async fn wake_partitions(&self, wake: &[(String, i64)]) -> Result<()> {
        if wake.is_empty() {
            return Ok(());
        }
        let fresh: Vec<String> = {
            let reg = self.registered.lock().unwrap_or_else(|e| e.into_inner());
            wake.iter()
                .filter(|(p, _)| !reg.iter().any(|r| r.as_str() == p))
                .map(|(p, _)| p.clone())
                .collect()
        };
        let index = self.keys.index();
        let known = self.keys.known();
        self.conn
            .run("wake", |mut c| {
                let mut pipe = redis::pipe();
                for (p, w) in wake {
                    pipe.cmd("ZADD")
                        .arg(&index)
                        .arg("LT")
                        .arg(*w)
                        .arg(p)
                        .ignore();
                }
                if !fresh.is_empty() {
                    pipe.cmd("SADD").arg(&known).arg(&fresh).ignore();
                }
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .await?;
        let mut reg = self.registered.lock().unwrap_or_else(|e| e.into_inner());
        for p in fresh {
            if let Ok(p) = Partition::new(&p) {
                reg.insert(p);
            }
        }
        Ok(())
    }
}
