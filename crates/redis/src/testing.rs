//! Redis servers of a test's own (feature `testing`): one server, a 3-primary cluster and a
//! Sentinel setup, each on free loopback ports, without persistence, stopped and removed on
//! drop. For tests that must not touch the machine's shared Redis (a flush, a stop, a
//! cluster, a failover).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port free now (and, with `bus`, its cluster bus port + 10,000 too).
fn free_port(bus: bool) -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !bus {
            return port;
        }
        if let Some(bus_port) = port.checked_add(10_000)
            && TcpListener::bind(("127.0.0.1", bus_port)).is_ok()
        {
            return port;
        }
    }
}

fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "outdial-{what}-{}-{}",
        std::process::id(),
        free_port(false)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn query(port: u16, args: &[&str]) -> Option<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut c = client
        .get_connection_with_timeout(Duration::from_millis(300))
        .ok()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c).ok()
}

fn text(port: u16, args: &[&str]) -> Option<String> {
    query(port, args).and_then(|v| redis::from_redis_value::<String>(v).ok())
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `redis-server args` under a shell that kills it when its stdin closes: on drop,
/// and also when the test process ends without dropping (a `static`, a crash, SIGKILL).
fn spawn(args: &[String], dir: &PathBuf) -> Child {
    assert!(
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "redis-server not found: install it (ops/stack.sh does)"
    );
    Command::new("sh")
        .args([
            "-c",
            "d=$PWD; redis-server \"$@\" & r=$!; read _ || true; kill $r; wait $r; \
             rm -f \"$d\"/nodes-*.conf; rmdir \"$d\" 2>/dev/null; true",
            "sh",
        ])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh")
}

fn stop(children: &mut Vec<Child>) {
    for mut c in children.drain(..) {
        drop(c.stdin.take());
        let _ = c.wait();
    }
}

fn base_args(port: u16, dir: &std::path::Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// One `redis-server` of the test's own.
#[derive(Debug)]
pub struct OwnRedis {
    /// Its port.
    pub port: u16,
    children: Vec<Child>,
    dir: PathBuf,
}

impl OwnRedis {
    /// Starts the server; returns once it answers `PING`.
    pub fn start() -> Self {
        let dir = scratch_dir("redis");
        let port = free_port(false);
        let children = vec![spawn(&base_args(port, &dir), &dir)];
        wait_for("redis-server answers PING", Duration::from_secs(10), || {
            text(port, &["PING"]).is_some()
        });
        Self {
            port,
            children,
            dir,
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server now (it answers nothing afterwards).
    pub fn stop(&mut self) {
        stop(&mut self.children);
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        stop(&mut self.children);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three primaries (no replicas) of the test's own.
#[derive(Debug)]
pub struct OwnCluster {
    /// The primaries' ports.
    pub ports: Vec<u16>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl OwnCluster {
    /// Starts three `--cluster-enabled` servers and joins them with
    /// `redis-cli --cluster create`; returns once every node says `cluster_state:ok`.
    pub fn start() -> Self {
        let dir = scratch_dir("cluster");
        let ports: Vec<u16> = (0..3).map(|_| free_port(true)).collect();
        let mut children = Vec::new();
        for port in &ports {
            let mut args = base_args(*port, &dir);
            args.extend(
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--cluster-node-timeout",
                    "2000",
                ]
                .map(String::from),
            );
            children.push(spawn(&args, &dir));
        }
        let cluster = Self {
            ports,
            children,
            dir,
        };
        for port in &cluster.ports {
            wait_for(
                "a cluster node answers PING",
                Duration::from_secs(10),
                || text(*port, &["PING"]).is_some(),
            );
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli not found: install redis-tools (ops/stack.sh does)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for port in &cluster.ports {
            wait_for("cluster_state:ok", Duration::from_secs(20), || {
                text(*port, &["CLUSTER", "INFO"]).is_some_and(|i| i.contains("cluster_state:ok"))
            });
        }
        cluster
    }

    /// `redis+cluster://` naming the first node only (the others are discovered).
    pub fn url(&self) -> String {
        format!("redis+cluster://127.0.0.1:{}", self.ports[0])
    }

    /// How many keys each primary holds (`DBSIZE`), in port order.
    pub fn key_counts(&self) -> Vec<u64> {
        self.ports
            .iter()
            .map(|p| {
                query(*p, &["DBSIZE"])
                    .and_then(|v| redis::from_redis_value(v).ok())
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        stop(&mut self.children);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One cluster for every test of a test binary that asks for it, started on first use and
/// stopped when the process ends (its servers watch the process's pipe).
pub fn shared_cluster() -> &'static OwnCluster {
    static CLUSTER: std::sync::OnceLock<OwnCluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(OwnCluster::start)
}

/// A primary, one replica and one Sentinel (quorum 1) watching service `outdial`.
#[derive(Debug)]
pub struct OwnSentinel {
    /// The port that started as the primary.
    pub primary: u16,
    /// The port that started as the replica.
    pub replica: u16,
    /// The Sentinel's port.
    pub sentinel: u16,
    children: Vec<Child>,
    dir: PathBuf,
}

/// The service name the Sentinel monitors.
pub const SERVICE: &str = "outdial";

impl OwnSentinel {
    /// Starts the three servers; returns once the replica is in sync and the Sentinel
    /// knows it.
    pub fn start() -> Self {
        let dir = scratch_dir("sentinel");
        let (primary, replica, sentinel) = (free_port(false), free_port(false), free_port(false));
        let mut children = vec![spawn(&base_args(primary, &dir), &dir)];
        wait_for("the primary answers PING", Duration::from_secs(10), || {
            text(primary, &["PING"]).is_some()
        });
        let mut args = base_args(replica, &dir);
        args.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.to_string(),
        ]);
        children.push(spawn(&args, &dir));
        wait_for("the replica syncs", Duration::from_secs(20), || {
            text(replica, &["INFO", "replication"])
                .is_some_and(|i| i.contains("master_link_status:up"))
        });
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {SERVICE} 127.0.0.1 {primary} 1\n\
                 sentinel down-after-milliseconds {SERVICE} 1000\n\
                 sentinel failover-timeout {SERVICE} 5000\n",
                dir.display()
            ),
        )
        .unwrap();
        children.push(spawn(
            &[conf.display().to_string(), "--sentinel".into()],
            &dir,
        ));
        let own = Self {
            primary,
            replica,
            sentinel,
            children,
            dir,
        };
        wait_for(
            "the sentinel sees the replica",
            Duration::from_secs(30),
            || {
                query(sentinel, &["SENTINEL", "REPLICAS", SERVICE])
                    .and_then(|v| redis::from_redis_value::<Vec<Vec<String>>>(v).ok())
                    .is_some_and(|rs| {
                        rs.iter().any(|r| {
                            r.windows(2).any(|w| w[0] == "flags" && w[1] == "slave")
                                && r.windows(2)
                                    .any(|w| w[0] == "master-link-status" && w[1] == "ok")
                        })
                    })
            },
        );
        own
    }

    /// `redis+sentinel://` for the service.
    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/{SERVICE}", self.sentinel)
    }

    /// The port the Sentinel names as primary now.
    pub fn current_primary(&self) -> Option<u16> {
        query(
            self.sentinel,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE],
        )
        .and_then(|v| redis::from_redis_value::<Vec<String>>(v).ok())
        .and_then(|a| a.get(1).and_then(|p| p.parse().ok()))
    }

    /// Makes the Sentinel promote the replica (`SENTINEL FAILOVER`) and waits until the
    /// replica is the primary and the old primary follows it. Returns the new primary's port.
    pub fn failover(&self) -> u16 {
        let before = self.current_primary().expect("a primary");
        let to = if before == self.primary {
            self.replica
        } else {
            self.primary
        };
        assert!(
            text(self.sentinel, &["SENTINEL", "FAILOVER", SERVICE]).is_some(),
            "SENTINEL FAILOVER refused"
        );
        wait_for("the failover", Duration::from_secs(30), || {
            self.current_primary() == Some(to)
                && query(to, &["ROLE"])
                    .and_then(|v| redis::from_redis_value::<Vec<redis::Value>>(v).ok())
                    .and_then(|r| r.first().cloned())
                    .and_then(|v| redis::from_redis_value::<String>(v).ok())
                    .is_some_and(|role| role == "master")
                && text(before, &["INFO", "replication"]).is_some_and(|i| i.contains("role:slave"))
        });
        to
    }
}

impl Drop for OwnSentinel {
    fn drop(&mut self) {
        stop(&mut self.children);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
