//! The `host` interface plugins import: notifications, publish, channel
//! and presence operations for the current connection, store access, kv
//! and log. Everything delivers through the bus, so plugin output reaches
//! every dialect the same way client output does.

use std::sync::Arc;

use serde_json::{json, Value};

use super::bindings::host::Host;
use super::bindings::types::{self, Level, PluginError};
use super::state::PluginState;
use crate::bus::{Event, Origin};

fn error(code: &str, message: impl Into<String>) -> PluginError {
    PluginError {
        code: code.to_owned(),
        message: message.into(),
    }
}

fn parse(json: &str) -> Result<Value, PluginError> {
    serde_json::from_str(json)
        .map_err(|e| error("BAD_JSON", format!("invalid JSON from plugin: {e}")))
}

impl PluginState {
    fn conn_id(&self) -> Result<Arc<str>, PluginError> {
        self.conn
            .clone()
            .ok_or_else(|| error("NO_CONNECTION", "this call has no current connection"))
    }

    fn origin(&self) -> Option<Origin> {
        self.conn.as_ref().map(|c| Origin {
            client_id: c.clone(),
            user_id: None,
        })
    }

    fn store(&self) -> Result<&Arc<dyn super::PluginStore>, PluginError> {
        self.env
            .store
            .as_ref()
            .ok_or_else(|| error("RESOURCE_NOT_FOUND", "no store is configured"))
    }
}

impl types::Host for PluginState {}

/// Runs a store operation on a blocking thread: it may commit to disk, and
/// plugin calls run on the async threads.
async fn off_thread<R: Send + 'static>(
    op: impl FnOnce() -> Result<R, PluginError> + Send + 'static,
) -> Result<R, PluginError> {
    tokio::task::spawn_blocking(op)
        .await
        .unwrap_or_else(|e| Err(error("INTERNAL", format!("store operation failed: {e}"))))
}

impl Host for PluginState {
    fn notify_self(&mut self, data: String) -> Result<(), PluginError> {
        let conn = self.conn_id()?;
        let data = parse(&data)?;
        self.env.bus.send_to_clients(
            &[conn],
            Event::Notify {
                data,
                channel: None,
            },
        );
        Ok(())
    }

    fn notify_users(&mut self, user_ids: Vec<String>, data: String) -> Result<u32, PluginError> {
        let data = parse(&data)?;
        Ok(self.env.bus.send_to_users(
            &user_ids,
            Event::Notify {
                data,
                channel: None,
            },
        ) as u32)
    }

    fn notify_channels(&mut self, channels: Vec<String>, data: String) -> Result<u32, PluginError> {
        let data = parse(&data)?;
        let mut delivered = 0;
        for channel in channels {
            delivered += self.env.bus.publish(
                &channel,
                Event::Notify {
                    data: data.clone(),
                    channel: Some(channel.clone()),
                },
                &data,
            );
        }
        Ok(delivered as u32)
    }

    fn notify_clients(
        &mut self,
        client_ids: Vec<String>,
        data: String,
    ) -> Result<u32, PluginError> {
        let data = parse(&data)?;
        Ok(self.env.bus.send_to_clients(
            &client_ids,
            Event::Notify {
                data,
                channel: None,
            },
        ) as u32)
    }

    fn publish(&mut self, channel: String, message: String) -> Result<u32, PluginError> {
        let data = parse(&message)?;
        let event = Event::Message {
            channel: channel.clone(),
            from: None,
            data: data.clone(),
        };
        Ok(self.env.bus.publish(&channel, event, &data) as u32)
    }

    fn channel_subscribe(&mut self, channel: String) -> Result<(), PluginError> {
        let conn = self.conn_id()?;
        self.env.bus.subscribe(&conn, &channel, None);
        Ok(())
    }

    fn channel_unsubscribe(&mut self, channel: String) -> Result<(), PluginError> {
        let conn = self.conn_id()?;
        self.env.bus.unsubscribe(&conn, &channel);
        Ok(())
    }

    fn channel_broadcast(&mut self, channel: String, data: String) -> Result<u32, PluginError> {
        let data = parse(&data)?;
        let event = Event::Message {
            channel: channel.clone(),
            from: self.origin(),
            data: data.clone(),
        };
        Ok(self.env.bus.publish(&channel, event, &data) as u32)
    }

    fn channel_list(&mut self) -> Result<Vec<String>, PluginError> {
        let conn = self.conn_id()?;
        Ok(self.env.bus.channels_of(&conn))
    }

    fn presence_join(&mut self, channel: String, user_info: String) -> Result<(), PluginError> {
        let conn = self.conn_id()?;
        let info = parse(&user_info)?;
        self.env
            .bus
            .presence_join(&conn, &channel, info)
            .map(|_| ())
            .ok_or_else(|| error("NO_CONNECTION", "the connection is gone"))
    }

    fn presence_leave(&mut self, channel: String) -> Result<(), PluginError> {
        let conn = self.conn_id()?;
        self.env.bus.presence_leave(&conn, &channel);
        Ok(())
    }

    fn presence_list(&mut self, channel: String) -> Result<String, PluginError> {
        let members: Vec<Value> = self
            .env
            .bus
            .presence_list(&channel)
            .iter()
            .map(|m| {
                json!({
                    "connection_id": &*m.client_id,
                    "user_info": m.info,
                    "joined_at": m.joined_at,
                })
            })
            .collect();
        Ok(Value::Array(members).to_string())
    }

    fn close(&mut self, code: u16, reason: String) -> Result<(), PluginError> {
        let conn = self.conn_id()?;
        self.env.bus.kill(&conn, code, &reason);
        Ok(())
    }

    async fn store_get(
        &mut self,
        resource: String,
        id: String,
    ) -> Result<Option<String>, PluginError> {
        let store = self.store()?.clone();
        off_thread(move || {
            store
                .get(&resource, &id)
                .map(|record| record.map(|r| r.to_string()))
        })
        .await
    }

    async fn store_list(
        &mut self,
        resource: String,
        filter: String,
        limit: u32,
    ) -> Result<String, PluginError> {
        let filter = parse(&filter)?;
        let store = self.store()?.clone();
        off_thread(move || {
            store
                .list(&resource, &filter, limit as usize)
                .map(|records| Value::Array(records).to_string())
        })
        .await
    }

    async fn store_insert(
        &mut self,
        resource: String,
        record: String,
    ) -> Result<String, PluginError> {
        let record = parse(&record)?;
        let store = self.store()?.clone();
        off_thread(move || store.insert(&resource, record).map(|r| r.to_string())).await
    }

    async fn store_update(
        &mut self,
        resource: String,
        id: String,
        patch: String,
    ) -> Result<String, PluginError> {
        let patch = parse(&patch)?;
        let store = self.store()?.clone();
        off_thread(move || store.update(&resource, &id, patch).map(|r| r.to_string())).await
    }

    async fn store_delete(&mut self, resource: String, id: String) -> Result<(), PluginError> {
        let store = self.store()?.clone();
        off_thread(move || store.delete(&resource, &id)).await
    }

    fn kv_get(&mut self, key: String) -> Option<String> {
        self.env
            .kv
            .lock()
            .get(&(self.plugin.to_string(), key))
            .cloned()
    }

    fn kv_set(&mut self, key: String, value: String) {
        self.env
            .kv
            .lock()
            .insert((self.plugin.to_string(), key), value);
    }

    fn kv_delete(&mut self, key: String) {
        self.env.kv.lock().remove(&(self.plugin.to_string(), key));
    }

    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}
