//! One policy for every channel operation, whichever dialect carries it:
//! sends to channels, jac `channel` events, presence, resource-named
//! channels, internal streams, targeted sends, forged server frames,
//! client-id harvesting, scripted sockets.

use std::time::Duration;

use integration_tests::*;
use serde_json::json;

use super::{admin, config, native, refused, resource, tenant_user, with_guard};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_send_to_a_channel_and_a_jac_channel_event_meet_the_publish_guard() {
    let dir = with_guard(&[]);
    let server = start(config(dir.path())).await;
    let mut root = native(server.addr, Some(&admin())).await;
    root.request(json!({"type": "subscribe", "channel": "admin:ops"}), "s")
        .await;
    let user = tenant_user("ann", "acme", "user");
    let mut ann = native(server.addr, Some(&user)).await;
    refused(
        &mut ann,
        json!({"type": "send", "channels": ["admin:ops"], "data": {"x": 1}}),
        "FORBIDDEN",
    )
    .await;
    let mut jac = connect(server.addr, "/websocket").await;
    jac.recv().await;
    jac.send(json!({"type": "channel", "channel_ids": ["admin:ops"], "data": {"x": 2}}))
        .await;
    let err = jac.recv().await;
    assert_eq!(err["code"], "FORBIDDEN", "{err}");
    root.expect_silence(QUIET).await;
}

#[tokio::test]
async fn presence_of_admin_and_tenant_channels_is_guarded() {
    let dir = with_guard(&[]);
    let server = start(config(dir.path())).await;
    let mut anon = native(server.addr, None).await;
    let mut gus = native(server.addr, Some(&tenant_user("gus", "globex", "user"))).await;
    for (client, channel) in [(&mut anon, "admin:ops"), (&mut gus, "tenant:acme:room")] {
        refused(
            client,
            json!({"type": "join", "channel": channel}),
            "FORBIDDEN",
        )
        .await;
        refused(
            client,
            json!({"type": "presence", "channel": channel}),
            "FORBIDDEN",
        )
        .await;
    }
    let mut root = native(server.addr, Some(&admin())).await;
    let list = root
        .request(json!({"type": "presence", "channel": "admin:ops"}), "l")
        .await;
    assert_eq!(list["members"], json!([]), "nobody got in: {list}");
}

#[tokio::test]
async fn no_client_chosen_name_reaches_a_resource_stream() {
    let dir = plugin_dir(&[]);
    let server = start(config(dir.path())).await;
    let mut root = native(server.addr, Some(&admin())).await;
    root.request(json!({"type": "subscribe", "resource": "secrets"}), "s")
        .await;

    // Listening: a jac channel_id naming the internal stream.
    let mut spy = connect(server.addr, "/websocket?channel_id=%00resource:secrets").await;
    assert_eq!(spy.recv().await["type"], "connection");
    let err = spy.recv().await;
    assert_eq!(err["code"], "BAD_REQUEST", "{err}");
    // Injecting: jac channel_ids, native channels, Daptin topics.
    spy.send(json!({"type": "channel", "channel_ids": ["\u{0}resource:secrets"], "data": {"type": "event", "event": "insert"}}))
        .await;
    assert_eq!(spy.recv().await["code"], "BAD_REQUEST");
    let mut anon = native(server.addr, None).await;
    refused(
        &mut anon,
        json!({"type": "publish", "channel": "\u{0}resource:secrets", "message": {}}),
        "BAD_REQUEST",
    )
    .await;
    let mut live = connect(server.addr, "/live").await;
    live.recv().await;
    live.send(json!({"id": 1, "method": "new-message", "attributes": {"topicName": "\u{0}resource:secrets", "message": "x"}}))
        .await;
    assert_eq!(live.recv().await["ok"], false);

    root.request(
        json!({"type": "insert", "resource": "secrets", "data": {"k": 1}}),
        "i",
    )
    .await;
    assert_eq!(
        root.recv().await["type"],
        "event",
        "the real subscriber gets it"
    );
    spy.expect_silence(QUIET).await;
    root.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_channel_named_like_a_resource_takes_the_resource_rules() {
    let dir = plugin_dir(&[]);
    let server = start(config(dir.path())).await;
    let mut root = native(server.addr, Some(&admin())).await;
    root.request(json!({"type": "subscribe", "resource": "secrets"}), "s")
        .await;
    let mut anon = native(server.addr, None).await;
    refused(
        &mut anon,
        json!({"type": "publish", "channel": "secrets", "message": {"fake": true}}),
        "FORBIDDEN",
    )
    .await;
    refused(
        &mut anon,
        json!({"type": "subscribe", "channel": "secrets"}),
        "FORBIDDEN",
    )
    .await;
    root.expect_silence(QUIET).await;
    let ok = root
        .request(
            json!({"type": "publish", "channel": "secrets", "message": {"n": 1}}),
            "p",
        )
        .await;
    assert_eq!(ok["delivered"], 1, "{ok}");
}

#[tokio::test]
async fn anonymous_clients_may_not_send_to_users_unless_configured() {
    let server = start_default().await;
    let bob_token = token("bob", None, json!({}));
    let (mut bob, hello) = connect_native(server.addr, &format!("?token={bob_token}")).await;
    let mut anon = native(server.addr, None).await;
    refused(
        &mut anon,
        json!({"type": "send", "users": ["bob"], "data": "spam"}),
        "FORBIDDEN",
    )
    .await;
    refused(
        &mut anon,
        json!({"type": "send", "clients": [hello["clientId"]], "data": "spam"}),
        "FORBIDDEN",
    )
    .await;
    let mut jac = connect(server.addr, "/websocket").await;
    jac.recv().await;
    jac.send(json!({"type": "user", "root_ids": ["bob"], "data": {"x": 1}}))
        .await;
    assert_eq!(jac.recv().await["code"], "FORBIDDEN");
    bob.expect_silence(QUIET).await;

    let mut config = test_config();
    config.auth.anonymous_send = true;
    let open = start(config).await;
    let (mut bob, _) = connect_native(open.addr, &format!("?token={bob_token}")).await;
    let mut anon = native(open.addr, None).await;
    let sent = anon
        .request(json!({"type": "send", "users": ["bob"], "data": "hi"}), "s")
        .await;
    assert_eq!(sent["delivered"], 1);
    assert_eq!(bob.recv().await["data"], "hi");
}

#[tokio::test]
async fn clients_cannot_forge_frames_the_server_sends() {
    let server = start_default().await;
    let victim_token = token("vic", None, json!({}));
    let bearer = format!("Bearer {victim_token}");
    let mut victim = connect_with(
        server.addr,
        "/websocket?channel_id=room",
        &[("authorization", &bearer)],
    )
    .await;
    let hello = victim.recv().await;
    let attacker_token = token("mal", None, json!({}));
    let mut mal = connect_with(
        server.addr,
        "/websocket",
        &[("authorization", &format!("Bearer {attacker_token}"))],
    )
    .await;
    mal.recv().await;
    let forged_connection = json!({"type": "connection", "data": {"client_id": "x", "root_id": "root", "channel_id": "room"}});
    for frame in [
        json!({"type": "client", "client_ids": [hello["data"]["client_id"]], "data": forged_connection}),
        json!({"type": "channel", "channel_ids": ["room"], "data": {"status": 200, "reports": ["ok"], "returns": "ok"}}),
        json!({"type": "user", "root_ids": ["vic"], "data": {"error": "session expired", "code": "UNAUTHORIZED"}}),
    ] {
        mal.send(frame.clone()).await;
        let err = mal.recv().await;
        assert_eq!(err["code"], "BAD_REQUEST", "{frame} → {err}");
    }
    let mut native_mal = native(server.addr, Some(&attacker_token)).await;
    refused(
        &mut native_mal,
        json!({"type": "publish", "channel": "room", "message": {"type": "event", "event": "insert", "resource": "x", "data": {}}}),
        "BAD_REQUEST",
    )
    .await;
    victim.expect_silence(QUIET).await;
    // Wrapped, other types are data as ever.
    native_mal
        .request(
            json!({"type": "publish", "channel": "room", "message": {"type": "chat"}}),
            "ok",
        )
        .await;
    assert_eq!(victim.recv().await, json!({"type": "chat"}));
}

#[tokio::test]
async fn presence_does_not_hand_client_ids_to_those_who_cannot_message_them() {
    let server = start_default().await;
    let member_token = token("ann", None, json!({}));
    let (mut member, hello) = connect_native(server.addr, &format!("?token={member_token}")).await;
    let mut anon = native(server.addr, None).await;
    anon.request(json!({"type": "subscribe", "channel": "lobby"}), "s")
        .await;
    let watcher_token = token("wat", None, json!({}));
    let mut authed = native(server.addr, Some(&watcher_token)).await;
    authed
        .request(json!({"type": "subscribe", "channel": "lobby"}), "s")
        .await;
    member
        .request(
            json!({"type": "join", "channel": "lobby", "info": {"name": "Ann"}}),
            "j",
        )
        .await;

    let seen = anon.recv().await;
    assert_eq!(seen["type"], "presence");
    assert!(seen["member"].get("clientId").is_none(), "{seen}");
    assert!(seen["member"]["memberId"].is_string());
    let list = anon
        .request(json!({"type": "presence", "channel": "lobby"}), "l")
        .await;
    assert!(list["members"][0].get("clientId").is_none(), "{list}");
    assert_eq!(list["members"][0]["memberId"], seen["member"]["memberId"]);
    assert!(!list
        .to_string()
        .contains(hello["clientId"].as_str().unwrap_or("?")));

    let seen = authed.recv().await;
    assert_eq!(seen["member"]["clientId"], hello["clientId"]);
}

#[tokio::test]
async fn scripted_socket_channel_calls_act_as_the_socket_client() {
    let dir = plugin_dir(&[example_plugin("chatroom")]);
    let mut config = config_with_plugins(dir.path(), false);
    // A channel named like an admin-only resource: the chat room script
    // subscribes to `chat:<room>` for whoever connects.
    config
        .resources
        .insert("chat:vip".into(), resource(&["admin"], &[]));
    let server = start(config).await;
    let mut anon = connect(server.addr, "/chat?room=vip&name=Eve").await;
    let close = anon.recv_close().await.expect("close");
    assert_eq!(u16::from(close.code), 1008, "{close:?}");
    let root = admin();
    let mut ok = connect(
        server.addr,
        &format!("/chat?room=vip&name=Root&token={root}"),
    )
    .await;
    assert_eq!(ok.recv().await["type"], "init");
}
