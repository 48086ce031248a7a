//! The operator contract that exists today: `ops/stack.sh` makes Redis and PostgreSQL
//! answer on loopback and prints their URLs, the same ones on every run.
//!
//! A missing service fails this test with a hint; it never skips.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use outdial_tests::{RedisEndpoint, StackEnv};

const TIMEOUT: Duration = Duration::from_secs(5);
const HINT: &str = "run ops/stack.sh (it installs and starts Redis and PostgreSQL on loopback; \
                    needs root or sudo the first time) or set OUTDIAL_DATABASE_URL and \
                    OUTDIAL_REDIS_URL to services that answer";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `bash ops/stack.sh` and returns its stdout.
fn run_stack_script() -> String {
    let out = Command::new("bash")
        .arg("ops/stack.sh")
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash ops/stack.sh: {e}; {HINT}"));
    assert!(
        out.status.success(),
        "ops/stack.sh failed ({}):\n{}\n{HINT}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("ops/stack.sh prints UTF-8")
}

/// Sends one RESP command as an array of bulk strings.
fn send_command(stream: &mut TcpStream, args: &[&str]) -> std::io::Result<()> {
    let mut buf = format!("*{}\r\n", args.len());
    for a in args {
        buf.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(buf.as_bytes())
}

/// Connects over plain TCP and returns the reply to `PING` (see [`ping_on`]).
fn redis_ping(url: &str) -> Result<String, String> {
    let endpoint = RedisEndpoint::parse(url).map_err(|e| e.to_string())?;
    let addrs = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host))?;
    let mut last_err = format!("{} resolves to no address", endpoint.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(stream) => return ping_on(stream, &endpoint).map_err(|e| format!("{addr}: {e}")),
            Err(e) => last_err = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last_err)
}

/// Logs in if the URL has credentials, sends an inline `PING` and returns the reply line.
fn ping_on(mut stream: TcpStream, endpoint: &RedisEndpoint) -> std::io::Result<String> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if let Some(password) = &endpoint.password {
        let mut args = vec!["AUTH"];
        args.extend(endpoint.username.as_deref());
        args.push(password);
        send_command(&mut stream, &args)?;
        reader.read_line(&mut line)?;
        if !line.starts_with("+OK") {
            return Ok(format!("AUTH answered {:?}", line.trim_end()));
        }
        line.clear();
    }
    stream.write_all(b"PING\r\n")?;
    reader.read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// Runs `psql <url> -tAc "select 1"` and returns its trimmed stdout.
fn postgres_select_1(url: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args(["-w", url, "-tAc", "select 1"])
        .env("PGCONNECT_TIMEOUT", TIMEOUT.as_secs().to_string())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn stack_script_prints_stable_urls_of_redis_and_postgres_that_answer() {
    let first = run_stack_script();
    let env =
        StackEnv::parse(&first).unwrap_or_else(|e| panic!("ops/stack.sh stdout: {e}\n{first}"));

    let pong = redis_ping(&env.redis_url)
        .unwrap_or_else(|e| panic!("Redis at {} does not answer: {e}; {HINT}", env.redis_url));
    assert_eq!(
        pong, "+PONG",
        "Redis at {} answered PING oddly; {HINT}",
        env.redis_url
    );

    let one = postgres_select_1(&env.database_url).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} does not answer: {e}; {HINT}",
            env.database_url
        )
    });
    assert_eq!(
        one, "1",
        "PostgreSQL at {} answered oddly; {HINT}",
        env.database_url
    );

    let second = run_stack_script();
    assert_eq!(first, second, "ops/stack.sh is not idempotent");
}
