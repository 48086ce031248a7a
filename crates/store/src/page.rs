//! Cursor pages by `seq` that never skip a row whose insert was still in flight.
//!
//! Writers take the list's advisory lock in shared mode for their transaction; a page read
//! takes it exclusively for its one query: the page then sees every row numbered below any
//! row it returns, and rows inserted after it get higher numbers.

use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{PgPool, Postgres};

use crate::company::CompanyId;
use crate::{Error, Result};

/// Runs `query` (ordered by `seq`, with `LIMIT limit + 1`) under the exclusive lock
/// `(lock, company)` and returns up to `limit` rows as `T` and the cursor of the next page
/// (`None` on the last one).
pub(crate) async fn read<'q, R, T>(
    pool: &PgPool,
    lock: i32,
    company: CompanyId,
    query: QueryAs<'q, Postgres, R, PgArguments>,
    limit: u32,
    seq: fn(&R) -> i64,
) -> Result<(Vec<T>, Option<i64>)>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: TryFrom<R, Error = Error>,
{
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(lock)
        .bind(company.as_uuid())
        .execute(&mut *tx)
        .await?;
    let mut rows = query.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(seq)
    } else {
        None
    };
    let items = rows.into_iter().map(T::try_from).collect::<Result<_>>()?;
    Ok((items, next))
}
