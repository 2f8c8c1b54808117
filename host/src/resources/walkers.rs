//! Walkers reach resources through the host interface: trusted server
//! code, so no role lists or guards, but the same events and protected
//! fields as client writes.

use serde_json::Value;

use super::{store_error, strip, Resources, MAX_LIMIT};
use crate::bus::Filter;
use crate::error::ClientError;
use crate::plugins::{PluginError, PluginStore};

impl PluginStore for Resources {
    fn get(&self, resource: &str, id: &str) -> Result<Option<Value>, PluginError> {
        let config = self.config(resource).map_err(plugin_error)?;
        let record = self
            .store
            .get(resource, id)
            .map_err(|e| plugin_error(store_error(e)))?;
        Ok(record.map(|r| strip(r, &config.protected)))
    }

    fn list(
        &self,
        resource: &str,
        filter: &Value,
        limit: usize,
    ) -> Result<Vec<Value>, PluginError> {
        let config = self.config(resource).map_err(plugin_error)?;
        let filter =
            Filter::from_value(filter).map_err(|m| plugin_error(ClientError::bad_request(m)))?;
        let (rows, _) = self
            .store
            .scan(resource, None, limit.clamp(1, MAX_LIMIT), |r| {
                filter.as_ref().is_none_or(|f| f.matches(r))
            })
            .map_err(|e| plugin_error(store_error(e)))?;
        Ok(rows
            .into_iter()
            .map(|r| strip(r.record, &config.protected))
            .collect())
    }

    fn insert(&self, resource: &str, record: Value) -> Result<Value, PluginError> {
        self.config(resource).map_err(plugin_error)?;
        let committed = self
            .store
            .insert(resource, record)
            .map_err(|e| plugin_error(store_error(e)))?;
        Ok(self.emit(committed))
    }

    fn update(&self, resource: &str, id: &str, patch: Value) -> Result<Value, PluginError> {
        self.config(resource).map_err(plugin_error)?;
        let committed = self
            .store
            .update(resource, id, patch)
            .map_err(|e| plugin_error(store_error(e)))?;
        Ok(self.emit(committed))
    }

    fn delete(&self, resource: &str, id: &str) -> Result<(), PluginError> {
        self.config(resource).map_err(plugin_error)?;
        let committed = self
            .store
            .delete(resource, id)
            .map_err(|e| plugin_error(store_error(e)))?;
        self.emit(committed);
        Ok(())
    }
}

fn plugin_error(e: ClientError) -> PluginError {
    PluginError {
        code: e.code.as_str().to_owned(),
        message: e.message,
    }
}
