//! The link's two loops: the worker sends what the bus handed over, in
//! order, batching whatever is queued into one Redis pipeline; the
//! receiver delivers what other nodes sent into the bus.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use fred::prelude::{EventInterface, HashesInterface, PubsubInterface, SetsInterface};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Packet, WireEvent};
use super::{keys, nodes, Cluster, Job};
use crate::bus::link::{node_of, Forward, Link, Remote};
use crate::bus::Bus;

/// Most jobs sent in one pipeline.
const BATCH: usize = 512;

/// Sends the bus's hand-overs until shutdown.
pub(super) async fn run(
    cluster: Arc<Cluster>,
    bus: Arc<Bus>,
    mut jobs: mpsc::Receiver<Job>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = cluster.resync.notified() => nodes::resync(&cluster, &bus).await,
            n = jobs.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                send(&cluster, std::mem::take(&mut batch)).await;
            }
        }
    }
}

/// Sends one batch: publishes and state changes in one pipeline (after
/// looking up the nodes of the users it sends to), then subscription
/// changes, then releases the barriers.
async fn send(cluster: &Cluster, batch: Vec<Job>) {
    let mut barriers = Vec::new();
    let mut forwards = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Forward(f) => forwards.push(f),
            Job::Barrier(tx) => barriers.push(tx),
        }
    }
    if !cluster.is_up() {
        let lost = forwards
            .iter()
            .filter(|f| {
                matches!(
                    f,
                    Forward::Publish { .. } | Forward::Users { .. } | Forward::Clients { .. }
                )
            })
            .count();
        cluster.metrics.cluster_events("dropped", lost as u64);
    } else if !forwards.is_empty() {
        if let Err(e) = pipeline(cluster, &forwards).await {
            tracing::warn!(error = %e, "cluster send failed");
            cluster
                .metrics
                .cluster_events("dropped", forwards.len() as u64);
        }
        interests(cluster, &forwards).await;
    }
    for tx in barriers {
        let _ = tx.send(());
    }
}

/// The publishes, targeted sends, user and member changes of a batch, in
/// one pipeline.
async fn pipeline(cluster: &Cluster, forwards: &[Forward]) -> Result<(), fred::prelude::Error> {
    let nodes_of = user_nodes(cluster, forwards).await?;
    let pipe = cluster.client.pipeline();
    let me = cluster.node.as_str();
    let mut sent = 0;
    for forward in forwards {
        match forward {
            Forward::Publish { channel, envelope } => {
                if let Some(packet) = Packet::new(me, &envelope.event) {
                    let () = pipe
                        .spublish(keys::channel(channel), packet.encode())
                        .await?;
                    sent += 1;
                }
            }
            Forward::Users { users, envelope } => {
                for (node, (users, _)) in by_node(me, &nodes_of, users, &[]) {
                    if let Some(mut packet) = Packet::new(me, &envelope.event) {
                        packet.u = users;
                        let () = pipe.spublish(keys::inbox(node), packet.encode()).await?;
                        sent += 1;
                    }
                }
            }
            Forward::Clients { clients, envelope } => {
                for (node, (_, clients)) in by_node(me, &nodes_of, &[], clients) {
                    if let Some(mut packet) = Packet::new(me, &envelope.event) {
                        packet.c = clients;
                        let () = pipe.spublish(keys::inbox(node), packet.encode()).await?;
                        sent += 1;
                    }
                }
            }
            Forward::Member {
                channel,
                member,
                present: true,
            } => {
                let json = wire::encode_member(member);
                let field = keys::member_field(&member.client_id, channel);
                let () = pipe
                    .hset(
                        keys::presence(channel),
                        (member.client_id.to_string(), json.clone()),
                    )
                    .await?;
                let () = pipe.hset(keys::node_presence(me), (field, json)).await?;
            }
            Forward::Member {
                channel,
                member,
                present: false,
            } => {
                let field = keys::member_field(&member.client_id, channel);
                let () = pipe
                    .hdel(keys::presence(channel), member.client_id.to_string())
                    .await?;
                let () = pipe.hdel(keys::node_presence(me), field).await?;
            }
            Forward::User { user, here: true } => {
                let () = pipe.sadd(keys::user(user), me).await?;
                let () = pipe.sadd(keys::node_users(me), user.clone()).await?;
            }
            Forward::User { user, here: false } => {
                let () = pipe.srem(keys::user(user), me).await?;
                let () = pipe.srem(keys::node_users(me), user.clone()).await?;
            }
            Forward::Disconnect {
                users,
                clients,
                code,
                reason,
            } => {
                for (node, (u, c)) in by_node(me, &nodes_of, users, clients) {
                    let packet = Packet {
                        n: me.to_owned(),
                        u,
                        c,
                        e: WireEvent::Disconnect {
                            code: *code,
                            reason: reason.clone(),
                        },
                    };
                    let () = pipe.spublish(keys::inbox(node), packet.encode()).await?;
                    sent += 1;
                }
            }
            Forward::Interest { .. } => {}
        }
    }
    for result in pipe.try_all::<fred::types::Value>().await {
        if let Err(e) = result {
            tracing::warn!(error = %e, "a cluster command failed");
        }
    }
    cluster.metrics.cluster_events("sent", sent);
    Ok(())
}

/// Where targeted sends go: each user to every other node it has
/// connections on, each client id to the node its id names.
fn by_node<'a>(
    me: &str,
    nodes_of: &'a HashMap<String, Vec<String>>,
    users: &[String],
    clients: &'a [String],
) -> BTreeMap<&'a str, (Vec<String>, Vec<String>)> {
    let mut by_node: BTreeMap<&str, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for user in users {
        for node in nodes_of.get(user).into_iter().flatten() {
            if node != me {
                by_node.entry(node).or_default().0.push(user.clone());
            }
        }
    }
    for client in clients {
        if let Some(node) = node_of(client) {
            by_node.entry(node).or_default().1.push(client.clone());
        }
    }
    by_node
}

/// The nodes each user a batch sends to has connections on.
async fn user_nodes(
    cluster: &Cluster,
    forwards: &[Forward],
) -> Result<HashMap<String, Vec<String>>, fred::prelude::Error> {
    let users: BTreeSet<&String> = forwards
        .iter()
        .filter_map(|f| match f {
            Forward::Users { users, .. } | Forward::Disconnect { users, .. } => Some(users),
            _ => None,
        })
        .flatten()
        .collect();
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let pipe = cluster.client.pipeline();
    for user in &users {
        let () = pipe.smembers(keys::user(user)).await?;
    }
    let nodes = pipe.try_all::<Vec<String>>().await;
    Ok(users
        .into_iter()
        .cloned()
        .zip(nodes.into_iter().map(Result::unwrap_or_default))
        .collect())
}

/// Subscribes to the channels a batch gained an interest in and
/// unsubscribes from those it lost (the last word per channel counts).
async fn interests(cluster: &Cluster, forwards: &[Forward]) {
    let mut last: BTreeMap<&str, bool> = BTreeMap::new();
    for forward in forwards {
        if let Forward::Interest { channel, on } = forward {
            last.insert(channel, *on);
        }
    }
    let (on, off): (Vec<_>, Vec<_>) = last.into_iter().partition(|(_, on)| *on);
    let on: Vec<String> = on.into_iter().map(|(c, _)| keys::channel(c)).collect();
    let off: Vec<String> = off.into_iter().map(|(c, _)| keys::channel(c)).collect();
    subscribe(cluster, on, true).await;
    subscribe(cluster, off, false).await;
}

/// (Un)subscribes to sharded channels, one command each (a command may
/// only name channels of one hash slot), sent together.
pub(super) async fn subscribe(cluster: &Cluster, channels: Vec<String>, on: bool) {
    let calls = channels.into_iter().map(|channel| async move {
        let result = if on {
            cluster.subscriber.ssubscribe(channel.clone()).await
        } else {
            cluster.subscriber.sunsubscribe(channel.clone()).await
        };
        if let Err(e) = result {
            tracing::warn!(channel, error = %e, on, "cluster (un)subscribe failed");
        }
    });
    futures_util::future::join_all(calls).await;
}

/// Delivers what other nodes send into the bus, until shutdown.
pub(super) async fn receive(cluster: Arc<Cluster>, bus: Arc<Bus>, shutdown: CancellationToken) {
    let mut messages = cluster.subscriber.message_rx();
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            m = messages.recv() => m,
        };
        let message = match message {
            Ok(m) => m,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(lost = n, "cluster receiver fell behind");
                cluster.metrics.cluster_events("lagged", n);
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        };
        let Some(bytes) = message.value.as_bytes() else {
            continue;
        };
        let packet = match Packet::decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(channel = %message.channel, error = %e, "unreadable cluster packet");
                continue;
            }
        };
        if packet.n == cluster.node {
            continue;
        }
        cluster.metrics.cluster_events("received", 1);
        if let WireEvent::Disconnect { code, reason } = packet.e {
            bus.remote(Remote::Disconnect {
                users: packet.u,
                clients: packet.c,
                code,
                reason,
            });
            continue;
        }
        let Some(event) = packet.e.into_event() else {
            continue;
        };
        let remote = match keys::channel_name(&message.channel) {
            Some(channel) => Remote::Publish {
                channel: channel.to_owned(),
                event,
            },
            None if !packet.u.is_empty() => Remote::Users {
                users: packet.u,
                event,
            },
            None => Remote::Clients {
                clients: packet.c,
                event,
            },
        };
        bus.remote(remote);
    }
}
