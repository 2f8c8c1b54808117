//! Verification of locally configured keys and API keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::*;
use crate::config::ApiKeyIdentity;

const SECRET: &str = "unit-test-secret";

fn authenticator(config: AuthConfig) -> Authenticator {
    Authenticator::new(&config, Some(SECRET), Arc::new(Metrics::default())).expect("valid config")
}

#[tokio::test]
async fn hs256_token_round_trips_with_extra_claims() {
    let token = mint_token(
        SECRET,
        "alice",
        Some("admin"),
        3600,
        [("tenant".to_owned(), Value::from("acme"))]
            .into_iter()
            .collect(),
    )
    .expect("mint");
    let id = authenticator(AuthConfig::default())
        .verify(&format!("Bearer {token}"))
        .await
        .expect("valid");
    assert_eq!(id.user_id.as_deref(), Some("alice"));
    assert_eq!(id.role.as_deref(), Some("admin"));
    assert_eq!(id.user_json()["tenant"], "acme");
    assert!(id.user_json().get("exp").is_none());
    let exp = id.expires_at_ms.expect("exp read");
    assert!(exp > crate::now_ms() + 3_500_000 && exp <= crate::now_ms() + 3_600_000);
}

#[tokio::test]
async fn configured_audience_and_issuer_are_required() {
    let config = AuthConfig {
        audience: Some("sb".into()),
        issuer: Some("https://iss".into()),
        ..AuthConfig::default()
    };
    let auth = authenticator(config);
    let with = |extra: Value| {
        mint_token(
            SECRET,
            "a",
            None,
            60,
            extra.as_object().cloned().unwrap_or_default(),
        )
        .expect("mint")
    };
    let both = with(serde_json::json!({"aud": "sb", "iss": "https://iss"}));
    assert!(auth.verify(&both).await.is_ok());
    for (missing, token) in [
        ("aud", with(serde_json::json!({"iss": "https://iss"}))),
        ("iss", with(serde_json::json!({"aud": "sb"}))),
    ] {
        let err = auth.verify(&token).await.expect_err("refused");
        assert_eq!(err, AuthError::MissingClaim(missing.into()));
    }
    let wrong = with(serde_json::json!({"aud": "other", "iss": "https://iss"}));
    assert_eq!(auth.verify(&wrong).await, Err(AuthError::WrongAudience));
}

#[tokio::test]
async fn without_a_secret_hs256_is_refused() {
    let auth = Authenticator::new(&AuthConfig::default(), None, Arc::new(Metrics::default()))
        .expect("config");
    let token = mint_token(SECRET, "a", Some("admin"), 60, Map::new()).expect("mint");
    assert!(matches!(
        auth.verify(&token).await,
        Err(AuthError::Algorithm(_))
    ));
}

#[tokio::test]
async fn wrong_secret_and_garbage_are_refused_precisely() {
    let token = mint_token("other", "alice", None, 3600, Map::new()).expect("mint");
    let auth = authenticator(AuthConfig::default());
    assert_eq!(auth.verify(&token).await, Err(AuthError::BadSignature));
    assert_eq!(auth.verify("nope").await, Err(AuthError::Malformed));
    let mut claims = Map::new();
    claims.insert("exp".into(), Value::from(1));
    let old = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encode");
    assert_eq!(auth.verify(&old).await, Err(AuthError::Expired));
}

#[tokio::test]
async fn api_keys_map_to_identities() {
    let mut config = AuthConfig::default();
    config.api_keys.insert(
        "sk_live_abc".into(),
        ApiKeyIdentity {
            id: "svc".into(),
            role: Some("service".into()),
            claims: BTreeMap::new(),
        },
    );
    let id = authenticator(config)
        .verify("sk_live_abc")
        .await
        .expect("key");
    assert_eq!(id.user_id.as_deref(), Some("svc"));
    assert_eq!(id.role.as_deref(), Some("service"));
    assert!(id.has_role("service"));
}

#[tokio::test]
async fn required_refuses_missing_token() {
    let config = AuthConfig {
        required: true,
        ..AuthConfig::default()
    };
    assert_eq!(
        authenticator(config).authenticate(None).await,
        Err(AuthError::Required)
    );
}
