//! What nodes send each other through Redis: one JSON object per event,
//! saying which node sent it (a node ignores its own echoes) and, for
//! targeted sends, to whom.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bus::link::LinkError;
use crate::bus::{Event, Member, Origin, Position, PresenceKind};

/// One event between nodes.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Packet {
    /// The sending node (`""`: a reaper speaking for a dead node).
    pub n: String,
    /// Users to deliver to (inbox sends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub u: Vec<String>,
    /// Connections to deliver to (inbox sends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub c: Vec<String>,
    /// The event.
    pub e: WireEvent,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireOrigin {
    client: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireMember {
    member_id: String,
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    info: Value,
    joined_at: u64,
}

/// An [`Event`] as it travels (store changes do not travel: each node's
/// store announces its own).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum WireEvent {
    Message {
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<WireOrigin>,
        data: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    Direct {
        from: WireOrigin,
        data: Value,
    },
    Notify {
        data: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    Presence {
        channel: String,
        join: bool,
        member: WireMember,
    },
    /// Not an event: an operator's disconnect of the packet's targets.
    Disconnect {
        code: u16,
        reason: String,
    },
}

fn origin(o: &Origin) -> WireOrigin {
    WireOrigin {
        client: o.client_id.to_string(),
        user: o.user_id.clone(),
    }
}

fn from_origin(o: WireOrigin) -> Origin {
    Origin {
        client_id: o.client.into(),
        user_id: o.user,
    }
}

impl From<&Member> for WireMember {
    fn from(m: &Member) -> Self {
        Self {
            member_id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            user_id: m.user_id.clone(),
            info: m.info.clone(),
            joined_at: m.joined_at,
        }
    }
}

impl From<WireMember> for Member {
    fn from(m: WireMember) -> Self {
        Self {
            member_id: m.member_id.into(),
            client_id: m.client_id.into(),
            user_id: m.user_id,
            info: m.info,
            joined_at: m.joined_at,
        }
    }
}

impl WireEvent {
    /// The event as it travels; none for events that do not.
    pub(super) fn of(event: &Event) -> Option<Self> {
        Some(match event {
            Event::Message {
                channel,
                from,
                data,
                position,
            } => WireEvent::Message {
                channel: channel.clone(),
                from: from.as_ref().map(origin),
                data: data.clone(),
                offset: position.as_ref().map(|p| p.offset),
                epoch: position.as_ref().map(|p| p.epoch.to_string()),
            },
            Event::Direct { from, data } => WireEvent::Direct {
                from: origin(from),
                data: data.clone(),
            },
            Event::Notify { data, channel } => WireEvent::Notify {
                data: data.clone(),
                channel: channel.clone(),
            },
            Event::Presence {
                channel,
                kind,
                member,
            } => WireEvent::Presence {
                channel: channel.clone(),
                join: *kind == PresenceKind::Join,
                member: member.into(),
            },
            Event::Change(_) => return None,
        })
    }

    /// The event delivered (none for a disconnect).
    pub(super) fn into_event(self) -> Option<Event> {
        Some(match self {
            WireEvent::Message {
                channel,
                from,
                data,
                offset,
                epoch,
            } => Event::Message {
                channel,
                from: from.map(from_origin),
                data,
                position: offset.zip(epoch).map(|(offset, epoch)| Position {
                    offset,
                    epoch: Arc::from(epoch),
                }),
            },
            WireEvent::Direct { from, data } => Event::Direct {
                from: from_origin(from),
                data,
            },
            WireEvent::Notify { data, channel } => Event::Notify { data, channel },
            WireEvent::Presence {
                channel,
                join,
                member,
            } => Event::Presence {
                channel,
                kind: if join {
                    PresenceKind::Join
                } else {
                    PresenceKind::Leave
                },
                member: member.into(),
            },
            WireEvent::Disconnect { .. } => return None,
        })
    }
}

impl Packet {
    /// A packet from `node` carrying `event`; none for events that do not
    /// travel.
    pub(super) fn new(node: &str, event: &Event) -> Option<Self> {
        Some(Self {
            n: node.to_owned(),
            u: Vec::new(),
            c: Vec::new(),
            e: WireEvent::of(event)?,
        })
    }

    /// The packet's bytes.
    pub(super) fn encode(&self) -> String {
        // Serialising plain data to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a packet.
    ///
    /// # Errors
    /// Not a packet.
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, LinkError> {
        serde_json::from_slice(bytes).map_err(|e| LinkError::Corrupt(e.to_string()))
    }
}

/// A member as kept in Redis.
pub(super) fn encode_member(member: &Member) -> String {
    serde_json::to_string(&WireMember::from(member)).unwrap_or_default()
}

/// A member read from Redis.
///
/// # Errors
/// Not a member.
pub(super) fn decode_member(bytes: &[u8]) -> Result<Member, LinkError> {
    serde_json::from_slice::<WireMember>(bytes)
        .map(Member::from)
        .map_err(|e| LinkError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_survive_the_trip() {
        let member = Member {
            member_id: "m1".into(),
            client_id: "1:abcdef0012".into(),
            user_id: Some("ann".into()),
            info: json!({"name": "Ann"}),
            joined_at: 7,
        };
        let events = [
            Event::Message {
                channel: "chat".into(),
                from: Some(Origin {
                    client_id: "1:ab".into(),
                    user_id: None,
                }),
                data: json!({"text": "hi"}),
                position: Some(Position {
                    offset: 3,
                    epoch: "e1".into(),
                }),
            },
            Event::Direct {
                from: Origin {
                    client_id: "1:ab".into(),
                    user_id: Some("bob".into()),
                },
                data: json!([1, 2]),
            },
            Event::Notify {
                data: json!({"type": "x"}),
                channel: Some("c".into()),
            },
            Event::Presence {
                channel: "room".into(),
                kind: PresenceKind::Leave,
                member: member.clone(),
            },
        ];
        for event in events {
            let packet = Packet::new("n1", &event).expect("travels");
            let back = Packet::decode(packet.encode().as_bytes()).expect("decodes");
            assert_eq!(back.n, "n1");
            assert_eq!(back.e.into_event(), Some(event));
        }
        let kept = decode_member(encode_member(&member).as_bytes()).expect("member");
        assert_eq!(kept, member);
        assert!(Packet::decode(b"{\"n\":1}").is_err());
    }
}
