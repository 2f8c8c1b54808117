//! Several nodes on Redis: the bus's [`Link`] to the other nodes.
//!
//! Each bus channel is a Redis 7 *sharded* pub/sub channel (`SPUBLISH` /
//! `SSUBSCRIBE sb:c:{name}`), and a node subscribes only to the channels
//! it has local subscribers or presence members on (counted by the bus),
//! so a message costs Redis one send per interested node, not per node.
//! Targeted sends go to the inboxes of the nodes that hold their targets:
//! a connection id names its node, and a user → nodes map (kept by each
//! node for its own users, cleaned up when a node stops beating) names a
//! user's. Presence lists live in Redis hashes; channel history in Redis
//! Streams (see [`history`]). Filters and guard filters are evaluated on the
//! receiving node, against the subscriptions it holds: no plugin call per
//! recipient.
//!
//! The link never makes the bus wait: forwards go through one bounded
//! queue to a worker that pipelines them to Redis in order. When Redis is
//! unreachable the client reconnects by itself; publishes are then
//! delivered locally and refused to the client with UNAVAILABLE, and
//! once it is back the node re-subscribes and re-registers its users and
//! members ([`nodes`]).

mod history;
pub(crate) mod keys;
mod link;
mod nodes;
mod wire;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Builder, ClientLike, ReconnectPolicy};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::bus::link::{Forward, Link, NODE_LEN};
use crate::bus::Bus;
use crate::config::ClusterConfig;
use crate::metrics::Metrics;

pub use history::RedisHistory;

/// Forwards waiting for the worker; past this, publishes are dropped
/// (counted) rather than held: a node must not buffer without bound for a
/// Redis that cannot keep up.
const QUEUE: usize = 65_536;

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The URL is not a Redis URL.
    #[error("cluster.redis_url: {0}")]
    Url(String),
    /// Redis did not answer.
    #[error("cannot reach Redis at {url}: {reason}")]
    Connect {
        /// The URL (without its password).
        url: String,
        /// What failed.
        reason: String,
    },
}

/// One job for the worker.
enum Job {
    Forward(Forward),
    /// Resolved once every earlier job has been sent.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// This node's membership of a cluster.
pub struct Cluster {
    /// Short id: the prefix of this node's connection ids.
    node: String,
    /// The configured (or generated) node id, for logs and Redis.
    name: String,
    client: fred::clients::Client,
    subscriber: fred::clients::SubscriberClient,
    jobs: mpsc::Sender<Job>,
    jobs_rx: Mutex<Option<mpsc::Receiver<Job>>>,
    /// Wakes the worker to re-send this node's state (after a reconnect,
    /// or when Redis forgot the node).
    resync: Notify,
    /// Daptin topics created here, re-registered if Redis loses them.
    topics: Mutex<BTreeMap<String, Value>>,
    metrics: Arc<Metrics>,
    config: ClusterConfig,
}

impl Cluster {
    /// Connects to the cluster's Redis.
    ///
    /// # Errors
    /// A bad URL, or Redis does not answer.
    pub async fn connect(
        config: &ClusterConfig,
        url: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, ClusterError> {
        let redis =
            fred::prelude::Config::from_url(url).map_err(|e| ClusterError::Url(e.to_string()))?;
        let mut builder = Builder::from_config(redis);
        builder
            .with_performance_config(|p| {
                // A command that waits longer is failed: the link then
                // counts as down rather than stalling its callers.
                p.default_command_timeout = Duration::from_secs(3);
                p.broadcast_channel_capacity = 8_192;
            })
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(3);
                c.internal_command_timeout = Duration::from_secs(3);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        let client = builder
            .build()
            .map_err(|e| ClusterError::Url(e.to_string()))?;
        let subscriber = builder
            .build_subscriber_client()
            .map_err(|e| ClusterError::Url(e.to_string()))?;
        let unreachable = |e: fred::prelude::Error| ClusterError::Connect {
            url: redact(url),
            reason: e.to_string(),
        };
        client.init().await.map_err(unreachable)?;
        subscriber.init().await.map_err(unreachable)?;
        let name = config
            .node_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..NODE_LEN].to_owned());
        let node = short_id(&name);
        let (jobs, jobs_rx) = mpsc::channel(QUEUE);
        tracing::info!(node = %name, short = %node, redis = %redact(url), "joined the cluster");
        Ok(Arc::new(Self {
            node,
            name,
            client,
            subscriber,
            jobs,
            jobs_rx: Mutex::new(Some(jobs_rx)),
            resync: Notify::new(),
            topics: Mutex::default(),
            metrics,
            config: config.clone(),
        }))
    }

    /// Starts carrying `bus`'s traffic: the worker, the receiver, the
    /// heartbeat and reaper, until `shutdown`.
    pub fn start(self: &Arc<Self>, bus: &Arc<Bus>, shutdown: &CancellationToken) {
        let Some(jobs) = self.jobs_rx.lock().take() else {
            return;
        };
        bus.attach(self.clone());
        tokio::spawn(worker::run(
            self.clone(),
            bus.clone(),
            jobs,
            shutdown.clone(),
        ));
        tokio::spawn(worker::receive(self.clone(), bus.clone(), shutdown.clone()));
        tokio::spawn(nodes::beat(self.clone(), shutdown.clone()));
        tokio::spawn(nodes::watch_reconnects(self.clone(), shutdown.clone()));
        self.resync.notify_one();
    }

    /// Leaves the cluster on shutdown: this node's members leave every
    /// list (with leave events) and its users and beat are removed, as a
    /// dead node's would be, only at once.
    pub async fn leave(&self) {
        if self.is_up() {
            if let Err(e) = nodes::reap(self, &self.node).await {
                tracing::warn!(error = %e, "could not leave the cluster cleanly");
            }
        }
        let _ = self.subscriber.quit().await;
        let _ = self.client.quit().await;
    }

    /// Where channel history is kept in this cluster.
    pub fn history(self: &Arc<Self>) -> Arc<RedisHistory> {
        Arc::new(RedisHistory::new(self.client.clone()))
    }

    /// The node's configured (or generated) id.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster's live nodes (short ids), when Redis answers.
    pub async fn nodes(&self) -> Vec<String> {
        use fred::prelude::SetsInterface;
        let mut nodes: Vec<String> = self.client.smembers(keys::NODES).await.unwrap_or_default();
        nodes.sort();
        nodes
    }

    /// The node's state for `/readyz`.
    pub fn status(&self) -> Value {
        serde_json::json!({
            "node": self.name,
            "redis": if self.is_up() { "up" } else { "down" },
        })
    }
}

/// A node's short id: its own when it is one (8 hex digits), else derived
/// from it, so connection ids stay jac-cloud's `<secs>:<hex>`.
fn short_id(name: &str) -> String {
    if name.len() == NODE_LEN && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return name.to_ascii_lowercase();
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(name.as_bytes());
    digest
        .iter()
        .take(NODE_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The URL without its password, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_hex_and_stable() {
        assert_eq!(short_id("0a1B2c3d"), "0a1b2c3d");
        let derived = short_id("node-east-1");
        assert_eq!(derived.len(), NODE_LEN);
        assert!(derived.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(derived, short_id("node-east-1"));
        assert_ne!(derived, short_id("node-east-2"));
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("redis://:secret@10.0.0.1:6379"),
            "redis://***@10.0.0.1:6379"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
