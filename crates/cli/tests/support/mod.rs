//! Helpers shared by the CLI's database tests.

use std::process::Command;

/// The fewest whole hours (under two days) to shift the real clock by for `lawful` to hold,
/// for the tests and benches that dial "now": from about 10:45 to 12:00 UTC no US place is
/// inside its calling window. `None` when no such hour comes.
#[allow(dead_code)] // used by the fleet tests and the dispatch bench, not by every binary
pub fn lawful_shift(
    lawful: impl Fn(chrono::DateTime<chrono::Utc>) -> bool,
) -> Option<chrono::Duration> {
    use outdial_domain::Clock;
    let real = outdial_domain::SystemClock.now();
    (0..48)
        .map(chrono::Duration::hours)
        .find(|h| lawful(real + *h))
}

/// A scratch database on the server `DATABASE_URL` (exported by ops/test.sh) names.
pub struct ScratchDb {
    admin: String,
    name: String,
    /// The scratch database's URL.
    pub url: String,
}

impl ScratchDb {
    /// A new, empty database named after `tag`.
    pub fn new(tag: &str) -> ScratchDb {
        let admin = std::env::var("DATABASE_URL")
            .or_else(|_| std::env::var("OUTDIAL_DATABASE_URL"))
            .expect("DATABASE_URL is not set: run the tests through ops/test.sh (or `eval \"$(ops/stack.sh)\"`)");
        let nanos = std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("outdial_cli_{tag}_{}_{nanos}", std::process::id());
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        ScratchDb { admin, name, url }
    }

    /// The database's name.
    #[allow(dead_code)] // used by the api_load bench, not by every test binary
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets `name = value` for every later session on this database (`ALTER DATABASE …
    /// SET`), e.g. to turn on statement logging for one benchmark run.
    #[allow(dead_code)] // used by the api_load bench, not by every test binary
    pub fn set(&self, name: &str, value: &str) {
        let value = value.replace('\'', "''");
        psql(
            &self.admin,
            &format!("ALTER DATABASE {} SET {name} = '{value}'", self.name),
        );
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args(["-w", url, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        .output()
        .expect("psql runs (ops/stack.sh installs it)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
