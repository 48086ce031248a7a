//! [`Target`]: what an `OUTDIAL_REDIS_URL` names — one server, a cluster or a Sentinel
//! service — parsed without any I/O.
//!
//! Forms:
//! - `redis://[user:pass@]host[:port][/db]` (and `unix://`, `redis+unix://`): one server;
//! - `redis+cluster://[user:pass@]host:port[,host:port…]`: a Redis Cluster, given one or more
//!   seed nodes (the rest are discovered); also a comma-separated list of `redis://` URLs;
//! - `redis+sentinel://[user:pass@]host:port[,host:port…]/service[/db]
//!   [?sentinel_username=…&sentinel_password=…]`: the primary of `service` as the Sentinels
//!   report it, followed across failovers. The user-info authenticates to the data nodes; the
//!   query parameters to the Sentinels.

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::{Error, Result};

/// Default port of a data node.
const REDIS_PORT: u16 = 6379;
/// Default port of a Sentinel.
const SENTINEL_PORT: u16 = 26379;

/// A host and port.
#[derive(Clone, PartialEq, Eq)]
pub struct Node {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Credentials, decoded. `Debug` never shows the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// ACL user name (none: `default`).
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// What a Redis URL names.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// One server; the URL as the redis crate reads it.
    Single(String),
    /// A Redis Cluster: seed nodes and the credentials every node takes.
    Cluster {
        /// Seed nodes.
        nodes: Vec<Node>,
        /// Credentials of the data nodes.
        auth: Auth,
    },
    /// The primary of a Sentinel-monitored service.
    Sentinel {
        /// The Sentinels.
        sentinels: Vec<Node>,
        /// The monitored service (master) name.
        service: String,
        /// Database index on the primary.
        db: i64,
        /// Credentials of the data nodes.
        auth: Auth,
        /// Credentials of the Sentinels.
        sentinel_auth: Auth,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single(_) => f.write_str("Single"),
            Self::Cluster { nodes, auth } => f
                .debug_struct("Cluster")
                .field("nodes", nodes)
                .field("auth", auth)
                .finish(),
            Self::Sentinel {
                sentinels,
                service,
                db,
                auth,
                sentinel_auth,
            } => f
                .debug_struct("Sentinel")
                .field("sentinels", sentinels)
                .field("service", service)
                .field("db", db)
                .field("auth", auth)
                .field("sentinel_auth", sentinel_auth)
                .finish(),
        }
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Url(reason.into())
}

fn decode(s: &str, what: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| bad(format!("the {what} is not UTF-8 once percent-decoded")))
}

/// `user:pass` / `:pass` / `user` → credentials (an empty user means the default user).
fn auth(userinfo: Option<&str>) -> Result<Auth> {
    let Some(info) = userinfo else {
        return Ok(Auth::default());
    };
    let (user, pass) = match info.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (info, None),
    };
    Ok(Auth {
        username: (!user.is_empty())
            .then(|| decode(user, "user name"))
            .transpose()?,
        password: pass.map(|p| decode(p, "password")).transpose()?,
    })
}

/// `host[:port]` or `[v6]:port`.
fn node(s: &str, default_port: u16) -> Result<Node> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad(format!("node {s:?} opens '[' without closing it")))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad(format!("node {s:?}: expected ':port' after ']'")))?,
                ),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad(format!("node {s:?} has no host")));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(format!("node {s:?} has a bad port {p:?}")))?,
    };
    Ok(Node {
        host: host.to_owned(),
        port,
    })
}

/// Splits `[userinfo@]hosts[/path][?query]` (what follows the scheme).
fn authority(rest: &str) -> (Option<&str>, &str, &str, &str) {
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hosts_part, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    match hosts_part.rsplit_once('@') {
        Some((info, hosts)) => (Some(info), hosts, path, query),
        None => (None, hosts_part, path, query),
    }
}

fn nodes(hosts: &str, default_port: u16) -> Result<Vec<Node>> {
    if hosts.is_empty() {
        return Err(bad("no host given"));
    }
    hosts.split(',').map(|h| node(h, default_port)).collect()
}

impl Target {
    /// Parses a Redis URL (see the module documentation for the forms).
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            return Self::cluster(rest);
        }
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            return Self::sentinel(rest);
        }
        if url.contains(',') {
            return Self::node_list(url);
        }
        let known = ["redis://", "rediss://", "unix://", "redis+unix://"];
        if !known.iter().any(|s| url.starts_with(s)) {
            return Err(bad(
                "expected redis://, redis+cluster://, redis+sentinel:// or unix://",
            ));
        }
        // The redis crate checks the rest (and says what is wrong without the password).
        redis::Client::open(url).map_err(|e| bad(e.to_string()))?;
        Ok(Self::Single(url.to_owned()))
    }

    fn cluster(rest: &str) -> Result<Self> {
        let (info, hosts, path, query) = authority(rest);
        if !matches!(path, "" | "0") {
            return Err(bad(
                "a cluster has only database 0: drop the path after the nodes",
            ));
        }
        if !query.is_empty() {
            return Err(bad("redis+cluster:// takes no query parameters"));
        }
        Ok(Self::Cluster {
            nodes: nodes(hosts, REDIS_PORT)?,
            auth: auth(info)?,
        })
    }

    /// `redis://a:1,redis://b:2`: every element a `redis://` URL of one node, same credentials.
    fn node_list(url: &str) -> Result<Self> {
        let mut all = Vec::new();
        let mut first_auth = None;
        for part in url.split(',') {
            let rest = part
                .trim()
                .strip_prefix("redis://")
                .ok_or_else(|| bad("a list of nodes must be redis:// URLs separated by commas"))?;
            let (info, host, path, query) = authority(rest);
            if !matches!(path, "" | "0") || !query.is_empty() {
                return Err(bad(
                    "a cluster has only database 0: no path or query on a node",
                ));
            }
            let a = auth(info)?;
            match &first_auth {
                None => first_auth = Some(a),
                Some(f) if info.is_none() || *f == a => {}
                Some(_) => return Err(bad("every node of a list must use the same credentials")),
            }
            all.push(node(host, REDIS_PORT)?);
        }
        Ok(Self::Cluster {
            nodes: all,
            auth: first_auth.unwrap_or_default(),
        })
    }

    fn sentinel(rest: &str) -> Result<Self> {
        let (info, hosts, path, query) = authority(rest);
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let service = segments
            .next()
            .ok_or_else(|| bad("redis+sentinel:// needs the service name as its path"))?;
        let service = decode(service, "service name")?;
        let db = match segments.next() {
            None => 0,
            Some(d) => d
                .parse::<i64>()
                .ok()
                .filter(|d| *d >= 0)
                .ok_or_else(|| bad(format!("bad database index {d:?}")))?,
        };
        if segments.next().is_some() {
            return Err(bad("redis+sentinel:// path is /service[/db]"));
        }
        let mut sentinel_auth = Auth::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sentinel_username" => sentinel_auth.username = Some(decode(v, "user name")?),
                "sentinel_password" => sentinel_auth.password = Some(decode(v, "password")?),
                other => {
                    return Err(bad(format!(
                        "unknown query parameter {other:?} (sentinel_username, sentinel_password)"
                    )));
                }
            }
        }
        Ok(Self::Sentinel {
            sentinels: nodes(hosts, SENTINEL_PORT)?,
            service,
            db,
            auth: auth(info)?,
            sentinel_auth,
        })
    }

    /// `single`, `cluster` or `sentinel`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Single(_) => "single",
            Self::Cluster { .. } => "cluster",
            Self::Sentinel { .. } => "sentinel",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(host: &str, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn a_plain_url_is_one_server() {
        assert_eq!(
            Target::parse("redis://127.0.0.1:6379/2").unwrap(),
            Target::Single("redis://127.0.0.1:6379/2".into())
        );
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("redis://127.0.0.1:notaport").is_err());
    }

    #[test]
    fn a_cluster_url_lists_seed_nodes_with_default_ports_and_credentials() {
        let t =
            Target::parse("redis+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002").unwrap();
        assert_eq!(
            t,
            Target::Cluster {
                nodes: vec![n("10.0.0.1", 7000), n("10.0.0.2", 6379), n("::1", 7002)],
                auth: Auth {
                    username: Some("app".into()),
                    password: Some("p@ss".into())
                },
            }
        );
        assert!(!format!("{t:?}").contains("p@ss"), "{t:?}");
        assert!(Target::parse("redis+cluster://a:1/3").is_err());
        assert!(Target::parse("redis+cluster://").is_err());
        assert!(Target::parse("redis+cluster://a:0").is_err());
    }

    #[test]
    fn a_list_of_redis_urls_is_a_cluster() {
        let t = Target::parse("redis://:s3cret@a:7000, redis://b:7001").unwrap();
        assert_eq!(
            t,
            Target::Cluster {
                nodes: vec![n("a", 7000), n("b", 7001)],
                auth: Auth {
                    username: None,
                    password: Some("s3cret".into())
                },
            }
        );
        assert!(Target::parse("redis://a:1,b:2").is_err());
        assert!(Target::parse("redis://:x@a:1,redis://:y@b:2").is_err());
        assert!(Target::parse("redis://a:1/1,redis://b:2").is_err());
    }

    #[test]
    fn a_sentinel_url_names_the_service_db_and_both_credentials() {
        let t = Target::parse(
            "redis+sentinel://:pw@s1,s2:26380/mymaster/3?sentinel_password=sp&sentinel_username=su",
        )
        .unwrap();
        assert_eq!(
            t,
            Target::Sentinel {
                sentinels: vec![n("s1", 26379), n("s2", 26380)],
                service: "mymaster".into(),
                db: 3,
                auth: Auth {
                    username: None,
                    password: Some("pw".into())
                },
                sentinel_auth: Auth {
                    username: Some("su".into()),
                    password: Some("sp".into())
                },
            }
        );
        assert!(Target::parse("redis+sentinel://s1:26379").is_err());
        assert!(Target::parse("redis+sentinel://s1/m/x").is_err());
        assert!(Target::parse("redis+sentinel://s1/m/1/2").is_err());
        assert!(Target::parse("redis+sentinel://s1/m?password=x").is_err());
    }

    #[test]
    fn errors_never_repeat_the_password() {
        for url in [
            "redis+cluster://u:hunter2@a:bad",
            "redis+sentinel://u:hunter2@a/m/x",
            "redis://u:hunter2@a:1,b:2",
            "redis://u:hunter2@a:notaport",
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
