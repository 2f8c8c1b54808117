//! Channel history on one node: `[channels."pattern"]` keeps messages
//! numbered by `offset` within an `epoch`; `subscribe` with `since` replays
//! what was missed, in order, without duplicates, before anything new.

use std::time::Duration;

use integration_tests::*;
use serde_json::{json, Value};

async fn publish(c: &mut Client, channel: &str, n: u64) -> Value {
    let reply = c
        .request(
            json!({"type": "publish", "channel": channel, "message": {"n": n}}),
            &format!("p{n}"),
        )
        .await;
    assert_eq!(reply["type"], "published", "{reply}");
    reply
}

#[tokio::test]
async fn a_resuming_subscriber_gets_what_it_missed_then_new_messages() {
    let mut config = test_config();
    keep_history(&mut config, "chat:*", 100);
    let server = start(config).await;
    let (mut publisher, _) = connect_native(server.addr, "").await;
    let (mut sub, _) = connect_native(server.addr, "").await;

    let subscribed = sub
        .request(json!({"type": "subscribe", "channel": "chat:room"}), "s")
        .await;
    assert_eq!(subscribed["offset"], 0, "{subscribed}");
    let epoch = subscribed["epoch"].as_str().expect("epoch").to_owned();
    for n in 1..=3 {
        let published = publish(&mut publisher, "chat:room", n).await;
        assert_eq!(published["offset"], n, "{published}");
        assert_eq!(published["epoch"], epoch.as_str());
        let got = sub.recv().await;
        assert_eq!(
            (got["data"]["n"].as_u64(), got["offset"].as_u64()),
            (Some(n), Some(n))
        );
    }
    drop(sub);
    for n in 4..=6 {
        publish(&mut publisher, "chat:room", n).await;
    }

    let (mut back, _) = connect_native(server.addr, "").await;
    back.send(
        json!({"type": "subscribe", "channel": "chat:room", "requestId": "r",
        "since": {"offset": 3, "epoch": epoch}}),
    )
    .await;
    let subscribed = back.recv().await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    assert_eq!(
        (
            subscribed["recovered"].as_bool(),
            subscribed["offset"].as_u64()
        ),
        (Some(true), Some(6))
    );
    for n in 4..=6 {
        let got = back.recv().await;
        assert_eq!(
            (got["type"].as_str(), got["offset"].as_u64()),
            (Some("message"), Some(n)),
            "{got}"
        );
    }
    publish(&mut publisher, "chat:room", 7).await;
    assert_eq!(back.recv().await["offset"], 7);
    back.expect_silence(Duration::from_millis(200)).await;

    // Channels without options keep nothing, and say so to a resuming client.
    let plain = back
        .request(json!({"type": "subscribe", "channel": "plain", "since": {"offset": 1, "epoch": epoch}}), "p")
        .await;
    assert_eq!(plain["recovered"], false, "{plain}");
    let published = publish(&mut publisher, "plain", 1).await;
    assert!(published.get("offset").is_none(), "{published}");
}

#[tokio::test]
async fn resuming_past_what_is_kept_or_from_another_epoch_is_not_recovered() {
    let mut config = test_config();
    keep_history(&mut config, "short", 2);
    let server = start(config).await;
    let (mut publisher, _) = connect_native(server.addr, "").await;
    let mut epoch = String::new();
    for n in 1..=5 {
        epoch = publish(&mut publisher, "short", n).await["epoch"]
            .as_str()
            .expect("epoch")
            .to_owned();
    }
    let (mut c, _) = connect_native(server.addr, "").await;
    c.send(
        json!({"type": "subscribe", "channel": "short", "requestId": "a",
        "since": {"offset": 1, "epoch": epoch}}),
    )
    .await;
    let subscribed = c.recv().await;
    assert_eq!(
        subscribed["recovered"], false,
        "offsets 2 and 3 were trimmed: {subscribed}"
    );
    let kept: Vec<u64> = [c.recv().await, c.recv().await]
        .iter()
        .filter_map(|m| m["offset"].as_u64())
        .collect();
    assert_eq!(kept, [4, 5], "what is kept is still replayed");

    let other = c
        .request(json!({"type": "unsubscribe", "channel": "short"}), "u")
        .await;
    assert_eq!(other["type"], "unsubscribed");
    let stale = c
        .request(
            json!({"type": "subscribe", "channel": "short",
            "since": {"offset": 4, "epoch": "an-old-epoch"}}),
            "b",
        )
        .await;
    assert_eq!(
        (stale["recovered"].as_bool(), stale["offset"].as_u64()),
        (Some(false), Some(5))
    );
    c.expect_silence(Duration::from_millis(200)).await;

    for bad in [
        json!("x"),
        json!({"offset": -1, "epoch": "e"}),
        json!({"offset": 1}),
    ] {
        let refused = c
            .request(
                json!({"type": "subscribe", "channel": "short", "since": bad}),
                "bad",
            )
            .await;
        assert_eq!(refused["code"], "BAD_REQUEST", "{refused}");
    }
}

#[tokio::test]
async fn a_replay_honours_the_subscribers_filter_and_daptin_sees_offsets() {
    let mut config = test_config();
    keep_history(&mut config, "*", 10);
    let server = start(config).await;
    let (mut publisher, _) = connect_native(server.addr, "").await;
    let mut epoch = String::new();
    for (n, kind) in [(1, "a"), (2, "b"), (3, "a")] {
        let reply = publisher
            .request(
                json!({"type": "publish", "channel": "feed", "message": {"n": n, "kind": kind}}),
                "p",
            )
            .await;
        epoch = reply["epoch"].as_str().expect("epoch").to_owned();
    }
    let (mut c, _) = connect_native(server.addr, "").await;
    c.send(
        json!({"type": "subscribe", "channel": "feed", "filter": {"kind": "a"}, "requestId": "s",
        "since": {"offset": 0, "epoch": epoch}}),
    )
    .await;
    assert_eq!(c.recv().await["recovered"], true);
    assert_eq!(c.recv().await["data"]["n"], 1);
    assert_eq!(
        c.recv().await["data"]["n"],
        3,
        "kind b is filtered from the replay too"
    );
    c.expect_silence(Duration::from_millis(200)).await;

    let mut daptin = connect(server.addr, "/live").await;
    daptin.recv().await;
    daptin
        .send(json!({"method": "subscribe", "attributes": {"topicName": "feed"}}))
        .await;
    daptin.recv().await;
    publisher
        .request(
            json!({"type": "publish", "channel": "feed", "message": {"n": 4}}),
            "p4",
        )
        .await;
    let d = daptin.recv().await;
    assert_eq!(
        (d["event"].as_str(), d["offset"].as_u64()),
        (Some("new-message"), Some(4)),
        "{d}"
    );
}
