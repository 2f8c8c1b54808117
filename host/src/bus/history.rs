//! Channel history: channels whose options keep it (`[channels."chat:*"]
//! history_size / history_ttl_ms`) number their messages per channel
//! (`offset`, with an `epoch` that changes when history is lost), so a
//! subscriber that reconnects with `since` gets what it missed, in order,
//! and learns whether that was everything. A single node keeps history in
//! memory ([`MemoryHistory`]); a cluster keeps it in Redis Streams, so a
//! client resuming on another node misses nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;

use super::{Event, Position};
use crate::config::ChannelOptions;

/// What a resuming subscriber missed.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// The messages after the client's position, oldest first.
    pub missed: Vec<Event>,
    /// Whether that is everything it missed (same epoch, nothing trimmed).
    pub recovered: bool,
    /// The channel's newest position (what `since` should say next time).
    pub current: Position,
}

/// Why history could not be read or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel history unavailable: {0}")]
pub struct HistoryError(pub String);

/// Where channel history is kept.
pub trait History: Send + Sync {
    /// Keeps `message` (an [`Event::Message`] without a position) and
    /// returns it with its position.
    ///
    /// # Errors
    /// The backend is unavailable.
    fn append<'a>(
        &'a self,
        channel: &'a str,
        options: &'a ChannelOptions,
        message: Event,
    ) -> BoxFuture<'a, Result<Event, HistoryError>>;

    /// What followed `since` (or nothing, with the current position, when
    /// `since` is none).
    ///
    /// # Errors
    /// The backend is unavailable.
    fn since<'a>(
        &'a self,
        channel: &'a str,
        options: &'a ChannelOptions,
        since: Option<Position>,
    ) -> BoxFuture<'a, Result<Recovery, HistoryError>>;
}

/// The channels that keep history, and where it is kept.
pub struct Histories {
    patterns: std::collections::BTreeMap<String, ChannelOptions>,
    kept: Arc<dyn History>,
}

impl Histories {
    /// History for the channels `patterns` give options, kept in `kept`.
    pub fn new(
        patterns: std::collections::BTreeMap<String, ChannelOptions>,
        kept: Arc<dyn History>,
    ) -> Self {
        Self { patterns, kept }
    }

    /// The history options of `channel`, when it keeps history: the
    /// longest pattern matching it (`"chat:*"` a prefix, `"*"` every
    /// channel, otherwise an exact name).
    pub fn options(&self, channel: &str) -> Option<&ChannelOptions> {
        self.patterns
            .iter()
            .filter(|(pattern, _)| match pattern.strip_suffix('*') {
                Some(prefix) => channel.starts_with(prefix),
                None => pattern.as_str() == channel,
            })
            .max_by_key(|(pattern, _)| pattern.len())
            .map(|(_, options)| options)
            .filter(|o| o.keeps_history())
    }

    /// Where it is kept.
    pub fn kept(&self) -> &Arc<dyn History> {
        &self.kept
    }
}

/// A single node's history, in memory: its epoch is new at every start.
pub struct MemoryHistory {
    epoch: Arc<str>,
    logs: Mutex<HashMap<String, Log>>,
}

#[derive(Default)]
struct Log {
    /// The newest offset given out (0: none yet).
    last: u64,
    /// (offset, Unix ms kept, message), oldest first.
    kept: VecDeque<(u64, u64, Event)>,
}

impl Log {
    /// Drops what is past the options' size or age.
    fn trim(&mut self, options: &ChannelOptions, now: u64) {
        while self.kept.len() > options.history_size {
            self.kept.pop_front();
        }
        if options.history_ttl_ms > 0 {
            while self
                .kept
                .front()
                .is_some_and(|(_, at, _)| at + options.history_ttl_ms < now)
            {
                self.kept.pop_front();
            }
        }
    }
}

impl Default for MemoryHistory {
    fn default() -> Self {
        Self {
            epoch: Arc::from(uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()),
            logs: Mutex::default(),
        }
    }
}

impl MemoryHistory {
    fn position(&self, offset: u64) -> Position {
        Position {
            offset,
            epoch: self.epoch.clone(),
        }
    }
}

impl History for MemoryHistory {
    fn append<'a>(
        &'a self,
        channel: &'a str,
        options: &'a ChannelOptions,
        message: Event,
    ) -> BoxFuture<'a, Result<Event, HistoryError>> {
        let now = crate::now_ms();
        let mut logs = self.logs.lock();
        let log = logs.entry(channel.to_owned()).or_default();
        log.last += 1;
        let offset = log.last;
        let message = with_position(message, self.position(offset));
        log.kept.push_back((offset, now, message.clone()));
        log.trim(options, now);
        Box::pin(std::future::ready(Ok(message)))
    }

    fn since<'a>(
        &'a self,
        channel: &'a str,
        options: &'a ChannelOptions,
        since: Option<Position>,
    ) -> BoxFuture<'a, Result<Recovery, HistoryError>> {
        let mut logs = self.logs.lock();
        let log = logs.entry(channel.to_owned()).or_default();
        log.trim(options, crate::now_ms());
        let current = self.position(log.last);
        let recovery = match since {
            None => Recovery {
                missed: Vec::new(),
                recovered: true,
                current,
            },
            Some(since) if since.epoch != self.epoch || since.offset > log.last => Recovery {
                missed: Vec::new(),
                recovered: false,
                current,
            },
            Some(since) => {
                let first = log.kept.front().map_or(log.last + 1, |(o, _, _)| *o);
                Recovery {
                    missed: log
                        .kept
                        .iter()
                        .filter(|(o, _, _)| *o > since.offset)
                        .map(|(_, _, e)| e.clone())
                        .collect(),
                    recovered: since.offset + 1 >= first,
                    current,
                }
            }
        };
        Box::pin(std::future::ready(Ok(recovery)))
    }
}

/// `message` with its history position.
pub fn with_position(message: Event, at: Position) -> Event {
    match message {
        Event::Message {
            channel,
            from,
            data,
            ..
        } => Event::Message {
            channel,
            from,
            data,
            position: Some(at),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(n: i64) -> Event {
        Event::Message {
            channel: "c".into(),
            from: None,
            data: json!(n),
            position: None,
        }
    }

    #[tokio::test]
    async fn resumes_within_the_epoch_and_says_when_history_is_short() {
        let h = MemoryHistory::default();
        let keep = ChannelOptions {
            history_size: 3,
            history_ttl_ms: 0,
        };
        let mut positions = Vec::new();
        for n in 0..5 {
            if let Event::Message { position, .. } =
                h.append("c", &keep, message(n)).await.expect("append")
            {
                positions.push(position.expect("position"));
            }
        }
        assert_eq!(
            positions.iter().map(|p| p.offset).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let r = h
            .since("c", &keep, Some(positions[2].clone()))
            .await
            .expect("since");
        assert_eq!(
            (r.missed.len(), r.recovered, r.current.offset),
            (2, true, 5)
        );
        let r = h
            .since("c", &keep, Some(positions[0].clone()))
            .await
            .expect("since");
        assert_eq!(
            (r.missed.len(), r.recovered),
            (3, false),
            "offset 2 was trimmed"
        );
        let other = Position {
            offset: 4,
            epoch: Arc::from("another"),
        };
        let r = h.since("c", &keep, Some(other)).await.expect("since");
        assert_eq!((r.missed.len(), r.recovered), (0, false), "another epoch");
    }
}
