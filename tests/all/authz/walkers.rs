//! Walkers act as their caller: anonymous callers are refused unless the
//! walker lets them in, and a walker's store and bus calls are checked
//! against the caller's roles and guards unless the operator trusts it.

use std::time::Duration;

use integration_tests::*;
use serde_json::json;
use switchboard::config::PluginLimits;

use super::{admin, config, native, refused, resource, tenant_user, with_guard};

#[tokio::test]
async fn anonymous_callers_are_refused_unless_the_walker_allows_them() {
    let dir = plugin_dir(&[example_plugin("chat"), example_plugin("py-echo")]);
    let server = start(config(dir.path())).await;
    let mut anon = native(server.addr, None).await;
    let refusal = refused(
        &mut anon,
        json!({"type": "walker", "walker": "echo", "context": {}}),
        "FORBIDDEN",
    )
    .await;
    assert!(refusal["message"]
        .as_str()
        .is_some_and(|m| m.contains("authenticated")));
    let (status, body) = http_request(server.addr, "POST", "/walker/echo", None, "{}").await;
    assert_eq!(status, 403, "{body}");
    let mut live = connect(server.addr, "/live").await;
    live.recv().await;
    // Daptin has no walker method; rtbdp neither: native, jac and HTTP it is.
    let mut jac = connect(server.addr, "/websocket").await;
    jac.recv().await;
    jac.send(json!({"type": "walker", "walker": "whoami", "response": true}))
        .await;
    let err = jac.recv().await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("walker"), Some("FORBIDDEN"))
    );
    // py_echo declares itself open to anonymous callers.
    let open = anon
        .request(
            json!({"type": "walker", "walker": "py_echo", "context": {}}),
            "p",
        )
        .await;
    assert_eq!(open["type"], "walker", "{open}");
}

#[tokio::test]
async fn a_walker_writes_only_what_its_caller_may_write() {
    let dir = plugin_dir(&[example_plugin("chat")]);
    let mut locked = config(dir.path());
    locked
        .resources
        .insert("messages".into(), resource(&["admin"], &[]));
    let server = start(locked.clone()).await;
    let user = token("mal", Some("user"), json!({}));
    let mut mal = native(server.addr, Some(&user)).await;
    refused(
        &mut mal,
        json!({"type": "walker", "walker": "save_message", "context": {"id": "m1", "text": "x"}}),
        "FORBIDDEN",
    )
    .await;
    let (status, body) = http_request(
        server.addr,
        "POST",
        "/walker/save_message",
        Some(&user),
        r#"{"id":"m2"}"#,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let mut root = native(server.addr, Some(&admin())).await;
    let listed = root
        .request(json!({"type": "list", "resource": "messages"}), "l")
        .await;
    assert_eq!(listed["data"], json!([]), "nothing was written");
    let saved = root
        .request(
            json!({"type": "walker", "walker": "save_message", "context": {"id": "m3"}}),
            "w",
        )
        .await;
    assert_eq!(saved["returns"]["id"], "m3", "{saved}");
    drop(server);

    // Full rights are the operator's decision, per plugin.
    locked.store.path = fresh_store_path();
    locked.plugins.overrides.insert(
        "chat".into(),
        PluginLimits {
            trusted_store: true,
            ..PluginLimits::default()
        },
    );
    let trusted = start(locked).await;
    let mut mal = native(trusted.addr, Some(&user)).await;
    let saved = mal
        .request(
            json!({"type": "walker", "walker": "save_message", "context": {"id": "m4"}}),
            "w",
        )
        .await;
    assert_eq!(saved["returns"]["id"], "m4", "{saved}");
}

#[tokio::test]
async fn a_walker_notifies_only_where_its_caller_may_publish() {
    let dir = with_guard(&[example_plugin("chat")]);
    let mut cfg = config(dir.path());
    let server = start(cfg.clone()).await;
    let mut root = native(server.addr, Some(&admin())).await;
    root.request(json!({"type": "subscribe", "channel": "admin:ops"}), "s")
        .await;
    let mut ann = native(server.addr, Some(&tenant_user("ann", "acme", "user"))).await;
    refused(
        &mut ann,
        json!({"type": "walker", "walker": "send_chat_to_group", "context": {"channel_id": "admin:ops", "message": "pwned"}}),
        "FORBIDDEN",
    )
    .await;
    root.expect_silence(Duration::from_millis(300)).await;
    drop(server);

    cfg.store.path = fresh_store_path();
    cfg.plugins.overrides.insert(
        "chat".into(),
        PluginLimits {
            trusted_bus: true,
            ..PluginLimits::default()
        },
    );
    let trusted = start(cfg).await;
    let mut root = native(trusted.addr, Some(&admin())).await;
    root.request(json!({"type": "subscribe", "channel": "admin:ops"}), "s")
        .await;
    let mut ann = native(trusted.addr, Some(&tenant_user("ann", "acme", "user"))).await;
    let sent = ann
        .request(json!({"type": "walker", "walker": "send_chat_to_group", "context": {"channel_id": "admin:ops", "message": "ok"}}), "w")
        .await;
    assert_eq!(sent["returns"]["delivered"], 1, "{sent}");
    assert_eq!(root.recv().await["data"]["message"], "ok");
}
