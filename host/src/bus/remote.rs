//! The bus's side of a cluster: attaching a link, delivering what other
//! nodes sent (with this node's filters: no plugin call per recipient),
//! and the state a link re-sends after it was down.

use std::sync::Arc;

use super::link::{Link, Remote};
use super::{Bus, Envelope, Event, Member, Topic};

impl Bus {
    /// Joins a cluster through `link`: connections registered from now on
    /// carry the link's node id, and everything the other nodes must know
    /// is forwarded to it. Set once, before the node takes connections.
    pub fn attach(&self, link: Arc<dyn Link>) {
        *self.node.write() = Arc::from(link.node());
        self.state.write().watch.attach(link);
    }

    /// The link, when this node is in a cluster.
    pub fn link(&self) -> Option<Arc<dyn Link>> {
        self.state.read().watch.link().cloned()
    }

    /// UNAVAILABLE when this node is in a cluster whose link is down:
    /// what was just delivered here did not reach the other nodes.
    pub fn cluster_down(&self) -> Option<String> {
        let link = self.link()?;
        (!link.is_up()).then(|| {
            "the cluster link is down: delivered on this node only, the other nodes did not get it"
                .to_owned()
        })
    }

    /// Delivers what another node sent to this node's connections.
    /// Returns how many it reached.
    pub fn remote(&self, remote: Remote) -> usize {
        let state = self.state.read();
        match remote {
            Remote::Publish { channel, event } => {
                let envelope = Envelope::new(event);
                match &envelope.event {
                    Event::Presence { .. } => {
                        self.announce_local(&state, &channel, &envelope);
                        0
                    }
                    Event::Message { data, .. } | Event::Notify { data, .. } => {
                        self.publish_local(&state, &Topic::Channel(channel), &envelope, data)
                    }
                    Event::Direct { .. } | Event::Change(_) => 0,
                }
            }
            Remote::Users { users, event } => {
                self.users_local(&state, &users, &Envelope::new(event))
            }
            Remote::Clients { clients, event } => {
                let ids: Vec<&str> = clients.iter().map(String::as_str).collect();
                self.clients_local(&state, &ids, &Envelope::new(event))
            }
        }
    }

    /// The channels this node has subscribers or presence members on.
    pub fn interests(&self) -> Vec<String> {
        self.state.read().watch.interests()
    }

    /// The users with connections on this node.
    pub fn local_users(&self) -> Vec<String> {
        self.state.read().users.keys().cloned().collect()
    }

    /// This node's presence members, by channel.
    pub fn local_members(&self) -> Vec<(String, Member)> {
        let state = self.state.read();
        state
            .presence
            .iter()
            .flat_map(|(channel, list)| list.iter().map(|m| (channel.clone(), m.clone())))
            .collect()
    }

    /// Who is on a channel's presence list on every node, oldest first.
    /// This node's own members are always its current ones; when the link
    /// is down the list is this node's only.
    pub async fn presence_members(&self, channel: &str) -> Vec<Member> {
        let local = self.presence_list(channel);
        let Some(link) = self.link() else {
            return local;
        };
        let node = link.node().to_owned();
        let mut members = match link.presence(channel).await {
            Ok(members) => members,
            Err(e) => {
                tracing::debug!(channel, error = %e, "presence of other nodes unknown");
                Vec::new()
            }
        };
        members.retain(|m| super::link::node_of(&m.client_id) != Some(node.as_str()));
        members.extend(local);
        members.sort_by(|a, b| (a.joined_at, &a.member_id).cmp(&(b.joined_at, &b.member_id)));
        members
    }
}
