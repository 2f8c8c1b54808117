//! How clients prove who they are, and what anonymous clients may do.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How clients prove who they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Refuse anonymous clients.
    pub required: bool,
    /// HS256 secret; tokens signed with it are accepted. With no secret and
    /// no public key configured, a random one is generated on first start
    /// and kept in `secret_file` (there is no built-in default: a secret
    /// written in the source would let anyone mint tokens).
    pub jwt_secret: Option<String>,
    /// Where the generated HS256 secret lives (mode 0600); default:
    /// `jwt-secret` beside the store file.
    pub secret_file: Option<PathBuf>,
    /// RS256 public key (PEM text); tokens signed with the matching private key are accepted.
    pub jwt_public_key_pem: Option<String>,
    /// File holding the RS256 public key, read at start-up.
    pub jwt_public_key_file: Option<PathBuf>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// API keys: key → identity.
    pub api_keys: BTreeMap<String, ApiKeyIdentity>,
    /// How long before a connection's token expires it is warned with a
    /// `TOKEN_EXPIRED` error frame (it can then send a fresh token in-band;
    /// otherwise it is closed at `exp`).
    pub expiry_warning_ms: u64,
    /// Origins whose pages may use the `token` cookie (WebSocket upgrades
    /// and `POST /walker`). Empty: the server's own host only; `"*"`: any.
    /// Tokens in the query or the Authorization header are not affected:
    /// a cross-site page cannot make the browser add those.
    pub allowed_origins: Vec<String>,
    /// Whether anonymous clients may send to users and client ids directly
    /// (guards decide for everyone else).
    pub anonymous_send: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            required: false,
            jwt_secret: None,
            secret_file: None,
            jwt_public_key_pem: None,
            jwt_public_key_file: None,
            issuer: None,
            audience: None,
            api_keys: BTreeMap::new(),
            expiry_warning_ms: 60_000,
            allowed_origins: Vec::new(),
            anonymous_send: false,
        }
    }
}

impl AuthConfig {
    /// Whether the operator configured any JWT verification key.
    pub fn has_jwt_key(&self) -> bool {
        self.jwt_secret.as_deref().is_some_and(|s| !s.is_empty())
            || self.jwt_public_key_pem.is_some()
    }
}

/// The identity an API key stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIdentity {
    /// The user id the key acts as.
    pub id: String,
    /// Its role.
    #[serde(default)]
    pub role: Option<String>,
    /// Extra claims (tenant, scopes...) handed to guards.
    #[serde(default, flatten)]
    pub claims: BTreeMap<String, serde_json::Value>,
}
