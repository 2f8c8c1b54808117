//! Changing identity re-checks everything. A connection remembers what it
//! subscribed to as it asked (channel, filter, events, key); when its
//! identity changes in-band (`auth`, jac-cloud's `change_user`), every
//! subscription and presence entry is authorized again for the new
//! identity, guard filters are recomputed, and what it may no longer hold
//! is dropped — and the client is told which.
//!
//! The new grants are worked out first, while the old identity still
//! applies, then swapped in with one bus operation: every event is
//! delivered under either the old rights or the new ones, never a mix, and
//! nothing allowed under both is missed.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::data::union;
use super::Session;
use crate::auth::Identity;
use crate::bus::{Subscription, Topic, OPS_ALL};
use crate::policy::{Access, Actor};
use crate::protocol::{Held, Revoked, Target};

/// What a connection subscribed to, as it asked.
#[derive(Debug, Default)]
pub(crate) struct Holdings {
    /// Channel subscriptions: channel → the client's filter.
    pub(crate) channels: BTreeMap<String, Value>,
    /// Resource subscriptions without a key: resource → (filter, events).
    pub(crate) resources: BTreeMap<String, (Value, Vec<String>)>,
    /// Keyed (rtbdp) subscriptions: key → what it is.
    pub(crate) keyed: BTreeMap<String, Keyed>,
}

/// One keyed subscription.
#[derive(Debug, Clone)]
pub(crate) struct Keyed {
    pub(crate) resource: String,
    pub(crate) filter: Value,
    pub(crate) events: Vec<String>,
    /// As authorized for the current identity.
    pub(crate) sub: Subscription,
}

impl Holdings {
    /// The OR of the keyed subscriptions on `resource`.
    pub(crate) fn keyed_union(&self, resource: &str) -> Option<Subscription> {
        union(
            self.keyed
                .values()
                .filter(|k| k.resource == resource)
                .map(|k| &k.sub),
        )
    }
}

impl Session {
    /// Switches to `identity`, re-authorizing everything held; returns
    /// what was dropped.
    pub(super) async fn change_identity(&mut self, identity: Identity) -> Vec<Revoked> {
        let actor = Actor::new(identity.into_shared(), Some(self.id.clone()));
        let access = Access::Client(&actor);
        let policy = self.app.resources.policy();
        let mut updates = Vec::new();
        let mut revoked = Vec::new();
        let mut revoke = |what: Held, reason: String| revoked.push(Revoked { what, reason });

        let mut channels = BTreeMap::new();
        for (channel, filter) in &self.held.channels {
            let topic = Topic::channel(channel);
            match policy.read_channel(&access, channel, filter, filter).await {
                Ok(effective) => {
                    let sub = Subscription {
                        filter: effective,
                        ops: OPS_ALL,
                    };
                    updates.push((topic, Some(sub)));
                    channels.insert(channel.clone(), filter.clone());
                }
                Err(e) => {
                    updates.push((topic, None));
                    revoke(
                        Held::Subscription(Target::Channel(channel.clone()), None),
                        e.message,
                    );
                }
            }
        }

        let mut resources = BTreeMap::new();
        for (resource, (filter, events)) in &self.held.resources {
            let topic = Topic::resource(resource);
            match self
                .app
                .resources
                .subscription(&access, resource, filter, events)
                .await
            {
                Ok((sub, _)) => {
                    updates.push((topic, Some(sub)));
                    resources.insert(resource.clone(), (filter.clone(), events.clone()));
                }
                Err(e) => {
                    updates.push((topic, None));
                    let target = Target::Resource(resource.clone());
                    revoke(Held::Subscription(target, None), e.message);
                }
            }
        }

        let mut keyed = BTreeMap::new();
        for (key, held) in &self.held.keyed {
            let granted = self
                .app
                .resources
                .subscription(&access, &held.resource, &held.filter, &held.events)
                .await;
            match granted {
                Ok((sub, _)) => {
                    keyed.insert(
                        key.clone(),
                        Keyed {
                            sub,
                            ..held.clone()
                        },
                    );
                }
                Err(e) => {
                    let target = Target::Resource(held.resource.clone());
                    revoke(Held::Subscription(target, Some(key.clone())), e.message);
                }
            }
        }
        let keyed_resources: std::collections::BTreeSet<&String> =
            self.held.keyed.values().map(|k| &k.resource).collect();
        let new_keyed = Holdings {
            keyed,
            ..Holdings::default()
        };
        for resource in keyed_resources {
            updates.push((Topic::resource(resource), new_keyed.keyed_union(resource)));
        }

        let mut leave = Vec::new();
        for channel in self.app.bus.presence_of(&self.id) {
            let payload = json!({"presence": "join"});
            if let Err(e) = policy
                .read_channel(&access, &channel, &Value::Null, &payload)
                .await
            {
                revoke(Held::Presence(channel.clone()), e.message);
                leave.push(channel);
            }
        }

        let user = actor.identity.user_id.clone();
        self.app.bus.reauthorize(&self.id, user, updates, &leave);
        self.sees_ids = policy.may_send_direct(&access);
        self.held = Holdings {
            channels,
            resources,
            keyed: new_keyed.keyed,
        };
        self.actor = actor;
        revoked
    }
}
