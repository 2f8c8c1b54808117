//! Authentication: turns a token (JWT or API key) into an [`Identity`].
//!
//! Tokens arrive as `?token=`, `?apiKey=`, `Authorization: Bearer`,
//! `x-api-key`, a `token` cookie, or in-band (`auth`, jac-cloud's
//! `change_user`); all go through [`Authenticator::verify`], so every path
//! applies the same checks. A JWT is verified by the identity provider its
//! `iss` names ([`providers`]: JWKS, OIDC discovery, key rotation), or by
//! the locally configured keys (an HS256 secret, an RS256 public key).
//! Every refusal says precisely why, and is counted by reason.

mod identity;
mod jwt;
pub mod providers;
pub mod secret;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

pub use identity::{ClaimsText, Identity};
pub use jwt::mint_token;

use crate::config::{ApiKeyIdentity, AuthConfig};
use crate::metrics::Metrics;

/// Why a token was refused (the reason a client sees in its 1008 close).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The server refuses anonymous clients.
    #[error("authentication required")]
    Required,
    /// Neither a known API key nor a JWT.
    #[error("invalid token: neither a known API key nor a JWT")]
    Malformed,
    /// The token uses an algorithm this server does not accept (`none` included).
    #[error("unsupported token algorithm {0}")]
    Algorithm(String),
    /// Its `kid` is not in its provider's key set, even after a refresh.
    #[error("unknown key id")]
    UnknownKeyId,
    /// Its `iss` names no configured provider.
    #[error("unknown issuer")]
    UnknownIssuer,
    /// Its `iss` is not the one required.
    #[error("wrong issuer")]
    WrongIssuer,
    /// Its `aud` (or `azp`) is not the one required.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is missing.
    #[error("missing required claim: {0}")]
    MissingClaim(String),
    /// Past its `exp`.
    #[error("token expired")]
    Expired,
    /// Before its `nbf`.
    #[error("token not yet valid")]
    NotYetValid,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The provider's keys cannot be had right now.
    #[error("identity provider unavailable")]
    ProviderUnavailable,
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

impl AuthError {
    /// The reason's metrics label (`switchboard_auth_refusals_total`).
    pub fn label(&self) -> &'static str {
        match self {
            AuthError::Required => "required",
            AuthError::Malformed => "malformed",
            AuthError::Algorithm(_) => "algorithm",
            AuthError::UnknownKeyId => "unknown_key_id",
            AuthError::UnknownIssuer => "unknown_issuer",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::BadSignature => "bad_signature",
            AuthError::ProviderUnavailable => "provider_unavailable",
            AuthError::BadKey(_) | AuthError::Secret { .. } => "configuration",
        }
    }
}

/// Verifies tokens against the configured keys and providers.
pub struct Authenticator {
    required: bool,
    local: jwt::LocalKeys,
    providers: providers::Providers,
    api_keys: BTreeMap<String, ApiKeyIdentity>,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    /// Builds the verifier from configuration; `hs256_secret` is the
    /// resolved HS256 secret ([`secret::hs256_secret`]), none to refuse
    /// HS256 tokens.
    ///
    /// # Errors
    /// The RS256 public key does not parse.
    pub fn new(
        config: &AuthConfig,
        hs256_secret: Option<&str>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AuthError> {
        Ok(Self {
            required: config.required,
            local: jwt::LocalKeys::new(config, hs256_secret)?,
            providers: providers::Providers::new(config),
            api_keys: config.api_keys.clone(),
            metrics,
        })
    }

    /// Starts what runs in the background: OIDC discovery and key-set
    /// fetches (retried while a provider is unreachable).
    pub fn start(&self, shutdown: tokio_util::sync::CancellationToken) {
        self.providers.start(shutdown);
    }

    /// Whether anonymous clients are refused.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The identity for a connection that presented `token` (or none).
    /// Refusals are counted by reason.
    ///
    /// # Errors
    /// A bad token, or no token when authentication is required.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        let result = match token.map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) => self.verify(token).await,
            None if self.required => Err(AuthError::Required),
            None => Ok(Identity::anonymous()),
        };
        if let Err(e) = &result {
            self.metrics.auth_refusal(e.label());
        }
        result
    }

    /// Verifies one token. A `Bearer ` prefix (any case) is accepted, since
    /// jac-cloud clients send it in-band.
    ///
    /// # Errors
    /// Why it was refused, precisely.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let token = strip_bearer(token.trim());
        if let Some(key) = self.api_keys.get(token) {
            return Ok(Identity::from_api_key(key));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| jwt::refusal(&e))?;
        // Routing only: the issuer picks whose keys verify the token; its
        // claims are trusted once that provider's signature checks out.
        let issuer = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
            .ok()
            .and_then(|data| {
                data.claims
                    .get("iss")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        if let Some(provider) = self
            .providers
            .for_token(issuer.as_deref(), &header, &self.local)
        {
            let claims = provider.verify(token, &header).await?;
            return Ok(Identity::from_claims(claims, provider.role_claim()));
        }
        if !self.local.handles(header.alg) && !self.providers.is_empty() {
            return Err(match issuer {
                Some(_) => AuthError::UnknownIssuer,
                None => AuthError::MissingClaim("iss".into()),
            });
        }
        self.local
            .verify(token, &header)
            .map(|claims| Identity::from_claims(claims, None))
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
mod tests;
