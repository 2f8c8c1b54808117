//! Guards from a WASM plugin: allow / deny on connect, subscribe, publish
//! and send; filters applied natively per event.

use std::time::Duration;

use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn role_and_tenant_rules_and_native_filters() {
    let dir = plugin_dir(&[example_plugin("guard")]);
    let server = start(config_with_plugins(dir.path(), false)).await;
    let admin = token("root", Some("admin"), json!({}));
    let acme = token("ann", Some("user"), json!({"tenant": "acme"}));
    let globex = token("gus", Some("user"), json!({"tenant": "globex"}));
    let (mut root, _) = connect_native(server.addr, &format!("?token={admin}")).await;
    let (mut ann, _) = connect_native(server.addr, &format!("?token={acme}")).await;
    let (mut gus, _) = connect_native(server.addr, &format!("?token={globex}")).await;

    // Role rule: only admins publish to admin:*.
    let denied = ann
        .request(
            json!({"type": "publish", "channel": "admin:ops", "message": {}}),
            "1",
        )
        .await;
    assert_eq!(denied["code"], "FORBIDDEN", "{denied}");
    let ok = root
        .request(
            json!({"type": "publish", "channel": "admin:ops", "message": {}}),
            "2",
        )
        .await;
    assert_eq!(ok["type"], "published");

    // Tenant rule: tenant:<t>:* only for that tenant.
    let denied = gus
        .request(
            json!({"type": "subscribe", "channel": "tenant:acme:news"}),
            "3",
        )
        .await;
    assert_eq!(denied["code"], "FORBIDDEN");
    let denied = gus
        .request(
            json!({"type": "send", "channels": ["tenant:acme:news"], "data": 1}),
            "3b",
        )
        .await;
    assert_eq!(denied["code"], "FORBIDDEN");

    // Filter: a tenant user's subscription only sees its tenant's messages,
    // whatever filter it asked for.
    let sub = ann
        .request(
            json!({"type": "subscribe", "channel": "orders", "filter": {"tenant": "globex"}}),
            "4",
        )
        .await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    assert_eq!(sub["filter"]["tenant"], "acme");
    for tenant in ["globex", "acme"] {
        root.request(
            json!({"type": "publish", "channel": "orders", "message": {"tenant": tenant, "n": 1}}),
            tenant,
        )
        .await;
    }
    let got = ann.recv().await;
    assert_eq!(got["data"]["tenant"], "acme");
    ann.expect_silence(Duration::from_millis(200)).await;

    // Guard calls are counted; delivering to the filtered subscriber took none.
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(
        metrics.contains(r#"switchboard_plugin_calls_total{plugin="guard",outcome="ok"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn connect_guard_refuses_with_a_reason() {
    let dir = plugin_dir(&[example_plugin("guard")]);
    let server = start(config_with_plugins(dir.path(), false)).await;
    let acme = token("ann", Some("user"), json!({"tenant": "acme"}));
    let (_, hello) = connect_native(server.addr, &format!("?token={acme}&tenant=acme")).await;
    assert_eq!(hello["user"]["tenant"], "acme");
    let mut refused = connect(server.addr, &format!("/ws?token={acme}&tenant=globex")).await;
    let close = refused.recv_close().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason, "FORBIDDEN: not a member of tenant `globex`");
}
