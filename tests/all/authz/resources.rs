//! Resources attacked: by-id operations outside a guard's filter, the
//! example guard's tenant scoping, protected fields probed through filters
//! in every dialect, and literal dotted keys.

use std::time::Duration;

use integration_tests::*;
use serde_json::{json, Value};

use super::{admin, config, native, refused, tenant_user, with_guard};

#[tokio::test]
async fn by_id_operations_stay_inside_the_guard_filter() {
    let dir = with_guard(&[]);
    let server = start(config(dir.path())).await;
    let mut ann = native(server.addr, Some(&tenant_user("ann", "acme", "user"))).await;
    let mut gus = native(server.addr, Some(&tenant_user("gus", "globex", "user"))).await;
    let mut gus_admin = native(server.addr, Some(&tenant_user("gia", "globex", "admin"))).await;

    let doc = ann
        .request(
            json!({"type": "insert", "resource": "docs", "data": {"id": "d1", "title": "plan"}}),
            "i",
        )
        .await;
    assert_eq!(
        doc["data"]["tenant"], "acme",
        "create stamps the tenant: {doc}"
    );
    let forged = gus
        .request(
            json!({"type": "insert", "resource": "docs", "data": {"id": "d2", "tenant": "acme"}}),
            "f",
        )
        .await;
    assert_eq!(
        forged["data"]["tenant"], "globex",
        "the stamp wins: {forged}"
    );

    // Another tenant's record does not exist for them, whatever they try.
    for frame in [
        json!({"type": "get", "resource": "docs", "id": "d1"}),
        json!({"type": "update", "resource": "docs", "id": "d1", "data": {"title": "pwned"}}),
    ] {
        let reply = refused(&mut gus, frame, "NOT_FOUND").await;
        assert_eq!(reply["message"], "Record not found");
    }
    refused(
        &mut gus_admin,
        json!({"type": "delete", "resource": "docs", "id": "d1"}),
        "NOT_FOUND",
    )
    .await;
    let listed = gus
        .request(json!({"type": "list", "resource": "docs"}), "l")
        .await;
    let ids: Vec<&Value> = listed["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, [&json!("d2")], "{listed}");
    // Moving one's own record into another tenant is refused.
    refused(
        &mut gus,
        json!({"type": "update", "resource": "docs", "id": "d2", "data": {"tenant": "acme"}}),
        "FORBIDDEN",
    )
    .await;
    // As in the s3db.js example, deleting needs the admin role.
    refused(
        &mut ann,
        json!({"type": "delete", "resource": "docs", "id": "d1"}),
        "FORBIDDEN",
    )
    .await;

    let unchanged = ann
        .request(json!({"type": "get", "resource": "docs", "id": "d1"}), "g")
        .await;
    assert_eq!(
        unchanged["data"],
        json!({"id": "d1", "title": "plan", "tenant": "acme"})
    );
    let mut root = native(server.addr, Some(&admin())).await;
    let d2 = root
        .request(json!({"type": "get", "resource": "docs", "id": "d2"}), "g2")
        .await;
    assert_eq!(d2["data"]["tenant"], "globex");
    let deleted = gus_admin
        .request(
            json!({"type": "delete", "resource": "docs", "id": "d2"}),
            "d",
        )
        .await;
    assert_eq!(
        deleted["data"],
        json!({"id": "d2"}),
        "a tenant admin deletes in its tenant"
    );
}

#[tokio::test]
async fn protected_fields_cannot_be_probed_through_filters_in_any_dialect() {
    let dir = plugin_dir(&[]);
    let server = start(config(dir.path())).await;
    let mut root = native(server.addr, Some(&admin())).await;
    root.request(
        json!({"type": "insert", "resource": "users", "data": {"id": "u1", "name": "ann", "password": "hunter2", "meta": {"secret": "s3", "plan": "pro"}}}),
        "i",
    )
    .await;
    let user = token("mal", Some("user"), json!({}));
    let mut mal = native(server.addr, Some(&user)).await;
    let probes = [
        json!({"password": {"start": "h", "end": "i"}}),
        json!({"password": "hunter2"}),
        json!({"meta": {"secret": "s3", "plan": "pro"}}),
        json!({"meta.secret": {"substr": "s"}}),
        json!([{"name": "ann"}, {"meta.secret.x": 1}]),
    ];
    for filter in &probes {
        for frame in [
            json!({"type": "list", "resource": "users", "filter": filter}),
            json!({"type": "replay", "resource": "users", "filter": filter}),
            json!({"type": "subscribe", "resource": "users", "filter": filter}),
        ] {
            let reply = refused(&mut mal, frame, "FORBIDDEN").await;
            assert!(
                reply["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("protected")),
                "{reply}"
            );
        }
    }
    let mut rtbdp = connect(server.addr, &format!("/rtbdp?token={user}")).await;
    rtbdp
        .send(json!({"replay": [{"id": 1, "table": "users", "filters": [{"password": {"start": "h"}}]}]}))
        .await;
    let err = rtbdp.recv().await;
    assert_eq!(err["error"]["code"], "FORBIDDEN", "{err}");
    let mut live = connect(server.addr, &format!("/live?token={user}")).await;
    live.recv().await;
    live.send(json!({"id": 1, "method": "subscribe", "attributes": {"topicName": "users", "filters": {"password": "hunter2"}}}))
        .await;
    let err = live.recv().await;
    assert_eq!(err["error"]["code"], "FORBIDDEN", "{err}");

    // Fields that are not protected still filter, and nothing hidden shows.
    let ok = mal
        .request(
            json!({"type": "list", "resource": "users", "filter": {"meta.plan": "pro"}}),
            "ok",
        )
        .await;
    assert_eq!(
        ok["data"],
        json!([{"id": "u1", "name": "ann", "meta": {"plan": "pro"}}])
    );
}

#[tokio::test]
async fn a_literal_dotted_key_neither_overwrites_nor_exposes_a_protected_value() {
    let dir = plugin_dir(&[]);
    let server = start(config(dir.path())).await;
    let root = admin();
    let mut c = native(server.addr, Some(&root)).await;
    let mut watcher = native(server.addr, Some(&root)).await;
    watcher
        .request(json!({"type": "subscribe", "resource": "users"}), "s")
        .await;
    c.request(
        json!({"type": "insert", "resource": "users", "data": {"id": "u1", "meta": {"secret": "s3"}}}),
        "i",
    )
    .await;
    assert_eq!(
        watcher.recv().await["data"],
        json!({"id": "u1", "meta": {}})
    );
    refused(
        &mut c,
        json!({"type": "update", "resource": "users", "id": "u1", "data": {"meta.secret": "forged"}}),
        "FORBIDDEN",
    )
    .await;
    refused(
        &mut c,
        json!({"type": "insert", "resource": "users", "data": {"id": "u2", "meta.secret": "x"}}),
        "FORBIDDEN",
    )
    .await;
    let got = c
        .request(json!({"type": "get", "resource": "users", "id": "u1"}), "g")
        .await;
    assert_eq!(got["data"], json!({"id": "u1", "meta": {}}));
    watcher.expect_silence(Duration::from_millis(200)).await;
}
