//! Durability: every acknowledged write survives `kill -9` of the server
//! process, which is restarted on the same data file.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use integration_tests::*;
use serde_json::json;

fn spawn_server(config: &std::path::Path) -> (Child, SocketAddr) {
    spawn_server_env(config, &[])
}

fn spawn_server_env(config: &std::path::Path, env: &[(&str, &str)]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchboard");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("banner");
    let addr = line
        .trim()
        .rsplit("ws://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected banner: {line:?}"));
    (child, addr)
}

/// Writes a config for a server process: port 0, its store and plugins
/// folder inside `dir`, plus `extra` TOML. Returns the file's path.
fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n{extra}\n[store]\npath = \"{}\"\n[plugins]\ndir = \"{}\"\nwatch = false\n",
            dir.join("data.redb").display(),
            dir.join("plugins").display(),
        ),
    )
    .expect("config");
    config
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "[resources.messages]");

    let (mut first, addr) = spawn_server(&config);
    let (mut c, _) = connect_native(addr, "").await;
    const N: usize = 50;
    for i in 0..N {
        let reply = c
            .request(
                json!({"type": "insert", "resource": "messages", "data": {"id": format!("r{i:03}"), "i": i}}),
                &i.to_string(),
            )
            .await;
        assert_eq!(reply["type"], "data", "{reply}");
    }
    let updated = c
        .request(
            json!({"type": "update", "resource": "messages", "id": "r007", "data": {"i": -7}}),
            "u",
        )
        .await;
    assert_eq!(updated["data"]["i"], -7);
    first.kill().expect("kill -9");
    first.wait().expect("reaped");

    let (mut second, addr) = spawn_server(&config);
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
    second.kill().expect("kill");
    let _ = second.wait();
}

#[tokio::test]
async fn environment_overrides_the_config_file() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "[auth]\nrequired = false");
    let (mut child, addr) = spawn_server_env(&config, &[("SWITCHBOARD_AUTH__REQUIRED", "true")]);
    let mut c = connect(addr, "/ws").await;
    let close = c.recv_close().await.expect("close");
    assert_eq!(close.reason, "UNAUTHORIZED: authentication required");
    child.kill().expect("kill");
    let _ = child.wait();

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
    let (mut child, addr) = spawn_server(&config);
    let (mut a, _) = connect_native(addr, "").await;
    let mut b = connect(addr, "/").await;
    b.recv().await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
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
