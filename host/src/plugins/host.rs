//! The `host` interface plugins import: notifications, publish, channel
//! and presence operations for the current connection, store access, kv
//! and log. Everything delivers through the bus, so plugin output reaches
//! every dialect the same way client output does — and everything is
//! checked by the policy as the client the call came from, exactly as if
//! that client had asked itself (unless the operator configured the plugin
//! `trusted_store` / `trusted_bus`).

use std::sync::Arc;

use serde_json::{json, Value};

use super::bindings::host::Host;
use super::bindings::types::{self, ErrorCode, Level, PluginError};
use super::outbox::Outgoing;
use super::state::{PluginState, Rights};
use super::HostEnv;
use crate::bus::{Event, Origin, Topic};
use crate::policy::{Access, Actor, Policy};

fn error(code: ErrorCode, message: impl Into<String>) -> PluginError {
    PluginError {
        code,
        message: message.into(),
    }
}

fn parse(json: &str) -> Result<Value, PluginError> {
    serde_json::from_str(json).map_err(|e| {
        error(
            ErrorCode::InvalidJson,
            format!("invalid JSON from plugin: {e}"),
        )
    })
}

/// What an async host call needs, taken out of the store's state: the
/// state itself (WASI context included) cannot be held across an await.
struct Call {
    env: Arc<HostEnv>,
    caller: Actor,
    in_guard: bool,
    rights: Rights,
}

impl PluginState {
    fn call(&self) -> Call {
        Call {
            env: self.env.clone(),
            caller: self.caller.clone(),
            in_guard: self.in_guard,
            rights: self.rights,
        }
    }
}

impl Call {
    fn conn_id(&self) -> Result<Arc<str>, PluginError> {
        self.caller
            .conn
            .clone()
            .ok_or_else(|| error(ErrorCode::BadRequest, "this call has no current connection"))
    }

    fn origin(&self) -> Option<Origin> {
        self.caller.conn.as_ref().map(|c| Origin {
            client_id: c.clone(),
            user_id: self.caller.identity.user_id.clone(),
        })
    }

    fn policy(&self) -> &Arc<Policy> {
        self.env.resources.policy()
    }

    fn access(&self, trusted: bool) -> Access<'_> {
        match (trusted, self.in_guard) {
            (true, _) => Access::Trusted,
            (false, true) => Access::Guardless(&self.caller),
            (false, false) => Access::Client(&self.caller),
        }
    }

    fn store_access(&self) -> Access<'_> {
        self.access(self.rights.store)
    }

    fn bus_access(&self) -> Access<'_> {
        self.access(self.rights.bus)
    }

    /// Authorizes a write of `data` to each channel; returns the data to
    /// deliver to each (guards may patch it).
    async fn write_channels(
        &self,
        channels: &[String],
        data: &Value,
    ) -> Result<Vec<Value>, PluginError> {
        let mut out = Vec::with_capacity(channels.len());
        for channel in channels {
            check_channel(channel)?;
            out.push(
                self.policy()
                    .write_channel(&self.bus_access(), channel, data)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Authorizes a send to users and clients; returns the data to deliver.
    async fn send_direct(
        &self,
        users: &[String],
        clients: &[String],
        data: &Value,
    ) -> Result<Value, PluginError> {
        Ok(self
            .policy()
            .send_direct(&self.bus_access(), users, clients, data)
            .await?)
    }
}

/// Channel names from plugins follow the clients' rules (non-empty, no
/// control characters, bounded), so a plugin relaying a client's choice
/// cannot smuggle one.
fn check_channel(channel: &str) -> Result<(), PluginError> {
    if channel.is_empty() {
        return Err(error(
            ErrorCode::BadRequest,
            "a channel name must not be empty",
        ));
    }
    crate::protocol::fields::check_channel(channel, "channel").map_err(PluginError::from)
}

fn notify(data: Value, channel: Option<String>) -> Event {
    Event::Notify { data, channel }
}

impl types::Host for PluginState {}

impl Host for PluginState {
    fn notify_self(&mut self, data: String) -> Result<(), PluginError> {
        let conn = self.call().conn_id()?;
        let data = parse(&data)?;
        if let Some(outbox) = self.outbox.as_mut() {
            // A JSON string goes out as its bare text (SoliDB's `send`).
            let text = match data {
                Value::String(text) => text,
                other => other.to_string(),
            };
            return outbox.push(Outgoing::Text(text));
        }
        self.env.bus.send_to_clients(&[conn], notify(data, None));
        Ok(())
    }

    fn notify_self_binary(&mut self, data: Vec<u8>) -> Result<(), PluginError> {
        match self.outbox.as_mut() {
            Some(outbox) => outbox.push(Outgoing::Binary(data)),
            None => Err(error(
                ErrorCode::BadRequest,
                "only a scripted socket can send binary frames",
            )),
        }
    }

    async fn notify_users(
        &mut self,
        user_ids: Vec<String>,
        data: String,
    ) -> Result<u32, PluginError> {
        let c = self.call();
        let data = c.send_direct(&user_ids, &[], &parse(&data)?).await?;
        Ok(c.env.bus.send_to_users(&user_ids, notify(data, None)) as u32)
    }

    async fn notify_channels(
        &mut self,
        channels: Vec<String>,
        data: String,
    ) -> Result<u32, PluginError> {
        let c = self.call();
        let data = parse(&data)?;
        let allowed = c.write_channels(&channels, &data).await?;
        let mut delivered = 0;
        for (channel, data) in channels.into_iter().zip(allowed) {
            let topic = Topic::channel(&channel);
            delivered += c
                .env
                .bus
                .publish(&topic, notify(data.clone(), Some(channel)), &data);
        }
        Ok(delivered as u32)
    }

    async fn notify_clients(
        &mut self,
        client_ids: Vec<String>,
        data: String,
    ) -> Result<u32, PluginError> {
        let c = self.call();
        let data = c.send_direct(&[], &client_ids, &parse(&data)?).await?;
        Ok(c.env.bus.send_to_clients(&client_ids, notify(data, None)) as u32)
    }

    async fn publish(&mut self, channel: String, message: String) -> Result<u32, PluginError> {
        let c = self.call();
        let data = parse(&message)?;
        let mut allowed = c
            .write_channels(std::slice::from_ref(&channel), &data)
            .await?;
        let data = allowed.pop().unwrap_or(data);
        let (delivered, _) = c
            .env
            .resources
            .publish_message(&channel, None, &data)
            .await?;
        Ok(delivered as u32)
    }

    async fn channel_subscribe(&mut self, channel: String) -> Result<(), PluginError> {
        let c = self.call();
        let conn = c.conn_id()?;
        check_channel(&channel)?;
        let filter = c
            .policy()
            .read_channel(&c.bus_access(), &channel, &Value::Null, &Value::Null)
            .await?;
        c.env
            .bus
            .subscribe(&conn, &Topic::channel(&channel), filter)
            .map_err(|e| crate::error::ClientError::from(e).into())
    }

    fn channel_unsubscribe(&mut self, channel: String) -> Result<(), PluginError> {
        let conn = self.call().conn_id()?;
        self.env.bus.unsubscribe(&conn, &Topic::channel(&channel));
        Ok(())
    }

    async fn channel_broadcast(
        &mut self,
        channel: String,
        data: String,
    ) -> Result<u32, PluginError> {
        let c = self.call();
        let data = parse(&data)?;
        let mut allowed = c
            .write_channels(std::slice::from_ref(&channel), &data)
            .await?;
        let data = allowed.pop().unwrap_or(data);
        let (delivered, _) = c
            .env
            .resources
            .publish_message(&channel, c.origin(), &data)
            .await?;
        Ok(delivered as u32)
    }

    fn channel_list(&mut self) -> Result<Vec<String>, PluginError> {
        let conn = self.call().conn_id()?;
        Ok(self.env.bus.channels_of(&conn))
    }

    async fn presence_join(
        &mut self,
        channel: String,
        user_info: String,
    ) -> Result<(), PluginError> {
        let c = self.call();
        let conn = c.conn_id()?;
        check_channel(&channel)?;
        let info = parse(&user_info)?;
        let payload = json!({"presence": "join", "info": info});
        c.policy()
            .read_channel(&c.bus_access(), &channel, &Value::Null, &payload)
            .await?;
        c.env
            .bus
            .presence_join(&conn, &channel, info)
            .map(|_| ())
            .map_err(|e| crate::error::ClientError::from(e).into())
    }

    fn presence_leave(&mut self, channel: String) -> Result<(), PluginError> {
        let conn = self.call().conn_id()?;
        self.env.bus.presence_leave(&conn, &channel);
        Ok(())
    }

    async fn presence_list(&mut self, channel: String) -> Result<String, PluginError> {
        let c = self.call();
        let access = c.bus_access();
        let payload = json!({"presence": "list"});
        c.policy()
            .read_channel(&access, &channel, &Value::Null, &payload)
            .await?;
        // A script often relays the list to its client: ids stay hidden
        // from callers who could not message them anyway.
        let show_ids = c.policy().may_send_direct(&access);
        let members: Vec<Value> = c
            .env
            .bus
            .presence_members(&channel)
            .await
            .iter()
            .map(|m| {
                json!({
                    "connection_id": if show_ids { &*m.client_id } else { "" },
                    "member_id": &*m.member_id,
                    "user_info": m.info,
                    "joined_at": m.joined_at,
                })
            })
            .collect();
        Ok(Value::Array(members).to_string())
    }

    fn close(&mut self, code: u16, reason: String) -> Result<(), PluginError> {
        let conn = self.call().conn_id()?;
        self.env.bus.kill(&conn, code, &reason);
        Ok(())
    }

    async fn store_get(
        &mut self,
        resource: String,
        id: String,
    ) -> Result<Option<String>, PluginError> {
        let c = self.call();
        match c.env.resources.get(&c.store_access(), &resource, &id).await {
            Ok(record) => Ok(Some(record.to_string())),
            Err(e) if e.code == crate::error::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn store_list(
        &mut self,
        resource: String,
        filter: String,
        limit: u32,
    ) -> Result<String, PluginError> {
        let c = self.call();
        let filter = parse(&filter)?;
        let (rows, _) = c
            .env
            .resources
            .list(
                &c.store_access(),
                &resource,
                &filter,
                Some(limit as usize),
                None,
            )
            .await?;
        let rows: Vec<Value> = rows.into_iter().map(|r| r.record).collect();
        Ok(Value::Array(rows).to_string())
    }

    async fn store_insert(
        &mut self,
        resource: String,
        record: String,
    ) -> Result<String, PluginError> {
        let c = self.call();
        let record = parse(&record)?;
        let stored = c
            .env
            .resources
            .insert(&c.store_access(), &resource, record)
            .await?;
        Ok(stored.to_string())
    }

    async fn store_update(
        &mut self,
        resource: String,
        id: String,
        patch: String,
    ) -> Result<String, PluginError> {
        let c = self.call();
        let patch = parse(&patch)?;
        let stored = c
            .env
            .resources
            .update(&c.store_access(), &resource, &id, patch)
            .await?;
        Ok(stored.to_string())
    }

    async fn store_delete(&mut self, resource: String, id: String) -> Result<(), PluginError> {
        let c = self.call();
        c.env
            .resources
            .delete(&c.store_access(), &resource, &id)
            .await?;
        Ok(())
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
