//! Hot reload: adding, replacing and deleting a `.wasm` takes effect with
//! no restart and no dropped connection; a broken file leaves the old
//! version serving and is reported; a swap under load fails no call and
//! loses no message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use integration_tests::*;
use serde_json::{json, Value};

async fn version(c: &mut Client, id: &str) -> Value {
    c.request(json!({"type": "walker", "walker": "version"}), id)
        .await
}

/// Calls `version` until `want` holds for the reply.
async fn wait_version(c: &mut Client, what: &str, want: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    for n in 0.. {
        let reply = version(c, &format!("{what}-{n}")).await;
        if want(&reply) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {what}; last reply {reply}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn add_replace_break_and_delete_without_dropping_clients() {
    let dir = plugin_dir(&[]);
    let mut config = config_with_plugins(dir.path(), true);
    // A load test: eight anonymous callers on one address, flat out.
    config.limits.rate_limit_max_requests = 0;
    let server = start(config).await;
    let (mut c, _) = connect_native(server.addr, "").await;
    assert_eq!(version(&mut c, "0").await["code"], "NOT_FOUND");

    install_plugin(dir.path(), &fixture_plugin("counter-v1"), "counter.wasm");
    wait_version(&mut c, "v1 loads", |r| r["returns"]["version"] == 1).await;

    install_plugin(dir.path(), &fixture_plugin("counter-v2"), "counter.wasm");
    wait_version(&mut c, "v2 replaces v1", |r| r["returns"]["version"] == 2).await;

    // A broken file: reported, and v2 keeps serving.
    install_plugin(dir.path(), &fixture_plugin("broken"), "counter.wasm");
    eventually("the failed load is reported", || async {
        let (_, metrics) = http_get(server.addr, "/metrics").await;
        metrics
            .contains(r#"switchboard_plugin_loads_total{file="counter.wasm",outcome="failed"} 1"#)
    })
    .await;
    assert_eq!(version(&mut c, "c").await["returns"]["version"], 2);
    let errors = server.app.plugins.errors();
    assert!(
        errors.values().any(|e| e.contains("not a valid component")),
        "{errors:?}"
    );

    std::fs::remove_file(dir.path().join("counter.wasm")).expect("delete");
    wait_version(&mut c, "deleting unloads it", |r| r["code"] == "NOT_FOUND").await;
    assert_eq!(
        c.request(json!({"type": "ping"}), "still").await["type"],
        "pong"
    );
}

#[tokio::test]
async fn swap_under_load_fails_no_call_and_loses_no_message() {
    let dir = plugin_dir(&[]);
    install_plugin(dir.path(), &fixture_plugin("counter-v1"), "counter.wasm");
    let mut config = config_with_plugins(dir.path(), true);
    // A load test: eight anonymous callers on one address, flat out.
    config.limits.rate_limit_max_requests = 0;
    let server = start(config).await;
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));

    // Callers: every call must get a walker reply.
    let mut callers = Vec::new();
    for k in 0..8 {
        let stop = stop.clone();
        callers.push(tokio::spawn(async move {
            let (mut c, _) = connect_native(addr, "").await;
            let (mut calls, mut seen) = (0u32, std::collections::BTreeSet::new());
            while !stop.load(Ordering::Relaxed) {
                let reply = version(&mut c, &format!("{k}-{calls}")).await;
                assert_eq!(reply["type"], "walker", "call failed during swap: {reply}");
                seen.insert(reply["returns"]["version"].as_i64().unwrap_or(0));
                calls += 1;
            }
            (calls, seen)
        }));
    }
    // A publisher and a subscriber: every message must arrive.
    let (mut sub, _) = connect_native(addr, "").await;
    sub.request(json!({"type": "subscribe", "channel": "ticks"}), "s")
        .await;
    let (mut publisher, _) = connect_native(addr, "").await;

    let mut published = 0;
    for round in 0..6 {
        let src = if round % 2 == 0 {
            "counter-v2"
        } else {
            "counter-v1"
        };
        install_plugin(dir.path(), &fixture_plugin(src), "counter.wasm");
        for _ in 0..20 {
            publisher
                .request(
                    json!({"type": "publish", "channel": "ticks", "message": {"n": published}}),
                    &format!("p{published}"),
                )
                .await;
            published += 1;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut versions = std::collections::BTreeSet::new();
    for caller in callers {
        let (calls, seen) = caller.await.expect("caller");
        total += calls;
        versions.extend(seen);
    }
    assert!(total > 100, "callers kept calling: {total}");
    assert_eq!(
        versions,
        [1, 2].into(),
        "both versions served during the run"
    );
    for expected in 0..published {
        let msg = sub.recv().await;
        assert_eq!(msg["data"]["n"], expected, "no message lost or reordered");
    }
}

#[tokio::test]
async fn a_second_file_claiming_a_loaded_name_is_refused_and_reported() {
    let dir = plugin_dir(&[]);
    install_plugin(dir.path(), &fixture_plugin("counter-v1"), "a-counter.wasm");
    install_plugin(dir.path(), &fixture_plugin("counter-v2"), "b-counter.wasm");
    let server = start(config_with_plugins(dir.path(), false)).await;
    let (mut c, _) = connect_native(server.addr, "").await;
    assert_eq!(
        version(&mut c, "1").await["returns"]["version"],
        1,
        "the first file keeps serving"
    );
    let errors = server.app.plugins.errors();
    let error = errors
        .iter()
        .find(|(file, _)| file.ends_with("b-counter.wasm"))
        .map(|(_, e)| e.clone())
        .unwrap_or_default();
    assert!(
        error.contains("conflict") && error.contains("counter"),
        "{errors:?}"
    );
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(
        metrics.contains(
            r#"switchboard_plugin_loads_total{file="b-counter.wasm",outcome="failed"} 1"#
        ),
        "{metrics}"
    );
}
