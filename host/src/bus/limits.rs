//! What one connection may hold on the bus, and what the bus refuses.

/// How much one connection may hold on the bus.
#[derive(Debug, Clone, Copy)]
pub struct BusLimits {
    /// Events queued for it before it is a slow consumer.
    pub queue_events: usize,
    /// Bytes of events queued for it before it is a slow consumer.
    pub queue_bytes: usize,
    /// Topics it may subscribe to.
    pub subscriptions: usize,
    /// Presence lists it may be on.
    pub presence: usize,
    /// Largest presence info, in bytes of JSON.
    pub presence_info_bytes: usize,
}

impl BusLimits {
    /// The limits from configuration.
    pub fn from_config(limits: &crate::config::Limits) -> Self {
        Self {
            queue_events: limits.outbound_queue,
            queue_bytes: limits.outbound_queue_bytes,
            subscriptions: limits.max_subscriptions,
            presence: limits.max_presence,
            presence_info_bytes: limits.max_presence_info_bytes,
        }
    }
}

/// What the bus refuses a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// It is not (or no longer) registered.
    #[error("the connection is gone")]
    Gone,
    /// It holds as many subscriptions as allowed.
    #[error("at most {0} subscriptions per connection (limits.max_subscriptions)")]
    Subscriptions(usize),
    /// It is on as many presence lists as allowed.
    #[error("at most {0} presence lists per connection (limits.max_presence)")]
    Presence(usize),
    /// Its presence info is too large.
    #[error("presence info is {0} bytes; at most {1} (limits.max_presence_info_bytes)")]
    InfoTooLarge(usize, usize),
}

impl From<BusError> for crate::error::ClientError {
    fn from(e: BusError) -> Self {
        let code = match e {
            BusError::InfoTooLarge(..) => crate::error::ErrorCode::PayloadTooLarge,
            _ => crate::error::ErrorCode::BadRequest,
        };
        crate::error::ClientError::new(code, e.to_string())
    }
}
