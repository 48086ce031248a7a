//! Every Redis key name the queue uses, derived from one namespace.
//!
//! A partition's keys all start with `<namespace>:{<partition>}:`: the braces are Redis
//! Cluster's hash tag, so every key of one partition (and so every key one script touches)
//! lives in one slot. The partition index, `<namespace>:parts`, and the registry of known
//! partitions, `<namespace>:known`, have no tag and live in their own slots; they are only
//! ever written by single commands, never inside a partition script.

use std::fmt;

use crate::{Error, Result};

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// A queue partition: one company or rate group. Fairness, throttling and the live-call
/// cap apply per partition. 1 to 64 characters of `[A-Za-z0-9_.:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition(String);

impl Partition {
    /// Checks and wraps a partition name.
    pub fn new(name: &str) -> Result<Self> {
        if valid_name(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(Error::InvalidPartition(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Key names of one queue namespace (`outdial` in production, `t:<uuid>` in tests).
#[derive(Debug, Clone)]
pub struct Keys {
    namespace: String,
}

impl Keys {
    /// Keys under `namespace` (1 to 64 characters of `[A-Za-z0-9_.:-]`, no braces).
    pub fn new(namespace: &str) -> Result<Self> {
        if valid_name(namespace) {
            Ok(Self {
                namespace: namespace.to_owned(),
            })
        } else {
            Err(Error::InvalidNamespace(namespace.to_owned()))
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The prefix shared by every key of `p`, hash tag included.
    pub fn partition_prefix(&self, p: &Partition) -> String {
        format!("{}:{{{}}}:", self.namespace, p.0)
    }

    /// The partition's meta hash: KEYS\[1\] of every script (the others derive from it).
    pub fn meta(&self, p: &Partition) -> String {
        format!("{}meta", self.partition_prefix(p))
    }

    /// One table bucket of `p`.
    pub fn table(&self, p: &Partition, bucket: u16) -> String {
        format!("{}t:{bucket}", self.partition_prefix(p))
    }

    /// The partition index: partition -> earliest instant (ms) it may have work.
    pub fn index(&self) -> String {
        format!("{}:parts", self.namespace)
    }

    /// The fleet's claim rotation: a counter every claim advances by the partitions it
    /// visits, so that claimers in any number of processes take due partitions in turn.
    pub fn rotation(&self) -> String {
        format!("{}:rotation", self.namespace)
    }

    /// Every partition ever enqueued to (used to repair the index).
    pub fn known(&self) -> String {
        format!("{}:known", self.namespace)
    }

    /// The turn of a fleet-wide periodic task (`reconcile`): held by one process at a time.
    pub fn turn(&self, task: &str) -> String {
        format!("{}:turn:{task}", self.namespace)
    }

    /// A `SCAN MATCH` pattern for every key of this namespace.
    pub fn pattern(&self) -> String {
        format!("{}:*", self.namespace)
    }
}

/// The table bucket of a customer: FNV-1a (64 bit) of the reference, modulo `buckets`.
/// Stable across releases: it is part of the stored layout.
pub fn bucket_of(customer: &str, buckets: u32) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in customer.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // `buckets` is at most 65,536, so the remainder fits in u16.
    u16::try_from(h % u64::from(buckets.max(1))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_share_one_hash_tag() {
        let k = Keys::new("t:abc").unwrap();
        let p = Partition::new("acme").unwrap();
        assert_eq!(k.meta(&p), "t:abc:{acme}:meta");
        assert_eq!(k.table(&p, 7), "t:abc:{acme}:t:7");
        assert_eq!(k.index(), "t:abc:parts");
    }

    #[test]
    fn names_with_braces_are_refused() {
        assert!(Partition::new("a{b}").is_err());
        assert!(Partition::new("").is_err());
        assert!(Keys::new("x}").is_err());
    }

    #[test]
    fn buckets_are_stable_and_in_range() {
        assert_eq!(bucket_of("cust-1", 16_384), bucket_of("cust-1", 16_384));
        for i in 0..1000 {
            assert!(u32::from(bucket_of(&format!("c{i}"), 64)) < 64);
        }
    }
}
