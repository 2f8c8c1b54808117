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
