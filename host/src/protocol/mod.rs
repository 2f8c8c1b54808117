//! Protocols: every dialect decodes its frames into one [`Command`] set
//! and encodes [`Reply`]s and bus events its own way, so the core handles
//! each operation once whichever system's client sent it.

mod command;
pub mod daptin;
pub mod fields;
pub mod jac;
pub mod native;
pub mod rtbdp;

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;

pub use command::{Command, Held, Reply, Request, Revoked, Since, Target};

use crate::auth::Identity;
use crate::bus::Envelope;
use crate::error::ClientError;

/// Facts about a connection that greetings and replies need.
#[derive(Debug, Clone)]
pub struct ConnInfo<'a> {
    /// The connection's id.
    pub client_id: &'a str,
    /// Who it is.
    pub identity: &'a Identity,
    /// The query string's pairs.
    pub query: &'a [(String, String)],
}

/// A failed frame: the error plus whatever request id could be read, so the
/// client can still match the error to its request.
#[derive(Debug)]
pub struct DecodeError {
    /// The request id, when the frame had a readable one.
    pub request_id: Option<Value>,
    /// What was wrong.
    pub error: ClientError,
}

/// One wire dialect.
pub trait Dialect: Send + Sync + 'static {
    /// Index into an envelope's encoding cache; unique per dialect.
    fn id(&self) -> usize;
    /// A short name for logs.
    fn name(&self) -> &'static str;
    /// Frames sent as soon as the connection is accepted.
    fn greeting(&self, conn: &ConnInfo<'_>) -> Vec<Value>;
    /// Decodes one text frame into requests (some dialects pack several).
    ///
    /// # Errors
    /// The frame is not JSON, or not a request this dialect knows.
    fn decode(&self, text: &str) -> Result<Vec<Request>, DecodeError>;
    /// Whether a channel named like a resource means that resource's
    /// change events (Daptin's system topics).
    fn resource_topics(&self) -> bool {
        false
    }
    /// Commands applied right after the greeting (jac-cloud joins its
    /// channel).
    fn start(&self, _conn: &ConnInfo<'_>) -> Vec<Command> {
        Vec::new()
    }
    /// The frames answering `request` (none, one, or several).
    fn reply(&self, request: &Request, reply: &Reply, conn: &ConnInfo<'_>) -> Vec<Value>;
    /// The frame reporting an error for `request_id`.
    fn error(
        &self,
        request_id: Option<&Value>,
        request: Option<&Request>,
        error: &ClientError,
    ) -> Value;
    /// A bus event as this dialect shows it; `None` hides it.
    fn event(&self, envelope: &Envelope) -> Option<Value>;
    /// The frame telling the client that an identity change took a
    /// subscription or presence entry away.
    fn revoked(&self, revoked: &Revoked) -> Value;
}

/// Encodes a JSON value as a text frame.
pub fn to_frame(value: &Value) -> Utf8Bytes {
    // serde_json writing into a buffer, not `Display` (which goes through
    // the formatter a piece at a time).
    Utf8Bytes::from(serde_json::to_string(value).unwrap_or_default())
}

/// Encodes `envelope` for `dialect`, once per envelope and dialect.
pub fn encode_event(dialect: &dyn Dialect, envelope: &Envelope) -> Option<Utf8Bytes> {
    envelope.encoded(dialect.id(), |env| dialect.event(env).map(|v| to_frame(&v)))
}

#[cfg(test)]
mod tests;
