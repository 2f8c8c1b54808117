//! JWT verification (HS256 with a shared secret, RS256 with a public key)
//! and dev-token minting, on `jsonwebtoken`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde_json::{Map, Value};

use super::AuthError;
use crate::config::AuthConfig;

/// Checks signatures and the registered claims. Each algorithm is there
/// only when the operator configured (or the server generated) its key: an
/// RS256-only server refuses every HS256 token.
pub(super) struct JwtVerifier {
    hs256: Option<(DecodingKey, Validation)>,
    rs256: Option<(DecodingKey, Validation)>,
}

impl JwtVerifier {
    pub(super) fn new(config: &AuthConfig, hs256_secret: Option<&str>) -> Result<Self, AuthError> {
        let rs256 = match &config.jwt_public_key_pem {
            Some(pem) => Some((
                DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| AuthError::BadKey(e.to_string()))?,
                validation(Algorithm::RS256, config),
            )),
            None => None,
        };
        Ok(Self {
            hs256: hs256_secret.map(|secret| {
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    validation(Algorithm::HS256, config),
                )
            }),
            rs256,
        })
    }

    /// The token's claims, once its signature and dates check out.
    pub(super) fn verify(&self, token: &str) -> Result<Map<String, Value>, AuthError> {
        // The header is read first only to pick the key; `decode` then pins
        // the algorithm, so a token cannot choose a weaker one (or `none`,
        // which `decode_header` already refuses to parse).
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
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
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }
}

fn validation(alg: Algorithm, config: &AuthConfig) -> Validation {
    let mut validation = Validation::new(alg);
    // `exp` is checked whenever present but not demanded: s3db.js (jose)
    // accepts tokens without one, and clients written for it must work.
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.leeway = 5;
    // A configured audience or issuer is demanded, not only compared: a
    // token without the claim is refused.
    match &config.audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
        }
        None => validation.validate_aud = false,
    }
    if let Some(iss) = &config.issuer {
        validation.set_issuer(&[iss]);
        validation.required_spec_claims.insert("iss".into());
    }
    validation
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
    .map_err(|e| AuthError::Invalid(e.to_string()))
}
