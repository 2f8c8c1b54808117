//! Extra listeners: each seed's client at its documented URL, unchanged
//! apart from host and port — rtbdp at the root of its own port — all on
//! one bus, with the same auth, limits and metrics.

use integration_tests::*;
use serde_json::json;
use switchboard::config::{DialectName, ListenerConfig, ResourceConfig};

#[tokio::test]
async fn every_seed_url_is_served_on_one_bus() {
    let mut config = test_config();
    config
        .resources
        .insert("events".into(), ResourceConfig::default());
    for dialect in [DialectName::Daptin, DialectName::Jac, DialectName::Rtbdp] {
        config.listeners.push(ListenerConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            dialect,
        });
    }
    config.limits.max_payload_bytes = 4096;
    let server = start(config).await;
    let [daptin_at, jac_at, rtbdp_at] = [
        server.listeners[0],
        server.listeners[1],
        server.listeners[2],
    ];

    // rtbdp's client connects to the root of its port.
    let mut rt = connect(rtbdp_at, "/").await;
    rt.send(json!({"subscribe": [{"id": 0, "table": "events", "filters": []}]}))
        .await;
    // Daptin's at /live, jac-cloud's at /websocket (any path is theirs).
    let t = token("ann", None, json!({}));
    let mut daptin = connect(daptin_at, &format!("/live?token={t}")).await;
    let session = daptin.recv().await;
    assert_eq!(
        (session["type"].as_str(), session["user"]["id"].as_str()),
        (Some("session"), Some("ann")),
        "{session}"
    );
    let mut jac = connect(jac_at, "/websocket?channel_id=lobby").await;
    assert_eq!(jac.recv().await["type"], "connection");
    // s3db.js's at the main port's root.
    let (mut native, _) = connect_native(server.addr, "").await;

    native
        .request(json!({"type": "insert", "resource": "events", "data": {"id": "e1", "kind": "PushEvent"}}), "i")
        .await;
    let row = rt.recv().await;
    assert_eq!(
        (row["table"].as_str(), row["row"]["id"].as_str()),
        (Some("events"), Some("e1")),
        "{row}"
    );
    daptin
        .send(json!({"method": "new-message", "attributes": {"topicName": "lobby", "message": {"hi": 1}}}))
        .await;
    assert_eq!(
        jac.recv().await,
        json!({"hi": 1}),
        "one bus across listeners"
    );

    // The same limits: an oversized frame closes with 1009 on any listener.
    let mut big = connect(jac_at, "/websocket").await;
    big.recv().await;
    big.send_text(&"x".repeat(8192)).await;
    let close = big.recv_close().await.expect("close");
    assert_eq!(u16::from(close.code), 1009);
    let mut refused = connect(daptin_at, "/live?token=nope").await;
    let close = refused.recv_close().await.expect("close");
    assert_eq!(
        u16::from(close.code),
        1008,
        "a bad token is refused there too"
    );
    // And one set of metrics.
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    let open: f64 = metrics
        .lines()
        .find(|l| l.starts_with("switchboard_connections "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("connections gauge");
    assert!(
        open >= 4.0,
        "connections on every listener are counted: {open}"
    );
}
