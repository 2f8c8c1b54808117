//! Per-connection and per-client limits: every resource a client can
//! consume is bounded here, with a safe default.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits on what one connection, one client address and one identity may
/// consume. Milliseconds, as in the s3db.js options. Every limit has a
/// default that holds on the open internet; 0 turns off the ones that say
/// so.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// How often the server pings each client.
    pub heartbeat_interval_ms: u64,
    /// How long after a ping a silent client is dropped.
    pub heartbeat_timeout_ms: u64,
    /// Largest accepted frame in bytes; larger ones close the socket with 1009.
    pub max_payload_bytes: usize,
    /// Requests allowed per window per identity (user id, or client IP
    /// for anonymous clients), on every dialect, scripted socket and HTTP
    /// walker call; each entry of a batched frame counts, and so do
    /// refused frames. 0 disables the limit.
    pub rate_limit_max_requests: u32,
    /// The rate-limit window.
    pub rate_limit_window_ms: u64,
    /// Events queued for one client before it counts as a slow consumer and
    /// is disconnected (so it never slows anyone else down).
    pub outbound_queue: usize,
    /// Bytes of events queued for one client, the other bound of the same
    /// queue: a few huge messages trip it as surely as many small ones.
    pub outbound_queue_bytes: usize,
    /// Most connections served at once; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// Bytes read from a socket at a time. Small keeps idle connections
    /// cheap (each holds one such buffer); raise it when clients send
    /// large frames often.
    pub read_chunk_bytes: usize,
    /// Largest page a list, replay or resume returns, in bytes of records:
    /// a page stops there and says where to continue.
    pub max_page_bytes: usize,
    /// How long a write to a client may wait for it to read: past it the
    /// client is a slow consumer (its unread replies would stay pinned).
    pub write_timeout_ms: u64,
    /// Subscriptions one connection may hold (channels and resources).
    pub max_subscriptions: usize,
    /// Presence lists one connection may be on.
    pub max_presence: usize,
    /// Largest presence `info`, in bytes of JSON.
    pub max_presence_info_bytes: usize,
    /// Largest client filter, in bytes of JSON.
    pub max_filter_bytes: usize,
    /// Most rows (OR-ed alternatives) a subscription's filter may have once
    /// combined with the guards' and the connection's other keyed
    /// subscriptions: each row is tested for every event.
    pub max_filter_rows: usize,
    /// Daptin topics one creator (a user, or an anonymous connection) may
    /// hold; an anonymous creator's topics go when its connection does.
    pub max_topics_per_creator: usize,
    /// Bytes of records one identity may write per window (walkers' writes
    /// count for their caller); 0 disables the quota.
    pub write_quota_bytes: u32,
    /// The write-quota window.
    pub write_quota_window_ms: u64,
    /// Time a client has to send a complete request head (a WebSocket
    /// upgrade included) before the connection is closed.
    pub handshake_timeout_ms: u64,
    /// Unfinished handshakes one client IP may hold; a new one past it
    /// replaces the oldest.
    pub max_handshakes_per_ip: usize,
    /// Connections of every kind one client IP may hold; 0 disables the
    /// cap (raise it behind a proxy that connects from one address).
    pub max_connections_per_ip: usize,
    /// File descriptors kept free of WebSocket connections, so /healthz,
    /// /metrics and new handshakes still get in at the process's limit.
    pub fd_reserve: usize,
    /// permessage-deflate (RFC 7692) for clients that offer it.
    pub compression: Compression,
    /// Deflate level, 0 (store) to 9 (smallest); 1 is fastest.
    pub compression_level: u32,
    /// The largest LZ77 window either side may use, 9 to 15 bits; a
    /// client's smaller `*_max_window_bits` offer is honoured.
    pub compression_window_bits: u8,
    /// Keep each connection's deflate state from one message to the next
    /// (better ratio, about 300 KiB per connection at 15 bits). Off, the
    /// server asks both sides for `no_context_takeover` and connections
    /// borrow state from a shared pool for one message at a time, so an
    /// idle compressed connection costs nothing extra.
    pub compression_context_takeover: bool,
    /// Messages smaller than this go out uncompressed: without context
    /// takeover a ~500-byte JSON row shrinks about 11% for 3–4× the CPU
    /// per delivery (`bench compression`), while pages and snapshots of
    /// many rows shrink several times.
    pub compression_threshold_bytes: usize,
    /// Memory all kept deflate states may hold together (with context
    /// takeover); a connection that would pass it is served uncompressed.
    pub compression_memory_bytes: usize,
}

/// Whether permessage-deflate is negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Never: every frame goes uncompressed.
    Off,
    /// With every client that offers it.
    On,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 10_000,
            max_payload_bytes: 1024 * 1024,
            rate_limit_max_requests: 1000,
            rate_limit_window_ms: 10_000,
            outbound_queue: 1024,
            outbound_queue_bytes: 8 << 20,
            max_connections: 200_000,
            read_chunk_bytes: 512,
            max_page_bytes: 1 << 20,
            write_timeout_ms: 30_000,
            max_subscriptions: 256,
            max_presence: 64,
            max_presence_info_bytes: 4096,
            max_filter_bytes: 16 * 1024,
            max_filter_rows: 64,
            max_topics_per_creator: 16,
            write_quota_bytes: 16 << 20,
            write_quota_window_ms: 60_000,
            handshake_timeout_ms: 10_000,
            max_handshakes_per_ip: 1024,
            max_connections_per_ip: 4096,
            fd_reserve: 64,
            compression: Compression::On,
            compression_level: 1,
            compression_window_bits: 15,
            compression_context_takeover: false,
            compression_threshold_bytes: 1024,
            compression_memory_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// The heartbeat interval as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms.max(1))
    }

    /// The heartbeat timeout as a duration.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms.max(1))
    }

    /// The write timeout as a duration.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms.max(1))
    }

    /// The handshake timeout as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms.max(1))
    }
}
