//! Token-bucket rate limits (governor), per node:
//!
//! - **Failed API-key attempts, per client IP.** Each request whose key is
//!   missing or wrong takes a token from its IP's bucket; once the bucket
//!   is empty, the IP is *locked out* until a token is back: every request
//!   from it that presents a key — right or wrong — is answered 429
//!   `rate_limited` with `Retry-After`, before its key is even looked at,
//!   so a guessing client learns nothing while locked out.
//! - **Creates, per API key.** `POST /v1/sessions` takes a token from the
//!   caller key's bucket; an empty bucket answers 429 with `Retry-After`.
//!
//! The client IP is the TCP peer's address (sessiond is meant to sit on a
//! private network; behind a proxy every caller shares the proxy's IP, so
//! raise `failed_auth_burst` or turn the limit off there). Several nodes
//! keep their own buckets: the limits are per node. Hits are counted in
//! `sessiond_rate_limited_total{limit}`. The keyed state stays bounded:
//! buckets that have refilled are dropped every few thousand checks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The `[rate_limits]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Failed API-key attempts allowed per client IP and minute, once its
    /// burst is spent (0: no limit).
    pub failed_auth_per_minute: u32,
    /// Failed attempts a client IP may make at once.
    pub failed_auth_burst: u32,
    /// Creates allowed per API key and second, once its burst is spent
    /// (0: no limit).
    pub creates_per_second: u32,
    /// Creates an API key may make at once.
    pub creates_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            failed_auth_per_minute: 30,
            failed_auth_burst: 20,
            // Off: one key usually serves a whole app's logins; set it to
            // bound what a leaked or runaway key can create.
            creates_per_second: 0,
            creates_burst: 1_000,
        }
    }
}

/// How often (in checks) refilled buckets and ended lockouts are dropped.
const RETAIN_EVERY: u32 = 4_096;

/// The limiters of one node.
pub struct RateLimits {
    failed_auth: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// IPs locked out, until when.
    locked: Mutex<HashMap<IpAddr, Instant>>,
    /// How many entries `locked` holds, so that the check every request
    /// makes takes no lock while nobody is locked out.
    locked_len: AtomicUsize,
    creates: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU32,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("failed_auth", &self.failed_auth.is_some())
            .field("creates", &self.creates.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    /// No limits (tests and embedding).
    fn default() -> Self {
        RateLimits::off()
    }
}

fn quota(per: Duration, n: u32, burst: u32) -> Option<Quota> {
    let n = NonZeroU32::new(n)?;
    let burst = NonZeroU32::new(burst.max(1))?;
    Quota::with_period(per / n.get()).map(|q| q.allow_burst(burst))
}

/// Whole seconds to wait, at least 1 (`Retry-After`).
fn secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn hit(limit: &'static str) {
    metrics::counter!("sessiond_rate_limited_total", "limit" => limit).increment(1);
}

impl RateLimits {
    /// No limits at all.
    #[must_use]
    pub fn off() -> Self {
        RateLimits {
            failed_auth: None,
            locked: Mutex::new(HashMap::new()),
            locked_len: AtomicUsize::new(0),
            creates: None,
            checks: AtomicU32::new(0),
        }
    }

    /// The limiters `cfg` asks for.
    #[must_use]
    pub fn new(cfg: &RateLimitConfig) -> Self {
        let minute = Duration::from_secs(60);
        RateLimits {
            failed_auth: quota(minute, cfg.failed_auth_per_minute, cfg.failed_auth_burst)
                .map(DefaultKeyedRateLimiter::keyed),
            creates: quota(
                Duration::from_secs(1),
                cfg.creates_per_second,
                cfg.creates_burst,
            )
            .map(DefaultKeyedRateLimiter::keyed),
            ..RateLimits::off()
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.locked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every few thousand checks: drops refilled buckets and ended lockouts.
    fn upkeep(&self) {
        if !self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(RETAIN_EVERY)
        {
            return;
        }
        if let Some(l) = &self.failed_auth {
            l.retain_recent();
        }
        if let Some(l) = &self.creates {
            l.retain_recent();
        }
        let now = Instant::now();
        let mut locked = self.locked();
        locked.retain(|_, until| *until > now);
        self.locked_len.store(locked.len(), Ordering::Relaxed);
    }

    /// Before a key from `ip` is looked at: 429 while `ip` is locked out.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`].
    pub fn check_ip(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let (Some(ip), Some(_)) = (ip, &self.failed_auth) else {
            return Ok(());
        };
        if self.locked_len.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let until = self.locked().get(&ip).copied();
        match until {
            Some(until) if until > Instant::now() => {
                hit("failed_auth");
                Err(ApiError::RateLimited {
                    retry_after_secs: secs(until - Instant::now()),
                })
            }
            _ => Ok(()),
        }
    }

    /// After a key from `ip` was refused: takes a token from its bucket;
    /// when there is none, locks `ip` out until there is one again, and the
    /// answer is 429 instead of the 401 it would have been.
    #[must_use]
    pub fn failed_auth(&self, ip: Option<IpAddr>) -> ApiError {
        let (Some(ip), Some(l)) = (ip, &self.failed_auth) else {
            return ApiError::Unauthenticated;
        };
        self.upkeep();
        match l.check_key(&ip) {
            Ok(()) => ApiError::Unauthenticated,
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let mut locked = self.locked();
                locked.insert(ip, Instant::now() + wait);
                self.locked_len.store(locked.len(), Ordering::Relaxed);
                hit("failed_auth");
                tracing::warn!(%ip, "too many failed API-key attempts; client locked out");
                ApiError::RateLimited {
                    retry_after_secs: secs(wait),
                }
            }
        }
    }

    /// Before a create by the key `key_id`: 429 when its bucket is empty.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`].
    pub fn create(&self, key_id: &str) -> Result<(), ApiError> {
        let Some(l) = &self.creates else {
            return Ok(());
        };
        self.upkeep();
        l.check_key(&key_id.to_owned()).map_err(|not_until| {
            hit("creates");
            ApiError::RateLimited {
                retry_after_secs: secs(not_until.wait_time_from(DefaultClock::default().now())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(failed: u32, burst: u32, creates: u32) -> RateLimits {
        RateLimits::new(&RateLimitConfig {
            failed_auth_per_minute: failed,
            failed_auth_burst: burst,
            creates_per_second: creates,
            creates_burst: creates,
        })
    }

    #[test]
    fn a_burst_of_wrong_keys_locks_the_ip_out_and_not_others() {
        let l = limits(6, 3, 0);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let other = Some(IpAddr::from([10, 0, 0, 2]));
        for _ in 0..3 {
            assert!(l.check_ip(ip).is_ok());
            assert!(matches!(l.failed_auth(ip), ApiError::Unauthenticated));
        }
        let locked = l.failed_auth(ip);
        let ApiError::RateLimited { retry_after_secs } = locked else {
            panic!("{locked:?}")
        };
        assert!((1..=10).contains(&retry_after_secs), "{retry_after_secs}");
        // Locked out: refused before any key is looked at.
        assert!(matches!(l.check_ip(ip), Err(ApiError::RateLimited { .. })));
        // Another client is not.
        assert!(l.check_ip(other).is_ok());
        assert!(matches!(l.failed_auth(other), ApiError::Unauthenticated));
        // No peer address (in-process callers): never limited.
        assert!(l.check_ip(None).is_ok());
        assert!(matches!(l.failed_auth(None), ApiError::Unauthenticated));
    }

    #[test]
    fn creates_are_limited_per_key_and_zero_turns_a_limit_off() {
        let l = limits(0, 0, 5);
        for _ in 0..5 {
            assert!(l.create("k1").is_ok());
        }
        assert!(matches!(
            l.create("k1"),
            Err(ApiError::RateLimited {
                retry_after_secs: 1
            })
        ));
        assert!(l.create("k2").is_ok());
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..100 {
            assert!(matches!(l.failed_auth(ip), ApiError::Unauthenticated));
        }
        let off = RateLimits::off();
        for _ in 0..10_000 {
            assert!(off.create("k").is_ok());
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        assert_eq!(secs(Duration::ZERO), 1);
        assert_eq!(secs(Duration::from_millis(1)), 1);
        assert_eq!(secs(Duration::from_secs(2)), 2);
        assert_eq!(secs(Duration::from_millis(2_001)), 3);
    }
}
