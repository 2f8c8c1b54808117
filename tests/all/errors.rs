//! Bad input: every mistake gets an error frame with a code, the
//! connection stays usable, nothing panics.

use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn bad_frames_get_coded_errors_and_the_connection_survives() {
    let server = start_default().await;
    let (mut c, _) = connect_native(server.addr, "").await;

    c.send_text("{not json").await;
    let e = c.recv().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("INVALID_JSON"))
    );

    c.send_text("[1,2]").await;
    assert_eq!(c.recv().await["code"], "INVALID_JSON");

    let e = c.request(json!({"type": "frobnicate"}), "r1").await;
    assert_eq!(e["code"], "UNKNOWN_MESSAGE_TYPE");
    assert!(e["message"].as_str().unwrap_or("").contains("frobnicate"));

    c.send(json!({"requestId": "r2"})).await;
    let e = c.recv().await;
    assert_eq!(
        (e["code"].as_str(), e["requestId"].as_str()),
        (Some("UNKNOWN_MESSAGE_TYPE"), Some("r2"))
    );

    let e = c.request(json!({"type": "subscribe"}), "r3").await;
    assert_eq!(e["code"], "BAD_REQUEST");
    let e = c
        .request(json!({"type": "publish", "channel": 5, "message": 1}), "r4")
        .await;
    assert_eq!(e["code"], "BAD_REQUEST");
    assert!(e["message"]
        .as_str()
        .unwrap_or("")
        .contains("`channel` must be a string"));
    let e = c
        .request(
            json!({"type": "subscribe", "channel": "x", "filter": [1]}),
            "r5",
        )
        .await;
    assert_eq!(e["code"], "BAD_REQUEST");
    let e = c.request(json!({"type": "send", "data": 1}), "r6").await;
    assert_eq!(e["code"], "BAD_REQUEST");
    let e = c
        .request(json!({"type": "get", "resource": "nope", "id": "1"}), "r7")
        .await;
    assert_eq!(e["code"], "RESOURCE_NOT_FOUND");
    let e = c
        .request(json!({"type": "walker", "walker": "missing"}), "r8")
        .await;
    assert_eq!(e["code"], "NOT_FOUND");

    // Binary frames that are not UTF-8 JSON are errors too, not crashes.
    use futures_util::SinkExt;
    c.raw()
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            vec![0xff, 0x00, 0x01].into(),
        ))
        .await
        .expect("send binary");
    assert_eq!(c.recv().await["code"], "INVALID_JSON");

    let pong = c.request(json!({"type": "ping"}), "alive").await;
    assert_eq!(pong["type"], "pong", "still usable after all that");
}

/// Odd frames for every dialect: none may crash the server or wedge the
/// connection.
fn hostile_frames() -> Vec<String> {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let mut frames: Vec<String> = [
        "",
        " ",
        "null",
        "true",
        "1",
        "\"s\"",
        "[]",
        "{}",
        "{\"type\":null}",
        "{\"type\":5}",
        "{\"method\":[]}",
        "{\"subscribe\":\"x\"}",
        "{\"subscribe\":[null]}",
        "{\"replay\":[{\"id\":{}}]}",
        "{\"unsubscribe\":[{}]}",
        "{\"type\":\"walker\",\"walker\":\"\"}",
        "{\"type\":\"subscribe\",\"channel\":\"\"}",
        "{\"type\":\"list\",\"resource\":\"x\",\"limit\":-1}",
        "{\"type\":\"list\",\"resource\":\"x\",\"limit\":1e300}",
        "{\"type\":\"send\",\"users\":[1,2],\"data\":1}",
        "{\"type\":\"publish\",\"channel\":\"😀\",\"message\":\"\\u0000\"}",
        "{\"type\":\"user\",\"root_ids\":\"notalist\",\"data\":1}",
        "{\"type\":\"change_user\",\"token\":123}",
        "{\"method\":\"subscribe\",\"attributes\":{\"topicName\":\",,,\"}}",
        "{\"method\":\"new-message\",\"attributes\":{\"topicName\":\"a\"}}",
        "{\"method\":\"subscribe\",\"attributes\":[]}",
        "{\"type\":\"subscribe\",\"channel\":\"a\",\"filter\":{\"x\":{\"opt\":5}}}",
        "{\"subscribe\":[{\"id\":1,\"table\":\"t\",\"filters\":[{\"n\":{\"start\":{}}}]}]}",
        "{\"type\":\"auth\",\"token\":\"Bearer \"}",
        "{\"type\":\"join\",\"channel\":\"\\u0001\"}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    frames.push(deep);
    frames.push(format!(
        "{{\"type\":\"publish\",\"channel\":\"c\",\"message\":\"{}\"}}",
        "x".repeat(100_000)
    ));
    frames
}

#[tokio::test]
async fn hostile_frames_never_crash_any_dialect() {
    let server = start_default().await;
    // Each dialect, then a frame it must still answer.
    let probes: [(&str, serde_json::Value); 4] = [
        ("/ws", json!({"type": "ping", "requestId": "alive"})),
        ("/live", json!({"id": 99, "method": "ping"})),
        ("/websocket", json!({"type": "connection"})),
        ("/rtbdp", json!({"unsubscribe": ["never-subscribed"]})),
    ];
    for (path, probe) in probes {
        let mut c = connect(server.addr, path).await;
        if path != "/rtbdp" {
            c.recv().await; // greeting
        }
        for frame in hostile_frames() {
            c.send_text(&frame).await;
        }
        c.send(probe.clone()).await;
        // Everything before the probe is answered or ignored; the probe's
        // answer must come.
        let answered = c
            .recv_until(|v| {
                v["requestId"] == "alive"
                    || v["id"] == 99
                    || v["type"] == "connection"
                    || v["id"] == "never-subscribed"
            })
            .await;
        assert!(!answered.is_null(), "{path} still answers");
    }
    let (status, _) = http_get(server.addr, "/healthz").await;
    assert_eq!(status, 200);
}
