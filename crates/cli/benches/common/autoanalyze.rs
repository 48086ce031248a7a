//! Standing in for autovacuum's autoanalyze in the benches (shared by `api_load` and
//! `dispatch` through `#[path]`).
//!
//! This machine's cluster runs `autovacuum = off`. Without it, statistics stay those of the
//! nearly empty tables a bench starts from, and the plans Postgres caches per connection
//! (prepared statements, foreign-key checks) keep walking whole tables as they grow; a
//! production cluster runs autovacuum. So, while a bench runs, every 500 ms each table changed
//! by more than 50 rows + 10 % since its last analysis (autoanalyze's default thresholds) is
//! analyzed — but one table at most once per 10 s: autovacuum visits a database once per
//! `autovacuum_naptime` (1 min by default), and an `ANALYZE` every 500 ms of a growing table
//! was a fifth of Postgres's CPU in the `schedule` scenario (perf: `ExecVacuum` and the
//! `jsonb` comparisons of its sampling), a cost production does not pay.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::Connection;

/// The cluster's `autovacuum` setting (`"unknown"` when it cannot be read).
pub async fn autovacuum(database_url: &str) -> String {
    let Ok(mut conn) = sqlx::PgConnection::connect(database_url).await else {
        return "unknown".to_owned();
    };
    let setting: String = sqlx::query_scalar("SHOW autovacuum")
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|_| "unknown".to_owned());
    let _ = conn.close().await;
    setting
}

/// The shortest time between two analyses of one table.
const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// One autoanalyze round on `database_url`: `ANALYZE` each table changed by more than
/// 50 rows + 10 % since its last analysis, unless `last` says it was analyzed less than
/// [`MIN_INTERVAL`] ago.
pub async fn autoanalyze(database_url: &str, last: &mut HashMap<(String, String), Instant>) {
    let Ok(mut conn) = sqlx::PgConnection::connect(database_url).await else {
        return;
    };
    let stale: Vec<(String,)> = sqlx::query_as(
        "SELECT quote_ident(relname) FROM pg_stat_user_tables
         WHERE n_mod_since_analyze > 50 + 0.1 * n_live_tup",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    for (table,) in stale {
        let key = (database_url.to_owned(), table);
        if last.get(&key).is_some_and(|at| at.elapsed() < MIN_INTERVAL) {
            continue;
        }
        let _ = sqlx::query(&format!("ANALYZE {}", key.1))
            .execute(&mut conn)
            .await;
        last.insert(key, Instant::now());
    }
    let _ = conn.close().await;
}

/// When the cluster runs without autovacuum, a task running [`autoanalyze`] on each of
/// `urls` every 500 ms until aborted; `None` when autovacuum is on.
pub fn stand_in(autovacuum: &str, urls: Vec<String>) -> Option<tokio::task::JoinHandle<()>> {
    (autovacuum == "off").then(|| {
        tokio::spawn(async move {
            let mut last = HashMap::new();
            loop {
                for url in &urls {
                    autoanalyze(url, &mut last).await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    })
}
