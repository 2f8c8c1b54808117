//! Memory a client can pin: a subscriber that never reads, huge pages,
//! huge filters and presence info, thousands of subscriptions, topics that
//! outlive their creator, unbounded writes. Each is measured on a server
//! process (RSS from /proc) or counted in what the server accepted.

use std::path::Path;
use std::time::Duration;

use futures_util::SinkExt;
use integration_tests::process::{write_config, ServerProcess};
use integration_tests::*;
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

const MIB: u64 = 1 << 20;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchboard-cli"))
}

/// A client whose socket buffers are tiny and that stops reading after
/// its subscription is confirmed: what it is sent piles up on the server.
async fn stalled(
    addr: std::net::SocketAddr,
    subscribe: Value,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(addr).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
        .await
        .expect("upgrade");
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("send");
    ws
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

#[tokio::test]
async fn a_subscriber_that_never_reads_holds_a_bounded_queue() {
    let dir = tempfile::tempdir().expect("dir");
    let server = ServerProcess::spawn(exe(), &write_config(dir.path(), ""), &[]);
    let publisher_token = token("pub", None, json!({}));
    let (mut publisher, _) =
        connect_native(server.addr, &format!("?token={publisher_token}")).await;
    let _stuck = stalled(server.addr, json!({"type": "subscribe", "channel": "big"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss();
    let message = "x".repeat(1_000_000);
    for i in 0..19 {
        publisher
            .request(
                json!({"type": "publish", "channel": "big", "message": message}),
                &i.to_string(),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = server.rss().saturating_sub(before);
    eprintln!(
        "non-reading subscriber, 19 MB published: server RSS +{:.1} MiB",
        mib(grown)
    );
    assert!(grown < 96 * MIB, "+{:.1} MiB", mib(grown));
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(
        metrics.contains(r#"switchboard_disconnects_total{reason="slow_consumer"} 1"#),
        "the stuck subscriber was dropped as a slow consumer"
    );
}

#[tokio::test]
async fn pages_are_bounded_in_bytes_even_for_clients_that_never_read() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(
        dir.path(),
        "[limits]\nwrite_timeout_ms = 1500\n[resources.docs]\n",
    );
    let server = ServerProcess::spawn(exe(), &config, &[]);
    let writer_token = token("writer", None, json!({}));
    let (mut writer, _) = connect_native(server.addr, &format!("?token={writer_token}")).await;
    let body = "y".repeat(200_000);
    for i in 0..40 {
        let reply = writer
            .request(json!({"type": "insert", "resource": "docs", "data": {"id": format!("d{i:02}"), "body": body}}), &i.to_string())
            .await;
        assert_eq!(reply["type"], "data", "{reply}");
    }
    let page = writer
        .request(
            json!({"type": "list", "resource": "docs", "limit": 1000}),
            "l",
        )
        .await;
    let rows = page["data"].as_array().expect("rows").len();
    assert!(
        rows < 40 && page["cursor"].is_string(),
        "{rows} rows, cursor {}",
        page["cursor"]
    );
    assert!(
        page.to_string().len() <= (MIB + 64 * 1024) as usize,
        "limits.max_page_bytes = 1 MiB"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss();
    let mut stuck = Vec::new();
    let list = json!({"type": "list", "resource": "docs", "limit": 1000});
    for _ in 0..8 {
        let mut ws = stalled(server.addr, list.clone()).await;
        // More pages than the kernel's socket buffers hold.
        for _ in 0..9 {
            ws.send(Message::Text(list.to_string().into()))
                .await
                .expect("send");
        }
        stuck.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let grown = server.rss().saturating_sub(before);
    eprintln!(
        "8 non-reading clients asking for a 1000-row page of 200 KB records: server RSS +{:.1} MiB",
        mib(grown)
    );
    assert!(grown < 64 * MIB, "+{:.1} MiB", mib(grown));
    // Unread replies are not held forever: past write_timeout_ms the
    // clients are slow consumers.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(
        metrics.contains(r#"switchboard_disconnects_total{reason="slow_consumer"} 8"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn huge_filters_and_presence_info_are_refused_before_they_cost_anything() {
    let dir = tempfile::tempdir().expect("dir");
    let server = ServerProcess::spawn(exe(), &write_config(dir.path(), ""), &[]);
    let (mut c, _) = connect_native(server.addr, "").await;
    c.request(json!({"type": "ping"}), "warm").await;
    let before = server.rss();
    let half = "z".repeat(450_000);
    let many: Vec<u32> = (0..90_000).collect();
    for i in 0..10 {
        for (frame, code) in [
            (
                json!({"type": "subscribe", "channel": format!("f{i}"), "filter": [{"a": half}, {"b": half}]}),
                "PAYLOAD_TOO_LARGE",
            ),
            (
                json!({"type": "subscribe", "channel": format!("o{i}"), "filter": {"n": {"opt": many}}}),
                "PAYLOAD_TOO_LARGE",
            ),
            (
                json!({"type": "join", "channel": format!("p{i}"), "info": {"bio": half}}),
                "PAYLOAD_TOO_LARGE",
            ),
        ] {
            let reply = c.request(frame, "x").await;
            assert_eq!(reply["code"], code, "{}", reply["message"]);
        }
    }
    let rows: Vec<Value> = (0..100).map(|i| json!({"n": i})).collect();
    let reply = c
        .request(
            json!({"type": "subscribe", "channel": "rows", "filter": rows}),
            "r",
        )
        .await;
    assert_eq!(
        reply["code"], "BAD_REQUEST",
        "100 rows > max_filter_rows: {reply}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grown = server.rss().saturating_sub(before);
    eprintln!(
        "30 refused 1 MB filters / presence infos: server RSS +{:.1} MiB",
        mib(grown)
    );
    assert!(grown < 40 * MIB, "+{:.1} MiB", mib(grown));
}

#[tokio::test]
async fn one_connection_holds_a_bounded_number_of_subscriptions() {
    let mut config = test_config();
    config
        .resources
        .insert("t".into(), switchboard::config::ResourceConfig::default());
    let server = start(config).await;
    let (mut c, _) = connect_native(server.addr, "").await;
    let mut refused = 0;
    for i in 0..300 {
        let reply = c
            .request(
                json!({"type": "subscribe", "channel": format!("c{i}")}),
                &i.to_string(),
            )
            .await;
        if reply["type"] == "error" {
            assert_eq!(reply["code"], "BAD_REQUEST");
            refused += 1;
        }
    }
    assert_eq!(refused, 300 - 256, "limits.max_subscriptions = 256");
    let mut r = connect(server.addr, "/rtbdp").await;
    let subs: Vec<Value> = (0..300).map(|i| json!({"id": i, "table": "t"})).collect();
    r.send(json!({"subscribe": subs})).await;
    let mut errors = 0;
    while let Some(frame) = r.try_recv(Duration::from_millis(500)).await {
        if frame.get("error").is_some() {
            errors += 1;
        }
    }
    assert_eq!(errors, 300 - 256, "keyed subscriptions count too");
}

#[tokio::test]
async fn topics_are_capped_per_creator_and_an_anonymous_creators_go_with_it() {
    let server = start_default().await;
    let mut creator = connect(server.addr, "/live").await;
    creator.recv().await;
    let mut created = 0;
    for i in 0..20 {
        creator
            .send(json!({"id": i, "method": "create-topic", "attributes": {"name": format!("room-{i}")}}))
            .await;
        let reply = creator.recv().await;
        if reply["ok"] == true {
            created += 1;
        } else {
            assert_eq!(reply["error"]["code"], "FORBIDDEN", "{reply}");
        }
    }
    assert_eq!(created, 16, "limits.max_topics_per_creator");
    creator
        .send(json!({"id": 99, "method": "create-topic", "attributes": {"name": "n".repeat(1_000_000)}}))
        .await;
    assert_eq!(creator.recv().await["error"]["code"], "BAD_REQUEST");
    drop(creator);

    let mut other = connect(server.addr, "/live").await;
    other.recv().await;
    let mut gone = false;
    for attempt in 0..40 {
        other
            .send(json!({"id": attempt, "method": "list-topic", "attributes": {}}))
            .await;
        let listed = other.recv().await;
        if listed["data"].as_array().is_some_and(Vec::is_empty) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gone,
        "the anonymous creator's topics went with its connection"
    );
}

#[tokio::test]
async fn writes_draw_on_a_per_identity_quota() {
    let mut config = test_config();
    config.resources.insert(
        "blobs".into(),
        switchboard::config::ResourceConfig::default(),
    );
    config.limits.write_quota_bytes = 2 << 20;
    let server = start(config).await;
    let (mut anon, _) = connect_native(server.addr, "").await;
    let body = "b".repeat(100_000);
    let mut accepted = 0;
    for i in 0..40 {
        let reply = anon
            .request(
                json!({"type": "insert", "resource": "blobs", "data": {"body": body}}),
                &i.to_string(),
            )
            .await;
        match reply["type"].as_str() {
            Some("data") => accepted += 1,
            _ => assert_eq!(reply["code"], "RATE_LIMIT_EXCEEDED", "{reply}"),
        }
    }
    assert!(
        (19..=21).contains(&accepted),
        "2 MiB of 100 KB records: {accepted}"
    );
    // A reconnect does not refill it; another identity has its own.
    let (mut again, _) = connect_native(server.addr, "").await;
    let reply = again
        .request(
            json!({"type": "insert", "resource": "blobs", "data": {"body": body}}),
            "a",
        )
        .await;
    assert_eq!(reply["code"], "RATE_LIMIT_EXCEEDED");
    let t = token("someone", None, json!({}));
    let (mut user, _) = connect_native(server.addr, &format!("?token={t}")).await;
    let reply = user
        .request(
            json!({"type": "insert", "resource": "blobs", "data": {"body": body}}),
            "u",
        )
        .await;
    assert_eq!(reply["type"], "data");
}
