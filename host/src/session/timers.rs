//! The timers one connection waits on besides its socket and queue: the
//! heartbeat (pings, and the deadline for their pong) and the identity's
//! expiry. Each connection holds them for its whole life, so they are kept
//! to one inline sleep apiece; neither is re-registered per wake-up, since a
//! broadcast wakes every subscriber once.

use std::time::Duration;

use tokio::time::Instant;

/// What the heartbeat's timer firing means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Beat {
    /// A ping is due.
    Ping,
    /// A ping went unanswered past the timeout: the peer is gone.
    Dead,
    /// Nothing yet (the timer was set for a pong deadline that a frame
    /// from the client has since cleared).
    Idle,
}

/// The heartbeat's schedule: a ping every `every`, and once one goes
/// unanswered, a deadline `timeout` after it. One timer serves both (the
/// loop's sleep, reset to [`Heartbeat::due`] after each firing), where an
/// interval and a deadline would hold two, one of them on the heap.
#[derive(Debug)]
pub(super) struct Heartbeat {
    every: Duration,
    timeout: Duration,
    next_ping: Instant,
    /// Set by the first unanswered ping, cleared by any frame from the client.
    pong_by: Option<Instant>,
}

impl Heartbeat {
    /// A heartbeat whose first ping is due `every` from `now`.
    pub(super) fn new(every: Duration, timeout: Duration, now: Instant) -> Self {
        Self {
            every,
            timeout,
            next_ping: now + every,
            pong_by: None,
        }
    }

    /// When the timer must fire next.
    pub(super) fn due(&self) -> Instant {
        self.pong_by
            .map_or(self.next_ping, |by| by.min(self.next_ping))
    }

    /// The client sent a frame: whatever ping was out is answered. The
    /// timer is not touched (a frame must not cost a timer reset); if it
    /// was set for the pong deadline, it fires [`Beat::Idle`] once.
    pub(super) fn answered(&mut self) {
        self.pong_by = None;
    }

    /// The timer fired at `now`.
    pub(super) fn fired(&mut self, now: Instant) -> Beat {
        if self.pong_by.is_some_and(|by| now >= by) {
            return Beat::Dead;
        }
        if now < self.next_ping {
            return Beat::Idle;
        }
        self.next_ping = now + self.every;
        // The deadline runs from the first unanswered ping.
        self.pong_by.get_or_insert(now + self.timeout);
        Beat::Ping
    }
}

/// The expiry timer of one connection: armed only while its identity has an
/// expiry, and re-armed only when the moment changes (a delivery-heavy
/// connection must not pay a timer registration per wake-up).
pub(super) struct ExpiryTimer {
    warning_ms: u64,
    /// The `exp` already warned about.
    pub(super) warned: Option<u64>,
    /// The Unix ms the sleep is set for, and the sleep.
    armed: Option<(u64, std::pin::Pin<Box<tokio::time::Sleep>>)>,
}

impl ExpiryTimer {
    pub(super) fn new(warning_ms: u64) -> Self {
        Self {
            warning_ms,
            warned: None,
            armed: None,
        }
    }

    /// Arms the sleep for `exp`'s next moment: the warning, or `exp` itself
    /// once warned.
    pub(super) fn arm(&mut self, exp: Option<u64>) {
        let Some(exp) = exp else {
            self.armed = None;
            return;
        };
        let at = if self.warned == Some(exp) {
            exp
        } else {
            exp.saturating_sub(self.warning_ms)
        };
        let when = Instant::now() + Duration::from_millis(at.saturating_sub(crate::now_ms()));
        match &mut self.armed {
            Some((armed, _)) if *armed == at => {}
            Some((armed, sleep)) => {
                *armed = at;
                sleep.as_mut().reset(when);
            }
            None => self.armed = Some((at, Box::pin(tokio::time::sleep_until(when)))),
        }
    }

    /// Resolves when the armed moment comes; never when unarmed.
    pub(super) async fn fired(&mut self) {
        match &mut self.armed {
            Some((_, sleep)) => sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Beat, Heartbeat};
    use std::time::Duration;
    use tokio::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pings_every_interval_while_answered() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(100 * MS, 30 * MS, t0);
        assert_eq!(hb.due(), t0 + 100 * MS);
        assert_eq!(hb.fired(t0 + 100 * MS), Beat::Ping);
        // The pong deadline comes before the next ping.
        assert_eq!(hb.due(), t0 + 130 * MS);
        hb.answered();
        // The timer still fires at the old deadline: nothing to do.
        assert_eq!(hb.fired(t0 + 130 * MS), Beat::Idle);
        assert_eq!(hb.due(), t0 + 200 * MS);
        assert_eq!(hb.fired(t0 + 200 * MS), Beat::Ping);
    }

    #[test]
    fn an_unanswered_ping_is_dead_at_its_deadline() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(100 * MS, 30 * MS, t0);
        assert_eq!(hb.fired(t0 + 100 * MS), Beat::Ping);
        assert_eq!(hb.fired(t0 + 129 * MS), Beat::Idle);
        assert_eq!(hb.fired(t0 + 130 * MS), Beat::Dead);
    }

    #[test]
    fn a_timeout_longer_than_the_interval_counts_from_the_first_ping() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(10 * MS, 25 * MS, t0);
        assert_eq!(hb.fired(t0 + 10 * MS), Beat::Ping);
        assert_eq!(hb.fired(t0 + 20 * MS), Beat::Ping);
        assert_eq!(hb.fired(t0 + 30 * MS), Beat::Ping);
        assert_eq!(hb.due(), t0 + 35 * MS);
        assert_eq!(hb.fired(t0 + 35 * MS), Beat::Dead);
    }
}
