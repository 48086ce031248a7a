//! The store's one error type.

use outdial_domain::schedule::CatalogError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The row does not exist, or belongs to another company (the two are not told apart).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for (`customer`, `company`).
        what: &'static str,
    },
    /// A unique constraint refused the write: the row already exists.
    #[error("{what} already exists")]
    Conflict {
        /// What already exists, as a short phrase (`customer`, `company name`) or the name
        /// of the unique constraint when nothing more specific is known.
        what: String,
    },
    /// The customer is marked do-not-call: no call may be scheduled.
    #[error("the customer is marked do-not-call")]
    DoNotCall,
    /// The scheduled call is not pending (a worker holds it, or it is finished), so it
    /// cannot be cancelled or rescheduled.
    #[error("the scheduled call is {status}, not scheduled")]
    NotPending {
        /// Its current status.
        status: outdial_domain::CallStatus,
    },
    /// The call's lease was taken over by another worker (or the call moved on): this
    /// worker must drop it without writing.
    #[error("the call's lease is no longer held")]
    Fenced,
    /// A task-type catalog that does not parse or validate; the message names the problem.
    #[error("invalid task types: {0}")]
    TaskTypes(CatalogError),
    /// A caller-chosen API key that cannot be used.
    #[error("invalid api key: {0}")]
    InvalidApiKey(&'static str),
    /// A stored row that no longer maps to a domain value (edited by hand, or older rules).
    #[error("stored {what} has an invalid {column}")]
    Corrupt {
        /// The kind of row.
        what: &'static str,
        /// The offending column.
        column: &'static str,
    },
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Error::NotFound { what: "row" },
            sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                Error::Conflict {
                    what: db.constraint().unwrap_or("unique constraint").to_owned(),
                }
            }
            _ => Error::Database(e),
        }
    }
}

impl Error {
    /// The database could not be reached or the connection broke: trying again later may
    /// succeed. (A statement Postgres refused is not transient.)
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            )
        )
    }

    /// Renames a [`Error::Conflict`] to say what already exists; other errors pass through.
    pub(crate) fn conflict_on(self, what: &str) -> Self {
        match self {
            Error::Conflict { .. } => Error::Conflict {
                what: what.to_owned(),
            },
            other => other,
        }
    }
}
