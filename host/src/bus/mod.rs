//! The bus: who is connected, who listens to what, and delivery.
//!
//! Every dialect, plugin and store write delivers through here, which is
//! what lets a Daptin client's message reach a jac-cloud client. Delivery
//! never waits: each client has a bounded queue, and a client whose queue is
//! full is a slow consumer and gets disconnected, so it cannot hold up the
//! publisher or anyone else.

mod admin;
mod envelope;
mod filter;
pub mod history;
mod limits;
pub mod link;
mod presence;
mod queue;
mod reauth;
mod remote;
mod topic;
mod watch;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

pub use admin::ConnectionInfo;
pub use envelope::{
    json_len, Change, Envelope, Event, Member, Origin, Position, PresenceKind, DIALECTS,
};
pub use filter::{type_name, Filter, FilterError, FilterLimits};
pub use limits::{BusError, BusLimits};
pub use queue::{Inbox, Kill};
pub use topic::{op_mask, Subscription, Topic, OPS_ALL, OP_DELETE, OP_INSERT, OP_OTHER, OP_UPDATE};

use link::{Forward, NODE_LEN};
use queue::{Outlet, Refused};
use topic::op_bit;
use watch::Watch;

use crate::metrics::Metrics;

/// Close code sent to slow consumers (1013: try again later).
pub const CLOSE_SLOW_CONSUMER: u16 = 1013;

/// What a session's writer takes off its queue: a shared event, encoded
/// for the session's dialect when it is written. One pointer, so every
/// client's queue (whose first block of slots is allocated up front) stays
/// small.
pub type Outbound = Arc<Envelope>;

/// A registered connection's end of the bus.
pub struct Registration {
    /// The connection's id.
    pub id: Arc<str>,
    /// Its outbound queue.
    pub rx: Inbox,
    /// Its close switch.
    pub kill: Arc<Kill>,
}

/// Where deliveries to one connection go: its queue and its close switch.
struct Peer {
    tx: Outlet,
    kill: Arc<Kill>,
}

struct ClientEntry {
    id: Arc<str>,
    /// What it speaks (a dialect's name, or `socket`), for operators.
    label: &'static str,
    peer: Arc<Peer>,
    user_id: Option<String>,
    /// Ordered sets, not hashed: most connections hold few or none, and
    /// an empty `BTreeSet` is half an empty `HashSet` (no hasher state), in
    /// an entry every connection has.
    channels: BTreeSet<Topic>,
    presence: BTreeSet<String>,
}

/// One subscriber as its topic holds it: the subscription and the
/// connection's queue, so a broadcast reaches every subscriber without
/// looking each one up by id among all connections (a hash of the id per
/// recipient, visible in a 5,000-subscriber broadcast's profile).
struct Subscriber {
    sub: Subscription,
    peer: Arc<Peer>,
}

#[derive(Default)]
struct State {
    clients: HashMap<Arc<str>, ClientEntry>,
    /// topic → subscriber → its filter (client's AND guard's) and queue.
    channels: HashMap<Topic, HashMap<Arc<str>, Subscriber>>,
    users: HashMap<String, HashSet<Arc<str>>>,
    presence: HashMap<String, Vec<Member>>,
    /// What the link (when there is one) must hear about.
    watch: Watch,
    /// Set once the server shuts down: every connection is asked to close
    /// with it, and so is any that registers afterwards.
    closing: Option<(u16, String)>,
}

/// The bus: local delivery, and through its link (when the node is in a
/// cluster) the other nodes'.
pub struct Bus {
    state: RwLock<State>,
    metrics: Arc<Metrics>,
    limits: BusLimits,
    /// This node's short id, the prefix of its connections' ids (the
    /// link's, once attached).
    node: parking_lot::RwLock<Arc<str>>,
}

impl Bus {
    /// An empty bus reporting to `metrics`.
    pub fn new(metrics: Arc<Metrics>, limits: BusLimits) -> Self {
        Self {
            state: RwLock::default(),
            metrics,
            limits,
            node: parking_lot::RwLock::new(
                uuid::Uuid::new_v4().simple().to_string()[..NODE_LEN].into(),
            ),
        }
    }

    /// What one connection may hold.
    pub fn limits(&self) -> &BusLimits {
        &self.limits
    }

    /// Registers a connection with a fresh id (jac-cloud's
    /// `<unix secs>:<hex>` form, unique across restarts), whose hex starts
    /// with this node's short id so a send from another node finds it.
    pub fn register(&self, user_id: Option<String>, label: &'static str) -> Registration {
        let random = uuid::Uuid::new_v4().simple().to_string();
        let id: Arc<str> = format!(
            "{}:{}{}",
            crate::now_ms() / 1000,
            self.node.read(),
            &random[NODE_LEN..]
        )
        .into();
        let (tx, rx) = queue::queue(self.limits.queue_events, self.limits.queue_bytes);
        let kill = Arc::new(Kill::default());
        let mut state = self.state.write();
        let state = &mut *state;
        if let Some((code, reason)) = &state.closing {
            kill.kill(*code, reason.clone());
        }
        if let Some(user) = &user_id {
            add_user_client(&mut state.users, &state.watch, user, &id);
        }
        state.clients.insert(
            id.clone(),
            ClientEntry {
                id: id.clone(),
                label,
                peer: Arc::new(Peer {
                    tx,
                    kill: kill.clone(),
                }),
                user_id,
                channels: BTreeSet::new(),
                presence: BTreeSet::new(),
            },
        );
        Registration { id, rx, kill }
    }

    /// Forgets a connection: its subscriptions go, and it leaves every
    /// presence list it was on (others see the leave events).
    pub fn unregister(&self, id: &str) {
        let left = {
            let mut state = self.state.write();
            let state = &mut *state;
            let Some(entry) = state.clients.remove(id) else {
                return;
            };
            for channel in &entry.channels {
                remove_subscriber(&mut state.channels, &mut state.watch, channel, id);
            }
            if let Some(user) = &entry.user_id {
                remove_user_client(&mut state.users, &state.watch, user, id);
            }
            entry
                .presence
                .iter()
                .filter_map(|channel| {
                    presence::remove(&mut state.presence, &mut state.watch, channel, id)
                })
                .collect::<Vec<_>>()
        };
        for (channel, member) in left {
            self.announce_presence(channel, PresenceKind::Leave, member);
        }
    }

    /// Subscribes a connection to a topic (replacing its filter if it was
    /// subscribed already).
    ///
    /// # Errors
    /// An unknown connection, or one at `limits.max_subscriptions`.
    pub fn subscribe(
        &self,
        id: &str,
        topic: &Topic,
        filter: Option<Filter>,
    ) -> Result<(), BusError> {
        self.subscribe_ops(
            id,
            topic,
            Subscription {
                filter,
                ops: OPS_ALL,
            },
        )
    }

    /// Subscribes with an event mask (resource subscriptions' `events`).
    ///
    /// # Errors
    /// As [`Bus::subscribe`].
    pub fn subscribe_ops(
        &self,
        id: &str,
        topic: &Topic,
        sub: Subscription,
    ) -> Result<(), BusError> {
        let mut state = self.state.write();
        let state = &mut *state;
        let Some(entry) = state.clients.get_mut(id) else {
            return Err(BusError::Gone);
        };
        let max = self.limits.subscriptions;
        if entry.channels.len() >= max && !entry.channels.contains(topic) {
            return Err(BusError::Subscriptions(max));
        }
        let key = entry.id.clone();
        entry.channels.insert(topic.clone());
        let subs = state.channels.entry(topic.clone()).or_default();
        let peer = entry.peer.clone();
        if subs.insert(key, Subscriber { sub, peer }).is_none() {
            if let Topic::Channel(channel) = topic {
                state.watch.gain(channel);
            }
        }
        Ok(())
    }

    /// Unsubscribes; returns whether the connection was subscribed.
    pub fn unsubscribe(&self, id: &str, topic: &Topic) -> bool {
        let mut state = self.state.write();
        let state = &mut *state;
        let was = state
            .clients
            .get_mut(id)
            .is_some_and(|e| e.channels.remove(topic));
        if was {
            remove_subscriber(&mut state.channels, &mut state.watch, topic, id);
        }
        was
    }

    /// The channels (not resource streams) a connection is subscribed to,
    /// sorted.
    pub fn channels_of(&self, id: &str) -> Vec<String> {
        let state = self.state.read();
        let mut channels: Vec<String> = state
            .clients
            .get(id)
            .map(|e| {
                e.channels
                    .iter()
                    .filter_map(|t| match t {
                        Topic::Channel(c) => Some(c.clone()),
                        Topic::Resource(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        channels.sort();
        channels
    }

    /// The channels a connection is on the presence list of, sorted.
    pub fn presence_of(&self, id: &str) -> Vec<String> {
        let state = self.state.read();
        let mut channels: Vec<String> = state
            .clients
            .get(id)
            .map(|e| e.presence.iter().cloned().collect())
            .unwrap_or_default();
        channels.sort();
        channels
    }

    /// Delivers `event` to a topic's subscribers whose filter matches
    /// `subject` (the payload or record the filter looks at), here and, for
    /// a channel, on the other nodes (which apply their subscribers' own
    /// filters). Returns how many connections it reached on this node:
    /// other nodes' deliveries are not waited for.
    pub fn publish(&self, topic: &Topic, event: Event, subject: &Value) -> usize {
        let envelope = Envelope::new(event);
        let state = self.state.read();
        let delivered = self.publish_local(&state, topic, &envelope, subject);
        if let (Topic::Channel(channel), Some(link)) = (topic, state.watch.link()) {
            link.forward(Forward::Publish {
                channel: channel.clone(),
                envelope,
            });
        }
        delivered
    }

    /// Delivers to this node's subscribers of `topic`.
    fn publish_local(
        &self,
        state: &State,
        topic: &Topic,
        envelope: &Outbound,
        subject: &Value,
    ) -> usize {
        let Some(subscribers) = state.channels.get(topic) else {
            return 0;
        };
        let op = op_bit(&envelope.event);
        subscribers
            .iter()
            .filter(|(_, s)| s.sub.ops & op != 0)
            .filter(|(_, s)| s.sub.filter.as_ref().is_none_or(|f| f.matches(subject)))
            .filter(|(id, s)| self.offer(id, &s.peer, envelope.clone()))
            .count()
    }

    /// Delivers to these connections, here or (their ids say) on other
    /// nodes. Returns how many it reached on this node.
    pub fn send_to_clients<S: AsRef<str>>(&self, ids: &[S], event: Event) -> usize {
        let envelope = Envelope::new(event);
        let state = self.state.read();
        let unique: HashSet<&str> = ids.iter().map(AsRef::as_ref).collect();
        let node = self.node.read().clone();
        let (local, elsewhere): (Vec<&str>, Vec<&str>) = unique.into_iter().partition(|id| {
            state.watch.link().is_none() || link::node_of(id).is_none_or(|n| n == &*node)
        });
        if let (false, Some(link)) = (elsewhere.is_empty(), state.watch.link()) {
            link.forward(Forward::Clients {
                clients: elsewhere.into_iter().map(str::to_owned).collect(),
                envelope: envelope.clone(),
            });
        }
        self.clients_local(&state, &local, &envelope)
    }

    fn clients_local(&self, state: &State, ids: &[&str], envelope: &Outbound) -> usize {
        ids.iter()
            .filter(|id| self.deliver(state, id, envelope.clone()))
            .count()
    }

    /// Delivers to every connection of these users, on every node.
    /// Returns how many connections it reached on this node.
    pub fn send_to_users<S: AsRef<str>>(&self, users: &[S], event: Event) -> usize {
        let envelope = Envelope::new(event);
        let state = self.state.read();
        if let Some(link) = state.watch.link() {
            link.forward(Forward::Users {
                users: users.iter().map(|u| u.as_ref().to_owned()).collect(),
                envelope: envelope.clone(),
            });
        }
        self.users_local(&state, users, &envelope)
    }

    fn users_local<S: AsRef<str>>(&self, state: &State, users: &[S], envelope: &Outbound) -> usize {
        let targets: HashSet<&Arc<str>> = users
            .iter()
            .filter_map(|u| state.users.get(u.as_ref()))
            .flatten()
            .collect();
        targets
            .into_iter()
            .filter(|id| self.deliver(state, id, envelope.clone()))
            .count()
    }

    /// Asks a connection to close.
    pub fn kill(&self, id: &str, code: u16, reason: &str) -> bool {
        let state = self.state.read();
        state
            .clients
            .get(id)
            .map(|e| e.peer.kill.kill(code, reason))
            .is_some()
    }

    /// Asks every connection to close, now and from now on (a connection
    /// that registers afterwards is asked at once): the server is shutting
    /// down. Sessions wait on their own close switch alone, which is
    /// cheaper to poll than a second, server-wide one.
    pub fn close_all(&self, code: u16, reason: &str) {
        let mut state = self.state.write();
        state.closing = Some((code, reason.to_owned()));
        for entry in state.clients.values() {
            entry.peer.kill.kill(code, reason);
        }
    }

    /// How many connections subscribe to a topic.
    pub fn subscriber_count(&self, topic: &Topic) -> usize {
        self.state
            .read()
            .channels
            .get(topic)
            .map_or(0, HashMap::len)
    }

    /// How many connections are registered.
    pub fn client_count(&self) -> usize {
        self.state.read().clients.len()
    }

    /// Whether a connection is registered.
    pub fn is_connected(&self, id: &str) -> bool {
        self.state.read().clients.contains_key(id)
    }

    /// Queues `out` for one client without waiting. A full queue marks a
    /// slow consumer: it is disconnected and counted, and the message is
    /// dropped for it alone.
    fn deliver(&self, state: &State, id: &str, out: Outbound) -> bool {
        state
            .clients
            .get(id)
            .is_some_and(|entry| self.offer(id, &entry.peer, out))
    }

    /// [`Bus::deliver`] to a connection already found.
    fn offer(&self, id: &str, peer: &Peer, out: Outbound) -> bool {
        match peer.tx.offer(out) {
            Ok(()) => true,
            Err(Refused::Full) => {
                if peer.kill.reason().is_none() {
                    self.metrics.disconnect("slow_consumer");
                    tracing::warn!(client = %id, "slow consumer: outbound queue full, disconnecting");
                }
                peer.kill
                    .kill(CLOSE_SLOW_CONSUMER, "slow consumer: outbound queue full");
                false
            }
            Err(Refused::Closed) => false,
        }
    }
}

fn remove_subscriber(
    channels: &mut HashMap<Topic, HashMap<Arc<str>, Subscriber>>,
    watch: &mut Watch,
    topic: &Topic,
    id: &str,
) {
    if let Some(subs) = channels.get_mut(topic) {
        if subs.remove(id).is_some() {
            if let Topic::Channel(channel) = topic {
                watch.lose(channel);
            }
        }
        if subs.is_empty() {
            channels.remove(topic);
        }
    }
}

fn add_user_client(
    users: &mut HashMap<String, HashSet<Arc<str>>>,
    watch: &Watch,
    user: &str,
    id: &Arc<str>,
) {
    let set = users.entry(user.to_owned()).or_default();
    if set.is_empty() {
        watch.user(user, true);
    }
    set.insert(id.clone());
}

fn remove_user_client(
    users: &mut HashMap<String, HashSet<Arc<str>>>,
    watch: &Watch,
    user: &str,
    id: &str,
) {
    if let Some(set) = users.get_mut(user) {
        set.remove(id);
        if set.is_empty() {
            users.remove(user);
            watch.user(user, false);
        }
    }
}
