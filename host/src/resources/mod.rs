//! Resources: the configured collections clients read, write and
//! subscribe to (s3db.js `resources`). Here live the access rules — role
//! lists, guards, protected fields — and the change events every committed
//! write emits. Dialects and walkers all go through this module (walkers
//! through [`PluginStore`](crate::plugins::PluginStore), in `walkers.rs`).

mod walkers;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::auth::Identity;
use crate::bus::{op_mask, Bus, Change, Event, Filter, Subscription, OPS_ALL, OP_OTHER};
use crate::config::ResourceConfig;
use crate::error::{ClientError, ErrorCode};
use crate::plugins::{Operation, Plugins};
use crate::store::{Committed, Store, StoreError, Stored};

/// The bus channel carrying a resource's change events. The NUL prefix
/// keeps it out of reach of client channel names, which may not contain
/// control characters.
pub fn resource_channel(resource: &str) -> String {
    format!("\u{0}resource:{resource}")
}

/// Most records a list returns at once.
pub const MAX_LIMIT: usize = 1000;

/// Configured resources over the store.
pub struct Resources {
    pub(crate) store: Arc<Store>,
    configs: BTreeMap<String, ResourceConfig>,
    bus: Arc<Bus>,
}

/// Who is asking, for access checks.
pub struct Caller<'a> {
    /// Identity for roles and guards.
    pub identity: &'a Identity,
    /// The connection, when there is one.
    pub conn: Option<Arc<str>>,
    /// Guards to consult.
    pub plugins: &'a Plugins,
}

impl Resources {
    /// Resources from configuration.
    pub fn new(
        store: Arc<Store>,
        configs: BTreeMap<String, ResourceConfig>,
        bus: Arc<Bus>,
    ) -> Self {
        Self {
            store,
            configs,
            bus,
        }
    }

    /// The configuration of a resource.
    ///
    /// # Errors
    /// RESOURCE_NOT_FOUND when it is not configured.
    pub fn config(&self, resource: &str) -> Result<&ResourceConfig, ClientError> {
        self.configs.get(resource).ok_or_else(|| {
            ClientError::new(
                ErrorCode::ResourceNotFound,
                format!("resource `{resource}` is not configured"),
            )
        })
    }

    /// Whether `name` is a configured resource.
    pub fn exists(&self, name: &str) -> bool {
        self.configs.contains_key(name)
    }

    /// The role-list check.
    fn authorize(
        &self,
        resource: &str,
        identity: &Identity,
    ) -> Result<&ResourceConfig, ClientError> {
        let config = self.config(resource)?;
        if !config.auth.is_empty()
            && !identity
                .role
                .as_ref()
                .is_some_and(|r| config.auth.contains(r))
        {
            return Err(ClientError::forbidden(format!(
                "resource `{resource}` requires one of the roles {:?}",
                config.auth
            )));
        }
        Ok(config)
    }

    async fn guard(
        &self,
        caller: &Caller<'_>,
        op: Operation,
        resource: &str,
        payload: &Value,
    ) -> Result<crate::plugins::GuardOutcome, ClientError> {
        Ok(caller
            .plugins
            .guard(op, resource, caller.identity, caller.conn.clone(), payload)
            .await?)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ClientError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ClientError::new(ErrorCode::InternalError, e.to_string()))?
            .map_err(store_error)
    }

    /// Reads one record.
    ///
    /// # Errors
    /// Unknown resource, refused, or not found (also when a guard filter hides it).
    pub async fn get(
        &self,
        caller: &Caller<'_>,
        resource: &str,
        id: &str,
    ) -> Result<Value, ClientError> {
        let config = self.authorize(resource, caller.identity)?.clone();
        let guard = self
            .guard(caller, Operation::Get, resource, &json!({"id": id}))
            .await?;
        let (r, i) = (resource.to_owned(), id.to_owned());
        let record = self.blocking(move |s| s.get(&r, &i)).await?;
        match record {
            Some(record) if guard.filter.as_ref().is_none_or(|f| f.matches(&record)) => {
                Ok(strip(record, &config.protected))
            }
            _ => Err(ClientError::new(ErrorCode::NotFound, "Record not found")),
        }
    }

    /// Lists records matching `filter` (AND the guards' filters), a page at a time.
    ///
    /// # Errors
    /// Unknown resource, refused, or a bad filter.
    pub async fn list(
        &self,
        caller: &Caller<'_>,
        resource: &str,
        filter: &Value,
        limit: Option<usize>,
        cursor: Option<String>,
    ) -> Result<(Vec<Stored>, Option<String>), ClientError> {
        let config = self.authorize(resource, caller.identity)?.clone();
        let client = Filter::from_value(filter).map_err(ClientError::bad_request)?;
        let guard = self
            .guard(caller, Operation::List, resource, filter)
            .await?;
        let filter = Filter::and(client, guard.filter);
        let limit = limit.unwrap_or(100).clamp(1, MAX_LIMIT);
        let r = resource.to_owned();
        let (page, more) = self
            .blocking(move |s| {
                s.scan(&r, cursor.as_deref(), limit, |rec| {
                    filter.as_ref().is_none_or(|f| f.matches(rec))
                })
            })
            .await?;
        let next = if more {
            page.last()
                .and_then(|r| r.record["id"].as_str())
                .map(str::to_owned)
        } else {
            None
        };
        Ok((
            page.into_iter()
                .map(|r| Stored {
                    record: strip(r.record, &config.protected),
                    seq: r.seq,
                })
                .collect(),
            next,
        ))
    }

    /// Inserts a record for a client.
    ///
    /// # Errors
    /// Unknown resource, refused, bad or oversized record, id taken.
    pub async fn insert(
        &self,
        caller: &Caller<'_>,
        resource: &str,
        data: Value,
    ) -> Result<Value, ClientError> {
        self.authorize(resource, caller.identity)?;
        if !data.is_object() {
            return Err(ClientError::bad_request("`data` must be a JSON object"));
        }
        let guard = self
            .guard(caller, Operation::Create, resource, &data)
            .await?;
        let data = merge(data, guard.patch);
        let r = resource.to_owned();
        let committed = self.blocking(move |s| s.insert(&r, data)).await?;
        Ok(self.emit(committed))
    }

    /// Updates a record for a client.
    ///
    /// # Errors
    /// Unknown resource, refused, missing record, bad patch.
    pub async fn update(
        &self,
        caller: &Caller<'_>,
        resource: &str,
        id: &str,
        data: Value,
    ) -> Result<Value, ClientError> {
        self.authorize(resource, caller.identity)?;
        if !data.is_object() {
            return Err(ClientError::bad_request("`data` must be a JSON object"));
        }
        let current = self.current(resource, id).await?;
        let payload = json!({"id": id, "data": data, "record": current});
        let guard = self
            .guard(caller, Operation::Update, resource, &payload)
            .await?;
        let data = merge(data, guard.patch);
        let (r, i) = (resource.to_owned(), id.to_owned());
        let committed = self.blocking(move |s| s.update(&r, &i, data)).await?;
        Ok(self.emit(committed))
    }

    /// Deletes a record for a client; returns `{"id": id}`.
    ///
    /// # Errors
    /// Unknown resource, refused, missing record.
    pub async fn delete(
        &self,
        caller: &Caller<'_>,
        resource: &str,
        id: &str,
    ) -> Result<Value, ClientError> {
        self.authorize(resource, caller.identity)?;
        let current = self.current(resource, id).await?;
        self.guard(
            caller,
            Operation::Delete,
            resource,
            &json!({"id": id, "record": current}),
        )
        .await?;
        let (r, i) = (resource.to_owned(), id.to_owned());
        let committed = self.blocking(move |s| s.delete(&r, &i)).await?;
        self.emit(committed);
        Ok(json!({"id": id}))
    }

    async fn current(&self, resource: &str, id: &str) -> Result<Value, ClientError> {
        let (r, i) = (resource.to_owned(), id.to_owned());
        self.blocking(move |s| s.get(&r, &i))
            .await?
            .ok_or_else(|| ClientError::new(ErrorCode::NotFound, "Record not found"))
    }

    /// Checks a subscription and works out its bus subscription: the
    /// effective filter (client's AND guards') and the event mask.
    ///
    /// # Errors
    /// Unknown resource, refused, bad filter or unknown event names.
    pub async fn subscription(
        &self,
        caller: &Caller<'_>,
        resource: &str,
        filter: &Value,
        events: &[String],
    ) -> Result<(Subscription, Vec<String>), ClientError> {
        let config = self.authorize(resource, caller.identity)?;
        let client = Filter::from_value(filter).map_err(ClientError::bad_request)?;
        let mut ops = 0u8;
        for event in events {
            ops |= op_mask(event).ok_or_else(|| {
                ClientError::bad_request(format!(
                    "unknown event `{event}`; use insert, update or delete"
                ))
            })?;
        }
        let broadcast = broadcast_mask(config);
        let ops = if events.is_empty() {
            OPS_ALL
        } else {
            ops | OP_OTHER
        } & broadcast;
        let guard = self
            .guard(caller, Operation::Subscribe, resource, filter)
            .await?;
        let names = ["insert", "update", "delete"]
            .into_iter()
            .filter(|e| op_mask(e).is_some_and(|b| ops & b != 0))
            .map(str::to_owned)
            .collect();
        Ok((
            Subscription {
                filter: Filter::and(client, guard.filter),
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
        let r = resource.to_owned();
        let (changes, complete) = self.blocking(move |s| s.changes_since(&r, since)).await?;
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
        caller: &Caller<'_>,
        resource: &str,
        filter: &Value,
        limit: Option<usize>,
    ) -> Result<(Vec<Stored>, u64), ClientError> {
        let seq = self.blocking(|s| s.last_seq()).await?;
        let (rows, _) = self.list(caller, resource, filter, limit, None).await?;
        Ok((rows, seq))
    }

    /// Publishes a committed change to the resource's subscribers (if the
    /// resource broadcasts that op) and returns the record as clients see it.
    pub(crate) fn emit(&self, committed: Committed) -> Value {
        let Ok(config) = self.config(&committed.resource) else {
            return committed.record;
        };
        let protected = config.protected.clone();
        let broadcast = op_mask(committed.op).is_some_and(|b| broadcast_mask(config) & b != 0);
        let resource = committed.resource.clone();
        let event = change_event(committed, &protected);
        let Event::Change(change) = &event else {
            return Value::Null;
        };
        let record = change.record.clone();
        if broadcast {
            self.bus
                .publish(&resource_channel(&resource), event.clone(), &record);
        }
        record
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

/// Removes protected fields (dotted paths reach into objects).
pub fn strip(mut record: Value, protected: &[String]) -> Value {
    for path in protected {
        remove_path(&mut record, path);
    }
    record
}

fn remove_path(value: &mut Value, path: &str) {
    let Value::Object(map) = value else { return };
    if map.remove(path).is_some() {
        return;
    }
    if let Some((head, rest)) = path.split_once('.') {
        if let Some(child) = map.get_mut(head) {
            remove_path(child, rest);
        }
    }
}

fn merge(data: Value, patch: Map<String, Value>) -> Value {
    match data {
        Value::Object(mut map) => {
            map.extend(patch);
            Value::Object(map)
        }
        other => other,
    }
}

pub(crate) fn store_error(e: StoreError) -> ClientError {
    match e {
        StoreError::BadRecord(m) => ClientError::bad_request(m),
        StoreError::TooLarge { .. } => ClientError::new(ErrorCode::PayloadTooLarge, e.to_string()),
        StoreError::NotFound(_) => ClientError::new(ErrorCode::NotFound, "Record not found"),
        StoreError::Exists(_) => ClientError::new(ErrorCode::Conflict, e.to_string()),
        StoreError::Db(_) => {
            tracing::error!(cause = %e, "store failure");
            ClientError::new(ErrorCode::InternalError, "storage error")
        }
    }
}
