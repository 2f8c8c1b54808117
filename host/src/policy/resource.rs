//! Resource grants: the role list, the guards for the operation (and, for
//! by-id writes, the read guards too, so nothing a caller may not read can
//! be changed or deleted by it), and the protected-field rules that keep a
//! filter or a crafted key from becoming an oracle for hidden values.

use serde_json::{json, Map, Value};

use super::{Access, Operation, Policy};
use crate::bus::Filter;
use crate::config::ResourceConfig;
use crate::error::ClientError;

/// What a caller may do with a resource for one operation.
#[derive(Debug)]
pub struct Grant<'a> {
    /// The resource's configuration.
    pub config: &'a ResourceConfig,
    /// What the operation may reach or produce: the client's filter AND
    /// every guard's. By-id operations answer NOT_FOUND outside it.
    pub filter: Option<Filter>,
    /// Fields the guards merge into written data.
    pub patch: Map<String, Value>,
    /// Whether protected fields are removed from what the caller gets
    /// (always, except with full rights).
    pub strip: bool,
}

impl Grant<'_> {
    /// Whether `record` is inside the grant's filter.
    pub fn reaches(&self, record: &Value) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(record))
    }
}

impl Policy {
    /// Authorizes `op` on `resource`: its role list, the client's filter
    /// (which may not mention protected fields), the guards for `op` with
    /// `payload`, and for updates and deletes the `get` guards as well.
    ///
    /// # Errors
    /// RESOURCE_NOT_FOUND, BAD_REQUEST (filter shape), FORBIDDEN.
    pub async fn resource(
        &self,
        access: &Access<'_>,
        op: Operation,
        resource: &str,
        client_filter: &Value,
        payload: &Value,
    ) -> Result<Grant<'_>, ClientError> {
        let config = self.roles(access, resource)?;
        let client = match access.is_trusted() {
            // Plugins with full rights are not clients: their filters are
            // only parsed.
            true => Filter::from_value(client_filter).map_err(ClientError::bad_request)?,
            false => self.filter_limits().compile(client_filter)?,
        };
        if let (false, Some(filter)) = (access.is_trusted(), &client) {
            check_filter(config, filter)?;
        }
        let guard = self.guard(access, op, resource, payload).await?;
        let mut filter = Filter::and(client, guard.filter);
        if matches!(op, Operation::Update | Operation::Delete) {
            let id = payload.get("id").cloned().unwrap_or(Value::Null);
            let read = self
                .guard(access, Operation::Get, resource, &json!({ "id": id }))
                .await?;
            filter = Filter::both(filter, read.filter);
        }
        let filter = self.filter_limits().check(filter)?;
        Ok(Grant {
            config,
            filter,
            patch: guard.patch,
            strip: !access.is_trusted(),
        })
    }

    /// Refuses written keys that alias a protected path (`"meta.internal"`
    /// as a literal key beside a protected `meta.internal`): such a key
    /// would sit next to the hidden value and confuse every later read.
    ///
    /// # Errors
    /// FORBIDDEN naming the key.
    pub fn check_write(
        &self,
        access: &Access<'_>,
        config: &ResourceConfig,
        data: &Value,
    ) -> Result<(), ClientError> {
        if access.is_trusted() {
            return Ok(());
        }
        let Value::Object(map) = data else {
            return Ok(());
        };
        for key in map.keys().filter(|k| k.contains('.')) {
            if let Some(field) = protected_conflict(&config.protected, key) {
                return Err(ClientError::forbidden(format!(
                    "key `{key}` would alias the protected field `{field}`"
                )));
            }
        }
        Ok(())
    }
}

/// Refuses a client filter that tests a protected field, a path inside
/// one, or an object that contains one: any of those answers questions
/// about the hidden value (a password read back by range queries).
fn check_filter(config: &ResourceConfig, filter: &Filter) -> Result<(), ClientError> {
    for column in filter.columns() {
        if let Some(field) = protected_conflict(&config.protected, column) {
            return Err(ClientError::forbidden(format!(
                "filter column `{column}` touches the protected field `{field}`"
            )));
        }
    }
    Ok(())
}

/// The protected path `column` touches, if any: one is a prefix of the
/// other, segment by segment (`meta`, `meta.internal` and
/// `meta.internal.x` all touch `meta.internal`; `meta.public` does not).
pub fn protected_conflict<'a>(protected: &'a [String], column: &str) -> Option<&'a str> {
    protected
        .iter()
        .find(|path| {
            let mut a = path.split('.');
            let mut b = column.split('.');
            loop {
                match (a.next(), b.next()) {
                    (Some(x), Some(y)) if x == y => continue,
                    (Some(_), Some(_)) => return false,
                    _ => return true,
                }
            }
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::protected_conflict;

    #[test]
    fn conflicts_are_prefixes_by_segment() {
        let p = vec!["password".to_owned(), "meta.internal".to_owned()];
        assert_eq!(protected_conflict(&p, "password"), Some("password"));
        assert_eq!(protected_conflict(&p, "password.x"), Some("password"));
        assert_eq!(protected_conflict(&p, "meta"), Some("meta.internal"));
        assert_eq!(
            protected_conflict(&p, "meta.internal.deep"),
            Some("meta.internal")
        );
        assert_eq!(protected_conflict(&p, "meta.public"), None);
        assert_eq!(protected_conflict(&p, "passwords"), None);
        assert_eq!(protected_conflict(&p, "name"), None);
    }
}
