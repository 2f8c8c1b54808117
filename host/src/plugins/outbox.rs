//! What a scripted socket's callback sends its own client: the frames
//! `notify-self` (text) and `notify-self-binary` wrote during one call,
//! in call order, handed back with the call's result instead of taking a
//! bus hop — so text and binary frames keep their order, and a frame the
//! client did not ask for cannot come from anywhere but its own script.
//!
//! Bounded: a script looping on `notify-self-binary` until its deadline
//! would otherwise make the host buffer without limit (guest memory caps
//! do not cover host memory). Past `cap` bytes in one call, the send is
//! refused with `payload-too-large` and nothing more is kept.

use super::bindings::types::ErrorCode;
use super::PluginError;

/// One frame for the socket's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
}

impl Outgoing {
    fn len(&self) -> usize {
        match self {
            Outgoing::Text(t) => t.len(),
            Outgoing::Binary(b) => b.len(),
        }
    }
}

/// The frames of the running call, bounded in bytes.
#[derive(Debug)]
pub(crate) struct Outbox {
    frames: Vec<Outgoing>,
    bytes: usize,
    cap: usize,
}

impl Outbox {
    /// An empty outbox holding at most `cap` bytes per call.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            frames: Vec::new(),
            bytes: 0,
            cap,
        }
    }

    /// Queues a frame for the client.
    pub(crate) fn push(&mut self, frame: Outgoing) -> Result<(), PluginError> {
        let len = frame.len();
        if self.bytes.saturating_add(len) > self.cap {
            return Err(PluginError {
                code: ErrorCode::PayloadTooLarge,
                message: format!(
                    "a socket call may send at most {} bytes to its client (limits.outbound_queue_bytes)",
                    self.cap
                ),
            });
        }
        self.bytes += len;
        self.frames.push(frame);
        Ok(())
    }

    /// The call's frames, leaving the outbox empty for the next call.
    pub(crate) fn take(&mut self) -> Vec<Outgoing> {
        self.bytes = 0;
        std::mem::take(&mut self.frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_keep_their_order_and_the_cap_holds_per_call() {
        let mut outbox = Outbox::new(10);
        outbox.push(Outgoing::Text("abc".into())).expect("fits");
        outbox
            .push(Outgoing::Binary(vec![1, 2, 3, 4]))
            .expect("fits");
        let refused = outbox.push(Outgoing::Binary(vec![0; 4])).expect_err("over");
        assert_eq!(refused.code, ErrorCode::PayloadTooLarge);
        assert_eq!(
            outbox.take(),
            [
                Outgoing::Text("abc".into()),
                Outgoing::Binary(vec![1, 2, 3, 4])
            ]
        );
        outbox
            .push(Outgoing::Binary(vec![0; 10]))
            .expect("a new call, a new budget");
    }
}
