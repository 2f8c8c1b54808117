//! Channels: subscribe / unsubscribe / publish with requestId echo, and
//! targeted sends to users, channels and clients.

use std::time::Duration;

use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn publish_reaches_subscribers_with_request_ids_echoed() {
    let server = start_default().await;
    let (mut a, _) = connect_native(server.addr, "").await;
    let (mut b, hello_b) = connect_native(server.addr, "").await;

    let sub = b
        .request(json!({"type": "subscribe", "channel": "news"}), "s1")
        .await;
    assert_eq!(sub["type"], "subscribed");
    assert_eq!(sub["channel"], "news");

    let published = a
        .request(
            json!({"type": "publish", "channel": "news", "message": {"text": "hi"}}),
            "p1",
        )
        .await;
    assert_eq!(published["type"], "published");
    assert_eq!(published["delivered"], 1);

    let msg = b.recv().await;
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["channel"], "news");
    assert_eq!(msg["data"], json!({"text": "hi"}));
    assert!(msg["from"]["clientId"].is_string());

    let unsub = b
        .request(json!({"type": "unsubscribe", "channel": "news"}), "u1")
        .await;
    assert_eq!(unsub["type"], "unsubscribed");
    let published = a
        .request(
            json!({"type": "publish", "channel": "news", "message": 2}),
            "p2",
        )
        .await;
    assert_eq!(published["delivered"], 0);
    b.expect_silence(Duration::from_millis(200)).await;
    assert!(hello_b["clientId"].is_string());
}

#[tokio::test]
async fn subscription_filters_select_messages() {
    let server = start_default().await;
    let (mut a, _) = connect_native(server.addr, "").await;
    let (mut b, _) = connect_native(server.addr, "").await;
    b.request(
        json!({"type": "subscribe", "channel": "orders", "filter": {"region": "eu"}}),
        "s",
    )
    .await;
    for region in ["us", "eu"] {
        a.request(
            json!({"type": "publish", "channel": "orders", "message": {"region": region}}),
            region,
        )
        .await;
    }
    let msg = b.recv().await;
    assert_eq!(msg["data"]["region"], "eu");
    b.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn targeted_sends_reach_users_clients_and_channels() {
    let server = start_default().await;
    let alice = token("alice", None, json!({}));
    let (mut a1, _) = connect_native(server.addr, &format!("?token={alice}")).await;
    let (mut a2, _) = connect_native(server.addr, &format!("?token={alice}")).await;
    let (mut bob, hello_bob) = connect_native(server.addr, "").await;
    let sam = token("sam", None, json!({}));
    let (mut sender, _) = connect_native(server.addr, &format!("?token={sam}")).await;
    let (mut listener, _) = connect_native(server.addr, "").await;
    listener
        .request(json!({"type": "subscribe", "channel": "room"}), "s")
        .await;

    let sent = sender
        .request(
            json!({"type": "send", "users": ["alice"], "data": {"n": 1}}),
            "1",
        )
        .await;
    assert_eq!(sent["type"], "sent");
    assert_eq!(sent["delivered"], 2, "both of alice's connections");
    for client in [&mut a1, &mut a2] {
        let direct = client.recv().await;
        assert_eq!(direct["type"], "direct");
        assert_eq!(direct["data"], json!({"n": 1}));
    }

    let bob_id = hello_bob["clientId"].as_str().expect("id").to_owned();
    let sent = sender
        .request(
            json!({"type": "send", "clients": [bob_id], "data": "psst"}),
            "2",
        )
        .await;
    assert_eq!(sent["delivered"], 1);
    assert_eq!(bob.recv().await["data"], "psst");

    let sent = sender
        .request(
            json!({"type": "send", "channels": ["room"], "data": {"x": 1}}),
            "3",
        )
        .await;
    assert_eq!(sent["delivered"], 1);
    let msg = listener.recv().await;
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["channel"], "room");

    let sent = sender
        .request(
            json!({"type": "send", "clients": ["nobody"], "data": 1}),
            "4",
        )
        .await;
    assert_eq!(sent["delivered"], 0);
    a1.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn ping_gets_pong_with_request_id() {
    let server = start_default().await;
    let (mut c, _) = connect_native(server.addr, "").await;
    let pong = c.request(json!({"type": "ping"}), "42").await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["requestId"], "42");
}
