//! Daptin topics: only a topic's creator or an admin destroys it, and
//! `list-topic` shows only topics the caller may subscribe to.

use integration_tests::*;
use serde_json::{json, Value};

use super::{admin, config, with_guard};

async fn live(addr: std::net::SocketAddr, token: Option<&str>) -> Client {
    let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
    let mut c = connect(addr, &format!("/live{query}")).await;
    assert_eq!(c.recv().await["type"], "session");
    c
}

async fn call(c: &mut Client, id: i64, method: &str, attributes: Value) -> Value {
    c.send(json!({"id": id, "method": method, "attributes": attributes}))
        .await;
    c.recv_until(|v| v["type"] == "response" && v["id"] == id)
        .await
}

fn names(listed: &Value) -> Vec<String> {
    listed["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn only_the_creator_or_an_admin_destroys_and_lists_show_what_one_may_read() {
    let dir = with_guard(&[]);
    let server = start(config(dir.path())).await;
    let alice = token("alice", Some("user"), json!({}));
    let bob = token("bob", Some("user"), json!({}));
    let root = admin();
    let mut a = live(server.addr, Some(&alice)).await;
    let mut b = live(server.addr, Some(&bob)).await;
    let mut anon = live(server.addr, None).await;
    let mut r = live(server.addr, Some(&root)).await;
    assert_eq!(
        call(&mut a, 1, "create-topic", json!({"name": "alices"})).await["ok"],
        true
    );
    assert_eq!(
        call(&mut r, 1, "create-topic", json!({"name": "admin:board"})).await["ok"],
        true
    );

    for (client, who) in [(&mut b, "another user"), (&mut anon, "anonymous")] {
        let denied = call(client, 2, "destroy-topic", json!({"name": "alices"})).await;
        assert_eq!(denied["error"]["code"], "FORBIDDEN", "{who}: {denied}");
    }
    let listed = call(&mut anon, 3, "list-topic", json!({})).await;
    let visible = names(&listed);
    assert!(visible.contains(&"alices".to_owned()), "{visible:?}");
    for hidden in ["admin:board", "vault", "secrets", "users"] {
        assert!(
            !visible.contains(&hidden.to_owned()),
            "{hidden} listed: {visible:?}"
        );
    }
    let got = call(
        &mut anon,
        4,
        "get-topic",
        json!({"topicName": "admin:board"}),
    )
    .await;
    assert_eq!(got["error"]["code"], "FORBIDDEN", "{got}");
    let all = names(&call(&mut r, 5, "list-topic", json!({})).await);
    for name in ["alices", "admin:board", "vault", "users", "docs"] {
        assert!(all.contains(&name.to_owned()), "admin sees {name}: {all:?}");
    }

    assert_eq!(
        call(&mut a, 6, "destroy-topic", json!({"name": "alices"})).await["ok"],
        true
    );
    assert_eq!(
        call(&mut a, 7, "create-topic", json!({"name": "again"})).await["ok"],
        true
    );
    assert_eq!(
        call(&mut r, 8, "destroy-topic", json!({"name": "again"})).await["ok"],
        true
    );
}
