//! Per-connection rate limiting (s3db.js `rateLimit`: `maxRequests` per
//! `windowMs`), on governor's GCRA: a full window's burst is allowed, then
//! requests refill evenly across the window.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::Limits;

/// A connection's limiter, or none when rate limiting is off.
pub(crate) struct Limiter(Option<DefaultDirectRateLimiter>);

impl Limiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        let Some(max) = NonZeroU32::new(limits.rate_limit_max_requests) else {
            return Self(None);
        };
        let window = Duration::from_millis(limits.rate_limit_window_ms.max(1));
        let quota = Quota::with_period(window / max.get())
            .map(|q| q.allow_burst(max))
            .unwrap_or_else(|| Quota::per_second(max));
        Self(Some(RateLimiter::direct(quota)))
    }

    /// Whether one more request is allowed now.
    pub(crate) fn allow(&self) -> bool {
        self.0.as_ref().is_none_or(|l| l.check().is_ok())
    }
}
