//! Scripted sockets (SoliDB's model): a plugin declares a path; each
//! connection to it gets one long-lived instance, driven with on-open /
//! on-message / on-channel / on-presence / on-close. The script answers
//! through the host interface (notify-self, channel and presence calls),
//! which delivers through the bus like everything else.
//!
//! Each callback runs with a fresh deadline, yielding at every epoch tick
//! like walker calls do. A plugin
//! error (data) becomes an error frame; a trap, timeout or out-of-memory
//! leaves the instance unusable, so the socket closes with 1011.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde_json::json;
use wasmtime::Store;

use super::bindings::types::{ChannelMessage, PresenceEvent, PresenceKind, SocketOpen};
use super::bindings::Plugin;
use super::loaded::LoadedPlugin;
use super::state::PluginState;
use super::wit_identity;
use crate::auth::Identity;
use crate::bus::{Envelope, Event, Outbound};
use crate::session::{Close, Handler, CLOSE_INTERNAL, CLOSE_POLICY};
use crate::App;

/// The instance and its store.
struct Instance {
    store: Store<PluginState>,
    bindings: Plugin,
}

/// One scripted-socket connection.
pub struct ScriptedSocket {
    id: Arc<str>,
    app: Arc<App>,
    plugin: Arc<LoadedPlugin>,
    path: String,
    identity: Identity,
    query: Vec<(String, String)>,
    instance: Option<Instance>,
}

/// Which callback to run, with its argument.
enum Callback {
    Open(SocketOpen),
    Message(String),
    Channel(ChannelMessage),
    Presence(PresenceEvent),
    Close,
}

impl Callback {
    /// Runs the callback on `i` for connection `id`.
    async fn run(
        self,
        i: &mut Instance,
        id: &str,
    ) -> wasmtime::Result<Result<(), super::PluginError>> {
        let socket = i.bindings.switchboard_plugin_socket();
        match self {
            Callback::Open(open) => socket.call_on_open(&mut i.store, &open).await,
            Callback::Message(text) => socket.call_on_message(&mut i.store, id, &text).await,
            Callback::Channel(m) => socket.call_on_channel(&mut i.store, id, &m).await,
            Callback::Presence(e) => socket.call_on_presence(&mut i.store, id, &e).await,
            Callback::Close => socket.call_on_close(&mut i.store, id).await.map(Ok),
        }
    }
}

impl ScriptedSocket {
    /// A connection to `plugin`'s socket at `path`; instantiated on greeting.
    pub fn new(
        id: Arc<str>,
        app: Arc<App>,
        plugin: Arc<LoadedPlugin>,
        path: String,
        identity: Identity,
        query: Vec<(String, String)>,
    ) -> Self {
        Self {
            id,
            app,
            plugin,
            path,
            identity,
            query,
            instance: None,
        }
    }

    /// Runs one callback. A plugin error comes back as an error frame;
    /// anything worse closes the socket.
    async fn call(&mut self, callback: Callback) -> Result<Vec<Utf8Bytes>, Close> {
        let Some(mut instance) = self.instance.take() else {
            return Err((
                CLOSE_INTERNAL,
                "PLUGIN_ERROR: script instance is gone".into(),
            ));
        };
        self.plugin.arm_deadline(&mut instance.store);
        let result = callback.run(&mut instance, &self.id).await;
        match result {
            Ok(Ok(())) => {
                self.app.metrics.plugin_call(&self.plugin.name, "ok");
                self.instance = Some(instance);
                Ok(Vec::new())
            }
            Ok(Err(e)) => {
                self.app.metrics.plugin_call(&self.plugin.name, "error");
                self.instance = Some(instance);
                let frame = json!({"type": "error", "code": "PLUGIN_ERROR", "message": format!("{}: {}", e.code, e.message)});
                Ok(vec![Utf8Bytes::from(frame.to_string())])
            }
            Err(trap) => {
                let err = self.plugin.classify(trap);
                self.app
                    .metrics
                    .plugin_call(&self.plugin.name, err.outcome());
                tracing::warn!(plugin = %self.plugin.name, client = %self.id, cause = %err, "socket script failed; closing");
                Err((CLOSE_INTERNAL, format!("PLUGIN_ERROR: {err}")))
            }
        }
    }

    fn on_event(&self, envelope: &Envelope) -> Option<Callback> {
        match &envelope.event {
            Event::Message {
                channel,
                from,
                data,
            } => {
                let message = ChannelMessage {
                    channel: channel.clone(),
                    data: data.to_string(),
                    timestamp: envelope.timestamp,
                    sender_id: from.as_ref().map(|o| o.client_id.to_string()),
                };
                Some(Callback::Channel(message))
            }
            Event::Presence {
                channel,
                kind,
                member,
            } => {
                let event = PresenceEvent {
                    kind: match kind {
                        crate::bus::PresenceKind::Join => PresenceKind::Join,
                        crate::bus::PresenceKind::Leave => PresenceKind::Leave,
                    },
                    channel: channel.clone(),
                    connection_id: member.client_id.to_string(),
                    user_info: member.info.to_string(),
                    timestamp: envelope.timestamp,
                };
                Some(Callback::Presence(event))
            }
            _ => None,
        }
    }
}

impl Handler for ScriptedSocket {
    fn id(&self) -> &Arc<str> {
        &self.id
    }

    async fn greeting(&mut self) -> Result<Vec<Utf8Bytes>, Close> {
        let mut store = self
            .plugin
            .new_store(self.app.plugins.env().clone(), Some(self.id.clone()));
        let bindings = self.plugin.pre.instantiate_async(&mut store).await;
        let bindings = bindings.map_err(|e| {
            (
                CLOSE_INTERNAL,
                format!("PLUGIN_ERROR: {}", self.plugin.classify(e)),
            )
        })?;
        self.instance = Some(Instance { store, bindings });
        let open = SocketOpen {
            conn_id: self.id.to_string(),
            path: self.path.clone(),
            query: self.query.clone(),
            identity: wit_identity(&self.identity, Some(&self.id)),
        };
        let frames = self.call(Callback::Open(open)).await?;
        if frames.is_empty() {
            Ok(frames)
        } else {
            // on-open refused the connection.
            Err((
                CLOSE_POLICY,
                "FORBIDDEN: the socket script refused the connection".into(),
            ))
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<Vec<Utf8Bytes>, Close> {
        self.app.metrics.messages_in.inc();
        self.call(Callback::Message(text.to_owned())).await
    }

    async fn on_outbound(&mut self, out: Outbound) -> Result<Vec<Utf8Bytes>, Close> {
        match out {
            Outbound::Frame(text) => Ok(vec![*text]),
            Outbound::Event(envelope) => match self.on_event(&envelope) {
                Some(callback) => self.call(callback).await,
                // The script's own sends (notify-self) arrive as
                // notifications: their data goes to the client as is, a
                // JSON string as its bare text (SoliDB's `send(data)`).
                None => Ok(match &envelope.event {
                    Event::Notify {
                        data: serde_json::Value::String(text),
                        ..
                    } => vec![Utf8Bytes::from(text.clone())],
                    Event::Notify { data, .. } => vec![Utf8Bytes::from(data.to_string())],
                    _ => crate::protocol::encode_event(&crate::protocol::native::Native, &envelope)
                        .into_iter()
                        .collect(),
                }),
            },
        }
    }

    async fn on_close(&mut self) {
        if self.instance.is_some() {
            let _ = self.call(Callback::Close).await;
        }
    }
}
