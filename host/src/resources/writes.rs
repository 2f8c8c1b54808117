//! Writes: insert, update, delete — each one durable store transaction,
//! checked against the caller's grant inside the transaction for by-id
//! writes, then announced as a change event.

use serde_json::{json, Value};

use super::fields::{merge, shown};
use super::{broadcast_mask, change_event, store_error, within, Resources};
use crate::bus::{op_mask, Event, Topic};
use crate::error::ClientError;
use crate::policy::{Access, Operation};
use crate::store::Committed;

impl Resources {
    /// Inserts a record.
    ///
    /// # Errors
    /// Unknown resource, refused (also when the guards' filter would not
    /// reach the new record), bad or oversized record, id taken.
    pub async fn insert(
        &self,
        access: &Access<'_>,
        resource: &str,
        data: Value,
    ) -> Result<Value, ClientError> {
        if !data.is_object() {
            return Err(ClientError::bad_request("`data` must be a JSON object"));
        }
        let grant = self
            .policy
            .resource(access, Operation::Create, resource, &Value::Null, &data)
            .await?;
        self.policy.check_write(access, grant.config, &data)?;
        let data = merge(data, grant.patch.clone());
        self.charge(access, &data)?;
        if !grant.reaches(&data) {
            return Err(ClientError::forbidden(
                "the record would be outside what you may write",
            ));
        }
        let committed = self
            .store
            .insert(resource, data)
            .await
            .map_err(store_error)?;
        Ok(shown(self.announce(committed).await, &grant))
    }

    /// Updates a record: only one inside the caller's grant (else
    /// NOT_FOUND), and only so that it stays inside (else FORBIDDEN).
    ///
    /// # Errors
    /// Unknown resource, refused, missing record, bad patch.
    pub async fn update(
        &self,
        access: &Access<'_>,
        resource: &str,
        id: &str,
        data: Value,
    ) -> Result<Value, ClientError> {
        if !data.is_object() {
            return Err(ClientError::bad_request("`data` must be a JSON object"));
        }
        let current = self.current(access, resource, id).await?;
        let payload = json!({"id": id, "data": data, "record": current});
        let grant = self
            .policy
            .resource(access, Operation::Update, resource, &Value::Null, &payload)
            .await?;
        self.policy.check_write(access, grant.config, &data)?;
        let data = merge(data, grant.patch.clone());
        self.charge(access, &data)?;
        let committed = self
            .store
            .update(resource, id, data, within(grant.filter.clone()))
            .await
            .map_err(store_error)?;
        Ok(shown(self.announce(committed).await, &grant))
    }

    /// Deletes a record inside the caller's grant; returns `{"id": id}`.
    ///
    /// # Errors
    /// Unknown resource, refused, missing (or unreachable) record.
    pub async fn delete(
        &self,
        access: &Access<'_>,
        resource: &str,
        id: &str,
    ) -> Result<Value, ClientError> {
        let current = self.current(access, resource, id).await?;
        let payload = json!({"id": id, "record": current});
        let grant = self
            .policy
            .resource(access, Operation::Delete, resource, &Value::Null, &payload)
            .await?;
        let committed = self
            .store
            .delete(resource, id, within(grant.filter))
            .await
            .map_err(store_error)?;
        self.announce(committed).await;
        Ok(json!({"id": id}))
    }

    /// The stored record, for the guards' payload (they decide on it). The
    /// role list is checked first: a caller without the role learns
    /// nothing, not even whether the id exists.
    async fn current(
        &self,
        access: &Access<'_>,
        resource: &str,
        id: &str,
    ) -> Result<Value, ClientError> {
        self.policy.roles(access, resource)?;
        self.store
            .get(resource, id)
            .await
            .map_err(store_error)?
            .ok_or_else(super::not_found)
    }

    /// Announces a committed change: at once on a store of its own; on a
    /// shared one from the change log, in order with the other nodes'
    /// changes (the log is read up to this one before replying, so the
    /// writer's own subscribers see it no later than on redb). Returns the
    /// committed record, whole.
    async fn announce(&self, committed: Committed) -> Value {
        if !self.store.shared() {
            return self.emit(committed);
        }
        let record = committed.record.clone();
        self.announce_written(committed).await;
        record
    }

    /// Publishes a committed change to the resource's subscribers (if the
    /// resource broadcasts that op); returns the committed record, whole
    /// (callers strip it for whoever sees it).
    pub(crate) fn emit(&self, committed: Committed) -> Value {
        let Ok(config) = self.config(&committed.resource) else {
            return committed.record;
        };
        let protected = config.protected.clone();
        let broadcast = op_mask(committed.op).is_some_and(|b| broadcast_mask(config) & b != 0);
        let resource = committed.resource.clone();
        let record = committed.record.clone();
        if broadcast {
            let event = change_event(committed, &protected);
            if let Event::Change(change) = &event {
                let subject = change.record.clone();
                self.bus
                    .publish(&Topic::Resource(resource), event, &subject);
            }
        }
        record
    }
}
