//! The bus's link to the other nodes of a cluster.
//!
//! The bus stays the one place delivery happens; a [`Link`] (Redis, in
//! `cluster`) only carries what the other nodes must know: messages
//! published here, targeted sends to connections elsewhere, and the
//! changes of this node's interests, users and presence members. The bus
//! hands these over without waiting (in the order it made them, under its
//! own lock, so an "interest off" never overtakes the "on" before it), and
//! the link's worker sends them on; the bus never blocks on the network.
//! Events from other nodes come back in through [`super::Bus::remote`].

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{Envelope, Event, Member};

/// What the bus hands its link, in order.
#[derive(Debug)]
pub enum Forward {
    /// An event published to a channel here: the other nodes deliver it to
    /// their own subscribers, with their own filters.
    Publish {
        /// The channel.
        channel: String,
        /// The event (shared with local recipients).
        envelope: Arc<Envelope>,
    },
    /// A targeted send to these users' connections on other nodes.
    Users {
        /// The users.
        users: Vec<String>,
        /// What to deliver.
        envelope: Arc<Envelope>,
    },
    /// A targeted send to connections of other nodes (their ids say which).
    Clients {
        /// The connections.
        clients: Vec<String>,
        /// What to deliver.
        envelope: Arc<Envelope>,
    },
    /// This node gained its first (`on`) or lost its last interest in a
    /// channel: a subscriber or a presence member.
    Interest {
        /// The channel.
        channel: String,
        /// Gained or lost.
        on: bool,
    },
    /// A presence member joined (or changed its info) or left here.
    Member {
        /// The channel.
        channel: String,
        /// Who.
        member: Member,
        /// Joined (or updated) or left.
        present: bool,
    },
    /// Close these users' connections and these connections (an
    /// operator's disconnect), wherever they are.
    Disconnect {
        /// The users.
        users: Vec<String>,
        /// The connections (their ids say which node holds them).
        clients: Vec<String>,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// A user's first connection arrived here, or its last one left.
    User {
        /// The user.
        user: String,
        /// Arrived or left.
        here: bool,
    },
}

/// Why the other nodes cannot be reached or asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The link is down (Redis unreachable); local delivery goes on.
    #[error("the cluster link is down: {0}")]
    Down(String),
    /// Another node sent something this one cannot read.
    #[error("unreadable cluster data: {0}")]
    Corrupt(String),
}

impl From<LinkError> for crate::error::ClientError {
    fn from(e: LinkError) -> Self {
        crate::error::ClientError::new(crate::error::ErrorCode::Unavailable, e.to_string())
    }
}

/// A link to the other nodes.
pub trait Link: Send + Sync {
    /// This node's short id: the prefix of the ids of connections held
    /// here, by which a targeted send finds its node.
    fn node(&self) -> &str;

    /// Whether the other nodes can be reached now.
    fn is_up(&self) -> bool;

    /// Hands something over, without waiting. When the link is down (or
    /// its queue is full) publishes and sends are dropped and counted;
    /// interests, users and members are re-sent when it is back.
    fn forward(&self, forward: Forward);

    /// Resolves once everything forwarded before it has been sent (a
    /// resuming subscriber waits for its channel's subscription to hold
    /// before reading history, so nothing falls between the two).
    fn settled(&self) -> BoxFuture<'_, ()>;

    /// A channel's presence members on every node.
    ///
    /// # Errors
    /// The link is down.
    fn presence<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<Vec<Member>, LinkError>>;

    /// Creates a cluster-wide named topic (Daptin's); false when one of
    /// that name exists.
    ///
    /// # Errors
    /// The link is down.
    fn topic_create<'a>(
        &'a self,
        name: &'a str,
        topic: &'a Value,
    ) -> BoxFuture<'a, Result<bool, LinkError>>;

    /// Removes a named topic.
    ///
    /// # Errors
    /// The link is down.
    fn topic_remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), LinkError>>;

    /// Every named topic, by name.
    ///
    /// # Errors
    /// The link is down.
    fn topics(&self) -> BoxFuture<'_, Result<Vec<(String, Value)>, LinkError>>;
}

/// What another node sent this one.
#[derive(Debug)]
pub enum Remote {
    /// An event published to a channel there.
    Publish {
        /// The channel.
        channel: String,
        /// The event.
        event: Event,
    },
    /// A targeted send to users (their connections here).
    Users {
        /// The users.
        users: Vec<String>,
        /// The event.
        event: Event,
    },
    /// A targeted send to connections here.
    Clients {
        /// The connections.
        clients: Vec<String>,
        /// The event.
        event: Event,
    },
    /// Close these users' and these connections here.
    Disconnect {
        /// The users.
        users: Vec<String>,
        /// The connections.
        clients: Vec<String>,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

/// The node part of a connection id (`<secs>:<node><random>`).
pub fn node_of(client_id: &str) -> Option<&str> {
    let (_, rest) = client_id.split_once(':')?;
    rest.get(..NODE_LEN)
}

/// Length of a node's short id, in hex digits.
pub const NODE_LEN: usize = 8;
