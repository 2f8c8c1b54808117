//! The [`Link`] the bus talks to: hand-overs are queued for the worker;
//! the questions the bus or a session asks (presence, topics) go to Redis
//! directly, and fail at once when the link is down.

use std::collections::HashMap;

use fred::prelude::{ClientLike, HashesInterface};
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc::error::TrySendError;

use super::{keys, wire, Cluster, Job};
use crate::bus::link::{Forward, Link, LinkError};
use crate::bus::Member;

impl Cluster {
    /// LinkError::Down unless the link is up.
    pub(super) fn check_up(&self) -> Result<(), LinkError> {
        if self.is_up() {
            Ok(())
        } else {
            Err(LinkError::Down("Redis is unreachable".into()))
        }
    }
}

/// A Redis error as the link's.
pub(super) fn down(e: fred::prelude::Error) -> LinkError {
    LinkError::Down(e.to_string())
}

impl Link for Cluster {
    fn node(&self) -> &str {
        &self.node
    }

    fn is_up(&self) -> bool {
        self.client.is_connected() && self.subscriber.is_connected()
    }

    fn forward(&self, forward: Forward) {
        match self.jobs.try_send(Job::Forward(forward)) {
            Ok(()) => {}
            Err(TrySendError::Full(Job::Forward(forward))) => {
                // State changes must not be lost: they are re-sent from the
                // bus's state when the worker catches up (a resync).
                if !matches!(
                    forward,
                    Forward::Publish { .. }
                        | Forward::Users { .. }
                        | Forward::Clients { .. }
                        | Forward::Disconnect { .. }
                ) {
                    self.resync.notify_one();
                }
                self.metrics.cluster_events("dropped", 1);
            }
            Err(_) => self.metrics.cluster_events("dropped", 1),
        }
    }

    fn settled(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if self.jobs.send(Job::Barrier(tx)).await.is_ok() {
                let _ = rx.await;
            }
        })
    }

    fn presence<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<Vec<Member>, LinkError>> {
        Box::pin(async move {
            self.check_up()?;
            let all: HashMap<String, String> = self
                .client
                .hgetall(keys::presence(channel))
                .await
                .map_err(down)?;
            Ok(all
                .values()
                .filter_map(|m| wire::decode_member(m.as_bytes()).ok())
                .collect())
        })
    }

    fn topic_create<'a>(
        &'a self,
        name: &'a str,
        topic: &'a Value,
    ) -> BoxFuture<'a, Result<bool, LinkError>> {
        Box::pin(async move {
            self.check_up()?;
            let created: bool = self
                .client
                .hsetnx(keys::TOPICS, name, topic.to_string())
                .await
                .map_err(down)?;
            if created {
                self.topics.lock().insert(name.to_owned(), topic.clone());
            }
            Ok(created)
        })
    }

    fn topic_remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), LinkError>> {
        Box::pin(async move {
            self.check_up()?;
            let _: i64 = self.client.hdel(keys::TOPICS, name).await.map_err(down)?;
            self.topics.lock().remove(name);
            Ok(())
        })
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<(String, Value)>, LinkError>> {
        Box::pin(async move {
            self.check_up()?;
            let all: HashMap<String, String> =
                self.client.hgetall(keys::TOPICS).await.map_err(down)?;
            Ok(all
                .into_iter()
                .filter_map(|(name, topic)| Some((name, serde_json::from_str(&topic).ok()?)))
                .collect())
        })
    }
}
