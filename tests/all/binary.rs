//! Binary frames end to end: a scripted socket receives them as bytes and
//! sends them back as binary frames (`plugins/echo`, `notify-self-binary`),
//! text stays text, what one call may send is capped, and the dialects
//! still read JSON from a binary frame.

use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn the_echo_socket_sends_text_as_text_and_binary_as_binary() {
    let dir = plugin_dir(&[example_plugin("echo")]);
    let server = start(config_with_plugins(dir.path(), false)).await;
    let mut client = connect(server.addr, "/echo").await;
    // Not UTF-8, with a NUL and every byte value: nothing is re-encoded.
    let bytes: Vec<u8> = (0..=255u8).rev().collect();
    client.send_binary(&bytes).await;
    assert_eq!(client.recv_frame().await, Err(bytes.clone()));
    client.send_text("héllo, not JSON").await;
    assert_eq!(client.recv_frame().await, Ok("héllo, not JSON".to_owned()));
    client.send_binary(&[]).await;
    assert_eq!(client.recv_frame().await, Err(Vec::new()));
    // Order holds across kinds.
    client.send_text("1").await;
    client.send_binary(b"2").await;
    client.send_text("3").await;
    assert_eq!(client.recv_frame().await, Ok("1".to_owned()));
    assert_eq!(client.recv_frame().await, Err(b"2".to_vec()));
    assert_eq!(client.recv_frame().await, Ok("3".to_owned()));
}

#[tokio::test]
async fn what_a_socket_call_sends_is_capped_at_the_outbound_budget() {
    let dir = plugin_dir(&[example_plugin("echo")]);
    let mut config = config_with_plugins(dir.path(), false);
    config.limits.outbound_queue_bytes = 1000;
    let server = start(config).await;
    let mut client = connect(server.addr, "/echo").await;
    client.send_binary(&[7; 1001]).await;
    let refused = client.recv().await;
    assert_eq!(refused["code"], "PLUGIN_ERROR", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("PAYLOAD_TOO_LARGE"),
        "{refused}"
    );
    // The socket keeps serving within the budget.
    client.send_binary(&[7; 1000]).await;
    assert_eq!(client.recv_frame().await, Err(vec![7; 1000]));
}

#[tokio::test]
async fn dialects_still_read_json_from_binary_frames() {
    let server = start(test_config()).await;
    let (mut client, _) = connect_native(server.addr, "").await;
    client
        .send_binary(
            json!({"type": "ping", "requestId": "b"})
                .to_string()
                .as_bytes(),
        )
        .await;
    let pong = client.recv().await;
    assert_eq!(
        (pong["type"].as_str(), pong["requestId"].as_str()),
        (Some("pong"), Some("b")),
        "{pong}"
    );
    client.send_binary(&[0xff, 0xfe, b'{']).await;
    assert_eq!(client.recv().await["code"], "INVALID_JSON");
}
