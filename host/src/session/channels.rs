//! Channel commands: subscribe, publish, targeted sends, presence — each
//! checked by the guards first.

use serde_json::{json, Value};

use super::Session;
use crate::bus::{Event, Filter};
use crate::error::ClientError;
use crate::plugins::{GuardOutcome, Operation};
use crate::protocol::{Reply, Target};
use crate::resources::resource_channel;

impl Session {
    /// Consults the guards for `op` on `target`.
    pub(super) async fn guard(
        &self,
        op: Operation,
        target: &str,
        payload: &Value,
    ) -> Result<GuardOutcome, ClientError> {
        Ok(self
            .app
            .plugins
            .guard(op, target, &self.identity, Some(self.id.clone()), payload)
            .await?)
    }

    pub(super) async fn subscribe_channel(
        &mut self,
        channel: &str,
        filter: &Value,
    ) -> Result<Reply, ClientError> {
        let client = Filter::from_value(filter).map_err(ClientError::bad_request)?;
        let guard = self.guard(Operation::Subscribe, channel, filter).await?;
        let filter = Filter::and(client, guard.filter);
        self.app.bus.subscribe(&self.id, channel, filter.clone());
        Ok(Reply::Subscribed {
            target: Target::Channel(channel.to_owned()),
            filter: filter.map_or(Value::Null, |f| f.to_value()),
            events: Vec::new(),
            recovered: None,
        })
    }

    pub(super) fn unsubscribe_channel(&mut self, channel: &str) -> Result<Reply, ClientError> {
        self.app.bus.unsubscribe(&self.id, channel);
        Ok(Reply::Unsubscribed {
            target: Target::Channel(channel.to_owned()),
        })
    }

    pub(super) async fn publish(
        &mut self,
        channel: &str,
        message: &Value,
    ) -> Result<Reply, ClientError> {
        let guard = self.guard(Operation::Publish, channel, message).await?;
        let message = patched(message, guard.patch);
        let mut delivered = self.publish_message(channel, channel, &message);
        // As s3db.js does, a publish also reaches the subscribers of a
        // resource of that name.
        if self.app.resources.exists(channel) {
            delivered += self.publish_message(&resource_channel(channel), channel, &message);
        }
        Ok(Reply::Published {
            channel: channel.to_owned(),
            delivered,
        })
    }

    fn publish_message(&self, bus_channel: &str, channel: &str, message: &Value) -> usize {
        let event = Event::Message {
            channel: channel.to_owned(),
            from: Some(self.origin()),
            data: message.clone(),
        };
        self.app.bus.publish(bus_channel, event, message)
    }

    pub(super) async fn send(
        &mut self,
        users: &[String],
        clients: &[String],
        channels: &[String],
        data: &Value,
    ) -> Result<Reply, ClientError> {
        if !users.is_empty() || !clients.is_empty() {
            self.guard(Operation::Send, "direct", data).await?;
        }
        for channel in channels {
            self.guard(Operation::Send, channel, data).await?;
        }
        let bus = &self.app.bus;
        let direct = || Event::Direct {
            from: self.origin(),
            data: data.clone(),
        };
        let mut delivered =
            bus.send_to_users(users, direct()) + bus.send_to_clients(clients, direct());
        for channel in channels {
            delivered += self.publish_message(channel, channel, data);
        }
        Ok(Reply::Sent { delivered })
    }

    pub(super) fn presence_join(
        &mut self,
        channel: &str,
        info: &Value,
    ) -> Result<Reply, ClientError> {
        let info = if info.is_null() {
            json!({})
        } else {
            info.clone()
        };
        self.app.bus.presence_join(&self.id, channel, info);
        Ok(Reply::Joined {
            channel: channel.to_owned(),
        })
    }
}

/// `message` with a guard's patch merged in (objects only: a patch cannot
/// apply to a scalar payload).
fn patched(message: &Value, patch: serde_json::Map<String, Value>) -> Value {
    match message {
        Value::Object(map) if !patch.is_empty() => {
            let mut map = map.clone();
            map.extend(patch);
            Value::Object(map)
        }
        other => other.clone(),
    }
}
