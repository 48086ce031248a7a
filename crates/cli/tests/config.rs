//! `outdial.toml` (issue 16): a typed file whose values are the options' defaults (a flag
//! and the environment win over it), and `outdial config check` showing where each
//! effective value came from, secrets masked.

mod support;

use std::process::Command;

use support::ScratchDb;

fn outdial(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outdial"));
    cmd.args(args);
    for var in [
        "OUTDIAL_DATABASE_URL",
        "OUTDIAL_REDIS_URL",
        "OUTDIAL_LEASE_SECS",
        "OUTDIAL_CONFIG",
        "OUTDIAL_ADMIN_TOKEN",
        "OUTDIAL_NAMESPACE",
        "DATABASE_URL",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run outdial");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("outdial-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn config_check_shows_each_value_and_its_source_with_secrets_masked() {
    let path = file(
        "check.toml",
        "[database]\nurl = \"postgres://ops:hunter2@db.internal:5432/outdial\"\n\
         [redis]\nnamespace = \"prod\"\n\
         [api]\nadmin_token = \"a-very-secret-admin-token\"\n\
         [worker]\nlease_secs = 45\n",
    );
    let path = path.to_str().expect("path");
    let (code, out, err) = outdial(
        &["config", "check", "--config", path],
        &[("OUTDIAL_LEASE_SECS", "7")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("hunter2") && !out.contains("a-very-secret"),
        "{out}"
    );
    let doc: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let get = |key: &str| {
        doc["settings"]
            .as_array()
            .expect("settings")
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {doc}"))
            .clone()
    };
    assert_eq!(
        get("database.url")["value"],
        "postgres://ops:***@db.internal:5432/outdial"
    );
    assert_eq!(get("database.url")["source"], "file");
    assert_eq!(get("redis.namespace")["value"], "prod");
    assert_eq!(get("api.admin_token")["value"], "***");
    assert_eq!(
        get("worker.lease_secs")["value"],
        "7",
        "the environment wins"
    );
    assert_eq!(get("worker.lease_secs")["source"], "env");
    assert_eq!(get("worker.poll_ms")["value"], "1000");
    assert_eq!(get("worker.poll_ms")["source"], "default");
    assert_eq!(get("provider.url")["source"], "unset");

    // The file's secrets and URLs are not shown as defaults by --help either.
    let (_, help, _) = outdial(&["serve", "--help", "--config", path], &[]);
    assert!(help.contains("--admin-token"), "{help}");
    assert!(
        !help.contains("a-very-secret") && !help.contains("hunter2"),
        "{help}"
    );
}

#[test]
fn a_bad_config_file_stops_the_binary_naming_the_key() {
    let path = file("bad.toml", "[worker]\nlease_seconds = 10\n");
    let (code, _, err) = outdial(
        &["config", "check", "--config", path.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("lease_seconds"), "{err}");
    let path = file("type.toml", "[database]\npool = \"many\"\n");
    let (code, _, err) = outdial(
        &["config", "check", "--config", path.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pool") || err.contains("integer"), "{err}");
    let (code, _, err) = outdial(
        &["config", "check", "--config", "/nonexistent/outdial.toml"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/outdial.toml"), "{err}");
}

#[test]
fn the_file_s_database_url_is_the_one_a_command_uses() {
    let db = ScratchDb::new("config");
    let path = file(
        "migrate.toml",
        &format!("[database]\nurl = \"{}\"\n", db.url),
    );
    let (code, out, err) = outdial(&["migrate", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out} {err}");
    // The migration ran on the file's database: its tables exist.
    let tables = Command::new("psql")
        .args(["-w", &db.url, "-tAc", "SELECT count(*) FROM import_jobs"])
        .output()
        .expect("psql");
    assert!(
        tables.status.success(),
        "{}",
        String::from_utf8_lossy(&tables.stderr)
    );
    // A flag still wins over the file.
    let (code, _, err) = outdial(
        &[
            "migrate",
            "--config",
            path.to_str().unwrap(),
            "--database-url",
            "postgres://postgres@127.0.0.1:5432/outdial_no_such_database",
        ],
        &[],
    );
    assert_ne!(code, 0, "the flag's missing database was used: {err}");
    assert!(err.contains("outdial_no_such_database"), "{err}");
}
