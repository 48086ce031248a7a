//! `outdial serve`: the real binary on a free loopback port against a scratch database.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod support;

use support::ScratchDb;

/// One HTTP/1.1 request over a fresh connection; returns the status code and body.
fn request(addr: &str, method: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to outdial serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let key = key
        .map(|k| format!("X-API-Key: {k}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{key}Connection: close\r\n\r\n"
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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outdial"));
    cmd.args([command, "--bind", "127.0.0.1:0"])
        .env("OUTDIAL_DATABASE_URL", &db.url)
        // `run` also starts the worker: its Redis keys go to a namespace of this test's own.
        .env(
            "OUTDIAL_NAMESPACE",
            format!("t:{}", db.url.rsplit('/').next().unwrap_or("cli")),
        );
    match demo_key {
        Some(key) => cmd.env("OUTDIAL_DEMO_API_KEY", key),
        None => cmd.env_remove("OUTDIAL_DEMO_API_KEY"),
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start outdial serve");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("the start-up line");
    let start: Value = serde_json::from_str(&first).expect("a JSON start-up line");
    let addr = start["listening"].as_str().expect("listening").to_owned();
    let key = start["demoApiKey"].as_str().expect("demoApiKey").to_owned();
    if let Some(fixed) = demo_key {
        assert_eq!(key, fixed);
    }

    let (status, body) = request(&addr, "GET", "/customers", Some(&key));
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(&addr, "GET", "/customers", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"error\""), "{body}");

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "serve exited with {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
