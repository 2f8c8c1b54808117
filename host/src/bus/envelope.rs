//! What travels on the bus: an [`Event`] wrapped in an [`Envelope`] that
//! caches its encoding per dialect, so a message fanned out to 10,000
//! clients is serialised once per dialect, not once per recipient.

use std::sync::{Arc, OnceLock};

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;

/// How many dialects can cache an encoding (native, daptin, jac, rtbdp, socket).
pub const DIALECTS: usize = 5;

/// Who sent something: a connection and, when authenticated, its user.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The sending connection.
    pub client_id: Arc<str>,
    /// Its user, when authenticated.
    pub user_id: Option<String>,
}

/// Presence changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceKind {
    /// A connection joined the channel's presence list.
    Join,
    /// It left (or disconnected).
    Leave,
}

impl PresenceKind {
    /// `join` or `leave`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceKind::Join => "join",
            PresenceKind::Leave => "leave",
        }
    }
}

/// One member of a channel's presence list.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Its public id (stable per connection, not addressable).
    pub member_id: Arc<str>,
    /// The member's connection; shown only to those who may message it.
    pub client_id: Arc<str>,
    /// Its user, when authenticated.
    pub user_id: Option<String>,
    /// What it joined with (SoliDB's `user_info`).
    pub info: Value,
    /// Unix milliseconds.
    pub joined_at: u64,
}

/// A record change in the store (insert, update, delete).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The resource changed.
    pub resource: String,
    /// `insert`, `update` or `delete`.
    pub op: &'static str,
    /// The record after the change (before it, for deletes), protected fields removed.
    pub record: Value,
    /// The change log's sequence number.
    pub seq: u64,
    /// Unix milliseconds.
    pub timestamp: u64,
}

impl Member {
    /// The member without its connection id, for watchers who may not
    /// message other connections (an id is only good for that).
    pub fn redacted(&self) -> Self {
        Self {
            client_id: Arc::from(""),
            ..self.clone()
        }
    }
}

/// Where a message is in its channel's history: resuming subscribers say
/// the last position they saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Per channel, increasing.
    pub offset: u64,
    /// Changes whenever the history was lost (a restart of a single node,
    /// Redis flushed): offsets of another epoch mean nothing.
    pub epoch: Arc<str>,
}

/// Something delivered to clients.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A `publish` to a channel (by a client, or by a plugin when `from` is none).
    Message {
        /// The channel.
        channel: String,
        /// The publisher.
        from: Option<Origin>,
        /// The payload.
        data: Value,
        /// Its place in the channel's history, when the channel keeps one.
        position: Option<Position>,
    },
    /// A client's targeted send to users or client ids.
    Direct {
        /// The sender.
        from: Origin,
        /// The payload.
        data: Value,
    },
    /// A plugin's notification (jac-cloud `notify_*`): delivered as the bare
    /// data object, so plugins define their own frame types.
    Notify {
        /// The payload.
        data: Value,
        /// The channel it went to, when it went to one.
        channel: Option<String>,
    },
    /// Presence join or leave.
    Presence {
        /// The channel.
        channel: String,
        /// Join or leave.
        kind: PresenceKind,
        /// Who.
        member: Member,
    },
    /// A store change.
    Change(Change),
}

/// An event plus its per-dialect encodings, shared by every recipient.
#[derive(Debug)]
pub struct Envelope {
    /// The event.
    pub event: Event,
    /// Unix milliseconds when it was created.
    pub timestamp: u64,
    /// What holding it costs a client's queue: its payload's size as JSON
    /// plus a frame's overhead (the byte bound of every queue counts this).
    pub cost: usize,
    encoded: [OnceLock<Option<Utf8Bytes>>; DIALECTS],
}

/// Bytes a frame adds around its payload (type, channel, timestamps...).
const FRAME_OVERHEAD: usize = 160;

impl Event {
    /// The payload a client-facing frame carries.
    fn payload(&self) -> &Value {
        match self {
            Event::Message { data, .. }
            | Event::Direct { data, .. }
            | Event::Notify { data, .. } => data,
            Event::Presence { member, .. } => &member.info,
            Event::Change(change) => &change.record,
        }
    }
}

/// The length of `value` as JSON, without building the text.
pub fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

impl Envelope {
    /// Wraps an event.
    pub fn new(event: Event) -> Arc<Self> {
        let cost = json_len(event.payload()) + FRAME_OVERHEAD;
        Arc::new(Self {
            event,
            timestamp: crate::now_ms(),
            cost,
            encoded: Default::default(),
        })
    }

    /// The event as dialect `dialect` shows it, encoding it on first use.
    /// `None` means that dialect does not show this event.
    pub fn encoded(
        &self,
        dialect: usize,
        encode: impl FnOnce(&Envelope) -> Option<Utf8Bytes>,
    ) -> Option<Utf8Bytes> {
        self.encoded[dialect % DIALECTS]
            .get_or_init(|| encode(self))
            .clone()
    }
}
