//! Client payloads may not impersonate the server. Native and Daptin
//! clients get other clients' data wrapped (`message`, `direct`, `event`
//! frames), but jac-cloud clients get notifications as the bare data object
//! — so a payload shaped like a frame the server sends there (a
//! `connection` event, a walker reply, an error) would be indistinguishable
//! from the real one. Such payloads are refused wherever a client sends
//! them, in every dialect, since any channel may have jac subscribers.

use serde_json::Value;

use crate::error::ClientError;

/// `type`s of frames the server itself sends to bare-data (jac) clients.
const RESERVED_TYPES: [&str; 5] = ["connection", "event", "presence", "walker", "unsubscribed"];

/// Refuses a client-sent payload shaped like a server frame: an object
/// whose `type` is reserved, or, without a `type`, one carrying a walker
/// reply's `reports` or an error's `error`.
///
/// # Errors
/// BAD_REQUEST naming what is reserved.
pub fn check_client_payload(data: &Value) -> Result<(), ClientError> {
    let Value::Object(map) = data else {
        return Ok(());
    };
    match map.get("type") {
        Some(Value::String(kind)) if RESERVED_TYPES.contains(&kind.as_str()) => {
            Err(ClientError::bad_request(format!(
                "data of type `{kind}` is reserved for frames the server sends"
            )))
        }
        Some(_) => Ok(()),
        None if map.contains_key("reports") || map.contains_key("error") => {
            Err(ClientError::bad_request(
                "data shaped like a walker reply or an error frame is reserved for the server",
            ))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_client_payload;
    use serde_json::json;

    #[test]
    fn server_shapes_are_refused() {
        for bad in [
            json!({"type": "connection", "data": {"client_id": "x"}}),
            json!({"type": "walker", "error": "x"}),
            json!({"status": 200, "reports": [], "returns": null}),
            json!({"error": "Session expired", "code": "UNAUTHORIZED"}),
        ] {
            assert!(check_client_payload(&bad).is_err(), "{bad}");
        }
        for ok in [
            json!({"type": "chat", "data": {"error": "not top-level"}}),
            json!("text"),
            json!([1]),
            json!({"val": 1}),
        ] {
            assert!(check_client_payload(&ok).is_ok(), "{ok}");
        }
    }
}
