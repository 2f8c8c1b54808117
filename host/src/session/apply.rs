//! Applying commands: the one place each operation is implemented,
//! whichever dialect decoded it.

use std::sync::Arc;

use serde_json::{json, Value};

use super::ratelimit::Limiter;
use crate::auth::Identity;
use axum::extract::ws::Utf8Bytes;

use std::collections::HashMap;

use crate::bus::{Envelope, Event, Filter, Origin, Outbound};
use crate::error::{ClientError, ErrorCode};
use crate::plugins::{GuardOutcome, Operation, Transport};
use crate::protocol::{Command, ConnInfo, Dialect, Reply, Target};
use crate::resources::{resource_channel, Caller};
use crate::App;

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

/// A connection's state beyond the socket.
pub struct Session {
    app: Arc<App>,
    dialect: &'static dyn Dialect,
    /// The connection's id.
    pub id: Arc<str>,
    /// Who it is now (in-band auth may change it).
    pub identity: Identity,
    query: Vec<(String, String)>,
    limiter: Limiter,
    /// Per resumed resource: the newest sequence number already replayed,
    /// so live copies of replayed events are skipped.
    floors: HashMap<String, u64>,
}

impl Session {
    /// State for a new connection.
    pub fn new(
        app: Arc<App>,
        dialect: &'static dyn Dialect,
        id: Arc<str>,
        identity: Identity,
        query: Vec<(String, String)>,
    ) -> Self {
        let limiter = Limiter::new(&app.config.limits);
        Self {
            app,
            dialect,
            id,
            identity,
            query,
            limiter,
            floors: HashMap::new(),
        }
    }

    fn conn(&self) -> ConnInfo<'_> {
        ConnInfo {
            client_id: &self.id,
            identity: &self.identity,
            query: &self.query,
        }
    }

    /// Handles one text frame; returns the frames to send back.
    pub async fn handle_text(&mut self, text: &str) -> Vec<Value> {
        self.app.metrics.messages_in.inc();
        let requests = match self.dialect.decode(text) {
            Ok(requests) => requests,
            Err(e) => return vec![self.error(e.request_id.as_ref(), None, &e.error)],
        };
        let mut out = Vec::with_capacity(requests.len());
        if !self.limiter.allow() {
            let error = ClientError::new(
                ErrorCode::RateLimitExceeded,
                format!(
                    "rate limit exceeded: at most {} requests per {} ms",
                    self.app.config.limits.rate_limit_max_requests,
                    self.app.config.limits.rate_limit_window_ms
                ),
            );
            for request in &requests {
                out.push(self.error(request.id.as_ref(), Some(&request.command), &error));
            }
            return out;
        }
        for request in requests {
            match self.apply(&request.command).await {
                Ok(reply) => {
                    if let Some(frame) = self.dialect.reply(&request, &reply, &self.conn()) {
                        out.push(frame);
                    }
                    if let Reply::Resumed { missed, .. } = reply {
                        out.extend(
                            missed
                                .into_iter()
                                .filter_map(|e| self.dialect.event(&Envelope::new(e))),
                        );
                    }
                }
                Err(error) => {
                    out.push(self.error(request.id.as_ref(), Some(&request.command), &error))
                }
            }
        }
        out
    }

    fn error(
        &self,
        request_id: Option<&Value>,
        command: Option<&Command>,
        error: &ClientError,
    ) -> Value {
        self.app.metrics.error(error.code);
        self.dialect.error(request_id, command, error)
    }

    fn origin(&self) -> Origin {
        Origin {
            client_id: self.id.clone(),
            user_id: self.identity.user_id.clone(),
        }
    }

    /// Applies one command.
    ///
    /// # Errors
    /// Whatever the client got wrong or was refused.
    pub async fn apply(&mut self, command: &Command) -> Result<Reply, ClientError> {
        let bus = &self.app.bus;
        match command {
            Command::Ping => Ok(Reply::Pong),
            Command::Info => Ok(Reply::Info),
            Command::Auth { token } => self.auth(token.as_deref()),
            Command::Subscribe {
                target: Target::Channel(channel),
                filter,
                ..
            } => {
                let client = Filter::from_value(filter).map_err(ClientError::bad_request)?;
                let guard = self.guard(Operation::Subscribe, channel, filter).await?;
                let filter = Filter::and(client, guard.filter);
                bus.subscribe(&self.id, channel, filter.clone());
                Ok(Reply::Subscribed {
                    target: Target::Channel(channel.clone()),
                    filter: filter.map_or(Value::Null, |f| f.to_value()),
                    events: Vec::new(),
                    recovered: None,
                })
            }
            Command::Unsubscribe {
                target: Target::Channel(channel),
            } => {
                bus.unsubscribe(&self.id, channel);
                Ok(Reply::Unsubscribed {
                    target: Target::Channel(channel.clone()),
                })
            }
            Command::Publish { channel, message } => {
                let guard = self.guard(Operation::Publish, channel, message).await?;
                let message = patched(message, guard.patch);
                let delivered = bus.publish(
                    channel,
                    Event::Message {
                        channel: channel.clone(),
                        from: Some(self.origin()),
                        data: message.clone(),
                    },
                    &message,
                );
                // As s3db.js does, a publish also reaches the subscribers of
                // a resource of that name.
                let delivered = delivered
                    + if self.app.resources.exists(channel) {
                        bus.publish(
                            &resource_channel(channel),
                            Event::Message {
                                channel: channel.clone(),
                                from: Some(self.origin()),
                                data: message.clone(),
                            },
                            &message,
                        )
                    } else {
                        0
                    };
                Ok(Reply::Published {
                    channel: channel.clone(),
                    delivered,
                })
            }
            Command::Send {
                users,
                clients,
                channels,
                data,
            } => {
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
                    delivered += bus.publish(
                        channel,
                        Event::Message {
                            channel: channel.clone(),
                            from: Some(self.origin()),
                            data: data.clone(),
                        },
                        data,
                    );
                }
                Ok(Reply::Sent { delivered })
            }
            Command::PresenceJoin { channel, info } => {
                let info = if info.is_null() {
                    json!({})
                } else {
                    info.clone()
                };
                bus.presence_join(&self.id, channel, info);
                Ok(Reply::Joined {
                    channel: channel.clone(),
                })
            }
            Command::PresenceLeave { channel } => Ok(Reply::Left {
                channel: channel.clone(),
                was_present: bus.presence_leave(&self.id, channel),
            }),
            Command::PresenceList { channel } => Ok(Reply::Presence {
                channel: channel.clone(),
                members: bus.presence_list(channel),
            }),
            Command::Walker { name, context } => {
                let outcome = self
                    .app
                    .plugins
                    .call_walker(
                        name,
                        context,
                        &self.identity,
                        Some(self.id.clone()),
                        Transport::Ws,
                    )
                    .await
                    .map_err(|e| e.to_client(name))?;
                Ok(Reply::Walker {
                    name: name.clone(),
                    status: outcome.status,
                    reports: outcome.reports,
                    returns: outcome.returns,
                })
            }
            Command::Subscribe {
                target: Target::Resource(resource),
                filter,
                events,
                since,
            } => {
                self.subscribe_resource(resource, filter, events, *since)
                    .await
            }
            Command::Unsubscribe {
                target: Target::Resource(resource),
            } => {
                self.app.resources.config(resource)?;
                bus.unsubscribe(&self.id, &resource_channel(resource));
                self.floors.remove(resource);
                Ok(Reply::Unsubscribed {
                    target: Target::Resource(resource.clone()),
                })
            }
            Command::Get { resource, id } => {
                let data = self.app.resources.get(&self.caller(), resource, id).await?;
                Ok(data_reply(resource, data, None))
            }
            Command::List {
                resource,
                filter,
                limit,
                cursor,
            } => {
                let (rows, cursor) = self
                    .app
                    .resources
                    .list(&self.caller(), resource, filter, *limit, cursor.clone())
                    .await?;
                Ok(data_reply(resource, Value::Array(rows), cursor))
            }
            Command::Insert { resource, data } => {
                let data = self
                    .app
                    .resources
                    .insert(&self.caller(), resource, data.clone())
                    .await?;
                Ok(data_reply(resource, data, None))
            }
            Command::Update { resource, id, data } => {
                let data = self
                    .app
                    .resources
                    .update(&self.caller(), resource, id, data.clone())
                    .await?;
                Ok(data_reply(resource, data, None))
            }
            Command::Delete { resource, id } => {
                let data = self
                    .app
                    .resources
                    .delete(&self.caller(), resource, id)
                    .await?;
                Ok(data_reply(resource, data, None))
            }
            Command::Replay {
                resource,
                filter,
                limit,
            } => {
                let (rows, seq) = self
                    .app
                    .resources
                    .replay(&self.caller(), resource, filter, *limit)
                    .await?;
                Ok(Reply::Replayed {
                    resource: resource.clone(),
                    rows,
                    seq,
                })
            }
        }
    }

    fn caller(&self) -> Caller<'_> {
        Caller {
            identity: &self.identity,
            conn: Some(self.id.clone()),
            plugins: &self.app.plugins,
        }
    }

    /// Subscribes to a resource's changes; with `since`, replays what was
    /// missed (in order, before any new event) and says if that was all.
    async fn subscribe_resource(
        &mut self,
        resource: &str,
        filter: &Value,
        events: &[String],
        since: Option<u64>,
    ) -> Result<Reply, ClientError> {
        let (sub, names) = self
            .app
            .resources
            .subscription(&self.caller(), resource, filter, events)
            .await?;
        // Subscribe before reading the log, so nothing falls between the
        // two; duplicates are dropped by sequence number (`floors`).
        self.app
            .bus
            .subscribe_ops(&self.id, &resource_channel(resource), sub.clone());
        let subscribed = Reply::Subscribed {
            target: Target::Resource(resource.to_owned()),
            filter: sub.filter.as_ref().map_or(Value::Null, |f| f.to_value()),
            events: names,
            recovered: None,
        };
        let Some(since) = since else {
            self.floors.remove(resource);
            return Ok(subscribed);
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
        let Reply::Subscribed {
            target,
            filter,
            events,
            ..
        } = subscribed
        else {
            unreachable!("built above")
        };
        Ok(Reply::Resumed {
            subscribed: Box::new(Reply::Subscribed {
                target,
                filter,
                events,
                recovered: Some(complete),
            }),
            missed,
        })
    }

    /// Consults the guards for `op` on `target`.
    async fn guard(
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

    fn auth(&mut self, token: Option<&str>) -> Result<Reply, ClientError> {
        let identity = self
            .app
            .auth
            .authenticate(token)
            .map_err(|e| ClientError::new(ErrorCode::Unauthorized, e.to_string()))?;
        self.app.bus.set_user(&self.id, identity.user_id.clone());
        self.identity = identity;
        Ok(Reply::Authenticated {
            user: self.identity.user_json(),
        })
    }
}

impl super::Handler for Session {
    fn id(&self) -> &Arc<str> {
        &self.id
    }

    async fn greeting(&mut self) -> Result<Vec<Utf8Bytes>, super::Close> {
        Ok(super::frames(&self.dialect.greeting(&self.conn())))
    }

    async fn on_text(&mut self, text: &str) -> Result<Vec<Utf8Bytes>, super::Close> {
        Ok(super::frames(&self.handle_text(text).await))
    }

    async fn on_outbound(&mut self, out: Outbound) -> Result<Vec<Utf8Bytes>, super::Close> {
        Ok(super::outbound_text(self.dialect, out)
            .into_iter()
            .collect())
    }

    async fn on_close(&mut self) {}
}

fn data_reply(resource: &str, data: Value, cursor: Option<String>) -> Reply {
    Reply::Data {
        resource: resource.to_owned(),
        data,
        cursor,
    }
}
