//! Redis going away: publishes are refused with UNAVAILABLE (local
//! delivery goes on), /readyz says so, and once Redis is back the nodes
//! re-subscribe and re-register by themselves while clients stay
//! connected.

use std::time::Duration;

use integration_tests::redis::RedisServer;
use integration_tests::*;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{nodes, settle_all};

async fn publish(c: &mut Client, channel: &str, message: Value) -> Value {
    c.request(
        json!({"type": "publish", "channel": channel, "message": message}),
        "p",
    )
    .await
}

#[tokio::test]
async fn nodes_ride_out_a_redis_restart() {
    let mut redis = RedisServer::start();
    let servers = nodes(&redis, 2).await;
    let (a, b) = (servers[0].addr, servers[1].addr);
    let (mut local, _) = connect_native(a, "").await;
    local
        .request(json!({"type": "subscribe", "channel": "x"}), "s")
        .await;
    let (mut remote, _) = connect_native(b, "").await;
    remote
        .request(json!({"type": "subscribe", "channel": "x"}), "s")
        .await;
    let (mut member, _) = connect_native(a, "").await;
    member
        .request(
            json!({"type": "join", "channel": "lobby", "info": {"name": "M"}}),
            "j",
        )
        .await;
    let p = token("publisher", None, json!({}));
    let (mut publisher, _) = connect_native(a, &format!("?token={p}")).await;
    settle_all(&servers).await;
    let before = publish(&mut publisher, "hist:room", json!(1)).await;
    let old_epoch = before["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(
        publish(&mut publisher, "x", json!("before")).await["type"],
        "published"
    );
    assert_eq!(remote.recv().await["data"], "before");
    assert_eq!(local.recv().await["data"], "before");

    redis.kill();
    eventually("/readyz reports the cluster link down", || async {
        http_get(a, "/readyz").await.0 == 503
    })
    .await;
    let (_, body) = http_get(a, "/readyz").await;
    assert!(body.contains("\"redis\":\"down\""), "{body}");
    let refused = publish(&mut publisher, "x", json!("during")).await;
    assert_eq!(refused["code"], "UNAVAILABLE", "{refused}");
    assert_eq!(
        local.recv().await["data"],
        "during",
        "local delivery goes on"
    );
    let refused = publisher
        .request(json!({"type": "send", "users": ["nobody"], "data": 1}), "u")
        .await;
    assert_eq!(refused["code"], "UNAVAILABLE", "{refused}");

    // A resuming subscriber gets a live subscription that says it
    // recovered nothing, rather than an error and no subscription.
    let (mut late, _) = connect_native(a, "").await;
    let resumed = late
        .request(
            json!({"type": "subscribe", "channel": "hist:room",
            "since": {"offset": 1, "epoch": old_epoch}}),
            "r",
        )
        .await;
    assert_eq!(
        (resumed["type"].as_str(), resumed["recovered"].as_bool()),
        (Some("subscribed"), Some(false)),
        "{resumed}"
    );
    publish(&mut publisher, "hist:room", json!("down")).await;
    assert_eq!(
        late.recv().await["data"],
        "down",
        "live delivery on this node goes on"
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let back = loop {
        assert!(
            Instant::now() < deadline,
            "delivery did not resume after Redis came back"
        );
        let reply = publish(&mut publisher, "x", json!("after")).await;
        if reply["type"] == "published" {
            if let Some(got) = remote.try_recv(Duration::from_millis(300)).await {
                break got;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(
        back["data"], "after",
        "the same connection on B hears A again"
    );
    assert_eq!(http_get(a, "/readyz").await.0, 200);

    // Redis came back empty: node A re-registered its member, and the
    // channel's history starts a new epoch.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = remote
            .request(json!({"type": "presence", "channel": "lobby"}), "l")
            .await;
        if list["members"].as_array().map(Vec::len) == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the member was not re-registered: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = publish(&mut publisher, "hist:room", json!(2)).await;
    assert_eq!(after["offset"], 1, "{after}");
    assert_ne!(after["epoch"].as_str(), Some(old_epoch.as_str()));
    let stale = remote
        .request(
            json!({"type": "subscribe", "channel": "hist:room",
            "since": {"offset": 1, "epoch": old_epoch}}),
            "r",
        )
        .await;
    assert_eq!(stale["recovered"], false, "{stale}");
}

#[tokio::test]
async fn a_node_refuses_to_start_without_its_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    drop(redis);
    let mut config = test_config();
    config.cluster.redis_url = Some(url);
    let started = switchboard::Server::start(config).await;
    let error = started.err().expect("no Redis, no node").to_string();
    assert!(error.contains("cannot reach Redis"), "{error}");
}
