//! What a record may be, whichever backend keeps it: a JSON object with a
//! string `id` (made when missing), at most `max_record_bytes` of JSON; an
//! update merges top-level fields and cannot change the id; a by-id write
//! only touches a record the caller's grant reaches.

use serde_json::Value;

use super::{Predicate, StoreError};

/// Longest id, in bytes.
const MAX_ID: usize = 256;

/// An insert's record with its id (made when missing).
///
/// # Errors
/// Not an object, or a bad id.
pub(super) fn for_insert(record: Value) -> Result<(String, Value), StoreError> {
    let Value::Object(mut record) = record else {
        return Err(StoreError::BadRecord("record must be a JSON object".into()));
    };
    let id = match record.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().simple().to_string(),
        Some(Value::String(s)) => {
            check_id(s)?;
            s.clone()
        }
        Some(_) => return Err(bad_id()),
    };
    record.insert("id".into(), Value::String(id.clone()));
    Ok((id, Value::Object(record)))
}

/// Checks an id a write names: non-empty, at most [`MAX_ID`] bytes, no
/// NUL. PostgreSQL's text cannot hold a NUL, and with group commit a
/// statement it rejects would fail every write in the batch, so such an
/// id is refused here, before it reaches a batch (on both stores alike).
///
/// # Errors
/// A bad id.
pub(super) fn check_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.len() > MAX_ID || id.contains('\0') {
        return Err(bad_id());
    }
    Ok(())
}

fn bad_id() -> StoreError {
    StoreError::BadRecord(
        "`id` must be a non-empty string of at most 256 bytes, without NUL".into(),
    )
}

/// An update's patch, checked before any transaction.
///
/// # Errors
/// Not an object, or it changes the id.
pub(super) fn patch(id: &str, patch: Value) -> Result<serde_json::Map<String, Value>, StoreError> {
    let Value::Object(patch) = patch else {
        return Err(StoreError::BadRecord(
            "update data must be a JSON object".into(),
        ));
    };
    if patch.get("id").is_some_and(|v| v.as_str() != Some(id)) {
        return Err(StoreError::BadRecord("`id` cannot be changed".into()));
    }
    Ok(patch)
}

/// What an insert writes over `old`.
///
/// # Errors
/// The id is taken.
pub(super) fn insert_over(
    old: Option<Value>,
    id: &str,
    record: Value,
) -> Result<Option<Value>, StoreError> {
    match old {
        Some(_) => Err(StoreError::Exists(id.to_owned())),
        None => Ok(Some(record)),
    }
}

/// What an update writes over `old`.
///
/// # Errors
/// Missing (or not allowed) record, or a result outside `allowed`.
pub(super) fn update_over(
    old: Option<Value>,
    id: &str,
    patch: serde_json::Map<String, Value>,
    allowed: &Predicate,
) -> Result<Option<Value>, StoreError> {
    let Some(Value::Object(mut record)) = old.filter(|r| allowed(r)) else {
        return Err(StoreError::NotFound(id.to_owned()));
    };
    record.extend(patch);
    let record = Value::Object(record);
    if !allowed(&record) {
        return Err(StoreError::OutOfScope);
    }
    Ok(Some(record))
}

/// What a delete leaves of `old` (nothing).
///
/// # Errors
/// Missing (or not allowed) record.
pub(super) fn delete_over(
    old: Option<Value>,
    id: &str,
    allowed: &Predicate,
) -> Result<Option<Value>, StoreError> {
    match old.filter(|r| allowed(r)) {
        Some(_) => Ok(None),
        None => Err(StoreError::NotFound(id.to_owned())),
    }
}

/// A record's JSON, refused when over `limit` bytes.
///
/// # Errors
/// Too large.
pub(super) fn encode(record: &Value, limit: usize) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(record).unwrap_or_default();
    if json.len() > limit {
        return Err(StoreError::TooLarge {
            size: json.len(),
            limit,
        });
    }
    Ok(json)
}

/// A change op's name as stored, back as the static name.
pub(super) fn op(name: &str) -> &'static str {
    match name {
        "insert" => "insert",
        "update" => "update",
        _ => "delete",
    }
}
