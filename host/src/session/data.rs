//! Resource commands: reads, writes, replay, resumable and keyed
//! subscriptions — all through [`crate::resources`] as this connection's
//! client.

use serde_json::Value;

use super::reauth::Keyed;
use super::Session;
use crate::bus::{Event, Filter, Subscription, Topic};
use crate::error::{ClientError, ErrorCode};
use crate::protocol::{Command, Reply, Target};

impl Session {
    /// Reads, writes and replays.
    pub(super) async fn data(&mut self, command: &Command) -> Result<Reply, ClientError> {
        let resources = &self.app.resources;
        let access = self.access();
        let (resource, data, cursor) = match command {
            Command::Get { resource, id } => {
                (resource, resources.get(&access, resource, id).await?, None)
            }
            Command::List {
                resource,
                filter,
                limit,
                cursor,
            } => {
                let (rows, next) = resources
                    .list(&access, resource, filter, *limit, cursor.clone())
                    .await?;
                let rows = rows.into_iter().map(|r| r.record).collect();
                (resource, Value::Array(rows), next)
            }
            Command::Insert { resource, data } => (
                resource,
                resources.insert(&access, resource, data.clone()).await?,
                None,
            ),
            Command::Update { resource, id, data } => (
                resource,
                resources
                    .update(&access, resource, id, data.clone())
                    .await?,
                None,
            ),
            Command::Delete { resource, id } => (
                resource,
                resources.delete(&access, resource, id).await?,
                None,
            ),
            Command::Replay {
                resource,
                filter,
                limit,
            } => {
                let (rows, seq) = resources.replay(&access, resource, filter, *limit).await?;
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
            .subscription(&self.access(), resource, filter, events)
            .await?;
        // Subscribe before reading the log, so nothing falls between the
        // two; duplicates are dropped by sequence number (`floors`).
        match key {
            Some(key) => {
                let max = self.app.bus.limits().subscriptions;
                if self.held.keyed.len() >= max && !self.held.keyed.contains_key(key) {
                    return Err(crate::bus::BusError::Subscriptions(max).into());
                }
                let keyed = Keyed {
                    resource: resource.to_owned(),
                    filter: filter.clone(),
                    events: events.to_vec(),
                    sub: sub.clone(),
                };
                // An id re-used for another table must not leave the old
                // table streaming.
                let old = self.held.keyed.insert(key.to_owned(), keyed);
                if let Err(e) = self.resubscribe(resource) {
                    // Too complex together: the new one does not stay.
                    match old {
                        Some(old) => self.held.keyed.insert(key.to_owned(), old),
                        None => self.held.keyed.remove(key),
                    };
                    self.resubscribe(resource)?;
                    return Err(e);
                }
                if let Some(old) = old.filter(|o| o.resource != resource) {
                    self.resubscribe(&old.resource)?;
                }
            }
            None => {
                self.app
                    .bus
                    .subscribe_ops(&self.id, &Topic::resource(resource), sub.clone())?;
                self.held
                    .resources
                    .insert(resource.to_owned(), (filter.clone(), events.to_vec()));
            }
        }
        let subscribed = |recovered| Reply::Subscribed {
            target: Target::Resource(resource.to_owned()),
            filter: sub.filter.as_ref().map_or(Value::Null, |f| f.to_value()),
            events: names.clone(),
            recovered,
            position: None,
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
                let keyed = self.held.keyed.remove(key).ok_or_else(|| {
                    ClientError::new(
                        ErrorCode::NotFound,
                        format!("no subscription with id {key}"),
                    )
                })?;
                self.resubscribe(&keyed.resource)?;
                keyed.resource
            }
            None => {
                self.app.resources.config(resource)?;
                self.held.keyed.retain(|_, k| k.resource != resource);
                self.held.resources.remove(resource);
                self.app
                    .bus
                    .unsubscribe(&self.id, &Topic::resource(resource));
                resource.to_owned()
            }
        };
        self.floors.remove(&resource);
        Ok(Reply::Unsubscribed {
            target: Target::Resource(resource),
        })
    }

    /// Puts the OR of this connection's keyed subscriptions on `resource`
    /// on the bus (or removes it when none is left).
    ///
    /// # Errors
    /// The OR has more rows than `limits.max_filter_rows`, or the
    /// connection holds too many subscriptions.
    pub(super) fn resubscribe(&self, resource: &str) -> Result<(), ClientError> {
        let topic = Topic::resource(resource);
        match self.held.keyed_union(resource) {
            Some(sub) => {
                let limits = self.policy().filter_limits();
                let sub = Subscription {
                    filter: limits.check(sub.filter)?,
                    ops: sub.ops,
                };
                self.app.bus.subscribe_ops(&self.id, &topic, sub)?;
            }
            None => {
                self.app.bus.unsubscribe(&self.id, &topic);
            }
        }
        Ok(())
    }
}

/// The OR of several subscriptions on one topic.
pub(super) fn union<'a>(mut subs: impl Iterator<Item = &'a Subscription>) -> Option<Subscription> {
    let first = subs.next()?.clone();
    Some(subs.fold(first, |acc, s| Subscription {
        filter: Filter::or(acc.filter, s.filter.clone()),
        ops: acc.ops | s.ops,
    }))
}
