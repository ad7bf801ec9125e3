//! The per-client limit on anonymous sessions: a token bucket per client
//! IP (governor's keyed GCRA limiter), taken from only when a handler's
//! write would create an anonymous session.
//!
//! Why: creating a session is a store write, and a visitor needs one only
//! when the app stores something for it; without a limit one client can
//! fill the store (one made 108,000 anonymous sessions in 8 seconds).
//!
//! Deployment caveats: the key is the client IP the layer derives
//! ([`TrustedProxies`](super::TrustedProxies)): behind a proxy that is not
//! listed, every client shares the proxy's bucket. An IPv6 client is keyed
//! by its `/64` (one host usually holds the whole prefix). A request whose
//! peer address is unknown (no `ConnectInfo`, no [`PeerAddr`](super::PeerAddr))
//! shares one bucket with every other such request: serve axum with
//! `into_make_service_with_connect_info::<SocketAddr>()`.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use sessionkit_core::Millis;

/// How fast one client (one IP address; one `/64` for IPv6) may start
/// anonymous sessions through the layer: a token bucket of `burst` tokens
/// that refills at `per_second`. The default is a burst of 30, then 10 a
/// second, with at most 100,000 clients remembered.
///
/// ```
/// use std::num::NonZeroU32;
/// use sessionkit::http::CreationRateLimit;
/// let strict = CreationRateLimit::new(
///     NonZeroU32::new(2).unwrap(),
///     NonZeroU32::new(5).unwrap(),
/// );
/// assert_eq!(strict.burst().get(), 5);
/// assert_eq!(CreationRateLimit::default().per_second().get(), 10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreationRateLimit {
    per_second: NonZeroU32,
    burst: NonZeroU32,
    max_clients: usize,
}

impl Default for CreationRateLimit {
    fn default() -> Self {
        CreationRateLimit {
            per_second: NonZeroU32::MIN.saturating_add(9),
            burst: NonZeroU32::MIN.saturating_add(29),
            max_clients: 100_000,
        }
    }
}

impl CreationRateLimit {
    /// `burst` sessions at once, then `per_second`, per client.
    #[must_use]
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        CreationRateLimit {
            per_second,
            burst,
            ..CreationRateLimit::default()
        }
    }

    /// How many clients the limiter remembers at most (100,000 by
    /// default; about 100 bytes each). Clients whose bucket is full again
    /// are forgotten first; if more than `max` are still refilling, the
    /// limiter starts afresh (every bucket full), which is logged: only a
    /// client with more than `max` addresses gets that far, and it can
    /// already make `burst` sessions from each.
    #[must_use]
    pub fn with_max_clients(mut self, max: usize) -> Self {
        self.max_clients = max.max(1);
        self
    }

    /// The refill rate, in sessions a second.
    #[must_use]
    pub fn per_second(&self) -> NonZeroU32 {
        self.per_second
    }

    /// The bucket's size: how many sessions a client may start at once.
    #[must_use]
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// How many clients are remembered at most.
    #[must_use]
    pub fn max_clients(&self) -> usize {
        self.max_clients
    }
}

/// The engine's time as governor's clock: tests that move a manual clock
/// refill the buckets too.
#[derive(Clone)]
pub(crate) struct EngineTime(pub(crate) Arc<dyn Fn() -> Millis + Send + Sync>);

impl Clock for EngineTime {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let ms = u64::try_from((self.0)().as_millis()).unwrap_or(0);
        Duration::from_millis(ms)
    }
}

/// The bucket key: the client's address (an IPv6 one cut to its `/64`), or
/// `None` when the layer does not know it.
type Key = Option<IpAddr>;

type Keyed = RateLimiter<Key, DashMapStateStore<Key>, EngineTime, NoOpMiddleware<Duration>>;

/// How many checks pass between two sweeps of the forgotten clients.
const SWEEP_EVERY: u64 = 1024;

/// The limiter a layer shares across its requests.
pub(crate) struct CreationLimiter {
    limit: CreationRateLimit,
    clock: EngineTime,
    buckets: RwLock<Arc<Keyed>>,
    checks: AtomicU64,
    limited: AtomicU64,
    /// The `metrics` counter of refusals.
    metric: &'static str,
}

impl CreationLimiter {
    pub(crate) fn new(limit: CreationRateLimit, clock: EngineTime, metric: &'static str) -> Self {
        CreationLimiter {
            buckets: RwLock::new(Arc::new(fresh(limit, clock.clone()))),
            limit,
            clock,
            checks: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            metric,
        }
    }

    /// Takes a token for `ip`: `Err(seconds to wait)` when its bucket is
    /// empty (the refusal is counted).
    pub(crate) fn check(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        let buckets = Arc::clone(&self.buckets.read().unwrap_or_else(|p| p.into_inner()));
        let outcome = buckets.check_key(&key(ip));
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(&buckets);
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(not_until) => {
                self.limited.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(self.metric).increment(1);
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(secs.max(1))
            }
        }
    }

    /// Forgets the clients whose bucket is full again; starts afresh if
    /// more than the limit's `max_clients` are still refilling.
    fn sweep(&self, buckets: &Keyed) {
        buckets.retain_recent();
        if buckets.len() > self.limit.max_clients {
            tracing::warn!(
                clients = buckets.len(),
                max = self.limit.max_clients,
                "too many clients starting sessions at once; the creation limiter starts afresh"
            );
            *self.buckets.write().unwrap_or_else(|p| p.into_inner()) =
                Arc::new(fresh(self.limit, self.clock.clone()));
        } else {
            buckets.shrink_to_fit();
        }
    }

    /// How many creations were refused.
    pub(crate) fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// How many clients are remembered now.
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.buckets.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn fresh(limit: CreationRateLimit, clock: EngineTime) -> Keyed {
    let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
    RateLimiter::dashmap_with_clock(quota, clock)
}

/// An IPv6 address cut to its `/64`; an IPv4 one as it is.
fn key(ip: Option<IpAddr>) -> Key {
    ip.map(|ip| match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionkit_core::ManualClock;

    fn limiter(per_second: u32, burst: u32, max: usize) -> (CreationLimiter, ManualClock) {
        let clock = ManualClock::new(Millis::from_millis(1_767_225_600_000));
        let c = clock.clone();
        let time = EngineTime(Arc::new(move || sessionkit_core::Clock::now(&c)));
        let limit = CreationRateLimit::new(
            NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN),
            NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        )
        .with_max_clients(max);
        (
            CreationLimiter::new(limit, time, "test_limited_total"),
            clock,
        )
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn a_client_gets_its_burst_then_its_rate() {
        let (l, clock) = limiter(10, 30, 1000);
        for _ in 0..30 {
            assert_eq!(l.check(ip("192.0.2.1")), Ok(()));
        }
        assert_eq!(l.check(ip("192.0.2.1")), Err(1));
        assert_eq!(l.limited(), 1);
        // Another client has its own bucket.
        assert_eq!(l.check(ip("192.0.2.2")), Ok(()));
        clock.advance_millis(100);
        assert_eq!(l.check(ip("192.0.2.1")), Ok(()));
        assert!(l.check(ip("192.0.2.1")).is_err());
        clock.advance_secs(3);
        for _ in 0..30 {
            assert_eq!(l.check(ip("192.0.2.1")), Ok(()));
        }
        assert_eq!(l.limited(), 2);
    }

    #[test]
    fn the_wait_is_rounded_up_to_whole_seconds() {
        let (l, _clock) = limiter(1, 1, 1000);
        assert_eq!(l.check(ip("192.0.2.1")), Ok(()));
        assert_eq!(l.check(ip("192.0.2.1")), Err(1));
        let (l, _clock) = limiter(1, 3, 1000);
        let mut n = 0;
        while l.check(ip("192.0.2.1")).is_ok() {
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn an_ipv6_client_is_keyed_by_its_64() {
        let (l, _clock) = limiter(1, 2, 1000);
        assert!(l.check(ip("2001:db8:1:2::1")).is_ok());
        assert!(l.check(ip("2001:db8:1:2:ffff::9")).is_ok());
        assert!(l.check(ip("2001:db8:1:2:abcd::1")).is_err());
        assert!(l.check(ip("2001:db8:1:3::1")).is_ok());
        // Unknown clients share one bucket.
        assert!(l.check(None).is_ok());
        assert!(l.check(None).is_ok());
        assert!(l.check(None).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let (l, clock) = limiter(10, 30, 500);
        // Many clients, each refilling: never more than the bound plus one
        // sweep's worth.
        for i in 0..20_000u32 {
            let _ = l.check(Some(IpAddr::from(i.to_be_bytes())));
            assert!(
                l.clients() <= 500 + SWEEP_EVERY as usize,
                "{} clients",
                l.clients()
            );
        }
        // Clients whose bucket refilled are forgotten at the next sweep.
        clock.advance_secs(10);
        for _ in 0..SWEEP_EVERY {
            let _ = l.check(ip("192.0.2.1"));
        }
        assert!(l.clients() <= 2, "{} clients", l.clients());
    }
}
