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
    /// One identity provider's key set (JWKS), as the s3db.js `jwksUri`: a
    /// shorthand for one `[[auth.providers]]` entry with `issuer`,
    /// `audience`, `client_id` and `role_claim` from this table.
    pub jwks_url: Option<String>,
    /// An OpenID Connect issuer: its key set is found through
    /// `<issuer>/.well-known/openid-configuration` (shorthand as above).
    pub oidc_issuer: Option<String>,
    /// The OIDC client id: tokens must name it in `aud` or `azp`.
    pub client_id: Option<String>,
    /// Where the role is in a token (a dotted path, e.g.
    /// `realm_access.roles`; a list gives several roles). Default `role`.
    pub role_claim: Option<String>,
    /// Several identity providers at once, each with its own keys,
    /// audience and role mapping.
    pub providers: Vec<ProviderConfig>,
    /// How long a fetched key set is trusted when the provider sends no
    /// `Cache-Control: max-age`.
    pub jwks_cache_ms: u64,
    /// Fewest milliseconds between two key-set fetches a token with an
    /// unknown key id may trigger: a flood of random `kid`s costs the
    /// provider one request per interval, not one per token.
    pub jwks_min_refresh_ms: u64,
    /// How often an unreachable provider's discovery or keys are retried.
    pub jwks_retry_ms: u64,
}

/// One identity provider.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// Its issuer: tokens must carry it in `iss`; it also selects the
    /// provider for a token and, without `jwks_url`, where discovery looks.
    pub issuer: Option<String>,
    /// Its key set; found by OIDC discovery from `issuer` when absent.
    pub jwks_url: Option<String>,
    /// Required in `aud`, when set.
    pub audience: Option<String>,
    /// The OIDC client id, required in `aud` or `azp` when set.
    pub client_id: Option<String>,
    /// Where the role is (dotted path; default `role`).
    pub role_claim: Option<String>,
}

impl AuthConfig {
    /// Every provider: the `[[auth.providers]]` list, plus the one the
    /// shorthand keys (`jwks_url`, `oidc_issuer`) describe.
    pub fn all_providers(&self) -> Vec<ProviderConfig> {
        let mut all = self.providers.clone();
        if self.jwks_url.is_some() || self.oidc_issuer.is_some() {
            all.push(ProviderConfig {
                issuer: self.oidc_issuer.clone().or_else(|| self.issuer.clone()),
                jwks_url: self.jwks_url.clone(),
                audience: self.audience.clone(),
                client_id: self.client_id.clone(),
                role_claim: self.role_claim.clone(),
            });
        }
        all
    }
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
            jwks_url: None,
            oidc_issuer: None,
            client_id: None,
            role_claim: None,
            providers: Vec::new(),
            jwks_cache_ms: 300_000,
            jwks_min_refresh_ms: 30_000,
            jwks_retry_ms: 10_000,
        }
    }
}

impl AuthConfig {
    /// Whether the operator configured any JWT verification key (a
    /// secret, a public key, or an identity provider).
    pub fn has_jwt_key(&self) -> bool {
        self.jwt_secret.as_deref().is_some_and(|s| !s.is_empty())
            || self.jwt_public_key_pem.is_some()
            || !self.all_providers().is_empty()
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
