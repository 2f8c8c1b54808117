//! Resources on PostgreSQL shared by several nodes (a real server on a
//! loopback port per test): a write on one node is read, announced and
//! resumed on the others in one `seq` order; a PostgreSQL restart is
//! ridden out; acknowledged writes survive `kill -9` of a node.

use std::time::Duration;

use integration_tests::postgres::PgServer;
use integration_tests::process::{write_config, ServerProcess};
use integration_tests::redis::RedisServer;
use integration_tests::*;
use serde_json::{json, Value};
use switchboard::config::ResourceConfig;
use switchboard::Config;

fn on(url: &str, mut config: Config) -> Config {
    config.store.url = Some(url.to_owned());
    config
        .resources
        .insert("orders".into(), ResourceConfig::default());
    config
}

async fn insert(c: &mut Client, id: &str, extra: Value) -> Value {
    let mut data = json!({"id": id});
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    c.request(
        json!({"type": "insert", "resource": "orders", "data": data}),
        id,
    )
    .await
}

#[tokio::test]
async fn two_nodes_share_records_events_and_resume() {
    let pg = PgServer::start();
    let redis = RedisServer::start();
    let url = pg.database();
    // Both nodes of one cluster (Redis) on one database: resource events
    // come from the shared change log, once each.
    let (a, b) = tokio::join!(
        start(on(&url, cluster_config(&redis))),
        start(on(&url, cluster_config(&redis)))
    );
    assert_eq!(
        pg.sql(
            url.rsplit('/').next().expect("db"),
            "SELECT count(*) FROM sb_schema_versions"
        ),
        "1",
        "two nodes starting at once migrate once"
    );
    let (mut on_a, _) = connect_native(a.addr, "").await;
    let (mut watcher, _) = connect_native(b.addr, "").await;
    let sub = watcher
        .request(json!({"type": "subscribe", "resource": "orders"}), "s")
        .await;
    assert_eq!(sub["type"], "subscribed", "{sub}");

    let written = insert(&mut on_a, "o1", json!({"total": 5})).await;
    assert_eq!(written["type"], "data", "{written}");
    let event = watcher.recv().await;
    assert_eq!(
        (event["event"].as_str(), event["data"]["id"].as_str()),
        (Some("insert"), Some("o1")),
        "{event}"
    );
    let (mut on_b, _) = connect_native(b.addr, "").await;
    let got = on_b
        .request(
            json!({"type": "get", "resource": "orders", "id": "o1"}),
            "g",
        )
        .await;
    assert_eq!(got["data"], json!({"id": "o1", "total": 5}));
    let clash = insert(&mut on_b, "o1", json!({})).await;
    assert_eq!(
        clash["code"], "CONFLICT",
        "one id, one record, across nodes: {clash}"
    );
    watcher.expect_silence(Duration::from_millis(300)).await;

    // Writers on both nodes at once: one sequence, every event once, in
    // order, on either node.
    let (mut w1, _) = connect_native(a.addr, "").await;
    let (mut w2, _) = connect_native(b.addr, "").await;
    let writes = async {
        for i in 0..25 {
            let r = insert(&mut w1, &format!("a{i:02}"), json!({})).await;
            assert_eq!(r["type"], "data", "{r}");
        }
    };
    let writes_b = async {
        for i in 0..25 {
            let r = insert(&mut w2, &format!("b{i:02}"), json!({})).await;
            assert_eq!(r["type"], "data", "{r}");
        }
    };
    tokio::join!(writes, writes_b);
    let mut seqs = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let e = watcher.recv().await;
        seqs.push(e["seq"].as_u64().expect("seq"));
        ids.insert(e["data"]["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), 50, "every write announced once");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in seq order: {seqs:?}"
    );
    watcher.expect_silence(Duration::from_millis(300)).await;
    let last = *seqs.last().expect("seq");

    // A client that leaves B resumes on A without a gap.
    drop(watcher);
    on_b.request(
        json!({"type": "update", "resource": "orders", "id": "o1", "data": {"total": 6}}),
        "u",
    )
    .await;
    on_b.request(
        json!({"type": "delete", "resource": "orders", "id": "a00"}),
        "d",
    )
    .await;
    let (mut back, _) = connect_native(a.addr, "").await;
    back.send(json!({"type": "subscribe", "resource": "orders", "since": last, "requestId": "r"}))
        .await;
    let resumed = back.recv().await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    let missed: Vec<(String, String)> = [back.recv().await, back.recv().await]
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or("").to_owned(),
                e["data"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        missed,
        [
            ("update".to_owned(), "o1".to_owned()),
            ("delete".to_owned(), "a00".to_owned())
        ]
    );
    back.expect_silence(Duration::from_millis(300)).await;

    // Pages across nodes, in id order, as on redb.
    let page = back
        .request(
            json!({"type": "list", "resource": "orders", "limit": 3}),
            "l",
        )
        .await;
    let ids: Vec<&str> = page["data"]
        .as_array()
        .expect("page")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["a01", "a02", "a03"], "{page}");
}

#[tokio::test]
async fn a_postgres_restart_is_ridden_out() {
    let mut pg = PgServer::start();
    let url = pg.database();
    let server = start(on(&url, test_config())).await;
    let (mut writer, _) = connect_native(server.addr, "").await;
    let (mut watcher, _) = connect_native(server.addr, "").await;
    watcher
        .request(json!({"type": "subscribe", "resource": "orders"}), "s")
        .await;
    assert_eq!(
        insert(&mut writer, "before", json!({})).await["type"],
        "data"
    );
    assert_eq!(watcher.recv().await["data"]["id"], "before");

    pg.stop();
    let refused = insert(&mut writer, "during", json!({})).await;
    assert_eq!(refused["code"], "UNAVAILABLE", "{refused}");
    let read = writer
        .request(
            json!({"type": "get", "resource": "orders", "id": "before"}),
            "g",
        )
        .await;
    assert_eq!(read["code"], "UNAVAILABLE", "{read}");
    let (status, body) = http_get(server.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("\"store\":{\"kind\":\"postgresql\",\"status\":\"down\"}"),
        "{body}"
    );

    pg.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reply = insert(&mut writer, "after", json!({})).await;
        if reply["type"] == "data" {
            break;
        }
        assert_eq!(reply["code"], "UNAVAILABLE", "{reply}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(watcher.recv().await["data"]["id"], "after", "events resume");
    let list = writer
        .request(json!({"type": "list", "resource": "orders"}), "l")
        .await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["after", "before"],
        "nothing acknowledged lost, nothing refused written"
    );
    assert_eq!(http_get(server.addr, "/readyz").await.0, 200);

    // Another node's writes reach this one again once its listener is back.
    let other = start(on(&url, test_config())).await;
    let (mut elsewhere, _) = connect_native(other.addr, "").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        insert(&mut elsewhere, &format!("remote{n}"), json!({})).await;
        if let Some(e) = watcher.try_recv(Duration::from_millis(500)).await {
            assert!(
                e["data"]["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("remote")),
                "{e}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "notifications did not resume"
        );
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_of_a_node() {
    let pg = PgServer::start_with(true);
    let url = pg.database();
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "[resources.orders]");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_switchboard-cli"));
    let env = [("SWITCHBOARD_STORE__URL", url.as_str())];
    let mut first = ServerProcess::spawn(exe, &config, &env);
    let (mut c, _) = connect_native(first.addr, "").await;
    for i in 0..40 {
        let reply = insert(&mut c, &format!("k{i:02}"), json!({"i": i})).await;
        assert_eq!(reply["type"], "data", "{reply}");
    }
    first.kill9();
    let second = ServerProcess::spawn(exe, &config, &env);
    let (mut c, _) = connect_native(second.addr, "").await;
    let list = c
        .request(
            json!({"type": "list", "resource": "orders", "limit": 1000}),
            "l",
        )
        .await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(40), "{list}");
}

#[tokio::test]
async fn client_strings_never_become_sql() {
    let pg = PgServer::start();
    let url = pg.database();
    let server = start(on(&url, test_config())).await;
    let (mut c, _) = connect_native(server.addr, "").await;
    let evil = "x'); DROP TABLE sb_records; --";
    let r = insert(
        &mut c,
        evil,
        json!({"q\"uote": "'; DELETE FROM sb_changes; --"}),
    )
    .await;
    assert_eq!(r["data"]["id"], evil, "{r}");
    let got = c
        .request(
            json!({"type": "list", "resource": "orders", "filter": {"id": "' OR '1'='1"}}),
            "l",
        )
        .await;
    assert_eq!(got["data"], json!([]), "{got}");
    let db = url.rsplit('/').next().expect("db");
    assert_eq!(pg.sql(db, "SELECT count(*) FROM sb_records"), "1");
    assert_eq!(pg.sql(db, "SELECT count(*) FROM sb_changes"), "1");
}
