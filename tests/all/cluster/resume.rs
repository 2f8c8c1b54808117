//! Channel history in Redis Streams: offsets are the cluster's, so a
//! client that leaves one node resumes on another without a gap.

use std::path::Path;
use std::time::Duration;

use integration_tests::process::{write_config, ServerProcess};
use integration_tests::redis::RedisServer;
use integration_tests::*;
use serde_json::{json, Value};

use super::{nodes, settle_all};

async fn publish(c: &mut Client, n: u64) -> Value {
    let reply = c
        .request(
            json!({"type": "publish", "channel": "hist:room", "message": {"n": n}}),
            &format!("p{n}"),
        )
        .await;
    assert_eq!(reply["type"], "published", "{reply}");
    reply
}

#[tokio::test]
async fn a_client_resumes_on_another_node_without_a_gap() {
    let redis = RedisServer::start();
    let servers = nodes(&redis, 3).await;
    let (a, b, c) = (servers[0].addr, servers[1].addr, servers[2].addr);
    let (mut reader, _) = connect_native(a, "").await;
    let subscribed = reader
        .request(json!({"type": "subscribe", "channel": "hist:room"}), "s")
        .await;
    let epoch = subscribed["epoch"].as_str().expect("epoch").to_owned();
    settle_all(&servers).await;

    // Publishers on two nodes share one sequence.
    let (mut on_b, _) = connect_native(b, "").await;
    let (mut on_c, _) = connect_native(c, "").await;
    let mut offsets = Vec::new();
    for n in 1..=4 {
        let publisher = if n % 2 == 0 { &mut on_b } else { &mut on_c };
        let published = publish(publisher, n).await;
        assert_eq!(published["epoch"], epoch.as_str());
        offsets.push(published["offset"].as_u64().expect("offset"));
    }
    assert_eq!(offsets, [1, 2, 3, 4]);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(reader.recv().await["offset"].as_u64().expect("offset"));
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2, 3, 4]);
    drop(reader);

    for n in 5..=7 {
        publish(&mut on_b, n).await;
    }
    // Back on another node, from offset 4.
    let (mut back, _) = connect_native(c, "").await;
    back.send(
        json!({"type": "subscribe", "channel": "hist:room", "requestId": "r",
        "since": {"offset": 4, "epoch": epoch}}),
    )
    .await;
    let resumed = back.recv().await;
    assert_eq!(
        (resumed["recovered"].as_bool(), resumed["offset"].as_u64()),
        (Some(true), Some(7)),
        "{resumed}"
    );
    for n in 5..=7 {
        let got = back.recv().await;
        assert_eq!(
            (got["offset"].as_u64(), got["data"]["n"].as_u64()),
            (Some(n), Some(n)),
            "{got}"
        );
    }
    settle_all(&servers).await;
    publish(&mut on_b, 8).await;
    assert_eq!(back.recv().await["offset"], 8);
    back.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_killed_nodes_clients_resume_on_a_survivor() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(
        dir.path(),
        &format!(
            "[cluster]\nredis_url = \"{}\"\n[channels.\"hist:*\"]\nhistory_size = 100\n",
            redis.url()
        ),
    );
    let exe = Path::new(env!("CARGO_BIN_EXE_switchboard-cli"));
    let mut doomed = ServerProcess::spawn(exe, &config, &[]);
    let survivor = start(cluster_config(&redis)).await;

    let (mut client, _) = connect_native(doomed.addr, "").await;
    let subscribed = client
        .request(json!({"type": "subscribe", "channel": "hist:room"}), "s")
        .await;
    let epoch = subscribed["epoch"].as_str().expect("epoch").to_owned();
    let (mut publisher, _) = connect_native(survivor.addr, "").await;
    // Wait until the doomed node hears the survivor's publishes.
    let mut last = 0;
    for n in 1..=50 {
        last = publish(&mut publisher, n).await["offset"]
            .as_u64()
            .expect("offset");
        if client.try_recv(Duration::from_millis(100)).await.is_some() {
            break;
        }
    }
    doomed.kill9();
    drop(client);
    for n in 100..=102 {
        publish(&mut publisher, n).await;
    }

    let (mut back, _) = connect_native(survivor.addr, "").await;
    back.send(
        json!({"type": "subscribe", "channel": "hist:room", "requestId": "r",
        "since": {"offset": last, "epoch": epoch}}),
    )
    .await;
    assert_eq!(back.recv().await["recovered"], true);
    for n in 100..=102 {
        assert_eq!(back.recv().await["data"]["n"], n);
    }
}
