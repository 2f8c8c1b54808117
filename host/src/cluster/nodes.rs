//! Membership: every node beats (`sb:alive:<node>` with a TTL of
//! `node_timeout_ms`, renewed every `heartbeat_ms`), and every node reaps
//! the nodes whose beat expired: their presence members leave every list
//! (with leave events on every node), their users leave the user → nodes
//! map, their anonymous topics go. One reaper per dead node wins a
//! `SET NX` lock. A node that Redis forgot (Redis restarted empty, or the
//! node was reaped while cut off) re-sends its state: its subscriptions,
//! users, members and topics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{
    EventInterface, Expiration, HashesInterface, KeysInterface, PubsubInterface, SetOptions,
    SetsInterface,
};
use tokio_util::sync::CancellationToken;

use super::wire::{self, Packet};
use super::{keys, worker, Cluster};
use crate::bus::link::{node_of, Link, LinkError};
use crate::bus::{Bus, Event, PresenceKind};

/// Beats and reaps until shutdown.
pub(super) async fn beat(cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let period = Duration::from_millis(cluster.config.heartbeat_ms.max(100));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = every.tick() => {}
        }
        let up = cluster.is_up();
        cluster.metrics.cluster_up.set(i64::from(up));
        if !up {
            continue;
        }
        match alive(&cluster).await {
            Ok(true) => {
                tracing::info!(node = %cluster.name, "Redis did not know this node: re-sending its state");
                cluster.resync.notify_one();
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
        if let Err(e) = reap_dead(&cluster).await {
            tracing::warn!(error = %e, "reaping dead nodes failed");
        }
    }
}

/// Renews this node's beat; true when Redis did not list the node.
async fn alive(cluster: &Cluster) -> Result<bool, fred::prelude::Error> {
    let pipe = cluster.client.pipeline();
    let () = pipe
        .set(
            keys::alive(&cluster.node),
            cluster.name.as_str(),
            Some(Expiration::PX(cluster.config.node_timeout_ms as i64)),
            None,
            false,
        )
        .await?;
    let () = pipe.sadd(keys::NODES, cluster.node.as_str()).await?;
    let added: i64 = pipe.last().await?;
    Ok(added == 1)
}

/// Reaps every listed node whose beat expired (unless another node does).
async fn reap_dead(cluster: &Cluster) -> Result<(), LinkError> {
    let nodes: Vec<String> = cluster
        .client
        .smembers(keys::NODES)
        .await
        .map_err(super::link::down)?;
    for node in nodes.iter().filter(|n| **n != cluster.node) {
        let beating: i64 = cluster
            .client
            .exists(keys::alive(node))
            .await
            .map_err(super::link::down)?;
        if beating > 0 {
            continue;
        }
        let won: Option<String> = cluster
            .client
            .set(
                keys::reaping(node),
                cluster.node.as_str(),
                Some(Expiration::PX(cluster.config.node_timeout_ms as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(super::link::down)?;
        if won.is_some() {
            tracing::info!(dead = %node, "reaping a node that stopped beating");
            reap(cluster, node).await?;
        }
    }
    Ok(())
}

/// Removes what `node` held: its members (announcing their leaves on
/// every node), its users, its anonymous topics, its beat.
pub(super) async fn reap(cluster: &Cluster, node: &str) -> Result<(), LinkError> {
    let down = super::link::down;
    let members: HashMap<String, String> = cluster
        .client
        .hgetall(keys::node_presence(node))
        .await
        .map_err(down)?;
    let users: Vec<String> = cluster
        .client
        .smembers(keys::node_users(node))
        .await
        .map_err(down)?;
    let topics: HashMap<String, String> =
        cluster.client.hgetall(keys::TOPICS).await.map_err(down)?;
    let pipe = cluster.client.pipeline();
    let mut leaves = 0;
    for (field, json) in &members {
        let Some((client_id, channel)) = field.split_once('\0') else {
            continue;
        };
        let () = pipe
            .hdel(keys::presence(channel), client_id)
            .await
            .map_err(down)?;
        let Ok(member) = wire::decode_member(json.as_bytes()) else {
            continue;
        };
        let leave = Event::Presence {
            channel: channel.to_owned(),
            kind: PresenceKind::Leave,
            member,
        };
        // Spoken for the dead node, so every node (this one too) delivers it.
        if let Some(packet) = Packet::new("", &leave) {
            let () = pipe
                .spublish(keys::channel(channel), packet.encode())
                .await
                .map_err(down)?;
            leaves += 1;
        }
    }
    for user in &users {
        let () = pipe.srem(keys::user(user), node).await.map_err(down)?;
    }
    for (name, topic) in &topics {
        if anonymous_topic_of(topic, node) {
            let () = pipe.hdel(keys::TOPICS, name.as_str()).await.map_err(down)?;
        }
    }
    let () = pipe
        .del(vec![
            keys::node_presence(node),
            keys::node_users(node),
            keys::alive(node),
        ])
        .await
        .map_err(down)?;
    let () = pipe.srem(keys::NODES, node).await.map_err(down)?;
    for result in pipe.try_all::<fred::types::Value>().await {
        result.map_err(down)?;
    }
    tracing::info!(
        node,
        members = members.len(),
        users = users.len(),
        leaves,
        "node reaped"
    );
    Ok(())
}

/// Whether a stored topic was created anonymously by a connection of `node`
/// (such topics go with their connection).
fn anonymous_topic_of(topic: &str, node: &str) -> bool {
    let Ok(topic) = serde_json::from_str::<serde_json::Value>(topic) else {
        return false;
    };
    topic["creator_user"].is_null()
        && topic["creator_conn"]
            .as_str()
            .and_then(node_of)
            .is_some_and(|n| n == node)
}

/// Re-sends this node's state to Redis: its beat, its subscriptions and
/// inbox, its users and members, and (if Redis lost them) its topics.
/// Idempotent: run after every reconnect.
pub(super) async fn resync(cluster: &Cluster, bus: &Bus) {
    if !cluster.is_up() {
        return;
    }
    let mut channels: Vec<String> = bus.interests().iter().map(|c| keys::channel(c)).collect();
    channels.push(keys::inbox(&cluster.node));
    worker::subscribe(cluster, channels, true).await;
    let me = cluster.node.as_str();
    let topics = topics_to_restore(cluster).await;
    let pipe = cluster.client.pipeline();
    let queue = async {
        let () = pipe.sadd(keys::NODES, me).await?;
        for user in bus.local_users() {
            let () = pipe.sadd(keys::user(&user), me).await?;
            let () = pipe.sadd(keys::node_users(me), user).await?;
        }
        for (channel, member) in bus.local_members() {
            let json = wire::encode_member(&member);
            let field = keys::member_field(&member.client_id, &channel);
            let () = pipe
                .hset(
                    keys::presence(&channel),
                    (member.client_id.to_string(), json.clone()),
                )
                .await?;
            let () = pipe.hset(keys::node_presence(me), (field, json)).await?;
        }
        for (name, topic) in topics {
            let () = pipe.hsetnx(keys::TOPICS, name, topic.to_string()).await?;
        }
        Ok::<(), fred::prelude::Error>(())
    };
    if let Err(e) = queue.await {
        tracing::warn!(error = %e, "cluster resync failed");
        return;
    }
    let failed = pipe
        .try_all::<fred::types::Value>()
        .await
        .into_iter()
        .filter(Result::is_err)
        .count();
    if failed > 0 {
        tracing::warn!(failed, "cluster resync: some commands failed");
    } else {
        tracing::debug!(node = %cluster.name, "cluster state re-sent");
    }
}

/// The topics created here that Redis lost (all of them when it lost the
/// topics hash; none otherwise, forgetting those removed elsewhere).
async fn topics_to_restore(cluster: &Cluster) -> Vec<(String, serde_json::Value)> {
    let names: Result<Vec<String>, _> = cluster.client.hkeys(keys::TOPICS).await;
    let mut mine = cluster.topics.lock();
    match names {
        Ok(names) if names.is_empty() => mine.clone().into_iter().collect(),
        Ok(names) => {
            mine.retain(|name, _| names.contains(name));
            Vec::new()
        }
        Err(_) => Vec::new(),
    }
}

/// Triggers a resync whenever either Redis connection comes back.
pub(super) async fn watch_reconnects(cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let mut main = cluster.client.reconnect_rx();
    let mut sub = cluster.subscriber.reconnect_rx();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            r = main.recv() => if r.is_err() { break },
            r = sub.recv() => if r.is_err() { break },
        }
        tracing::info!(node = %cluster.name, "Redis connection back: re-sending this node's state");
        cluster.resync.notify_one();
    }
}
