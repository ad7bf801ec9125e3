//! RFC 3339 UTC timestamps with milliseconds (`2026-01-02T03:04:05.678Z`),
//! formatted without `fmt` machinery: five of them go into every session
//! on the validate hot path. Same output as
//! [`Millis::to_rfc3339`](sessionkit_core::Millis::to_rfc3339) (checked in
//! a test), including its clamp to the years 0000–9999.

use sessionkit_core::Millis;

const MIN_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

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

/// A formatted timestamp, serialised as a JSON string without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ts([u8; 24]);

impl Ts {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Ts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Formats `t` as RFC 3339 UTC with milliseconds.
#[must_use]
pub fn rfc3339(t: Millis) -> String {
    ts(t).as_str().to_owned()
}

/// Formats `t` as RFC 3339 UTC with milliseconds, on the stack.
#[must_use]
pub fn ts(t: Millis) -> Ts {
    let ms = t.as_millis().clamp(MIN_MS, MAX_MS);
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
    Ts(b)
}

/// A session id in its hyphenated lowercase form, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdText([u8; 36]);

impl IdText {
    /// Formats an id.
    #[must_use]
    pub fn new(id: &sessionkit_core::SessionId) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in id.as_bytes().iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0xf)];
            at += 2;
        }
        IdText(out)
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for IdText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for IdText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_the_core_formatter() {
        let mut samples = vec![
            0,
            1,
            -1,
            MIN_MS,
            MAX_MS,
            i64::MIN,
            i64::MAX,
            951_782_400_000,   // 2000-02-29
            4_107_542_399_999, // 2100-02-28T23:59:59.999
            1_800_000_000_123,
            -62_135_596_800_001, // just before year 1
        ];
        let mut x: i64 = 0x1234_5678_9abc;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            samples.push(x % (MAX_MS + 10_000_000));
        }
        for _ in 0..100 {
            let id = sessionkit_core::SessionId::generate();
            assert_eq!(IdText::new(&id).as_str(), id.to_string());
        }
        for ms in samples {
            let t = Millis::from_millis(ms);
            assert_eq!(rfc3339(t), t.to_rfc3339(), "{ms}");
        }
    }
}
