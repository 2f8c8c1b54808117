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
    /// connections it reached on this node, and its history position when
    /// the channel keeps history.
    ///
    /// # Errors
    /// UNAVAILABLE when this node is in a cluster whose link is down (or
    /// the channel's history cannot be written): the message was then
    /// delivered on this node only, without a position, and the publisher
    /// must know the other nodes (and resuming subscribers) did not get it.
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
        let mut failure = self.bus.cluster_down();
        let message = match self.histories.options(channel) {
            // With the link down the shared history cannot be written:
            // deliver here without a position rather than wait for Redis.
            Some(_) if failure.is_some() => message,
            Some(options) => {
                match self
                    .histories
                    .kept()
                    .append(channel, options, message.clone())
                    .await
                {
                    Ok(kept) => kept,
                    Err(e) => {
                        failure = Some(e.to_string());
                        message
                    }
                }
            }
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
        match failure {
            Some(why) => Err(ClientError::new(
                ErrorCode::Unavailable,
                format!("{why} (delivered to {delivered} connections on this node)"),
            )),
            None => Ok((delivered, position)),
        }
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
        if let Some(why) = self.bus.cluster_down() {
            return Err(ClientError::new(ErrorCode::Unavailable, why));
        }
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
