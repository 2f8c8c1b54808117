//! Publishes, targeted sends, walkers' notifications and Daptin topics
//! across nodes, in every dialect, with filters applied on the receiving
//! node.

use std::time::Duration;

use integration_tests::redis::RedisServer;
use integration_tests::*;
use serde_json::json;

use super::{nodes, settle_all};

#[tokio::test]
async fn a_publish_on_one_node_reaches_every_dialect_on_the_others() {
    let redis = RedisServer::start();
    let servers = nodes(&redis, 3).await;
    let (a, b, c) = (servers[0].addr, servers[1].addr, servers[2].addr);

    let (mut filtered, _) = connect_native(b, "").await;
    let sub = filtered
        .request(
            json!({"type": "subscribe", "channel": "x", "filter": {"kind": "a"}}),
            "s",
        )
        .await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    let (mut all, _) = connect_native(b, "").await;
    all.request(json!({"type": "subscribe", "channel": "x"}), "s")
        .await;
    let mut daptin = connect(c, "/live").await;
    daptin.recv().await;
    daptin
        .send(json!({"method": "subscribe", "attributes": {"topicName": "x"}}))
        .await;
    daptin.recv().await;
    let mut jac = connect(c, "/websocket?channel_id=x").await;
    jac.recv().await;
    settle_all(&servers).await;

    let (mut publisher, _) = connect_native(a, "").await;
    for kind in ["b", "a"] {
        let published = publisher
            .request(
                json!({"type": "publish", "channel": "x", "message": {"kind": kind}}),
                kind,
            )
            .await;
        assert_eq!(published["type"], "published", "{published}");
        assert_eq!(
            published["delivered"], 0,
            "delivered counts this node's connections"
        );
    }
    let got = filtered.recv().await;
    assert_eq!(
        (got["type"].as_str(), got["data"]["kind"].as_str()),
        (Some("message"), Some("a"))
    );
    filtered.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(all.recv().await["data"]["kind"], "b");
    assert_eq!(all.recv().await["data"]["kind"], "a");
    let d = daptin.recv().await;
    assert_eq!(
        (d["topic"].as_str(), d["event"].as_str()),
        (Some("x"), Some("new-message")),
        "{d}"
    );
    assert_eq!(daptin.recv().await["data"]["kind"], "a");
    assert_eq!(jac.recv().await, json!({"kind": "b"}));
    assert_eq!(jac.recv().await, json!({"kind": "a"}));

    // A Daptin new-message and a jac channel event on C reach B.
    let mut dp = connect(c, "/live").await;
    dp.recv().await;
    dp.send(json!({"method": "new-message", "attributes": {"topicName": "x", "message": {"kind": "a", "by": "daptin"}}}))
        .await;
    assert_eq!(filtered.recv().await["data"]["by"], "daptin");
    jac.send(json!({"type": "channel", "channel_ids": ["x"], "data": {"kind": "a", "by": "jac"}}))
        .await;
    assert_eq!(filtered.recv().await["data"]["by"], "jac");
    // No node delivers its own publishes twice.
    all.recv().await;
    all.recv().await;
    all.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn sends_reach_users_and_connections_on_any_node() {
    let redis = RedisServer::start();
    let servers = nodes(&redis, 3).await;
    let (a, b, c) = (servers[0].addr, servers[1].addr, servers[2].addr);
    let bob = token("bob", None, json!({}));
    let (mut bob_a, _) = connect_native(a, &format!("?token={bob}")).await;
    let (mut bob_b, hello) = connect_native(b, &format!("?token={bob}")).await;
    let bob_b_id = hello["clientId"].as_str().expect("client id").to_owned();
    settle_all(&servers).await;

    let carol = token("carol", None, json!({}));
    let (mut sender, _) = connect_native(c, &format!("?token={carol}")).await;
    let sent = sender
        .request(
            json!({"type": "send", "users": ["bob"], "data": {"hi": "bob"}}),
            "u",
        )
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    for bob in [&mut bob_a, &mut bob_b] {
        let got = bob.recv().await;
        assert_eq!(got["data"], json!({"hi": "bob"}), "{got}");
    }
    let sent = sender
        .request(
            json!({"type": "send", "clients": [bob_b_id], "data": {"only": "b"}}),
            "c",
        )
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    assert_eq!(bob_b.recv().await["data"], json!({"only": "b"}));
    bob_a.expect_silence(Duration::from_millis(300)).await;

    // jac-cloud's user and client events.
    let mut jac = connect(c, &format!("/websocket?token={carol}")).await;
    jac.recv().await;
    jac.send(json!({"type": "user", "root_ids": ["bob"], "data": {"jac": 1}}))
        .await;
    assert_eq!(bob_a.recv().await["data"], json!({"jac": 1}));
    assert_eq!(bob_b.recv().await["data"], json!({"jac": 1}));
    jac.send(json!({"type": "client", "client_ids": [bob_b_id], "data": {"jac": 2}}))
        .await;
    assert_eq!(bob_b.recv().await["data"], json!({"jac": 2}));

    // A user who left a node is no longer sent to there.
    drop(bob_a);
    eventually("bob's node list drops node A", || async {
        redis.cli(&["SCARD", "sb:u:bob"]) == "1"
    })
    .await;
}

#[tokio::test]
async fn walkers_notify_users_clients_and_channels_on_other_nodes() {
    let redis = RedisServer::start();
    let dir = plugin_dir(&[example_plugin("chat")]);
    let mut servers = Vec::new();
    for _ in 0..2 {
        let mut config = cluster_config(&redis);
        config.plugins = config_with_plugins(dir.path(), false).plugins;
        servers.push(start(config).await);
    }
    let (a, b) = (servers[0].addr, servers[1].addr);
    let bob = token("bob", None, json!({}));
    let (mut bob_b, hello) = connect_native(b, &format!("?token={bob}")).await;
    let bob_id = hello["clientId"].clone();
    let (mut room_b, _) = connect_native(b, "").await;
    room_b
        .request(json!({"type": "subscribe", "channel": "room1"}), "s")
        .await;
    settle_all(&servers).await;

    let carol = token("carol", None, json!({}));
    let (mut caller, _) = connect_native(a, &format!("?token={carol}")).await;
    for (walker, context) in [
        (
            "send_chat_to_group",
            json!({"channel_id": "room1", "message": "g"}),
        ),
        (
            "send_chat_to_user",
            json!({"root_id": "bob", "message": "u"}),
        ),
        (
            "send_chat_to_client",
            json!({"client_id": bob_id, "message": "c"}),
        ),
    ] {
        let reply = caller
            .request(
                json!({"type": "walker", "walker": walker, "context": context}),
                walker,
            )
            .await;
        assert_eq!(reply["type"], "walker", "{reply}");
    }
    let note = room_b.recv().await;
    assert_eq!(note, json!({"type": "chat", "data": {"message": "g"}}));
    assert_eq!(bob_b.recv().await["data"]["message"], "u");
    assert_eq!(bob_b.recv().await["data"]["message"], "c");
}

async fn call(
    c: &mut Client,
    id: i64,
    method: &str,
    attributes: serde_json::Value,
) -> serde_json::Value {
    c.send(json!({"id": id, "method": method, "attributes": attributes}))
        .await;
    c.recv_until(|v| v["type"] == "response" && v["id"] == id)
        .await
}

#[tokio::test]
async fn daptin_topics_created_on_one_node_exist_on_all() {
    let redis = RedisServer::start();
    let servers = nodes(&redis, 2).await;
    let (a, b) = (servers[0].addr, servers[1].addr);
    let ann = token("ann", None, json!({}));
    let mut on_a = connect(a, &format!("/live?token={ann}")).await;
    on_a.recv().await;
    let created = call(&mut on_a, 1, "create-topic", json!({"name": "lobby"})).await;
    assert_eq!(created["ok"], true, "{created}");

    let mut on_b = connect(b, &format!("/live?token={ann}")).await;
    on_b.recv().await;
    let listed = call(&mut on_b, 2, "list-topic", json!({}))
        .await
        .to_string();
    assert!(listed.contains("lobby"), "{listed}");
    let clash = call(&mut on_b, 3, "create-topic", json!({"name": "lobby"})).await;
    assert_eq!(
        clash["ok"], false,
        "one name, one topic, cluster-wide: {clash}"
    );

    // Messages on the topic cross nodes like any channel's.
    on_a.send(json!({"method": "subscribe", "attributes": {"topicName": "lobby"}}))
        .await;
    on_a.recv().await;
    settle_all(&servers).await;
    on_b.send(
        json!({"method": "new-message", "attributes": {"topicName": "lobby", "message": {"m": 1}}}),
    )
    .await;
    assert_eq!(on_a.recv().await["data"], json!({"m": 1}));

    let destroyed = call(&mut on_b, 4, "destroy-topic", json!({"name": "lobby"})).await;
    assert_eq!(destroyed["ok"], true, "{destroyed}");
    let gone = call(&mut on_a, 5, "get-topic", json!({"name": "lobby"})).await;
    assert_eq!(gone["ok"], false, "{gone}");

    // An anonymous creator's topic goes with its connection, on every node.
    let mut anon = connect(b, "/live").await;
    anon.recv().await;
    assert_eq!(
        call(&mut anon, 6, "create-topic", json!({"name": "temp"})).await["ok"],
        true
    );
    assert_eq!(
        call(&mut on_a, 7, "get-topic", json!({"name": "temp"})).await["ok"],
        true
    );
    drop(anon);
    eventually("the anonymous topic goes", || async {
        redis.cli(&["HEXISTS", "sb:topics", "temp"]) == "0"
    })
    .await;
}

/// Nodes with the `guard` example and the chat-room socket loaded.
async fn plugin_nodes(
    redis: &RedisServer,
    n: usize,
) -> (Vec<switchboard::Server>, tempfile::TempDir) {
    let dir = plugin_dir(&[example_plugin("guard"), example_plugin("chatroom")]);
    let mut servers = Vec::new();
    for _ in 0..n {
        let mut config = cluster_config(redis);
        config.plugins = config_with_plugins(dir.path(), false).plugins;
        servers.push(start(config).await);
    }
    (servers, dir)
}

#[tokio::test]
async fn guard_filters_hold_on_the_receiving_node() {
    let redis = RedisServer::start();
    let (servers, _dir) = plugin_nodes(&redis, 2).await;
    let (a, b) = (servers[0].addr, servers[1].addr);
    let acme = token("ann", Some("user"), json!({"tenant": "acme"}));
    let (mut ann, _) = connect_native(b, &format!("?token={acme}")).await;
    let sub = ann
        .request(
            json!({"type": "subscribe", "channel": "orders", "filter": {"tenant": "globex"}}),
            "s",
        )
        .await;
    assert_eq!(
        sub["filter"]["tenant"], "acme",
        "the guard's filter replaces the client's: {sub}"
    );
    settle_all(&servers).await;

    let admin = token("root", Some("admin"), json!({}));
    let (mut root, _) = connect_native(a, &format!("?token={admin}")).await;
    for tenant in ["globex", "acme", "initech"] {
        root.request(
            json!({"type": "publish", "channel": "orders", "message": {"tenant": tenant}}),
            tenant,
        )
        .await;
    }
    assert_eq!(ann.recv().await["data"]["tenant"], "acme");
    ann.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_scripted_chat_room_spans_nodes() {
    let redis = RedisServer::start();
    let (servers, _dir) = plugin_nodes(&redis, 2).await;
    let (a, b) = (servers[0].addr, servers[1].addr);
    let mut alice = connect(a, "/chat?room=general&name=Alice").await;
    assert_eq!(alice.recv().await["type"], "init");
    settle_all(&servers).await;

    let mut bob = connect(b, "/chat?room=general&name=Bob").await;
    let init = bob.recv().await;
    let mut names: Vec<&str> = init["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["user_info"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["Alice", "Bob"],
        "the room lists both nodes' members: {init}"
    );
    let joined = alice.recv().await;
    assert_eq!(
        (joined["type"].as_str(), joined["user"]["name"].as_str()),
        (Some("presence_join"), Some("Bob"))
    );
    settle_all(&servers).await;

    bob.send(json!({"type": "message", "text": "hi from B"}))
        .await;
    let expected = json!({"type": "chat", "from": "Bob", "text": "hi from B"});
    assert_eq!(alice.recv().await, expected);
    assert_eq!(bob.recv().await, expected);
    drop(bob);
    let left = alice.recv().await;
    assert_eq!(
        (left["type"].as_str(), left["user"]["name"].as_str()),
        (Some("presence_leave"), Some("Bob"))
    );
}
