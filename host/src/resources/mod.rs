//! Resources: the configured collections clients read, write and
//! subscribe to (s3db.js `resources`). Every operation takes an
//! [`Access`] — a client (dialect sessions, and plugins acting for their
//! caller) or full rights (a plugin configured trusted) — and goes through
//! the [`Policy`] for role lists, guards and protected fields; every
//! committed write emits its change event here (`writes.rs`).

mod feed;
mod fields;
mod messages;
mod writes;

use std::sync::Arc;

use serde_json::{json, Value};

pub use fields::strip;

use crate::bus::history::Histories;
use crate::bus::{op_mask, Bus, Change, Event, Subscription, OPS_ALL, OP_OTHER};
use crate::config::ResourceConfig;
use crate::error::{ClientError, ErrorCode};
use crate::policy::{Access, Operation, Policy};
use crate::quota::Quotas;
use crate::store::{Committed, Predicate, Store, StoreError, Stored};

/// Most records a list returns at once.
pub const MAX_LIMIT: usize = 1000;

/// Configured resources over the store.
pub struct Resources {
    store: Arc<dyn Store>,
    policy: Arc<Policy>,
    bus: Arc<Bus>,
    quotas: Arc<Quotas>,
    /// Largest page (lists, replays, resumes), in bytes of records.
    page_bytes: usize,
    /// Channels that keep history.
    histories: Arc<Histories>,
    /// With a shared store: what each resource's change log was announced
    /// up to.
    feed: feed::Feed,
}

impl Resources {
    /// Resources over `store`, authorized by `policy`, announced on `bus`,
    /// with writes charged to `quotas` and pages of at most `page_bytes`;
    /// channel messages kept by `histories`.
    pub fn new(
        store: Arc<dyn Store>,
        policy: Arc<Policy>,
        bus: Arc<Bus>,
        quotas: Arc<Quotas>,
        page_bytes: usize,
        histories: Arc<Histories>,
    ) -> Self {
        Self {
            store,
            policy,
            bus,
            quotas,
            page_bytes,
            histories,
            feed: feed::Feed::default(),
        }
    }

    /// The store under the resources.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The policy every operation goes through.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Whether `name` is a configured resource.
    pub fn exists(&self, name: &str) -> bool {
        self.policy.is_resource(name)
    }

    /// The configuration of a resource.
    ///
    /// # Errors
    /// RESOURCE_NOT_FOUND when it is not configured.
    pub fn config(&self, resource: &str) -> Result<&ResourceConfig, ClientError> {
        self.policy.resource_config(resource)
    }

    /// Reads one record.
    ///
    /// # Errors
    /// Unknown resource, refused, or not found — also when a guard filter
    /// hides it (the caller learns nothing about records it may not read).
    pub async fn get(
        &self,
        access: &Access<'_>,
        resource: &str,
        id: &str,
    ) -> Result<Value, ClientError> {
        let grant = self
            .policy
            .resource(
                access,
                Operation::Get,
                resource,
                &Value::Null,
                &json!({"id": id}),
            )
            .await?;
        match self.store.get(resource, id).await.map_err(store_error)? {
            Some(record) if grant.reaches(&record) => Ok(fields::shown(record, &grant)),
            _ => Err(not_found()),
        }
    }

    /// Lists records matching `filter` (AND the guards' filters), a page at a time.
    ///
    /// # Errors
    /// Unknown resource, refused, or a bad filter.
    pub async fn list(
        &self,
        access: &Access<'_>,
        resource: &str,
        filter: &Value,
        limit: Option<usize>,
        cursor: Option<String>,
    ) -> Result<(Vec<Stored>, Option<String>), ClientError> {
        let grant = self
            .policy
            .resource(access, Operation::List, resource, filter, filter)
            .await?;
        let limit = limit.unwrap_or(100).clamp(1, MAX_LIMIT);
        let (page, more) = self
            .store
            .scan(
                resource,
                cursor.as_deref(),
                limit,
                self.page_bytes,
                within(grant.filter.clone()),
            )
            .await
            .map_err(store_error)?;
        let next = if more {
            page.last()
                .and_then(|r| r.record["id"].as_str())
                .map(str::to_owned)
        } else {
            None
        };
        let page = page
            .into_iter()
            .map(|r| Stored {
                record: fields::shown(r.record, &grant),
                seq: r.seq,
            })
            .collect();
        Ok((page, next))
    }

    /// Checks a subscription and works out its bus subscription: the
    /// effective filter (client's AND guards') and the event mask.
    ///
    /// # Errors
    /// Unknown resource, refused, bad filter or unknown event names.
    pub async fn subscription(
        &self,
        access: &Access<'_>,
        resource: &str,
        filter: &Value,
        events: &[String],
    ) -> Result<(Subscription, Vec<String>), ClientError> {
        let mut ops = 0u8;
        for event in events {
            ops |= op_mask(event).ok_or_else(|| {
                ClientError::bad_request(format!(
                    "unknown event `{event}`; use insert, update or delete"
                ))
            })?;
        }
        let grant = self
            .policy
            .resource(access, Operation::Subscribe, resource, filter, filter)
            .await?;
        let broadcast = broadcast_mask(grant.config);
        let ops = if events.is_empty() {
            OPS_ALL
        } else {
            ops | OP_OTHER
        } & broadcast;
        let names = ["insert", "update", "delete"]
            .into_iter()
            .filter(|e| op_mask(e).is_some_and(|b| ops & b != 0))
            .map(str::to_owned)
            .collect();
        Ok((
            Subscription {
                filter: grant.filter,
                ops,
            },
            names,
        ))
    }

    /// Changes to `resource` after `since` that `sub` would have delivered,
    /// as events, and whether none were lost to the log's retention.
    ///
    /// # Errors
    /// Storage failure.
    pub async fn missed(
        &self,
        resource: &str,
        since: u64,
        sub: &Subscription,
    ) -> Result<(Vec<Event>, bool), ClientError> {
        let protected = self.config(resource)?.protected.clone();
        let (changes, complete) = self
            .store
            .changes_since(resource, since, self.page_bytes)
            .await
            .map_err(store_error)?;
        let events = changes
            .into_iter()
            .map(|c| change_event(c, &protected))
            .filter(|e| match e {
                Event::Change(c) => {
                    op_mask(c.op).is_some_and(|b| sub.ops & b != 0)
                        && sub.filter.as_ref().is_none_or(|f| f.matches(&c.record))
                }
                _ => false,
            })
            .collect();
        Ok((events, complete))
    }

    /// Current rows matching `filter` (AND the guards'), at most `limit`,
    /// and the sequence number they are current as of.
    ///
    /// # Errors
    /// As [`Resources::list`].
    pub async fn replay(
        &self,
        access: &Access<'_>,
        resource: &str,
        filter: &Value,
        limit: Option<usize>,
    ) -> Result<(Vec<Stored>, u64), ClientError> {
        let seq = self.store.last_seq(resource).await.map_err(store_error)?;
        let (rows, _) = self.list(access, resource, filter, limit, None).await?;
        Ok((rows, seq))
    }
}

/// Which ops a resource broadcasts (`events`; empty means all).
fn broadcast_mask(config: &ResourceConfig) -> u8 {
    if config.events.is_empty() {
        OPS_ALL
    } else {
        config
            .events
            .iter()
            .filter_map(|e| op_mask(e))
            .fold(OP_OTHER, |m, b| m | b)
    }
}

fn change_event(c: Committed, protected: &[String]) -> Event {
    Event::Change(Change {
        resource: c.resource,
        op: c.op,
        record: strip(c.record, protected),
        seq: c.seq,
        timestamp: crate::now_ms(),
    })
}

impl Resources {
    /// Charges a write of `data` to the caller's write quota (plugins with
    /// full rights are not charged).
    fn charge(&self, access: &Access<'_>, data: &Value) -> Result<(), ClientError> {
        let Some(actor) = access.actor() else {
            return Ok(());
        };
        let bytes = crate::bus::json_len(data);
        self.quotas.write(&actor.key(), bytes).map_err(|e| {
            ClientError::new(
                ErrorCode::RateLimitExceeded,
                format!(
                    "write quota spent (limits.write_quota_bytes); retry in {} ms",
                    e.retry_after.as_millis().max(1)
                ),
            )
        })
    }
}

/// What a grant's filter reaches, as the store's predicate.
fn within(filter: Option<crate::bus::Filter>) -> Predicate {
    Arc::new(move |record| filter.as_ref().is_none_or(|f| f.matches(record)))
}

fn not_found() -> ClientError {
    ClientError::new(ErrorCode::NotFound, "Record not found")
}

pub(crate) fn store_error(e: StoreError) -> ClientError {
    match e {
        StoreError::BadRecord(m) => ClientError::bad_request(m),
        StoreError::TooLarge { .. } => ClientError::new(ErrorCode::PayloadTooLarge, e.to_string()),
        StoreError::NotFound(_) => not_found(),
        StoreError::Exists(_) => ClientError::new(ErrorCode::Conflict, e.to_string()),
        StoreError::OutOfScope => ClientError::forbidden(e.to_string()),
        StoreError::Unavailable(_) => {
            tracing::warn!(cause = %e, "store unavailable");
            ClientError::new(
                ErrorCode::Unavailable,
                "the store is unavailable; retry later",
            )
        }
        StoreError::Storage(_) => {
            tracing::error!(cause = %e, "store failure");
            ClientError::new(ErrorCode::InternalError, "storage error")
        }
    }
}
