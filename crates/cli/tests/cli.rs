//! The `outdial` binary end to end: real process, real arguments, JSON on stdout.
//!
//! The demo customer is in Boston (America/New_York, MA, +1 617 555 0142). 2026-11-23 is a
//! Monday; 05:00Z is local midnight (EST, UTC-5).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use chrono::{DateTime, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use serde_json::{Value, json};

const MONDAY_MIDNIGHT_LOCAL: &str = "2026-11-23T05:00:00Z";
const BUNDLED_RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules/us.toml");

/// Runs `outdial args…`, feeding `stdin` if given.
fn outdial(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn outdial");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for outdial")
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts exit code `code` and parses stdout as one JSON document.
fn json_with_code(out: &Output, code: i32) -> Value {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", describe(out)))
}

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an instant: {v}"))
}

fn local(v: &Value) -> NaiveDateTime {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a local date-time: {v}"))
}

/// A file under Cargo's per-target scratch directory, unique to the test.
fn scratch_file(name: &str, contents: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("write scratch file");
    path
}

/// A Boston customer like the demo one, with fields changed (`Value::Null` removes one).
fn customer_with(changes: &[(&str, Value)]) -> String {
    let mut body = json!({
        "id": "cust-test-1",
        "taskType": "collections",
        "firstName": "Maria",
        "lastName": "Alvarez",
        "timezone": "America/New_York",
        "phoneNumber": "+16175550142",
        "streetAddress1": "27 School St",
        "city": "Boston",
        "state": "MA",
        "zipCode": "02108",
        "loanId": "loan-48213"
    });
    let obj = body.as_object_mut().expect("object");
    for (field, value) in changes {
        if value.is_null() {
            obj.remove(*field);
        } else {
            obj.insert((*field).to_owned(), value.clone());
        }
    }
    body.to_string()
}

fn calls(doc: &Value) -> &Vec<Value> {
    doc["plan"]["calls"].as_array().expect("plan.calls")
}

/// The most calls whose start lies within any half-open span of `span` length.
fn most_within(at: &[DateTime<Utc>], span: TimeDelta) -> usize {
    at.iter()
        .map(|&t0| at.iter().filter(|&&t| t >= t0 && t < t0 + span).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn collections_preview_stays_inside_the_window_and_under_the_weekly_caps() {
    let doc = json_with_code(
        &outdial(
            &[
                "preview",
                "--schedule",
                "collections",
                "--from",
                MONDAY_MIDNIGHT_LOCAL,
            ],
            None,
        ),
        0,
    );
    let calls = calls(&doc);
    assert!(!calls.is_empty(), "no calls planned: {doc:#}");
    let first = NaiveTime::from_hms_opt(8, 0, 0).expect("time");
    // 21:00 minus the 5 min guard and the 45 s maximum ring.
    let last = NaiveTime::from_hms_opt(20, 54, 15).expect("time");
    for call in calls {
        let t = local(&call["local"]).time();
        assert!(
            first <= t && t <= last,
            "call outside 08:00-20:54:15 local: {call}"
        );
    }
    let at: Vec<DateTime<Utc>> = calls.iter().map(|c| instant(&c["at"])).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "calls out of order");
    assert!(at[0] >= instant(&json!(MONDAY_MIDNIGHT_LOCAL)));
    assert!(
        most_within(&at, TimeDelta::hours(169)) <= 7,
        "Reg F 7-in-7 broken"
    );
    // The demo customer is in Massachusetts: 2 calls per debt per 7 days.
    assert!(
        most_within(&at, TimeDelta::hours(168)) <= 2,
        "MA cap broken"
    );
    let rules: Vec<&str> = doc["rulesInForce"]
        .as_array()
        .expect("rulesInForce")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(rules.contains(&"fed.regf.1006.14.b.2.i.A"), "{rules:?}");
    assert!(rules.contains(&"st.ma.940cmr7.04.1.f"), "{rules:?}");
}

#[test]
fn preview_output_carries_no_personal_data() {
    let out = outdial(&["preview", "--from", MONDAY_MIDNIGHT_LOCAL], None);
    let doc = json_with_code(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    for secret in [
        "6175550142",
        "5550142",
        "617555",
        "Maria",
        "Alvarez",
        "maria.alvarez",
        "1984-03-09",
        "School St",
        "Boston",
        "02108",
        "Harbor",
    ] {
        assert!(!text.contains(secret), "{secret:?} leaked:\n{text}");
    }
    assert_eq!(
        doc["customer"],
        json!({"id": "cust-10472", "timezone": "America/New_York"})
    );
    let ruleset = &doc["ruleset"];
    assert!(ruleset["version"].is_string() && ruleset["tzdb"].is_string());
    let fingerprint = ruleset["fingerprint"].as_str().expect("fingerprint");
    assert_eq!(fingerprint.len(), 16);
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(doc["candidates"]["zones"], json!(["America/New_York"]));
}

#[test]
fn verification_preview_first_call_is_at_the_next_lawful_instant() {
    let doc = json_with_code(
        &outdial(
            &[
                "preview",
                "--schedule",
                "verification",
                "--from",
                MONDAY_MIDNIGHT_LOCAL,
            ],
            None,
        ),
        0,
    );
    let decision = json_with_code(
        &outdial(
            &[
                "decide",
                "--at",
                MONDAY_MIDNIGHT_LOCAL,
                "--purpose",
                "verification",
            ],
            None,
        ),
        0,
    );
    assert_eq!(decision["decision"], "deny");
    let first = &calls(&doc)[0];
    assert_eq!(instant(&first["at"]), instant(&decision["next_allowed"]));
    assert_eq!(
        instant(&first["at"]),
        instant(&json!("2026-11-23T13:00:00Z"))
    );
    assert_eq!(local(&first["local"]), local(&json!("2026-11-23T08:00:00")));
    assert_eq!(
        instant(&first["slot"]),
        instant(&json!(MONDAY_MIDNIGHT_LOCAL))
    );
    assert!(!first["movedBy"].as_array().expect("movedBy").is_empty());
}

#[test]
fn invalid_customer_exits_2_naming_each_bad_field() {
    let body = customer_with(&[("zipCode", json!("2108")), ("phoneNumber", Value::Null)]);
    let out = outdial(&["preview", "--customer", "-"], Some(&body));
    let doc = json_with_code(&out, 2);
    let fields: Vec<&str> = doc["error"]["fields"]
        .as_array()
        .expect("error.fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert!(fields.contains(&"zipCode"), "{doc:#}");
    assert!(fields.contains(&"phoneNumber"), "{doc:#}");
    assert_eq!(fields.len(), 2, "{doc:#}");
    assert!(doc["error"]["message"].is_string());
}

#[test]
fn do_not_call_customer_gets_no_schedule() {
    let body = customer_with(&[("doNotCall", json!(true))]);
    let out = outdial(&["preview", "--customer", "-"], Some(&body));
    let doc = json_with_code(&out, 2);
    assert_eq!(doc["error"]["fields"][0]["field"], "doNotCall", "{doc:#}");
    assert!(doc.get("plan").is_none(), "{doc:#}");
}

#[test]
fn unreadable_customer_file_exits_1_with_a_message() {
    let out = outdial(
        &["preview", "--customer", "/nonexistent/customer.json"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/customer.json"), "{stderr}");
}

#[test]
fn decide_on_sunday_night_denies_until_8am_local_next_day() {
    // Sunday 2026-11-22 22:00 EST.
    let out = outdial(&["decide", "--at", "2026-11-22T22:00:00-05:00"], None);
    let decision = json_with_code(&out, 0);
    assert_eq!(decision["decision"], "deny", "{decision:#}");
    assert_eq!(
        instant(&decision["next_allowed"]),
        instant(&json!("2026-11-23T08:00:00-05:00"))
    );
    let blocks = decision["blocks"].as_array().expect("blocks");
    assert!(
        blocks
            .iter()
            .any(|b| b["rule"] == "fed.regf.1006.6.b.1.i" && b["reason"] == "after_window"),
        "{decision:#}"
    );
}

#[test]
fn decide_inside_the_window_allows() {
    let out = outdial(&["decide", "--at", "2026-11-23T10:00:00-05:00"], None);
    let decision = json_with_code(&out, 0);
    assert_eq!(decision["decision"], "allow", "{decision:#}");
}

#[test]
fn rules_check_accepts_the_bundled_ruleset() {
    let summary = json_with_code(&outdial(&["rules", "check"], None), 0);
    assert_eq!(summary["source"], "bundled");
    let rules = &summary["rules"];
    let total = rules["total"].as_u64().expect("total");
    let by_kind: u64 = ["window", "cap", "cooldown"]
        .iter()
        .map(|k| rules[*k].as_u64().expect("count"))
        .sum();
    assert_eq!(total, by_kind);
    let by_status: u64 = ["verified", "secondary", "unverified"]
        .iter()
        .map(|k| summary["status"][*k].as_u64().expect("count"))
        .sum();
    assert_eq!(total, by_status);
    assert!(summary["calendars"].as_u64().expect("calendars") > 0);

    // The same file given by path loads to the same fingerprint.
    let by_path = json_with_code(&outdial(&["rules", "check", BUNDLED_RULES], None), 0);
    assert_eq!(by_path["ruleset"], summary["ruleset"]);
}

const LA_RULE: &str = r#"
[[rule]]
id = "st.la.proclamation.test"
kind = "window"
title = "Louisiana: test proclamation window"
purposes = ["collection"]
states = ["LA"]
hours = HOURS
sources = ["test fixture"]
status = "unverified"
"#;

#[test]
fn rules_check_counts_an_added_rule() {
    let bundled = std::fs::read_to_string(BUNDLED_RULES).expect("read bundled rules");
    let before = json_with_code(&outdial(&["rules", "check"], None), 0);
    let text = bundled + &LA_RULE.replace("HOURS", r#"{ all = ["09:00", "20:00"] }"#);
    let file = scratch_file("added.toml", &text);
    let after = json_with_code(
        &outdial(
            &["rules", "check", file.to_str().expect("utf-8 path")],
            None,
        ),
        0,
    );
    assert_eq!(
        after["rules"]["window"].as_u64(),
        before["rules"]["window"].as_u64().map(|n| n + 1)
    );
    assert_ne!(
        after["ruleset"]["fingerprint"],
        before["ruleset"]["fingerprint"]
    );
}

#[test]
fn rules_check_rejects_an_overnight_window_naming_the_rule() {
    let bundled = std::fs::read_to_string(BUNDLED_RULES).expect("read bundled rules");
    let text = bundled + &LA_RULE.replace("HOURS", r#"{ all = ["21:00", "08:00"] }"#);
    let file = scratch_file("overnight.toml", &text);
    let out = outdial(
        &["rules", "check", file.to_str().expect("utf-8 path")],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("st.la.proclamation.test"), "{stderr}");
    assert!(stderr.contains("overnight"), "{stderr}");
}

#[test]
fn custom_schedule_follows_explicit_local_times() {
    let cadence = json!({
        "localTimes": ["2026-11-23T10:30:00", "2026-11-24T07:00:00", "2026-11-25T12:00:00"],
        "horizon": "7d",
        "maxAttempts": 5,
        "minGap": "1h",
        "retry": {"noAnswer": "4h", "busy": "30m", "voicemail": "1d"}
    });
    let file = scratch_file("cadence.json", &cadence.to_string());
    let path = file.to_str().expect("utf-8 path");
    let args = [
        "preview",
        "--schedule",
        "custom",
        "--cadence",
        path,
        "--from",
        MONDAY_MIDNIGHT_LOCAL,
    ];
    let doc = json_with_code(&outdial(&args, None), 0);
    let calls = calls(&doc);
    let locals: Vec<NaiveDateTime> = calls.iter().map(|c| local(&c["local"])).collect();
    assert_eq!(
        locals,
        [
            local(&json!("2026-11-23T10:30:00")),
            // 07:00 is before the window: moved to its opening.
            local(&json!("2026-11-24T08:00:00")),
        ],
        "{doc:#}"
    );
    assert!(calls[0]["movedBy"].as_array().expect("movedBy").is_empty());
    assert!(!calls[1]["movedBy"].as_array().expect("movedBy").is_empty());
    // The third would be the third call in 7 days: Massachusetts allows two.
    let dropped = doc["plan"]["dropped"].as_array().expect("dropped");
    assert_eq!(dropped.len(), 1, "{doc:#}");
    assert!(
        dropped[0]["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .any(|b| b["rule"] == "st.ma.940cmr7.04.1.f"),
        "{doc:#}"
    );
}

#[test]
fn custom_schedule_without_a_cadence_is_refused() {
    let out = outdial(&["preview", "--schedule", "custom"], None);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cadence"));
}
