//! A scripted-socket connection: the session loop drives a plugin's
//! [`SocketInstance`] with the client's frames (text and binary, as they
//! came) and the bus deliveries the script takes. What each callback sent
//! its client (`notify-self`, `notify-self-binary`) goes out in order
//! after it; anything else the bus delivers goes to the client as is. A
//! plugin error becomes an error frame; a trap, timeout or out-of-memory
//! closes the socket with 1011.

use std::sync::Arc;

use crate::wire::{Message, Utf8Bytes};
use serde_json::json;

use super::{Close, Connected, Handler, CLOSE_INTERNAL, CLOSE_POLICY};
use crate::bus::{Event, Outbound};
use crate::plugins::outbox::Outgoing;
use crate::plugins::socket::{Reply, SocketEvent, SocketInstance};
use crate::plugins::{CallError, LoadedPlugin, PluginError};
use crate::policy::Actor;
use crate::App;

/// One scripted-socket connection.
pub struct ScriptedSocket {
    id: Arc<str>,
    app: Arc<App>,
    plugin: Arc<LoadedPlugin>,
    path: String,
    actor: Actor,
    query: Vec<(String, String)>,
    instance: Option<SocketInstance>,
}

impl ScriptedSocket {
    /// A connection to `plugin`'s socket at `path`; instantiated on greeting.
    pub fn new(
        id: Arc<str>,
        app: Arc<App>,
        plugin: Arc<LoadedPlugin>,
        path: String,
        connected: Connected,
    ) -> Self {
        let actor =
            Actor::new(Arc::new(connected.identity), Some(id.clone())).with_peer(connected.peer);
        Self {
            id,
            app,
            plugin,
            path,
            actor,
            query: connected.query,
            instance: None,
        }
    }

    fn count(&self, outcome: &'static str) {
        self.app.metrics.plugin_call(&self.plugin.name, outcome);
    }

    /// A plugin error as the frame the client sees.
    fn error_frame(&self, e: &PluginError) -> Message {
        self.count("error");
        let code = crate::error::ErrorCode::from(e.code);
        let frame = json!({"type": "error", "code": "PLUGIN_ERROR", "message": format!("{code}: {}", e.message)});
        text(frame.to_string())
    }

    /// A callback's frames, then its error frame if it returned one.
    fn frames(&self, reply: Reply) -> Vec<Message> {
        let mut frames: Vec<Message> = reply
            .frames
            .into_iter()
            .map(|frame| match frame {
                Outgoing::Text(t) => text(t),
                Outgoing::Binary(b) => Message::Binary(b.into()),
            })
            .collect();
        match reply.error {
            Some(e) => frames.push(self.error_frame(&e)),
            None => self.count("ok"),
        }
        frames
    }

    /// Counts a client frame against the same per-identity budget as every
    /// dialect (a script's client does not get a fresh one per socket);
    /// the error frame when it is spent.
    fn rate_limited(&self) -> Option<Message> {
        self.app.metrics.messages_in.inc();
        let exceeded = self.app.quotas.requests(&self.actor.key(), 1).err()?;
        let error = super::apply::rate_limited(&self.app.config.limits, exceeded);
        self.app.metrics.error(error.code);
        let frame = json!({"type": "error", "code": error.code.as_str(), "message": error.message});
        Some(text(frame.to_string()))
    }

    /// A failed instance closes the socket.
    fn failed(&mut self, err: &CallError) -> Close {
        self.count(err.outcome());
        self.instance = None;
        tracing::warn!(plugin = %self.plugin.name, client = %self.id, cause = %err, "socket script failed; closing");
        (CLOSE_INTERNAL, format!("PLUGIN_ERROR: {err}"))
    }

    async fn deliver(&mut self, event: SocketEvent<'_>) -> Result<Vec<Message>, Close> {
        let Some(instance) = self.instance.as_mut() else {
            return Err((
                CLOSE_INTERNAL,
                "PLUGIN_ERROR: script instance is gone".into(),
            ));
        };
        match instance.deliver(event).await {
            Ok(reply) => Ok(self.frames(reply)),
            Err(err) => Err(self.failed(&err)),
        }
    }
}

impl Handler for ScriptedSocket {
    fn id(&self) -> &Arc<str> {
        &self.id
    }

    async fn greeting(&mut self) -> Result<Vec<Message>, Close> {
        let cap = self.app.config.limits.outbound_queue_bytes;
        let opened = self
            .app
            .plugins
            .open_socket(
                &self.plugin,
                self.actor.clone(),
                &self.path,
                &self.query,
                cap,
            )
            .await;
        match opened {
            Ok((instance, reply)) => {
                self.instance = Some(instance);
                match reply.error {
                    None => Ok(self.frames(reply)),
                    Some(_) => {
                        self.count("error");
                        Err((
                            CLOSE_POLICY,
                            "FORBIDDEN: the socket script refused the connection".into(),
                        ))
                    }
                }
            }
            Err(CallError::Busy(why)) => {
                self.count("busy");
                self.app.metrics.disconnect("socket_capacity");
                Err((crate::bus::CLOSE_SLOW_CONSUMER, format!("TRY_AGAIN: {why}")))
            }
            Err(err) => Err(self.failed(&err)),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<Vec<Message>, Close> {
        if let Some(refused) = self.rate_limited() {
            return Ok(vec![refused]);
        }
        self.deliver(SocketEvent::Message(text)).await
    }

    async fn on_binary(&mut self, bytes: &[u8]) -> Result<Vec<Message>, Close> {
        if let Some(refused) = self.rate_limited() {
            return Ok(vec![refused]);
        }
        self.deliver(SocketEvent::Binary(bytes)).await
    }

    async fn on_outbound(&mut self, out: Outbound) -> Result<Vec<Message>, Close> {
        if SocketInstance::takes(&out) {
            return self.deliver(SocketEvent::Bus(&out)).await;
        }
        // The script's own sends (notify-self) arrive as notifications:
        // their data goes to the client as is, a JSON string as its bare
        // text (SoliDB's `send(data)`).
        Ok(match &out.event {
            Event::Notify {
                data: serde_json::Value::String(text),
                ..
            } => vec![self::text(text.clone())],
            Event::Notify { data, .. } => vec![self::text(data.to_string())],
            _ => super::outbound_frame(&crate::protocol::native::Native, out)
                .into_iter()
                .collect(),
        })
    }

    async fn on_close(&mut self) {
        if self.instance.is_some() {
            let _ = self.deliver(SocketEvent::Close).await;
        }
    }

    fn expires_at_ms(&self) -> Option<u64> {
        self.actor.identity.expires_at_ms
    }

    fn expiry_warning(&self, ms_left: u64) -> Vec<Message> {
        let frame = json!({"type": "error", "code": "TOKEN_EXPIRED", "message": format!("the token expires in {ms_left} ms")});
        vec![text(frame.to_string())]
    }
}

fn text(text: String) -> Message {
    Message::Text(Utf8Bytes::from(text))
}
