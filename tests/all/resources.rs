//! Resources on redb: CRUD with s3db.js shapes and codes, role lists,
//! protected fields, change events with filters and event lists, replay,
//! resumable subscriptions.

use std::time::Duration;

use integration_tests::*;
use serde_json::{json, Value};
use switchboard::config::ResourceConfig;

fn resource(auth: &[&str], protected: &[&str], events: &[&str]) -> ResourceConfig {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    ResourceConfig {
        auth: s(auth),
        protected: s(protected),
        events: s(events),
    }
}

pub fn resource_config() -> switchboard::Config {
    let mut config = test_config();
    config.store.max_record_bytes = 4096;
    config
        .resources
        .insert("messages".into(), ResourceConfig::default());
    config.resources.insert(
        "users".into(),
        resource(&["admin", "user"], &["password", "meta.secret"], &[]),
    );
    config
        .resources
        .insert("notifications".into(), resource(&[], &[], &["insert"]));
    config
        .resources
        .insert("vault".into(), resource(&["admin"], &[], &[]));
    config
}

#[tokio::test]
async fn crud_with_s3db_shapes_and_error_codes() {
    let server = start(resource_config()).await;
    let (mut c, _) = connect_native(server.addr, "").await;

    let inserted = c
        .request(
            json!({"type": "insert", "resource": "messages", "data": {"content": "Hello!", "channel": "general"}}),
            "6",
        )
        .await;
    assert_eq!(inserted["type"], "data", "{inserted}");
    assert_eq!(inserted["resource"], "messages");
    let id = inserted["data"]["id"].as_str().expect("id made").to_owned();

    let got = c
        .request(
            json!({"type": "get", "resource": "messages", "id": id}),
            "4",
        )
        .await;
    assert_eq!(got["data"]["content"], "Hello!");

    let updated = c
        .request(
            json!({"type": "update", "resource": "messages", "id": id, "data": {"content": "Updated!"}}),
            "7",
        )
        .await;
    assert_eq!(
        updated["data"],
        json!({"id": id, "content": "Updated!", "channel": "general"})
    );

    let deleted = c
        .request(
            json!({"type": "delete", "resource": "messages", "id": id}),
            "8",
        )
        .await;
    assert_eq!(deleted["data"], json!({"id": id}));
    let missing = c
        .request(
            json!({"type": "get", "resource": "messages", "id": id}),
            "9",
        )
        .await;
    assert_eq!(
        (missing["code"].as_str(), missing["message"].as_str()),
        (Some("NOT_FOUND"), Some("Record not found"))
    );

    let codes = [
        (
            json!({"type": "get", "resource": "nope", "id": "1"}),
            "RESOURCE_NOT_FOUND",
        ),
        (
            json!({"type": "update", "resource": "messages", "id": "ghost", "data": {}}),
            "NOT_FOUND",
        ),
        (
            json!({"type": "delete", "resource": "messages", "id": "ghost"}),
            "NOT_FOUND",
        ),
        (
            json!({"type": "insert", "resource": "messages", "data": [1, 2]}),
            "BAD_REQUEST",
        ),
        (
            json!({"type": "insert", "resource": "messages", "data": {"id": 42}}),
            "BAD_REQUEST",
        ),
        (
            json!({"type": "insert", "resource": "messages", "data": {"big": "x".repeat(5000)}}),
            "PAYLOAD_TOO_LARGE",
        ),
        (
            json!({"type": "update", "resource": "messages", "id": "a", "data": "str"}),
            "BAD_REQUEST",
        ),
        (
            json!({"type": "get", "resource": "vault", "id": "1"}),
            "FORBIDDEN",
        ),
        (
            json!({"type": "list", "resource": "messages", "filter": "x"}),
            "BAD_REQUEST",
        ),
    ];
    for (i, (frame, code)) in codes.into_iter().enumerate() {
        let reply = c.request(frame.clone(), &format!("e{i}")).await;
        assert_eq!(reply["code"], code, "{frame} → {reply}");
    }
    c.request(
        json!({"type": "insert", "resource": "messages", "data": {"id": "dup"}}),
        "d1",
    )
    .await;
    let dup = c
        .request(
            json!({"type": "insert", "resource": "messages", "data": {"id": "dup"}}),
            "d2",
        )
        .await;
    assert_eq!(dup["code"], "CONFLICT");
    let bad_changes_nothing = c
        .request(
            json!({"type": "get", "resource": "messages", "id": "dup"}),
            "d3",
        )
        .await;
    assert_eq!(bad_changes_nothing["data"], json!({"id": "dup"}));
}

#[tokio::test]
async fn list_filters_and_cursor_pagination() {
    let server = start(resource_config()).await;
    let (mut c, _) = connect_native(server.addr, "").await;
    for i in 0..7 {
        let ch = if i % 2 == 0 { "general" } else { "random" };
        c.request(
            json!({"type": "insert", "resource": "messages", "data": {"id": format!("m{i}"), "channel": ch}}),
            &format!("i{i}"),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    for page in 0..5 {
        let reply = c
            .request(
                json!({"type": "list", "resource": "messages", "filter": {"channel": "general"}, "limit": 2, "cursor": cursor}),
                &format!("l{page}"),
            )
            .await;
        for row in reply["data"].as_array().expect("rows") {
            seen.push(row["id"].as_str().expect("id").to_owned());
        }
        cursor = reply["cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen, ["m0", "m2", "m4", "m6"]);
}

#[tokio::test]
async fn roles_and_protected_fields_everywhere() {
    let server = start(resource_config()).await;
    let user = token("u1", Some("user"), json!({}));
    let guest = token("g1", Some("guest"), json!({}));
    let (mut u, _) = connect_native(server.addr, &format!("?token={user}")).await;
    let (mut g, _) = connect_native(server.addr, &format!("?token={guest}")).await;
    let (mut anon, _) = connect_native(server.addr, "").await;
    u.request(json!({"type": "subscribe", "resource": "users"}), "s")
        .await;

    for client in [&mut g, &mut anon] {
        let denied = client
            .request(json!({"type": "list", "resource": "users"}), "x")
            .await;
        assert_eq!(denied["code"], "FORBIDDEN");
        let denied = client
            .request(json!({"type": "subscribe", "resource": "users"}), "y")
            .await;
        assert_eq!(denied["code"], "FORBIDDEN");
    }
    let record = json!({"id": "john", "name": "John", "password": "hunter2", "meta": {"secret": 1, "public": 2}});
    let inserted = u
        .request(
            json!({"type": "insert", "resource": "users", "data": record}),
            "i",
        )
        .await;
    let expected = json!({"id": "john", "name": "John", "meta": {"public": 2}});
    assert_eq!(inserted["data"], expected);
    let event = u.recv_until(|v| v["type"] == "event").await;
    assert_eq!(
        event["data"], expected,
        "events never carry protected fields"
    );
    let got = u
        .request(
            json!({"type": "get", "resource": "users", "id": "john"}),
            "g",
        )
        .await;
    assert_eq!(got["data"], expected);
    let listed = u
        .request(json!({"type": "list", "resource": "users"}), "l")
        .await;
    assert_eq!(listed["data"], json!([expected]));
}

#[tokio::test]
async fn change_events_honour_filter_and_events() {
    let server = start(resource_config()).await;
    let (mut writer, _) = connect_native(server.addr, "").await;
    let (mut all, _) = connect_native(server.addr, "").await;
    let (mut general_inserts, _) = connect_native(server.addr, "").await;
    let (mut notes, _) = connect_native(server.addr, "").await;

    all.request(json!({"type": "subscribe", "resource": "messages"}), "a")
        .await;
    let sub = general_inserts
        .request(
            json!({"type": "subscribe", "requestId": "2", "resource": "messages", "filter": {"channel": "general"}, "events": ["insert", "update"]}),
            "2",
        )
        .await;
    assert_eq!(sub["type"], "subscribed");
    assert_eq!(sub["resource"], "messages");
    assert_eq!(sub["filter"], json!({"channel": "general"}));
    assert_eq!(sub["events"], json!(["insert", "update"]));
    let sub = notes
        .request(
            json!({"type": "subscribe", "resource": "notifications"}),
            "n",
        )
        .await;
    assert_eq!(
        sub["events"],
        json!(["insert"]),
        "the resource broadcasts inserts only"
    );

    for (i, ch) in ["random", "general"].iter().enumerate() {
        writer
            .request(
                json!({"type": "insert", "resource": "messages", "data": {"id": format!("m{i}"), "channel": ch}}),
                &format!("w{i}"),
            )
            .await;
    }
    writer
        .request(
            json!({"type": "update", "resource": "messages", "id": "m1", "data": {"n": 1}}),
            "u",
        )
        .await;
    writer
        .request(
            json!({"type": "delete", "resource": "messages", "id": "m1"}),
            "d",
        )
        .await;

    let mut seqs = Vec::new();
    for op in ["insert", "insert", "update", "delete"] {
        let e = all.recv().await;
        assert_eq!(
            (e["type"].as_str(), e["event"].as_str()),
            (Some("event"), Some(op)),
            "{e}"
        );
        assert_eq!(e["resource"], "messages");
        seqs.push(e["seq"].as_u64().expect("seq"));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "increasing: {seqs:?}");

    let e = general_inserts.recv().await;
    assert_eq!(
        (e["event"].as_str(), e["data"]["id"].as_str()),
        (Some("insert"), Some("m1"))
    );
    let e = general_inserts.recv().await;
    assert_eq!(e["event"], "update");
    general_inserts
        .expect_silence(Duration::from_millis(200))
        .await;

    writer
        .request(
            json!({"type": "insert", "resource": "notifications", "data": {"id": "n1"}}),
            "n1",
        )
        .await;
    writer
        .request(
            json!({"type": "update", "resource": "notifications", "id": "n1", "data": {"x": 1}}),
            "n2",
        )
        .await;
    assert_eq!(notes.recv().await["event"], "insert");
    notes.expect_silence(Duration::from_millis(200)).await;

    // s3db.js: a publish to a channel named like a resource reaches its subscribers.
    let published = writer
        .request(
            json!({"type": "publish", "channel": "notifications", "message": {"hi": 1}}),
            "p",
        )
        .await;
    assert_eq!(published["delivered"], 1);
    assert_eq!(notes.recv().await["type"], "message");
}

#[tokio::test]
async fn replay_and_resume_after_reconnect() {
    let server = start(resource_config()).await;
    let (mut writer, _) = connect_native(server.addr, "").await;
    for i in 0..3 {
        writer
            .request(
                json!({"type": "insert", "resource": "messages", "data": {"id": format!("a{i}"), "k": i % 2}}),
                &format!("w{i}"),
            )
            .await;
    }
    let (mut reader, _) = connect_native(server.addr, "").await;
    let replay = reader
        .request(
            json!({"type": "replay", "resource": "messages", "filter": {"k": 0}, "limit": 10}),
            "r",
        )
        .await;
    assert_eq!(replay["type"], "replayed");
    assert_eq!(replay["data"].as_array().map(Vec::len), Some(2));
    let seq = replay["seq"].as_u64().expect("seq");
    assert_eq!(seq, 3);

    reader
        .request(
            json!({"type": "subscribe", "resource": "messages", "since": seq}),
            "s",
        )
        .await;
    writer
        .request(
            json!({"type": "insert", "resource": "messages", "data": {"id": "b0"}}),
            "x",
        )
        .await;
    let seen = reader.recv().await["seq"].as_u64().expect("seq");
    drop(reader);

    // While it is away: three writes.
    writer
        .request(
            json!({"type": "update", "resource": "messages", "id": "a0", "data": {"v": 2}}),
            "y1",
        )
        .await;
    writer
        .request(
            json!({"type": "delete", "resource": "messages", "id": "a1"}),
            "y2",
        )
        .await;
    writer
        .request(
            json!({"type": "insert", "resource": "messages", "data": {"id": "b1"}}),
            "y3",
        )
        .await;

    let (mut back, _) = connect_native(server.addr, "").await;
    back.send(
        json!({"type": "subscribe", "resource": "messages", "since": seen, "requestId": "resume"}),
    )
    .await;
    let reply = back.recv().await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    assert_eq!(reply["recovered"], true);
    // A new write races the replay; it must come after the missed ones.
    writer
        .request(
            json!({"type": "insert", "resource": "messages", "data": {"id": "b2"}}),
            "z",
        )
        .await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = back.recv().await;
        got.push((
            e["event"].as_str().unwrap_or("").to_owned(),
            e["seq"].as_u64().unwrap_or(0),
        ));
    }
    let ops: Vec<&str> = got.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(ops, ["update", "delete", "insert", "insert"]);
    let seqs: Vec<u64> = got.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs,
        [seen + 1, seen + 2, seen + 3, seen + 4],
        "in order, no gap, no duplicate"
    );
    back.expect_silence(Duration::from_millis(200)).await;
}
