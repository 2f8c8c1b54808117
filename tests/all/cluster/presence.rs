//! Presence across nodes: a join on one node is listed on the others and
//! announced everywhere; a node killed with SIGKILL has its members
//! removed from every list, with leave events, within the node timeout.

use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::process::{write_config, ServerProcess};
use integration_tests::redis::RedisServer;
use integration_tests::*;
use serde_json::{json, Value};

use super::{nodes, settle_all};

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["info"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn members_of_every_node_are_listed_and_announced_everywhere() {
    let redis = RedisServer::start();
    let servers = nodes(&redis, 3).await;
    let (a, b, c) = (servers[0].addr, servers[1].addr, servers[2].addr);
    let w = token("watcher", None, json!({}));
    let (mut watcher, _) = connect_native(c, &format!("?token={w}")).await;
    watcher
        .request(json!({"type": "subscribe", "channel": "lobby"}), "s")
        .await;
    settle_all(&servers).await;

    let (mut alice, hello) = connect_native(a, "").await;
    let alice_id = hello["clientId"].clone();
    let joined = alice
        .request(
            json!({"type": "join", "channel": "lobby", "info": {"name": "Alice"}}),
            "j",
        )
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let event = watcher.recv().await;
    assert_eq!(
        (event["type"].as_str(), event["event"].as_str()),
        (Some("presence"), Some("join"))
    );
    assert_eq!(
        event["member"]["clientId"], alice_id,
        "an authenticated watcher sees ids"
    );

    let (mut bob, _) = connect_native(b, "").await;
    bob.request(
        json!({"type": "join", "channel": "lobby", "info": {"name": "Bob"}}),
        "j",
    )
    .await;
    assert_eq!(watcher.recv().await["member"]["info"]["name"], "Bob");
    // Alice (on A) hears Bob's join (on B): members are told, too.
    let heard = alice.recv().await;
    assert_eq!(
        (
            heard["event"].as_str(),
            heard["member"]["info"]["name"].as_str()
        ),
        (Some("join"), Some("Bob"))
    );
    settle_all(&servers).await;

    for (who, client) in [("watcher on C", &mut watcher), ("Bob on B", &mut bob)] {
        let list = client
            .request(json!({"type": "presence", "channel": "lobby"}), "l")
            .await;
        assert_eq!(names(&list), ["Alice", "Bob"], "{who}: {list}");
    }

    drop(alice);
    let left = watcher.recv().await;
    assert_eq!(
        (left["event"].as_str(), left["member"]["clientId"].clone()),
        (Some("leave"), alice_id)
    );
    assert_eq!(bob.recv().await["event"], "leave");
    settle_all(&servers).await;
    let list = watcher
        .request(json!({"type": "presence", "channel": "lobby"}), "l2")
        .await;
    assert_eq!(names(&list), ["Bob"]);
}

#[tokio::test]
async fn a_killed_nodes_members_leave_every_list_within_the_timeout() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    // The defaults: beats every 2 s, a node is dead 8 s after its last.
    let config = write_config(
        dir.path(),
        &format!("[cluster]\nredis_url = \"{}\"\n", redis.url()),
    );
    let exe = Path::new(env!("CARGO_BIN_EXE_switchboard-cli"));
    let mut doomed = ServerProcess::spawn(exe, &config, &[]);
    let survivor = start(cluster_config(&redis)).await;

    let w = token("watcher", None, json!({}));
    let (mut watcher, _) = connect_native(survivor.addr, &format!("?token={w}")).await;
    watcher
        .request(json!({"type": "subscribe", "channel": "room"}), "s")
        .await;
    // The survivor hears the room once its Redis subscription holds, and
    // the doomed process publishes once its own link is up.
    settle(&[&survivor]).await;
    let doomed_addr = doomed.addr;
    eventually("the doomed node is ready", || async move {
        http_get(doomed_addr, "/readyz").await.0 == 200
    })
    .await;
    let bob = token("bob", None, json!({}));
    let (mut member, _) = connect_native(doomed.addr, &format!("?token={bob}")).await;
    member
        .request(
            json!({"type": "join", "channel": "room", "info": {"name": "Doomed"}}),
            "j",
        )
        .await;
    assert_eq!(watcher.recv().await["event"], "join");
    eventually("the doomed member is listed", || async {
        redis.cli(&["HLEN", "sb:p:{room}"]) == "1"
    })
    .await;

    let killed = Instant::now();
    doomed.kill9();
    let deadline = Duration::from_secs(15);
    let left = tokio::time::timeout(deadline, watcher.recv())
        .await
        .expect("a leave within 15 s of the kill");
    assert_eq!(
        (
            left["event"].as_str(),
            left["member"]["info"]["name"].as_str()
        ),
        (Some("leave"), Some("Doomed")),
        "{left}"
    );
    let took = killed.elapsed();
    let list = watcher
        .request(json!({"type": "presence", "channel": "room"}), "l")
        .await;
    assert_eq!(list["members"], json!([]), "{list}");
    // Its users and beat are gone too, so sends no longer route there.
    assert_eq!(redis.cli(&["EXISTS", "sb:u:bob"]), "0");
    assert_eq!(
        redis.cli(&["SCARD", "sb:nodes"]),
        "1",
        "only the survivor is listed"
    );
    eprintln!("dead node reaped {took:?} after SIGKILL");
}
