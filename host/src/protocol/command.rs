//! The one command set every dialect decodes into, and the replies the
//! core produces for dialects to encode.

use serde_json::Value;

use crate::bus::Member;

/// What a subscription is to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A pub/sub channel.
    Channel(String),
    /// A resource's change events.
    Resource(String),
}

impl Target {
    /// The channel or resource name.
    pub fn name(&self) -> &str {
        match self {
            Target::Channel(n) | Target::Resource(n) => n,
        }
    }
}

/// Where a resuming subscription picks up.
#[derive(Debug, Clone, PartialEq)]
pub enum Since {
    /// After this change-log sequence number (resources).
    Seq(u64),
    /// After this history position (channels).
    Position(crate::bus::Position),
}

/// One decoded request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The client's request id (`requestId`, Daptin's `id`), echoed back.
    pub id: Option<Value>,
    /// What to do.
    pub command: Command,
    /// The dialect's own name for the request (Daptin's `method`), echoed
    /// in its reply.
    pub method: Option<String>,
}

impl Request {
    /// A request with no dialect-specific method name.
    pub fn new(id: Option<Value>, command: Command) -> Self {
        Self {
            id,
            command,
            method: None,
        }
    }
}

/// Everything a client can ask for, whatever its dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Liveness check.
    Ping,
    /// Resend the connection's own info (jac-cloud `connection`).
    Info,
    /// Change identity in-band; `None` returns to anonymous.
    Auth {
        /// The new token.
        token: Option<String>,
        /// Whether a refused token drops the connection to the anonymous
        /// identity (jac-cloud's `change_user`) instead of keeping the old
        /// one and answering UNAUTHORIZED.
        anonymous_on_failure: bool,
    },
    /// Subscribe to a channel or resource.
    Subscribe {
        /// What to.
        target: Target,
        /// The client's id for this subscription (rtbdp), so several
        /// subscriptions to one table can coexist and end separately.
        key: Option<String>,
        /// An equality filter on payloads or records.
        filter: Value,
        /// Which change events (resources only); empty means all.
        events: Vec<String>,
        /// Resume after this point: a change's sequence number (resources)
        /// or a history position (channels that keep history).
        since: Option<Since>,
    },
    /// Stop a subscription.
    Unsubscribe {
        /// What from (ignored when `key` names the subscription).
        target: Target,
        /// The subscription's client id (rtbdp).
        key: Option<String>,
    },
    /// Publish to a channel.
    Publish {
        /// Where.
        channel: String,
        /// The payload.
        message: Value,
    },
    /// Send directly to users, clients and channels.
    Send {
        /// Target user ids.
        users: Vec<String>,
        /// Target client ids.
        clients: Vec<String>,
        /// Target channels.
        channels: Vec<String>,
        /// The payload.
        data: Value,
    },
    /// Join a channel's presence list.
    PresenceJoin {
        /// Which channel.
        channel: String,
        /// Metadata others see.
        info: Value,
    },
    /// Leave a channel's presence list.
    PresenceLeave {
        /// Which channel.
        channel: String,
    },
    /// List a channel's presence.
    PresenceList {
        /// Which channel.
        channel: String,
    },
    /// Call a walker.
    Walker {
        /// Its name.
        name: String,
        /// The walker's context.
        context: Value,
        /// Whether the caller wants the reply (jac-cloud's `response`).
        respond: bool,
    },
    /// Create a named topic (Daptin).
    TopicCreate {
        /// Its name.
        name: String,
    },
    /// Remove a named topic (Daptin).
    TopicDestroy {
        /// Its name.
        name: String,
    },
    /// List topics: created ones and one per resource (Daptin).
    TopicList,
    /// Describe a topic (Daptin).
    TopicGet {
        /// Its name.
        name: String,
    },
    /// Read one record.
    Get {
        /// The resource.
        resource: String,
        /// The record id.
        id: String,
    },
    /// List records.
    List {
        /// The resource.
        resource: String,
        /// Equality filter.
        filter: Value,
        /// Page size.
        limit: Option<usize>,
        /// Continue after this id.
        cursor: Option<String>,
    },
    /// Insert a record.
    Insert {
        /// The resource.
        resource: String,
        /// The record.
        data: Value,
    },
    /// Merge fields into a record.
    Update {
        /// The resource.
        resource: String,
        /// The record id.
        id: String,
        /// Fields to change.
        data: Value,
    },
    /// Delete a record.
    Delete {
        /// The resource.
        resource: String,
        /// The record id.
        id: String,
    },
    /// Current rows matching a filter.
    Replay {
        /// The resource.
        resource: String,
        /// Equality filter.
        filter: Value,
        /// At most this many rows.
        limit: Option<usize>,
    },
}

/// Something an identity change took away: re-authorized against the new
/// identity, it was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Revoked {
    /// What it was.
    pub what: Held,
    /// The reason the policy gave.
    pub reason: String,
}

/// A subscription or presence entry a connection holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    /// A subscription (with its client id, for rtbdp's keyed ones).
    Subscription(Target, Option<String>),
    /// A place on a channel's presence list.
    Presence(String),
}

/// What the core answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// To `Ping`.
    Pong,
    /// To `Info`.
    Info,
    /// To `Auth`: the new user object (null when anonymous), and what
    /// the new identity may no longer hold.
    Authenticated {
        /// The user as clients see it.
        user: Value,
        /// Subscriptions and presence entries dropped by the change.
        revoked: Vec<Revoked>,
    },
    /// To `Subscribe`.
    Subscribed {
        /// What to.
        target: Target,
        /// The effective filter (client's AND guard's).
        filter: Value,
        /// The events delivered.
        events: Vec<String>,
        /// For `since`: whether every missed event could be replayed.
        recovered: Option<bool>,
        /// For a channel that keeps history: its newest position.
        position: Option<crate::bus::Position>,
    },
    /// To `Unsubscribe`.
    Unsubscribed {
        /// What from.
        target: Target,
    },
    /// To `Publish`.
    Published {
        /// The channel.
        channel: String,
        /// How many connections it reached.
        delivered: usize,
        /// Its place in the channel's history, when the channel keeps one.
        position: Option<crate::bus::Position>,
    },
    /// To `Send`.
    Sent {
        /// How many connections it reached.
        delivered: usize,
    },
    /// To `PresenceJoin`.
    Joined {
        /// The channel.
        channel: String,
    },
    /// To `PresenceLeave`.
    Left {
        /// The channel.
        channel: String,
        /// Whether the connection was on the list.
        was_present: bool,
    },
    /// To `PresenceList`.
    Presence {
        /// The channel.
        channel: String,
        /// Who is there.
        members: Vec<Member>,
    },
    /// To `Walker`.
    Walker {
        /// The walker's name.
        name: String,
        /// HTTP-like status.
        status: u16,
        /// Reported values.
        reports: Vec<Value>,
        /// The return value.
        returns: Value,
    },
    /// To topic commands: one topic's description.
    Topic {
        /// The topic as clients see it.
        info: Value,
    },
    /// To `TopicList`.
    Topics {
        /// Every topic.
        topics: Vec<Value>,
    },
    /// To `Replay`: the rows and the sequence number they are current as of.
    Replayed {
        /// The resource.
        resource: String,
        /// The rows.
        rows: Vec<Value>,
        /// Each row's last change sequence number.
        seqs: Vec<u64>,
        /// Subscribe with `since` this to continue without a gap.
        seq: u64,
    },
    /// Missed events replayed after a resumed subscription's reply.
    Resumed {
        /// The subscription reply.
        subscribed: Box<Reply>,
        /// The missed events, oldest first.
        missed: Vec<crate::bus::Event>,
    },
    /// To reads and writes: a record, a list, or a deleted id.
    Data {
        /// The resource.
        resource: String,
        /// What the operation produced.
        data: Value,
        /// For lists: where the next page starts.
        cursor: Option<String>,
    },
}
