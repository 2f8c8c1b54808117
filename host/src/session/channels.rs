//! Channel commands: subscribe, publish, targeted sends, presence — each
//! authorized by the policy first, and refused when a client's payload
//! would impersonate a server frame.

use serde_json::{json, Value};

use super::Session;
use crate::bus::{Event, Topic};
use crate::error::ClientError;
use crate::policy::check_client_payload;
use crate::protocol::fields::check_channel;
use crate::protocol::{Reply, Since, Target};

impl Session {
    /// Subscribes to a channel; with `since` on a channel that keeps
    /// history, replays what was missed (in order, before any new message,
    /// without duplicates) and says whether that was all.
    pub(super) async fn subscribe_channel(
        &mut self,
        channel: &str,
        filter: &Value,
        since: Option<&Since>,
    ) -> Result<Reply, ClientError> {
        check_channel(channel, "channel")?;
        let since = match since {
            None => None,
            Some(Since::Position(p)) => Some(p.clone()),
            Some(Since::Seq(_)) => {
                return Err(ClientError::bad_request(
                    "a channel resumes `since` {\"offset\", \"epoch\"}",
                ))
            }
        };
        let effective = self
            .policy()
            .read_channel(&self.access(), channel, filter, filter)
            .await?;
        // Subscribe before reading the history, so nothing falls between
        // the two; live copies of replayed messages are dropped by offset.
        self.app
            .bus
            .subscribe(&self.id, &Topic::channel(channel), effective.clone())?;
        self.held
            .channels
            .insert(channel.to_owned(), filter.clone());
        let asked = since.is_some();
        if let (Some(link), Some(_)) = (
            self.app.bus.link(),
            self.app.resources.histories().options(channel),
        ) {
            // The other nodes' messages reach this node only once its Redis
            // subscription holds: read the history after that.
            link.settled().await;
        }
        // History that cannot be read (the cluster's Redis is down) leaves
        // a live subscription that says it recovered nothing.
        let recovery = match self.app.resources.channel_since(channel, since).await {
            Ok(recovery) => recovery,
            Err(e) => {
                tracing::debug!(channel, error = %e.message, "channel history unavailable");
                None
            }
        };
        let subscribed = |recovered, position| Reply::Subscribed {
            target: Target::Channel(channel.to_owned()),
            filter: effective.as_ref().map_or(Value::Null, |f| f.to_value()),
            events: Vec::new(),
            recovered,
            position,
        };
        let Some(recovery) = recovery else {
            return Ok(subscribed(asked.then_some(false), None));
        };
        let missed: Vec<Event> = recovery
            .missed
            .into_iter()
            .filter(|e| match (e, &effective) {
                (Event::Message { data, .. }, Some(f)) => f.matches(data),
                _ => true,
            })
            .collect();
        self.channel_floors
            .insert(channel.to_owned(), recovery.current.offset);
        let reply = subscribed(asked.then_some(recovery.recovered), Some(recovery.current));
        Ok(Reply::Resumed {
            subscribed: Box::new(reply),
            missed,
        })
    }

    pub(super) fn unsubscribe_channel(&mut self, channel: &str) -> Result<Reply, ClientError> {
        self.app.bus.unsubscribe(&self.id, &Topic::channel(channel));
        self.held.channels.remove(channel);
        Ok(Reply::Unsubscribed {
            target: Target::Channel(channel.to_owned()),
        })
    }

    pub(super) async fn publish(
        &mut self,
        channel: &str,
        message: &Value,
    ) -> Result<Reply, ClientError> {
        check_channel(channel, "channel")?;
        check_client_payload(message)?;
        let message = self
            .policy()
            .write_channel(&self.access(), channel, message)
            .await?;
        let (delivered, position) = self
            .app
            .resources
            .publish_message(channel, Some(self.origin()), &message)
            .await?;
        Ok(Reply::Published {
            channel: channel.to_owned(),
            delivered,
            position,
        })
    }

    /// A send to users, clients and channels: every target is authorized
    /// before anything is delivered, so a refusal delivers nothing.
    pub(super) async fn send(
        &mut self,
        users: &[String],
        clients: &[String],
        channels: &[String],
        data: &Value,
    ) -> Result<Reply, ClientError> {
        check_client_payload(data)?;
        let direct = if users.is_empty() && clients.is_empty() {
            None
        } else {
            Some(
                self.policy()
                    .send_direct(&self.access(), users, clients, data)
                    .await?,
            )
        };
        let mut to_channels = Vec::with_capacity(channels.len());
        for channel in channels {
            check_channel(channel, "channels")?;
            let data = self
                .policy()
                .write_channel(&self.access(), channel, data)
                .await?;
            to_channels.push((channel, data));
        }
        let bus = &self.app.bus;
        let mut delivered = 0;
        if let Some(data) = direct {
            let direct = || Event::Direct {
                from: self.origin(),
                data: data.clone(),
            };
            delivered +=
                bus.send_to_users(users, direct()) + bus.send_to_clients(clients, direct());
            if let Some(why) = bus.cluster_down() {
                return Err(ClientError::new(
                    crate::error::ErrorCode::Unavailable,
                    format!("{why} (delivered to {delivered} connections on this node)"),
                ));
            }
        }
        for (channel, data) in to_channels {
            delivered += self
                .app
                .resources
                .publish_message(channel, Some(self.origin()), &data)
                .await?
                .0;
        }
        Ok(Reply::Sent { delivered })
    }

    pub(super) async fn presence_join(
        &mut self,
        channel: &str,
        info: &Value,
    ) -> Result<Reply, ClientError> {
        check_channel(channel, "channel")?;
        let info = if info.is_null() {
            json!({})
        } else {
            info.clone()
        };
        let payload = json!({"presence": "join", "info": info});
        self.policy()
            .read_channel(&self.access(), channel, &Value::Null, &payload)
            .await?;
        self.app.bus.presence_join(&self.id, channel, info)?;
        Ok(Reply::Joined {
            channel: channel.to_owned(),
        })
    }

    pub(super) async fn presence_list(&mut self, channel: &str) -> Result<Reply, ClientError> {
        check_channel(channel, "channel")?;
        let payload = json!({"presence": "list"});
        self.policy()
            .read_channel(&self.access(), channel, &Value::Null, &payload)
            .await?;
        let members = self.app.bus.presence_members(channel).await;
        let members = if self.sees_ids {
            members
        } else {
            members.iter().map(|m| m.redacted()).collect()
        };
        Ok(Reply::Presence {
            channel: channel.to_owned(),
            members,
        })
    }
}
