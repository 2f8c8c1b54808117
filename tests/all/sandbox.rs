//! The sandbox: a looping plugin hits its deadline, a memory-hungry one its
//! limit, a trapping one returns PLUGIN_ERROR — and the host and the other
//! plugins keep serving.

use std::time::{Duration, Instant};

use integration_tests::*;
use serde_json::json;
use switchboard::config::PluginLimits;

#[tokio::test]
async fn loops_memory_hogs_and_traps_fail_only_their_call() {
    let dir = plugin_dir(&[
        fixture_plugin("looper"),
        fixture_plugin("hog"),
        fixture_plugin("trapper"),
        example_plugin("chat"),
    ]);
    let mut config = config_with_plugins(dir.path(), false);
    config.plugins.max_memory_bytes = 32 << 20;
    config.plugins.overrides.insert(
        "looper".into(),
        PluginLimits {
            timeout_ms: Some(300),
            ..PluginLimits::default()
        },
    );
    let server = start(config).await;
    let t = token("tester", None, json!({}));
    let (mut c, _) = connect_native(server.addr, &format!("?token={t}")).await;

    let started = Instant::now();
    let spun = c
        .request(json!({"type": "walker", "walker": "spin"}), "spin")
        .await;
    assert_eq!(spun["code"], "TIMEOUT", "{spun}");
    assert!(
        spun["message"].as_str().unwrap_or("").contains("300 ms"),
        "{spun}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped near its deadline"
    );

    let grown = c
        .request(json!({"type": "walker", "walker": "grow"}), "grow")
        .await;
    assert_eq!(grown["code"], "PLUGIN_ERROR", "{grown}");
    assert!(
        grown["message"]
            .as_str()
            .unwrap_or("")
            .contains("memory limit"),
        "{grown}"
    );

    let boom = c
        .request(json!({"type": "walker", "walker": "boom"}), "boom")
        .await;
    assert_eq!(boom["code"], "PLUGIN_ERROR", "{boom}");
    assert!(
        boom["message"].as_str().unwrap_or("").contains("trapped"),
        "{boom}"
    );

    // The same plugins, the other plugins and the host all still serve.
    let ok = c
        .request(json!({"type": "walker", "walker": "ok"}), "ok")
        .await;
    assert_eq!(ok["returns"], json!({"ok": true}), "{ok}");
    let echo = c
        .request(
            json!({"type": "walker", "walker": "echo", "context": {"x": 1}}),
            "e",
        )
        .await;
    assert_eq!(echo["returns"], json!({"x": 1}));
    let spun = c
        .request(json!({"type": "walker", "walker": "spin"}), "spin2")
        .await;
    assert_eq!(spun["code"], "TIMEOUT");
    assert_eq!(
        c.request(json!({"type": "ping"}), "p").await["type"],
        "pong"
    );

    let (_, metrics) = http_get(server.addr, "/metrics").await;
    for line in [
        r#"switchboard_plugin_calls_total{plugin="looper",outcome="timeout"} 2"#,
        r#"switchboard_plugin_calls_total{plugin="hog",outcome="out_of_memory"} 1"#,
        r#"switchboard_plugin_calls_total{plugin="trapper",outcome="trap"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn a_looping_call_does_not_block_other_clients() {
    let dir = plugin_dir(&[fixture_plugin("looper"), example_plugin("chat")]);
    let mut config = config_with_plugins(dir.path(), false);
    config.plugins.timeout_ms = 4000;
    let server = start(config).await;
    let (mut spinner, _) = connect_native(server.addr, "").await;
    let t = token("tester", None, json!({}));
    let (mut other, _) = connect_native(server.addr, &format!("?token={t}")).await;
    spinner
        .send(json!({"type": "walker", "walker": "spin", "requestId": "s"}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let echo = other
        .request(
            json!({"type": "walker", "walker": "echo", "context": {}}),
            "e",
        )
        .await;
    assert_eq!(echo["type"], "walker");
    // Answered while the loop still runs: it is stopped only at its 4 s
    // deadline, and calls run on blocking threads the OS time-slices.
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(spinner.recv().await["code"], "TIMEOUT");
}

/// Calls `walker` on counter.wasm and returns its `calls` count.
async fn calls(c: &mut Client, walker: &str, id: &str) -> serde_json::Value {
    c.request(json!({"type": "walker", "walker": walker}), id)
        .await
}

#[tokio::test]
async fn clean_instances_are_reused_trapped_ones_are_not() {
    let dir = plugin_dir(&[fixture_plugin("counter-v1")]);
    let mut config = config_with_plugins(dir.path(), false);
    config.plugins.reuse_calls = 3;
    let server = start(config).await;
    let (mut c, _) = connect_native(server.addr, "").await;
    let counts = |v: serde_json::Value| v["returns"]["calls"].clone();

    // One client calling in turn gets the same warm instance each time.
    assert_eq!(counts(calls(&mut c, "calls", "1").await), json!(1));
    assert_eq!(counts(calls(&mut c, "calls", "2").await), json!(2));
    // Retired after its third call: the next one starts afresh.
    assert_eq!(counts(calls(&mut c, "calls", "3").await), json!(3));
    assert_eq!(counts(calls(&mut c, "calls", "4").await), json!(1));
    // A trap throws the instance away, state and all.
    let poisoned = calls(&mut c, "poison", "5").await;
    assert_eq!(poisoned["code"], "PLUGIN_ERROR", "{poisoned}");
    assert_eq!(counts(calls(&mut c, "calls", "6").await), json!(1));
}

#[tokio::test]
async fn reuse_calls_of_one_gives_every_call_a_fresh_instance() {
    let dir = plugin_dir(&[fixture_plugin("counter-v1")]);
    let mut config = config_with_plugins(dir.path(), false);
    config.plugins.reuse_calls = 1;
    let server = start(config).await;
    let (mut c, _) = connect_native(server.addr, "").await;
    for id in ["1", "2", "3"] {
        let reply = calls(&mut c, "calls", id).await;
        assert_eq!(reply["returns"]["calls"], json!(1), "{reply}");
    }
}
