//! Session policy (docs/sessions.md): timeouts, touch throttling, caps and
//! fingerprint binding. A policy that makes no sense is refused when it is
//! built, with an error naming the field.
//!
//! ```
//! use sessionkit_core::policy::Policy;
//! let p = Policy::builder().idle_timeout_secs(1800).absolute_timeout_secs(86_400).build().unwrap();
//! assert_eq!(p.idle_timeout.as_secs(), 1800);
//! assert!(Policy::builder().idle_timeout_secs(10).absolute_timeout_secs(5).build().is_err());
//! ```

use crate::attributes::AttributeLimits;
use crate::time::DurationMs;

/// What happens when a subject is at its session cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSessionLimit {
    /// Revoke the session with the oldest `last_seen_at` (reason `evicted`).
    EvictOldest,
    /// Refuse the new session (`session_limit_reached`).
    Refuse,
}

/// Whether sessions are bound to the client's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintMode {
    /// Not checked.
    Off,
    /// A mismatch is logged and counted, the session stays valid.
    Report,
    /// A mismatch makes the token invalid.
    Enforce,
}

/// A policy field that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy field `{field}`: {why}")]
pub struct PolicyError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub why: &'static str,
}

/// The session policy. Build it with [`Policy::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// Sliding idle timeout of authenticated sessions.
    pub idle_timeout: DurationMs,
    /// Hard cap on the life of authenticated sessions.
    pub absolute_timeout: DurationMs,
    /// Idle timeout of anonymous sessions.
    pub anonymous_idle_timeout: DurationMs,
    /// Absolute timeout of anonymous sessions.
    pub anonymous_absolute_timeout: DurationMs,
    /// Least time between two touches of a session.
    pub touch_interval: DurationMs,
    /// Most live sessions per subject (`None`: no cap).
    pub max_sessions_per_subject: Option<u32>,
    /// What to do at that cap.
    pub on_session_limit: OnSessionLimit,
    /// Most active anonymous sessions per tenant (`None`: no cap). Active
    /// means not revoked and not yet purged: expired ones free their slots
    /// when the periodic purge removes them.
    pub max_anonymous_sessions: Option<u64>,
    /// Caps on attributes.
    pub attributes: AttributeLimits,
    /// Fingerprint binding.
    pub fingerprint: FingerprintMode,
    /// Whether the fingerprint covers the client IP too (off by default:
    /// mobile clients change IP all the time).
    pub fingerprint_includes_ip: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            idle_timeout: DurationMs::from_secs(30 * 60),
            absolute_timeout: DurationMs::from_secs(30 * 24 * 3600),
            anonymous_idle_timeout: DurationMs::from_secs(24 * 3600),
            anonymous_absolute_timeout: DurationMs::from_secs(7 * 24 * 3600),
            touch_interval: DurationMs::from_secs(60),
            max_sessions_per_subject: Some(100),
            on_session_limit: OnSessionLimit::EvictOldest,
            max_anonymous_sessions: Some(10_000_000),
            attributes: AttributeLimits::default(),
            fingerprint: FingerprintMode::Off,
            fingerprint_includes_ip: false,
        }
    }
}

impl Policy {
    /// A builder starting from the defaults.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder(Policy::default(), false)
    }

    /// Checks every field; the first bad one is named.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let err = |field, why| Err(PolicyError { field, why });
        let positive = [
            ("idle_timeout", self.idle_timeout),
            ("absolute_timeout", self.absolute_timeout),
            ("anonymous_idle_timeout", self.anonymous_idle_timeout),
            (
                "anonymous_absolute_timeout",
                self.anonymous_absolute_timeout,
            ),
            ("touch_interval", self.touch_interval),
        ];
        for (field, d) in positive {
            if d.as_millis() <= 0 {
                return err(field, "must be at least 1 second");
            }
        }
        if self.idle_timeout > self.absolute_timeout {
            return err("idle_timeout", "must not exceed absolute_timeout");
        }
        if self.anonymous_idle_timeout > self.anonymous_absolute_timeout {
            return err(
                "anonymous_idle_timeout",
                "must not exceed anonymous_absolute_timeout",
            );
        }
        if self.touch_interval > self.idle_timeout.half() {
            return err("touch_interval", "must be at most half of idle_timeout");
        }
        if self.touch_interval > self.anonymous_idle_timeout.half() {
            return err(
                "touch_interval",
                "must be at most half of anonymous_idle_timeout",
            );
        }
        if self.max_sessions_per_subject == Some(0) {
            return err("max_sessions_per_subject", "must be at least 1 (or no cap)");
        }
        if self.max_anonymous_sessions == Some(0) {
            return err("max_anonymous_sessions", "must be at least 1 (or no cap)");
        }
        if self.attributes.max_bytes < 2 {
            return err("attributes.max_bytes", "must be at least 2 (`{}`)");
        }
        if self.attributes.max_depth == 0 {
            return err("attributes.max_depth", "must be at least 1");
        }
        Ok(())
    }

    /// Idle and absolute timeouts for a session with or without a subject.
    #[must_use]
    pub fn timeouts(&self, anonymous: bool) -> (DurationMs, DurationMs) {
        if anonymous {
            (self.anonymous_idle_timeout, self.anonymous_absolute_timeout)
        } else {
            (self.idle_timeout, self.absolute_timeout)
        }
    }
}

/// Builds a [`Policy`]; [`PolicyBuilder::build`] validates it. Unless set,
/// the touch interval is derived from the idle timeouts: the default (60 s),
/// or half the shorter idle timeout when that is less.
#[derive(Debug, Clone)]
#[must_use]
pub struct PolicyBuilder(Policy, bool);

impl PolicyBuilder {
    /// Sliding idle timeout, seconds.
    pub fn idle_timeout_secs(mut self, s: u64) -> Self {
        self.0.idle_timeout = DurationMs::from_secs(s);
        self
    }
    /// Absolute timeout, seconds.
    pub fn absolute_timeout_secs(mut self, s: u64) -> Self {
        self.0.absolute_timeout = DurationMs::from_secs(s);
        self
    }
    /// Anonymous idle timeout, seconds.
    pub fn anonymous_idle_timeout_secs(mut self, s: u64) -> Self {
        self.0.anonymous_idle_timeout = DurationMs::from_secs(s);
        self
    }
    /// Anonymous absolute timeout, seconds.
    pub fn anonymous_absolute_timeout_secs(mut self, s: u64) -> Self {
        self.0.anonymous_absolute_timeout = DurationMs::from_secs(s);
        self
    }
    /// Touch interval, seconds.
    pub fn touch_interval_secs(mut self, s: u64) -> Self {
        self.0.touch_interval = DurationMs::from_secs(s);
        self.1 = true;
        self
    }
    /// Per-subject cap and what to do at it.
    pub fn max_sessions_per_subject(mut self, max: Option<u32>, on_limit: OnSessionLimit) -> Self {
        self.0.max_sessions_per_subject = max;
        self.0.on_session_limit = on_limit;
        self
    }
    /// Cap on live anonymous sessions per tenant.
    pub fn max_anonymous_sessions(mut self, max: Option<u64>) -> Self {
        self.0.max_anonymous_sessions = max;
        self
    }
    /// Attribute caps.
    pub fn attribute_limits(mut self, lim: AttributeLimits) -> Self {
        self.0.attributes = lim;
        self
    }
    /// Fingerprint binding, and whether it covers the IP.
    pub fn fingerprint(mut self, mode: FingerprintMode, include_ip: bool) -> Self {
        self.0.fingerprint = mode;
        self.0.fingerprint_includes_ip = include_ip;
        self
    }
    /// Validates and returns the policy.
    pub fn build(mut self) -> Result<Policy, PolicyError> {
        if !self.1 {
            let p = &mut self.0;
            p.touch_interval = p
                .touch_interval
                .min(p.idle_timeout.half())
                .min(p.anonymous_idle_timeout.half());
        }
        self.0.validate()?;
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_touch_interval_follows_a_short_idle_timeout() {
        let p = Policy::builder().idle_timeout_secs(2).build().unwrap();
        assert_eq!(p.touch_interval, DurationMs::from_secs(1));
        let p = Policy::builder().idle_timeout_secs(3600).build().unwrap();
        assert_eq!(p.touch_interval, DurationMs::from_secs(60));
        // Set explicitly, it is checked, not adjusted.
        assert!(
            Policy::builder()
                .idle_timeout_secs(2)
                .touch_interval_secs(60)
                .build()
                .is_err()
        );
    }

    #[test]
    fn defaults_are_valid() {
        Policy::default().validate().unwrap();
    }

    #[test]
    fn nonsense_is_named() {
        let e = Policy::builder().idle_timeout_secs(0).build().unwrap_err();
        assert_eq!(e.field, "idle_timeout");
        let e = Policy::builder()
            .idle_timeout_secs(100)
            .touch_interval_secs(51)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "touch_interval");
        let e = Policy::builder()
            .max_sessions_per_subject(Some(0), OnSessionLimit::Refuse)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "max_sessions_per_subject");
        let e = Policy::builder()
            .max_anonymous_sessions(Some(0))
            .build()
            .unwrap_err();
        assert_eq!(e.field, "max_anonymous_sessions");
        let e = Policy::builder()
            .anonymous_idle_timeout_secs(10)
            .anonymous_absolute_timeout_secs(5)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "anonymous_idle_timeout");
        // Huge values saturate instead of overflowing.
        assert!(
            Policy::builder()
                .absolute_timeout_secs(u64::MAX)
                .build()
                .is_ok()
        );
    }
}
