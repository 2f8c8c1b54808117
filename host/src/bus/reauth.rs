//! Re-authorization: a connection that presents a new token changes who it
//! acts as, and what it holds on the bus, in one step.

use super::{presence, remove_subscriber, Bus, PresenceKind, Subscription, Topic};

impl Bus {
    /// Changes who a connection acts as in one step: its user, and its
    /// subscriptions as re-authorized for the new identity (`Some` replaces
    /// one, `None` drops it), and the presence lists it may no longer be
    /// on. Done under one lock, so every event is delivered under either
    /// the old rights or the new ones, never a mix. Leaves are announced.
    pub fn reauthorize(
        &self,
        id: &str,
        user_id: Option<String>,
        updates: Vec<(Topic, Option<Subscription>)>,
        leave: &[String],
    ) {
        let left = {
            let mut state = self.state.write();
            let state = &mut *state;
            let Some(entry) = state.clients.get_mut(id) else {
                return;
            };
            let key = entry.id.clone();
            if let Some(old) = entry.user_id.take() {
                super::remove_user_client(&mut state.users, &state.watch, &old, id);
            }
            if let Some(new) = &user_id {
                super::add_user_client(&mut state.users, &state.watch, new, &key);
            }
            entry.user_id = user_id.clone();
            for (topic, sub) in updates {
                match sub {
                    Some(sub) => {
                        entry.channels.insert(topic.clone());
                        let subs = state.channels.entry(topic.clone()).or_default();
                        let peer = entry.peer.clone();
                        if subs
                            .insert(key.clone(), super::Subscriber { sub, peer })
                            .is_none()
                        {
                            if let Topic::Channel(channel) = &topic {
                                state.watch.gain(channel);
                            }
                        }
                    }
                    None => {
                        if entry.channels.remove(&topic) {
                            remove_subscriber(&mut state.channels, &mut state.watch, &topic, id);
                        }
                    }
                }
            }
            for channel in leave {
                entry.presence.remove(channel);
            }
            for channel in &entry.presence {
                if let Some(member) = state
                    .presence
                    .get_mut(channel)
                    .and_then(|list| list.iter_mut().find(|m| &*m.client_id == id))
                {
                    member.user_id = user_id.clone();
                    state.watch.member(channel, member, true);
                }
            }
            leave
                .iter()
                .filter_map(|channel| {
                    presence::remove(&mut state.presence, &mut state.watch, channel, id)
                })
                .collect::<Vec<_>>()
        };
        for (channel, member) in left {
            self.announce_presence(channel, PresenceKind::Leave, member);
        }
    }
}
