//! Locally configured JWT keys (HS256 with a shared secret, RS256 with a
//! public key), the error mapping every verification shares, and
//! dev-token minting, on `jsonwebtoken`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::AuthError;
use crate::config::AuthConfig;

/// The locally configured keys. Each algorithm is there only when the
/// operator configured (or the server generated) its key: an RS256-only
/// server refuses every HS256 token.
pub(super) struct LocalKeys {
    hs256: Option<(DecodingKey, Validation)>,
    rs256: Option<(DecodingKey, Validation)>,
}

impl LocalKeys {
    pub(super) fn new(config: &AuthConfig, hs256_secret: Option<&str>) -> Result<Self, AuthError> {
        let rs256 = match &config.jwt_public_key_pem {
            Some(pem) => Some((
                DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| AuthError::BadKey(e.to_string()))?,
                validation(
                    Algorithm::RS256,
                    config.issuer.as_deref(),
                    config.audience.as_deref(),
                ),
            )),
            None => None,
        };
        Ok(Self {
            hs256: hs256_secret.map(|secret| {
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    validation(
                        Algorithm::HS256,
                        config.issuer.as_deref(),
                        config.audience.as_deref(),
                    ),
                )
            }),
            rs256,
        })
    }

    /// Whether a local key verifies `alg`.
    pub(super) fn handles(&self, alg: Algorithm) -> bool {
        match alg {
            Algorithm::HS256 => self.hs256.is_some(),
            Algorithm::RS256 => self.rs256.is_some(),
            _ => false,
        }
    }

    /// The token's claims, once its signature and dates check out.
    pub(super) fn verify(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<Map<String, Value>, AuthError> {
        // The header only picks the key; `decode` then pins the algorithm,
        // so a token cannot choose a weaker one (or `none`, which
        // `decode_header` already refuses to parse).
        let (key, validation) = match (header.alg, &self.hs256, &self.rs256) {
            (Algorithm::HS256, Some((key, validation)), _)
            | (Algorithm::RS256, _, Some((key, validation))) => (key, validation),
            (Algorithm::HS256, None, _) => {
                return Err(AuthError::Algorithm(
                    "HS256 (this server verifies RS256 only)".into(),
                ))
            }
            (Algorithm::RS256, _, None) => {
                return Err(AuthError::Algorithm(
                    "RS256 (no public key configured)".into(),
                ))
            }
            (other, _, _) => return Err(AuthError::Algorithm(format!("{other:?}"))),
        };
        decode::<Map<String, Value>>(token, key, validation)
            .map(|data| data.claims)
            .map_err(|e| refusal(&e))
    }
}

/// The checks every verification applies: the algorithm pinned, `exp` and
/// `nbf` when present, and a configured `iss` / `aud` both required and
/// matched.
pub(super) fn validation(
    alg: Algorithm,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Validation {
    let mut validation = Validation::new(alg);
    // `exp` is checked whenever present but not demanded: s3db.js (jose)
    // accepts tokens without one, and clients written for it must work.
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.leeway = 5;
    match audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
        }
        None => validation.validate_aud = false,
    }
    if let Some(iss) = issuer {
        validation.set_issuer(&[iss]);
        validation.required_spec_claims.insert("iss".into());
    }
    validation
}

/// The precise reason for a `jsonwebtoken` refusal.
pub(super) fn refusal(e: &Error) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => AuthError::Algorithm("not accepted".into()),
        _ => AuthError::Malformed,
    }
}

/// Mints an HS256 token for `sub`, valid for `ttl_secs`, with extra claims.
///
/// # Errors
/// Encoding failed (it does not for HS256 with any secret).
pub fn mint_token(
    secret: &str,
    sub: &str,
    role: Option<&str>,
    ttl_secs: u64,
    extra: Map<String, Value>,
) -> Result<String, AuthError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut claims = extra;
    claims.insert("sub".into(), Value::from(sub));
    if let Some(role) = role {
        claims.insert("role".into(), Value::from(role));
    }
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now + ttl_secs));
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|_| AuthError::Malformed)
}
