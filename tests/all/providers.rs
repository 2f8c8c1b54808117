//! Identity providers: a real HTTP server on loopback serves a discovery
//! document and a JWKS; tokens are signed with keys the test generates;
//! keys rotate mid-test; a flood of unknown key ids must not reach the
//! provider; keys are per issuer; API keys arrive in the s3db.js ways.

use std::time::Duration;

use integration_tests::idp::{Idp, SigningKey};
use integration_tests::*;
use serde_json::{json, Value};
use switchboard::config::{ApiKeyIdentity, ProviderConfig};

fn now() -> u64 {
    switchboard::now_ms() / 1000
}

fn claims(iss: &str, sub: &str, extra: Value) -> Value {
    let mut c = json!({"iss": iss, "sub": sub, "aud": "switchboard", "exp": now() + 600});
    if let (Value::Object(c), Value::Object(extra)) = (&mut c, extra) {
        c.extend(extra);
    }
    c
}

async fn refused(addr: std::net::SocketAddr, token: &str) -> String {
    let mut c = connect(addr, &format!("/ws?token={token}")).await;
    let close = c.recv_close().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1008);
    close.reason.to_string()
}

async fn user(addr: std::net::SocketAddr, token: &str) -> Value {
    connect_native(addr, &format!("?token={token}")).await.1["user"].clone()
}

#[tokio::test]
async fn jwks_keys_of_every_kind_verify_and_rotate_without_a_restart() {
    let rsa = SigningKey::rs256("rsa-1");
    let ec = SigningKey::es256("ec-1");
    let ed = SigningKey::ed25519("ed-1");
    let idp = Idp::start(&[&rsa, &ec, &ed]).await;
    let mut config = test_config();
    config.auth.jwks_url = Some(idp.jwks_url());
    config.auth.issuer = Some(idp.issuer());
    config.auth.audience = Some("switchboard".into());
    config.auth.role_claim = Some("realm_access.roles".into());
    config.auth.jwks_min_refresh_ms = 300;
    let server = start(config).await;
    let iss = idp.issuer();
    let roles = json!({"realm_access": {"roles": ["admin", "ops"]}});
    for key in [&rsa, &ec, &ed] {
        let who = user(
            server.addr,
            &key.sign(&claims(&iss, &key.kid, roles.clone())),
        )
        .await;
        assert_eq!(who["id"], key.kid, "{} verifies", key.kid);
        assert_eq!(who["role"], "admin", "the role from realm_access.roles");
    }

    // Rotation: the provider drops ec-1 and publishes ec-2.
    let ec2 = SigningKey::es256("ec-2");
    idp.rotate(&[&rsa, &ec2, &ed]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let fresh = ec2.sign(&claims(&iss, "new", json!({})));
    assert_eq!(
        user(server.addr, &fresh).await["id"],
        "new",
        "the new key, no restart"
    );
    let old = ec.sign(&claims(&iss, "old", json!({})));
    assert_eq!(
        refused(server.addr, &old).await,
        "UNAUTHORIZED: unknown key id"
    );

    // A flood of random key ids costs the provider at most one fetch.
    let before = idp.jwks_requests();
    for i in 0..50 {
        let forged = ec2.sign_as(&format!("random-{i}"), &claims(&iss, "x", json!({})));
        assert_eq!(
            refused(server.addr, &forged).await,
            "UNAUTHORIZED: unknown key id"
        );
    }
    assert!(
        idp.jwks_requests() - before <= 1,
        "{} fetches",
        idp.jwks_requests() - before
    );

    // Precise reasons, counted.
    let wrong_aud = ec2.sign(&claims(&iss, "x", json!({"aud": "other"})));
    assert_eq!(
        refused(server.addr, &wrong_aud).await,
        "UNAUTHORIZED: wrong audience"
    );
    let expired = ec2.sign(&claims(&iss, "x", json!({"exp": now() - 600})));
    assert_eq!(
        refused(server.addr, &expired).await,
        "UNAUTHORIZED: token expired"
    );
    let stranger = SigningKey::es256("ec-2").sign(&claims(&iss, "x", json!({})));
    assert_eq!(
        refused(server.addr, &stranger).await,
        "UNAUTHORIZED: bad signature"
    );
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(
        metrics.contains(r#"switchboard_auth_refusals_total{reason="unknown_key_id"} 51"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"switchboard_auth_refusals_total{reason="wrong_audience"} 1"#));
}

#[tokio::test]
async fn oidc_discovery_waits_for_a_late_provider_and_checks_the_client_id() {
    // The provider's port is known before it listens.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("reserve");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let key = SigningKey::es256("k");
    let issuer = format!("http://{addr}");
    let mut config = test_config();
    config.auth.oidc_issuer = Some(issuer.clone());
    config.auth.client_id = Some("app".into());
    config.auth.jwks_retry_ms = 200;
    let server = start(config).await;
    let token = key.sign(&json!({"iss": issuer, "sub": "u", "aud": "app", "exp": now() + 600}));
    assert_eq!(
        refused(server.addr, &token).await,
        "UNAUTHORIZED: identity provider unavailable"
    );

    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let _idp = Idp::serve(listener, &[&key]).await;
    let mut accepted = false;
    for _ in 0..50 {
        let mut c = connect(server.addr, &format!("/ws?token={token}")).await;
        if c.recv_or_close().await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        accepted,
        "discovery retried and succeeded without a restart"
    );
    // The client id may be in `aud` or `azp`; anything else is refused.
    let azp = key
        .sign(&json!({"iss": issuer, "sub": "v", "aud": "api", "azp": "app", "exp": now() + 600}));
    assert_eq!(user(server.addr, &azp).await["id"], "v");
    let other = key.sign(&json!({"iss": issuer, "sub": "w", "aud": "api", "exp": now() + 600}));
    assert_eq!(
        refused(server.addr, &other).await,
        "UNAUTHORIZED: wrong audience"
    );
    let evil =
        key.sign(&json!({"iss": "http://evil.test", "sub": "w", "aud": "app", "exp": now() + 600}));
    assert_eq!(
        refused(server.addr, &evil).await,
        "UNAUTHORIZED: unknown issuer"
    );
}

#[tokio::test]
async fn keys_are_held_per_issuer_never_by_key_id_alone() {
    // Two providers publish different keys under the same key id.
    let a_key = SigningKey::es256("k1");
    let b_key = SigningKey::es256("k1");
    let a = Idp::start(&[&a_key]).await;
    let b = Idp::start(&[&b_key]).await;
    let mut config = test_config();
    config.auth.providers = vec![
        ProviderConfig {
            issuer: Some(a.issuer()),
            jwks_url: Some(a.jwks_url()),
            role_claim: Some("roles".into()),
            ..ProviderConfig::default()
        },
        ProviderConfig {
            issuer: Some(b.issuer()),
            role_claim: Some("realm_access.roles".into()),
            ..ProviderConfig::default()
        },
    ];
    let server = start(config).await;
    let from_a = a_key.sign(&claims(&a.issuer(), "ann", json!({"roles": ["editor"]})));
    let who = user(server.addr, &from_a).await;
    assert_eq!(
        (who["id"].as_str(), who["role"].as_str()),
        (Some("ann"), Some("editor"))
    );
    let from_b = b_key.sign(&claims(
        &b.issuer(),
        "bob",
        json!({"realm_access": {"roles": ["viewer"]}}),
    ));
    assert_eq!(user(server.addr, &from_b).await["role"], "viewer");
    // The attack: a token signed with A's k1 that claims to be B's.
    let forged = a_key.sign(&claims(
        &b.issuer(),
        "mallory",
        json!({"realm_access": {"roles": ["admin"]}}),
    ));
    assert_eq!(
        refused(server.addr, &forged).await,
        "UNAUTHORIZED: bad signature"
    );
}

#[tokio::test]
async fn api_keys_arrive_as_header_or_query_on_every_path() {
    let dir = plugin_dir(&[example_plugin("chat"), example_plugin("chatroom")]);
    let mut config = config_with_plugins(dir.path(), false);
    config.auth.api_keys.insert(
        "sk_live_abc".into(),
        ApiKeyIdentity {
            id: "svc".into(),
            role: Some("admin".into()),
            claims: Default::default(),
        },
    );
    let server = start(config).await;
    let header = [("x-api-key", "sk_live_abc")];
    for path in ["/ws", "/"] {
        for (query, headers) in [("?apiKey=sk_live_abc", &[][..]), ("", &header[..])] {
            let mut c = connect_with(server.addr, &format!("{path}{query}"), headers).await;
            assert_eq!(c.recv().await["user"]["id"], "svc", "{path}{query}");
        }
    }
    let mut live = connect_with(server.addr, "/live", &header).await;
    assert_eq!(live.recv().await["user"]["id"], "svc");
    let mut jac = connect(server.addr, "/websocket?apiKey=sk_live_abc").await;
    assert_eq!(jac.recv().await["data"]["root_id"], "svc");
    let mut room = connect_with(server.addr, "/chat?room=r&name=s", &header).await;
    assert_eq!(room.recv().await["type"], "init");
    let (status, body) = http_raw(
        server.addr,
        "POST",
        "/walker/whoami",
        "x-api-key: sk_live_abc\r\n",
        "{}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("svc"));
    let (status, body) = http_request(
        server.addr,
        "POST",
        "/walker/whoami?apiKey=sk_live_abc",
        None,
        "{}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_request(
        server.addr,
        "POST",
        "/walker/whoami?apiKey=sk_live_nope",
        None,
        "{}",
    )
    .await;
    assert_eq!(status, 401);
}
