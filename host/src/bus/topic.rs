//! What subscriptions address (typed topics) and which events they take
//! (event masks).

use super::{Event, Filter};

/// Event-mask bits: which events a subscription takes.
pub const OP_INSERT: u8 = 1;
/// Updates.
pub const OP_UPDATE: u8 = 2;
/// Deletes.
pub const OP_DELETE: u8 = 4;
/// Everything that is not a change (messages, notifications, presence).
pub const OP_OTHER: u8 = 0x80;
/// Every event.
pub const OPS_ALL: u8 = 0xff;

/// The mask bit of a change op name (`insert`...); none for unknown names.
pub fn op_mask(op: &str) -> Option<u8> {
    match op {
        "insert" => Some(OP_INSERT),
        "update" => Some(OP_UPDATE),
        "delete" => Some(OP_DELETE),
        _ => None,
    }
}

/// The mask bit of an event.
pub(super) fn op_bit(event: &Event) -> u8 {
    match event {
        Event::Change(c) => op_mask(c.op).unwrap_or(OP_OTHER),
        _ => OP_OTHER,
    }
}

/// What a subscription or a publish addresses. Client-named channels and
/// resources' change streams are separate namespaces: no name a client
/// chooses (a native channel, a jac `channel_id`, a Daptin `topicName`, a
/// scripted socket's channel) can address a resource's stream, however it
/// is spelled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// A pub/sub channel.
    Channel(String),
    /// A resource's change events (and, as in s3db.js, publishes to a
    /// channel of the resource's name).
    Resource(String),
}

impl Topic {
    /// A channel topic.
    pub fn channel(name: &str) -> Self {
        Topic::Channel(name.to_owned())
    }

    /// A resource's stream.
    pub fn resource(name: &str) -> Self {
        Topic::Resource(name.to_owned())
    }
}

/// One connection's subscription to one channel.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Only matching payloads or records are delivered.
    pub filter: Option<Filter>,
    /// Which events are delivered (`OP_*` bits).
    pub ops: u8,
}
