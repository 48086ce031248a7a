//! One `Redis` connection over a cluster and over Sentinel, on servers of the test's own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use outdial_redis::testing::{OwnCluster, OwnSentinel};
use outdial_redis::{Options, Redis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_url_spreads_keys_and_splits_pipelines_by_slot() {
    let cluster = OwnCluster::start();
    let mut redis = Redis::open(&cluster.url(), &Options::default())
        .await
        .expect("open the cluster");
    assert_eq!(redis.kind(), "cluster");

    // A pipeline whose commands land on several slots (and so nodes), results in order.
    let mut pipe = redis::pipe();
    for i in 0..30 {
        pipe.cmd("SET").arg(format!("t:{{p{i}}}:k")).arg(i).ignore();
    }
    pipe.cmd("INCR").arg("t:counter");
    pipe.cmd("GET").arg("t:{p7}:k");
    pipe.cmd("GET").arg("t:{p8}:k");
    let (counter, seven, eight): (i64, i64, i64) = pipe.query_async(&mut redis).await.unwrap();
    assert_eq!((counter, seven, eight), (1, 7, 8));
    let counts = cluster.key_counts();
    assert!(
        counts.iter().all(|c| *c > 0),
        "every primary holds keys: {counts:?}"
    );

    // A script whose keys share a hash tag runs on their node.
    let script = redis::Script::new(
        "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1] .. ':x') or 'none'",
    );
    let v: String = script
        .key("t:{p3}:k")
        .arg("three")
        .invoke_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(v, "none");

    // A `#!lua` script (as all of outdial's are) touching a key of another slot is refused,
    // whether that slot is on the same node or not (without the shebang Redis 7.0 refuses only
    // keys of other nodes): what makes the queue's cluster suite a proof of single-slot scripts.
    let stray = redis::Script::new("#!lua\nreturn redis.call('SET', ARGV[1], 1)");
    for i in 0..20 {
        let r: redis::RedisResult<()> = stray
            .key("t:{p0}:k")
            .arg(format!("t:{{q{i}}}:k"))
            .invoke_async(&mut redis)
            .await;
        assert!(
            r.is_err(),
            "a cross-slot write from a #!lua script was accepted"
        );
    }

    // SCAN covers every primary.
    let mut keys = redis.scan_match("t:*").await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 31, "30 tagged keys and the counter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_url_follows_the_primary_across_a_failover() {
    let own = OwnSentinel::start();
    let options = Options {
        response_timeout: Duration::from_secs(1),
        ..Options::default()
    };

    // A user who may not run scripts is refused at open, with the reason.
    let mut admin = Redis::open(&format!("redis://127.0.0.1:{}", own.primary), &options)
        .await
        .unwrap();
    redis::cmd("ACL")
        .arg(&["SETUSER", "noeval", "on", ">pw", "~*", "+@all", "-eval"][..])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let refused = Redis::open(
        &format!("redis://noeval:pw@127.0.0.1:{}", own.primary),
        &options,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, outdial_redis::Error::Version(_)),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("Redis 7.0 or later and EVAL"),
        "{refused}"
    );
    let mut redis = Redis::open(&own.url(), &options)
        .await
        .expect("open through the sentinel");
    assert_eq!(redis.kind(), "sentinel");
    redis::cmd("SET")
        .arg("t:before")
        .arg("1")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    // Written on the primary, which the replica copies before it is promoted.
    redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query_async::<i64>(&mut redis)
        .await
        .unwrap();

    let new_primary = own.failover();
    assert_eq!(new_primary, own.replica);

    // The first commands may meet the demoted primary (READONLY) or a closed socket; each
    // such failure makes the connection ask the Sentinel again, so a retry succeeds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = redis::cmd("SET")
            .arg("t:after")
            .arg("2")
            .query_async::<()>(&mut redis)
            .await;
        match r {
            Ok(()) => break,
            Err(e) => {
                assert!(outdial_redis::transient(&e), "{e}");
                assert!(
                    Instant::now() < deadline,
                    "no write after the failover: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let before: String = redis::cmd("GET")
        .arg("t:before")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(before, "1", "the new primary has the data written before");
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut redis).await.unwrap();
    assert_eq!(
        redis::from_redis_value::<String>(role[0].clone()).unwrap(),
        "master"
    );
}
