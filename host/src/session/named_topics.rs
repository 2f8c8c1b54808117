//! Where Daptin's user-created topics are kept: in the process on a single
//! node, in Redis (through the bus's link) in a cluster, so a topic created
//! on one node exists on all.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bus::link::{Link, LinkError};

/// A topic created by a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserTopic {
    /// What clients see.
    pub info: Value,
    /// The creating user, when authenticated.
    pub creator_user: Option<String>,
    /// The creating connection (which owns it when the creator was anonymous).
    pub creator_conn: String,
}

/// The named topics of this node, or of its cluster.
#[derive(Default)]
pub struct NamedTopics {
    local: Mutex<BTreeMap<String, UserTopic>>,
}

impl NamedTopics {
    /// Creates `name`; false when it exists.
    ///
    /// # Errors
    /// The cluster link is down.
    pub async fn create(
        &self,
        link: Option<&Arc<dyn Link>>,
        name: &str,
        topic: UserTopic,
    ) -> Result<bool, LinkError> {
        match link {
            Some(link) => {
                let json = serde_json::to_value(&topic).unwrap_or_default();
                link.topic_create(name, &json).await
            }
            None => {
                let mut local = self.local.lock();
                if local.contains_key(name) {
                    return Ok(false);
                }
                local.insert(name.to_owned(), topic);
                Ok(true)
            }
        }
    }

    /// Removes `name`.
    ///
    /// # Errors
    /// The cluster link is down.
    pub async fn remove(&self, link: Option<&Arc<dyn Link>>, name: &str) -> Result<(), LinkError> {
        match link {
            Some(link) => link.topic_remove(name).await,
            None => {
                self.local.lock().remove(name);
                Ok(())
            }
        }
    }

    /// Every topic, by name.
    ///
    /// # Errors
    /// The cluster link is down.
    pub async fn all(
        &self,
        link: Option<&Arc<dyn Link>>,
    ) -> Result<BTreeMap<String, UserTopic>, LinkError> {
        match link {
            Some(link) => Ok(link
                .topics()
                .await?
                .into_iter()
                .filter_map(|(name, t)| Some((name, serde_json::from_value(t).ok()?)))
                .collect()),
            None => Ok(self.local.lock().clone()),
        }
    }

    /// One topic.
    ///
    /// # Errors
    /// The cluster link is down.
    pub async fn get(
        &self,
        link: Option<&Arc<dyn Link>>,
        name: &str,
    ) -> Result<Option<UserTopic>, LinkError> {
        match link {
            Some(_) => Ok(self.all(link).await?.remove(name)),
            None => Ok(self.local.lock().get(name).cloned()),
        }
    }
}
