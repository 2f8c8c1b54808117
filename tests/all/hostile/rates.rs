//! Rate limits that hold: one budget per identity across connections,
//! dialects, batched frames, refused frames, scripted sockets and HTTP.

use std::time::Duration;

use integration_tests::*;
use serde_json::{json, Value};

fn limited(max: u32) -> switchboard::Config {
    let mut config = test_config();
    config.limits.rate_limit_max_requests = max;
    config.limits.rate_limit_window_ms = 60_000;
    config
        .resources
        .insert("t".into(), switchboard::config::ResourceConfig::default());
    config
}

#[tokio::test]
async fn each_entry_of_a_batched_frame_counts() {
    let server = start(limited(50)).await;
    let mut r = connect(server.addr, "/rtbdp").await;
    let replays: Vec<Value> = (0..200).map(|i| json!({"id": i, "table": "t"})).collect();
    r.send(json!({"replay": replays})).await;
    let mut replayed = 0;
    let mut refused = 0;
    while let Some(frame) = r.try_recv(Duration::from_millis(400)).await {
        if frame.get("replayed").is_some() {
            replayed += 1;
        } else if frame["error"]["code"] == "RATE_LIMIT_EXCEEDED" {
            refused += 1;
        }
    }
    assert_eq!(
        (replayed, refused),
        (0, 200),
        "a 200-entry frame costs 200, more than 50"
    );

    // Daptin: 200 comma-separated topics are 200 subscriptions.
    let server = start(limited(50)).await;
    let mut live = connect(server.addr, "/live").await;
    live.recv().await;
    let topics: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
    live.send(
        json!({"id": 1, "method": "subscribe", "attributes": {"topicName": topics.join(",")}}),
    )
    .await;
    let reply = live.recv().await;
    assert_eq!(reply["error"]["code"], "RATE_LIMIT_EXCEEDED", "{reply}");
}

#[tokio::test]
async fn refused_frames_count_and_every_path_shares_the_budget() {
    let dir = plugin_dir(&[example_plugin("chat"), example_plugin("chatroom")]);
    let mut config = limited(10);
    config.plugins.dir = dir.path().to_owned();
    let server = start(config).await;
    let t = token("eve", None, json!({}));
    let (mut c, _) = connect_native(server.addr, &format!("?token={t}")).await;
    for _ in 0..4 {
        c.send_text("not json").await;
        assert_eq!(c.recv().await["code"], "INVALID_JSON");
    }
    // 4 spent on garbage; 3 on a walker over HTTP; 2 on a scripted socket.
    for _ in 0..3 {
        let (status, _) = http_request(server.addr, "POST", "/walker/echo", Some(&t), "{}").await;
        assert_eq!(status, 200);
    }
    let mut room = connect(server.addr, &format!("/chat?room=r&name=Eve&token={t}")).await;
    room.recv().await;
    for _ in 0..2 {
        room.send(json!({"type": "message", "text": "hi"})).await;
        assert_eq!(room.recv().await["type"], "chat");
    }
    let reply = c.request(json!({"type": "ping"}), "p").await;
    assert_eq!(reply["type"], "pong", "the 10th request");
    let reply = c.request(json!({"type": "ping"}), "q").await;
    assert_eq!(reply["code"], "RATE_LIMIT_EXCEEDED");
    room.send(json!({"type": "message", "text": "hi"})).await;
    assert_eq!(room.recv().await["code"], "RATE_LIMIT_EXCEEDED");

    let (status, body) = http_request(server.addr, "POST", "/walker/echo", Some(&t), "{}").await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("RATE_LIMIT_EXCEEDED"));
    let raw = http_raw_full(server.addr, &t).await;
    assert!(
        raw.lines()
            .any(|l| l.to_ascii_lowercase().starts_with("retry-after: ")),
        "{raw}"
    );
}

/// The whole HTTP response to a walker call, headers included.
async fn http_raw_full(addr: std::net::SocketAddr, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST /walker/echo HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    String::from_utf8_lossy(&raw).into_owned()
}
