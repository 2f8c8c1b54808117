//! Scripted sockets: the SoliDB chat room recast as a WASM socket script,
//! with channels and presence, and bridged to native subscribers.

use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn chat_room_with_presence() {
    let dir = plugin_dir(&[example_plugin("chatroom")]);
    let server = start(config_with_plugins(dir.path(), false)).await;

    let mut alice = connect(server.addr, "/chat?room=general&name=Alice").await;
    let init = alice.recv().await;
    assert_eq!(init["type"], "init", "{init}");
    assert_eq!(init["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(init["users"][0]["user_info"]["name"], "Alice");

    let (mut native, _) = connect_native(server.addr, "").await;
    native
        .request(json!({"type": "subscribe", "channel": "chat:general"}), "s")
        .await;

    let mut bob = connect(server.addr, "/chat?room=general&name=Bob").await;
    let init = bob.recv().await;
    assert_eq!(init["users"].as_array().map(Vec::len), Some(2));
    let joined = alice.recv().await;
    assert_eq!(
        joined,
        json!({"type": "presence_join", "user": joined["user"].clone()})
    );
    assert_eq!(joined["user"]["name"], "Bob");

    bob.send(json!({"type": "message", "text": "hi all"})).await;
    let expected = json!({"type": "chat", "from": "Bob", "text": "hi all"});
    assert_eq!(alice.recv().await, expected);
    assert_eq!(
        bob.recv().await,
        expected,
        "the sender gets its broadcast too"
    );
    let bridged = native.recv_until(|v| v["type"] != "presence").await;
    assert_eq!(bridged["type"], "message");
    assert_eq!(bridged["data"], expected, "native subscribers see the room");

    drop(bob);
    let left = alice.recv().await;
    assert_eq!(left["type"], "presence_leave");
    assert_eq!(left["user"]["name"], "Bob");

    // Other rooms are separate.
    let mut carol = connect(server.addr, "/chat?room=other&name=Carol").await;
    assert_eq!(
        carol.recv().await["users"].as_array().map(Vec::len),
        Some(1)
    );

    let (status, _) = http_get(server.addr, "/no-such-socket").await;
    assert_eq!(status, 404);
}
