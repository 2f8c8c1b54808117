//! Identity providers (Auth0, Keycloak, Cognito, Supabase, Google...):
//! their key sets (JWKS) fetched over HTTP, cached, refreshed when a token
//! names a key id the cache does not know (at most once per
//! `auth.jwks_min_refresh_ms`, so a flood of random `kid`s cannot hammer
//! the provider) and when the provider's `Cache-Control: max-age` runs out;
//! OIDC discovery of the key set from `<issuer>/.well-known/openid-
//! configuration`; and the checks a provider's tokens must pass.
//!
//! Keys are held per provider — per issuer — and looked up by `kid` only
//! within the provider a token's `iss` selects: a key id alone never
//! identifies a key across issuers, or one provider's key could verify
//! tokens claiming to be another's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Header};
use parking_lot::RwLock;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::jwt::{self, LocalKeys};
use super::AuthError;
use crate::config::{AuthConfig, ProviderConfig};

/// Largest key set or discovery document read.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Every configured provider.
pub(super) struct Providers {
    list: Vec<Arc<Provider>>,
}

/// How often and how long key sets are fetched and trusted.
#[derive(Debug, Clone, Copy)]
struct Timing {
    cache: Duration,
    min_refresh: Duration,
    retry: Duration,
}

/// One provider: its configuration and cached keys.
pub(super) struct Provider {
    config: ProviderConfig,
    timing: Timing,
    client: reqwest::Client,
    state: RwLock<State>,
    /// One fetch at a time; the others wait and use its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    /// The key set's address: configured, or discovered.
    jwks_url: Option<String>,
    /// Keys by `kid` ("" for a key without one).
    keys: HashMap<String, Key>,
    /// Until when the keys are current.
    fresh_until: Option<Instant>,
    /// When the key set was last fetched (or tried).
    last_fetch: Option<Instant>,
}

#[derive(Clone)]
struct Key {
    key: DecodingKey,
    alg: Algorithm,
}

/// Why keys could not be had.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the document is over {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url}: {message}")]
    Document { url: String, message: String },
}

impl Providers {
    pub(super) fn new(config: &AuthConfig) -> Self {
        let timing = Timing {
            cache: Duration::from_millis(config.jwks_cache_ms),
            min_refresh: Duration::from_millis(config.jwks_min_refresh_ms),
            retry: Duration::from_millis(config.jwks_retry_ms.max(10)),
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        let list = config
            .all_providers()
            .into_iter()
            .map(|p| {
                Arc::new(Provider {
                    state: RwLock::new(State {
                        jwks_url: p.jwks_url.clone(),
                        ..State::default()
                    }),
                    config: p,
                    timing,
                    client: client.clone(),
                    fetching: tokio::sync::Mutex::new(()),
                })
            })
            .collect();
        Self { list }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Fetches every provider's keys in the background, retrying one that
    /// cannot be reached (its tokens are refused meanwhile).
    pub(super) fn start(&self, shutdown: CancellationToken) {
        for provider in &self.list {
            let provider = provider.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    // Under the fetch lock: a token arriving meanwhile
                    // waits for this fetch instead of finding no keys.
                    let fetched = {
                        let _one_at_a_time = provider.fetching.lock().await;
                        provider.fetch().await
                    };
                    match fetched {
                        Ok(n) => {
                            tracing::info!(provider = %provider.name(), keys = n, "identity provider keys loaded");
                            break;
                        }
                        Err(err) => tracing::error!(
                            provider = %provider.name(),
                            cause = %err,
                            retry_ms = provider.timing.retry.as_millis() as u64,
                            "identity provider unreachable: its tokens are refused until it answers"
                        ),
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(provider.timing.retry) => {}
                    }
                }
            });
        }
    }

    /// The provider whose keys verify a token: the one its `iss` names, or
    /// for an asymmetric token no local key handles, a provider configured
    /// without an issuer.
    pub(super) fn for_token(
        &self,
        issuer: Option<&str>,
        header: &Header,
        local: &LocalKeys,
    ) -> Option<&Arc<Provider>> {
        if let Some(iss) = issuer {
            if let Some(p) = self
                .list
                .iter()
                .find(|p| p.config.issuer.as_deref() == Some(iss))
            {
                return Some(p);
            }
        }
        if local.handles(header.alg)
            || matches!(
                header.alg,
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
            )
        {
            return None;
        }
        self.list.iter().find(|p| p.config.issuer.is_none())
    }
}

impl Provider {
    fn name(&self) -> &str {
        self.config
            .issuer
            .as_deref()
            .or(self.config.jwks_url.as_deref())
            .unwrap_or("?")
    }

    /// Where this provider puts roles.
    pub(super) fn role_claim(&self) -> Option<&str> {
        self.config.role_claim.as_deref()
    }

    /// A token's claims, once a key of this provider verifies it and its
    /// issuer, audience / client id and dates check out.
    pub(super) async fn verify(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<Map<String, Value>, AuthError> {
        let kid = header.kid.clone().unwrap_or_default();
        let key = self.key(&kid).await?;
        if key.alg != header.alg {
            return Err(AuthError::Algorithm(format!(
                "{:?} (the key is for {:?})",
                header.alg, key.alg
            )));
        }
        let config = &self.config;
        let validation = jwt::validation(
            key.alg,
            config.issuer.as_deref(),
            config.audience.as_deref(),
        );
        let claims = decode::<Map<String, Value>>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| jwt::refusal(&e))?;
        if let Some(client) = &config.client_id {
            let aud = claims.get("aud");
            let named = match aud {
                Some(Value::String(a)) => a == client,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client)),
                _ => false,
            };
            let azp = claims.get("azp").and_then(Value::as_str) == Some(client.as_str());
            if !named && !azp {
                return Err(AuthError::WrongAudience);
            }
        }
        Ok(claims)
    }

    /// The key `kid` names: cached and current, or after a refresh (at
    /// most once per `jwks_min_refresh_ms` for an unknown one).
    async fn key(&self, kid: &str) -> Result<Key, AuthError> {
        if let Some(key) = self.cached(kid, true) {
            return Ok(key);
        }
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(key) = self.cached(kid, true) {
            return Ok(key);
        }
        let last_fetch = self.state.read().last_fetch;
        let recently = last_fetch.is_some_and(|at| at.elapsed() < self.timing.min_refresh);
        if !recently {
            if let Err(err) = self.fetch().await {
                tracing::warn!(provider = %self.name(), cause = %err, "key set refresh failed");
                // A provider outage keeps its last keys working.
                return self
                    .cached(kid, false)
                    .ok_or(AuthError::ProviderUnavailable);
            }
        }
        let none_loaded = self.state.read().keys.is_empty();
        match self.cached(kid, false) {
            Some(key) => Ok(key),
            None if none_loaded => Err(AuthError::ProviderUnavailable),
            None => Err(AuthError::UnknownKeyId),
        }
    }

    /// A cached key; when `fresh`, only while the key set is current.
    fn cached(&self, kid: &str, fresh: bool) -> Option<Key> {
        let state = self.state.read();
        if fresh
            && state
                .fresh_until
                .is_none_or(|until| Instant::now() >= until)
        {
            return None;
        }
        let key = state.keys.get(kid).cloned();
        // A token without a `kid` may use the provider's only key.
        key.or_else(|| match (kid, state.keys.len()) {
            ("", 1) => state.keys.values().next().cloned(),
            _ => None,
        })
    }

    /// Fetches the key set (discovering its address first when needed)
    /// and replaces the cache: keys the provider dropped are gone.
    async fn fetch(&self) -> Result<usize, FetchError> {
        self.state.write().last_fetch = Some(Instant::now());
        let known = self.state.read().jwks_url.clone();
        let url = match known {
            Some(url) => url,
            None => self.discover().await?,
        };
        let (body, max_age) = self.get(&url).await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| FetchError::Document {
            url: url.clone(),
            message: format!("not a JWK set: {e}"),
        })?;
        let keys: HashMap<String, Key> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let key = usable(jwk)?;
                Some((jwk.common.key_id.clone().unwrap_or_default(), key))
            })
            .collect();
        let n = keys.len();
        let mut state = self.state.write();
        state.keys = keys;
        state.fresh_until = Some(Instant::now() + max_age.unwrap_or(self.timing.cache));
        Ok(n)
    }

    /// OIDC discovery: the key set's address from the issuer's
    /// configuration, which must name the same issuer.
    async fn discover(&self) -> Result<String, FetchError> {
        let issuer = self.config.issuer.clone().unwrap_or_default();
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let (body, _) = self.get(&url).await?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| FetchError::Document {
            url: url.clone(),
            message: e.to_string(),
        })?;
        if doc.get("issuer").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(FetchError::Document {
                url,
                message: format!("names another issuer than `{issuer}`"),
            });
        }
        let jwks = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| FetchError::Document {
                url: url.clone(),
                message: "no `jwks_uri`".into(),
            })?;
        self.state.write().jwks_url = Some(jwks.clone());
        Ok(jwks)
    }

    /// GETs a document of at most [`MAX_DOCUMENT_BYTES`], with its
    /// `Cache-Control: max-age`.
    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
        let mut response = self.client.get(url).send().await?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge {
                    url: url.to_owned(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

/// A JWK as a verification key, when it is an asymmetric signing key.
fn usable(jwk: &Jwk) -> Option<Key> {
    let alg = match (jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(alg), _) => signing_alg(alg)?,
        (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (None, AlgorithmParameters::EllipticCurve(p)) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        (None, AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
        // Shared secrets do not belong in a public key set.
        (None, AlgorithmParameters::OctetKey(_)) => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { key, alg })
}

fn signing_alg(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// `max-age` from a Cache-Control value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, secs) = directive.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| secs.trim().trim_matches('"').parse().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::max_age;
    use std::time::Duration;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(
            max_age("max-age=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
    }
}
