//! Time inside sessionkit: an `i64` count of Unix milliseconds ([`Millis`]),
//! a [`Clock`] that can be injected, and [`ManualClock`] for tests.
//!
//! All deadline arithmetic is checked and saturating: no TTL, however large,
//! can make it overflow or panic. The engine clamps the clock so that its
//! `now` never goes backwards (DESIGN.md §3, invariant 7); stores never read
//! a clock, they take `now` from the engine.
//!
//! ```
//! use sessionkit_core::time::{Clock, ManualClock, Millis};
//! let clock = ManualClock::new(Millis::from_millis(1_000));
//! clock.advance_secs(5);
//! assert_eq!(clock.now(), Millis::from_millis(6_000));
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A point in time: milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(i64);

impl Millis {
    /// The earliest representable instant.
    pub const MIN: Millis = Millis(i64::MIN);
    /// The latest representable instant.
    pub const MAX: Millis = Millis(i64::MAX);

    /// Wraps a count of Unix milliseconds.
    #[must_use]
    pub const fn from_millis(ms: i64) -> Self {
        Millis(ms)
    }

    /// The count of Unix milliseconds.
    #[must_use]
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// `self + d`, saturating at [`Millis::MAX`] (never overflows).
    #[must_use]
    pub const fn saturating_add(self, d: DurationMs) -> Self {
        Millis(self.0.saturating_add(d.0))
    }

    /// `self - other` as a duration, saturating (never overflows).
    #[must_use]
    pub const fn saturating_since(self, earlier: Millis) -> DurationMs {
        DurationMs(self.0.saturating_sub(earlier.0))
    }

    /// Formats as RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
    /// Instants outside the years 0000–9999 are clamped into that range.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        const MIN_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00Z
        const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let ms = self.0.clamp(MIN_MS, MAX_MS);
        let nanos = i128::from(ms) * 1_000_000;
        let Ok(dt) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
            return String::from("9999-12-31T23:59:59.999Z");
        };
        let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
        format!(
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        )
    }
}

impl fmt::Debug for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Millis({})", self.0)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A span of time in milliseconds (never negative when built from seconds).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct DurationMs(i64);

impl DurationMs {
    /// Zero.
    pub const ZERO: DurationMs = DurationMs(0);

    /// A duration of `secs` seconds, saturating on overflow.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        let s = if secs > i64::MAX as u64 {
            i64::MAX
        } else {
            secs as i64
        };
        DurationMs(s.saturating_mul(1000))
    }

    /// A duration of `ms` milliseconds; negative values become zero.
    #[must_use]
    pub const fn from_millis(ms: i64) -> Self {
        DurationMs(if ms < 0 { 0 } else { ms })
    }

    /// The duration in milliseconds.
    #[must_use]
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The duration in whole seconds, rounded down.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        (self.0 / 1000) as u64
    }

    /// Half of this duration.
    #[must_use]
    pub const fn half(self) -> Self {
        DurationMs(self.0 / 2)
    }
}

/// A source of wall-clock time. The engine reads it once per operation.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Millis;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let now = std::time::SystemTime::now();
        let ms = match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Millis(ms)
    }
}

/// A clock moved by hand, for tests. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A manual clock showing `start`.
    #[must_use]
    pub fn new(start: Millis) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start.0)))
    }

    /// Sets the time (backwards too: the engine must cope with that).
    pub fn set(&self, t: Millis) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms` milliseconds (backward if negative).
    pub fn advance_millis(&self, ms: i64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_add(ms))
            });
    }

    /// Moves the time forward by `secs` seconds.
    pub fn advance_secs(&self, secs: i64) {
        self.advance_millis(secs.saturating_mul(1000));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        Millis(self.0.load(Ordering::SeqCst))
    }
}

/// A clock that never goes backwards: each reading is at least the highest
/// value already handed out (and at least a floor loaded from the store).
#[derive(Debug)]
pub struct MonotonicNow {
    high: AtomicI64,
}

impl MonotonicNow {
    /// Starts at `floor`, typically the highest time the store has persisted.
    #[must_use]
    pub fn new(floor: Millis) -> Self {
        MonotonicNow {
            high: AtomicI64::new(floor.0),
        }
    }

    /// `max(reading, highest value handed out so far)`, remembered.
    pub fn clamp(&self, reading: Millis) -> Millis {
        let prev = self.high.fetch_max(reading.0, Ordering::AcqRel);
        Millis(prev.max(reading.0))
    }

    /// The highest value handed out so far.
    #[must_use]
    pub fn high_water(&self) -> Millis {
        Millis(self.high.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_millis_and_z() {
        assert_eq!(
            Millis::from_millis(1_767_323_045_678).to_rfc3339(),
            "2026-01-02T03:04:05.678Z"
        );
        assert_eq!(Millis::MAX.to_rfc3339(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Millis::MIN.to_rfc3339(), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(
            Millis::MAX.saturating_add(DurationMs::from_secs(u64::MAX)),
            Millis::MAX
        );
        assert_eq!(DurationMs::from_secs(u64::MAX).as_millis(), i64::MAX);
        assert_eq!(
            Millis::MIN.saturating_since(Millis::MAX).as_millis(),
            i64::MIN
        );
    }

    #[test]
    fn monotonic_never_goes_back() {
        let m = MonotonicNow::new(Millis::from_millis(100));
        assert_eq!(m.clamp(Millis::from_millis(50)), Millis::from_millis(100));
        assert_eq!(m.clamp(Millis::from_millis(200)), Millis::from_millis(200));
        assert_eq!(m.clamp(Millis::from_millis(150)), Millis::from_millis(200));
    }
}
