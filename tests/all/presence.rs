//! Presence: join / leave / list with events; closing leaves everything.

use std::time::Duration;

use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn join_leave_list_and_disconnect_events() {
    let server = start_default().await;
    // Authenticated: it may message others, so it sees their client ids.
    let w = token("watcher", None, json!({}));
    let (mut watcher, _) = connect_native(server.addr, &format!("?token={w}")).await;
    watcher
        .request(json!({"type": "subscribe", "channel": "lobby"}), "s")
        .await;
    let (mut alice, hello) = connect_native(server.addr, "").await;
    let alice_id = hello["clientId"].clone();

    let joined = alice
        .request(
            json!({"type": "join", "channel": "lobby", "info": {"name": "Alice"}}),
            "j",
        )
        .await;
    assert_eq!(joined["type"], "joined");
    let event = watcher.recv().await;
    assert_eq!(event["type"], "presence");
    assert_eq!(event["event"], "join");
    assert_eq!(event["member"]["clientId"], alice_id);
    assert_eq!(event["member"]["info"]["name"], "Alice");

    let list = watcher
        .request(json!({"type": "presence", "channel": "lobby"}), "l")
        .await;
    assert_eq!(list["members"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["members"][0]["info"]["name"], "Alice");

    let left = alice
        .request(json!({"type": "leave", "channel": "lobby"}), "x")
        .await;
    assert_eq!(left["wasPresent"], true);
    let event = watcher.recv().await;
    assert_eq!(event["event"], "leave");

    // Rejoin, then drop the connection: the leave is announced for it.
    alice
        .request(
            json!({"type": "join", "channel": "lobby", "info": {}}),
            "j2",
        )
        .await;
    assert_eq!(watcher.recv().await["event"], "join");
    drop(alice);
    let event = watcher.recv().await;
    assert_eq!(event["event"], "leave");
    assert_eq!(event["member"]["clientId"], alice_id);
    let list = watcher
        .request(json!({"type": "presence", "channel": "lobby"}), "l2")
        .await;
    assert_eq!(list["members"], json!([]));
    watcher.expect_silence(Duration::from_millis(100)).await;
}
