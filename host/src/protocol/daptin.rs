//! Daptin at `/live`: `{id?, method, attributes}` frames; the first frame
//! is `{"type":"session","status":"open"}`; replies are
//! `{"type":"response",id,method,ok,data|error}`; events are
//! `{"type":"event",topic,event,data}`. Every resource is a system topic
//! whose create / update / delete events reach only subscribers allowed
//! to read the record (role lists and guard filters apply). Both the
//! documented method names and the real server's are accepted.

use serde_json::{json, Value};

use super::fields::{any, iso_time, Obj};
use super::native::{member_json, parse_object};
use super::{Command, ConnInfo, DecodeError, Dialect, Held, Reply, Request, Revoked, Target};
use crate::bus::{Envelope, Event};
use crate::error::{ClientError, ErrorCode};

/// The Daptin dialect.
pub struct Daptin;

impl Dialect for Daptin {
    fn id(&self) -> usize {
        1
    }

    fn name(&self) -> &'static str {
        "daptin"
    }

    fn resource_topics(&self) -> bool {
        true
    }

    fn greeting(&self, conn: &ConnInfo<'_>) -> Vec<Value> {
        vec![json!({
            "type": "session",
            "status": "open",
            "clientId": conn.client_id,
            "user": conn.identity.user_json(),
            "timestamp": iso_time(crate::now_ms()),
        })]
    }

    fn decode(&self, text: &str) -> Result<Vec<Request>, DecodeError> {
        let obj = parse_object(text)?;
        let id = obj.get("id").cloned();
        let fail = |error| DecodeError {
            request_id: id.clone(),
            error,
        };
        let method = match obj.get("method") {
            Some(Value::String(m)) => m.clone(),
            _ => {
                return Err(fail(ClientError::new(
                    ErrorCode::UnknownMessageType,
                    "missing `method`",
                )))
            }
        };
        let attributes = match obj.get("attributes") {
            None | Some(Value::Null) => Obj::new(),
            Some(Value::Object(a)) => a.clone(),
            Some(_) => {
                return Err(fail(ClientError::bad_request(
                    "`attributes` must be an object",
                )))
            }
        };
        let commands = commands(&method, &attributes).map_err(fail)?;
        Ok(commands
            .into_iter()
            .map(|command| Request {
                id: id.clone(),
                command,
                method: Some(method.clone()),
            })
            .collect())
    }

    fn reply(&self, request: &Request, reply: &Reply, _: &ConnInfo<'_>) -> Vec<Value> {
        let data = match reply {
            Reply::Pong => json!("pong"),
            Reply::Subscribed { target, .. } | Reply::Unsubscribed { target } => {
                json!({"topicName": target.name()})
            }
            Reply::Published {
                channel, delivered, ..
            } => {
                json!({"topicName": channel, "delivered": delivered})
            }
            Reply::Topic { info } => info.clone(),
            Reply::Topics { topics } => json!(topics),
            Reply::Authenticated { user, .. } => json!({"user": user}),
            Reply::Walker {
                status,
                reports,
                returns,
                ..
            } => json!({"status": status, "reports": reports, "returns": returns}),
            Reply::Data { data, .. } => data.clone(),
            other => json!(format!("{other:?}")),
        };
        vec![json!({
            "type": "response",
            "id": request.id,
            "method": request.method,
            "ok": true,
            "data": data,
        })]
    }

    fn error(
        &self,
        request_id: Option<&Value>,
        request: Option<&Request>,
        error: &ClientError,
    ) -> Value {
        json!({
            "type": "response",
            "id": request_id,
            "method": request.and_then(|r| r.method.clone()),
            "ok": false,
            "error": {"code": error.code.as_str(), "message": error.message},
        })
    }

    fn revoked(&self, revoked: &Revoked) -> Value {
        let (topic, event) = match &revoked.what {
            Held::Subscription(target, _) => (target.name(), "unsubscribed"),
            Held::Presence(channel) => (channel.as_str(), "presence-left"),
        };
        json!({
            "type": "event",
            "topic": topic,
            "event": event,
            "data": {"reason": revoked.reason},
        })
    }

    fn event(&self, envelope: &Envelope) -> Option<Value> {
        Some(match &envelope.event {
            Event::Message {
                channel,
                from,
                data,
                position,
            } => {
                let mut frame = json!({
                    "type": "event",
                    "topic": channel,
                    "event": "new-message",
                    "data": data,
                    "from": from.as_ref().map(|f| json!({"clientId": &*f.client_id, "userId": f.user_id})),
                });
                if let Some(p) = position {
                    frame["offset"] = json!(p.offset);
                    frame["epoch"] = json!(&*p.epoch);
                }
                frame
            }
            Event::Change(change) => json!({
                "type": "event",
                "topic": change.resource,
                "event": match change.op {
                    "insert" => "create",
                    other => other,
                },
                "data": {
                    "type": change.resource,
                    "id": change.record.get("id").cloned().unwrap_or(Value::Null),
                    "attributes": change.record,
                },
                "seq": change.seq,
            }),
            Event::Presence {
                channel,
                kind,
                member,
            } => json!({
                "type": "event",
                "topic": channel,
                "event": format!("presence-{}", kind.as_str()),
                "data": member_json(member),
            }),
            Event::Direct { from, data } => json!({
                "type": "event",
                "topic": null,
                "event": "direct",
                "data": data,
                "from": {"clientId": &*from.client_id, "userId": from.user_id},
            }),
            Event::Notify { data, .. } => data.clone(),
        })
    }
}

/// Topic names: a comma-separated string (or a list), trimmed.
fn topic_names(attributes: &Obj) -> Result<Vec<String>, ClientError> {
    let raw = attributes
        .get("topicName")
        .or_else(|| attributes.get("name"));
    let names: Vec<String> = match raw {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        return Err(ClientError::bad_request("missing `topicName`"));
    }
    for name in &names {
        super::fields::check_channel(name, "topicName")?;
    }
    Ok(names)
}

fn one_name(attributes: &Obj) -> Result<String, ClientError> {
    let mut names = topic_names(attributes)?;
    if names.len() > 1 {
        return Err(ClientError::bad_request("give one topic name"));
    }
    Ok(names.remove(0))
}

fn commands(method: &str, attributes: &Obj) -> Result<Vec<Command>, ClientError> {
    Ok(match method {
        "subscribe" => topic_names(attributes)?
            .into_iter()
            .map(|name| Command::Subscribe {
                // The session turns a resource name into its system topic.
                target: Target::Channel(name),
                key: None,
                filter: any(attributes, "filters"),
                events: Vec::new(),
                since: None,
            })
            .collect(),
        "unsubscribe" => topic_names(attributes)?
            .into_iter()
            .map(|name| Command::Unsubscribe {
                target: Target::Channel(name),
                key: None,
            })
            .collect(),
        "new-message" | "publish" => vec![Command::Publish {
            channel: one_name(attributes)?,
            message: match attributes.get("message") {
                Some(m) => m.clone(),
                None => return Err(ClientError::bad_request("missing `message`")),
            },
        }],
        "create-topic" | "create-topicName" => vec![Command::TopicCreate {
            name: one_name(attributes)?,
        }],
        "destroy-topic" | "destroy-topicName" => vec![Command::TopicDestroy {
            name: one_name(attributes)?,
        }],
        "list-topic" | "list-topicName" => vec![Command::TopicList],
        "get-topic" | "get-topicName" => vec![Command::TopicGet {
            name: one_name(attributes)?,
        }],
        "ping" => vec![Command::Ping],
        other => {
            return Err(ClientError::new(
                ErrorCode::UnknownMessageType,
                format!("unknown method `{other}`"),
            ))
        }
    })
}
