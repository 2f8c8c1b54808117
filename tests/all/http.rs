//! Health, readiness, metrics, and graceful shutdown.

use integration_tests::*;
use serde_json::{json, Value};

#[tokio::test]
async fn health_ready_and_metrics() {
    let server = start_default().await;
    let (status, body) = http_get(server.addr, "/healthz").await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["status"], "ok");

    let (status, _) = http_get(server.addr, "/readyz").await;
    assert_eq!(status, 200);

    let (mut c, _) = connect_native(server.addr, "").await;
    c.request(json!({"type": "ping"}), "1").await;
    c.send_text("nope").await;
    assert_eq!(c.recv().await["code"], "INVALID_JSON");
    let (status, metrics) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("switchboard_connections 1"), "{metrics}");
    assert!(
        metrics.contains("switchboard_messages_in_total 2"),
        "{metrics}"
    );
    // connected + pong + error
    assert!(
        metrics.contains("switchboard_messages_out_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switchboard_errors_total{code="INVALID_JSON"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001() {
    let server = start_default().await;
    let (mut a, _) = connect_native(server.addr, "").await;
    let (mut b, _) = connect_native(server.addr, "").await;
    server.shutdown();
    for c in [&mut a, &mut b] {
        let close = c.recv_close().await.expect("close frame");
        assert_eq!(u16::from(close.code), 1001);
        assert_eq!(close.reason, "server shutting down");
    }
    tokio::time::timeout(WAIT, server.wait())
        .await
        .expect("server stops in time")
        .expect("clean stop");
}

#[tokio::test]
async fn connection_cap_answers_503_and_frees_slots_on_close() {
    let mut config = test_config();
    config.limits.max_connections = 2;
    let server = start(config).await;
    let (a, _) = connect_native(server.addr, "").await;
    let (_b, _) = connect_native(server.addr, "").await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    drop(a);
    // The slot frees once the server notices the close.
    let mut ok = false;
    for _ in 0..100 {
        if tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "a closed connection gives its slot back");
}
