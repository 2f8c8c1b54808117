//! Daptin's `/live`, driven the way the seed's `DaptinWebSocket` client
//! class drives it.

use std::time::Duration;

use integration_tests::*;
use serde_json::{json, Value};
use switchboard::config::ResourceConfig;

async fn live(addr: std::net::SocketAddr, token: &str) -> Client {
    let mut c = connect(addr, &format!("/live?token={token}")).await;
    let session = c.recv().await;
    assert_eq!(
        (session["type"].as_str(), session["status"].as_str()),
        (Some("session"), Some("open")),
        "{session}"
    );
    c
}

async fn call(c: &mut Client, id: i64, method: &str, attributes: Value) -> Value {
    c.send(json!({"id": id, "method": method, "attributes": attributes}))
        .await;
    c.recv_until(|v| v["type"] == "response" && v["id"] == id)
        .await
}

fn server_config(dir: &std::path::Path) -> switchboard::Config {
    let mut config = config_with_plugins(dir, false);
    config
        .resources
        .insert("order".into(), ResourceConfig::default());
    config.resources.insert(
        "user_account".into(),
        ResourceConfig {
            auth: vec!["admin".into()],
            protected: vec!["password".into()],
            ..Default::default()
        },
    );
    config
}

#[tokio::test]
async fn topics_messages_and_both_method_spellings() {
    let dir = plugin_dir(&[]);
    let server = start(server_config(dir.path())).await;
    let t = token("alice", Some("user"), json!({}));
    let mut ws = live(server.addr, &t).await;
    let mut other = live(server.addr, &t).await;

    // createTopic, then subscribe(['chat-room-1', 'order']) as one comma list.
    let created = call(&mut ws, 1, "create-topic", json!({"name": "chat-room-1"})).await;
    assert_eq!(created["ok"], true, "{created}");
    assert_eq!(created["method"], "create-topic");
    let sub = call(
        &mut ws,
        2,
        "subscribe",
        json!({"topicName": "chat-room-1,order"}),
    )
    .await;
    assert_eq!(sub["ok"], true);

    // publish(topic, message): a string, as in the seed's `ws.publish('chat-room-1', 'Hello!')`.
    other
        .send(json!({"method": "new-message", "attributes": {"topicName": "chat-room-1", "message": "Hello!"}}))
        .await;
    let event = ws.recv_until(|v| v["type"] == "event").await;
    assert_eq!(event["topic"], "chat-room-1");
    assert_eq!(event["event"], "new-message");
    assert_eq!(event["data"], "Hello!");
    // ...and an object.
    call(
        &mut other,
        3,
        "publish",
        json!({"topicName": "chat-room-1", "message": {"text": "hi"}}),
    )
    .await;
    let event = ws.recv_until(|v| v["type"] == "event").await;
    assert_eq!(event["data"], json!({"text": "hi"}));

    let listed = call(&mut ws, 4, "list-topic", json!({})).await;
    let names: Vec<&str> = listed["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for name in ["chat-room-1", "order"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert!(
        !names.contains(&"user_account"),
        "only topics the caller may subscribe to are listed: {names:?}"
    );
    let got = call(&mut ws, 5, "get-topic", json!({"topicName": "chat-room-1"})).await;
    assert_eq!(got["data"]["type"], "user");
    assert_eq!(got["data"]["subscribers"], 1);
    let got = call(&mut ws, 6, "get-topic", json!({"topicName": "order"})).await;
    assert_eq!(got["data"]["type"], "system");

    // The real server's spellings.
    assert_eq!(
        call(&mut ws, 7, "create-topicName", json!({"name": "room-2"})).await["ok"],
        true
    );
    let dup = call(&mut ws, 8, "create-topicName", json!({"name": "room-2"})).await;
    assert_eq!(
        (dup["ok"].as_bool(), dup["error"]["code"].as_str()),
        (Some(false), Some("CONFLICT"))
    );
    assert_eq!(
        call(&mut ws, 9, "destroy-topicName", json!({"name": "room-2"})).await["ok"],
        true
    );
    assert_eq!(call(&mut ws, 10, "ping", json!({})).await["data"], "pong");
    assert_eq!(
        call(
            &mut ws,
            11,
            "unsubscribe",
            json!({"topicName": "chat-room-1"})
        )
        .await["ok"],
        true
    );
    other
        .send(json!({"method": "new-message", "attributes": {"topicName": "chat-room-1", "message": "gone"}}))
        .await;
    ws.expect_silence(Duration::from_millis(200)).await;

    let bad = call(&mut ws, 12, "teleport", json!({})).await;
    assert_eq!(bad["error"]["code"], "UNKNOWN_MESSAGE_TYPE");
    let bad = call(&mut ws, 13, "subscribe", json!({})).await;
    assert_eq!(bad["error"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn system_topics_carry_permission_aware_change_events() {
    let dir = plugin_dir(&[example_plugin("guard")]);
    let server = start(server_config(dir.path())).await;
    let admin = token("root", Some("admin"), json!({}));
    let acme = token("ann", Some("user"), json!({"tenant": "acme"}));
    let mut root = live(server.addr, &admin).await;
    let mut ann = live(server.addr, &acme).await;

    assert_eq!(
        call(
            &mut root,
            1,
            "subscribe",
            json!({"topicName": "order,user_account"})
        )
        .await["ok"],
        true
    );
    assert_eq!(
        call(&mut ann, 1, "subscribe", json!({"topicName": "order"})).await["ok"],
        true
    );
    let denied = call(
        &mut ann,
        2,
        "subscribe",
        json!({"topicName": "user_account"}),
    )
    .await;
    assert_eq!(
        denied["error"]["code"], "FORBIDDEN",
        "role list applies: {denied}"
    );

    let (mut writer, _) = connect_native(server.addr, &format!("?token={admin}")).await;
    for (id, tenant) in [("o1", "globex"), ("o2", "acme")] {
        writer
            .request(json!({"type": "insert", "resource": "order", "data": {"id": id, "tenant": tenant}}), id)
            .await;
    }
    writer
        .request(
            json!({"type": "update", "resource": "order", "id": "o2", "data": {"paid": true}}),
            "u",
        )
        .await;
    writer
        .request(
            json!({"type": "delete", "resource": "order", "id": "o2"}),
            "d",
        )
        .await;
    writer
        .request(
            json!({"type": "insert", "resource": "user_account", "data": {"id": "u1", "password": "x"}}),
            "ua",
        )
        .await;

    let mut seen = Vec::new();
    for _ in 0..5 {
        let e = root.recv_until(|v| v["type"] == "event").await;
        seen.push((
            e["topic"].as_str().unwrap_or("").to_owned(),
            e["event"].as_str().unwrap_or("").to_owned(),
        ));
        if e["topic"] == "user_account" {
            assert_eq!(
                e["data"],
                json!({"type": "user_account", "id": "u1", "attributes": {"id": "u1"}})
            );
        }
    }
    assert_eq!(
        seen,
        [
            ("order", "create"),
            ("order", "create"),
            ("order", "update"),
            ("order", "delete"),
            ("user_account", "create")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    // Ann reads only acme's orders: the globex create never reaches her.
    let e = ann.recv_until(|v| v["type"] == "event").await;
    assert_eq!(
        (e["event"].as_str(), e["data"]["id"].as_str()),
        (Some("create"), Some("o2"))
    );
    assert_eq!(e["data"]["attributes"]["tenant"], "acme");
    assert_eq!(ann.recv().await["event"], "update");
    assert_eq!(ann.recv().await["event"], "delete");
    ann.expect_silence(Duration::from_millis(200)).await;
}
