//! The typed configuration file (`outdial.toml`, given by `--config FILE` or
//! `OUTDIAL_CONFIG`) and `outdial config check`.
//!
//! Every setting has one name in the file (`[section] key`) and one environment variable;
//! the file is typed (an unknown key or a wrong type stops the binary, naming the key) and
//! its values become the defaults of the matching command-line options, so the order is:
//! a flag, then the environment, then the file, then the built-in default. `outdial config
//! check` prints each setting's effective value and where it came from, secrets masked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use clap::Command;
use serde::Deserialize;
use serde_json::{Value, json};

/// One setting: its place in the file, its environment variable, whether it is a secret.
struct Setting {
    key: &'static str,
    env: &'static str,
    secret: bool,
}

const fn s(key: &'static str, env: &'static str) -> Setting {
    Setting {
        key,
        env,
        secret: false,
    }
}

const fn secret(key: &'static str, env: &'static str) -> Setting {
    Setting {
        key,
        env,
        secret: true,
    }
}

/// Every setting, in the order `config check` prints them.
const SETTINGS: &[Setting] = &[
    s("database.url", "OUTDIAL_DATABASE_URL"),
    s("database.pool", "OUTDIAL_DB_POOL"),
    s("database.store_ahead_hours", "OUTDIAL_STORE_AHEAD_HOURS"),
    s("redis.url", "OUTDIAL_REDIS_URL"),
    s("redis.namespace", "OUTDIAL_NAMESPACE"),
    s("api.bind", "OUTDIAL_BIND"),
    secret("api.demo_api_key", "OUTDIAL_DEMO_API_KEY"),
    secret("api.admin_token", "OUTDIAL_ADMIN_TOKEN"),
    s("api.metrics_bind", "OUTDIAL_METRICS_BIND"),
    s("provider.url", "OUTDIAL_PROVIDER_URL"),
    secret("provider.token", "OUTDIAL_PROVIDER_TOKEN"),
    s("provider.callback_url", "OUTDIAL_PROVIDER_CALLBACK_URL"),
    secret("provider.secret", "OUTDIAL_PROVIDER_SECRET"),
    s("provider.simulator", "OUTDIAL_SIMULATOR"),
    s("provider.simulator_seed", "OUTDIAL_SIMULATOR_SEED"),
    s("worker.max_in_flight", "OUTDIAL_MAX_IN_FLIGHT"),
    s("worker.lease_secs", "OUTDIAL_LEASE_SECS"),
    s("worker.reconcile_secs", "OUTDIAL_RECONCILE_SECS"),
    s("worker.poll_ms", "OUTDIAL_POLL_MS"),
    s("worker.shutdown_grace_secs", "OUTDIAL_SHUTDOWN_GRACE_SECS"),
    s("worker.import_lease_secs", "OUTDIAL_IMPORT_LEASE_SECS"),
    s("worker.import_chunk", "OUTDIAL_IMPORT_CHUNK"),
    s("log.filter", "OUTDIAL_LOG"),
    s("log.format", "OUTDIAL_LOG_FORMAT"),
    s("clock.offset_secs", "OUTDIAL_CLOCK_OFFSET_SECS"),
];

/// The file's shape: every key optional, nothing else allowed. It is deserialized only to
/// check the file (unknown keys, types); the values are read from the TOML table.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    database: Database,
    #[serde(default)]
    redis: Redis,
    #[serde(default)]
    api: Api,
    #[serde(default)]
    provider: Provider,
    #[serde(default)]
    worker: Worker,
    #[serde(default)]
    log: Log,
    #[serde(default)]
    clock: ClockSection,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Database {
    url: Option<String>,
    pool: Option<u32>,
    store_ahead_hours: Option<u32>,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Redis {
    url: Option<String>,
    namespace: Option<String>,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Api {
    bind: Option<std::net::SocketAddr>,
    demo_api_key: Option<String>,
    admin_token: Option<String>,
    metrics_bind: Option<std::net::SocketAddr>,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Provider {
    url: Option<String>,
    token: Option<String>,
    callback_url: Option<String>,
    secret: Option<String>,
    simulator: Option<SimulatorName>,
    simulator_seed: Option<u64>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SimulatorName {
    Realistic,
    Instant,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Worker {
    max_in_flight: Option<usize>,
    lease_secs: Option<u64>,
    reconcile_secs: Option<u64>,
    poll_ms: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    import_lease_secs: Option<u64>,
    import_chunk: Option<usize>,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Log {
    filter: Option<String>,
    format: Option<LogFormat>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    Text,
    Json,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockSection {
    offset_secs: Option<i64>,
}

/// A loaded file: its path and each setting it gives, by environment variable, as text.
#[derive(Debug, Default)]
pub struct Loaded {
    path: Option<PathBuf>,
    values: BTreeMap<&'static str, String>,
}

static LOADED: OnceLock<Loaded> = OnceLock::new();

/// The path named by `--config FILE` / `--config=FILE` in `args`, else `OUTDIAL_CONFIG`.
pub fn path_from(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("OUTDIAL_CONFIG").map(PathBuf::from)
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let _typed: File =
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).context("the config file")?;
    let mut values = BTreeMap::new();
    for setting in SETTINGS {
        let (section, key) = setting.key.split_once('.').unwrap_or(("", setting.key));
        if let Some(value) = table.get(section).and_then(|t| t.get(key)) {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            values.insert(setting.env, text);
        }
    }
    Ok(Loaded {
        path: Some(path.to_owned()),
        values,
    })
}

/// Makes `loaded` the process's configuration (once, before any setting is read).
pub fn install(loaded: Loaded) {
    let _ = LOADED.set(loaded);
}

/// The effective value of the setting read through environment variable `env`: the
/// environment, else the file. (For the settings that are not command-line options.)
pub fn var(env: &str) -> Option<String> {
    std::env::var(env).ok().or_else(|| {
        LOADED.get().and_then(|l| {
            l.values
                .iter()
                .find(|(k, _)| **k == env)
                .map(|(_, v)| v.clone())
        })
    })
}

/// `cmd` with the file's values as the defaults of the options they name, in every
/// subcommand.
pub fn with_file_defaults(cmd: Command) -> Command {
    let Some(loaded) = LOADED.get() else {
        return cmd;
    };
    apply(cmd, loaded)
}

fn apply(cmd: Command, loaded: &Loaded) -> Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    let mut cmd = cmd.mut_args(|arg| {
        let env = arg.get_env().and_then(|e| e.to_str()).map(str::to_owned);
        match env.and_then(|e| loaded.values.get(e.as_str())) {
            Some(value) => {
                let value: &'static str = Box::leak(value.clone().into_boxed_str());
                // `--help` shows defaults: never a secret's, nor a URL's (passwords).
                let hide = SETTINGS.iter().any(|s| {
                    Some(s.env) == arg.get_env().and_then(|e| e.to_str())
                        && (s.secret || s.key.ends_with("url"))
                });
                arg.default_value(value)
                    .required(false)
                    .hide_default_value(hide)
            }
            None => arg,
        }
    });
    for name in names {
        cmd = cmd.mut_subcommand(name, |sub| apply(sub, loaded));
    }
    cmd
}

/// The built-in default of the option read through `env`, from the command definitions.
fn builtin_default(cmd: &Command, env: &str) -> Option<String> {
    for arg in cmd.get_arguments() {
        if arg.get_env().and_then(|e| e.to_str()) == Some(env)
            && let Some(v) = arg.get_default_values().first()
        {
            return Some(v.to_string_lossy().into_owned());
        }
    }
    cmd.get_subcommands().find_map(|c| builtin_default(c, env))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn mask_url(value: &str) -> String {
    // A node list (`redis://…,redis://…`) masks each element.
    if value.contains(',') && value.matches("://").count() > 1 {
        return value.split(',').map(mask_url).collect::<Vec<_>>().join(",");
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{masked}@{host}")
        }
        None => authority.to_owned(),
    };
    // Query parameters that carry a password (`sentinel_password=`, `password=`).
    let query = query.map(|q| {
        q.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.contains("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{authority}{tail}?{q}"),
        None => format!("{scheme}://{authority}{tail}"),
    }
}

/// `outdial config check`: the effective configuration, secrets masked.
pub fn check(cmd: &Command) -> anyhow::Result<std::process::ExitCode> {
    let loaded = LOADED.get();
    let file_values = loaded.map(|l| &l.values);
    let settings: Vec<Value> = SETTINGS
        .iter()
        .map(|setting| {
            let from_env = std::env::var(setting.env).ok();
            let from_file = file_values.and_then(|v| v.get(setting.env)).cloned();
            let default = builtin_default(cmd, setting.env);
            let (value, source) = match (from_env, from_file, default) {
                (Some(v), _, _) => (Some(v), "env"),
                (None, Some(v), _) => (Some(v), "file"),
                (None, None, Some(v)) => (Some(v), "default"),
                (None, None, None) => (None, "unset"),
            };
            let shown = value.map(|v| {
                if setting.secret {
                    "***".to_owned()
                } else if setting.key.ends_with("url") {
                    mask_url(&v)
                } else {
                    v
                }
            });
            json!({"key": setting.key, "env": setting.env, "value": shown, "source": source})
        })
        .collect();
    crate::emit(&json!({
        "file": loaded.and_then(|l| l.path.as_ref()).map(|p| p.display().to_string()),
        "settings": settings,
    }))?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str) -> anyhow::Result<Loaded> {
        let dir = std::env::temp_dir().join(format!("outdial-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.toml", text.len()));
        std::fs::write(&path, text)?;
        let result = load(&path);
        let _ = std::fs::remove_file(&path);
        result
    }

    #[test]
    fn a_file_maps_each_key_to_its_setting() {
        let l = loaded(
            "[database]\nurl = \"postgres://u:p@h/db\"\npool = 8\n[worker]\nlease_secs = 10\n",
        )
        .expect("valid");
        assert_eq!(l.values["OUTDIAL_DATABASE_URL"], "postgres://u:p@h/db");
        assert_eq!(l.values["OUTDIAL_DB_POOL"], "8");
        assert_eq!(l.values["OUTDIAL_LEASE_SECS"], "10");
    }

    #[test]
    fn an_unknown_key_or_a_wrong_type_is_an_error_naming_it() {
        let e = format!("{:#}", loaded("[database]\nurll = \"x\"\n").unwrap_err());
        assert!(e.contains("urll"), "{e}");
        let e = format!(
            "{:#}",
            loaded("[worker]\nlease_secs = \"ten\"\n").unwrap_err()
        );
        assert!(e.contains("lease_secs") || e.contains("integer"), "{e}");
        let e = format!("{:#}", loaded("[api]\nbind = \"nowhere\"\n").unwrap_err());
        assert!(e.contains("bind") || e.contains("address"), "{e}");
    }

    #[test]
    fn the_example_file_in_ops_deploy_is_valid() {
        let l = loaded(include_str!("../../../ops/deploy/outdial.example.toml")).expect("valid");
        assert_eq!(l.values["OUTDIAL_REDIS_URL"], "redis://127.0.0.1:6379");
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://postgres:hunter2@127.0.0.1:5432/test"),
            "postgres://postgres:***@127.0.0.1:5432/test"
        );
        assert_eq!(mask_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(mask_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(
            mask_url("redis://:pw@a:1,redis://:pw@b:2"),
            "redis://:***@a:1,redis://:***@b:2"
        );
        assert_eq!(
            mask_url("redis+cluster://u:pw@a:1,b:2"),
            "redis+cluster://u:***@a:1,b:2"
        );
        assert_eq!(
            mask_url("redis+sentinel://:pw@s:26379/m?sentinel_password=sp&sentinel_username=u"),
            "redis+sentinel://:***@s:26379/m?sentinel_password=***&sentinel_username=u"
        );
    }

    #[test]
    fn every_setting_is_a_key_of_the_typed_file() {
        // A setting the typed file does not accept could never be set from the file.
        for setting in SETTINGS {
            let (section, key) = setting.key.split_once('.').expect("section.key");
            let sample = match setting.key {
                "api.bind" | "api.metrics_bind" => "\"127.0.0.1:1\"".to_owned(),
                "provider.simulator" => "\"instant\"".to_owned(),
                "log.format" => "\"json\"".to_owned(),
                k if k.ends_with("pool")
                    || k.ends_with("hours")
                    || k.ends_with("secs")
                    || k.ends_with("ms")
                    || k.ends_with("seed")
                    || k.ends_with("flight")
                    || k.ends_with("chunk") =>
                {
                    "3".to_owned()
                }
                _ => "\"x\"".to_owned(),
            };
            let text = format!("[{section}]\n{key} = {sample}\n");
            let l = loaded(&text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
            assert!(l.values.contains_key(setting.env), "{text}");
        }
    }
}
