//! The s3db.js WebSocketPlugin browser client, unchanged: it connects to
//! the server root (`ws://localhost:3001`), as the seed's example does.

use integration_tests::*;
use serde_json::json;
use switchboard::config::ResourceConfig;

#[tokio::test]
async fn seed_browser_client_at_the_root_path() {
    let mut config = test_config();
    config
        .resources
        .insert("messages".into(), ResourceConfig::default());
    let server = start(config).await;
    let mut ws = connect(server.addr, "/").await;
    let connected = ws.recv().await;
    assert_eq!(connected["type"], "connected");
    assert!(connected["clientId"].is_string() && connected["timestamp"].is_string());

    // ws.onopen: subscribe to messages with a filter.
    ws.send(json!({"type": "subscribe", "resource": "messages", "filter": {"channel": "general"}}))
        .await;
    let subscribed = ws.recv().await;
    assert_eq!(
        subscribed,
        json!({"type": "subscribed", "resource": "messages", "filter": {"channel": "general"}, "events": ["insert", "update", "delete"]})
    );

    // Another s3db client inserts (the seed's CRUD message, verbatim).
    let mut writer = connect(server.addr, "/").await;
    writer.recv().await;
    writer
        .send(json!({"type": "insert", "requestId": "6", "resource": "messages", "data": {"content": "Hello!", "channel": "general"}}))
        .await;
    let data = writer.recv().await;
    assert_eq!(
        (data["type"].as_str(), data["requestId"].as_str()),
        (Some("data"), Some("6"))
    );

    // ws.onmessage: msg.type === 'event' → `New ${msg.event}:`, msg.data
    let msg = ws.recv().await;
    assert_eq!(msg["type"], "event");
    assert_eq!(msg["event"], "insert");
    assert_eq!(msg["resource"], "messages");
    assert_eq!(msg["data"]["content"], "Hello!");
    assert!(msg["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Custom messages (publish) and ping/pong, from the seed.
    writer
        .send(json!({"type": "publish", "requestId": "9", "channel": "notifications", "message": {"type": "alert", "text": "New feature!"}}))
        .await;
    assert_eq!(writer.recv().await["type"], "published");
    writer.send(json!({"type": "ping"})).await;
    assert_eq!(writer.recv().await["type"], "pong");
}
