//! Daptin's named topics; every resource is also a (system) topic. A topic
//! is listed and described only to callers who may subscribe to it, and
//! destroyed only by its creator or an admin. A creator holds at most
//! `limits.max_topics_per_creator`; an anonymous creator's topics go with
//! its connection (nobody else could ever destroy them).

use serde_json::{json, Value};

use super::named_topics::UserTopic;
use super::Session;
use crate::bus::Topic;
use crate::error::{ClientError, ErrorCode};
use crate::protocol::{fields::iso_time, Command, Reply};

impl Session {
    /// Daptin's topic commands.
    pub(super) async fn topic(&mut self, command: &Command) -> Result<Reply, ClientError> {
        match command {
            Command::TopicCreate { name } => {
                let link = self.app.bus.link();
                let topics = &self.app.topics;
                if self.app.resources.exists(name) {
                    return Err(exists(name));
                }
                let max = self.app.config.limits.max_topics_per_creator;
                let mine = topics
                    .all(link.as_ref())
                    .await?
                    .values()
                    .filter(|t| self.created(t))
                    .count();
                if mine >= max {
                    return Err(ClientError::forbidden(format!(
                        "at most {max} topics per creator (limits.max_topics_per_creator)"
                    )));
                }
                let info = json!({
                    "name": name,
                    "type": "user",
                    "createdBy": self.identity().user_id,
                    "createdAt": iso_time(crate::now_ms()),
                });
                let topic = UserTopic {
                    info: info.clone(),
                    creator_user: self.identity().user_id.clone(),
                    creator_conn: self.id.to_string(),
                };
                if !topics.create(link.as_ref(), name, topic).await? {
                    return Err(exists(name));
                }
                if self.identity().user_id.is_none() {
                    self.anonymous_topics.push(name.clone());
                }
                Ok(Reply::Topic { info })
            }
            Command::TopicDestroy { name } => {
                if self.app.resources.exists(name) {
                    return Err(ClientError::forbidden(format!(
                        "`{name}` is a system topic"
                    )));
                }
                let link = self.app.bus.link();
                let topic = self
                    .app
                    .topics
                    .get(link.as_ref(), name)
                    .await?
                    .ok_or_else(|| no_topic(name))?;
                self.policy().destroy_topic(
                    &self.actor,
                    name,
                    topic.creator_user.as_deref(),
                    &topic.creator_conn,
                )?;
                self.app.topics.remove(link.as_ref(), name).await?;
                Ok(Reply::Topic { info: topic.info })
            }
            Command::TopicGet { name } => {
                let info = self.visible(name).await?.ok_or_else(|| no_topic(name))?;
                Ok(Reply::Topic { info })
            }
            Command::TopicList => {
                let mut names: Vec<String> = self.policy().resource_names().cloned().collect();
                let link = self.app.bus.link();
                names.extend(self.app.topics.all(link.as_ref()).await?.into_keys());
                let mut list = Vec::with_capacity(names.len());
                for name in names {
                    if let Ok(Some(info)) = self.visible(&name).await {
                        list.push(info);
                    }
                }
                Ok(Reply::Topics { topics: list })
            }
            _ => Err(ClientError::new(
                ErrorCode::InternalError,
                "not a topic command",
            )),
        }
    }

    /// Whether this connection's identity created `topic` (for anonymous
    /// creators: this very connection).
    fn created(&self, topic: &UserTopic) -> bool {
        match (&topic.creator_user, &self.identity().user_id) {
            (Some(creator), Some(me)) => creator == me,
            (None, None) => *topic.creator_conn == *self.id,
            _ => false,
        }
    }

    /// Removes the topics this connection created anonymously (nobody
    /// else could ever destroy them).
    pub(super) async fn drop_anonymous_topics(&mut self) {
        let link = self.app.bus.link();
        for name in std::mem::take(&mut self.anonymous_topics) {
            if let Err(e) = self.app.topics.remove(link.as_ref(), &name).await {
                tracing::warn!(topic = %name, error = %e, "anonymous topic left behind");
            }
        }
    }

    /// A topic's description, if it exists; FORBIDDEN when this caller
    /// may not subscribe to it (a resource's role list, the guards).
    async fn visible(&self, name: &str) -> Result<Option<Value>, ClientError> {
        let system = self.app.resources.exists(name);
        let info = if system {
            json!({"name": name, "type": "system"})
        } else {
            let link = self.app.bus.link();
            match self.app.topics.get(link.as_ref(), name).await? {
                Some(topic) => topic.info,
                None => return Ok(None),
            }
        };
        if system {
            self.app
                .resources
                .subscription(&self.access(), name, &Value::Null, &[])
                .await?;
        } else {
            self.policy()
                .read_channel(&self.access(), name, &Value::Null, &Value::Null)
                .await?;
        }
        let topic = if system {
            Topic::resource(name)
        } else {
            Topic::channel(name)
        };
        let mut info = info;
        info["subscribers"] = json!(self.app.bus.subscriber_count(&topic));
        Ok(Some(info))
    }
}

fn exists(name: &str) -> ClientError {
    ClientError::new(
        ErrorCode::Conflict,
        format!("topic `{name}` already exists"),
    )
}

fn no_topic(name: &str) -> ClientError {
    ClientError::new(ErrorCode::NotFound, format!("no topic `{name}`"))
}
