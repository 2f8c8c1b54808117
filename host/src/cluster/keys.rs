//! Redis key and channel names. Every key of one channel shares the
//! channel's name as its hash tag (`{...}`), so in Redis Cluster a
//! channel's pub/sub, presence and history live on one shard and its Lua
//! scripts may touch them together.

/// Sharded pub/sub channel carrying one bus channel's events.
pub(super) fn channel(name: &str) -> String {
    format!("sb:c:{{{name}}}")
}

/// The bus channel a sharded pub/sub channel carries, if it is one.
pub(super) fn channel_name(key: &str) -> Option<&str> {
    key.strip_prefix("sb:c:{")?.strip_suffix('}')
}

/// A node's inbox: targeted sends to its connections.
pub(super) fn inbox(node: &str) -> String {
    format!("sb:n:{{{node}}}")
}

/// The set of nodes that ever joined (and were not reaped).
pub(super) const NODES: &str = "sb:nodes";

/// Exists while a node beats (expires `node_timeout_ms` after its last).
pub(super) fn alive(node: &str) -> String {
    format!("sb:alive:{node}")
}

/// Held by the node reaping a dead one.
pub(super) fn reaping(node: &str) -> String {
    format!("sb:reap:{node}")
}

/// The nodes a user has connections on.
pub(super) fn user(user: &str) -> String {
    format!("sb:u:{user}")
}

/// The users a node has connections of.
pub(super) fn node_users(node: &str) -> String {
    format!("sb:nu:{node}")
}

/// A channel's presence members, by connection id.
pub(super) fn presence(channel: &str) -> String {
    format!("sb:p:{{{channel}}}")
}

/// A node's presence members, by `connection \0 channel`.
pub(super) fn node_presence(node: &str) -> String {
    format!("sb:np:{node}")
}

/// The field of a member in its node's presence hash.
pub(super) fn member_field(client_id: &str, channel: &str) -> String {
    format!("{client_id}\0{channel}")
}

/// Daptin's named topics.
pub(super) const TOPICS: &str = "sb:topics";

/// A channel's history stream, offset counter and epoch.
pub(super) fn history(channel: &str) -> [String; 3] {
    [
        format!("sb:h:{{{channel}}}"),
        format!("sb:ho:{{{channel}}}"),
        format!("sb:he:{{{channel}}}"),
    ]
}
