//! A dialect connection's state and the dispatch of its commands: each
//! operation is implemented once (here, in `channels.rs`, `data.rs`,
//! `topics.rs` and `reauth.rs`), whichever dialect decoded it, and each goes
//! through the policy as this connection's client.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::reauth::Holdings;
use super::Connected;
use crate::auth::Identity;
use crate::bus::{Envelope, Event, Origin, Outbound};
use crate::error::{ClientError, ErrorCode};
use crate::plugins::Transport;
use crate::policy::{Access, Actor, Policy};
use crate::protocol::{Command, ConnInfo, Dialect, Reply, Request, Since, Target};
use crate::App;

/// A connection's state beyond the socket.
pub struct Session {
    pub(super) app: Arc<App>,
    pub(super) dialect: &'static dyn Dialect,
    /// The connection's id.
    pub id: Arc<str>,
    /// Who it is now (in-band auth may change it), with its connection.
    pub(super) actor: Actor,
    query: Vec<(String, String)>,
    /// Per resumed resource: the newest sequence number already replayed,
    /// so live copies of replayed events are skipped.
    /// (Ordered maps here: most sessions hold none, and an empty
    /// `BTreeMap` is half an empty `HashMap`, in every connection's state.)
    pub(super) floors: BTreeMap<String, u64>,
    /// The same per resumed channel, by history offset.
    pub(super) channel_floors: BTreeMap<String, u64>,
    /// The topics it created anonymously: they go with it.
    pub(super) anonymous_topics: Vec<String>,
    /// What it subscribed to, as asked: re-authorized when the identity
    /// changes.
    pub(super) held: Holdings,
    /// Whether it may see other connections' ids (in presence lists and
    /// events); recomputed when the identity changes.
    pub(super) sees_ids: bool,
    /// Whether the request being handled resumed a subscription.
    resumed: bool,
}

impl Session {
    /// State for a new connection.
    pub fn new(
        app: Arc<App>,
        dialect: &'static dyn Dialect,
        id: Arc<str>,
        connected: Connected,
    ) -> Self {
        let Connected {
            identity,
            query,
            peer,
        } = connected;
        let actor = Actor::new(identity.into_shared(), Some(id.clone())).with_peer(peer);
        let sees_ids = app
            .resources
            .policy()
            .may_send_direct(&Access::Client(&actor));
        Self {
            app,
            dialect,
            id,
            actor,
            query,
            floors: BTreeMap::new(),
            channel_floors: BTreeMap::new(),
            anonymous_topics: Vec::new(),
            held: Holdings::default(),
            sees_ids,
            resumed: false,
        }
    }

    /// Who the connection is now.
    pub fn identity(&self) -> &Identity {
        &self.actor.identity
    }

    pub(super) fn conn(&self) -> ConnInfo<'_> {
        ConnInfo {
            client_id: &self.id,
            identity: &self.actor.identity,
            query: &self.query,
        }
    }

    /// How this connection's operations are checked: as its client.
    pub(super) fn access(&self) -> Access<'_> {
        Access::Client(&self.actor)
    }

    pub(super) fn policy(&self) -> &Policy {
        self.app.resources.policy()
    }

    pub(super) fn origin(&self) -> Origin {
        Origin {
            client_id: self.id.clone(),
            user_id: self.actor.identity.user_id.clone(),
        }
    }

    /// Handles one text frame; returns the frames to send back. Every
    /// request in it (a batched frame's entries each) is charged to the
    /// identity's rate limit, and so is a frame that does not decode.
    pub async fn handle_text(&mut self, text: &str) -> Vec<Value> {
        self.app.metrics.messages_in.inc();
        let decoded = self.dialect.decode(text);
        let cost = decoded.as_ref().map_or(1, Vec::len).max(1);
        let limited = self.app.quotas.requests(&self.actor.key(), cost);
        let requests = match (decoded, limited) {
            (Ok(requests), Ok(())) => requests,
            (Err(e), Ok(())) => return vec![self.error(e.request_id.as_ref(), None, &e.error)],
            (decoded, Err(exceeded)) => {
                let error = rate_limited(&self.app.config.limits, exceeded);
                return match decoded {
                    Ok(requests) => requests
                        .iter()
                        .map(|r| self.error(r.id.as_ref(), Some(r), &error))
                        .collect(),
                    Err(e) => vec![self.error(e.request_id.as_ref(), None, &error)],
                };
            }
        };
        let mut out = Vec::with_capacity(requests.len());
        for request in requests {
            out.extend(self.run(&request).await);
        }
        out
    }

    /// Applies one request and renders its reply (or error) in the dialect.
    async fn run(&mut self, request: &Request) -> Vec<Value> {
        match self.apply(&request.command).await {
            Ok(reply) => {
                let mut frames = self.dialect.reply(request, &reply, &self.conn());
                match reply {
                    Reply::Resumed { missed, .. } => {
                        self.resumed = true;
                        frames.extend(
                            missed
                                .into_iter()
                                .filter_map(|e| self.dialect.event(&Envelope::new(e))),
                        )
                    }
                    Reply::Authenticated { revoked, .. } => {
                        frames.extend(revoked.iter().map(|r| self.dialect.revoked(r)));
                    }
                    _ => {}
                }
                frames
            }
            Err(error) => vec![self.error(request.id.as_ref(), Some(request), &error)],
        }
    }

    fn error(
        &self,
        request_id: Option<&Value>,
        request: Option<&Request>,
        error: &ClientError,
    ) -> Value {
        self.app.metrics.error(error.code);
        self.dialect.error(request_id, request, error)
    }

    /// Applies one command.
    ///
    /// # Errors
    /// Whatever the client got wrong or was refused.
    pub async fn apply(&mut self, command: &Command) -> Result<Reply, ClientError> {
        match command {
            Command::Ping => Ok(Reply::Pong),
            Command::Info => Ok(Reply::Info),
            Command::Auth {
                token,
                anonymous_on_failure,
            } => self.auth(token.as_deref(), *anonymous_on_failure).await,
            Command::Subscribe {
                target: Target::Channel(channel),
                filter,
                ..
            } if self.is_resource_topic(channel) => {
                self.subscribe_resource(channel, filter, &[], None, None)
                    .await
            }
            Command::Subscribe {
                target: Target::Channel(channel),
                filter,
                since,
                ..
            } => {
                self.subscribe_channel(channel, filter, since.as_ref())
                    .await
            }
            Command::Unsubscribe {
                target: Target::Channel(channel),
                ..
            } if self.is_resource_topic(channel) => self.unsubscribe_resource(channel, None),
            Command::Unsubscribe {
                target: Target::Channel(channel),
                ..
            } => self.unsubscribe_channel(channel),
            Command::Publish { channel, message } => self.publish(channel, message).await,
            Command::Send {
                users,
                clients,
                channels,
                data,
            } => self.send(users, clients, channels, data).await,
            Command::PresenceJoin { channel, info } => self.presence_join(channel, info).await,
            Command::PresenceLeave { channel } => Ok(Reply::Left {
                channel: channel.clone(),
                was_present: self.app.bus.presence_leave(&self.id, channel),
            }),
            Command::PresenceList { channel } => self.presence_list(channel).await,
            Command::Walker { name, context, .. } => {
                let outcome = self
                    .app
                    .plugins
                    .call_walker(name, context, &self.actor, Transport::Ws)
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
                key,
            } => {
                let since = match since {
                    None => None,
                    Some(Since::Seq(seq)) => Some(*seq),
                    Some(Since::Position(_)) => {
                        return Err(ClientError::bad_request(
                            "a resource resumes `since` a sequence number",
                        ))
                    }
                };
                self.subscribe_resource(resource, filter, events, since, key.as_deref())
                    .await
            }
            Command::Unsubscribe {
                target: Target::Resource(resource),
                key,
            } => self.unsubscribe_resource(resource, key.as_deref()),
            Command::Get { .. }
            | Command::List { .. }
            | Command::Insert { .. }
            | Command::Update { .. }
            | Command::Delete { .. }
            | Command::Replay { .. } => self.data(command).await,
            Command::TopicCreate { .. }
            | Command::TopicDestroy { .. }
            | Command::TopicList
            | Command::TopicGet { .. } => self.topic(command).await,
        }
    }

    /// Whether `channel` names a resource in a dialect where that makes it
    /// the resource's system topic.
    pub(super) fn is_resource_topic(&self, channel: &str) -> bool {
        self.dialect.resource_topics() && self.app.resources.exists(channel)
    }

    /// An in-band token change. A refused token keeps the identity (and
    /// answers UNAUTHORIZED) — or, where the dialect says so (jac-cloud's
    /// `change_user`), drops the connection to the anonymous identity.
    async fn auth(
        &mut self,
        token: Option<&str>,
        anonymous_on_failure: bool,
    ) -> Result<Reply, ClientError> {
        let identity = match self.app.auth.authenticate(token).await {
            Ok(identity) => identity,
            Err(e) if anonymous_on_failure && !self.app.auth.required() => {
                tracing::debug!(client = %self.id, cause = %e, "token refused; now anonymous");
                Identity::anonymous()
            }
            Err(e) => return Err(ClientError::new(ErrorCode::Unauthorized, e.to_string())),
        };
        let revoked = self.change_identity(identity).await;
        Ok(Reply::Authenticated {
            user: self.actor.identity.user_json(),
            revoked,
        })
    }
}

/// The error a rate-limited request gets.
pub fn rate_limited(
    limits: &crate::config::Limits,
    exceeded: crate::quota::Exceeded,
) -> ClientError {
    ClientError::new(
        ErrorCode::RateLimitExceeded,
        format!(
            "rate limit exceeded: at most {} requests per {} ms per client; retry in {} ms",
            limits.rate_limit_max_requests,
            limits.rate_limit_window_ms,
            exceeded.retry_after.as_millis().max(1)
        ),
    )
}

impl super::Handler for Session {
    fn id(&self) -> &Arc<str> {
        &self.id
    }

    async fn greeting(&mut self) -> Result<Vec<crate::wire::Message>, super::Close> {
        let mut frames = self.dialect.greeting(&self.conn());
        for command in self.dialect.start(&self.conn()) {
            let request = Request::new(None, command);
            frames.extend(self.run(&request).await);
        }
        Ok(super::frames(&frames))
    }

    async fn on_text(&mut self, text: &str) -> Result<Vec<crate::wire::Message>, super::Close> {
        Ok(super::frames(&self.handle_text(text).await))
    }

    async fn on_outbound(
        &mut self,
        out: Outbound,
    ) -> Result<Vec<crate::wire::Message>, super::Close> {
        match &out.event {
            Event::Change(change)
                if self
                    .floors
                    .get(&change.resource)
                    .is_some_and(|floor| change.seq <= *floor) =>
            {
                return Ok(Vec::new());
            }
            Event::Message {
                channel,
                position: Some(at),
                ..
            } if self
                .channel_floors
                .get(channel)
                .is_some_and(|floor| at.offset <= *floor) =>
            {
                return Ok(Vec::new());
            }
            // Ids are for messaging; a watcher who may not message other
            // connections gets the member without its connection id.
            Event::Presence {
                channel,
                kind,
                member,
            } if !self.sees_ids => {
                let redacted = Envelope::new(Event::Presence {
                    channel: channel.clone(),
                    kind: *kind,
                    member: member.redacted(),
                });
                return Ok(super::outbound_frame(self.dialect, redacted)
                    .into_iter()
                    .collect());
            }
            _ => {}
        }
        Ok(super::outbound_frame(self.dialect, out)
            .into_iter()
            .collect())
    }

    async fn on_close(&mut self) {
        self.drop_anonymous_topics().await;
    }

    fn take_resumed(&mut self) -> bool {
        std::mem::take(&mut self.resumed)
    }

    fn expires_at_ms(&self) -> Option<u64> {
        self.actor.identity.expires_at_ms
    }

    fn expiry_warning(&self, ms_left: u64) -> Vec<crate::wire::Message> {
        let error = ClientError::new(
            ErrorCode::TokenExpired,
            format!(
                "the token expires in {ms_left} ms: send a fresh one in-band to stay connected"
            ),
        );
        super::frames(&[self.dialect.error(None, None, &error)])
    }
}
