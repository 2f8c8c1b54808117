//! Who a connection is: the identity a verified token or API key stands
//! for, with its roles read from wherever its issuer puts them.

use std::sync::{Arc, LazyLock, OnceLock};

use serde_json::{Map, Value};

use crate::config::ApiKeyIdentity;

/// Who a connection is. Anonymous connections have no user id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The `sub` claim or API-key id.
    pub user_id: Option<String>,
    /// The first role (what guards and clients see as `role`).
    pub role: Option<String>,
    /// Every role (a provider may give several: Keycloak's
    /// `realm_access.roles`); role lists accept any of them.
    pub roles: Vec<String>,
    /// Every claim, for guards (`tenant`, `scopes`...).
    pub claims: Map<String, Value>,
    /// When the token stops being valid (its `exp`, Unix milliseconds); an
    /// open connection is closed then unless it sends a fresh token.
    pub expires_at_ms: Option<u64>,
    /// `claims` as JSON text, made once: every plugin call hands the
    /// caller's claims to the guest as text, and serializing them per call
    /// was a measurable part of a walker round trip.
    pub claims_text: ClaimsText,
}

/// The cached JSON text of an identity's claims (see
/// [`Identity::claims_json`]). Not part of what an identity is: two
/// identities with the same claims are equal whether or not either has
/// made its text yet.
#[derive(Clone, Default)]
pub struct ClaimsText(OnceLock<String>);

impl PartialEq for ClaimsText {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for ClaimsText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

impl Identity {
    /// The anonymous identity.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// This identity behind an `Arc`. Every plain anonymous identity is the
    /// same one, shared: anonymous connections are the many (public feeds,
    /// idle tabs), and each would otherwise hold its own copy of nothing.
    pub fn into_shared(self) -> Arc<Self> {
        static ANONYMOUS: LazyLock<Arc<Identity>> = LazyLock::new(|| Arc::new(Identity::default()));
        if self == Self::default() {
            ANONYMOUS.clone()
        } else {
            Arc::new(self)
        }
    }

    /// The claims as a JSON object's text, serialized on first use. The
    /// claims are fixed once an identity is made (a new token makes a new
    /// identity), so the text never goes stale.
    pub fn claims_json(&self) -> &str {
        self.claims_text
            .0
            .get_or_init(|| serde_json::to_string(&self.claims).unwrap_or_else(|_| "{}".into()))
    }

    /// Whether no token backs this identity.
    pub fn is_anonymous(&self) -> bool {
        self.user_id.is_none()
    }

    /// Whether it holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
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
                "sub" | "role" | "exp" | "iat" | "nbf" | "aud" | "iss" | "jti" | "azp"
            ) {
                user.insert(key.clone(), value.clone());
            }
        }
        Value::Object(user)
    }

    /// The identity verified `claims` describe, with roles at `role_claim`
    /// (a dotted path; `role` when none is given).
    pub(super) fn from_claims(claims: Map<String, Value>, role_claim: Option<&str>) -> Self {
        let user_id = claims.get("sub").and_then(value_as_string);
        let path = role_claim.unwrap_or("role");
        let roles = lookup(&claims, path).map(roles_of).unwrap_or_default();
        let expires_at_ms = claims
            .get("exp")
            .and_then(Value::as_f64)
            .map(|secs| (secs.max(0.0) * 1000.0) as u64);
        Self {
            user_id,
            role: roles.first().cloned(),
            roles,
            claims,
            expires_at_ms,
            claims_text: ClaimsText::default(),
        }
    }

    pub(super) fn from_api_key(key: &ApiKeyIdentity) -> Self {
        let mut claims: Map<String, Value> = key.claims.clone().into_iter().collect();
        claims.insert("sub".into(), Value::String(key.id.clone()));
        if let Some(role) = &key.role {
            claims.insert("role".into(), Value::String(role.clone()));
        }
        Self {
            user_id: Some(key.id.clone()),
            role: key.role.clone(),
            roles: key.role.iter().cloned().collect(),
            claims,
            expires_at_ms: None,
            claims_text: ClaimsText::default(),
        }
    }
}

/// The claim at a dotted path (a literal key with dots wins).
fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let first = claims.get(parts.next()?)?;
    parts.try_fold(first, |v, key| v.get(key))
}

/// Roles from a claim: a string, or a list of strings.
fn roles_of(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().filter_map(value_as_string).collect(),
        other => value_as_string(other).into_iter().collect(),
    }
}

fn value_as_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::Identity;
    use serde_json::json;

    #[test]
    fn roles_come_from_the_configured_path() {
        let claims = json!({"sub": "k", "realm_access": {"roles": ["admin", "user"]}});
        let id = Identity::from_claims(
            claims.as_object().cloned().unwrap_or_default(),
            Some("realm_access.roles"),
        );
        assert_eq!(id.roles, ["admin", "user"]);
        assert_eq!(id.role.as_deref(), Some("admin"));
        assert!(id.has_role("user"));
        let plain = json!({"sub": "a", "role": "user"});
        let id = Identity::from_claims(plain.as_object().cloned().unwrap_or_default(), None);
        assert_eq!(id.roles, ["user"]);
    }
}
