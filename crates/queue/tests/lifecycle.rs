//! Transitions of single jobs: enqueue, claim, leases, dial intent, defer, retry, dead,
//! re-drive, cancel; inspection; fairness between partitions.

mod support;

include!("cases/lifecycle.rs");
