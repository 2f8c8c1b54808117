//! Presence: who is in a channel, with the metadata they joined with.
//! Joins and leaves are announced to the channel's subscribers and to the
//! other members, as SoliDB does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::{Bus, BusError, Event, Member, PresenceKind};
use crate::bus::Envelope;

impl Bus {
    /// Puts a connection on a channel's presence list (updating its info if
    /// it is there already) and announces the join.
    ///
    /// # Errors
    /// An unknown connection, info over `limits.max_presence_info_bytes`,
    /// or a connection already on `limits.max_presence` lists.
    pub fn presence_join(&self, id: &str, channel: &str, info: Value) -> Result<Member, BusError> {
        let size = super::envelope::json_len(&info);
        let limits = self.limits;
        if size > limits.presence_info_bytes {
            return Err(BusError::InfoTooLarge(size, limits.presence_info_bytes));
        }
        let member = {
            let mut state = self.state.write();
            let state = &mut *state;
            let entry = state.clients.get_mut(id).ok_or(BusError::Gone)?;
            if entry.presence.len() >= limits.presence && !entry.presence.contains(channel) {
                return Err(BusError::Presence(limits.presence));
            }
            entry.presence.insert(channel.to_owned());
            let member = Member {
                member_id: member_id(&entry.id),
                client_id: entry.id.clone(),
                user_id: entry.user_id.clone(),
                info,
                joined_at: crate::now_ms(),
            };
            let list = state.presence.entry(channel.to_owned()).or_default();
            match list.iter_mut().find(|m| &*m.client_id == id) {
                Some(existing) => {
                    existing.info = member.info.clone();
                    existing.user_id = member.user_id.clone();
                    state.watch.member(channel, existing, true);
                }
                None => {
                    list.push(member.clone());
                    state.watch.gain(channel);
                    state.watch.member(channel, &member, true);
                }
            }
            member
        };
        self.announce_presence(channel.to_owned(), PresenceKind::Join, member.clone());
        Ok(member)
    }

    /// Takes a connection off a channel's presence list and announces the
    /// leave. Returns whether it was there.
    pub fn presence_leave(&self, id: &str, channel: &str) -> bool {
        let removed = {
            let mut state = self.state.write();
            let state = &mut *state;
            let was = state
                .clients
                .get_mut(id)
                .is_some_and(|e| e.presence.remove(channel));
            if was {
                remove(&mut state.presence, &mut state.watch, channel, id)
            } else {
                None
            }
        };
        match removed {
            Some((channel, member)) => {
                self.announce_presence(channel, PresenceKind::Leave, member);
                true
            }
            None => false,
        }
    }

    /// Who is on a channel's presence list on this node, oldest first.
    pub fn presence_list(&self, channel: &str) -> Vec<Member> {
        self.state
            .read()
            .presence
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }

    /// Tells the channel's subscribers and members, except the member
    /// itself, about a join or leave: here, and on the other nodes.
    pub(super) fn announce_presence(&self, channel: String, kind: PresenceKind, member: Member) {
        let envelope = Envelope::new(Event::Presence {
            channel: channel.clone(),
            kind,
            member,
        });
        let state = self.state.read();
        self.announce_local(&state, &channel, &envelope);
        if let Some(link) = state.watch.link() {
            link.forward(super::Forward::Publish { channel, envelope });
        }
    }

    /// Delivers a presence event to this node's subscribers and members of
    /// its channel, except the member itself.
    pub(super) fn announce_local(
        &self,
        state: &super::State,
        channel: &str,
        envelope: &super::Outbound,
    ) {
        let Event::Presence { member, .. } = &envelope.event else {
            return;
        };
        let mut targets: HashSet<Arc<str>> = state
            .channels
            .get(&super::Topic::Channel(channel.to_owned()))
            .map(|subs| subs.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(members) = state.presence.get(channel) {
            targets.extend(members.iter().map(|m| m.client_id.clone()));
        }
        targets.remove(&member.client_id);
        for id in targets {
            self.deliver(state, &id, envelope.clone());
        }
    }
}

/// A member's public id: a one-way function of its connection id, so
/// watchers can tell members apart (and match a leave to a join) without
/// learning an id they could address messages to.
fn member_id(client_id: &str) -> Arc<str> {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("member:{client_id}").as_bytes());
    digest
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into()
}

/// Removes `id` from `channel`'s list, dropping empty lists.
pub(super) fn remove(
    presence: &mut HashMap<String, Vec<Member>>,
    watch: &mut super::Watch,
    channel: &str,
    id: &str,
) -> Option<(String, Member)> {
    let list = presence.get_mut(channel)?;
    let index = list.iter().position(|m| &*m.client_id == id)?;
    let member = list.remove(index);
    if list.is_empty() {
        presence.remove(channel);
    }
    watch.lose(channel);
    watch.member(channel, &member, false);
    Some((channel.to_owned(), member))
}
