//! The bulk-import crash test (issue 15): an `outdial work` process importing a 3,000-row
//! job with collections schedules is SIGKILLed mid-way; another process takes the job over
//! when the lease runs out and finishes it. Every row is imported exactly once (one
//! customer, one outcome and one schedule each), and the counts are right.

mod fleet;
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outdial_domain::Clock;
use outdial_domain::task::ScheduleType;
use outdial_store::Store;
use serde_json::json;

use fleet::Namespace;
use support::ScratchDb;

const ROWS: usize = 3000;

/// `outdial work` with the built-in simulator, 2 s import leases and 20-row chunks.
fn worker(db: &str, ns: &str, log: &std::path::Path) -> Child {
    let stderr = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_outdial"))
        .arg("work")
        .env("OUTDIAL_DATABASE_URL", db)
        .env("OUTDIAL_REDIS_URL", fleet::redis_url())
        .env("OUTDIAL_NAMESPACE", ns)
        .env("OUTDIAL_SIMULATOR", "instant")
        .env("OUTDIAL_IMPORT_LEASE_SECS", "2")
        .env("OUTDIAL_IMPORT_CHUNK", "20")
        .env("OUTDIAL_LOG", "warn")
        .env_remove("OUTDIAL_PROVIDER_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start outdial work")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_way_is_resumed_by_another_process_and_every_row_lands_once() {
    let db = ScratchDb::new("import");
    let ns = Namespace::new();
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let now = outdial_domain::SystemClock.now();
    let (company, _) = store.create_company("bulk", now).await.expect("company");
    let rows: Vec<serde_json::Value> = (0..ROWS)
        .map(|i| {
            json!({
                "id": format!("c{i:05}"), "taskType": "collections",
                "firstName": "Sam", "lastName": "Lee", "timezone": "America/New_York",
                "phoneNumber": format!("+1212555{:04}", i % 10_000),
                "streetAddress1": "1 Broadway", "city": "New York", "state": "NY",
                "zipCode": "10004"
            })
        })
        .collect();
    let job = store
        .create_import(
            company.id,
            "test",
            Some(ScheduleType::Collections),
            &rows,
            now,
        )
        .await
        .expect("job");

    let dir = std::env::temp_dir();
    let log_a = dir.join(format!("outdial-import-a-{}.log", job.simple()));
    let log_b = dir.join(format!("outdial-import-b-{}.log", job.simple()));
    let logs = || {
        format!(
            "A: {}\nB: {}",
            std::fs::read_to_string(&log_a).unwrap_or_default(),
            std::fs::read_to_string(&log_b).unwrap_or_default()
        )
    };
    let mut a = worker(&db.url, &ns.name, &log_a);
    let processed = |s: &outdial_store::ImportStatus| s.counts.processed as usize;

    // Kill A once it has imported a tenth of the rows, well before the end.
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let s = store.import_status(company.id, job).await.expect("status");
        if processed(&s) >= ROWS / 10 {
            break processed(&s);
        }
        assert!(Instant::now() < deadline, "A imported nothing:\n{}", logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    a.kill().expect("SIGKILL A");
    a.wait().expect("reap A");
    let after_kill = processed(&store.import_status(company.id, job).await.expect("status"));
    assert!(
        after_kill < ROWS,
        "A finished before it was killed ({at_kill} at the kill): the test proves nothing"
    );

    let mut b = worker(&db.url, &ns.name, &log_b);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let s = store.import_status(company.id, job).await.expect("status");
        if s.state == "done" {
            break s;
        }
        assert!(Instant::now() < deadline, "not resumed: {s:?}\n{}", logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = b.kill();
    let _ = b.wait();

    assert_eq!(status.attempts, 2, "taken once by A, once by B: {status:?}");
    assert_eq!(status.counts.processed as usize, ROWS, "{status:?}");
    assert_eq!(status.counts.created as usize, ROWS, "{status:?}");
    assert_eq!(status.counts.scheduled as usize, ROWS, "{status:?}");
    assert_eq!(status.counts.rejected, 0, "{status:?}\n{}", logs());
    let pool = store.pool();
    let customers: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(pool)
        .await
        .expect("count");
    assert_eq!(customers as usize, ROWS);
    // A row imported twice would have replaced its schedule: every customer has exactly one
    // schedule ever, and every schedule's calls were stored once.
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT customer_id FROM schedules
                                GROUP BY customer_id HAVING count(*) > 1) t",
    )
    .fetch_one(pool)
    .await
    .expect("count");
    assert_eq!(twice, 0, "a customer was scheduled twice");
    let schedules: i64 = sqlx::query_scalar("SELECT count(*) FROM schedules WHERE active")
        .fetch_one(pool)
        .await
        .expect("count");
    assert_eq!(schedules as usize, ROWS);
    let _ = std::fs::remove_file(&log_a);
    let _ = std::fs::remove_file(&log_b);
}

/// Runs `outdial import` with `args` against `db`; returns the exit code, the summary
/// (stdout) and stderr.
fn import_cli(db: &str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .arg("import")
        .args(args)
        .env("OUTDIAL_DATABASE_URL", db)
        .env_remove("OUTDIAL_REDIS_URL")
        .env("OUTDIAL_LOG", "warn")
        .output()
        .expect("run outdial import");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), summary, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outdial_import_reads_a_csv_names_each_rejected_row_and_a_rerun_creates_nothing() {
    let db = ScratchDb::new("import_cli");
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let now = outdial_domain::SystemClock.now();
    store.create_company("bulk", now).await.expect("company");
    let dir = std::env::temp_dir().join(format!("outdial-import-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let csv = dir.join("customers.csv");
    let mut text = String::from(
        "id,taskType,firstName,lastName,timezone,phoneNumber,streetAddress1,city,state,\
         zipCode,doNotCall,loanIds,externalMetadata\n",
    );
    for i in 0..25 {
        let phone = if i == 7 {
            "555".to_owned()
        } else {
            format!("+1212555{i:04}")
        };
        let state = if i == 19 { "ZZ" } else { "NY" };
        text.push_str(&format!(
            "c{i},collections,Sam,Lee,America/New_York,{phone},1 Broadway,New York,{state},\
             10004,{},1;2,\"{{\"\"branch\"\": {i}}}\"\n",
            if i == 3 { "yes" } else { "" }
        ));
    }
    std::fs::write(&csv, text).expect("write csv");
    let errors = dir.join("errors.ndjson");
    let (csv, errors_path) = (csv.to_str().unwrap(), errors.to_str().unwrap());

    // A dry run checks every row and stores nothing.
    let (code, summary, stderr) = import_cli(
        &db.url,
        &[
            csv,
            "--company",
            "bulk",
            "--schedule",
            "collections",
            "--dry-run",
        ],
    );
    assert_eq!(code, 2, "{summary} {stderr}");
    assert_eq!(summary["rows"], 25, "{summary}");
    assert_eq!(summary["valid"], 23, "{summary}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(stored, 0, "a dry run stores nothing");

    let args = [
        csv,
        "--company",
        "bulk",
        "--schedule",
        "collections",
        "--batch-size",
        "10",
        "--errors-out",
        errors_path,
    ];
    let (code, summary, stderr) = import_cli(&db.url, &args);
    assert_eq!(code, 2, "rows were rejected: {summary} {stderr}");
    assert_eq!(summary["created"], 23, "{summary} {stderr}");
    // c3 is doNotCall: stored, not scheduled.
    assert_eq!(summary["scheduled"], 22, "{summary}");
    assert_eq!(summary["rejected"], 2, "{summary}");
    assert!(
        stderr.contains("row 7 (line 9, customer c7): phoneNumber:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("row 19 (line 21, customer c19): state:"),
        "{stderr}"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&errors)
        .expect("errors file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["row"], 19);
    assert_eq!(lines[1]["line"], 21);
    assert_eq!(lines[1]["customerId"], "c19");
    assert_eq!(lines[1]["error"]["fields"][0]["field"], "state");
    let c0 = store.customer(store.company_named("bulk").await.expect("company").id, "c0");
    let c0 = c0.await.expect("c0 stored");
    assert_eq!(c0.loan_ids, [1, 2]);
    assert_eq!(c0.external_metadata["branch"], 0);

    // The same file again: nothing new.
    let (code, summary, stderr) = import_cli(&db.url, &args);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(summary["created"], 0, "{summary}");
    assert_eq!(summary["unchanged"], 23, "{summary}");
    assert_eq!(summary["scheduled"], 0, "{summary}");

    // A column that is not a field stops the import before anything is read.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "id,phone\nc1,+12125550100\n").expect("write");
    let (code, _, stderr) = import_cli(&db.url, &[bad.to_str().unwrap(), "--company", "bulk"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("\"phone\" is not a customer field"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
