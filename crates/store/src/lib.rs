//! outdial's Postgres system of record: companies (tenants), their API keys, customers and
//! their loans, schedules, scheduled calls with their decision trails, call attempts and
//! stored idempotency keys.
//!
//! [`Store`] wraps a `PgPool` and owns every query; callers pass `now` from their `Clock`
//! (SQL never calls `now()`) and a [`CompanyId`] on every customer read or write, so one
//! tenant can never reach another's rows. The schema lives in `../../migrations`, embedded
//! as [`MIGRATOR`]. This crate depends on `outdial-domain` for its types and must not depend
//! on the queue, dialer, worker, API or CLI crates.

mod admin;
mod api_key;
mod call_attempt;
mod claim;
mod company;
mod customer;
mod dispatch;
mod error;
mod group;
mod idempotency;
mod import;
mod lms;
mod outbox;
mod page;
mod pending;
mod plan;
mod provider_event;
mod result;
mod schedule;
mod schedule_plan;
mod scheduled_call;

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub use admin::{AdminAction, AttemptView, Pause, Readiness, WebhookBacklog};
pub use api_key::ApiKey;
pub use call_attempt::{CallRecord, MAX_ATTEMPT_PAGE, NewAttempt};
pub use claim::{CallContext, ClaimedCall};
pub use company::{Company, CompanyId, DEMO_COMPANY};
pub use customer::{CustomerFilter, CustomerPatch, MAX_PAGE};
pub use dispatch::{Applied, CallResult, DialIntent, LeaseToken};
pub use error::{Error, Result};
pub use idempotency::{Idempotent, KEY_RETENTION_HOURS};
pub use import::{
    ImportChunk, ImportCounts, ImportJob, ImportStatus, MAX_ERROR_PAGE, MAX_IMPORT_ROWS, Outcome,
    RowError, RowOutcome, Stored,
};
pub use lms::{LmsSettings, LoanRecord, NewLoan, SyncNote};
pub use outbox::{Delivery, DeliveryState};
pub use outdial_domain::follow_up::FollowUp;
pub use pending::PendingCall;
pub use provider_event::ProviderEvent;
pub use schedule::{CreatedSchedule, NewSchedule};
pub use scheduled_call::{CallFilter, Cancellation, InFlight, MAX_CALL_PAGE, ScheduledCallRecord};

/// The schema migrations in `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Handle to the Postgres system of record. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    groups: Arc<Groups>,
    /// Set by [`Store::delivering_webhooks`]: results write their webhook event due only
    /// after this long and hand it back for the caller to deliver at once.
    held_webhooks: Option<chrono::Duration>,
    /// Set by [`Store::storing_ahead`]: a new schedule stores as rows only the calls due
    /// within this long (`None`: all of them).
    store_ahead: Option<chrono::Duration>,
}

/// The grouped writes of one pool (`group.rs`).
#[derive(Debug)]
struct Groups {
    claims: group::Group<claim::ClaimItem, Vec<ClaimedCall>>,
    results: group::Group<result::ResultItem, Applied>,
    intents: group::Group<Vec<dispatch::IntentRow>, HashMap<outdial_domain::CallId, uuid::Uuid>>,
    delivered: group::Group<(uuid::Uuid, chrono::DateTime<chrono::Utc>), ()>,
}

impl Groups {
    fn new() -> Arc<Groups> {
        Arc::new(Groups {
            claims: group::Group::new(2, 128, claim::write_claims),
            results: group::Group::new(4, 64, result::write_results),
            intents: group::Group::new(2, 64, dispatch::write_intents),
            delivered: group::Group::new(1, 128, outbox::write_delivered),
        })
    }
}

impl Store {
    /// Connects a pool to `url` (`postgres://user@host:port/db`).
    pub async fn connect(url: &str) -> Result<Store> {
        let pool = PgPoolOptions::new().connect(url).await?;
        Ok(Store {
            pool,
            groups: Groups::new(),
            held_webhooks: None,
            store_ahead: None,
        })
    }

    /// Connects a pool of at most `max_connections` to `url`, without the per-acquire ping
    /// (a broken connection fails its query instead, and callers retry).
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
            .connect(url)
            .await?;
        Ok(Store {
            pool,
            groups: Groups::new(),
            held_webhooks: None,
            store_ahead: None,
        })
    }

    /// Wraps an existing pool (tests, or a binary that tunes its own pool).
    pub fn new(pool: PgPool) -> Store {
        Store {
            pool,
            groups: Groups::new(),
            held_webhooks: None,
            store_ahead: None,
        }
    }

    /// A handle on the same pool whose [`Store::record_result`] writes the webhook event
    /// due only `hold` later and returns it ([`Applied::delivery`]) for the caller to
    /// deliver at once (then [`Store::delivered`]): no outbox poll and no claim per event.
    /// Should the caller die before recording the delivery, the event falls due after
    /// `hold` and any worker's outbox poll delivers it: never lost, at worst late.
    pub fn delivering_webhooks(&self, hold: chrono::Duration) -> Store {
        Store {
            held_webhooks: Some(hold),
            ..self.clone()
        }
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the cluster runs autovacuum (without it, statistics and cached plans go
    /// stale as tables grow).
    pub async fn autovacuum(&self) -> Result<bool> {
        let (setting,): (String,) = sqlx::query_as("SHOW autovacuum")
            .fetch_one(&self.pool)
            .await?;
        Ok(setting != "off")
    }

    /// Applies every pending migration in [`MIGRATOR`].
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}
