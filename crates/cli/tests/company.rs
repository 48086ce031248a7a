//! `outdial migrate` and `outdial company …` against the real Postgres, each test in a
//! database of its own (created here, dropped at the end).

use std::process::{Command, Output};

use serde_json::Value;

mod support;

use support::ScratchDb;

fn outdial(db: &ScratchDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(args)
        .env("OUTDIAL_DATABASE_URL", &db.url)
        .output()
        .expect("the outdial binary runs")
}

fn json_ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

#[test]
fn company_create_prints_a_key_once_and_list_never_shows_keys() {
    let db = ScratchDb::new("create");
    json_ok(&outdial(&db, &["migrate"]));
    json_ok(&outdial(&db, &["migrate"])); // idempotent
    let created = json_ok(&outdial(&db, &["company", "create", "acme"]));
    let key = created["apiKey"].as_str().expect("apiKey");
    assert!(key.starts_with("odk_"), "{created:#}");
    assert_eq!(
        created["company"]["taskTypes"],
        serde_json::json!(["collections", "verification"])
    );

    let again = outdial(&db, &["company", "create", "acme"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("acme"));

    let list = outdial(&db, &["company", "list"]);
    let listed = json_ok(&list);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(key),
        "a key leaked into the list"
    );
}

#[test]
fn rotate_key_issues_a_new_key() {
    let db = ScratchDb::new("rotate");
    let first = json_ok(&outdial(&db, &["company", "create", "acme"]));
    let rotated = json_ok(&outdial(&db, &["company", "rotate-key", "acme"]));
    assert_ne!(first["apiKey"], rotated["apiKey"]);
    let missing = outdial(&db, &["company", "rotate-key", "nobody"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn set_task_types_accepts_a_catalog_and_rejects_a_bad_one_naming_the_problem() {
    let db = ScratchDb::new("tasktypes");
    json_ok(&outdial(&db, &["company", "create", "acme"]));
    let dir = std::env::temp_dir().join(format!("outdial-cli-tt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[collections]\nschedule = \"collections\"\n[welcome_call]\nschedule = \"custom\"\n\
         [welcome_call.custom]\ncron = [\"0 0 10 * * Mon-Fri\"]\nhorizon = \"7d\"\nmaxAttempts = 3\n\
         retry = { noAnswer = \"4h\", busy = \"30m\", voicemail = \"1d\" }\n",
    )
    .expect("write");
    let set = json_ok(&outdial(
        &db,
        &[
            "company",
            "set-task-types",
            "acme",
            good.to_str().expect("utf-8"),
        ],
    ));
    assert_eq!(
        set["company"]["taskTypes"],
        serde_json::json!(["collections", "welcome_call"])
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[x]\nschedule = \"collections\"\n[x.collections]\ncron = [\"nope\"]\n",
    )
    .expect("write");
    let out = outdial(
        &db,
        &[
            "company",
            "set-task-types",
            "acme",
            bad.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
}
