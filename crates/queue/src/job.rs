//! Jobs and the outcomes of the queue's transitions.

use chrono::{DateTime, Utc};
use outdial_domain::{CallId, CustomerRef};

use crate::keys::Partition;

/// A call to schedule: the queue carries only the ids and the due time (Postgres holds the
/// rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The call, and the job's identity: enqueueing it again moves its due time.
    pub call: CallId,
    /// The company (or rate group) it belongs to.
    pub partition: Partition,
    /// The customer, for [`cancel_customer`](crate::Queue::cancel_customer).
    pub customer: CustomerRef,
    /// The instant before which it must not be handed out (millisecond precision).
    pub due: DateTime<Utc>,
}

/// Where a job is: its partition, call id and customer table bucket. Every per-job
/// transition takes one; [`Queue::job_ref`](crate::Queue::job_ref) builds it from the
/// customer, a claimed [`Job`] carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobRef {
    /// The partition.
    pub partition: Partition,
    /// The call.
    pub call: CallId,
    /// The customer's table bucket.
    pub bucket: u16,
}

impl JobRef {
    /// The zset member: the call id's 16 bytes then the bucket (2 bytes, big-endian).
    pub(crate) fn member(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(18);
        m.extend_from_slice(self.call.as_uuid().as_bytes());
        m.extend_from_slice(&self.bucket.to_be_bytes());
        m
    }

    pub(crate) fn from_member(partition: &Partition, m: &[u8]) -> Option<Self> {
        if m.len() != 18 {
            return None;
        }
        let id = uuid::Uuid::from_slice(&m[..16]).ok()?;
        Some(Self {
            partition: partition.clone(),
            call: CallId::from_uuid(id),
            bucket: u16::from_be_bytes([m[16], m[17]]),
        })
    }
}

/// A leased job. Only the holder of `token` may renew, mark, ack, defer or retry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Which job.
    pub job: JobRef,
    /// Its due time.
    pub due: DateTime<Utc>,
    /// The fencing token of this lease: strictly increasing per partition.
    pub token: u64,
    /// Which attempt this is, from 1 (deferrals and expired leases consume none).
    pub attempt: u32,
    /// When the lease ends unless renewed.
    pub lease_until: DateTime<Utc>,
}

/// What [`enqueue`](crate::Queue::enqueue) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job.
    Scheduled,
    /// An existing scheduled or due job, now at the new due time.
    Moved,
    /// The job is leased by a worker: left alone.
    Leased,
    /// The job is dead: left alone (re-drive it).
    Dead,
    /// The job waits for reconcile: left alone (resolve it).
    Reconcile,
}

/// What [`mark_dialing`](crate::Queue::mark_dialing) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialIntent {
    /// Marked: dial now. From here an expired lease goes to reconcile, never back to due.
    Marked,
    /// The lease is gone (expired or taken over): do not dial.
    LeaseLost,
    /// The job was cancelled while leased: do not dial.
    Cancelled,
}

/// What a holder's hand-back ([`defer`](crate::Queue::defer),
/// [`retry`](crate::Queue::retry)) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandBack {
    /// Scheduled again.
    Scheduled,
    /// The attempts are used up: the job is dead.
    Dead,
    /// The lease is gone: nothing changed.
    LeaseLost,
    /// The job had been cancelled while leased: dropped.
    Cancelled,
}

/// What [`cancel`](crate::Queue::cancel) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Removed from the queue.
    Removed,
    /// Leased by a worker: flagged, so `mark_dialing` refuses it; if it was already
    /// marked, the dial may be under way.
    InFlight,
    /// No such job.
    Unknown,
}

/// What [`cancel_customer`](crate::Queue::cancel_customer) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerCancel {
    /// Jobs removed.
    pub cancelled: Vec<CallId>,
    /// Jobs leased by a worker, flagged cancelled (see [`Cancel::InFlight`]).
    pub in_flight: Vec<CallId>,
}

/// How a job waiting for reconcile is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The call was placed and its outcome is recorded elsewhere: forget the job.
    Done,
    /// The call was not placed: schedule it at this instant.
    Requeue(DateTime<Utc>),
    /// A human must look: move it to dead with this reason.
    Dead(String),
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Waiting for its due time (or due and not yet promoted).
    Scheduled,
    /// Due and promoted: next to be claimed.
    Due,
    /// Claimed by a worker.
    Leased,
    /// Its lease expired after dial intent: someone must find out whether it was dialed.
    Reconcile,
    /// Needs a human.
    Dead,
}

impl State {
    /// Every state, in life order.
    pub const ALL: [State; 5] = [
        State::Scheduled,
        State::Due,
        State::Leased,
        State::Reconcile,
        State::Dead,
    ];

    /// The name the scripts use.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Scheduled => "scheduled",
            State::Due => "due",
            State::Leased => "leased",
            State::Reconcile => "reconcile",
            State::Dead => "dead",
        }
    }

    /// The state named `s` ([`State::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}
