//! Applying commands: the one place each operation is implemented,
//! whichever dialect decoded it.

use std::sync::Arc;

use serde_json::{json, Value};

use super::ratelimit::Limiter;
use crate::auth::Identity;
use crate::bus::{Event, Filter, Origin};
use crate::error::{ClientError, ErrorCode};
use crate::protocol::{Command, ConnInfo, Dialect, Reply, Target};
use crate::App;

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
        }
    }

    fn conn(&self) -> ConnInfo<'_> {
        ConnInfo {
            client_id: &self.id,
            identity: &self.identity,
            query: &self.query,
        }
    }

    /// The dialect's greeting frames.
    pub fn greeting(&self) -> Vec<Value> {
        self.dialect.greeting(&self.conn())
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
                let filter = Filter::from_value(filter).map_err(ClientError::bad_request)?;
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
                let delivered = bus.publish(
                    channel,
                    Event::Message {
                        channel: channel.clone(),
                        from: Some(self.origin()),
                        data: message.clone(),
                    },
                    message,
                );
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
            Command::Walker { name, .. } => Err(ClientError::new(
                ErrorCode::NotFound,
                format!("no walker named `{name}` is loaded"),
            )),
            Command::Subscribe {
                target: Target::Resource(resource),
                ..
            }
            | Command::Unsubscribe {
                target: Target::Resource(resource),
            }
            | Command::Get { resource, .. }
            | Command::List { resource, .. }
            | Command::Insert { resource, .. }
            | Command::Update { resource, .. }
            | Command::Delete { resource, .. } => Err(ClientError::new(
                ErrorCode::ResourceNotFound,
                format!("resource `{resource}` is not configured"),
            )),
        }
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
