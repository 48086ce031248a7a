//! Schedules: company cadences (cron in the customer's local time, explicit local times, a
//! horizon, an attempt limit, retry spacing) expanded into lawful UTC instants.

pub mod cadence;
pub mod catalog;
pub mod expand;
pub mod slots;

pub use cadence::{Cadence, CadenceDef, CadenceError, RetryDef, RetrySpacing};
pub use catalog::{Catalog, CatalogError, TaskTypeConfig};
pub use expand::{DropReason, DroppedSlot, Plan, PlannedCall, Request, expand};
pub use slots::{CronSlots, MAX_SLOTS};
