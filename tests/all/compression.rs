//! permessage-deflate (RFC 7692) over real sockets, spoken by hand so the
//! test sees the wire: negotiated when offered, frames compressed both
//! ways, a compression bomb closed with 1009 before it costs memory, kept
//! deflate state drawn from a budget, and nothing agreed when it is off.

use std::path::Path;
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use integration_tests::process::{write_config, ServerProcess};
use integration_tests::*;
use serde_json::json;

use crate::hostile::RawWs;

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// A message's deflated payload as RFC 7692 sends it: raw deflate, sync
/// flushed, without the final `00 00 ff ff`.
fn deflate(data: &[u8]) -> Vec<u8> {
    deflate_at(data, Compression::fast())
}

/// As [`deflate`], at `level`.
fn deflate_at(data: &[u8], level: Compression) -> Vec<u8> {
    let mut deflater = Compress::new(level, false);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut input = data;
    loop {
        out.reserve(64 * 1024);
        let before = deflater.total_in();
        deflater
            .compress_vec(input, &mut out, FlushCompress::Sync)
            .expect("deflate");
        input = &input[(deflater.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A compressed message's payload, inflated.
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut data = payload.to_vec();
    data.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut inflater = Decompress::new(false);
    let mut out = Vec::with_capacity(payload.len() * 8 + 1024);
    loop {
        let consumed = inflater.total_in() as usize;
        inflater
            .decompress_vec(&data[consumed..], &mut out, FlushDecompress::Sync)
            .expect("inflate");
        if inflater.total_in() as usize == data.len() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

/// A JSON row as real-time payloads look: repetitive keys and values.
fn rows(n: usize) -> String {
    let rows: Vec<_> = (0..n)
        .map(|i| json!({"id": i, "symbol": "ACME", "price": 100 + i % 7, "side": "buy", "venue": "XNAS"}))
        .collect();
    serde_json::to_string(&rows).expect("json")
}

#[tokio::test]
async fn an_offer_is_agreed_and_messages_are_compressed_both_ways() {
    let dir = plugin_dir(&[example_plugin("echo")]);
    let server = start(config_with_plugins(dir.path(), false)).await;
    let (mut ws, head) = RawWs::connect_with(server.addr, "/echo", OFFER).await;
    let agreed = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("sec-websocket-extensions:")
        })
        .unwrap_or_else(|| panic!("no extension agreed: {head}"));
    assert!(agreed.contains("permessage-deflate"), "{agreed}");
    // The default keeps no context: every message stands alone.
    assert!(agreed.contains("server_no_context_takeover"), "{agreed}");
    assert!(agreed.contains("client_no_context_takeover"), "{agreed}");

    let text = rows(200);
    // RSV1 + FIN + text: a compressed message.
    ws.frame(0xc1, &deflate(text.as_bytes()), false).await;
    let (first, payload) = ws.read_frame().await.expect("echo");
    assert_eq!(first, 0xc1, "a compressed text frame back");
    assert!(
        payload.len() * 5 < text.len(),
        "{} bytes on the wire for {}",
        payload.len(),
        text.len()
    );
    assert_eq!(inflate(&payload), text.as_bytes());

    // Binary, compressed, and an uncompressed message on the same socket.
    let bytes: Vec<u8> = text.bytes().rev().collect();
    ws.frame(0xc2, &deflate(&bytes), false).await;
    let (first, payload) = ws.read_frame().await.expect("echo");
    assert_eq!(first, 0xc2);
    assert_eq!(inflate(&payload), bytes);
    ws.frame(0x81, b"plain", false).await;
    let (first, payload) = ws.read_frame().await.expect("echo");
    // Below limits.compression_threshold_bytes: sent as it is.
    assert_eq!((first, payload.as_slice()), (0x81, b"plain".as_slice()));
}

#[tokio::test]
async fn dialect_events_reach_a_compressed_subscriber_compressed() {
    let server = start_default().await;
    let (mut ws, _) = RawWs::connect_with(server.addr, "/ws", OFFER).await;
    let welcome = ws.read_frame().await.expect("welcome");
    let subscribe = json!({"type": "subscribe", "channel": "rows", "id": "s"}).to_string();
    ws.frame(0xc1, &deflate(subscribe.as_bytes()), false).await;
    let (first, payload) = ws.read_frame().await.expect("subscribed");
    let reply = if first & 0x40 != 0 {
        inflate(&payload)
    } else {
        payload
    };
    assert!(
        String::from_utf8_lossy(&reply).contains("subscribed"),
        "{welcome:?} {reply:?}"
    );
    let (mut publisher, _) = connect_native(server.addr, "").await;
    let message = rows(100);
    publisher
        .request(
            json!({"type": "publish", "channel": "rows", "message": message}),
            "p",
        )
        .await;
    let (first, payload) = ws.read_frame().await.expect("event");
    assert_eq!(first, 0xc1, "the event is compressed");
    let event: serde_json::Value = serde_json::from_slice(&inflate(&payload)).expect("json");
    assert_eq!(event["data"], message.as_str());
}

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchboard-cli"))
}

#[tokio::test]
async fn a_compression_bomb_closes_with_1009_and_allocates_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let server = ServerProcess::spawn(exe(), &write_config(dir.path(), ""), &[]);
    let limit = 1 << 20;
    // 256 MiB of zeros deflate to about 250 KiB: well under the 1 MiB
    // payload limit on the wire, 256 times over it inflated.
    let bomb = deflate_at(&vec![0u8; 256 << 20], Compression::best());
    assert!(bomb.len() < limit / 2, "{}", bomb.len());
    let before = server.rss();
    // Whole, and split in fragments (each far under the limit).
    for fragmented in [false, true] {
        let (mut ws, _) = RawWs::connect_with(server.addr, "/ws", OFFER).await;
        if fragmented {
            let parts: Vec<&[u8]> = bomb.chunks(bomb.len() / 4 + 1).collect();
            for (i, part) in parts.iter().enumerate() {
                let first = match (i, i + 1 == parts.len()) {
                    (0, _) => 0x41,     // RSV1, text, not FIN
                    (_, false) => 0x00, // continuation
                    (_, true) => 0x80,  // FIN continuation
                };
                // The server may close before the last parts.
                if ws.try_frame(first, part, false).await.is_err() {
                    break;
                }
            }
        } else {
            ws.frame(0xc1, &bomb, false).await;
        }
        let (code, reason) = ws.close().await.expect("a close frame");
        assert_eq!(code, 1009, "fragmented {fragmented}: {reason}");
    }
    let grown = server.rss().saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "the server grew {} MiB inflating a bomb",
        grown >> 20
    );
    // Everyone else is served.
    let (mut c, _) = connect_native(server.addr, "").await;
    assert_eq!(
        c.request(json!({"type": "ping"}), "p").await["type"],
        "pong"
    );
}

/// The extension header a connection got, if any.
async fn agreed(addr: std::net::SocketAddr) -> (RawWs, Option<String>) {
    let (ws, head) = RawWs::connect_with(addr, "/ws", OFFER).await;
    let line = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("sec-websocket-extensions:")
        })
        .map(str::to_owned);
    (ws, line)
}

#[tokio::test]
async fn kept_deflate_state_is_drawn_from_a_budget() {
    let mut config = test_config();
    config.limits.compression_context_takeover = true;
    // Room for one connection's state (about 300 KiB at 15 bits).
    config.limits.compression_memory_bytes = 400 * 1024;
    let server = start(config).await;
    let (first, line) = agreed(server.addr).await;
    let line = line.expect("the first connection compresses");
    assert!(!line.contains("no_context_takeover"), "{line}");
    let (mut second, line) = agreed(server.addr).await;
    assert_eq!(line, None, "past the budget: served uncompressed");
    // Uncompressed, and served all the same.
    second.read_frame().await.expect("welcome");
    second
        .frame(0x81, br#"{"type":"ping","id":"p"}"#, false)
        .await;
    let (op, pong) = second.read_frame().await.expect("pong");
    assert_eq!(op, 0x81);
    assert!(String::from_utf8_lossy(&pong).contains("pong"));
    // The first one's share comes back when it goes.
    drop(first);
    let mut freed = false;
    for _ in 0..50 {
        if agreed(server.addr).await.1.is_some() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the budget was given back");
}

#[tokio::test]
async fn nothing_is_agreed_when_compression_is_off() {
    let mut config = test_config();
    config.limits.compression = switchboard::config::Compression::Off;
    let server = start(config).await;
    let (mut ws, line) = agreed(server.addr).await;
    assert_eq!(line, None);
    // A compressed frame where none was agreed is a protocol error.
    ws.read_frame().await.expect("welcome");
    ws.frame(0xc1, &deflate(b"{}"), false).await;
    let (code, _) = ws.close().await.expect("close");
    assert_eq!(code, 1002);
}
