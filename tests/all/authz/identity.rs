//! Changing identity re-checks everything: after an in-band `auth` /
//! `change_user` to a weaker identity, what it may no longer hold is
//! dropped (and named), and nothing of it arrives afterwards.

use std::time::Duration;

use integration_tests::*;
use serde_json::{json, Value};

use super::{admin, config, native, tenant_user, with_guard};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn logging_out_drops_admin_only_subscriptions_and_presence() {
    let dir = with_guard(&[]);
    let server = start(config(dir.path())).await;
    let root = admin();
    let mut c = native(server.addr, Some(&root)).await;
    let mut other_admin = native(server.addr, Some(&root)).await;
    for (id, frame) in [
        ("1", json!({"type": "subscribe", "resource": "vault"})),
        ("2", json!({"type": "subscribe", "channel": "admin:ops"})),
        ("3", json!({"type": "subscribe", "channel": "lobby"})),
        (
            "4",
            json!({"type": "join", "channel": "admin:ops", "info": {"n": 1}}),
        ),
    ] {
        let reply = c.request(frame, id).await;
        assert_ne!(reply["type"], "error", "{reply}");
    }

    // The attack: log out, keep listening.
    let out = c.request(json!({"type": "auth"}), "logout").await;
    assert_eq!(out["type"], "authenticated");
    assert_eq!(out["user"], Value::Null);
    let mut dropped = Vec::new();
    for _ in 0..3 {
        let frame = c.recv().await;
        assert!(frame["reason"].is_string(), "{frame}");
        dropped.push((
            frame["type"].as_str().unwrap_or_default().to_owned(),
            frame["resource"]
                .as_str()
                .or(frame["channel"].as_str())
                .unwrap_or_default()
                .to_owned(),
        ));
    }
    dropped.sort();
    assert_eq!(
        dropped,
        [
            ("left".to_owned(), "admin:ops".to_owned()),
            ("unsubscribed".to_owned(), "admin:ops".to_owned()),
            ("unsubscribed".to_owned(), "vault".to_owned()),
        ]
    );

    other_admin
        .request(
            json!({"type": "insert", "resource": "vault", "data": {"s": 1}}),
            "i",
        )
        .await;
    other_admin
        .request(
            json!({"type": "publish", "channel": "admin:ops", "message": {"s": 2}}),
            "p",
        )
        .await;
    other_admin
        .request(
            json!({"type": "publish", "channel": "lobby", "message": {"s": 3}}),
            "q",
        )
        .await;
    let got = c.recv().await;
    assert_eq!(got["data"], json!({"s": 3}), "only what anyone may read");
    c.expect_silence(QUIET).await;
    let list = other_admin
        .request(json!({"type": "presence", "channel": "admin:ops"}), "l")
        .await;
    assert_eq!(list["members"], json!([]), "{list}");
}

#[tokio::test]
async fn switching_tenant_recomputes_the_guard_filter() {
    let dir = with_guard(&[]);
    let server = start(config(dir.path())).await;
    let mut c = native(server.addr, Some(&tenant_user("ann", "acme", "user"))).await;
    let sub = c
        .request(json!({"type": "subscribe", "channel": "orders"}), "s")
        .await;
    assert_eq!(sub["filter"], json!({"tenant": "acme"}));
    let switched = c
        .request(
            json!({"type": "auth", "token": tenant_user("ann", "globex", "user")}),
            "a",
        )
        .await;
    assert_eq!(switched["user"]["tenant"], "globex");
    let mut root = native(server.addr, Some(&admin())).await;
    for tenant in ["acme", "globex"] {
        root.request(
            json!({"type": "publish", "channel": "orders", "message": {"tenant": tenant}}),
            tenant,
        )
        .await;
    }
    assert_eq!(c.recv().await["data"]["tenant"], "globex");
    c.expect_silence(QUIET).await;
}

#[tokio::test]
async fn an_invalid_change_user_token_drops_to_the_public_identity() {
    let dir = with_guard(&[]);
    let server = start(config(dir.path())).await;
    let root = admin();
    let bearer = format!("Bearer {root}");
    let mut jac = connect_with(
        server.addr,
        "/websocket?channel_id=admin:room",
        &[("authorization", &bearer)],
    )
    .await;
    let first = jac.recv().await;
    assert_eq!(first["data"]["root_id"], "root");

    jac.send(json!({"type": "change_user", "token": "Bearer garbage"}))
        .await;
    let again = jac.recv().await;
    assert_eq!(again["type"], "connection");
    assert_eq!(again["data"]["root_id"], "n::000000000000000000000001");
    let dropped = jac.recv().await;
    assert_eq!(dropped["type"], "unsubscribed", "{dropped}");
    assert_eq!(dropped["channel_id"], "admin:room");

    // Neither the admin channel nor the old user's notifications reach it.
    let ops = token("ops", Some("admin"), json!({}));
    let mut other = native(server.addr, Some(&ops)).await;
    other
        .request(
            json!({"type": "publish", "channel": "admin:room", "message": {"s": 1}}),
            "p",
        )
        .await;
    let sent = other
        .request(
            json!({"type": "send", "users": ["root"], "data": {"s": 2}}),
            "d",
        )
        .await;
    assert_eq!(sent["delivered"], 0, "{sent}");
    jac.expect_silence(QUIET).await;
}
