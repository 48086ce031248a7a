//! `outdial serve`, `run` and `work`: the real binary on free loopback ports against a
//! scratch database and a Redis namespace of the test's own (deleted at the end).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod fleet;
mod support;

use support::ScratchDb;

/// One HTTP/1.1 request over a fresh connection, with one `(name, value)` header if given;
/// returns the status code and body.
fn request(addr: &str, method: &str, path: &str, header: Option<(&str, &str)>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to outdial serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let header = header
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{header}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_prints_its_address_and_demo_key_answers_with_auth_and_stops_on_sigterm() {
    starts_answers_and_stops("serve", None);
}

#[test]
fn run_serves_the_api_with_the_fixed_demo_key_from_the_environment() {
    let key = format!("odk_{}", "ab".repeat(32));
    starts_answers_and_stops("run", Some(&key));
}

/// Starts `outdial <command>` on a free port against a scratch database, checks the start-up
/// line (with `demo_key` when one is fixed), authenticated and unauthenticated requests, and
/// a clean exit on SIGTERM.
fn starts_answers_and_stops(command: &str, demo_key: Option<&str>) {
    let db = ScratchDb::new(command);
    let ns = Keys::new();
    let mut cmd = outdial(command, &db, &ns);
    cmd.args(["--bind", "127.0.0.1:0"]);
    match demo_key {
        Some(key) => cmd.env("OUTDIAL_DEMO_API_KEY", key),
        None => cmd.env_remove("OUTDIAL_DEMO_API_KEY"),
    };
    let mut child = Process::start(&mut cmd);
    let start = child.first_line();
    let addr = start["listening"].as_str().expect("listening").to_owned();
    let key = start["demoApiKey"].as_str().expect("demoApiKey").to_owned();
    if let Some(fixed) = demo_key {
        assert_eq!(key, fixed);
    }

    let (status, body) = request(&addr, "GET", "/customers", Some(("X-API-Key", &key)));
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(&addr, "GET", "/customers", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    if command == "serve" {
        // No OUTDIAL_ADMIN_TOKEN: no admin routes at all.
        let bearer = format!("Bearer {key}");
        for path in ["/admin/queue/stats", "/admin/"] {
            let (status, body) = request(&addr, "GET", path, Some(("Authorization", &bearer)));
            assert_eq!(status, 404, "{path}: {body}");
        }
    }
    child.stops_on_sigterm(command);
}

/// A Redis namespace of the test's own, deleted on drop, and the runtime its connection
/// runs on (the tests themselves are synchronous).
struct Keys {
    ns: fleet::Namespace,
    _runtime: tokio::runtime::Runtime,
}

impl Keys {
    fn new() -> Keys {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let ns = {
            let _entered = runtime.enter();
            fleet::Namespace::new()
        };
        Keys {
            ns,
            _runtime: runtime,
        }
    }
}

/// `outdial <command>` against `db` and the namespace `ns` (the queue's and the limits'
/// keys), without an admin token and with quiet logs.
fn outdial(command: &str, db: &ScratchDb, ns: &Keys) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outdial"));
    cmd.arg(command)
        .env("OUTDIAL_DATABASE_URL", &db.url)
        .env("OUTDIAL_REDIS_URL", fleet::redis_url())
        .env("OUTDIAL_NAMESPACE", &ns.ns.name)
        .env("OUTDIAL_LOG", "warn")
        .env_remove("OUTDIAL_ADMIN_TOKEN")
        .env_remove("OUTDIAL_METRICS_BIND");
    cmd
}

/// A started `outdial` process, killed on drop (a failed assertion leaves no server
/// running).
struct Process {
    child: Child,
}

impl Process {
    fn start(cmd: &mut Command) -> Process {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start outdial");
        Process { child }
    }

    /// The first line it prints on stdout, as JSON.
    fn first_line(&mut self) -> Value {
        let mut first = String::new();
        BufReader::new(self.child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the start-up line");
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{first:?} is not JSON: {e}"))
    }

    /// SIGTERM: it exits 0 within 10 s.
    fn stops_on_sigterm(mut self, command: &str) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "{command} exited with {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{command} did not stop within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn run_prints_an_admin_token_for_the_admin_routes_and_metrics_need_no_key() {
    let db = ScratchDb::new("runadmin");
    let ns = Keys::new();
    let mut child = Process::start(
        outdial("run", &db, &ns)
            .args(["--bind", "127.0.0.1:0"])
            .env_remove("OUTDIAL_DEMO_API_KEY"),
    );
    let start = child.first_line();
    let addr = start["listening"].as_str().expect("listening").to_owned();
    let key = start["demoApiKey"].as_str().expect("demoApiKey").to_owned();
    let token = start["adminToken"].as_str().expect("adminToken").to_owned();
    assert!(token.starts_with("oda_") && token.len() > 40, "{token}");

    let admin = format!("Bearer {token}");
    let (status, body) = request(
        &addr,
        "GET",
        "/admin/queue/stats",
        Some(("Authorization", &admin)),
    );
    assert_eq!(status, 200, "{body}");
    let stats: Value = serde_json::from_str(&body).expect("JSON stats");
    assert!(
        stats["companies"].is_array() && stats["total"].is_object(),
        "{stats}"
    );
    let company = format!("Bearer {key}");
    for header in [
        ("Authorization", company.as_str()),
        ("X-API-Key", key.as_str()),
    ] {
        let (status, body) = request(&addr, "GET", "/admin/queue/stats", Some(header));
        assert_eq!(status, 401, "the demo key on an admin route: {body}");
    }
    let (status, _) = request(&addr, "GET", "/customers", Some(("X-API-Key", &token)));
    assert_eq!(status, 401, "the admin token on a company route");

    let (status, text) = request(&addr, "GET", "/metrics", None);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("outdial_queue_depth{"), "{text}");
    assert!(
        !text.contains(&key) && !text.contains(&token),
        "no secret in metrics"
    );
    let (status, body) = request(&addr, "GET", "/healthz", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(&addr, "GET", "/readyz", None);
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("JSON readiness");
    assert_eq!(ready["checks"]["redis"], "ok", "{ready}");
    assert_eq!(ready["checks"]["migrations"], "ok", "{ready}");
    child.stops_on_sigterm("run");
}

#[test]
fn a_worker_serves_metrics_and_readiness_on_its_metrics_bind() {
    let db = ScratchDb::new("workmetrics");
    let ns = Keys::new();
    // A company, so that the queue gauges have a line to show.
    let created = outdial("company", &db, &ns)
        .args(["create", "acme"])
        .output()
        .expect("outdial company create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let mut child = Process::start(
        outdial("work", &db, &ns)
            .env("OUTDIAL_METRICS_BIND", "127.0.0.1:0")
            .env("OUTDIAL_SIMULATOR", "instant"),
    );
    let line = child.first_line();
    let addr = line["metrics"]
        .as_str()
        .expect("the metrics address")
        .to_owned();

    let (status, body) = request(&addr, "GET", "/readyz", None);
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("JSON readiness");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["redis"], "ok", "{ready}");
    let (status, body) = request(&addr, "GET", "/healthz", None);
    assert_eq!(status, 200, "{body}");
    // The reconciler's first pass runs at start-up; its counter shows on the page.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, text) = request(&addr, "GET", "/metrics", None);
        assert_eq!(status, 200, "{text}");
        if text.contains("outdial_reconcile_passes_total") {
            assert!(
                text.contains("# TYPE outdial_reconcile_passes_total counter"),
                "{text}"
            );
            assert!(
                text.contains("outdial_queue_depth{company=\"acme\""),
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no reconcile pass counted within 20 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child.stops_on_sigterm("work");
}

#[test]
fn serve_answers_metrics_health_and_readiness_without_a_key() {
    let db = ScratchDb::new("servemetrics");
    let ns = Keys::new();
    let mut child = Process::start(outdial("serve", &db, &ns).args(["--bind", "127.0.0.1:0"]));
    let start = child.first_line();
    let addr = start["listening"].as_str().expect("listening").to_owned();
    let key = start["demoApiKey"].as_str().expect("demoApiKey").to_owned();
    assert!(start.get("adminToken").is_none(), "{start}");

    let (status, text) = request(&addr, "GET", "/metrics", None);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("# TYPE outdial_"), "{text}");
    // `serve` given Redis observes the queue: the demo company's depth is on the page.
    assert!(
        text.contains("outdial_queue_depth{company=\"demo\""),
        "{text}"
    );
    assert!(text.contains("outdial_webhook_pending"), "{text}");
    assert!(!text.contains(&key), "no secret in metrics");
    let (status, body) = request(&addr, "GET", "/healthz", None);
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).expect("JSON health");
    assert_eq!(health["status"], "ok", "{health}");
    let (status, body) = request(&addr, "GET", "/readyz", None);
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("JSON readiness");
    assert_eq!(ready["status"], "ready", "{ready}");
    for check in ["postgres", "migrations", "redis"] {
        assert_eq!(ready["checks"][check], "ok", "{check}: {ready}");
    }
    assert_eq!(ready["notReady"], serde_json::json!([]), "{ready}");
    child.stops_on_sigterm("serve");
}

#[test]
fn serve_without_redis_is_ready_on_postgres_alone_and_still_exports_metrics() {
    let db = ScratchDb::new("servenoredis");
    let ns = Keys::new();
    let mut child = Process::start(
        outdial("serve", &db, &ns)
            .args(["--bind", "127.0.0.1:0"])
            .env_remove("OUTDIAL_REDIS_URL"),
    );
    let start = child.first_line();
    let addr = start["listening"].as_str().expect("listening").to_owned();

    let (status, body) = request(&addr, "GET", "/readyz", None);
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("JSON readiness");
    assert_eq!(ready["checks"]["postgres"], "ok", "{ready}");
    assert!(ready["checks"].get("redis").is_none(), "{ready}");
    let (status, text) = request(&addr, "GET", "/metrics", None);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("outdial_webhook_pending"), "{text}");
    let (status, body) = request(&addr, "GET", "/admin/queue/stats", None);
    assert_eq!(status, 404, "{body}");
    child.stops_on_sigterm("serve");
}
