//! The guard interface the policy consults. Guards are implemented by the
//! plugin host (WebAssembly components), but the policy only knows this
//! trait: it sits below the plugins, which call back into it for every host
//! call a plugin makes, so the dependency runs one way.

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use super::Actor;
use crate::bus::Filter;
use crate::error::ClientError;

/// What a guard is consulted about (the WIT `operation`, case for case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A client connects (target: the socket path).
    Connect,
    /// Reading a channel (subscribe, presence join / list) or subscribing
    /// to a resource.
    Subscribe,
    /// Writing to a channel (publish, a send to a channel).
    Publish,
    /// A send to users or client ids (target `direct`).
    Send,
    /// Reading one record.
    Get,
    /// Listing or replaying records.
    List,
    /// Inserting a record (also a publish to a resource-named channel).
    Create,
    /// Updating a record.
    Update,
    /// Deleting a record.
    Delete,
}

/// One question to the guards.
#[derive(Debug, Clone, Copy)]
pub struct GuardQuery<'a> {
    /// The operation.
    pub op: Operation,
    /// The channel, resource or socket path.
    pub target: &'a str,
    /// Who asks.
    pub actor: &'a Actor,
    /// The operation's payload (message, filter, record, `{"id"}`...).
    pub payload: &'a Value,
}

/// What the guards allowed, with conditions.
#[derive(Debug, Default, Clone)]
pub struct GuardOutcome {
    /// Only what matches reaches the caller (every guard's filter, AND-ed).
    pub filter: Option<Filter>,
    /// Fields to merge into the payload.
    pub patch: Map<String, Value>,
}

/// Why the guards refused.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A guard said no.
    #[error("{0}")]
    Denied(String),
    /// A guard failed, which counts as no (fail closed).
    #[error("guard `{0}` failed: {1}")]
    Failed(String, String),
}

impl From<GuardError> for ClientError {
    fn from(e: GuardError) -> Self {
        ClientError::forbidden(e.to_string())
    }
}

/// Consults the loaded guards.
pub trait Guards: Send + Sync {
    /// Asks every guard covering `query.op` on `query.target`. The first
    /// deny wins; filters combine (AND); patches merge in order.
    ///
    /// # Errors
    /// A guard denied or failed.
    fn check<'a>(
        &'a self,
        query: GuardQuery<'a>,
    ) -> BoxFuture<'a, Result<GuardOutcome, GuardError>>;
}
