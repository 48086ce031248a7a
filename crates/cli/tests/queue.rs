//! `outdial queue …` (issue 14): the real binary against a fresh database and a Redis
//! namespace of the test's own, with calls scheduled through the store and enqueued as the
//! API does. Stats and listings match what was seeded, a listing's pages are complete,
//! `show` tells a call's whole life (row, queue state, trail with rule ids, admin actions),
//! destructive commands ask first (and do nothing when not told yes), and every write is
//! recorded with the CLI's actor (`cli:$USER`) and shown by `queue show`.

mod fleet;
mod support;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use outdial_domain::policy::{Decision, Ruleset};
use outdial_domain::schedule::{Cadence, Plan, PlannedCall};
use outdial_domain::task::{Purpose, ScheduleType};
use outdial_domain::{CallId, Clock, CustomerRef};
use outdial_queue::Partition;
use outdial_store::{CompanyId, NewSchedule, Store};
use serde_json::Value;

use fleet::{Namespace, lawful_location};
use support::ScratchDb;

/// The user the CLI records as its actor (`cli:$USER`).
const USER: &str = "tester";

/// A call's id and its customer's id.
type Call = (uuid::Uuid, String);

/// A database and namespace with two companies' calls, all in the queue's `scheduled`
/// state: acme's first four due now, its fifth moved by the calling rules (its trail names
/// them), zeta's three due now.
struct Seeded {
    db: ScratchDb,
    ns: Namespace,
    store: Store,
    acme: (CompanyId, Vec<Call>),
    zeta: (CompanyId, Vec<Call>),
    /// The rule ids that moved acme's fifth call.
    moved_by: Vec<String>,
}

async fn seeded() -> Seeded {
    let db = ScratchDb::new("queue");
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let rules = Ruleset::bundled().expect("rules");
    let place = lawful_location(&rules);
    let ns = Namespace::new();
    let now = fleet::clock().now();

    let acme = fleet::company(&store, "acme", 10, 10).await;
    let mut acme_calls = fleet::seed(&store, acme, &place, 0, 4).await;
    ns.enqueue(acme, &acme_calls, now).await;
    let (moved, due, moved_by) = moved_call(&store, &rules, acme, &place, 50).await;
    ns.enqueue(acme, std::slice::from_ref(&moved), due).await;
    acme_calls.push(moved);

    let zeta = fleet::company(&store, "zeta", 10, 10).await;
    let zeta_calls = fleet::seed(&store, zeta, &place, 100, 3).await;
    ns.enqueue(zeta, &zeta_calls, now).await;
    Seeded {
        db,
        ns,
        store,
        acme: (acme, acme_calls),
        zeta: (zeta, zeta_calls),
        moved_by,
    }
}

/// Customer `i` of `company` at `place` with one collections call planned at the first
/// instant a whole number of hours from now that the rules forbid, moved to the next
/// lawful instant (as the planner does). Returns the call, its due time and the ids of the
/// rules that moved it.
async fn moved_call(
    store: &Store,
    rules: &Ruleset,
    company: CompanyId,
    place: &Value,
    i: usize,
) -> (Call, chrono::DateTime<chrono::Utc>, Vec<String>) {
    let now = fleet::clock().now();
    let c = fleet::customer(place, i);
    let policy = rules.prepare(&c.candidates(), Purpose::Collection);
    let (slot, blocks, at) = (1..48)
        .map(|h| now + chrono::Duration::hours(h))
        .find_map(|slot| match policy.decide(slot, &c.subject(), &[]) {
            Decision::Deny {
                blocks,
                next_allowed: Some(at),
                ..
            } => Some((slot, blocks, at)),
            _ => None,
        })
        .expect("some hour of the next two days is outside the calling window");
    let moved_by = blocks.iter().map(|b| b.rule.to_string()).collect();
    store
        .insert_customer(company, &c, now)
        .await
        .expect("customer");
    let plan = Plan {
        calls: vec![PlannedCall {
            at,
            local: at.with_timezone(&c.timezone).naive_local(),
            slot,
            moved_by: blocks,
        }],
        dropped: vec![],
    };
    let id: CustomerRef = c.id.clone();
    let created = store
        .create_schedule(
            company,
            &NewSchedule {
                customer_id: &id,
                schedule_type: ScheduleType::Collections,
                task_type: "collections",
                loan_id: c.loan_id.as_deref(),
                cadence: &Cadence::default_def(ScheduleType::Collections).expect("cadence"),
                ruleset: "test",
                zone: c.timezone,
                plan: &plan,
            },
            now,
        )
        .await
        .expect("schedule");
    let call = (*created.calls[0].id.as_uuid(), id.as_str().to_owned());
    (call, at, moved_by)
}

impl Seeded {
    /// Runs `outdial queue <args>` with `stdin` as its input (`None`: no input at all, as
    /// from a script: not a terminal, end of input at once).
    fn queue(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_outdial"))
            .arg("queue")
            .args(args)
            .env("OUTDIAL_DATABASE_URL", &self.db.url)
            .env("OUTDIAL_REDIS_URL", fleet::redis_url())
            .env("OUTDIAL_NAMESPACE", &self.ns.name)
            .env("OUTDIAL_CLOCK_OFFSET_SECS", fleet::offset_secs())
            .env("OUTDIAL_LOG", "warn")
            .env("USER", USER)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run outdial queue");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("answer");
        }
        child.wait_with_output().expect("outdial queue ends")
    }

    /// Runs `outdial queue <args>` writing into a pipe nobody reads (`| true`); its exit.
    fn run_into_closed_pipe(&self, args: &[&str]) -> Output {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        Command::new(env!("CARGO_BIN_EXE_outdial"))
            .arg("queue")
            .args(args)
            .env("OUTDIAL_DATABASE_URL", &self.db.url)
            .env("OUTDIAL_REDIS_URL", fleet::redis_url())
            .env("OUTDIAL_NAMESPACE", &self.ns.name)
            .env("OUTDIAL_CLOCK_OFFSET_SECS", fleet::offset_secs())
            .env("OUTDIAL_LOG", "warn")
            .env("USER", USER)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run outdial queue")
    }

    /// `outdial queue <args>`, which must succeed; its stdout.
    fn text(&self, args: &[&str]) -> String {
        let out = self.queue(args, None);
        assert!(
            out.status.success(),
            "outdial queue {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// `outdial queue <args>`, which must fail; its stderr.
    fn refused(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.queue(args, stdin);
        assert!(
            !out.status.success(),
            "outdial queue {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `outdial queue <args> --json`, which must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.text(&all);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("outdial queue {args:?} printed no JSON ({e}): {text}"))
    }

    /// `queue stats --json`'s line of `company`.
    fn stats_of(&self, company: &str) -> Value {
        line(&self.json(&["stats"]), company).clone()
    }

    /// The call's status in Postgres.
    async fn status(&self, call: &Call) -> String {
        sqlx::query_scalar("SELECT status FROM scheduled_calls WHERE id = $1")
            .bind(call.0)
            .fetch_one(self.store.pool())
            .await
            .expect("the call's row")
    }

    /// Marks `call` of `company` dead in the queue (its retries exhausted), as a worker
    /// does.
    async fn kill(&self, company: CompanyId, call: &Call) {
        let partition = Partition::new(&company.to_string()).expect("partition");
        let job = self.ns.queue.job_ref(
            &partition,
            CallId::from_uuid(call.0),
            &call.1.parse().expect("customer"),
        );
        assert!(
            self.ns
                .queue
                .dead(&job, fleet::clock().now(), "test: exhausted")
                .await
                .expect("dead"),
            "{} was not queued",
            call.0
        );
    }
}

fn line<'a>(stats: &'a Value, company: &str) -> &'a Value {
    stats["companies"]
        .as_array()
        .expect("companies")
        .iter()
        .find(|c| c["company"] == company)
        .unwrap_or_else(|| panic!("{company} is not in {stats}"))
}

fn ids(calls: &[Call]) -> HashSet<String> {
    calls.iter().map(|(id, _)| id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_each_company_s_calls_and_the_total_and_the_table_is_plain_off_a_terminal() {
    let s = seeded().await;

    let stats = s.json(&["stats"]);
    let acme = line(&stats, "acme");
    assert_eq!(acme["scheduled"], 5, "{stats}");
    assert_eq!(acme["companyId"], s.acme.0.to_string(), "{stats}");
    assert_eq!(acme["paused"], false, "{stats}");
    assert_eq!(line(&stats, "zeta")["scheduled"], 3, "{stats}");
    assert_eq!(stats["total"]["company"], "total", "{stats}");
    assert_eq!(stats["total"]["scheduled"], 8, "{stats}");
    for state in ["due", "inFlight", "reconcile", "dead"] {
        assert_eq!(stats["total"][state], 0, "{state}: {stats}");
    }

    let only = s.json(&["stats", "--company", "zeta"]);
    let names: Vec<&Value> = only["companies"]
        .as_array()
        .expect("companies")
        .iter()
        .map(|c| &c["company"])
        .collect();
    assert_eq!(names, ["zeta"], "{only}");
    assert_eq!(only["total"]["scheduled"], 3, "the total is zeta's: {only}");
    let unknown = s.refused(&["stats", "--company", "nobody"], None);
    assert!(unknown.contains("nobody"), "{unknown}");

    // Stdout is a pipe here, not a terminal: a plain table, no colour codes.
    let table = s.text(&["stats"]);
    for name in ["company", "scheduled", "acme", "zeta", "total"] {
        assert!(table.contains(name), "{name} is not in {table}");
    }
    assert!(
        !table.contains("\x1b["),
        "colour codes off a terminal: {table:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_return_every_call_in_the_state_once_and_a_bad_state_is_named() {
    let s = seeded().await;
    let expected: HashSet<String> = ids(&s.acme.1).union(&ids(&s.zeta.1)).cloned().collect();

    // Pages of three: the third page runs from acme's last call into zeta's.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= expected.len(), "the cursor never ends: {seen:?}");
        let mut args = vec!["list", "scheduled", "--limit", "3"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = s.json(&args);
        assert_eq!(page["state"], "scheduled", "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3, "{page}");
        for item in items {
            let company = if ids(&s.acme.1).contains(item["callId"].as_str().expect("id")) {
                "acme"
            } else {
                "zeta"
            };
            assert_eq!(item["company"], company, "{item}");
            seen.push(item["callId"].as_str().expect("callId").to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), expected.len(), "a call came twice: {seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);

    let zeta = s.json(&["list", "scheduled", "--company", "zeta"]);
    let listed: HashSet<String> = zeta["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["callId"].as_str().expect("callId").to_owned())
        .collect();
    assert_eq!(listed, ids(&s.zeta.1), "{zeta}");
    assert!(zeta["nextCursor"].is_null(), "{zeta}");
    let dead = s.json(&["list", "dead"]);
    assert_eq!(dead["items"], serde_json::json!([]), "{dead}");

    // The table names the next page.
    let table = s.text(&["list", "scheduled", "--limit", "2"]);
    assert!(table.contains("next page: --cursor "), "{table}");
    assert!(!table.contains("\x1b["), "{table:?}");

    let bad = s.refused(&["list", "sleeping"], None);
    assert!(bad.contains("\"sleeping\""), "{bad}");
    let bad = s.refused(&["list", "scheduled", "--cursor", "nonsense"], None);
    assert!(bad.contains("cursor"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prints_the_row_the_queue_state_the_trail_s_rules_and_admin_actions() {
    let s = seeded().await;
    let moved = s.acme.1.last().expect("the moved call").0.to_string();
    assert!(!s.moved_by.is_empty());

    let view = s.json(&["show", &moved]);
    assert_eq!(view["company"], "acme", "{view}");
    assert_eq!(view["companyId"], s.acme.0.to_string(), "{view}");
    assert_eq!(view["call"]["id"], moved, "{view}");
    assert_eq!(view["call"]["status"], "scheduled", "{view}");
    assert_eq!(view["call"]["customerId"], "c00050", "{view}");
    assert_eq!(view["queue"]["state"], "scheduled", "{view}");
    let trail = view["call"]["decisionTrail"].as_array().expect("trail");
    let rules: Vec<&str> = trail[0]["blocks"]
        .as_array()
        .expect("the planned entry's blocks")
        .iter()
        .map(|b| b["rule"].as_str().expect("rule id"))
        .collect();
    assert_eq!(rules, s.moved_by, "{view}");
    assert_eq!(view["adminActions"], serde_json::json!([]), "{view}");

    let screen = s.text(&["show", &moved]);
    for expected in [
        moved.as_str(),
        "acme",
        "c00050",
        "scheduled",
        "decision trail",
    ] {
        assert!(screen.contains(expected), "{expected} is not in {screen}");
    }
    for rule in &s.moved_by {
        assert!(screen.contains(rule.as_str()), "{rule} is not in {screen}");
    }
    assert!(!screen.contains("\x1b["), "{screen:?}");

    // An admin action shows on both.
    s.json(&["cancel", &moved, "--yes"]);
    let view = s.json(&["show", &moved]);
    assert_eq!(view["adminActions"][0]["action"], "cancel", "{view}");
    assert_eq!(view["adminActions"][0]["actor"], "cli:tester", "{view}");
    let screen = s.text(&["show", &moved]);
    assert!(screen.contains("not in Redis"), "{screen}");
    assert!(screen.contains("cli:tester"), "{screen}");

    let unknown = uuid::Uuid::new_v4().to_string();
    let err = s.refused(&["show", &unknown], None);
    assert!(err.contains(&unknown), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_asks_first_and_only_yes_cancels_in_postgres_and_the_queue() {
    let s = seeded().await;
    let call = &s.acme.1[0];
    let id = call.0.to_string();

    // No input (not a terminal) and "n" both leave the call alone.
    for answer in [None, Some("n\n")] {
        let err = s.refused(&["cancel", &id], answer);
        assert!(err.contains("not cancelled"), "{answer:?}: {err}");
        assert_eq!(
            s.status(call).await,
            "scheduled",
            "declined with {answer:?}"
        );
        let view = s.json(&["show", &id]);
        assert_eq!(view["queue"]["state"], "scheduled", "{view}");
        assert_eq!(view["adminActions"], serde_json::json!([]), "{view}");
    }
    assert_eq!(s.stats_of("acme")["scheduled"], 5);

    let done = s.json(&["cancel", &id, "--yes"]);
    assert_eq!(done["queue"], "removed", "{done}");
    assert_eq!(s.status(call).await, "cancelled");
    let view = s.json(&["show", &id]);
    assert_eq!(view["call"]["status"], "cancelled", "{view}");
    assert!(view["queue"].is_null(), "gone from the queue: {view}");
    let actions = view["adminActions"].as_array().expect("admin actions");
    assert_eq!(actions.len(), 1, "{view}");
    assert_eq!(actions[0]["action"], "cancel", "{view}");
    assert_eq!(actions[0]["actor"], format!("cli:{USER}"), "{view}");
    assert_eq!(s.stats_of("acme")["scheduled"], 4);
    assert_eq!(s.stats_of("zeta")["scheduled"], 3);

    let again = s.refused(&["cancel", &id, "--yes"], None);
    assert!(again.contains("cancelled"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_requeues_a_dead_call_and_refuses_one_already_queued() {
    let s = seeded().await;
    let dead = &s.acme.1[1];
    let id = dead.0.to_string();
    s.kill(s.acme.0, dead).await;
    let stats = s.stats_of("acme");
    assert_eq!(
        (stats["dead"].clone(), stats["scheduled"].clone()),
        (1.into(), 4.into())
    );
    let view = s.json(&["show", &id]);
    assert_eq!(view["queue"]["state"], "dead", "{view}");

    let done = s.json(&["retry", &id]);
    assert_eq!(done["result"], "redriven", "{done}");
    let view = s.json(&["show", &id]);
    assert_eq!(view["queue"]["state"], "scheduled", "{view}");
    assert_eq!(view["call"]["status"], "scheduled", "{view}");
    assert_eq!(view["adminActions"][0]["action"], "retry", "{view}");
    assert_eq!(view["adminActions"][0]["actor"], "cli:tester", "{view}");
    let stats = s.stats_of("acme");
    assert_eq!(
        (stats["dead"].clone(), stats["scheduled"].clone()),
        (0.into(), 5.into())
    );

    // Queued already: a retry would risk a second dial.
    let err = s.refused(&["retry", &id], None);
    assert!(err.contains("already queued"), "{err}");
    assert_eq!(
        s.json(&["show", &id])["adminActions"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "a refused retry is not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_dead_asks_first_and_removes_only_dead_calls_of_the_given_company() {
    let s = seeded().await;
    let (acme_dead, zeta_dead) = (&s.acme.1[2], &s.zeta.1[0]);
    s.kill(s.acme.0, acme_dead).await;
    s.kill(s.zeta.0, zeta_dead).await;

    for answer in [None, Some("no\n")] {
        let err = s.refused(&["purge", "dead", "--company", "zeta"], answer);
        assert!(err.contains("nothing purged"), "{answer:?}: {err}");
        assert_eq!(s.stats_of("zeta")["dead"], 1, "declined with {answer:?}");
    }
    let err = s.refused(&["purge", "dead", "--older-than", "soon", "--yes"], None);
    assert!(err.contains("soon"), "{err}");

    let done = s.json(&["purge", "dead", "--company", "zeta", "--yes"]);
    assert_eq!(done["purged"], 1, "{done}");
    let stats = s.json(&["stats"]);
    assert_eq!(line(&stats, "zeta")["dead"], 0, "{stats}");
    assert_eq!(line(&stats, "zeta")["scheduled"], 2, "{stats}");
    assert_eq!(line(&stats, "acme")["dead"], 1, "{stats}");
    assert_eq!(line(&stats, "acme")["scheduled"], 4, "{stats}");
    assert_eq!(s.status(zeta_dead).await, "cancelled");
    assert_eq!(s.status(acme_dead).await, "scheduled");
    for other in &s.zeta.1[1..] {
        assert_eq!(s.status(other).await, "scheduled", "{}", other.0);
    }
    let view = s.json(&["show", &zeta_dead.0.to_string()]);
    assert!(view["queue"].is_null(), "{view}");
    assert_eq!(view["adminActions"][0]["action"], "purge_dead", "{view}");
    assert_eq!(view["adminActions"][0]["actor"], "cli:tester", "{view}");

    // Dead for less than an hour: kept.
    let done = s.json(&["purge", "dead", "--older-than", "1h", "--yes"]);
    assert_eq!(done["purged"], 0, "{done}");
    assert_eq!(s.stats_of("acme")["dead"], 1);

    // Every company's: acme's dead call goes, its scheduled calls stay.
    let done = s.json(&["purge", "dead", "--yes"]);
    assert_eq!(done["purged"], 1, "{done}");
    let stats = s.json(&["stats"]);
    assert_eq!(stats["total"]["dead"], 0, "{stats}");
    assert_eq!(stats["total"]["scheduled"], 6, "{stats}");
    assert_eq!(s.status(acme_dead).await, "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_early_is_not_a_failure_of_a_cancel_that_was_done() {
    let s = seeded().await;
    let call = &s.acme.1[1];
    let id = call.0.to_string();
    for args in [
        vec!["cancel", id.as_str(), "--yes"],
        vec!["show", id.as_str()],
        vec!["list", "scheduled", "--limit", "1"],
        vec!["stats"],
    ] {
        let out = s.run_into_closed_pipe(&args);
        assert!(
            out.status.success(),
            "outdial queue {args:?} into a closed pipe: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(s.status(call).await, "cancelled");
}
