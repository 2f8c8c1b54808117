//! Connections as an attacker opens them: handshakes never finished,
//! too many from one address, scripted sockets that would take every plugin
//! instance.

use std::time::Duration;

use integration_tests::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::within;

/// Opens a connection that sends half a request head and then nothing.
async fn half_open(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .expect("write");
    s
}

/// Whether the server closed `s` (EOF or reset) within `wait`.
async fn closed(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(wait, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn half_open_handshakes_cannot_lock_anyone_out() {
    let mut config = test_config();
    config.limits.max_handshakes_per_ip = 32;
    config.limits.handshake_timeout_ms = 2000;
    let server = start(config).await;
    let mut attackers = Vec::new();
    for _ in 0..300 {
        attackers.push(half_open(server.addr).await);
    }
    let (_, unfinished) = server.app.admission.counts();
    assert!(unfinished <= 32, "{unfinished} unfinished handshakes held");

    // Everyone else still gets in, from the attacker's own address.
    let (status, body) = http_get(server.addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (mut c, _) = connect_native(server.addr, "").await;
    assert_eq!(
        c.request(json!({"type": "ping"}), "p").await["type"],
        "pong"
    );

    // The attacker's sockets are let go: replaced first, timed out after.
    let mut gone = 0;
    for s in &mut attackers {
        if closed(s, Duration::from_millis(50)).await {
            gone += 1;
        }
    }
    assert!(gone >= 300 - 32 - 1, "{gone} of 300 closed at once");
    assert!(
        within(Duration::from_secs(5), || server.app.admission.counts().1
            == 0)
        .await,
        "the rest time out: {:?}",
        server.app.admission.counts()
    );
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(metrics.contains(r#"reason="handshake_shed""#), "{metrics}");
    assert!(metrics.contains(r#"reason="handshake_timeout""#));
    // And it recovers by itself once the attacker lets go.
    drop(attackers);
    assert!(
        within(Duration::from_secs(5), || server.app.admission.counts().0
            <= 2)
        .await,
        "{:?}",
        server.app.admission.counts()
    );
}

#[tokio::test]
async fn at_the_descriptor_limit_health_checks_and_prompt_clients_still_get_in() {
    use integration_tests::process::{write_config, ServerProcess};
    let dir = tempfile::tempdir().expect("dir");
    // One address may hold many unfinished handshakes here: descriptor
    // pressure, not the per-address share, is what must make room.
    let config = write_config(
        dir.path(),
        "[limits]\nmax_handshakes_per_ip = 10000\nhandshake_timeout_ms = 4000\n",
    );
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_switchboard-cli"));
    let server = ServerProcess::spawn_with_nofile(exe, &config, 200);
    let mut attackers = Vec::new();
    for _ in 0..400 {
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(server.addr)).await {
            Ok(Ok(mut s)) => {
                let _ = s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").await;
                attackers.push(s);
            }
            _ => break,
        }
    }
    let (status, body) = http_get(server.addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    let (mut c, _) = connect_native(server.addr, "").await;
    assert_eq!(
        c.request(json!({"type": "ping"}), "p").await["type"],
        "pong"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(fds < 200, "{fds} descriptors open");
    drop(attackers);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut again, _) = connect_native(server.addr, "").await;
    assert_eq!(
        again.request(json!({"type": "ping"}), "q").await["type"],
        "pong"
    );
}

#[tokio::test]
async fn one_address_holds_a_bounded_number_of_connections() {
    let mut config = test_config();
    config.limits.max_connections_per_ip = 5;
    let server = start(config).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_native(server.addr, "").await.0);
    }
    let mut extra = TcpStream::connect(server.addr).await.expect("tcp");
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(
        closed(&mut extra, Duration::from_secs(2)).await,
        "the sixth is refused"
    );
    drop(held.pop());
    assert!(
        within(Duration::from_secs(3), || server.app.admission.counts().0
            <= 4)
        .await,
        "{:?}",
        server.app.admission.counts()
    );
    let (status, _) = http_get(server.addr, "/healthz").await;
    assert_eq!(status, 200, "a freed slot is usable again");
}

#[tokio::test]
async fn scripted_sockets_cannot_starve_walkers_and_guards() {
    let dir = plugin_dir(&[
        example_plugin("chatroom"),
        example_plugin("chat"),
        example_plugin("guard"),
    ]);
    let mut config = config_with_plugins(dir.path(), false);
    config.plugins.pool_instances = 40;
    config.plugins.max_sockets_per_client = 8;
    config.limits.rate_limit_max_requests = 0;
    let server = start(config).await;
    // Anonymous sockets from one address: 8 get in, the rest are told to
    // come back later.
    let mut sockets = Vec::new();
    let mut refused = 0;
    for i in 0..19 {
        let mut s = connect(server.addr, &format!("/chat?room=r&name=n{i}")).await;
        match first(&mut s).await {
            Ok(frame) => {
                assert_eq!(frame["type"], "init");
                sockets.push(s);
            }
            Err(code) => {
                assert_eq!(code, 1013, "try again later");
                refused += 1;
            }
        }
    }
    assert_eq!((sockets.len(), refused), (8, 11));
    // Users with their own budgets fill the sockets' whole share (10 of 40).
    for u in 0..4 {
        let t = token(&format!("u{u}"), None, json!({}));
        for _ in 0..3 {
            let mut s = connect(server.addr, &format!("/chat?room=r&name=u&token={t}")).await;
            if first(&mut s).await.is_ok() {
                sockets.push(s);
            }
        }
    }
    assert_eq!(sockets.len(), 10, "plugins.max_socket_instances = pool / 4");
    // Walkers and guards still get instances.
    let t = token("caller", None, json!({}));
    for i in 0..20 {
        let (status, body) = http_request(
            server.addr,
            "POST",
            "/walker/echo",
            Some(&t),
            &format!("{{\"i\":{i}}}"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (mut c, _) = connect_native(server.addr, &format!("?token={t}")).await;
    let sub = c
        .request(json!({"type": "subscribe", "channel": "admin:x"}), "g")
        .await;
    assert_eq!(sub["code"], "FORBIDDEN");
    assert!(
        sub["message"]
            .as_str()
            .is_some_and(|m| m.contains("admin role")),
        "the guard itself answered, not a failure to run it: {sub}"
    );
}

/// A socket's first text frame, or the code it was closed with.
async fn first(c: &mut Client) -> Result<serde_json::Value, u16> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(WAIT, c.raw().next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                return Ok(serde_json::from_str(&text).expect("json"))
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Err(frame.map_or(0, |f| u16::from(f.code)))
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no frame: {other:?}"),
        }
    }
}
