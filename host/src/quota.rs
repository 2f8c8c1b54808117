//! Rate limits and write quotas, keyed by who the client is — its user id,
//! or for anonymous clients its IP address — not by connection: ten
//! reconnects do not buy ten budgets. One request limiter covers every
//! dialect, scripted sockets and HTTP walker calls; one write quota covers
//! every record written for an identity, by the client or by a walker it
//! called. Both are governor's keyed GCRA limiters (a full window's burst,
//! then an even refill), pruned in the background so idle keys cost
//! nothing.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Identity;
use crate::config::Limits;

/// Whom a budget belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An authenticated user (all its connections share the budget).
    User(String),
    /// An anonymous client, by address.
    Ip(IpAddr),
    /// An anonymous client whose address is not known (in-process callers).
    Unknown,
}

impl ClientKey {
    /// The key for `identity` connecting from `peer`.
    pub fn of(identity: &Identity, peer: Option<IpAddr>) -> Self {
        match (&identity.user_id, peer) {
            (Some(user), _) => ClientKey::User(user.clone()),
            (None, Some(ip)) => ClientKey::Ip(ip),
            (None, None) => ClientKey::Unknown,
        }
    }
}

/// A refusal, with when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// How long until the request would conform.
    pub retry_after: Duration,
}

/// The server's limiters.
pub struct Quotas {
    requests: Option<Limiter>,
    writes: Option<Limiter>,
    clock: DefaultClock,
}

struct Limiter {
    limiter: DefaultKeyedRateLimiter<ClientKey>,
    /// How long a full budget takes to refill: what a batch larger than
    /// the whole budget is told to wait (it can never pass).
    window: Duration,
}

impl Limiter {
    /// `max` cells per `window`, all of them available at once.
    fn new(max: u32, window_ms: u64) -> Option<Self> {
        let max = NonZeroU32::new(max)?;
        let window = Duration::from_millis(window_ms.max(1));
        let period = (window / max.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)?.allow_burst(max);
        Some(Self {
            limiter: RateLimiter::keyed(quota),
            window,
        })
    }

    fn take(&self, clock: &DefaultClock, key: &ClientKey, n: u32) -> Result<(), Exceeded> {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Exceeded {
                retry_after: not_until.wait_time_from(clock.now()),
            }),
            // More than the whole budget: refused, however long one waits.
            Err(_) => Err(Exceeded {
                retry_after: self.window,
            }),
        }
    }
}

impl Quotas {
    /// The limiters `limits` asks for (each off at 0).
    pub fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            requests: Limiter::new(limits.rate_limit_max_requests, limits.rate_limit_window_ms),
            writes: Limiter::new(limits.write_quota_bytes, limits.write_quota_window_ms),
            clock: DefaultClock::default(),
        })
    }

    /// Takes `n` requests from `key`'s budget (a batched frame's entries
    /// count one each; a batch larger than the whole budget never passes).
    ///
    /// # Errors
    /// The budget is spent, with when it refills enough.
    pub fn requests(&self, key: &ClientKey, n: usize) -> Result<(), Exceeded> {
        match &self.requests {
            Some(l) => l.take(&self.clock, key, u32::try_from(n).unwrap_or(u32::MAX)),
            None => Ok(()),
        }
    }

    /// Takes `bytes` from `key`'s write quota.
    ///
    /// # Errors
    /// The quota is spent.
    pub fn write(&self, key: &ClientKey, bytes: usize) -> Result<(), Exceeded> {
        match &self.writes {
            Some(l) => l.take(&self.clock, key, u32::try_from(bytes).unwrap_or(u32::MAX)),
            None => Ok(()),
        }
    }

    /// Forgets keys whose budgets are full again: they cost memory only
    /// while they are being limited.
    pub fn prune(&self) {
        for l in [&self.requests, &self.writes].into_iter().flatten() {
            l.limiter.retain_recent();
            l.limiter.shrink_to_fit();
        }
    }

    /// How many keys are tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        [&self.requests, &self.writes]
            .into_iter()
            .flatten()
            .map(|l| l.limiter.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_count_each_entry_and_keys_are_separate() {
        let limits = Limits {
            rate_limit_max_requests: 5,
            rate_limit_window_ms: 60_000,
            ..Limits::default()
        };
        let q = Quotas::new(&limits);
        let alice = ClientKey::User("alice".into());
        assert!(q.requests(&alice, 4).is_ok());
        let refused = q.requests(&alice, 2).expect_err("6 > 5");
        assert!(refused.retry_after > Duration::ZERO);
        assert!(q.requests(&ClientKey::User("bob".into()), 5).is_ok());
        assert!(
            q.requests(&alice, 500).is_err(),
            "a huge batch takes all or fails"
        );
    }

    #[test]
    fn off_at_zero() {
        let limits = Limits {
            rate_limit_max_requests: 0,
            write_quota_bytes: 0,
            ..Limits::default()
        };
        let q = Quotas::new(&limits);
        assert!(q.requests(&ClientKey::Unknown, 1_000_000).is_ok());
        assert!(q.write(&ClientKey::Unknown, usize::MAX).is_ok());
    }
}
