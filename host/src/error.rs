//! The error codes clients see. Every error a client can cause is one of
//! these, sent as an `error` frame; the connection stays usable. Plugins
//! report the same codes: the WIT's `error-code` enum mirrors this one case
//! for case (`plugins::bindings` converts, and a unit test checks both
//! directions), so no code is ever matched from a string.

use std::fmt;

/// Error codes on the wire: the s3db.js set plus Switchboard's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The frame is not valid JSON (or not a JSON object).
    InvalidJson,
    /// The frame's `type` (or `method`, `event`) is not known.
    UnknownMessageType,
    /// The frame is missing a field or has one of the wrong type.
    BadRequest,
    /// The resource is not configured.
    ResourceNotFound,
    /// The record, walker or client does not exist.
    NotFound,
    /// A role list or guard refused.
    Forbidden,
    /// The connection sent too many requests in the window.
    RateLimitExceeded,
    /// Something broke on the server's side.
    InternalError,
    /// The frame is larger than allowed.
    PayloadTooLarge,
    /// The token is missing, malformed, expired or not trusted.
    Unauthorized,
    /// A plugin trapped, failed or returned an error.
    PluginError,
    /// A plugin ran past its deadline.
    Timeout,
    /// The record already exists.
    Conflict,
    /// The connection's token expires soon (a warning) or has expired.
    TokenExpired,
    /// A backing service (store, cluster link) is down; retry later.
    Unavailable,
}

impl ErrorCode {
    /// Every code, for metrics labels and docs.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidJson,
        ErrorCode::UnknownMessageType,
        ErrorCode::BadRequest,
        ErrorCode::ResourceNotFound,
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::RateLimitExceeded,
        ErrorCode::InternalError,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::PluginError,
        ErrorCode::Timeout,
        ErrorCode::Conflict,
        ErrorCode::TokenExpired,
        ErrorCode::Unavailable,
    ];

    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "INVALID_JSON",
            ErrorCode::UnknownMessageType => "UNKNOWN_MESSAGE_TYPE",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::PluginError => "PLUGIN_ERROR",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status matching the code, for the HTTP walker endpoint.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson | ErrorCode::BadRequest | ErrorCode::UnknownMessageType => 400,
            ErrorCode::Unauthorized | ErrorCode::TokenExpired => 401,
            ErrorCode::Unavailable => 503,
            ErrorCode::Forbidden => 403,
            ErrorCode::ResourceNotFound | ErrorCode::NotFound => 404,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Conflict => 409,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::Timeout => 504,
            ErrorCode::PluginError => 502,
            ErrorCode::InternalError => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error to report to one client: a code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ClientError {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// What went wrong, for a human.
    pub message: String,
}

impl ClientError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A missing or mistyped field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// A refusal.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
}
