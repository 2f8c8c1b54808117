//! The server HTTP API: a backend with an admin API key publishes, sends,
//! disconnects and looks around; without the role it gets nothing.

use std::collections::BTreeMap;

use integration_tests::*;
use serde_json::{json, Value};
use switchboard::config::{ApiKeyIdentity, ResourceConfig};

const ADMIN_KEY: &str = "sk_admin_test";
const USER_KEY: &str = "sk_user_test";

fn config() -> switchboard::Config {
    let mut config = test_config();
    for (key, id, role) in [(ADMIN_KEY, "backend", "admin"), (USER_KEY, "app", "user")] {
        config.auth.api_keys.insert(
            key.into(),
            ApiKeyIdentity {
                id: id.into(),
                role: Some(role.into()),
                claims: BTreeMap::new(),
            },
        );
    }
    config.resources.insert(
        "users".into(),
        ResourceConfig {
            protected: vec!["password".into()],
            ..ResourceConfig::default()
        },
    );
    config
}

async fn api(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, text) = http_request(addr, method, path, key, &body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_backend_publishes_sends_and_disconnects() {
    let server = start(config()).await;
    let addr = server.addr;
    let (mut sub, _) = connect_native(addr, "").await;
    sub.request(json!({"type": "subscribe", "channel": "news"}), "s")
        .await;
    let ann = token("ann", None, json!({}));
    let (mut ann_ws, hello) = connect_native(addr, &format!("?token={ann}")).await;
    let ann_id = hello["clientId"].as_str().expect("id").to_owned();

    let (status, reply) = api(
        addr,
        "POST",
        "/api/publish",
        Some(ADMIN_KEY),
        json!({"channel": "news", "data": {"n": 1}}),
    )
    .await;
    assert_eq!(
        (status, reply["delivered"].as_u64()),
        (200, Some(1)),
        "{reply}"
    );
    let got = sub.recv().await;
    assert_eq!(
        (got["data"]["n"].as_u64(), got["from"]["userId"].as_str()),
        (Some(1), Some("backend")),
        "{got}"
    );

    let (status, reply) = api(
        addr,
        "POST",
        "/api/send",
        Some(ADMIN_KEY),
        json!({"users": ["ann"], "data": {"hi": 1}}),
    )
    .await;
    assert_eq!(
        (status, reply["type"].as_str()),
        (200, Some("sent")),
        "{reply}"
    );
    assert_eq!(ann_ws.recv().await["data"], json!({"hi": 1}));

    ann_ws
        .request(
            json!({"type": "join", "channel": "room", "info": {"name": "Ann"}}),
            "j",
        )
        .await;
    let (status, reply) = api(
        addr,
        "GET",
        "/api/presence/room",
        Some(ADMIN_KEY),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["members"][0]["info"]["name"], "Ann", "{reply}");
    assert_eq!(reply["members"][0]["clientId"], ann_id.as_str());
    let (_, reply) = api(addr, "GET", "/api/channels", Some(ADMIN_KEY), Value::Null).await;
    assert_eq!(
        reply["channels"],
        json!([{"name": "news", "subscribers": 1}]),
        "{reply}"
    );
    let (_, reply) = api(
        addr,
        "GET",
        "/api/connections",
        Some(ADMIN_KEY),
        Value::Null,
    )
    .await;
    let ann_row = reply["connections"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["clientId"] == ann_id.as_str()).cloned())
        .expect("ann is listed");
    assert_eq!(
        (ann_row["userId"].as_str(), ann_row["dialect"].as_str()),
        (Some("ann"), Some("native"))
    );
    assert_eq!(ann_row["presence"], json!(["room"]));
    let (_, reply) = api(addr, "GET", "/api/info", Some(ADMIN_KEY), Value::Null).await;
    assert_eq!(
        (reply["connections"].as_u64(), reply["store"].as_str()),
        (
            Some(2),
            Some(if on_postgres() { "postgresql" } else { "redb" })
        ),
        "{reply}"
    );

    let (status, reply) = api(
        addr,
        "POST",
        "/api/disconnect",
        Some(ADMIN_KEY),
        json!({"users": ["ann"], "reason": "bye ann"}),
    )
    .await;
    assert_eq!(
        (status, reply["closed"].as_u64()),
        (200, Some(1)),
        "{reply}"
    );
    let close = ann_ws.recv_close().await.expect("close");
    assert_eq!(
        (u16::from(close.code), close.reason.as_str()),
        (4000, "bye ann")
    );
}

#[tokio::test]
async fn without_the_role_or_a_key_the_api_gives_nothing() {
    let server = start(config()).await;
    let addr = server.addr;
    let (mut sub, _) = connect_native(addr, "").await;
    sub.request(json!({"type": "subscribe", "channel": "news"}), "s")
        .await;
    let user_jwt = token("mallory", Some("user"), json!({}));
    for (key, status, code) in [
        (None, 401, "UNAUTHORIZED"),
        (Some(USER_KEY), 403, "FORBIDDEN"),
        (Some(user_jwt.as_str()), 403, "FORBIDDEN"),
        (Some("sk_not_a_key"), 401, "UNAUTHORIZED"),
    ] {
        for (method, path, body) in [
            (
                "POST",
                "/api/publish",
                json!({"channel": "news", "data": 1}),
            ),
            ("POST", "/api/disconnect", json!({"users": ["ann"]})),
            ("GET", "/api/connections", Value::Null),
            ("GET", "/api/resources/users", Value::Null),
        ] {
            let (got, reply) = api(addr, method, path, key, body).await;
            assert_eq!(
                (got, reply["code"].as_str()),
                (status, Some(code)),
                "{method} {path} with {key:?}: {reply}"
            );
        }
    }
    sub.expect_silence(std::time::Duration::from_millis(200))
        .await;
}

#[tokio::test]
async fn bad_requests_get_codes_and_records_hide_protected_fields() {
    let server = start(config()).await;
    let addr = server.addr;
    for (path, body, code) in [
        ("/api/publish", json!({"data": 1}), "BAD_REQUEST"),
        (
            "/api/publish",
            json!({"channel": "", "data": 1}),
            "BAD_REQUEST",
        ),
        (
            "/api/publish",
            json!({"channel": "x", "data": {"type": "connection"}}),
            "BAD_REQUEST",
        ),
        ("/api/send", json!({"data": 1}), "BAD_REQUEST"),
        (
            "/api/send",
            json!({"users": "ann", "data": 1}),
            "BAD_REQUEST",
        ),
        ("/api/disconnect", json!({}), "BAD_REQUEST"),
    ] {
        let (status, reply) = api(addr, "POST", path, Some(ADMIN_KEY), body.clone()).await;
        assert_eq!(
            (status, reply["code"].as_str()),
            (400, Some(code)),
            "{path} {body}: {reply}"
        );
    }
    let (status, text) =
        http_request(addr, "POST", "/api/publish", Some(ADMIN_KEY), "{not json").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("INVALID_JSON"), "{text}");

    let (mut c, _) = connect_native(addr, "").await;
    c.request(json!({"type": "insert", "resource": "users", "data": {"id": "u1", "name": "Ann", "password": "hunter2"}}), "i")
        .await;
    let (status, reply) = api(
        addr,
        "GET",
        "/api/resources/users?limit=10",
        Some(ADMIN_KEY),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["data"],
        json!([{"id": "u1", "name": "Ann"}]),
        "protected fields never leave"
    );
    let (_, reply) = api(
        addr,
        "GET",
        "/api/resources/nope",
        Some(ADMIN_KEY),
        Value::Null,
    )
    .await;
    assert_eq!(reply["code"], "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn the_api_meets_the_same_guards_and_rate_limits_as_clients() {
    let dir = plugin_dir(&[example_plugin("py-echo")]);
    let mut config = config();
    config.plugins.dir = dir.path().to_owned();
    config.plugins.watch = false;
    config.limits.rate_limit_max_requests = 5;
    config.limits.rate_limit_window_ms = 60_000;
    let server = start(config).await;
    let addr = server.addr;
    let (mut watcher, _) = connect_native(addr, "").await;
    watcher
        .request(json!({"type": "subscribe", "channel": "py:room"}), "s")
        .await;
    // py-echo's guard refuses a `blocked` message, from the API as from
    // a client, and nothing reaches the subscriber.
    for (path, body) in [
        (
            "/api/publish",
            json!({"channel": "py:room", "data": {"blocked": 1}}),
        ),
        (
            "/api/send",
            json!({"channels": ["py:room"], "data": {"blocked": 1}}),
        ),
    ] {
        let (status, reply) = api(addr, "POST", path, Some(ADMIN_KEY), body).await;
        assert_eq!(
            (status, reply["code"].as_str()),
            (403, Some("FORBIDDEN")),
            "{path}: {reply}"
        );
        assert!(
            reply["message"]
                .as_str()
                .unwrap_or_default()
                .contains("blocked by python"),
            "{reply}"
        );
    }
    let (status, reply) = api(
        addr,
        "POST",
        "/api/publish",
        Some(ADMIN_KEY),
        json!({"channel": "py:room", "data": {"fine": 1}}),
    )
    .await;
    assert_eq!(
        (status, reply["delivered"].as_u64()),
        (200, Some(1)),
        "{reply}"
    );
    assert_eq!(
        watcher.recv().await["data"],
        json!({"fine": 1}),
        "only the allowed one"
    );
    // The key's budget (5 per minute here) runs out like a client's.
    let mut codes = Vec::new();
    for _ in 0..4 {
        let (status, reply) = api(addr, "GET", "/api/channels", Some(ADMIN_KEY), Value::Null).await;
        codes.push((status, reply["code"].as_str().map(str::to_owned)));
    }
    assert_eq!(codes[..2], [(200, None), (200, None)], "{codes:?}");
    assert_eq!(
        codes[2..],
        [
            (429, Some("RATE_LIMIT_EXCEEDED".to_owned())),
            (429, Some("RATE_LIMIT_EXCEEDED".to_owned()))
        ],
        "{codes:?}"
    );
}
