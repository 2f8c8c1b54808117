//! Authentication: turns a token (JWT or API key) into an [`Identity`].
//!
//! Tokens arrive as `?token=`, `Authorization: Bearer`, a `token` cookie, or
//! in-band (`auth`, jac-cloud's `change_user`); all go through
//! [`Authenticator::verify`], so every path applies the same checks.

mod jwt;
pub mod secret;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::{ApiKeyIdentity, AuthConfig};

pub use jwt::mint_token;

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The server refuses anonymous clients.
    #[error("authentication required")]
    Required,
    /// The token is not a JWT we can read, nor a known API key.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token uses an algorithm this server does not accept (`none` included).
    #[error("unsupported token algorithm {0}")]
    Algorithm(String),
    /// The RS256 public key in the configuration does not parse.
    #[error("bad RS256 public key: {0}")]
    BadKey(String),
    /// The generated HS256 secret's file cannot be read or written.
    #[error("JWT secret file {}: {message}", path.display())]
    Secret {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Who a connection is. Anonymous connections have no user id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The `sub` claim or API-key id.
    pub user_id: Option<String>,
    /// The `role` claim.
    pub role: Option<String>,
    /// Every claim, for guards (`tenant`, `scopes`...).
    pub claims: Map<String, Value>,
    /// When the token stops being valid (its `exp`, Unix milliseconds); an
    /// open connection is closed then unless it sends a fresh token.
    pub expires_at_ms: Option<u64>,
}

impl Identity {
    /// The anonymous identity.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Whether no token backs this identity.
    pub fn is_anonymous(&self) -> bool {
        self.user_id.is_none()
    }

    /// The `user` object clients see (`null` when anonymous): `id`, `role`
    /// and the non-registered claims. Registered claims (exp, iat...) stay out
    /// because they describe the token, not the user.
    pub fn user_json(&self) -> Value {
        let Some(id) = &self.user_id else {
            return Value::Null;
        };
        let mut user = Map::new();
        user.insert("id".into(), Value::String(id.clone()));
        user.insert(
            "role".into(),
            self.role.clone().map(Value::String).unwrap_or(Value::Null),
        );
        for (key, value) in &self.claims {
            if !matches!(
                key.as_str(),
                "sub" | "role" | "exp" | "iat" | "nbf" | "aud" | "iss" | "jti"
            ) {
                user.insert(key.clone(), value.clone());
            }
        }
        Value::Object(user)
    }

    fn from_claims(claims: Map<String, Value>) -> Self {
        let user_id = claims.get("sub").and_then(value_as_string);
        let role = claims.get("role").and_then(value_as_string);
        let expires_at_ms = claims
            .get("exp")
            .and_then(Value::as_f64)
            .map(|secs| (secs.max(0.0) * 1000.0) as u64);
        Self {
            user_id,
            role,
            claims,
            expires_at_ms,
        }
    }

    fn from_api_key(key: &ApiKeyIdentity) -> Self {
        let mut claims: Map<String, Value> = key.claims.clone().into_iter().collect();
        claims.insert("sub".into(), Value::String(key.id.clone()));
        if let Some(role) = &key.role {
            claims.insert("role".into(), Value::String(role.clone()));
        }
        Self {
            user_id: Some(key.id.clone()),
            role: key.role.clone(),
            claims,
            expires_at_ms: None,
        }
    }
}

fn value_as_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Verifies tokens against the configured keys.
pub struct Authenticator {
    required: bool,
    jwt: jwt::JwtVerifier,
    api_keys: BTreeMap<String, ApiKeyIdentity>,
}

impl Authenticator {
    /// Builds the verifier from configuration; `hs256_secret` is the
    /// resolved HS256 secret ([`secret::hs256_secret`]), none to refuse
    /// HS256 tokens.
    ///
    /// # Errors
    /// The RS256 public key does not parse.
    pub fn new(config: &AuthConfig, hs256_secret: Option<&str>) -> Result<Self, AuthError> {
        Ok(Self {
            required: config.required,
            jwt: jwt::JwtVerifier::new(config, hs256_secret)?,
            api_keys: config.api_keys.clone(),
        })
    }

    /// Whether anonymous clients are refused.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The identity for a connection that presented `token` (or none).
    ///
    /// # Errors
    /// A bad token, or no token when authentication is required.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        match token.map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) => self.verify(token),
            None if self.required => Err(AuthError::Required),
            None => Ok(Identity::anonymous()),
        }
    }

    /// Verifies one token. A `Bearer ` prefix (any case) is accepted, since
    /// jac-cloud clients send it in-band.
    ///
    /// # Errors
    /// Unknown API key, unreadable JWT, bad signature, expired, not yet
    /// valid, wrong audience or issuer, or an unaccepted algorithm.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let token = strip_bearer(token.trim());
        if let Some(key) = self.api_keys.get(token) {
            return Ok(Identity::from_api_key(key));
        }
        self.jwt.verify(token).map(Identity::from_claims)
    }
}

/// Drops a leading `Bearer ` (case-insensitive).
pub fn strip_bearer(token: &str) -> &str {
    match token.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
        _ => token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "unit-test-secret";

    fn authenticator(config: AuthConfig) -> Authenticator {
        Authenticator::new(&config, Some(SECRET)).expect("valid config")
    }

    #[test]
    fn hs256_token_round_trips_with_extra_claims() {
        let config = AuthConfig::default();
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
        let id = authenticator(config)
            .verify(&format!("Bearer {token}"))
            .expect("valid");
        assert_eq!(id.user_id.as_deref(), Some("alice"));
        assert_eq!(id.role.as_deref(), Some("admin"));
        assert_eq!(id.user_json()["tenant"], "acme");
        assert!(id.user_json().get("exp").is_none());
        let exp = id.expires_at_ms.expect("exp read");
        assert!(exp > crate::now_ms() + 3_500_000 && exp <= crate::now_ms() + 3_600_000);
    }

    #[test]
    fn configured_audience_and_issuer_are_required() {
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
        assert!(auth.verify(&both).is_ok());
        for missing in [
            with(serde_json::json!({"iss": "https://iss"})),
            with(serde_json::json!({"aud": "sb"})),
        ] {
            let err = auth.verify(&missing).expect_err("refused");
            assert!(err.to_string().contains("Missing required claim"), "{err}");
        }
    }

    #[test]
    fn without_a_secret_hs256_is_refused() {
        let auth = Authenticator::new(&AuthConfig::default(), None).expect("config");
        let token = mint_token(SECRET, "a", Some("admin"), 60, Map::new()).expect("mint");
        assert!(matches!(auth.verify(&token), Err(AuthError::Algorithm(_))));
    }

    #[test]
    fn wrong_secret_and_garbage_are_refused() {
        let token = mint_token("other", "alice", None, 3600, Map::new()).expect("mint");
        let auth = authenticator(AuthConfig::default());
        assert!(matches!(auth.verify(&token), Err(AuthError::Invalid(_))));
        assert!(matches!(auth.verify("nope"), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn api_keys_map_to_identities() {
        let mut config = AuthConfig::default();
        config.api_keys.insert(
            "sk_live_abc".into(),
            ApiKeyIdentity {
                id: "svc".into(),
                role: Some("service".into()),
                claims: BTreeMap::new(),
            },
        );
        let id = authenticator(config).verify("sk_live_abc").expect("key");
        assert_eq!(id.user_id.as_deref(), Some("svc"));
        assert_eq!(id.role.as_deref(), Some("service"));
    }

    #[test]
    fn required_refuses_missing_token() {
        let config = AuthConfig {
            required: true,
            ..AuthConfig::default()
        };
        assert!(matches!(
            authenticator(config).authenticate(None),
            Err(AuthError::Required)
        ));
    }
}
