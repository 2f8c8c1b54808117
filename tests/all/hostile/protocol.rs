//! RFC 6455 violations close with the right code and a reason, and a few
//! protocol-level numbers that used to wrap or leak.

use integration_tests::*;
use serde_json::json;

use super::RawWs;

#[tokio::test]
async fn violations_close_with_1002_and_bad_utf8_with_1007() {
    let server = start_default().await;
    let cases: [(&str, u8, Vec<u8>, bool, u16); 9] = [
        ("invalid UTF-8 text", 0x81, vec![0xc3, 0x28], false, 1007),
        ("unmasked client frame", 0x81, b"{}".to_vec(), true, 1002),
        // 1003: the layer names an opcode it does not know "unsupported
        // data"; either way the connection fails, as RFC 6455 asks.
        ("reserved data opcode", 0x83, b"x".to_vec(), false, 1003),
        ("reserved control opcode", 0x8b, b"x".to_vec(), false, 1003),
        (
            "RSV1 without an extension",
            0xc1,
            b"{}".to_vec(),
            false,
            1002,
        ),
        ("fragmented ping", 0x09, b"x".to_vec(), false, 1002),
        ("oversized ping", 0x89, vec![b'x'; 126], false, 1002),
        (
            "continuation without a start",
            0x80,
            b"x".to_vec(),
            false,
            1002,
        ),
        ("close with a 1-byte payload", 0x88, vec![3], false, 1002),
    ];
    for (what, first, payload, unmasked, code) in cases {
        let mut ws = RawWs::connect(server.addr, "/ws").await;
        ws.frame(first, &payload, unmasked).await;
        let close = ws.close().await;
        let (got, reason) = close.unwrap_or_else(|| panic!("{what}: no close frame"));
        assert_eq!(got, code, "{what}: {reason}");
        assert!(!reason.is_empty(), "{what}: a reason");
    }
    // The server is fine afterwards.
    let (mut c, _) = connect_native(server.addr, "").await;
    assert_eq!(
        c.request(json!({"type": "ping"}), "p").await["type"],
        "pong"
    );
}

#[tokio::test]
async fn since_at_the_top_of_the_range_replays_nothing() {
    let mut config = test_config();
    config.resources.insert(
        "logs".into(),
        switchboard::config::ResourceConfig::default(),
    );
    let server = start(config).await;
    let (mut c, _) = connect_native(server.addr, "").await;
    for i in 0..3 {
        c.request(
            json!({"type": "insert", "resource": "logs", "data": {"n": i}}),
            &i.to_string(),
        )
        .await;
    }
    let reply = c
        .request(
            json!({"type": "subscribe", "resource": "logs", "since": u64::MAX}),
            "s",
        )
        .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    c.expect_silence(std::time::Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn an_rtbdp_id_reused_for_another_table_leaves_no_orphan() {
    let mut config = test_config();
    for table in ["a", "b"] {
        config
            .resources
            .insert(table.into(), switchboard::config::ResourceConfig::default());
    }
    let server = start(config).await;
    let mut r = connect(server.addr, "/rtbdp").await;
    r.send(json!({"subscribe": [{"id": 1, "table": "a"}]}))
        .await;
    // The replay answers only after the frame's subscribe was applied.
    r.send(
        json!({"subscribe": [{"id": 1, "table": "b"}], "replay": [{"id": "sync", "table": "b"}]}),
    )
    .await;
    r.recv_until(|v| v["replayed"] == "sync").await;
    let (mut writer, _) = connect_native(server.addr, "").await;
    writer
        .request(
            json!({"type": "insert", "resource": "a", "data": {"id": "x"}}),
            "a",
        )
        .await;
    writer
        .request(
            json!({"type": "insert", "resource": "b", "data": {"id": "y"}}),
            "b",
        )
        .await;
    let row = r.recv().await;
    assert_eq!(
        row["table"], "b",
        "only the id's current table streams: {row}"
    );
    r.expect_silence(std::time::Duration::from_millis(300))
        .await;
}

/// Autobahn 7.3.6: a close frame over the 125-byte control limit. The
/// layer under us echoes any close it parses, so this one must fail the
/// connection instead: either a 1002 or a dropped connection, never the
/// echo (which would tell the peer its frame was fine). An oversized pong
/// is answered with 1002. Both on a dialect socket and a scripted one.
#[tokio::test]
async fn oversized_close_and_pong_fail_the_connection() {
    let dir = plugin_dir(&[example_plugin("echo")]);
    let server = start(config_with_plugins(dir.path(), false)).await;
    for path in ["/ws", "/echo"] {
        let mut ws = RawWs::connect(server.addr, path).await;
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend([b'a'; 124]);
        ws.frame(0x88, &close, false).await;
        // The first close the server sends, or `None` if it just hung up
        // (frames before it, such as a dialect's greeting, are skipped).
        let answer = tokio::time::timeout(WAIT, async {
            loop {
                match ws.read_frame().await {
                    Some((first, payload)) if first & 0x0f == 0x8 => break Some(payload),
                    Some(_) => continue,
                    None => break None,
                }
            }
        })
        .await
        .expect("an answer in time");
        if let Some(payload) = answer {
            assert_eq!(
                u16::from_be_bytes([payload[0], payload[1]]),
                1002,
                "{path}: not the echo"
            );
        }

        let mut ws = RawWs::connect(server.addr, path).await;
        ws.frame(0x8a, &[b'x'; 126], false).await;
        let (code, reason) = ws.close().await.expect("a close frame");
        assert_eq!(code, 1002, "{path}: {reason}");
    }
    // A close at the limit is still echoed.
    let mut ws = RawWs::connect(server.addr, "/echo").await;
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend([b'a'; 123]);
    ws.frame(0x88, &close, false).await;
    assert_eq!(ws.close().await.map(|c| c.0), Some(1000));
    let (mut c, _) = connect_native(server.addr, "").await;
    assert_eq!(
        c.request(json!({"type": "ping"}), "p").await["type"],
        "pong"
    );
}
