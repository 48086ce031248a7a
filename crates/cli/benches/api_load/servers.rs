//! The servers under load: the real `outdial serve` binary against a scratch database, and
//! the baseline, an axum server with one empty handler run by the bench itself the way
//! `outdial serve` runs (a multi-threaded tokio runtime, one worker per core).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::Value;
use tokio::sync::oneshot;

/// `outdial serve --bind 127.0.0.1:0` as a child process; stopped with SIGTERM on drop.
pub struct Outdial {
    child: Child,
    // Kept open so the server never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
}

impl Outdial {
    /// Starts the `outdial` binary at `bin` on `database_url` with the demo company's key
    /// fixed to `api_key`, and waits for its start-up line.
    pub fn start(bin: &str, database_url: &str, api_key: &str) -> Outdial {
        Outdial::start_with(bin, database_url, api_key, &[])
    }

    /// [`start`](Self::start) with more environment (Redis, the admin token).
    pub fn start_with(
        bin: &str,
        database_url: &str,
        api_key: &str,
        env: &[(&str, &str)],
    ) -> Outdial {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--bind", "127.0.0.1:0"])
            .env("OUTDIAL_DATABASE_URL", database_url)
            .env("OUTDIAL_DEMO_API_KEY", api_key)
            .env_remove("OUTDIAL_BIND");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start outdial serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .expect("read the start-up line of outdial serve");
        let start: Value = serde_json::from_str(&first)
            .unwrap_or_else(|e| panic!("outdial serve printed {first:?}, not JSON: {e}"));
        let addr = start["listening"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no listening address in {first:?}"));
        Outdial {
            child,
            _stdout: stdout,
            addr,
        }
    }

    /// The server's process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Outdial {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("outdial serve ignored SIGTERM for 10 s; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The baseline: `POST /` reads the body and answers 200 with an empty body, on its own
/// runtime in its own thread. Stops on drop.
pub struct Empty {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Empty {
    pub fn start() -> Empty {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the baseline server");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("baseline address");
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("baseline runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("baseline listener");
                let app = Router::new().route("/", post(|_body: Bytes| async {}));
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("baseline server");
            });
        });
        Empty {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Empty {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
