//! `outdial queue …` (issue 14): the real binary against a fresh database and a Redis
//! namespace of the test's own, with calls scheduled through the store and enqueued as the
//! API does. Stats and listings match what was seeded, a listing's pages are complete,
//! destructive commands ask first (and do nothing when not told yes), and every write is
//! recorded with the CLI's actor and shown by `queue show`.

mod fleet;
mod support;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use outdial_domain::policy::Ruleset;
use outdial_domain::{CallId, Clock};
use outdial_queue::Partition;
use outdial_store::{CompanyId, Store};
use serde_json::Value;

use fleet::{Namespace, lawful_location};
use support::ScratchDb;

/// A database and namespace with two companies' scheduled calls.
struct Seeded {
    db: ScratchDb,
    ns: Namespace,
    acme: (CompanyId, Vec<(uuid::Uuid, String)>),
    zeta: (CompanyId, Vec<(uuid::Uuid, String)>),
}

async fn seeded() -> Seeded {
    let db = ScratchDb::new("queue");
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let place = lawful_location(&Ruleset::bundled().expect("rules"));
    let ns = Namespace::new();
    let mut made = Vec::new();
    for (name, first, n) in [("acme", 0, 5), ("zeta", 100, 3)] {
        let company = fleet::company(&store, name, 10, 10).await;
        let calls = fleet::seed(&store, company, &place, first, n).await;
        ns.enqueue(company, &calls, fleet::clock().now()).await;
        made.push((company, calls));
    }
    let zeta = made.pop().expect("zeta");
    let acme = made.pop().expect("acme");
    Seeded { db, ns, acme, zeta }
}

impl Seeded {
    /// Runs `outdial queue <args>` with `stdin` as its input (`None`: no input at all).
    fn queue(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_outdial"))
            .arg("queue")
            .args(args)
            .env("OUTDIAL_DATABASE_URL", &self.db.url)
            .env("OUTDIAL_REDIS_URL", fleet::redis_url())
            .env("OUTDIAL_NAMESPACE", &self.ns.name)
            .env("OUTDIAL_CLOCK_OFFSET_SECS", fleet::offset_secs())
            .env("OUTDIAL_LOG", "warn")
            .env("USER", "tester")
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

    /// `outdial queue <args> --json`, which must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.queue(&all, None);
        assert!(
            out.status.success(),
            "outdial queue {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "outdial queue {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Marks `call` of `company` dead in the queue (its retries exhausted).
    async fn kill(&self, company: CompanyId, call: &(uuid::Uuid, String)) {
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
                .expect("dead")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_lists_and_show_reflect_the_queue_and_pages_miss_nothing() {
    let s = seeded().await;

    let stats = s.json(&["stats"]);
    assert_eq!(line(&stats, "acme")["scheduled"], 5, "{stats}");
    assert_eq!(line(&stats, "zeta")["scheduled"], 3, "{stats}");
    assert_eq!(stats["total"]["scheduled"], 8, "{stats}");
    assert_eq!(stats["total"]["dead"], 0, "{stats}");
    assert_eq!(line(&stats, "acme")["paused"], false, "{stats}");
    let only = s.json(&["stats", "--company", "zeta"]);
    let names: Vec<&Value> = only["companies"]
        .as_array()
        .expect("companies")
        .iter()
        .map(|c| &c["company"])
        .collect();
    assert_eq!(names, ["zeta"], "{only}");
    let table = s.queue(&["stats"], None);
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("acme") && table.contains("zeta"), "{table}");
    assert!(
        !table.contains('\x1b'),
        "colour codes off a terminal: {table:?}"
    );

    // Pages of two: every scheduled call exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec!["list", "scheduled", "--limit", "2"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = s.json(&args);
        assert!(
            page["items"].as_array().expect("items").len() <= 2,
            "{page}"
        );
        for item in page["items"].as_array().expect("items") {
            seen.push(item["callId"].as_str().expect("callId").to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: HashSet<String> = s
        .acme
        .1
        .iter()
        .chain(&s.zeta.1)
        .map(|(id, _)| id.to_string())
        .collect();
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), expected);
    let zeta = s.json(&["list", "scheduled", "--company", "zeta"]);
    assert_eq!(zeta["items"].as_array().expect("items").len(), 3, "{zeta}");
    let bad = s.queue(&["list", "sleeping"], None);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("\"sleeping\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let call = s.acme.1[0].0.to_string();
    let view = s.json(&["show", &call]);
    assert_eq!(view["company"], "acme", "{view}");
    assert_eq!(view["call"]["status"], "scheduled", "{view}");
    assert_eq!(view["queue"]["state"], "scheduled", "{view}");
    assert!(
        !view["call"]["decisionTrail"]
            .as_array()
            .expect("trail")
            .is_empty(),
        "{view}"
    );
    let screen = s.queue(&["show", &call], None);
    assert!(screen.status.success());
    assert!(String::from_utf8_lossy(&screen.stdout).contains(&call));
    let unknown = s.queue(&["show", &uuid::Uuid::new_v4().to_string()], None);
    assert!(!unknown.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destructive_commands_ask_first_and_every_write_is_recorded() {
    let s = seeded().await;
    let call = s.acme.1[0].0.to_string();

    // Cancel: "n" and no answer at all both leave the call alone.
    for answer in [Some("n\n"), None] {
        let out = s.queue(&["cancel", &call], answer);
        assert!(!out.status.success(), "declined with {answer:?}");
        let view = s.json(&["show", &call]);
        assert_eq!(view["call"]["status"], "scheduled", "{view}");
        assert_eq!(view["queue"]["state"], "scheduled", "{view}");
    }
    let done = s.json(&["cancel", &call, "--yes"]);
    assert_eq!(done["queue"], "removed", "{done}");
    let view = s.json(&["show", &call]);
    assert_eq!(view["call"]["status"], "cancelled", "{view}");
    assert!(view["queue"].is_null(), "{view}");
    assert_eq!(view["adminActions"][0]["action"], "cancel", "{view}");
    assert_eq!(view["adminActions"][0]["actor"], "cli:tester", "{view}");
    let again = s.queue(&["cancel", &call, "--yes"], None);
    assert!(
        !again.status.success(),
        "a cancelled call cannot be cancelled again"
    );

    // Retry re-drives a dead call.
    let dead = &s.acme.1[1];
    s.kill(s.acme.0, dead).await;
    assert_eq!(line(&s.json(&["stats"]), "acme")["dead"], 1);
    let done = s.json(&["retry", &dead.0.to_string()]);
    assert_eq!(done["result"], "redriven", "{done}");
    let view = s.json(&["show", &dead.0.to_string()]);
    assert_eq!(view["queue"]["state"], "scheduled", "{view}");
    assert_eq!(view["adminActions"][0]["action"], "retry", "{view}");
    assert_eq!(view["adminActions"][0]["actor"], "cli:tester", "{view}");

    // Purge: asks first; --company keeps the other company's dead calls.
    s.kill(s.acme.0, &s.acme.1[2]).await;
    s.kill(s.zeta.0, &s.zeta.1[0]).await;
    let declined = s.queue(&["purge", "dead", "--company", "zeta"], Some("no\n"));
    assert!(!declined.status.success());
    assert_eq!(line(&s.json(&["stats"]), "zeta")["dead"], 1);
    let done = s.json(&["purge", "dead", "--company", "zeta", "--yes"]);
    assert_eq!(done["purged"], 1, "{done}");
    let stats = s.json(&["stats"]);
    assert_eq!(line(&stats, "zeta")["dead"], 0, "{stats}");
    assert_eq!(line(&stats, "acme")["dead"], 1, "{stats}");
    let view = s.json(&["show", &s.zeta.1[0].0.to_string()]);
    assert_eq!(view["call"]["status"], "cancelled", "{view}");
    let bad = s.queue(&["purge", "dead", "--older-than", "soon", "--yes"], None);
    assert!(!bad.status.success(), "a bad --older-than is refused");
    assert_eq!(
        line(&s.json(&["stats"]), "acme")["dead"],
        1,
        "nothing purged"
    );
}
