//! Several nodes on Redis, and per-channel options (history).

use serde::{Deserialize, Serialize};

/// Cluster membership. Without `redis_url` the node runs alone on the
/// embedded bus, and nothing here costs anything.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The Redis that carries the bus between nodes
    /// (`redis://127.0.0.1:6379`); none: a single node.
    pub redis_url: Option<String>,
    /// This node's id; random (8 hex digits) when none is given.
    pub node_id: Option<String>,
    /// How often the node tells the others it is alive.
    pub heartbeat_ms: u64,
    /// How long a node that stopped beating counts as alive: after that its
    /// presence members are removed everywhere (with leave events).
    pub node_timeout_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            node_id: None,
            heartbeat_ms: 2_000,
            node_timeout_ms: 8_000,
        }
    }
}

/// Options of the channels a pattern matches (`[channels."chat:*"]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelOptions {
    /// Messages kept for resuming (`subscribe` with `since`); 0: none.
    pub history_size: usize,
    /// How long a kept message stays; 0: as long as it fits.
    pub history_ttl_ms: u64,
}

impl ChannelOptions {
    /// Whether the channel keeps history at all.
    pub fn keeps_history(&self) -> bool {
        self.history_size > 0
    }
}
