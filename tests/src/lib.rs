//! Helpers for outdial's end-to-end suite, which runs the operator's scripts and (later) the
//! real binaries and servers on loopback.
//!
//! Owns reading what `ops/stack.sh` prints and taking the service URLs apart. It depends on
//! no outdial crate and holds no test logic: the tests live in `tests/`.

use std::fmt;

/// Output of `ops/stack.sh` or a URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A line is not `NAME=value`, or names an unexpected variable.
    #[error("unexpected line in stack output: {0:?}")]
    UnexpectedLine(String),
    /// A variable is missing or given twice.
    #[error("stack output must set {0} exactly once")]
    Missing(&'static str),
    /// A value uses shell quoting this parser does not undo (`$'…'`, `'…'`).
    #[error("{0} is quoted in a way the test cannot read: {1:?}")]
    Quoted(&'static str, String),
    /// A Redis URL that is not `redis://[user[:password]@]host[:port][/db]`.
    #[error("not a plain redis:// URL: {0:?}")]
    RedisUrl(String),
}

/// The services `ops/stack.sh` reports: exactly two `NAME=value` lines on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEnv {
    /// `OUTDIAL_DATABASE_URL`, a libpq connection URL.
    pub database_url: String,
    /// `OUTDIAL_REDIS_URL`.
    pub redis_url: String,
}

const DATABASE_VAR: &str = "OUTDIAL_DATABASE_URL";
const REDIS_VAR: &str = "OUTDIAL_REDIS_URL";

impl StackEnv {
    /// Parses the script's stdout. Values are written with bash's `printf %q`, which leaves
    /// plain URLs as they are and backslash-escapes shell metacharacters.
    pub fn parse(stdout: &str) -> Result<Self, Error> {
        let (mut database_url, mut redis_url) = (Vec::new(), Vec::new());
        for line in stdout.lines() {
            let Some((name, value)) = line.split_once('=') else {
                return Err(Error::UnexpectedLine(line.to_owned()));
            };
            match name {
                DATABASE_VAR => database_url.push(unquote(DATABASE_VAR, value)?),
                REDIS_VAR => redis_url.push(unquote(REDIS_VAR, value)?),
                _ => return Err(Error::UnexpectedLine(line.to_owned())),
            }
        }
        let one = |mut v: Vec<String>, name| match v.len() {
            1 => v.pop().ok_or(Error::Missing(name)),
            _ => Err(Error::Missing(name)),
        };
        Ok(Self {
            database_url: one(database_url, DATABASE_VAR)?,
            redis_url: one(redis_url, REDIS_VAR)?,
        })
    }
}

/// Undoes `printf %q` backslash escapes; rejects the quoted forms and empty values.
fn unquote(name: &'static str, value: &str) -> Result<String, Error> {
    if value.is_empty() || value.starts_with('\'') || value.starts_with("$'") {
        return Err(Error::Quoted(name, value.to_owned()));
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Where a Redis server listens and how to log in to it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisEndpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port (6379 when the URL gives none).
    pub port: u16,
    /// ACL user name, if the URL gives one.
    pub username: Option<String>,
    /// Password, if the URL gives one.
    pub password: Option<String>,
}

/// Masks the password.
impl fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl RedisEndpoint {
    /// Parses `redis://[[user]:password@]host[:port][/db][?…]`. `rediss://` (TLS) is
    /// refused: the test speaks plain RESP over TCP.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = || Error::RedisUrl(url.to_owned());
        let rest = url.strip_prefix("redis://").ok_or_else(bad)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = match port {
            None => 6379,
            Some(p) => p.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        };
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, pass)) => (non_empty(user), non_empty(pass)),
                None => (None, non_empty(info)),
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            username,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_output_gives_both_urls() {
        let env = StackEnv::parse(
            "OUTDIAL_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test\n\
             OUTDIAL_REDIS_URL=redis://127.0.0.1:6379\n",
        )
        .unwrap();
        assert_eq!(env.database_url, "postgres://postgres@127.0.0.1:5432/test");
        assert_eq!(env.redis_url, "redis://127.0.0.1:6379");
    }

    #[test]
    fn stack_output_undoes_backslash_escapes_and_rejects_other_quoting() {
        let env = StackEnv::parse(
            "OUTDIAL_DATABASE_URL=postgres://u@h/db\\?sslmode=disable\nOUTDIAL_REDIS_URL=redis://h\n",
        )
        .unwrap();
        assert_eq!(env.database_url, "postgres://u@h/db?sslmode=disable");
        let err = StackEnv::parse("OUTDIAL_DATABASE_URL=$'a\\nb'\nOUTDIAL_REDIS_URL=redis://h\n");
        assert_eq!(err, Err(Error::Quoted(DATABASE_VAR, "$'a\\nb'".to_owned())));
    }

    #[test]
    fn stack_output_with_a_missing_extra_or_repeated_line_is_refused() {
        let only_db = "OUTDIAL_DATABASE_URL=postgres://h/db\n";
        assert_eq!(StackEnv::parse(only_db), Err(Error::Missing(REDIS_VAR)));
        let twice = format!("{only_db}{only_db}OUTDIAL_REDIS_URL=redis://h\n");
        assert_eq!(StackEnv::parse(&twice), Err(Error::Missing(DATABASE_VAR)));
        let noise = format!("{only_db}stack: starting\nOUTDIAL_REDIS_URL=redis://h\n");
        assert!(matches!(
            StackEnv::parse(&noise),
            Err(Error::UnexpectedLine(_))
        ));
    }

    #[test]
    fn redis_urls_give_host_port_and_credentials() {
        let e = RedisEndpoint::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 6379));
        assert_eq!((e.username, e.password), (None, None));

        let e = RedisEndpoint::parse("redis://localhost/2").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("localhost", 6379));

        let e = RedisEndpoint::parse("redis://:s3cret@[::1]:6380/0?timeout=1").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 6380));
        assert!(!format!("{e:?}").contains("s3cret"));
        assert_eq!((e.username, e.password.as_deref()), (None, Some("s3cret")));

        let e = RedisEndpoint::parse("redis://app:pw@cache:7000").unwrap();
        assert_eq!(e.username.as_deref(), Some("app"));
        assert_eq!(e.password.as_deref(), Some("pw"));
    }

    #[test]
    fn unusable_redis_urls_are_refused() {
        for url in [
            "rediss://127.0.0.1:6379",
            "http://127.0.0.1:6379",
            "redis://",
            "redis://:6379",
            "redis://h:0",
            "redis://h:port",
            "redis://[::1",
        ] {
            assert!(RedisEndpoint::parse(url).is_err(), "{url}");
        }
    }
}
