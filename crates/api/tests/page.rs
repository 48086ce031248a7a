//! The admin page end to end in headless Chromium (Debian's `chromium` and
//! `chromium-driver`; `ops/test.sh` installs them when missing), driven over WebDriver by
//! fantoccini: log in with the admin token, see a seeded company's queue depths, pause it,
//! look a call up and read its decision trail. The app is served on a loopback port against
//! a fresh database and real Redis (a namespace of the test's own).

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use sqlx::PgPool;

use support::*;

/// `chromedriver` on a free loopback port in a process group of its own, killed with the
/// Chromium it started on drop (also when the test fails half-way).
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (ops/test.sh installs chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The element `at`, waited for at most 10 s (a missing element fails the test, not hangs it).
async fn wait_for(
    browser: &fantoccini::Client,
    at: Locator<'_>,
) -> Result<fantoccini::elements::Element, String> {
    match browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(at)
        .await
    {
        Ok(element) => Ok(element),
        Err(e) => {
            let page = browser.source().await.unwrap_or_default();
            Err(format!("{at:?}: {e}; the page was:\n{page}"))
        }
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn log_in_see_depths_pause_and_look_a_call_up_in_chromium(pool: PgPool) {
    let a = admin(pool, &redis_url()).await;
    let calls = scheduled(&a).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = a.app.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let driver = Driver::start();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run"],
        }),
    );
    eprintln!("page: chromedriver at {}", driver.url);
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");

    eprintln!("page: session open");
    // Log in: the page first shows the token form.
    browser
        .goto(&format!("{base}/admin/"))
        .await
        .expect("open the page");
    let token = wait_for(&browser, Locator::Css("input[name=token]"))
        .await
        .expect("the login form");
    token.send_keys("not the token").await.expect("type");
    browser
        .find(Locator::Id("login"))
        .await
        .expect("button")
        .click()
        .await
        .expect("log in");
    let error = wait_for(&browser, Locator::Css("p.bad"))
        .await
        .expect("a refusal");
    assert!(
        error
            .text()
            .await
            .expect("text")
            .contains("not the admin token")
    );
    let token = browser
        .find(Locator::Css("input[name=token]"))
        .await
        .expect("form");
    token.send_keys(TOKEN).await.expect("type");
    browser
        .find(Locator::Id("login"))
        .await
        .expect("button")
        .click()
        .await
        .expect("log in");

    // The seeded company's depths.
    let scheduled_cell = wait_for(&browser, Locator::Css("#company-acme td.scheduled"))
        .await
        .expect("acme's row");
    assert_eq!(
        scheduled_cell.text().await.expect("text"),
        calls.len().to_string()
    );
    let paused = browser
        .find(Locator::Css("#company-acme td.paused"))
        .await
        .expect("paused cell");
    assert_eq!(paused.text().await.expect("text"), "no");
    assert!(
        browser.find(Locator::Css("svg polyline")).await.is_ok(),
        "a depth chart"
    );

    // Pause it.
    browser
        .find(Locator::Css("#company-acme button.pause"))
        .await
        .expect("pause button")
        .click()
        .await
        .expect("pause");
    wait_for(&browser, Locator::Id("msg"))
        .await
        .expect("the result");
    let paused = browser
        .find(Locator::Css("#company-acme td.paused"))
        .await
        .expect("paused cell");
    assert_eq!(paused.text().await.expect("text"), "yes");
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM company_pauses WHERE resumed_at IS NULL AND task_type IS NULL",
    )
    .fetch_one(a.f.store.pool())
    .await
    .expect("pauses");
    assert_eq!(active, 1, "the pause is in Postgres");

    // Look a call up.
    let lookup = browser
        .find(Locator::Css("input[name=call]"))
        .await
        .expect("lookup");
    lookup.send_keys(&calls[0]).await.expect("type");
    browser
        .find(Locator::Id("lookup"))
        .await
        .expect("button")
        .click()
        .await
        .expect("show");
    let status = wait_for(&browser, Locator::Id("call-status"))
        .await
        .expect("the call");
    assert_eq!(status.text().await.expect("text"), "scheduled");
    let events = browser
        .find_all(Locator::Css("#trail td.event"))
        .await
        .expect("trail");
    assert_eq!(events[0].text().await.expect("text"), "planned");
    let source = browser.source().await.expect("source");
    assert!(source.contains(&calls[0]), "the call's id on the page");

    browser.close().await.expect("close the session");
    server.abort();
}
