//! jac-cloud's `/websocket`, driven with the seed's JS snippets.

use std::time::Duration;

use integration_tests::*;
use serde_json::{json, Value};

const PUBLIC_ROOT: &str = "n::000000000000000000000001";

async fn jac(addr: std::net::SocketAddr, query: &str, headers: &[(&str, &str)]) -> (Client, Value) {
    let mut c = connect_with(addr, &format!("/websocket{query}"), headers).await;
    let first = c.recv().await;
    assert_eq!(first["type"], "connection", "{first}");
    (c, first["data"].clone())
}

#[tokio::test]
async fn connection_walkers_and_notifications() {
    let dir = plugin_dir(&[example_plugin("chat")]);
    let server = start(config_with_plugins(dir.path(), false)).await;
    let t = token("672b35cec309e5ef8469c372", None, json!({}));
    let bearer = format!("Bearer {t}");

    // Not authenticated; authenticated via the npm `ws` library's header.
    let (mut anon, anon_info) = jac(server.addr, "", &[]).await;
    assert_eq!(anon_info["root_id"], PUBLIC_ROOT);
    assert!(anon_info["client_id"]
        .as_str()
        .is_some_and(|s| s.contains(':')));
    assert!(anon_info["channel_id"].is_string());
    let (mut user, user_info) = jac(
        server.addr,
        "?channel_id=anystring",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(user_info["root_id"], "672b35cec309e5ef8469c372");
    assert_eq!(user_info["channel_id"], "anystring");
    let (mut group, _) = jac(server.addr, "?channel_id=anystring", &[]).await;
    let t2 = token("n::sender", None, json!({}));
    let bearer2 = format!("Bearer {t2}");
    let (mut sender, _) = jac(server.addr, "", &[("authorization", &bearer2)]).await;

    // TRIGGER WALKER EVENT with "response": true → jac-cloud's reply shape.
    sender
        .send(json!({"type": "walker", "walker": "echo", "response": true, "context": {"val": 1}}))
        .await;
    let resp = sender.recv().await;
    assert_eq!(
        resp,
        json!({"status": 200, "reports": [{"val": 1}], "returns": {"val": 1}})
    );
    // Without "response": nothing comes back.
    sender
        .send(json!({"type": "walker", "walker": "echo", "context": {}}))
        .await;
    sender.expect_silence(Duration::from_millis(200)).await;
    // As in jac-cloud, walkers need an authenticated caller by default.
    anon.send(json!({"type": "walker", "walker": "echo", "response": true, "context": {}}))
        .await;
    let refused = anon.recv().await;
    assert_eq!(refused["type"], "walker", "{refused}");
    assert_eq!(refused["code"], "FORBIDDEN");

    // TRIGGER CLIENT / CHANNEL / USER EVENT: data arrives bare.
    let chat = json!({"type": "chat", "data": {"any_field": "any_value"}});
    sender
        .send(json!({"type": "client", "client_ids": [user_info["client_id"]], "data": chat}))
        .await;
    assert_eq!(user.recv().await, chat);
    anon.send(json!({"type": "channel", "channel_ids": ["anystring"], "data": chat}))
        .await;
    assert_eq!(user.recv().await, chat);
    assert_eq!(group.recv().await, chat);
    sender
        .send(json!({"type": "user", "root_ids": [user_info["root_id"]], "data": chat}))
        .await;
    assert_eq!(user.recv().await, chat);
    group.expect_silence(Duration::from_millis(100)).await;

    // Walkers notify channels and users (socket.notify_channels / notify_users).
    sender.send(json!({"type": "walker", "walker": "send_chat_to_group", "context": {"channel_id": "anystring", "message": "m"}}))
        .await;
    assert_eq!(
        group.recv().await,
        json!({"type": "chat", "data": {"message": "m"}})
    );
    assert_eq!(user.recv().await["type"], "chat");

    // TRIGGER CONNECTION EVENT.
    user.send(json!({"type": "connection"})).await;
    assert_eq!(user.recv().await["data"], user_info);

    // Errors in jac-cloud's shapes.
    anon.send(json!({"type": "teleport"})).await;
    assert_eq!(anon.recv().await["error"], "Not a valid event!");
    anon.send(json!({"type": "walker", "walker": "nope", "response": true}))
        .await;
    let err = anon.recv().await;
    assert_eq!(err["type"], "walker");
    assert!(
        err["error"].as_str().is_some_and(|e| e.contains("nope")),
        "{err}"
    );
}

#[tokio::test]
async fn change_user_migrates_public_to_authenticated_and_back() {
    let server = start_default().await;
    let (mut c, info) = jac(server.addr, "", &[]).await;
    assert_eq!(info["root_id"], PUBLIC_ROOT);
    let t = token("bob", None, json!({}));
    // Default JavaScript WebSocket: authenticate in-band.
    c.send(json!({"type": "change_user", "token": format!("Bearer {t}")}))
        .await;
    let again = c.recv().await;
    assert_eq!(again["type"], "connection");
    assert_eq!(again["data"]["root_id"], "bob");
    assert_eq!(
        again["data"]["client_id"], info["client_id"],
        "same connection"
    );

    let t2 = token("carol", None, json!({}));
    let (mut other, _) = jac(
        server.addr,
        "",
        &[("authorization", &format!("Bearer {t2}"))],
    )
    .await;
    other
        .send(json!({"type": "user", "root_ids": ["bob"], "data": {"hi": 1}}))
        .await;
    assert_eq!(c.recv().await, json!({"hi": 1}));

    c.send(json!({"type": "change_user"})).await;
    assert_eq!(c.recv().await["data"]["root_id"], PUBLIC_ROOT);
}
