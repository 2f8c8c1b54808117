//! The bus: who is connected, who listens to what, and delivery.
//!
//! Every dialect, plugin and store write delivers through here, which is
//! what lets a Daptin client's message reach a jac-cloud client. Delivery
//! never waits: each client has a bounded queue, and a client whose queue is
//! full is a slow consumer and gets disconnected, so it cannot hold up the
//! publisher or anyone else.

mod envelope;
mod filter;
pub mod history;
mod presence;
mod queue;
mod topic;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

pub use envelope::{
    json_len, Change, Envelope, Event, Member, Origin, Position, PresenceKind, DIALECTS,
};
pub use filter::{type_name, Filter, FilterError, FilterLimits};
pub use queue::{Inbox, Kill};
pub use topic::{op_mask, Subscription, Topic, OPS_ALL, OP_DELETE, OP_INSERT, OP_OTHER, OP_UPDATE};

use queue::{Outlet, Refused};
use topic::op_bit;

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

/// How much one connection may hold on the bus.
#[derive(Debug, Clone, Copy)]
pub struct BusLimits {
    /// Events queued for it before it is a slow consumer.
    pub queue_events: usize,
    /// Bytes of events queued for it before it is a slow consumer.
    pub queue_bytes: usize,
    /// Topics it may subscribe to.
    pub subscriptions: usize,
    /// Presence lists it may be on.
    pub presence: usize,
    /// Largest presence info, in bytes of JSON.
    pub presence_info_bytes: usize,
}

impl BusLimits {
    /// The limits from configuration.
    pub fn from_config(limits: &crate::config::Limits) -> Self {
        Self {
            queue_events: limits.outbound_queue,
            queue_bytes: limits.outbound_queue_bytes,
            subscriptions: limits.max_subscriptions,
            presence: limits.max_presence,
            presence_info_bytes: limits.max_presence_info_bytes,
        }
    }
}

/// What the bus refuses a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// It is not (or no longer) registered.
    #[error("the connection is gone")]
    Gone,
    /// It holds as many subscriptions as allowed.
    #[error("at most {0} subscriptions per connection (limits.max_subscriptions)")]
    Subscriptions(usize),
    /// It is on as many presence lists as allowed.
    #[error("at most {0} presence lists per connection (limits.max_presence)")]
    Presence(usize),
    /// Its presence info is too large.
    #[error("presence info is {0} bytes; at most {1} (limits.max_presence_info_bytes)")]
    InfoTooLarge(usize, usize),
}

impl From<BusError> for crate::error::ClientError {
    fn from(e: BusError) -> Self {
        let code = match e {
            BusError::InfoTooLarge(..) => crate::error::ErrorCode::PayloadTooLarge,
            _ => crate::error::ErrorCode::BadRequest,
        };
        crate::error::ClientError::new(code, e.to_string())
    }
}

struct ClientEntry {
    id: Arc<str>,
    tx: Outlet,
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
    limits: BusLimits,
}

impl Bus {
    /// An empty bus reporting to `metrics`.
    pub fn new(metrics: Arc<Metrics>, limits: BusLimits) -> Self {
        Self {
            state: RwLock::default(),
            metrics,
            limits,
        }
    }

    /// What one connection may hold.
    pub fn limits(&self) -> &BusLimits {
        &self.limits
    }

    /// Registers a connection with a fresh id (jac-cloud's
    /// `<unix secs>:<hex>` form, unique across restarts).
    pub fn register(&self, user_id: Option<String>) -> Registration {
        let id: Arc<str> = format!(
            "{}:{}",
            crate::now_ms() / 1000,
            uuid::Uuid::new_v4().simple()
        )
        .into();
        let (tx, rx) = queue::queue(self.limits.queue_events, self.limits.queue_bytes);
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
        let Some(entry) = state.clients.get_mut(id) else {
            return Err(BusError::Gone);
        };
        let max = self.limits.subscriptions;
        if entry.channels.len() >= max && !entry.channels.contains(topic) {
            return Err(BusError::Subscriptions(max));
        }
        let key = entry.id.clone();
        entry.channels.insert(topic.clone());
        state
            .channels
            .entry(topic.clone())
            .or_default()
            .insert(key, sub);
        Ok(())
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
        match entry.tx.offer(out) {
            Ok(()) => true,
            Err(Refused::Full) => {
                if entry.kill.reason().is_none() {
                    self.metrics.disconnect("slow_consumer");
                    tracing::warn!(client = %id, "slow consumer: outbound queue full, disconnecting");
                }
                entry
                    .kill
                    .kill(CLOSE_SLOW_CONSUMER, "slow consumer: outbound queue full");
                false
            }
            Err(Refused::Closed) => false,
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
