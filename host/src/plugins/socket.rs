//! Scripted-socket instances (SoliDB's model): a plugin declares a path;
//! each connection to it gets one long-lived instance, driven with on-open
//! / on-message / on-channel / on-presence / on-close. The script answers
//! through the host interface: its `notify-self` (text) and
//! `notify-self-binary` frames come back with each call, in order (see
//! [`super::outbox`]); channel and presence calls go through the bus like
//! everything else and act as the socket's client. The connection itself (its loop, frames, close codes)
//! belongs to the session module, which drives this instance.
//!
//! Each callback runs with a fresh deadline, yielding at every epoch tick
//! like walker calls do. A plugin error is data for the caller to report;
//! a trap, timeout or out-of-memory leaves the instance unusable.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;

use super::bindings::types::{ChannelMessage, PresenceEvent, PresenceKind, SocketOpen};
use super::bindings::Plugin;
use super::loaded::{CallError, LoadedPlugin};
use super::outbox::{Outbox, Outgoing};
use super::state::PluginState;
use super::{wit_identity, PluginError, Plugins};
use crate::bus::{Envelope, Event};
use crate::policy::Actor;
use crate::quota::ClientKey;

/// One scripted-socket connection's instance.
pub struct SocketInstance {
    plugin: Arc<LoadedPlugin>,
    store: Store<PluginState>,
    bindings: Plugin,
    conn: Arc<str>,
    /// Its place in the sockets' budget, given back when it goes.
    _slot: SocketSlot,
}

/// Scripted sockets' own instance budget: apart from walker and guard
/// calls (so sockets can never take the instances those need), and shared
/// fairly (one identity holds at most `plugins.max_sockets_per_client`).
pub(crate) struct SocketBudget {
    slots: Arc<Semaphore>,
    per_client: u32,
    held: Arc<Mutex<HashMap<ClientKey, u32>>>,
}

/// One socket's place in the budget.
struct SocketSlot {
    _permit: OwnedSemaphorePermit,
    key: ClientKey,
    held: Arc<Mutex<HashMap<ClientKey, u32>>>,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock();
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

impl SocketBudget {
    /// `total` sockets at once, `per_client` of them for one identity.
    pub(crate) fn new(total: u32, per_client: u32) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(total as usize)),
            per_client,
            held: Arc::default(),
        }
    }

    fn take(&self, key: ClientKey) -> Result<SocketSlot, CallError> {
        let mut held = self.held.lock();
        let mine = held.entry(key.clone()).or_insert(0);
        if *mine >= self.per_client {
            return Err(CallError::Busy(format!(
                "at most {} scripted sockets per client (plugins.max_sockets_per_client)",
                self.per_client
            )));
        }
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| {
            CallError::Busy(
                "every scripted-socket slot is taken (plugins.max_socket_instances)".into(),
            )
        })?;
        *mine += 1;
        Ok(SocketSlot {
            _permit: permit,
            key,
            held: self.held.clone(),
        })
    }
}

/// What a script is told.
pub enum SocketEvent<'a> {
    /// A client text frame.
    Message(&'a str),
    /// A client binary frame.
    Binary(&'a [u8]),
    /// A bus delivery (channel messages and presence changes reach the
    /// script; see [`SocketInstance::takes`]).
    Bus(&'a Envelope),
    /// The connection closed.
    Close,
}

impl Plugins {
    /// Instantiates `plugin` for a connection of `actor` (whose `conn` must
    /// be set) to `path`, and runs on-open. The plugin error, if on-open
    /// returned one, refuses the connection. A call's frames for the
    /// client are capped at `outbox_bytes`.
    ///
    /// # Errors
    /// Instantiation or on-open trapped, timed out or ran out of memory.
    pub async fn open_socket(
        &self,
        plugin: &Arc<LoadedPlugin>,
        actor: Actor,
        path: &str,
        query: &[(String, String)],
        outbox_bytes: usize,
    ) -> Result<(SocketInstance, Reply), CallError> {
        let slot = self.sockets.take(actor.key())?;
        let mut store = plugin.new_store(self.env().clone());
        let conn = actor.conn.clone().unwrap_or_else(|| Arc::from(""));
        let open = SocketOpen {
            conn_id: conn.to_string(),
            path: path.to_owned(),
            query: query.to_vec(),
            identity: wit_identity(&actor),
        };
        store.data_mut().caller = actor;
        store.data_mut().outbox = Some(Outbox::new(outbox_bytes));
        let bindings = plugin.pre.instantiate_async(&mut store).await;
        let bindings = bindings.map_err(|e| plugin.classify(e, &store))?;
        let mut instance = SocketInstance {
            plugin: plugin.clone(),
            store,
            bindings,
            conn,
            _slot: slot,
        };
        instance.plugin.arm_deadline(&mut instance.store);
        let socket = instance.bindings.switchboard_plugin_socket();
        let opened = socket.call_on_open(&mut instance.store, &open).await;
        let reply = instance.outcome(opened)?;
        Ok((instance, reply))
    }
}

impl SocketInstance {
    /// The plugin's name, for metrics and logs.
    pub fn plugin_name(&self) -> &Arc<str> {
        &self.plugin.name
    }

    /// Whether a bus delivery goes to the script (channel messages and
    /// presence changes) rather than straight to the client.
    pub fn takes(envelope: &Envelope) -> bool {
        matches!(
            envelope.event,
            Event::Message { .. } | Event::Presence { .. }
        )
    }

    /// Runs the callback for `event`. A plugin error comes back as data,
    /// with the frames the call sent before it.
    ///
    /// # Errors
    /// The script trapped, timed out or ran out of memory: the instance
    /// must not be used again (and what it sent is dropped).
    pub async fn deliver(&mut self, event: SocketEvent<'_>) -> Result<Reply, CallError> {
        self.plugin.arm_deadline(&mut self.store);
        let socket = self.bindings.switchboard_plugin_socket();
        let id = &*self.conn;
        let result = match event {
            SocketEvent::Message(text) => socket.call_on_message(&mut self.store, id, text).await,
            SocketEvent::Binary(data) => socket.call_on_binary(&mut self.store, id, data).await,
            SocketEvent::Bus(envelope) => match callback_args(envelope) {
                Some(Args::Channel(m)) => socket.call_on_channel(&mut self.store, id, &m).await,
                Some(Args::Presence(e)) => socket.call_on_presence(&mut self.store, id, &e).await,
                None => Ok(Ok(())),
            },
            SocketEvent::Close => socket.call_on_close(&mut self.store, id).await.map(Ok),
        };
        self.outcome(result)
    }

    fn outcome(
        &mut self,
        result: wasmtime::Result<Result<(), PluginError>>,
    ) -> Result<Reply, CallError> {
        let frames = self
            .store
            .data_mut()
            .outbox
            .as_mut()
            .map(Outbox::take)
            .unwrap_or_default();
        match result {
            Ok(Ok(())) => Ok(Reply {
                frames,
                error: None,
            }),
            Ok(Err(e)) => Ok(Reply {
                frames,
                error: Some(e),
            }),
            Err(trap) => Err(self.plugin.classify(trap, &self.store)),
        }
    }
}

/// What one callback produced.
#[derive(Debug, Default)]
pub struct Reply {
    /// Frames for the client, in the order the script sent them.
    pub frames: Vec<Outgoing>,
    /// The plugin error it returned, if any.
    pub error: Option<PluginError>,
}

enum Args {
    Channel(ChannelMessage),
    Presence(PresenceEvent),
}

fn callback_args(envelope: &Envelope) -> Option<Args> {
    match &envelope.event {
        Event::Message {
            channel,
            from,
            data,
            ..
        } => Some(Args::Channel(ChannelMessage {
            channel: channel.clone(),
            data: data.to_string(),
            timestamp: envelope.timestamp,
            sender_id: from.as_ref().map(|o| o.client_id.to_string()),
        })),
        Event::Presence {
            channel,
            kind,
            member,
        } => Some(Args::Presence(PresenceEvent {
            kind: match kind {
                crate::bus::PresenceKind::Join => PresenceKind::Join,
                crate::bus::PresenceKind::Leave => PresenceKind::Leave,
            },
            channel: channel.clone(),
            connection_id: member.client_id.to_string(),
            user_info: member.info.to_string(),
            timestamp: envelope.timestamp,
        })),
        _ => None,
    }
}
