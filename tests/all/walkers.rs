//! Walkers from WASM plugins over ws and HTTP, and the host interface's
//! notifications (self, users, channels, clients).

use integration_tests::*;
use serde_json::{json, Value};

async fn chat_server() -> (switchboard::Server, tempfile::TempDir) {
    let dir = plugin_dir(&[example_plugin("chat"), example_plugin("py-echo")]);
    let server = start(config_with_plugins(dir.path(), false)).await;
    (server, dir)
}

#[tokio::test]
async fn echo_walker_over_ws_and_http() {
    let (server, _dir) = chat_server().await;
    let t = token("alice", None, json!({}));
    let (mut c, _) = connect_native(server.addr, &format!("?token={t}")).await;
    let reply = c
        .request(
            json!({"type": "walker", "walker": "echo", "context": {"val": 1}}),
            "w1",
        )
        .await;
    assert_eq!(reply["type"], "walker", "{reply}");
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["returns"], json!({"val": 1}));
    assert_eq!(reply["reports"], json!([{"val": 1}]));

    let (status, body) = http_request(
        server.addr,
        "POST",
        "/walker/echo",
        Some(&t),
        r#"{"val":2}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["returns"], json!({"val": 2}));

    let (status, body) = http_request(server.addr, "POST", "/walker/nope", None, "{}").await;
    assert_eq!(status, 404);
    assert!(body.contains("NOT_FOUND"), "{body}");
    let (status, body) = http_request(server.addr, "POST", "/walker/echo", Some(&t), "[1]").await;
    assert_eq!(status, 400);
    assert!(body.contains("INVALID_JSON"), "{body}");
}

#[tokio::test]
async fn whoami_sees_the_verified_identity() {
    let (server, _dir) = chat_server().await;
    let t = token("alice", Some("admin"), json!({"tenant": "acme"}));
    let (mut c, hello) = connect_native(server.addr, &format!("?token={t}")).await;
    let reply = c
        .request(json!({"type": "walker", "walker": "whoami"}), "w")
        .await;
    let returns = &reply["returns"];
    assert_eq!(returns["user_id"], "alice", "{reply}");
    assert_eq!(returns["role"], "admin");
    assert_eq!(returns["client_id"], hello["clientId"]);
    let (status, body) = http_request(server.addr, "POST", "/walker/whoami", Some(&t), "").await;
    assert_eq!(status, 200);
    assert!(body.contains("alice"), "{body}");
}

#[tokio::test]
async fn walkers_notify_channels_users_clients_and_self() {
    let (server, _dir) = chat_server().await;
    let bob_token = token("bob", None, json!({}));
    let carol = token("carol", None, json!({}));
    let (mut caller, _) = connect_native(server.addr, &format!("?token={carol}")).await;
    let (mut room, _) = connect_native(server.addr, "").await;
    let (mut bob, bob_hello) = connect_native(server.addr, &format!("?token={bob_token}")).await;
    room.request(json!({"type": "subscribe", "channel": "room1"}), "s")
        .await;

    caller
        .request(
            json!({"type": "walker", "walker": "send_chat_to_group", "context": {"channel_id": "room1", "message": "hello"}}),
            "g",
        )
        .await;
    let note = room.recv().await;
    assert_eq!(note["type"], "chat", "{note}");

    caller
        .request(
            json!({"type": "walker", "walker": "send_chat_to_user", "context": {"root_id": "bob", "message": "hi bob"}}),
            "u",
        )
        .await;
    assert_eq!(bob.recv().await["type"], "chat");

    let bob_id = bob_hello["clientId"].clone();
    caller
        .request(
            json!({"type": "walker", "walker": "send_chat_to_client", "context": {"client_id": bob_id, "message": "psst"}}),
            "c",
        )
        .await;
    assert_eq!(bob.recv().await["type"], "chat");

    // notify_self frames arrive before the walker's reply.
    caller
        .send(json!({"type": "walker", "walker": "progress", "requestId": "p"}))
        .await;
    let first = caller.recv().await;
    assert_ne!(
        first["type"], "walker",
        "progress notification comes first: {first}"
    );
    caller.recv_until(|v| v["requestId"] == "p").await;
}

#[tokio::test]
async fn walkers_write_resources_and_their_writes_emit_events() {
    let dir = plugin_dir(&[example_plugin("chat")]);
    let mut config = config_with_plugins(dir.path(), false);
    config.resources.insert(
        "messages".into(),
        switchboard::config::ResourceConfig {
            protected: vec!["secret".into()],
            ..Default::default()
        },
    );
    let server = start(config).await;
    let (mut watcher, _) = connect_native(server.addr, "").await;
    watcher
        .request(json!({"type": "subscribe", "resource": "messages"}), "s")
        .await;
    let t = token("writer", None, json!({}));
    let (mut c, _) = connect_native(server.addr, &format!("?token={t}")).await;
    let reply = c
        .request(
            json!({"type": "walker", "walker": "save_message", "context": {"id": "w1", "text": "from wasm", "secret": "x"}}),
            "w",
        )
        .await;
    assert_eq!(
        reply["returns"],
        json!({"id": "w1", "text": "from wasm"}),
        "{reply}"
    );
    let event = watcher.recv().await;
    assert_eq!(
        (event["type"].as_str(), event["event"].as_str()),
        (Some("event"), Some("insert"))
    );
    assert_eq!(event["data"], json!({"id": "w1", "text": "from wasm"}));
    let got = c
        .request(
            json!({"type": "get", "resource": "messages", "id": "w1"}),
            "g",
        )
        .await;
    assert_eq!(got["data"]["text"], "from wasm");
    // Store errors come back to the walker as data, then to the client.
    let dup = c
        .request(
            json!({"type": "walker", "walker": "save_message", "context": {"id": "w1"}}),
            "d",
        )
        .await;
    assert_eq!(
        dup["code"], "CONFLICT",
        "the store's code reaches the client: {dup}"
    );
}
