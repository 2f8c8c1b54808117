//! The native protocol at `/ws` (and `/`): the s3db.js WebSocketPlugin
//! client protocol (`type` + `requestId`), extended with walkers, targeted
//! sends, in-band auth, presence and resumable subscriptions. The full
//! reference is `docs/PROTOCOL.md`.

use serde_json::{json, Value};

use super::fields::{
    any, check_channel, id_field, iso_time, opt_str, opt_u64, req_channel, req_str, str_list,
    with_request_id, Obj,
};
use super::{
    Command, ConnInfo, DecodeError, Dialect, Held, Reply, Request, Revoked, Since, Target,
};
use crate::bus::{Envelope, Event, Member, Origin};
use crate::error::{ClientError, ErrorCode};

/// The native dialect.
pub struct Native;

/// The native dialect's envelope cache slot.
pub const ID: usize = 0;

impl Dialect for Native {
    fn id(&self) -> usize {
        ID
    }

    fn name(&self) -> &'static str {
        "native"
    }

    fn greeting(&self, conn: &ConnInfo<'_>) -> Vec<Value> {
        vec![connected(conn)]
    }

    fn decode(&self, text: &str) -> Result<Vec<Request>, DecodeError> {
        let obj = parse_object(text)?;
        let request_id = obj.get("requestId").cloned();
        decode_command(&obj)
            .map(|command| vec![Request::new(request_id.clone(), command)])
            .map_err(|error| DecodeError { request_id, error })
    }

    fn reply(&self, request: &Request, reply: &Reply, conn: &ConnInfo<'_>) -> Vec<Value> {
        let frame = match reply {
            Reply::Pong => json!({"type": "pong", "timestamp": iso_time(crate::now_ms())}),
            Reply::Info => connected(conn),
            Reply::Authenticated { user, .. } => {
                json!({"type": "authenticated", "clientId": conn.client_id, "user": user})
            }
            Reply::Subscribed {
                target,
                filter,
                events,
                recovered,
                position,
            } => {
                let mut frame = target_frame("subscribed", target);
                frame["filter"] = filter.clone();
                if matches!(target, Target::Resource(_)) {
                    frame["events"] = json!(events);
                }
                if let Some(recovered) = recovered {
                    frame["recovered"] = json!(recovered);
                }
                if let Some(p) = position {
                    frame["offset"] = json!(p.offset);
                    frame["epoch"] = json!(&*p.epoch);
                }
                frame
            }
            Reply::Unsubscribed { target } => target_frame("unsubscribed", target),
            Reply::Published {
                channel,
                delivered,
                position,
            } => {
                let mut frame =
                    json!({"type": "published", "channel": channel, "delivered": delivered});
                if let Some(p) = position {
                    frame["offset"] = json!(p.offset);
                    frame["epoch"] = json!(&*p.epoch);
                }
                frame
            }
            Reply::Sent { delivered } => json!({"type": "sent", "delivered": delivered}),
            Reply::Joined { channel } => json!({"type": "joined", "channel": channel}),
            Reply::Left {
                channel,
                was_present,
            } => json!({"type": "left", "channel": channel, "wasPresent": was_present}),
            Reply::Presence { channel, members } => json!({
                "type": "presence",
                "channel": channel,
                "members": members.iter().map(member_json).collect::<Vec<_>>(),
            }),
            Reply::Walker {
                name,
                status,
                reports,
                returns,
            } => json!({
                "type": "walker",
                "walker": name,
                "status": status,
                "reports": reports,
                "returns": returns,
            }),
            Reply::Replayed {
                resource,
                rows,
                seq,
                ..
            } => json!({"type": "replayed", "resource": resource, "data": rows, "seq": seq}),
            Reply::Resumed { subscribed, .. } => return self.reply(request, subscribed, conn),
            Reply::Topic { info } => json!({"type": "topic", "topic": info}),
            Reply::Topics { topics } => json!({"type": "topics", "topics": topics}),
            Reply::Data {
                resource,
                data,
                cursor,
            } => {
                let mut frame = json!({"type": "data", "resource": resource, "data": data});
                if matches!(request.command, Command::List { .. }) {
                    frame["cursor"] = json!(cursor);
                }
                frame
            }
        };
        vec![with_request_id(frame, request.id.as_ref())]
    }

    fn error(&self, request_id: Option<&Value>, _: Option<&Request>, error: &ClientError) -> Value {
        with_request_id(
            json!({"type": "error", "code": error.code.as_str(), "message": error.message}),
            request_id,
        )
    }

    fn revoked(&self, revoked: &Revoked) -> Value {
        let mut frame = match &revoked.what {
            Held::Subscription(target, _) => target_frame("unsubscribed", target),
            Held::Presence(channel) => {
                json!({"type": "left", "channel": channel, "wasPresent": true})
            }
        };
        frame["reason"] = json!(revoked.reason);
        frame
    }

    fn event(&self, envelope: &Envelope) -> Option<Value> {
        let timestamp = iso_time(envelope.timestamp);
        Some(match &envelope.event {
            Event::Message {
                channel,
                from,
                data,
                position,
            } => {
                let mut frame = json!({
                    "type": "message",
                    "channel": channel,
                    "from": from.as_ref().map(origin_json),
                    "data": data,
                    "timestamp": timestamp,
                });
                if let Some(p) = position {
                    frame["offset"] = json!(p.offset);
                    frame["epoch"] = json!(&*p.epoch);
                }
                frame
            }
            Event::Direct { from, data } => json!({
                "type": "direct",
                "from": origin_json(from),
                "data": data,
                "timestamp": timestamp,
            }),
            Event::Notify { data, .. } if data.is_object() => data.clone(),
            Event::Notify { data, channel } => {
                json!({"type": "notification", "channel": channel, "data": data})
            }
            Event::Presence {
                channel,
                kind,
                member,
            } => json!({
                "type": "presence",
                "event": kind.as_str(),
                "channel": channel,
                "member": member_json(member),
                "timestamp": timestamp,
            }),
            Event::Change(change) => json!({
                "type": "event",
                "event": change.op,
                "resource": change.resource,
                "data": change.record,
                "seq": change.seq,
                "timestamp": iso_time(change.timestamp),
            }),
        })
    }
}

/// Parses a frame that must be a JSON object.
///
/// # Errors
/// INVALID_JSON when it is not JSON or not an object.
pub fn parse_object(text: &str) -> Result<Obj, DecodeError> {
    let invalid = |message: String| DecodeError {
        request_id: None,
        error: ClientError::new(ErrorCode::InvalidJson, message),
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(invalid("message must be a JSON object".into())),
        Err(e) => Err(invalid(format!("invalid JSON: {e}"))),
    }
}

fn decode_command(obj: &Obj) -> Result<Command, ClientError> {
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            return Err(ClientError::new(
                ErrorCode::UnknownMessageType,
                "`type` must be a string",
            ))
        }
        None => {
            return Err(ClientError::new(
                ErrorCode::UnknownMessageType,
                "missing `type`",
            ))
        }
    };
    Ok(match kind {
        "ping" => Command::Ping,
        "info" | "connection" => Command::Info,
        "auth" => Command::Auth {
            token: opt_str(obj, "token")?,
            anonymous_on_failure: false,
        },
        "subscribe" => Command::Subscribe {
            target: target(obj)?,
            key: None,
            filter: any(obj, "filter"),
            events: str_list(obj, "events")?,
            since: since(obj)?,
        },
        "unsubscribe" => Command::Unsubscribe {
            target: target(obj)?,
            key: None,
        },
        "publish" => Command::Publish {
            channel: req_channel(obj, "channel")?,
            message: obj
                .get("message")
                .or_else(|| obj.get("data"))
                .cloned()
                .ok_or_else(|| ClientError::bad_request("missing `message`"))?,
        },
        "send" => {
            for channel in str_list(obj, "channels")? {
                check_channel(&channel, "channels")?;
            }
            let send = Command::Send {
                users: str_list(obj, "users")?,
                clients: str_list(obj, "clients")?,
                channels: str_list(obj, "channels")?,
                data: any(obj, "data"),
            };
            if matches!(&send, Command::Send { users, clients, channels, .. }
                if users.is_empty() && clients.is_empty() && channels.is_empty())
            {
                return Err(ClientError::bad_request(
                    "`send` needs at least one of `users`, `clients`, `channels`",
                ));
            }
            send
        }
        "join" => Command::PresenceJoin {
            channel: req_channel(obj, "channel")?,
            info: any(obj, "info"),
        },
        "leave" => Command::PresenceLeave {
            channel: req_channel(obj, "channel")?,
        },
        "presence" => Command::PresenceList {
            channel: req_channel(obj, "channel")?,
        },
        "walker" => Command::Walker {
            name: req_str(obj, "walker")?,
            context: match any(obj, "context") {
                Value::Null => json!({}),
                other => other,
            },
            respond: true,
        },
        "get" => Command::Get {
            resource: req_str(obj, "resource")?,
            id: record_id(obj)?,
        },
        "list" => Command::List {
            resource: req_str(obj, "resource")?,
            filter: any(obj, "filter"),
            limit: opt_u64(obj, "limit")?.map(|l| l as usize),
            cursor: id_field(obj, "cursor")?,
        },
        "insert" => Command::Insert {
            resource: req_str(obj, "resource")?,
            data: any(obj, "data"),
        },
        "update" => Command::Update {
            resource: req_str(obj, "resource")?,
            id: record_id(obj)?,
            data: any(obj, "data"),
        },
        "replay" => Command::Replay {
            resource: req_str(obj, "resource")?,
            filter: any(obj, "filter"),
            limit: opt_u64(obj, "limit")?.map(|l| l as usize),
        },
        "delete" => Command::Delete {
            resource: req_str(obj, "resource")?,
            id: record_id(obj)?,
        },
        other => {
            return Err(ClientError::new(
                ErrorCode::UnknownMessageType,
                format!("unknown message type `{other}`"),
            ))
        }
    })
}

/// `since`: a sequence number (resources) or `{"offset", "epoch"}` (a
/// channel's history position).
fn since(obj: &Obj) -> Result<Option<Since>, ClientError> {
    let bad = || {
        ClientError::bad_request(
            "`since` must be a sequence number or {\"offset\": n, \"epoch\": \"…\"}",
        )
    };
    match obj.get("since") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(p)) => {
            let offset = p.get("offset").and_then(Value::as_u64).ok_or_else(bad)?;
            let epoch = p.get("epoch").and_then(Value::as_str).ok_or_else(bad)?;
            Ok(Some(Since::Position(crate::bus::Position {
                offset,
                epoch: epoch.into(),
            })))
        }
        Some(v) => v.as_u64().map(|n| Some(Since::Seq(n))).ok_or_else(bad),
    }
}

fn record_id(obj: &Obj) -> Result<String, ClientError> {
    id_field(obj, "id")?.ok_or_else(|| ClientError::bad_request("missing `id`"))
}

fn target(obj: &Obj) -> Result<Target, ClientError> {
    match (opt_str(obj, "channel")?, opt_str(obj, "resource")?) {
        (Some(c), None) if !c.is_empty() => {
            check_channel(&c, "channel")?;
            Ok(Target::Channel(c))
        }
        (None, Some(r)) if !r.is_empty() => Ok(Target::Resource(r)),
        (Some(_), Some(_)) => Err(ClientError::bad_request(
            "give either `channel` or `resource`, not both",
        )),
        _ => Err(ClientError::bad_request("missing `channel` or `resource`")),
    }
}

fn target_frame(kind: &str, target: &Target) -> Value {
    match target {
        Target::Channel(c) => json!({"type": kind, "channel": c}),
        Target::Resource(r) => json!({"type": kind, "resource": r}),
    }
}

fn connected(conn: &ConnInfo<'_>) -> Value {
    json!({
        "type": "connected",
        "clientId": conn.client_id,
        "user": conn.identity.user_json(),
        "timestamp": iso_time(crate::now_ms()),
    })
}

fn origin_json(origin: &Origin) -> Value {
    json!({"clientId": &*origin.client_id, "userId": origin.user_id})
}

/// A presence member as native clients see it; `clientId` only when it
/// was not redacted for this watcher (see [`Member::redacted`]).
pub fn member_json(member: &Member) -> Value {
    let mut json = json!({
        "memberId": &*member.member_id,
        "userId": member.user_id,
        "info": member.info,
        "joinedAt": member.joined_at,
    });
    if !member.client_id.is_empty() {
        json["clientId"] = json!(&*member.client_id);
    }
    json
}
