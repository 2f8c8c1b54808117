//! Equality filters (`{"channel": "general"}`), evaluated natively per
//! event so that guard filters need no plugin call per recipient.

use serde_json::{Map, Value};

/// An AND of field equalities. Field names may be dotted paths
/// (`"meta.tenant"`); a list value matches any of its items.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter(Map<String, Value>);

impl Filter {
    /// A filter from a JSON value: an object, or null for "match all".
    ///
    /// # Errors
    /// The value is neither an object nor null.
    pub fn from_value(value: &Value) -> Result<Option<Self>, String> {
        match value {
            Value::Null => Ok(None),
            Value::Object(map) if map.is_empty() => Ok(None),
            Value::Object(map) => Ok(Some(Self(map.clone()))),
            other => Err(format!(
                "filter must be an object, got {}",
                type_name(other)
            )),
        }
    }

    /// Combines two filters: both must match. The guard's filter wins on a
    /// shared key, since a client must not widen what a guard allowed.
    pub fn and(client: Option<Self>, guard: Option<Self>) -> Option<Self> {
        match (client, guard) {
            (None, g) => g,
            (c, None) => c,
            (Some(mut c), Some(g)) => {
                c.0.extend(g.0);
                Some(c)
            }
        }
    }

    /// Whether `record` matches every field.
    pub fn matches(&self, record: &Value) -> bool {
        self.0.iter().all(|(path, expected)| {
            let actual = lookup(record, path);
            match (expected, actual) {
                (Value::Array(options), Some(actual)) if !actual.is_array() => {
                    options.iter().any(|o| o == actual)
                }
                (expected, Some(actual)) => expected == actual,
                (Value::Null, None) => true,
                (_, None) => false,
            }
        })
    }

    /// The filter as JSON, for replies.
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

fn lookup<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = record.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(record, |v, key| v.get(key))
}

/// A JSON value's kind, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_paths_and_lists() {
        let f = Filter::from_value(&json!({"a": 1, "m.t": "x", "k": ["p", "q"]}))
            .unwrap()
            .unwrap();
        assert!(f.matches(&json!({"a": 1, "m": {"t": "x"}, "k": "q"})));
        assert!(!f.matches(&json!({"a": 2, "m": {"t": "x"}, "k": "q"})));
        assert!(!f.matches(&json!({"a": 1, "m": {"t": "x"}, "k": "z"})));
        assert!(!f.matches(&json!({"a": 1})));
    }

    #[test]
    fn guard_filter_wins_on_shared_keys() {
        let c = Filter::from_value(&json!({"tenant": "evil", "x": 1})).unwrap();
        let g = Filter::from_value(&json!({"tenant": "acme"})).unwrap();
        let f = Filter::and(c, g).unwrap();
        assert!(f.matches(&json!({"tenant": "acme", "x": 1})));
        assert!(!f.matches(&json!({"tenant": "evil", "x": 1})));
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(Filter::from_value(&json!([1])).is_err());
        assert!(Filter::from_value(&json!(null)).unwrap().is_none());
    }
}
