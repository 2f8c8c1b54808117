//! Authentication: JWT HS256 / RS256 (exp, nbf, aud, iss, alg none), API
//! keys, token sources, auth.required, in-band auth.

use std::time::Duration;

use integration_tests::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use switchboard::config::ApiKeyIdentity;

const RS_PRIVATE: &str = include_str!("../keys/rs256-private.pem");
const RS_PUBLIC: &str = include_str!("../keys/rs256-public.pem");

fn now() -> u64 {
    switchboard::now_ms() / 1000
}

fn hs(claims: Value) -> String {
    sign_hs256(TEST_SECRET, &claims)
}

async fn refused_reason(addr: std::net::SocketAddr, query: &str) -> String {
    let mut client = connect(addr, &format!("/ws{query}")).await;
    let close = client.recv_close().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1008);
    close.reason.to_string()
}

#[tokio::test]
async fn token_sources_query_bearer_and_cookie() {
    let server = start_default().await;
    let t = token("alice", Some("admin"), json!({"tenant": "acme"}));

    let (_, hello) = connect_native(server.addr, &format!("?token={t}")).await;
    assert_eq!(hello["user"]["id"], "alice");
    assert_eq!(hello["user"]["role"], "admin");
    assert_eq!(hello["user"]["tenant"], "acme");

    let bearer = format!("Bearer {t}");
    let mut c = connect_with(server.addr, "/ws", &[("authorization", &bearer)]).await;
    assert_eq!(c.recv().await["user"]["id"], "alice");

    let cookie = format!("theme=dark; token={t}");
    let mut c = connect_with(server.addr, "/ws", &[("cookie", &cookie)]).await;
    assert_eq!(c.recv().await["user"]["id"], "alice");

    let (_, anon) = connect_native(server.addr, "").await;
    assert_eq!(anon["user"], Value::Null);
}

#[tokio::test]
async fn bad_tokens_are_refused_with_a_reason() {
    let server = start_default().await;
    let expired = hs(json!({"sub": "a", "exp": now() - 3600}));
    assert!(refused_reason(server.addr, &format!("?token={expired}"))
        .await
        .contains("token expired"));

    let future = hs(json!({"sub": "a", "nbf": now() + 3600}));
    assert!(refused_reason(server.addr, &format!("?token={future}"))
        .await
        .contains("token not yet valid"));

    // alg: none, hand-built.
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIn0.";
    let reason = refused_reason(server.addr, &format!("?token={none}")).await;
    assert!(reason.starts_with("UNAUTHORIZED"), "{reason}");

    let wrong = switchboard::auth::mint_token("not-the-secret", "a", None, 60, Default::default())
        .expect("mint");
    assert!(refused_reason(server.addr, &format!("?token={wrong}"))
        .await
        .contains("bad signature"));

    let reason = refused_reason(server.addr, "?token=garbage").await;
    assert!(reason.starts_with("UNAUTHORIZED"), "{reason}");
}

#[tokio::test]
async fn audience_issuer_and_rs256() {
    let mut config = test_config();
    config.auth.audience = Some("switchboard".into());
    config.auth.issuer = Some("https://issuer.test".into());
    config.auth.jwt_public_key_pem = Some(RS_PUBLIC.into());
    let server = start(config).await;

    let good =
        json!({"sub": "rs", "aud": "switchboard", "iss": "https://issuer.test", "exp": now() + 60});
    let rs = encode(
        &Header::new(Algorithm::RS256),
        &good,
        &EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).expect("key"),
    )
    .expect("encode");
    let (_, hello) = connect_native(server.addr, &format!("?token={rs}")).await;
    assert_eq!(hello["user"]["id"], "rs");

    let (_, hello) = connect_native(server.addr, &format!("?token={}", hs(good.clone()))).await;
    assert_eq!(hello["user"]["id"], "rs");

    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("other");
    assert!(
        refused_reason(server.addr, &format!("?token={}", hs(wrong_aud)))
            .await
            .contains("wrong audience")
    );
    let mut wrong_iss = good;
    wrong_iss["iss"] = json!("https://evil.test");
    assert!(
        refused_reason(server.addr, &format!("?token={}", hs(wrong_iss)))
            .await
            .contains("wrong issuer")
    );
}

#[tokio::test]
async fn rs256_needs_a_configured_key() {
    let server = start_default().await;
    let rs = encode(
        &Header::new(Algorithm::RS256),
        &json!({"sub": "rs"}),
        &EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).expect("key"),
    )
    .expect("encode");
    assert!(refused_reason(server.addr, &format!("?token={rs}"))
        .await
        .contains("RS256"));
}

#[tokio::test]
async fn api_keys_and_required_auth() {
    let mut config = test_config();
    config.auth.required = true;
    config.auth.api_keys.insert(
        "sk_live_abc123".into(),
        ApiKeyIdentity {
            id: "user1".into(),
            role: Some("admin".into()),
            claims: Default::default(),
        },
    );
    let server = start(config).await;
    let (_, hello) = connect_native(server.addr, "?token=sk_live_abc123").await;
    assert_eq!(hello["user"], json!({"id": "user1", "role": "admin"}));

    let reason = refused_reason(server.addr, "").await;
    assert_eq!(reason, "UNAUTHORIZED: authentication required");
    let reason = refused_reason(server.addr, "?token=sk_live_nope").await;
    assert!(
        reason.starts_with("UNAUTHORIZED: invalid token"),
        "{reason}"
    );
}

#[tokio::test]
async fn in_band_auth_keeps_subscriptions() {
    let server = start_default().await;
    let (mut c, hello) = connect_native(server.addr, "").await;
    c.request(json!({"type": "subscribe", "channel": "keep"}), "s")
        .await;

    let bad = c
        .request(json!({"type": "auth", "token": "garbage"}), "a0")
        .await;
    assert_eq!(bad["type"], "error");
    assert_eq!(bad["code"], "UNAUTHORIZED");

    let t = token("carol", Some("user"), json!({}));
    let ok = c.request(json!({"type": "auth", "token": t}), "a1").await;
    assert_eq!(ok["type"], "authenticated");
    assert_eq!(ok["user"]["id"], "carol");
    assert_eq!(ok["clientId"], hello["clientId"]);

    let dave = token("dave", None, json!({}));
    let (mut other, _) = connect_native(server.addr, &format!("?token={dave}")).await;
    other
        .request(
            json!({"type": "publish", "channel": "keep", "message": 1}),
            "p",
        )
        .await;
    assert_eq!(
        c.recv().await["data"],
        1,
        "subscription survived the identity change"
    );
    let sent = other
        .request(json!({"type": "send", "users": ["carol"], "data": 2}), "d")
        .await;
    assert_eq!(sent["delivered"], 1, "the new user id routes");
    assert_eq!(c.recv().await["data"], 2);

    // Back to anonymous: carol's sends no longer reach it.
    let anon = c.request(json!({"type": "auth"}), "a2").await;
    assert_eq!(anon["user"], Value::Null);
    let sent = other
        .request(json!({"type": "send", "users": ["carol"], "data": 3}), "d2")
        .await;
    assert_eq!(sent["delivered"], 0);
    c.expect_silence(Duration::from_millis(100)).await;
}
