//! Channel messages: delivered to the channel's subscribers (and, as
//! s3db.js does, to a resource of that name's), numbered and kept first
//! when the channel keeps history, so a subscriber resuming with `since`
//! can be given exactly what it missed.

use serde_json::Value;

use super::Resources;
use crate::bus::history::{Histories, Recovery};
use crate::bus::{Event, Origin, Position, Topic};
use crate::error::{ClientError, ErrorCode};

impl Resources {
    /// Delivers a channel message (already authorized). Returns how many
    /// connections it reached, and its history position when the channel
    /// keeps history.
    ///
    /// # Errors
    /// UNAVAILABLE when the channel's history cannot be written (the
    /// message is then not delivered: a subscriber resuming later could
    /// not know it existed).
    pub async fn publish_message(
        &self,
        channel: &str,
        from: Option<Origin>,
        data: &Value,
    ) -> Result<(usize, Option<Position>), ClientError> {
        let message = Event::Message {
            channel: channel.to_owned(),
            from,
            data: data.clone(),
            position: None,
        };
        let message = match self.histories.options(channel) {
            Some(options) => self
                .histories
                .kept()
                .append(channel, options, message)
                .await
                .map_err(|e| ClientError::new(ErrorCode::Unavailable, e.to_string()))?,
            None => message,
        };
        let position = match &message {
            Event::Message { position, .. } => position.clone(),
            _ => None,
        };
        let mut delivered = 0;
        if self.exists(channel) {
            delivered += self
                .bus
                .publish(&Topic::resource(channel), message.clone(), data);
        }
        delivered += self.bus.publish(&Topic::channel(channel), message, data);
        Ok((delivered, position))
    }

    /// What a subscriber of `channel` missed since `since` (or just the
    /// current position); none when the channel keeps no history.
    ///
    /// # Errors
    /// UNAVAILABLE when the history cannot be read.
    pub async fn channel_since(
        &self,
        channel: &str,
        since: Option<Position>,
    ) -> Result<Option<Recovery>, ClientError> {
        let Some(options) = self.histories.options(channel) else {
            return Ok(None);
        };
        self.histories
            .kept()
            .since(channel, options, since)
            .await
            .map(Some)
            .map_err(|e| ClientError::new(ErrorCode::Unavailable, e.to_string()))
    }

    /// The channels that keep history.
    pub fn histories(&self) -> &Histories {
        &self.histories
    }
}
