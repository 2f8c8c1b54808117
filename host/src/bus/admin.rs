//! What operators see and do (the server API and console): connections
//! with their subscriptions and queues, channels with their subscriber
//! counts, and disconnects that reach every node.

use std::collections::HashSet;
use std::sync::Arc;

use super::link::{node_of, Forward, Remote};
use super::{Bus, Topic};

/// One connection, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Its id.
    pub id: Arc<str>,
    /// Its user, when authenticated.
    pub user_id: Option<String>,
    /// What it speaks.
    pub dialect: &'static str,
    /// Channels it subscribes to, sorted.
    pub channels: Vec<String>,
    /// Resources it subscribes to, sorted.
    pub resources: Vec<String>,
    /// Presence lists it is on, sorted.
    pub presence: Vec<String>,
    /// Bytes of events waiting for it to read.
    pub queued_bytes: usize,
}

impl Bus {
    /// This node's connections, by id.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let state = self.state.read();
        let mut out: Vec<ConnectionInfo> = state
            .clients
            .values()
            .map(|e| {
                let mut channels = Vec::new();
                let mut resources = Vec::new();
                for topic in &e.channels {
                    match topic {
                        Topic::Channel(c) => channels.push(c.clone()),
                        Topic::Resource(r) => resources.push(r.clone()),
                    }
                }
                channels.sort();
                resources.sort();
                let mut presence: Vec<String> = e.presence.iter().cloned().collect();
                presence.sort();
                ConnectionInfo {
                    id: e.id.clone(),
                    user_id: e.user_id.clone(),
                    dialect: e.label,
                    channels,
                    resources,
                    presence,
                    queued_bytes: e.peer.tx.queued_bytes(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// This node's channels with their subscriber counts, by name.
    pub fn channel_counts(&self) -> Vec<(String, usize)> {
        let state = self.state.read();
        let mut out: Vec<(String, usize)> = state
            .channels
            .iter()
            .filter_map(|(topic, subs)| match topic {
                Topic::Channel(c) => Some((c.clone(), subs.len())),
                Topic::Resource(_) => None,
            })
            .collect();
        out.sort();
        out
    }

    /// Closes these users' connections and these connections with `code`
    /// and `reason`, here and (in a cluster) on every node. Returns how
    /// many it closed on this node.
    pub fn disconnect(
        &self,
        users: &[String],
        clients: &[String],
        code: u16,
        reason: &str,
    ) -> usize {
        let closed = self.disconnect_local(users, clients, code, reason);
        if let Some(link) = self.link() {
            let node = link.node().to_owned();
            let elsewhere: Vec<String> = clients
                .iter()
                .filter(|c| node_of(c).is_some_and(|n| n != node))
                .cloned()
                .collect();
            if !users.is_empty() || !elsewhere.is_empty() {
                link.forward(Forward::Disconnect {
                    users: users.to_vec(),
                    clients: elsewhere,
                    code,
                    reason: reason.to_owned(),
                });
            }
        }
        closed
    }

    /// The local part of [`Bus::disconnect`] (also what another node's
    /// disconnect does here).
    pub(super) fn disconnect_local(
        &self,
        users: &[String],
        clients: &[String],
        code: u16,
        reason: &str,
    ) -> usize {
        let state = self.state.read();
        let mut targets: HashSet<&str> = clients.iter().map(String::as_str).collect();
        for user in users {
            if let Some(ids) = state.users.get(user) {
                targets.extend(ids.iter().map(|id| &**id));
            }
        }
        targets
            .into_iter()
            .filter_map(|id| state.clients.get(id))
            .map(|e| e.peer.kill.kill(code, reason.to_owned()))
            .count()
    }

    /// Applies another node's disconnect.
    pub(super) fn remote_disconnect(&self, remote: Remote) -> usize {
        match remote {
            Remote::Disconnect {
                users,
                clients,
                code,
                reason,
            } => self.disconnect_local(&users, &clients, code, &reason),
            _ => 0,
        }
    }
}
