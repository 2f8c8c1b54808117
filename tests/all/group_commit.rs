//! Writes that arrive together share a commit (group commit), on redb and
//! on PostgreSQL (this suite runs on both): each still gets its own
//! sequence number, its own reply and its own event, and one refused by
//! its own rules fails alone while the others in its batch go through.

use std::collections::BTreeSet;

use integration_tests::*;
use serde_json::json;

use super::resources::resource_config;

const WRITERS: usize = 16;
const EACH: usize = 10;

#[tokio::test]
async fn concurrent_writes_keep_their_own_seq_reply_and_event() {
    let server = start(resource_config()).await;
    let addr = server.addr;
    let (mut watcher, _) = connect_native(addr, "").await;
    watcher
        .request(json!({"type": "subscribe", "resource": "messages"}), "s")
        .await;
    let (mut c, _) = connect_native(addr, "").await;
    let taken = c
        .request(
            json!({"type": "insert", "resource": "messages", "data": {"id": "taken"}}),
            "t",
        )
        .await;
    assert_eq!(taken["type"], "data", "{taken}");
    let first = watcher.recv_until(|f| f["type"] == "event").await;
    let first_seq = first["seq"].as_u64().expect("seq");

    // Every writer sends its inserts back to back (pipelined: all in
    // flight at once), and one of each writer's inserts reuses the taken
    // id, so refused writes share batches with accepted ones.
    let writers = (0..WRITERS).map(|w| {
        tokio::spawn(async move {
            let (mut c, _) = connect_native(addr, "").await;
            for n in 0..EACH {
                let id = if n == 3 { "taken".to_owned() } else { format!("w{w}-{n}") };
                c.send(json!({"type": "insert", "resource": "messages", "requestId": format!("{n}"), "data": {"id": id, "w": w, "n": n}}))
                    .await;
            }
            let mut replies = Vec::new();
            while replies.len() < EACH {
                let reply = c.recv().await;
                if reply.get("requestId").is_some() {
                    replies.push(reply);
                }
            }
            replies
        })
    });
    let mut accepted = BTreeSet::new();
    for (w, writer) in futures_util::future::join_all(writers)
        .await
        .into_iter()
        .enumerate()
    {
        for reply in writer.expect("writer") {
            let n: usize = reply["requestId"].as_str().expect("id").parse().expect("n");
            if n == 3 {
                assert_eq!(reply["code"], "CONFLICT", "{reply}");
            } else {
                assert_eq!(reply["type"], "data", "{reply}");
                assert_eq!(reply["data"]["id"], format!("w{w}-{n}"), "its own reply");
                accepted.insert(format!("w{w}-{n}"));
            }
        }
    }
    assert_eq!(accepted.len(), WRITERS * (EACH - 1));

    // One event per accepted write, each with a seq of its own.
    let mut seqs = Vec::new();
    let mut ids = BTreeSet::new();
    while seqs.len() < accepted.len() {
        let event = watcher.recv_until(|f| f["type"] == "event").await;
        seqs.push(event["seq"].as_u64().expect("seq"));
        ids.insert(event["data"]["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(
        ids, accepted,
        "an event for each accepted write, none for refused ones"
    );
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "no seq twice: {seqs:?}");
    assert!(seqs.iter().all(|&s| s > first_seq), "{seqs:?}");
    watcher
        .expect_silence(std::time::Duration::from_millis(200))
        .await;

    let listed = c
        .request(
            json!({"type": "list", "resource": "messages", "limit": 1000}),
            "l",
        )
        .await;
    let rows = listed["data"].as_array().expect("rows");
    assert_eq!(
        rows.len(),
        accepted.len() + 1,
        "the accepted writes and the first"
    );
    let taken = c
        .request(
            json!({"type": "get", "resource": "messages", "id": "taken"}),
            "g",
        )
        .await;
    assert_eq!(
        taken["data"],
        json!({"id": "taken"}),
        "the refused writes changed nothing"
    );
}

/// A write the database itself would reject (an id with a NUL, which
/// PostgreSQL's text cannot hold) must not fail the other writes it would
/// have shared a commit with: it is refused before it reaches a batch,
/// while another client's writes, in flight at the same moment, all land.
#[tokio::test]
async fn a_write_the_database_would_reject_fails_alone() {
    let server = start(resource_config()).await;
    let addr = server.addr;
    const N: usize = 40;
    let (mut victim, _) = connect_native(addr, "").await;
    let (mut attacker, _) = connect_native(addr, "").await;
    for n in 0..N {
        attacker
            .send(json!({"type": "insert", "resource": "messages", "requestId": format!("a{n}"), "data": {"id": format!("x\u{0}{n}")}}))
            .await;
        // A NUL inside a value is fine: JSON escapes it.
        victim
            .send(json!({"type": "insert", "resource": "messages", "requestId": format!("v{n}"), "data": {"id": format!("v{n}"), "text": "a\u{0}b"}}))
            .await;
    }
    for _ in 0..N {
        let landed = victim.recv().await;
        assert_eq!(landed["type"], "data", "{landed}");
        let refused = attacker.recv().await;
        assert_eq!(refused["code"], "BAD_REQUEST", "{refused}");
    }
    let listed = victim
        .request(
            json!({"type": "list", "resource": "messages", "limit": 1000}),
            "l",
        )
        .await;
    assert_eq!(listed["data"].as_array().expect("rows").len(), N);
    let got = attacker
        .request(
            json!({"type": "get", "resource": "messages", "id": "x\u{0}1"}),
            "g",
        )
        .await;
    assert_eq!(got["code"], "NOT_FOUND", "{got}");
}
