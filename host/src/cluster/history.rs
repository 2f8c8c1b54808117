//! Channel history in Redis Streams, shared by every node, so a client
//! that reconnects to another node resumes without a gap.
//!
//! Each channel has a stream (`XADD ... MAXLEN history_size`, entry id
//! `<offset>-0`), an offset counter and an epoch, changed together by Lua
//! scripts so two nodes publishing at once get distinct, increasing
//! offsets. If Redis loses the counter (restarted empty, keys expired past
//! `history_ttl_ms`) the next script starts a new epoch: offsets of the
//! old one then mean nothing, and resuming clients are told
//! `recovered: false`.

use std::sync::Arc;

use fred::prelude::LuaInterface;
use futures_util::future::BoxFuture;

use super::keys;
use super::wire::WireEvent;
use crate::bus::history::{with_position, History, HistoryError, Recovery};
use crate::bus::{Event, Position};
use crate::config::ChannelOptions;

/// Sets up the epoch and counter when they are missing (history lost).
const PREPARE: &str = r"
local epoch = redis.call('GET', KEYS[3])
if (not epoch) or redis.call('EXISTS', KEYS[2]) == 0 then
  epoch = ARGV[1]
  redis.call('SET', KEYS[3], epoch)
  redis.call('SET', KEYS[2], 0)
  redis.call('DEL', KEYS[1])
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
";

/// KEYS: stream, counter, epoch. ARGV: new epoch, ttl, max length, now,
/// message. Returns {offset, epoch}.
const APPEND: &str = r"
local offset = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], offset .. '-0', 't', ARGV[4], 'd', ARGV[5])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return {offset, epoch}
";

/// KEYS: stream, counter, epoch. ARGV: new epoch, ttl, max count, after
/// offset (or ''). Returns {epoch, last, offset, t, d, offset, t, d...}.
const SINCE: &str = r"
local out = {epoch, redis.call('GET', KEYS[2])}
if ARGV[4] ~= '' then
  local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[4] .. '-0', '+', 'COUNT', ARGV[3])
  for _, e in ipairs(entries) do
    table.insert(out, string.match(e[1], '^(%d+)'))
    table.insert(out, e[2][2])
    table.insert(out, e[2][4])
  end
end
return out
";

/// History in Redis.
pub struct RedisHistory {
    client: fred::clients::Client,
    append: String,
    since: String,
}

impl RedisHistory {
    pub(super) fn new(client: fred::clients::Client) -> Self {
        Self {
            client,
            append: format!("{PREPARE}{APPEND}"),
            since: format!("{PREPARE}{SINCE}"),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> HistoryError {
    HistoryError(e.to_string())
}

fn new_epoch() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

impl History for RedisHistory {
    fn append<'a>(
        &'a self,
        channel: &'a str,
        options: &'a ChannelOptions,
        message: Event,
    ) -> BoxFuture<'a, Result<Event, HistoryError>> {
        Box::pin(async move {
            let kept = WireEvent::of(&message)
                .and_then(|e| serde_json::to_string(&e).ok())
                .ok_or_else(|| unavailable("only messages are kept"))?;
            let (offset, epoch): (u64, String) = self
                .client
                .eval(
                    self.append.as_str(),
                    keys::history(channel).to_vec(),
                    vec![
                        new_epoch(),
                        options.history_ttl_ms.to_string(),
                        options.history_size.to_string(),
                        crate::now_ms().to_string(),
                        kept,
                    ],
                )
                .await
                .map_err(unavailable)?;
            Ok(with_position(
                message,
                Position {
                    offset,
                    epoch: Arc::from(epoch),
                },
            ))
        })
    }

    fn since<'a>(
        &'a self,
        channel: &'a str,
        options: &'a ChannelOptions,
        since: Option<Position>,
    ) -> BoxFuture<'a, Result<Recovery, HistoryError>> {
        Box::pin(async move {
            let after = since
                .as_ref()
                .map_or(String::new(), |p| p.offset.to_string());
            let reply: Vec<String> = self
                .client
                .eval(
                    self.since.as_str(),
                    keys::history(channel).to_vec(),
                    vec![
                        new_epoch(),
                        options.history_ttl_ms.to_string(),
                        options.history_size.to_string(),
                        after,
                    ],
                )
                .await
                .map_err(unavailable)?;
            recovery(reply, options, since)
        })
    }
}

/// Reads the SINCE script's reply into what a resuming subscriber gets,
/// with the same rules as a single node's history.
fn recovery(
    reply: Vec<String>,
    options: &ChannelOptions,
    since: Option<Position>,
) -> Result<Recovery, HistoryError> {
    let mut reply = reply.into_iter();
    let (Some(epoch), Some(last)) = (reply.next(), reply.next()) else {
        return Err(unavailable("short history reply"));
    };
    let epoch: Arc<str> = Arc::from(epoch);
    let last: u64 = last.parse().map_err(unavailable)?;
    let current = Position {
        offset: last,
        epoch: epoch.clone(),
    };
    let Some(since) = since else {
        return Ok(Recovery {
            missed: Vec::new(),
            recovered: true,
            current,
        });
    };
    if since.epoch != epoch || since.offset > last {
        return Ok(Recovery {
            missed: Vec::new(),
            recovered: false,
            current,
        });
    }
    let now = crate::now_ms();
    let rest: Vec<String> = reply.collect();
    let mut missed = Vec::new();
    let mut first = None;
    for entry in rest.chunks_exact(3) {
        let (Ok(offset), Ok(at)) = (entry[0].parse::<u64>(), entry[1].parse::<u64>()) else {
            continue;
        };
        if options.history_ttl_ms > 0 && at + options.history_ttl_ms < now {
            continue;
        }
        let Ok(event) = serde_json::from_str::<WireEvent>(&entry[2]) else {
            continue;
        };
        first.get_or_insert(offset);
        let Some(event) = event.into_event() else {
            continue;
        };
        missed.push(with_position(
            event,
            Position {
                offset,
                epoch: epoch.clone(),
            },
        ));
    }
    let recovered = since.offset == last || first == Some(since.offset + 1);
    Ok(Recovery {
        missed,
        recovered,
        current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep() -> ChannelOptions {
        ChannelOptions {
            history_size: 10,
            history_ttl_ms: 0,
        }
    }

    fn message(n: u64) -> [String; 3] {
        let e = WireEvent::of(&Event::Message {
            channel: "c".into(),
            from: None,
            data: serde_json::json!(n),
            position: None,
        })
        .expect("message");
        [
            n.to_string(),
            crate::now_ms().to_string(),
            serde_json::to_string(&e).expect("json"),
        ]
    }

    fn at(offset: u64, epoch: &str) -> Option<Position> {
        Some(Position {
            offset,
            epoch: epoch.into(),
        })
    }

    #[test]
    fn a_reply_is_read_with_a_single_nodes_rules() {
        let mut reply = vec!["e1".to_owned(), "5".to_owned()];
        reply.extend(message(4));
        reply.extend(message(5));
        let r = recovery(reply.clone(), &keep(), at(3, "e1")).expect("reply");
        assert_eq!(
            (r.missed.len(), r.recovered, r.current.offset),
            (2, true, 5)
        );
        let r = recovery(reply[..5].to_vec(), &keep(), at(2, "e1")).expect("reply");
        assert!(!r.recovered, "offset 3 is gone");
        let r = recovery(reply.clone(), &keep(), at(3, "e0")).expect("reply");
        assert_eq!((r.missed.len(), r.recovered), (0, false), "another epoch");
        let r = recovery(vec!["e1".into(), "5".into()], &keep(), at(5, "e1")).expect("reply");
        assert!(r.recovered && r.missed.is_empty(), "nothing missed");
        assert!(recovery(vec!["e1".into()], &keep(), None).is_err());
    }
}
