//! Backoff across runs, for a row that keeps failing (a payment the provider does not
//! know, a notification whose provider keeps refusing it).
//!
//! The in-process retry of one HTTP call is `http::retry`; this is the other concept: how
//! long a failing row waits before a later run tries it again, so that stuck rows
//! neither get hammered every run nor starve newer ones. One pure function,
//! [`RowBackoff::next_attempt_at`], with the current time passed in.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowBackoff {
    /// Wait after the first failure.
    pub initial: Duration,
    /// The wait never grows past this.
    pub max: Duration,
    /// Each wait is stretched by a random factor in `[1, 1 + jitter)` so that rows that
    /// failed together do not come back together.
    pub jitter: f64,
}

impl RowBackoff {
    /// 5 min, 10, 20, ... capped at 6 h, +0-20 %.
    pub const DEFAULT: RowBackoff = RowBackoff {
        initial: Duration::from_secs(5 * 60),
        max: Duration::from_secs(6 * 3600),
        jitter: 0.2,
    };

    /// When a row that has now failed `failures` times (1 = first failure) may be tried
    /// again.
    pub fn next_attempt_at(&self, now: DateTime<Utc>, failures: u32) -> DateTime<Utc> {
        let doublings = failures.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << doublings).min(self.max);
        let stretched = base.mul_f64(1.0 + self.jitter * fastrand::f64());
        now + TimeDelta::from_std(stretched).unwrap_or(TimeDelta::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_the_initial_and_stop_at_the_cap() {
        let b = RowBackoff::DEFAULT;
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let wait = |failures| (b.next_attempt_at(now, failures) - now).num_seconds();
        for (failures, base) in [
            (1, 300),
            (2, 600),
            (3, 1200),
            (7, 19200),
            (8, 21600),
            (40, 21600),
        ] {
            let w = wait(failures);
            assert!(
                w >= base && w <= base + base / 5,
                "failure {failures}: waited {w} s, base {base}"
            );
        }
    }
}
