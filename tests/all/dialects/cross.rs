//! One bus for every dialect: a message published in one reaches
//! subscribers in all of them, and so does a change to a resource.

use integration_tests::*;
use serde_json::json;
use switchboard::config::ResourceConfig;

#[tokio::test]
async fn a_message_and_a_change_reach_every_dialect() {
    let mut config = test_config();
    config
        .resources
        .insert("events".into(), ResourceConfig::default());
    let server = start(config).await;
    let addr = server.addr;

    let (mut native, _) = connect_native(addr, "").await;
    native
        .request(json!({"type": "subscribe", "channel": "x"}), "s")
        .await;
    native
        .request(json!({"type": "subscribe", "resource": "events"}), "r")
        .await;
    let mut daptin = connect(addr, "/live").await;
    daptin.recv().await;
    daptin
        .send(json!({"id": 1, "method": "subscribe", "attributes": {"topicName": "x,events"}}))
        .await;
    daptin.recv().await;
    daptin.recv().await;
    let mut jac = connect(addr, "/websocket?channel_id=x").await;
    jac.recv().await;
    let mut rt = connect(addr, "/rtbdp").await;
    rt.send(json!({"subscribe": [{"id": 0, "table": "events", "filters": []}]}))
        .await;

    // A Daptin client's new-message on topic x...
    let mut publisher = connect(addr, "/live").await;
    publisher.recv().await;
    publisher
        .send(json!({"method": "new-message", "attributes": {"topicName": "x", "message": {"hi": 1}}}))
        .await;
    // ...reaches the native subscriber, the Daptin subscriber and the jac
    // client on channel x, each in its own shape.
    let m = native.recv().await;
    assert_eq!(
        (m["type"].as_str(), m["channel"].as_str()),
        (Some("message"), Some("x"))
    );
    assert_eq!(m["data"], json!({"hi": 1}));
    let d = daptin.recv().await;
    assert_eq!(
        (d["topic"].as_str(), d["event"].as_str()),
        (Some("x"), Some("new-message"))
    );
    assert_eq!(jac.recv().await, json!({"hi": 1}));

    // A jac client's channel event reaches the native and Daptin subscribers.
    jac.send(json!({"type": "channel", "channel_ids": ["x"], "data": {"from": "jac"}}))
        .await;
    assert_eq!(native.recv().await["data"], json!({"from": "jac"}));
    assert_eq!(daptin.recv().await["data"], json!({"from": "jac"}));

    // A native insert reaches native, Daptin (system topic) and rtbdp.
    native
        .request(json!({"type": "insert", "resource": "events", "data": {"id": "e1", "kind": "PushEvent"}}), "i")
        .await;
    assert_eq!(
        native.recv_until(|v| v["type"] == "event").await["data"]["id"],
        "e1"
    );
    let d = daptin.recv().await;
    assert_eq!(
        (d["topic"].as_str(), d["event"].as_str()),
        (Some("events"), Some("create"))
    );
    let r = rt.recv().await;
    assert_eq!(
        (r["table"].as_str(), r["row"]["id"].as_str()),
        (Some("events"), Some("e1"))
    );
}

#[tokio::test]
async fn dialect_paths_are_configurable() {
    let mut config = test_config();
    config.paths.daptin = "/daptin/live".into();
    config.paths.jac = "/jac".into();
    let server = start(config).await;
    let mut daptin = connect(server.addr, "/daptin/live").await;
    assert_eq!(daptin.recv().await["type"], "session");
    let mut jac = connect(server.addr, "/jac").await;
    assert_eq!(jac.recv().await["type"], "connection");
    let (status, _) = http_get(server.addr, "/live").await;
    assert_eq!(status, 404, "the default path is free once moved");

    // Clashing or reserved paths are configuration errors, not panics.
    let mut clash = test_config();
    clash.paths.jac = "/ws".into();
    assert!(switchboard::Server::start(clash).await.is_err());
    let mut reserved = test_config();
    reserved.paths.rtbdp = "/metrics".into();
    assert!(switchboard::Server::start(reserved).await.is_err());
}
