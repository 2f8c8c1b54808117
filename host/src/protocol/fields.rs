//! Field readers shared by the dialects' decoders, so every dialect words
//! a missing or mistyped field the same way.

use serde_json::{Map, Value};

use crate::bus::type_name;
use crate::error::ClientError;

/// A JSON object frame.
pub type Obj = Map<String, Value>;

/// A required string field.
///
/// # Errors
/// Missing, or not a non-empty string.
pub fn req_str(obj: &Obj, key: &str) -> Result<String, ClientError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ClientError::bad_request(format!(
            "`{key}` must not be empty"
        ))),
        Some(other) => Err(ClientError::bad_request(format!(
            "`{key}` must be a string, got {}",
            type_name(other)
        ))),
        None => Err(ClientError::bad_request(format!("missing `{key}`"))),
    }
}

/// A required channel name: a non-empty string without control characters
/// (those are reserved for the host's internal channels).
///
/// # Errors
/// Missing, empty, not a string, or containing control characters.
pub fn req_channel(obj: &Obj, key: &str) -> Result<String, ClientError> {
    let name = req_str(obj, key)?;
    check_channel(&name, key)?;
    Ok(name)
}

/// Longest channel (and Daptin topic) name, in bytes: names are kept for
/// as long as anyone subscribes, so they are bounded like everything else.
pub const MAX_CHANNEL_BYTES: usize = 256;

/// Refuses channel names with control characters or over
/// [`MAX_CHANNEL_BYTES`].
///
/// # Errors
/// The name breaks either rule.
pub fn check_channel(name: &str, key: &str) -> Result<(), ClientError> {
    if name.chars().any(char::is_control) {
        return Err(ClientError::bad_request(format!(
            "`{key}` must not contain control characters"
        )));
    }
    if name.len() > MAX_CHANNEL_BYTES {
        return Err(ClientError::bad_request(format!(
            "`{key}` is {} bytes; at most {MAX_CHANNEL_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

/// An optional string field.
///
/// # Errors
/// Present but not a string (null counts as absent).
pub fn opt_str(obj: &Obj, key: &str) -> Result<Option<String>, ClientError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ClientError::bad_request(format!(
            "`{key}` must be a string, got {}",
            type_name(other)
        ))),
    }
}

/// An optional id: a string, or a number turned into one.
///
/// # Errors
/// Present but neither.
pub fn id_field(obj: &Obj, key: &str) -> Result<Option<String>, ClientError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(ClientError::bad_request(format!(
            "`{key}` must be a non-empty string or a number, got {}",
            type_name(other)
        ))),
    }
}

/// An optional list of strings (a lone string counts as a list of one).
///
/// # Errors
/// Present but not strings.
pub fn str_list(obj: &Obj, key: &str) -> Result<Vec<String>, ClientError> {
    let bad = || ClientError::bad_request(format!("`{key}` must be a list of strings"));
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// An optional non-negative integer.
///
/// # Errors
/// Present but not one.
pub fn opt_u64(obj: &Obj, key: &str) -> Result<Option<u64>, ClientError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ClientError::bad_request(format!("`{key}` must be a non-negative integer"))
        }),
    }
}

/// An optional field of any JSON type, null when absent.
pub fn any(obj: &Obj, key: &str) -> Value {
    obj.get(key).cloned().unwrap_or(Value::Null)
}

/// Puts `requestId` on a reply when the request had one.
pub fn with_request_id(mut frame: Value, request_id: Option<&Value>) -> Value {
    if let (Some(id), Value::Object(map)) = (request_id, &mut frame) {
        map.insert("requestId".into(), id.clone());
    }
    frame
}

/// Unix milliseconds as an RFC 3339 timestamp, as s3db.js sends them.
pub fn iso_time(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(time).to_string()
}
