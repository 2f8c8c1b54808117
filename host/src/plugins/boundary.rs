//! The WIT JSON boundary: free-form values cross the plugin interface as
//! JSON text (see `wit/plugin.wit`), so everything a plugin hands back is
//! untrusted text the host parses here — walker reports and returns, guard
//! filters and patches. A guard's filter or patch that does not parse makes
//! the guard fail (closed), never silently widens what a caller gets.

use serde_json::{Map, Value};

use crate::bus::Filter;

/// A walker's reported or returned value: JSON when it parses, else the
/// text itself as a string.
pub fn reply_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// A guard's `filter` verdict as a filter (none: `{}` matches everything).
///
/// # Errors
/// Not JSON, or not a filter's shape.
pub fn guard_filter(text: &str) -> Result<Option<Filter>, String> {
    let value = serde_json::from_str::<Value>(text).map_err(|e| e.to_string())?;
    Filter::from_value(&value)
}

/// A guard's `patch` verdict.
///
/// # Errors
/// Not a JSON object.
pub fn guard_patch(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(patch)) => Ok(patch),
        Ok(_) => Err("a patch must be a JSON object".into()),
        Err(e) => Err(e.to_string()),
    }
}
