//! Read-only inspection: counts, pages, one job, the partitions, the next wake-up.

use chrono::{DateTime, Utc};

use crate::job::{JobRef, State};
use crate::keys::Partition;
use crate::queue::{Queue, at, ms};
use crate::reply::{array, bytes, int, text};
use crate::scripts::SCRIPTS;
use crate::{Error, Result};

/// Counts of one partition, each read in O(1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Jobs waiting for their due time (some may be due but not yet promoted).
    pub scheduled: u64,
    /// Due jobs promoted and waiting for a claimer.
    pub due: u64,
    /// Jobs leased by workers.
    pub leased: u64,
    /// Jobs waiting for reconcile.
    pub reconcile: u64,
    /// Dead jobs.
    pub dead: u64,
    /// Jobs with at least one attempt consumed.
    pub retrying: u64,
    /// No claims before this instant.
    pub throttled_until: Option<DateTime<Utc>>,
    /// The most jobs leased at once.
    pub cap: Option<u64>,
    /// The earliest due time among scheduled and due jobs.
    pub oldest_due: Option<DateTime<Utc>>,
    /// Jobs handed back at least once without an attempt (fire-time policy, rate, cap,
    /// pause) and not finished yet; they are also counted in their current state.
    pub deferred: u64,
    /// Dials marked in the last 60-70 s (10 s buckets).
    pub dials_last_minute: u64,
    /// How late the earliest due job is at `now` (zero when none is due).
    pub lateness: chrono::Duration,
}

/// One listed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Which job.
    pub job: JobRef,
    /// Due time (scheduled, due), lease expiry (leased) or entry time (reconcile, dead).
    pub at: DateTime<Utc>,
}

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    score: i64,
    member: Vec<u8>,
}

impl Cursor {
    /// The cursor as text (`<score>.<member hex>`), for a command line or a URL.
    pub fn encode(&self) -> String {
        let hex: String = self.member.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}.{hex}", self.score)
    }

    /// Parses [`Cursor::encode`]'s text; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Cursor> {
        let (score, hex) = text.split_once('.')?;
        if hex.len() % 2 != 0 || hex.len() > 64 {
            return None;
        }
        let member = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Cursor {
            score: score.parse().ok()?,
            member,
        })
    }
}

/// Where the next page of [`Queue::scheduled_members`] starts: a slab (its bound and id)
/// and an offset in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabCursor {
    bound: String,
    slab: String,
    offset: u64,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The jobs, in order.
    pub items: Vec<Listed>,
    /// The next page's start, `None` at the end.
    pub next: Option<Cursor>,
}

/// Everything the queue knows about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    /// Its state.
    pub state: State,
    /// Its due time (the original one while leased).
    pub due: DateTime<Utc>,
    /// The customer reference.
    pub customer: String,
    /// Attempts consumed.
    pub attempts_used: u32,
    /// While leased: the fencing token, the attempt number, the lease expiry, whether dial
    /// intent was marked and whether it was cancelled in flight.
    pub lease: Option<LeaseView>,
    /// Dead or reconcile: why, and since when.
    pub reason: Option<(String, DateTime<Utc>)>,
}

/// A job's current lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// Fencing token.
    pub token: u64,
    /// Attempt number.
    pub attempt: u32,
    /// Lease expiry.
    pub until: DateTime<Utc>,
    /// Dial intent recorded.
    pub dialing: bool,
    /// Cancelled while leased.
    pub cancelled: bool,
}

/// The most items one page may hold.
pub const MAX_PAGE: usize = 1000;

impl Queue {
    /// Counts of one partition (one read-only script, O(1)).
    pub async fn stats(&self, partition: &Partition, now: DateTime<Utc>) -> Result<Stats> {
        let v = self
            .eval(
                "stats",
                &SCRIPTS.stats,
                partition,
                &[ms(now).to_string().into_bytes()],
            )
            .await?;
        let a: Vec<i64> = array(&v).iter().map(|x| int(x).unwrap_or(0)).collect();
        let [
            scheduled,
            due,
            leased,
            reconcile,
            dead,
            retrying,
            throttle,
            cap,
            oldest,
            deferred,
            dials,
        ] = a[..]
        else {
            return Err(Error::Reply {
                script: "stats",
                what: format!("{} values", a.len()),
            });
        };
        let u = |x: i64| u64::try_from(x).unwrap_or(0);
        let now_ms = ms(now);
        Ok(Stats {
            scheduled: u(scheduled),
            due: u(due),
            leased: u(leased),
            reconcile: u(reconcile),
            dead: u(dead),
            retrying: u(retrying),
            throttled_until: (throttle > now_ms).then(|| at(throttle)),
            cap: (cap > 0).then(|| u(cap)),
            oldest_due: (oldest >= 0).then(|| at(oldest)),
            deferred: u(deferred),
            dials_last_minute: u(dials),
            lateness: chrono::Duration::milliseconds(if oldest >= 0 {
                (now_ms - oldest).max(0)
            } else {
                0
            }),
        })
    }

    /// One page of jobs in `state`, in order (due time for scheduled and due). `limit` is
    /// capped at [`MAX_PAGE`].
    pub async fn list(
        &self,
        partition: &Partition,
        state: State,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page> {
        let limit = limit.clamp(1, MAX_PAGE);
        let (cs, cm) = match cursor {
            Some(c) => (c.score.to_string().into_bytes(), c.member.clone()),
            None => (Vec::new(), Vec::new()),
        };
        let args = [
            state.as_str().as_bytes().to_vec(),
            cs,
            cm,
            limit.to_string().into_bytes(),
        ];
        let v = self.eval("list", &SCRIPTS.list, partition, &args).await?;
        let a = array(&v);
        let mut items = Vec::with_capacity(a.len() / 2);
        let mut last = None;
        for pair in a.chunks(2) {
            let [m, s] = pair else { break };
            let (Some(m), Some(s)) = (
                bytes(m),
                int(s).or_else(|| text(s)?.parse::<f64>().ok().map(|f| f as i64)),
            ) else {
                continue;
            };
            if let Some(job) = JobRef::from_member(partition, m) {
                items.push(Listed { job, at: at(s) });
                last = Some(Cursor {
                    score: s,
                    member: m.to_vec(),
                });
            }
        }
        let next = if items.len() >= limit { last } else { None };
        Ok(Page { items, next })
    }

    /// One page of the jobs `partition` holds in its scheduled slabs, in no order, from
    /// `cursor` (`None`: the first page); the cursor of the next page is `None` at the end.
    /// For passes over every job ([`Queue::reconcile`]): each page costs its own length,
    /// where [`Queue::list`] sorts the slabs it reads from. A slab changed between two pages
    /// can make a pass skip or repeat a few jobs.
    pub async fn scheduled_members(
        &self,
        partition: &Partition,
        cursor: Option<&SlabCursor>,
        limit: usize,
    ) -> Result<(Vec<JobRef>, Option<SlabCursor>)> {
        let limit = limit.clamp(1, MAX_PAGE);
        let (bound, slab, offset) = match cursor {
            Some(c) => (c.bound.clone(), c.slab.clone(), c.offset),
            None => (String::new(), String::new(), 0),
        };
        let args = [
            bound.into_bytes(),
            slab.into_bytes(),
            offset.to_string().into_bytes(),
            limit.to_string().into_bytes(),
        ];
        let v = self
            .eval("members", &SCRIPTS.members, partition, &args)
            .await?;
        let a = array(&v);
        let bad = || Error::Reply {
            script: "members",
            what: format!("{} values", a.len()),
        };
        let [members @ .., bound, slab, offset] = a else {
            return Err(bad());
        };
        let jobs = members
            .iter()
            .filter_map(|m| JobRef::from_member(partition, bytes(m)?))
            .collect();
        let bound = text(bound).ok_or_else(bad)?;
        let slab = text(slab).ok_or_else(bad)?;
        let offset = int(offset)
            .or_else(|| text(offset)?.parse().ok())
            .ok_or_else(bad)?;
        let next = (!bound.is_empty()).then(|| SlabCursor {
            bound,
            slab,
            offset: u64::try_from(offset).unwrap_or(0),
        });
        Ok((jobs, next))
    }

    /// Everything known about one job, `None` when the queue does not hold it.
    pub async fn show(&self, job: &JobRef) -> Result<Option<JobView>> {
        let v = self
            .eval("show", &SCRIPTS.show, &job.partition, &[job.member()])
            .await?;
        let a: Vec<String> = array(&v)
            .iter()
            .map(|x| text(x).unwrap_or_default())
            .collect();
        if a.is_empty() {
            return Ok(None);
        }
        let bad = || Error::Reply {
            script: "show",
            what: format!("{a:?}"),
        };
        let num = |s: &str| s.parse::<f64>().ok().map(|f| f as i64);
        let state = State::parse(&a[0]).ok_or_else(bad)?;
        let due = num(&a[1]).map(at).ok_or_else(bad)?;
        let lease = if state == State::Leased {
            Some(LeaseView {
                token: a[4].parse().map_err(|_| bad())?,
                attempt: a[5].parse().map_err(|_| bad())?,
                until: num(&a[7]).map(at).ok_or_else(bad)?,
                dialing: a[6].contains('d'),
                cancelled: a[6].contains('c'),
            })
        } else {
            None
        };
        let reason = match state {
            State::Dead | State::Reconcile => {
                Some((a[8].clone(), num(&a[9]).map(at).ok_or_else(bad)?))
            }
            _ => None,
        };
        Ok(Some(JobView {
            state,
            due,
            customer: a[2].clone(),
            attempts_used: a[3].parse().unwrap_or(0),
            lease,
            reason,
        }))
    }

    /// Whether Redis answers (`PING`), for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        self.conn
            .run("ping", |mut c| async move {
                redis::cmd("PING").query_async::<()>(&mut c).await
            })
            .await
    }

    /// Every partition this namespace has seen, a page at a time (`SSCAN`, bounded).
    pub async fn partitions(&self) -> Result<Vec<Partition>> {
        let known = self.keys.known();
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, names): (u64, Vec<String>) = self
                .conn
                .run("partitions", |mut c| {
                    let known = known.clone();
                    async move {
                        redis::cmd("SSCAN")
                            .arg(&known)
                            .arg(cursor)
                            .arg("COUNT")
                            .arg(500)
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            out.extend(names.iter().filter_map(|n| Partition::new(n).ok()));
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The earliest instant at which some partition may have work (from the index).
    pub async fn next_wake(&self) -> Result<Option<DateTime<Utc>>> {
        let index = self.keys.index();
        let v: Vec<(String, f64)> = self
            .conn
            .run("next_wake", |mut c| {
                let index = index.clone();
                async move {
                    redis::cmd("ZRANGE")
                        .arg(&index)
                        .arg(0)
                        .arg(0)
                        .arg("WITHSCORES")
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        Ok(v.first().map(|(_, s)| at(*s as i64)))
    }

    /// Deletes every key of this namespace (`SCAN MATCH <ns>:*` on every primary, then
    /// `UNLINK` a key per command in pipelines, which a cluster routes by slot). For tests and
    /// benchmarks; never part of a worker or admin path.
    pub async fn delete_namespace(&self) -> Result<u64> {
        let pattern = self.keys.pattern();
        let keys = self
            .conn
            .run("delete_namespace", |c| {
                let pattern = pattern.clone();
                async move { c.scan_match(&pattern).await }
            })
            .await?;
        for chunk in keys.chunks(1000) {
            self.conn
                .run("delete_namespace", |mut c| async move {
                    let mut pipe = redis::pipe();
                    for key in chunk {
                        pipe.cmd("UNLINK").arg(key).ignore();
                    }
                    pipe.query_async::<()>(&mut c).await
                })
                .await?;
        }
        let deleted = keys.len() as u64;
        self.registered_clear();
        Ok(deleted)
    }
}
