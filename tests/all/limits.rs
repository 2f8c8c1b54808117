//! Limits: max payload (close 1009), rate limit, heartbeat timeout, and the
//! slow-consumer policy that keeps one stuck client from slowing others.

use std::time::Duration;

use futures_util::StreamExt;
use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn oversized_frames_close_with_1009_and_others_keep_going() {
    let mut config = test_config();
    config.limits.max_payload_bytes = 1024;
    let server = start(config).await;
    let (mut big, _) = connect_native(server.addr, "").await;
    let (mut other, _) = connect_native(server.addr, "").await;
    let payload = "x".repeat(4096);
    big.send(json!({"type": "publish", "channel": "c", "message": payload}))
        .await;
    let close = big.recv_close().await.expect("close frame");
    // The code is the contract; the reason is the WebSocket layer's.
    assert_eq!(u16::from(close.code), 1009, "{}", close.reason);
    assert!(!close.reason.is_empty());
    let pong = other.request(json!({"type": "ping"}), "p").await;
    assert_eq!(pong["type"], "pong");
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(
        metrics.contains(r#"switchboard_disconnects_total{reason="payload_too_large"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn rate_limit_answers_rate_limit_exceeded() {
    let mut config = test_config();
    config.limits.rate_limit_max_requests = 5;
    config.limits.rate_limit_window_ms = 60_000;
    let server = start(config).await;
    let (mut c, _) = connect_native(server.addr, "").await;
    let mut codes = Vec::new();
    for i in 0..8 {
        let reply = c.request(json!({"type": "ping"}), &i.to_string()).await;
        codes.push(
            reply["code"]
                .as_str()
                .unwrap_or(reply["type"].as_str().unwrap_or(""))
                .to_owned(),
        );
    }
    assert_eq!(&codes[..5], ["pong"; 5]);
    assert_eq!(&codes[5..], ["RATE_LIMIT_EXCEEDED"; 3]);
    // Limits are per identity (here the anonymous client's address):
    // reconnecting does not buy a fresh budget...
    let (mut fresh, _) = connect_native(server.addr, "").await;
    assert_eq!(
        fresh.request(json!({"type": "ping"}), "x").await["code"],
        "RATE_LIMIT_EXCEEDED"
    );
    // ...while another user has its own.
    let t = token("other", None, json!({}));
    let (mut other, _) = connect_native(server.addr, &format!("?token={t}")).await;
    assert_eq!(
        other.request(json!({"type": "ping"}), "y").await["type"],
        "pong"
    );
}

#[tokio::test]
async fn silent_clients_are_dropped_by_the_heartbeat() {
    let mut config = test_config();
    // Generous margins: CI runs tests in parallel on two busy cores.
    config.limits.heartbeat_interval_ms = 200;
    config.limits.heartbeat_timeout_ms = 600;
    let server = start(config).await;
    let (mut silent, _) = connect_native(server.addr, "").await;
    let (mut lively, _) = connect_native(server.addr, "").await;
    // The lively client reads (and so answers pings) for a while.
    lively.expect_silence(Duration::from_millis(1500)).await;
    // The silent one never read, so never answered a ping.
    let close = silent.recv_close().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1001);
    assert!(close.reason.contains("heartbeat"), "{}", close.reason);
    assert_eq!(
        lively.request(json!({"type": "ping"}), "p").await["type"],
        "pong"
    );
}

#[tokio::test]
async fn slow_consumer_is_disconnected_without_slowing_others() {
    let mut config = test_config();
    config.limits.outbound_queue = 32;
    config.limits.max_payload_bytes = 1 << 20;
    let server = start(config).await;
    let (mut slow, _) = connect_native(server.addr, "").await;
    let (mut fast, _) = connect_native(server.addr, "").await;
    let (mut publisher, _) = connect_native(server.addr, "").await;
    for c in [&mut slow, &mut fast] {
        c.request(json!({"type": "subscribe", "channel": "firehose"}), "s")
            .await;
    }
    const N: usize = 400;
    let fast_reader = tokio::spawn(async move {
        let mut got = 0;
        while got < N {
            let m = fast.recv().await;
            if m["type"] == "message" {
                got += 1;
            }
        }
        got
    });
    let blob = "y".repeat(64 * 1024);
    let started = std::time::Instant::now();
    for i in 0..N {
        let reply = publisher
            .request(
                json!({"type": "publish", "channel": "firehose", "message": {"i": i, "blob": blob}}),
                &i.to_string(),
            )
            .await;
        assert_eq!(reply["type"], "published");
    }
    let publish_time = started.elapsed();
    assert_eq!(
        fast_reader.await.expect("reader"),
        N,
        "the fast subscriber got everything"
    );
    assert!(
        publish_time < Duration::from_secs(20),
        "publisher was not held up: {publish_time:?}"
    );

    // The slow client was cut off: after what was buffered, the stream ends
    // (with a 1013 close frame if it still fit in the socket buffer).
    let mut received = 0;
    let mut close_code = None;
    while let Ok(Some(frame)) = tokio::time::timeout(WAIT, slow.raw().next()).await {
        match frame {
            Ok(tokio_tungstenite::tungstenite::Message::Text(_)) => received += 1,
            Ok(tokio_tungstenite::tungstenite::Message::Close(f)) => {
                close_code = f.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(
        received < N,
        "slow consumer was dropped before receiving all {N}"
    );
    if let Some(code) = close_code {
        assert_eq!(code, 1013);
    }
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(
        metrics.contains(r#"switchboard_disconnects_total{reason="slow_consumer"} 1"#),
        "{metrics}"
    );
}
