//! The bus: who is connected, who listens to what, and delivery.
//!
//! Every dialect, plugin and store write delivers through here, which is
//! what lets a Daptin client's message reach a jac-cloud client. Delivery
//! never waits: each client has a bounded queue, and a client whose queue is
//! full is a slow consumer and gets disconnected, so it cannot hold up the
//! publisher or anyone else.

mod envelope;
mod filter;
mod presence;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use envelope::{Change, Envelope, Event, Member, Origin, PresenceKind, DIALECTS};
pub use filter::{type_name, Filter};

use crate::metrics::Metrics;

/// Close code sent to slow consumers (1013: try again later).
pub const CLOSE_SLOW_CONSUMER: u16 = 1013;

/// What a session's writer takes off its queue: a shared event, encoded
/// for the session's dialect when it is written. One pointer, so every
/// client's queue (whose first block of slots is allocated up front) stays
/// small.
pub type Outbound = Arc<Envelope>;

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

fn op_bit(event: &Event) -> u8 {
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

/// Asks one session to close, with a code and reason, from anywhere.
#[derive(Debug, Default)]
pub struct Kill {
    token: CancellationToken,
    reason: OnceLock<(u16, String)>,
}

impl Kill {
    /// Requests the close; the first reason given wins.
    pub fn kill(&self, code: u16, reason: impl Into<String>) {
        let _ = self.reason.set((code, reason.into()));
        self.token.cancel();
    }

    /// Resolves once a close was requested.
    pub async fn requested(&self) {
        self.token.cancelled().await;
    }

    /// The requested close code and reason.
    pub fn reason(&self) -> Option<&(u16, String)> {
        self.reason.get()
    }
}

/// A registered connection's end of the bus.
pub struct Registration {
    /// The connection's id.
    pub id: Arc<str>,
    /// Its outbound queue.
    pub rx: mpsc::Receiver<Outbound>,
    /// Its close switch.
    pub kill: Arc<Kill>,
}

struct ClientEntry {
    id: Arc<str>,
    tx: mpsc::Sender<Outbound>,
    user_id: Option<String>,
    kill: Arc<Kill>,
    channels: HashSet<Topic>,
    presence: HashSet<String>,
}

#[derive(Default)]
struct State {
    clients: HashMap<Arc<str>, ClientEntry>,
    /// topic → subscriber → its filter (client's AND guard's).
    channels: HashMap<Topic, HashMap<Arc<str>, Subscription>>,
    users: HashMap<String, HashSet<Arc<str>>>,
    presence: HashMap<String, Vec<Member>>,
}

/// The local bus.
pub struct Bus {
    state: RwLock<State>,
    metrics: Arc<Metrics>,
}

impl Bus {
    /// An empty bus reporting to `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            state: RwLock::default(),
            metrics,
        }
    }

    /// Registers a connection with a fresh id (jac-cloud's
    /// `<unix secs>:<hex>` form, unique across restarts).
    pub fn register(&self, user_id: Option<String>, queue: usize) -> Registration {
        let id: Arc<str> = format!(
            "{}:{}",
            crate::now_ms() / 1000,
            uuid::Uuid::new_v4().simple()
        )
        .into();
        let (tx, rx) = mpsc::channel(queue.max(1));
        let kill = Arc::new(Kill::default());
        let mut state = self.state.write();
        if let Some(user) = &user_id {
            add_user_client(&mut state.users, user, &id);
        }
        state.clients.insert(
            id.clone(),
            ClientEntry {
                id: id.clone(),
                tx,
                user_id,
                kill: kill.clone(),
                channels: HashSet::new(),
                presence: HashSet::new(),
            },
        );
        Registration { id, rx, kill }
    }

    /// Forgets a connection: its subscriptions go, and it leaves every
    /// presence list it was on (others see the leave events).
    pub fn unregister(&self, id: &str) {
        let left = {
            let mut state = self.state.write();
            let Some(entry) = state.clients.remove(id) else {
                return;
            };
            for channel in &entry.channels {
                remove_subscriber(&mut state.channels, channel, id);
            }
            if let Some(user) = &entry.user_id {
                remove_user_client(&mut state.users, user, id);
            }
            entry
                .presence
                .iter()
                .filter_map(|channel| presence::remove(&mut state.presence, channel, id))
                .collect::<Vec<_>>()
        };
        for (channel, member) in left {
            self.announce_presence(channel, PresenceKind::Leave, member);
        }
    }

    /// Changes who a connection acts as in one step: its user, and its
    /// subscriptions as re-authorized for the new identity (`Some` replaces
    /// one, `None` drops it), and the presence lists it may no longer be
    /// on. Done under one lock, so every event is delivered under either
    /// the old rights or the new ones, never a mix. Leaves are announced.
    pub fn reauthorize(
        &self,
        id: &str,
        user_id: Option<String>,
        updates: Vec<(Topic, Option<Subscription>)>,
        leave: &[String],
    ) {
        let left = {
            let mut state = self.state.write();
            let state = &mut *state;
            let Some(entry) = state.clients.get_mut(id) else {
                return;
            };
            let key = entry.id.clone();
            if let Some(old) = entry.user_id.take() {
                remove_user_client(&mut state.users, &old, id);
            }
            if let Some(new) = &user_id {
                add_user_client(&mut state.users, new, &key);
            }
            entry.user_id = user_id.clone();
            for (topic, sub) in updates {
                match sub {
                    Some(sub) => {
                        entry.channels.insert(topic.clone());
                        state
                            .channels
                            .entry(topic)
                            .or_default()
                            .insert(key.clone(), sub);
                    }
                    None => {
                        if entry.channels.remove(&topic) {
                            remove_subscriber(&mut state.channels, &topic, id);
                        }
                    }
                }
            }
            for channel in leave {
                entry.presence.remove(channel);
            }
            for channel in &entry.presence {
                if let Some(member) = state
                    .presence
                    .get_mut(channel)
                    .and_then(|list| list.iter_mut().find(|m| &*m.client_id == id))
                {
                    member.user_id = user_id.clone();
                }
            }
            leave
                .iter()
                .filter_map(|channel| presence::remove(&mut state.presence, channel, id))
                .collect::<Vec<_>>()
        };
        for (channel, member) in left {
            self.announce_presence(channel, PresenceKind::Leave, member);
        }
    }

    /// Subscribes a connection to a topic (replacing its filter if it was
    /// subscribed already). Returns false for an unknown connection.
    pub fn subscribe(&self, id: &str, topic: &Topic, filter: Option<Filter>) -> bool {
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
    pub fn subscribe_ops(&self, id: &str, topic: &Topic, sub: Subscription) -> bool {
        let mut state = self.state.write();
        let Some(entry) = state.clients.get_mut(id) else {
            return false;
        };
        let key = entry.id.clone();
        entry.channels.insert(topic.clone());
        state
            .channels
            .entry(topic.clone())
            .or_default()
            .insert(key, sub);
        true
    }

    /// Unsubscribes; returns whether the connection was subscribed.
    pub fn unsubscribe(&self, id: &str, topic: &Topic) -> bool {
        let mut state = self.state.write();
        let was = state
            .clients
            .get_mut(id)
            .is_some_and(|e| e.channels.remove(topic));
        if was {
            remove_subscriber(&mut state.channels, topic, id);
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
    /// `subject` (the payload or record the filter looks at). Returns how
    /// many it reached.
    pub fn publish(&self, topic: &Topic, event: Event, subject: &Value) -> usize {
        let envelope = Envelope::new(event);
        let state = self.state.read();
        let Some(subscribers) = state.channels.get(topic) else {
            return 0;
        };
        let op = op_bit(&envelope.event);
        subscribers
            .iter()
            .filter(|(_, sub)| sub.ops & op != 0)
            .filter(|(_, sub)| sub.filter.as_ref().is_none_or(|f| f.matches(subject)))
            .filter(|(id, _)| self.deliver(&state, id, envelope.clone()))
            .count()
    }

    /// Delivers to these connections. Returns how many it reached.
    pub fn send_to_clients<S: AsRef<str>>(&self, ids: &[S], event: Event) -> usize {
        let envelope = Envelope::new(event);
        let state = self.state.read();
        let unique: HashSet<&str> = ids.iter().map(AsRef::as_ref).collect();
        unique
            .into_iter()
            .filter(|id| self.deliver(&state, id, envelope.clone()))
            .count()
    }

    /// Delivers to every connection of these users. Returns how many
    /// connections it reached.
    pub fn send_to_users<S: AsRef<str>>(&self, users: &[S], event: Event) -> usize {
        let envelope = Envelope::new(event);
        let state = self.state.read();
        let targets: HashSet<&Arc<str>> = users
            .iter()
            .filter_map(|u| state.users.get(u.as_ref()))
            .flatten()
            .collect();
        targets
            .into_iter()
            .filter(|id| self.deliver(&state, id, envelope.clone()))
            .count()
    }

    /// Asks a connection to close.
    pub fn kill(&self, id: &str, code: u16, reason: &str) -> bool {
        let state = self.state.read();
        state
            .clients
            .get(id)
            .map(|e| e.kill.kill(code, reason))
            .is_some()
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
        let Some(entry) = state.clients.get(id) else {
            return false;
        };
        match entry.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if entry.kill.reason().is_none() {
                    self.metrics.disconnect("slow_consumer");
                    tracing::warn!(client = %id, "slow consumer: outbound queue full, disconnecting");
                }
                entry
                    .kill
                    .kill(CLOSE_SLOW_CONSUMER, "slow consumer: outbound queue full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

fn remove_subscriber(
    channels: &mut HashMap<Topic, HashMap<Arc<str>, Subscription>>,
    topic: &Topic,
    id: &str,
) {
    if let Some(subs) = channels.get_mut(topic) {
        subs.remove(id);
        if subs.is_empty() {
            channels.remove(topic);
        }
    }
}

fn add_user_client(users: &mut HashMap<String, HashSet<Arc<str>>>, user: &str, id: &Arc<str>) {
    users.entry(user.to_owned()).or_default().insert(id.clone());
}

fn remove_user_client(users: &mut HashMap<String, HashSet<Arc<str>>>, user: &str, id: &str) {
    if let Some(set) = users.get_mut(user) {
        set.remove(id);
        if set.is_empty() {
            users.remove(user);
        }
    }
}
