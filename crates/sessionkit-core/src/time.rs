//! Time inside sessionkit: an `i64` count of Unix milliseconds ([`Millis`]),
//! a [`Clock`] that can be injected, and [`ManualClock`] for tests.
//!
//! All deadline arithmetic is checked and saturating: no TTL, however large,
//! can make it overflow or panic. The engine clamps the clock so that its
//! `now` never goes backwards (see docs/architecture.md, invariants); stores never read
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

    /// Formats as RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`),
    /// on the stack and without `fmt` machinery (this runs five times per
    /// session on the validate path of the server). Instants outside the
    /// years 0000–9999 are clamped into that range.
    #[must_use]
    pub fn rfc3339(self) -> Rfc3339 {
        const MIN_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
        const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let ms = self.0.clamp(MIN_MS, MAX_MS);
        let days = ms.div_euclid(86_400_000);
        let rem = ms.rem_euclid(86_400_000);
        let (y, mo, d) = civil_from_days(days);
        let secs = (rem / 1000) as u32;
        let milli = (rem % 1000) as u32;
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let y = y.clamp(0, 9999) as u32;
        push2(&mut b, 0, y / 100);
        push2(&mut b, 2, y % 100);
        push2(&mut b, 5, mo);
        push2(&mut b, 8, d);
        push2(&mut b, 11, secs / 3600);
        push2(&mut b, 14, secs / 60 % 60);
        push2(&mut b, 17, secs % 60);
        b[20] = b'0' + (milli / 100) as u8;
        push2(&mut b, 21, milli % 100);
        Rfc3339(b)
    }

    /// [`Millis::rfc3339`] as a `String`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        self.rfc3339().as_str().to_owned()
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn push2(out: &mut [u8], at: usize, v: u32) {
    out[at] = b'0' + (v / 10 % 10) as u8;
    out[at + 1] = b'0' + (v % 10) as u8;
}

/// An RFC 3339 timestamp with milliseconds, formatted on the stack; it
/// serialises as a JSON string without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339([u8; 24]);

impl Rfc3339 {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
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
        // Read first: the shared value changes about once a millisecond, so
        // most calls need no write to a cache line every core shares.
        let high = self.high.load(Ordering::Acquire);
        if reading.0 <= high {
            return Millis(high);
        }
        let prev = self.high.fetch_max(reading.0, Ordering::AcqRel);
        Millis(prev.max(reading.0))
    }

    /// The highest value handed out so far.
    #[must_use]
    pub fn high_water(&self) -> Millis {
        Millis(self.high.load(Ordering::Acquire))
    }
}

/// Returns `Pending` once, waking itself: lets the executor run other tasks
/// (a runtime-agnostic `yield_now`, for long loops in stores and the engine
/// that never wait on I/O).
pub async fn yield_now() {
    YieldNow(false).await;
}

struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
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

    /// The hand-rolled formatter agrees with the `time` crate everywhere in
    /// range, and clamps outside it.
    #[test]
    fn rfc3339_matches_the_time_crate() {
        let reference = |ms: i64| {
            let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                dt.millisecond()
            )
        };
        let mut samples = vec![
            0,
            1,
            -1,
            -62_167_219_200_000,
            253_402_300_799_999,
            951_782_400_000,
            4_107_542_399_999,
            -62_135_596_800_001,
        ];
        let mut x: i64 = 0x1234_5678_9abc;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            samples
                .push(x.rem_euclid(253_402_300_799_999 + 62_167_219_200_000) - 62_167_219_200_000);
        }
        for ms in samples {
            assert_eq!(Millis::from_millis(ms).to_rfc3339(), reference(ms), "{ms}");
        }
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
