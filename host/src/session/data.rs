//! Resource commands (reads, writes, replay, resumable and keyed
//! subscriptions) and Daptin's named topics.

use serde_json::{json, Value};

use super::Session;
use crate::bus::{Event, Filter, Subscription};
use crate::error::{ClientError, ErrorCode};
use crate::protocol::{fields::iso_time, Command, Reply, Target};
use crate::resources::resource_channel;

impl Session {
    /// Reads, writes and replays.
    pub(super) async fn data(&mut self, command: &Command) -> Result<Reply, ClientError> {
        let resources = &self.app.resources;
        let caller = self.caller();
        let (resource, data, cursor) = match command {
            Command::Get { resource, id } => {
                (resource, resources.get(&caller, resource, id).await?, None)
            }
            Command::List {
                resource,
                filter,
                limit,
                cursor,
            } => {
                let (rows, next) = resources
                    .list(&caller, resource, filter, *limit, cursor.clone())
                    .await?;
                let rows = rows.into_iter().map(|r| r.record).collect();
                (resource, Value::Array(rows), next)
            }
            Command::Insert { resource, data } => (
                resource,
                resources.insert(&caller, resource, data.clone()).await?,
                None,
            ),
            Command::Update { resource, id, data } => (
                resource,
                resources
                    .update(&caller, resource, id, data.clone())
                    .await?,
                None,
            ),
            Command::Delete { resource, id } => (
                resource,
                resources.delete(&caller, resource, id).await?,
                None,
            ),
            Command::Replay {
                resource,
                filter,
                limit,
            } => {
                let (rows, seq) = resources.replay(&caller, resource, filter, *limit).await?;
                let (rows, seqs) = rows.into_iter().map(|r| (r.record, r.seq)).unzip();
                return Ok(Reply::Replayed {
                    resource: resource.clone(),
                    rows,
                    seqs,
                    seq,
                });
            }
            _ => {
                return Err(ClientError::new(
                    ErrorCode::InternalError,
                    "not a data command",
                ))
            }
        };
        Ok(Reply::Data {
            resource: resource.clone(),
            data,
            cursor,
        })
    }

    /// Subscribes to a resource's changes. With `since`, replays what was
    /// missed (in order, before any new event) and says if that was all.
    /// With `key`, the subscription is one of possibly several on the
    /// resource, OR-ed together on the bus.
    pub(super) async fn subscribe_resource(
        &mut self,
        resource: &str,
        filter: &Value,
        events: &[String],
        since: Option<u64>,
        key: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let (sub, names) = self
            .app
            .resources
            .subscription(&self.caller(), resource, filter, events)
            .await?;
        let channel = resource_channel(resource);
        // Subscribe before reading the log, so nothing falls between the
        // two; duplicates are dropped by sequence number (`floors`).
        match key {
            Some(key) => {
                self.keyed
                    .insert(key.to_owned(), (channel.clone(), sub.clone()));
                self.resubscribe(&channel);
            }
            None => {
                self.app.bus.subscribe_ops(&self.id, &channel, sub.clone());
            }
        }
        let subscribed = |recovered| Reply::Subscribed {
            target: Target::Resource(resource.to_owned()),
            filter: sub.filter.as_ref().map_or(Value::Null, |f| f.to_value()),
            events: names.clone(),
            recovered,
        };
        let Some(since) = since else {
            self.floors.remove(resource);
            return Ok(subscribed(None));
        };
        let (missed, complete) = self.app.resources.missed(resource, since, &sub).await?;
        let floor = missed
            .iter()
            .filter_map(|e| match e {
                Event::Change(c) => Some(c.seq),
                _ => None,
            })
            .max()
            .unwrap_or(since);
        self.floors.insert(resource.to_owned(), floor);
        Ok(Reply::Resumed {
            subscribed: Box::new(subscribed(Some(complete))),
            missed,
        })
    }

    pub(super) fn unsubscribe_resource(
        &mut self,
        resource: &str,
        key: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let resource = match key {
            Some(key) => {
                let (channel, _) = self.keyed.remove(key).ok_or_else(|| {
                    ClientError::new(
                        ErrorCode::NotFound,
                        format!("no subscription with id {key}"),
                    )
                })?;
                self.resubscribe(&channel);
                channel.trim_start_matches(&resource_channel("")).to_owned()
            }
            None => {
                self.app.resources.config(resource)?;
                self.keyed
                    .retain(|_, (c, _)| *c != resource_channel(resource));
                self.app
                    .bus
                    .unsubscribe(&self.id, &resource_channel(resource));
                resource.to_owned()
            }
        };
        self.floors.remove(&resource);
        Ok(Reply::Unsubscribed {
            target: Target::Resource(resource),
        })
    }

    /// Puts the OR of this connection's keyed subscriptions on `channel`
    /// on the bus (or removes it when none is left).
    fn resubscribe(&self, channel: &str) {
        let subs: Vec<&Subscription> = self
            .keyed
            .values()
            .filter(|(c, _)| c == channel)
            .map(|(_, s)| s)
            .collect();
        let Some(first) = subs.first() else {
            self.app.bus.unsubscribe(&self.id, channel);
            return;
        };
        let combined = subs
            .iter()
            .skip(1)
            .fold((*first).clone(), |acc, s| Subscription {
                filter: Filter::or(acc.filter, s.filter.clone()),
                ops: acc.ops | s.ops,
            });
        self.app.bus.subscribe_ops(&self.id, channel, combined);
    }

    /// Daptin's named topics; every resource is also a (system) topic.
    pub(super) fn topic(&mut self, command: &Command) -> Result<Reply, ClientError> {
        let mut topics = self.app.topics.lock();
        let system = |name: &str| self.app.resources.exists(name);
        let describe = |name: &str, info: Option<&Value>| {
            let mut v = info
                .cloned()
                .unwrap_or_else(|| json!({"name": name, "type": "system"}));
            v["subscribers"] = json!(self.app.bus.subscriber_count(&self.topic_channel(name)));
            v
        };
        match command {
            Command::TopicCreate { name } => {
                if system(name) || topics.contains_key(name) {
                    return Err(ClientError::new(
                        ErrorCode::Conflict,
                        format!("topic `{name}` already exists"),
                    ));
                }
                let info = json!({
                    "name": name,
                    "type": "user",
                    "createdBy": self.identity.user_id,
                    "createdAt": iso_time(crate::now_ms()),
                });
                topics.insert(name.clone(), info.clone());
                Ok(Reply::Topic { info })
            }
            Command::TopicDestroy { name } => {
                if system(name) {
                    return Err(ClientError::forbidden(format!(
                        "`{name}` is a system topic"
                    )));
                }
                let info = topics.remove(name).ok_or_else(|| {
                    ClientError::new(ErrorCode::NotFound, format!("no topic `{name}`"))
                })?;
                Ok(Reply::Topic { info })
            }
            Command::TopicGet { name } => {
                if !system(name) && !topics.contains_key(name) {
                    return Err(ClientError::new(
                        ErrorCode::NotFound,
                        format!("no topic `{name}`"),
                    ));
                }
                Ok(Reply::Topic {
                    info: describe(name, topics.get(name)),
                })
            }
            Command::TopicList => {
                let mut list: Vec<Value> = self
                    .app
                    .config
                    .resources
                    .keys()
                    .map(|name| describe(name, None))
                    .collect();
                list.extend(topics.iter().map(|(name, info)| describe(name, Some(info))));
                Ok(Reply::Topics { topics: list })
            }
            _ => Err(ClientError::new(
                ErrorCode::InternalError,
                "not a topic command",
            )),
        }
    }

    /// The bus channel behind a topic name.
    fn topic_channel(&self, name: &str) -> String {
        if self.app.resources.exists(name) {
            resource_channel(name)
        } else {
            name.to_owned()
        }
    }
}
