//! rtbdp at `/rtbdp`: `{"subscribe":[{id,table,filters}], "replay":[{id,
//! table,filters,limit}], "unsubscribe":[ids]}` — one frame may hold all
//! three, handled in that order. Tables are resources; `filters` is an OR
//! of rows, each an AND of column filters (see [`crate::bus::Filter`]).
//! Live changes arrive as `{table,row}`; a replay as column-wise
//! `{table,rows:{col:[…]}}` batches (or one `row`), then `{"replayed":id}`.
//! Every row carries `seq_num`: its last change's sequence number.

use serde_json::{json, Map, Value};

use super::fields::{any, opt_u64, req_str, Obj};
use super::native::parse_object;
use super::{Command, ConnInfo, DecodeError, Dialect, Held, Reply, Request, Revoked, Target};
use crate::bus::{type_name, Envelope, Event};
use crate::error::{ClientError, ErrorCode};

/// The rtbdp dialect.
pub struct Rtbdp;

/// Rows per `rows` frame in a replay.
const BATCH: usize = 500;

impl Dialect for Rtbdp {
    fn id(&self) -> usize {
        3
    }

    fn name(&self) -> &'static str {
        "rtbdp"
    }

    fn greeting(&self, _: &ConnInfo<'_>) -> Vec<Value> {
        Vec::new()
    }

    fn decode(&self, text: &str) -> Result<Vec<Request>, DecodeError> {
        let obj = parse_object(text)?;
        let fail = |error| DecodeError {
            request_id: None,
            error,
        };
        if let Some(key) = obj
            .keys()
            .find(|k| !["subscribe", "replay", "unsubscribe"].contains(&k.as_str()))
        {
            return Err(fail(ClientError::new(
                ErrorCode::UnknownMessageType,
                format!("unknown key `{key}`; use subscribe, replay, unsubscribe"),
            )));
        }
        if obj.is_empty() {
            return Err(fail(ClientError::new(
                ErrorCode::UnknownMessageType,
                "expected `subscribe`, `replay` or `unsubscribe`",
            )));
        }
        let mut requests = Vec::new();
        for item in list(&obj, "subscribe").map_err(fail)? {
            let (id, item) = entry(item).map_err(fail)?;
            let command = item_command(&item, |table| Command::Subscribe {
                target: Target::Resource(table),
                key: Some(key_of(&id)),
                filter: any(&item, "filters"),
                events: Vec::new(),
                since: None,
            });
            requests.push(request(id, command).map_err(fail)?);
        }
        for item in list(&obj, "replay").map_err(fail)? {
            let (id, item) = entry(item).map_err(fail)?;
            let limit = opt_u64(&item, "limit");
            let command = limit.and_then(|limit| {
                item_command(&item, |table| Command::Replay {
                    resource: table,
                    filter: any(&item, "filters"),
                    limit: limit.map(|l| l as usize),
                })
            });
            requests.push(request(id, command).map_err(fail)?);
        }
        for id in list(&obj, "unsubscribe").map_err(fail)? {
            let command = Command::Unsubscribe {
                target: Target::Resource(String::new()),
                key: Some(key_of(id)),
            };
            requests.push(Request::new(Some(id.clone()), command));
        }
        Ok(requests)
    }

    fn reply(&self, request: &Request, reply: &Reply, _: &ConnInfo<'_>) -> Vec<Value> {
        let Reply::Replayed {
            resource,
            rows,
            seqs,
            ..
        } = reply
        else {
            return Vec::new();
        };
        let rows: Vec<Value> = rows
            .iter()
            .zip(seqs)
            .map(|(r, s)| with_seq(r, *s))
            .collect();
        let mut frames: Vec<Value> = match rows.len() {
            1 => vec![json!({"table": resource, "row": rows[0]})],
            _ => rows
                .chunks(BATCH)
                .map(|chunk| json!({"table": resource, "rows": columns(chunk)}))
                .collect(),
        };
        frames.push(json!({"replayed": request.id}));
        frames
    }

    fn error(&self, request_id: Option<&Value>, _: Option<&Request>, error: &ClientError) -> Value {
        json!({"id": request_id, "error": {"code": error.code.as_str(), "message": error.message}})
    }

    fn revoked(&self, revoked: &Revoked) -> Value {
        let id = match &revoked.what {
            // Keys are ids as text; numeric ids go back as numbers.
            Held::Subscription(_, Some(key)) => serde_json::from_str(key).unwrap_or(json!(key)),
            _ => Value::Null,
        };
        json!({"id": id, "unsubscribed": true, "error": {"code": "FORBIDDEN", "message": revoked.reason}})
    }

    fn event(&self, envelope: &Envelope) -> Option<Value> {
        match &envelope.event {
            // rtbdp streams rows: inserts and updates; a delete has no row.
            Event::Change(change) if change.op != "delete" => Some(json!({
                "table": change.resource,
                "row": with_seq(&change.record, change.seq),
            })),
            _ => None,
        }
    }
}

fn list<'a>(obj: &'a Obj, key: &str) -> Result<&'a [Value], ClientError> {
    match obj.get(key) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(ClientError::bad_request(format!(
            "`{key}` must be a list, got {}",
            type_name(other)
        ))),
    }
}

fn entry(item: &Value) -> Result<(Value, Obj), ClientError> {
    let Value::Object(obj) = item else {
        return Err(ClientError::bad_request("each entry must be an object"));
    };
    match obj.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => Ok((id.clone(), obj.clone())),
        _ => Err(ClientError::bad_request(
            "each entry needs an `id` (number or string)",
        )),
    }
}

fn item_command(item: &Obj, make: impl FnOnce(String) -> Command) -> Result<Command, ClientError> {
    req_str(item, "table").map(make)
}

/// A request carrying the entry's id, or the entry's own error tagged with it.
fn request(id: Value, command: Result<Command, ClientError>) -> Result<Request, ClientError> {
    command
        .map(|c| Request::new(Some(id.clone()), c))
        .map_err(|e| ClientError::new(e.code, format!("entry {id}: {}", e.message)))
}

fn key_of(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn with_seq(record: &Value, seq: u64) -> Value {
    let mut row = record.as_object().cloned().unwrap_or_default();
    row.insert("seq_num".into(), json!(seq));
    Value::Object(row)
}

/// Rows turned column-wise: every column seen, in first-seen order, with a
/// value (or null) per row.
fn columns(rows: &[Value]) -> Value {
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        if let Value::Object(map) = row {
            for key in map.keys() {
                if !names.contains(&key.as_str()) {
                    names.push(key);
                }
            }
        }
    }
    let mut out = Map::new();
    for name in names {
        let column: Vec<Value> = rows
            .iter()
            .map(|r| r.get(name).cloned().unwrap_or(Value::Null))
            .collect();
        out.insert(name.to_owned(), Value::Array(column));
    }
    Value::Object(out)
}
