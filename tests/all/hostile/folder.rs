//! The plugins folder is input too: names that would inject metrics, a
//! huge file, a link to /dev/zero, a FIFO, a bad file that must not be
//! retried forever — and a server that goes idle after a reload.

use std::path::Path;
use std::time::Duration;

use integration_tests::process::{write_config, ServerProcess};
use integration_tests::*;

const MIB: u64 = 1 << 20;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchboard-cli"))
}

fn failed_loads(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("switchboard_plugin_loads_total") && l.contains(r#"outcome="failed""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as usize)
        .sum()
}

#[tokio::test]
async fn a_hostile_plugins_folder_costs_nothing_and_the_server_goes_idle() {
    let dir = tempfile::tempdir().expect("dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins");
    // A name that would inject a sample into /metrics.
    std::fs::write(
        plugins.join("evil\"} 1\nswitchboard_connections 987654\n#.wasm"),
        b"not wasm",
    )
    .expect("evil");
    // 400 MiB (sparse), a link to /dev/zero, and a FIFO.
    std::fs::File::create(plugins.join("big.wasm"))
        .and_then(|f| f.set_len(400 * MIB))
        .expect("big");
    std::os::unix::fs::symlink("/dev/zero", plugins.join("zero.wasm")).expect("link");
    let made = std::process::Command::new("mkfifo")
        .arg(plugins.join("fifo.wasm"))
        .status()
        .expect("mkfifo");
    assert!(made.success());

    let config = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&config)
        .expect("read")
        .replace("watch = false", "watch = true");
    std::fs::write(&config, text).expect("write");
    // It starts and serves despite all of them.
    let server = ServerProcess::spawn(exe(), &config, &[]);
    let (status, _) = http_get(server.addr, "/healthz").await;
    assert_eq!(status, 200);
    assert!(
        server.rss() < 200 * MIB,
        "nothing was read whole: {} MiB",
        server.rss() / MIB
    );

    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("switchboard_connections 987654")),
        "no injected sample:\n{metrics}"
    );
    assert_eq!(
        failed_loads(&metrics),
        4,
        "each bad file failed once:\n{metrics}"
    );

    // Hot reload still works next to the FIFO.
    install_plugin(&plugins, &example_plugin("chat"), "chat.wasm");
    let t = token("alice", None, serde_json::json!({}));
    let mut loaded = false;
    for _ in 0..100 {
        let (status, _) = http_request(server.addr, "POST", "/walker/echo", Some(&t), "{}").await;
        if status == 200 {
            loaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(loaded, "chat.wasm loaded beside the FIFO");

    // Nothing is retried, and the server goes idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let spent = server.cpu_ticks() - before;
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert_eq!(failed_loads(&metrics), 4, "no bad file was tried again");
    eprintln!("idle after a reload: {spent} CPU ticks in 4 s");
    assert!(
        spent <= 12,
        "{spent} ticks (1/100 s) of CPU in 4 idle seconds"
    );
}
