//! Durability: every acknowledged write survives `kill -9` of the server
//! process, which is restarted on the same data file.

use std::process::Command;

use integration_tests::process::{write_config, ServerProcess};
use integration_tests::*;
use serde_json::json;

fn exe() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_switchboard-cli"))
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "[resources.messages]");

    let mut first = ServerProcess::spawn(exe(), &config, &[]);
    let addr = first.addr;
    // Eight clients with all their inserts in flight at once, so the
    // writes share group commits: every one acknowledged must survive.
    const CLIENTS: usize = 8;
    const EACH: usize = 25;
    const N: usize = CLIENTS * EACH;
    let clients = (0..CLIENTS).map(|k| {
        tokio::spawn(async move {
            let (mut c, _) = connect_native(addr, "").await;
            for n in 0..EACH {
                let i = k * EACH + n;
                c.send(json!({"type": "insert", "resource": "messages", "requestId": i.to_string(), "data": {"id": format!("r{i:03}"), "i": i}}))
                    .await;
            }
            for _ in 0..EACH {
                let reply = c.recv().await;
                assert_eq!(reply["type"], "data", "{reply}");
            }
        })
    });
    for client in futures_util::future::join_all(clients).await {
        client.expect("client");
    }
    let (mut c, _) = connect_native(addr, "").await;
    let updated = c
        .request(
            json!({"type": "update", "resource": "messages", "id": "r007", "data": {"i": -7}}),
            "u",
        )
        .await;
    assert_eq!(updated["data"]["i"], -7);
    first.kill9();

    let mut second = ServerProcess::spawn(exe(), &config, &[]);
    let addr = second.addr;
    let (mut c, _) = connect_native(addr, "").await;
    let listed = c
        .request(
            json!({"type": "list", "resource": "messages", "limit": 1000}),
            "l",
        )
        .await;
    let rows = listed["data"].as_array().expect("rows");
    assert_eq!(rows.len(), N, "every acknowledged insert survived");
    assert_eq!(rows[7]["i"], -7, "the acknowledged update survived");
    let replay = c
        .request(
            json!({"type": "replay", "resource": "messages", "limit": 1}),
            "r",
        )
        .await;
    assert_eq!(replay["seq"], N as u64 + 1, "the change log survived too");
    second.kill9();
}

#[tokio::test]
async fn environment_overrides_the_config_file() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "[auth]\nrequired = false");
    let mut child = ServerProcess::spawn(exe(), &config, &[("SWITCHBOARD_AUTH__REQUIRED", "true")]);
    let addr = child.addr;
    let mut c = connect(addr, "/ws").await;
    let close = c.recv_close().await.expect("close");
    assert_eq!(close.reason, "UNAUTHORIZED: authentication required");
    child.kill9();

    // A bad file is a clear error, not a panic.
    std::fs::write(&config, "listen = 5\nnonsense = true\n").expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: loading configuration"), "{stderr}");
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_then_exits() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "");
    let mut child = ServerProcess::spawn(exe(), &config, &[]);
    let addr = child.addr;
    let (mut a, _) = connect_native(addr, "").await;
    let mut b = connect(addr, "/").await;
    b.recv().await;
    let status = Command::new("kill")
        .args(["-TERM", &child.pid().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    for c in [&mut a, &mut b] {
        let close = c.recv_close().await.expect("close frame");
        assert_eq!(u16::from(close.code), 1001);
        assert_eq!(close.reason, "server shutting down");
    }
    let exited = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exited.success(), "clean exit after SIGTERM: {exited:?}");
}
