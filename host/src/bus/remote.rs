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
            disconnect @ Remote::Disconnect { .. } => {
                drop(state);
                self.remote_disconnect(disconnect)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::future::BoxFuture;
    use parking_lot::Mutex;
    use serde_json::{json, Value};

    use crate::bus::link::{Forward, Link, LinkError, Remote};
    use crate::bus::{Bus, BusLimits, Event, Member, Topic};

    /// A link that records what the bus hands it.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Link for Recorder {
        fn node(&self) -> &str {
            "0000aaaa"
        }
        fn is_up(&self) -> bool {
            true
        }
        fn forward(&self, f: Forward) {
            let line = match f {
                Forward::Publish { channel, .. } => format!("publish {channel}"),
                Forward::Users { users, .. } => format!("users {}", users.join(",")),
                Forward::Clients { clients, .. } => format!("clients {}", clients.len()),
                Forward::Interest { channel, on } => format!("interest {channel} {on}"),
                Forward::Member {
                    channel, present, ..
                } => format!("member {channel} {present}"),
                Forward::User { user, here } => format!("user {user} {here}"),
                Forward::Disconnect { users, .. } => format!("disconnect {}", users.join(",")),
            };
            self.0.lock().push(line);
        }
        fn settled(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
        fn presence<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<Member>, LinkError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn topic_create<'a>(
            &'a self,
            _: &'a str,
            _: &'a Value,
        ) -> BoxFuture<'a, Result<bool, LinkError>> {
            Box::pin(async { Ok(true) })
        }
        fn topic_remove<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), LinkError>> {
            Box::pin(async { Ok(()) })
        }
        fn topics(&self) -> BoxFuture<'_, Result<Vec<(String, Value)>, LinkError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    fn bus() -> (Bus, Arc<Recorder>) {
        let limits = BusLimits::from_config(&crate::config::Limits::default());
        let bus = Bus::new(Arc::default(), limits);
        let link = Arc::new(Recorder::default());
        bus.attach(link.clone());
        (bus, link)
    }

    fn take(link: &Recorder) -> Vec<String> {
        std::mem::take(&mut *link.0.lock())
    }

    fn message(data: Value) -> Event {
        Event::Message {
            channel: "c".into(),
            from: None,
            data,
            position: None,
        }
    }

    #[test]
    fn the_link_hears_first_and_last_interest_users_and_members() {
        let (bus, link) = bus();
        let a = bus.register(Some("ann".into()), "native");
        let b = bus.register(Some("ann".into()), "native");
        assert!(a.id.contains(":0000aaaa"), "ids carry the node: {}", a.id);
        assert_eq!(take(&link), ["user ann true"], "the first connection only");
        bus.subscribe(&a.id, &Topic::channel("c"), None)
            .expect("sub");
        bus.subscribe(&b.id, &Topic::channel("c"), None)
            .expect("sub");
        bus.subscribe(&a.id, &Topic::resource("r"), None)
            .expect("sub");
        assert_eq!(
            take(&link),
            ["interest c true"],
            "one interest, channels only"
        );
        bus.presence_join(&b.id, "p", json!({})).expect("join");
        assert_eq!(
            take(&link),
            ["interest p true", "member p true", "publish p"]
        );
        bus.unsubscribe(&a.id, &Topic::channel("c"));
        assert!(take(&link).is_empty(), "b still listens to c");
        bus.unregister(&b.id);
        let mut left = take(&link);
        left.sort();
        assert_eq!(
            left,
            [
                "interest c false",
                "interest p false",
                "member p false",
                "publish p"
            ]
        );
        bus.unregister(&a.id);
        assert_eq!(take(&link), ["user ann false"]);
        let mut interests = bus.interests();
        interests.sort();
        assert!(interests.is_empty());
    }

    #[test]
    fn publishes_and_sends_go_out_and_remote_ones_are_delivered_here() {
        let (bus, link) = bus();
        let mut sub = bus.register(None, "native");
        bus.subscribe(
            &sub.id,
            &Topic::channel("c"),
            crate::bus::Filter::from_value(&json!({"k": 1})).expect("filter"),
        )
        .expect("sub");
        take(&link);
        assert_eq!(
            bus.publish(
                &Topic::channel("c"),
                message(json!({"k": 1})),
                &json!({"k": 1})
            ),
            1
        );
        bus.publish(&Topic::resource("c"), message(json!({})), &json!({}));
        assert_eq!(
            take(&link),
            ["publish c"],
            "resource streams stay on the node"
        );
        let here = sub.id.to_string();
        let elsewhere = "1:ffffffff0123".to_owned();
        let direct = || Event::Notify {
            data: json!(1),
            channel: None,
        };
        assert_eq!(bus.send_to_clients(&[here.clone(), elsewhere], direct()), 1);
        assert_eq!(
            take(&link),
            ["clients 1"],
            "only the other node's id goes out"
        );
        bus.send_to_users(&["bob"], direct());
        assert_eq!(take(&link), ["users bob"]);
        assert!(sub.rx.try_recv().is_some() && sub.rx.try_recv().is_some());

        // Another node's publish meets this node's filter.
        let remote = |k: i64| Remote::Publish {
            channel: "c".into(),
            event: message(json!({"k": k})),
        };
        assert_eq!(bus.remote(remote(2)), 0);
        assert_eq!(bus.remote(remote(1)), 1);
        assert!(sub.rx.try_recv().is_some());
        assert!(
            take(&link).is_empty(),
            "remote events are not sent back out"
        );
    }
}
