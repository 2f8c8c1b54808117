//! rtbdp's endpoint, driven with the seed's JSON messages.

use std::time::Duration;

use integration_tests::*;
use serde_json::{json, Value};
use switchboard::config::ResourceConfig;

async fn setup() -> (switchboard::Server, Client, Client) {
    let mut config = test_config();
    config
        .resources
        .insert("events".into(), ResourceConfig::default());
    let server = start(config).await;
    let (writer, _) = connect_native(server.addr, "").await;
    let rt = connect(server.addr, "/rtbdp").await;
    (server, writer, rt)
}

async fn insert(writer: &mut Client, id: &str, kind: &str, repo: &str, n: i64) {
    let reply = writer
        .request(
            json!({"type": "insert", "resource": "events", "data": {"id": id, "type": kind, "kind": kind, "repo": repo, "n": n}}),
            id,
        )
        .await;
    assert_eq!(reply["type"], "data", "{reply}");
}

#[tokio::test]
async fn subscribe_replay_unsubscribe_with_filters() {
    let (_server, mut writer, mut rt) = setup().await;
    insert(
        &mut writer,
        "12345",
        "PushEvent",
        "rolandbernard/rtbdp-project",
        1,
    )
    .await;
    insert(
        &mut writer,
        "67890",
        "PullRequestEvent",
        "rolandbernard/rtbdp-project",
        2,
    )
    .await;
    insert(&mut writer, "11111", "PushEvent", "other/repo", 3).await;

    // subscribe, exactly as in the seed.
    rt.send(json!({"subscribe": [{"id": 0, "table": "events", "filters": [{"kind": {"opt": ["PushEvent"]}}]}]}))
        .await;
    // replay, exactly as in the seed: columnar rows, then `replayed`.
    rt.send(json!({"replay": [{"id": 0, "table": "events", "filters": [{"kind": {"opt": ["PushEvent"]}}], "limit": 100}]}))
        .await;
    let rows = rt.recv().await;
    assert_eq!(rows["table"], "events");
    assert_eq!(rows["rows"]["id"], json!(["11111", "12345"]));
    assert_eq!(rows["rows"]["kind"], json!(["PushEvent", "PushEvent"]));
    assert_eq!(rows["rows"]["seq_num"], json!([3, 1]), "each row's own seq");
    assert_eq!(rt.recv().await, json!({"replayed": 0}));

    // Live rows: only PushEvents, one `row` each, with seq_num.
    insert(&mut writer, "a", "ForkEvent", "x/y", 4).await;
    insert(&mut writer, "b", "PushEvent", "x/y", 5).await;
    let row = rt.recv().await;
    assert_eq!(row["table"], "events");
    assert_eq!(row["row"]["id"], "b");
    assert_eq!(row["row"]["seq_num"], 5);

    // One frame, all three, in order: subscribe 1 (OR-of-AND filter),
    // replay 2, unsubscribe 0.
    rt.send(json!({
        "unsubscribe": [0],
        "replay": [{"id": 2, "table": "events", "filters": [{"repo": {"substr": "rtbdp"}, "n": {"start": 1, "end": 2, "inclusive": false}}], "limit": 10}],
        "subscribe": [{"id": 1, "table": "events", "filters": [{"n": {"start": 100}}, {"kind": {"opt": ["ForkEvent"]}}]}]
    }))
    .await;
    let single = rt.recv().await;
    assert_eq!(
        single["row"]["id"], "12345",
        "one row comes as `row`: {single}"
    );
    assert_eq!(rt.recv().await, json!({"replayed": 2}));
    insert(&mut writer, "c", "PushEvent", "x/y", 6).await; // no longer matches anything
    insert(&mut writer, "d", "ForkEvent", "x/y", 7).await; // subscription 1, second row
    insert(&mut writer, "e", "PushEvent", "x/y", 150).await; // subscription 1, first row
    assert_eq!(rt.recv().await["row"]["id"], "d");
    assert_eq!(rt.recv().await["row"]["id"], "e");
    rt.send(json!({"unsubscribe": [1]})).await;
    insert(&mut writer, "f", "ForkEvent", "x/y", 8).await;
    rt.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn two_subscriptions_on_one_table_end_separately() {
    let (_server, mut writer, mut rt) = setup().await;
    rt.send(json!({"subscribe": [
        {"id": "push", "table": "events", "filters": [{"kind": "PushEvent"}]},
        {"id": "fork", "table": "events", "filters": [{"kind": "ForkEvent"}]}
    ]}))
    .await;
    insert(&mut writer, "1", "PushEvent", "r", 1).await;
    insert(&mut writer, "2", "ForkEvent", "r", 2).await;
    assert_eq!(rt.recv().await["row"]["id"], "1");
    assert_eq!(rt.recv().await["row"]["id"], "2");
    rt.send(json!({"unsubscribe": ["push"]})).await;
    insert(&mut writer, "3", "PushEvent", "r", 3).await;
    insert(&mut writer, "4", "ForkEvent", "r", 4).await;
    assert_eq!(rt.recv().await["row"]["id"], "4");
    rt.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn bad_frames_get_errors_with_ids() {
    let (_server, _writer, mut rt) = setup().await;
    rt.send(json!({"subscribe": [{"id": 9, "table": "nope"}]}))
        .await;
    let e: Value = rt.recv().await;
    assert_eq!(
        (e["id"].as_i64(), e["error"]["code"].as_str()),
        (Some(9), Some("RESOURCE_NOT_FOUND"))
    );
    rt.send(json!({"replay": [{"id": 3}]})).await;
    assert_eq!(rt.recv().await["error"]["code"], "BAD_REQUEST");
    rt.send(json!({"unsubscribe": [42]})).await;
    assert_eq!(rt.recv().await["error"]["code"], "NOT_FOUND");
    rt.send(json!({"subscribe": [{"id": 1, "table": "events", "filters": [1]}]}))
        .await;
    assert_eq!(rt.recv().await["error"]["code"], "BAD_REQUEST");
    rt.send(json!({"frobnicate": []})).await;
    assert_eq!(rt.recv().await["error"]["code"], "UNKNOWN_MESSAGE_TYPE");
    rt.send_text("nope").await;
    assert_eq!(rt.recv().await["error"]["code"], "INVALID_JSON");
}
