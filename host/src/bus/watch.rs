//! What the link must hear about as the bus's state changes: a channel's
//! first and last local interest (subscriber or presence member), a user's
//! first and last connection here, presence members. Called under the
//! bus's write lock, so the link sees the changes in the order they were
//! made. Without a link it does nothing and keeps nothing.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use super::link::{Forward, Link};
use super::Member;

/// The bus's bookkeeping for its link.
#[derive(Default)]
pub(super) struct Watch {
    link: Option<Arc<dyn Link>>,
    /// Channel → local subscribers plus local presence members.
    interest: HashMap<String, u32>,
}

impl Watch {
    /// Starts reporting to `link`.
    pub(super) fn attach(&mut self, link: Arc<dyn Link>) {
        self.link = Some(link);
    }

    /// The link, when there is one.
    pub(super) fn link(&self) -> Option<&Arc<dyn Link>> {
        self.link.as_ref()
    }

    /// One more local subscriber or member of `channel`.
    pub(super) fn gain(&mut self, channel: &str) {
        let Some(link) = &self.link else { return };
        let count = self.interest.entry(channel.to_owned()).or_insert(0);
        *count += 1;
        if *count == 1 {
            link.forward(Forward::Interest {
                channel: channel.to_owned(),
                on: true,
            });
        }
    }

    /// One fewer.
    pub(super) fn lose(&mut self, channel: &str) {
        let Some(link) = &self.link else { return };
        if let Entry::Occupied(mut count) = self.interest.entry(channel.to_owned()) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
                link.forward(Forward::Interest {
                    channel: channel.to_owned(),
                    on: false,
                });
            }
        }
    }

    /// A user's first connection arrived (`here`) or its last one left.
    pub(super) fn user(&self, user: &str, here: bool) {
        if let Some(link) = &self.link {
            link.forward(Forward::User {
                user: user.to_owned(),
                here,
            });
        }
    }

    /// A member joined or changed (`present`), or left.
    pub(super) fn member(&self, channel: &str, member: &Member, present: bool) {
        if let Some(link) = &self.link {
            link.forward(Forward::Member {
                channel: channel.to_owned(),
                member: member.clone(),
                present,
            });
        }
    }

    /// The channels this node has an interest in.
    pub(super) fn interests(&self) -> Vec<String> {
        self.interest.keys().cloned().collect()
    }
}
