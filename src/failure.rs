//! What becomes of an item that failed: given up, or tried again by a later run, and when.
//!
//! The one home for that decision, across jobs and their rows (a payment the provider
//! does not know, a notification channel a provider keeps refusing, a row of the `jobs`
//! queue). Each job states its numbers as a [`Backoff`] (the comment beside them says
//! where they differ from the original, and why); this module owns the ladder (waits
//! doubling from `initial` up to `max`, stretched by jitter so items that failed together
//! do not come back together), the attempt limit, and the provider's own `Retry-After`.
//!
//! The in-process retry of one HTTP call (a few seconds, inside one run) is a different
//! concept: `http::retry`. Pure functions: the current time is passed in.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// A ladder of waits between attempts, and how many attempts an item gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub initial: Duration,
    /// The wait never grows past this.
    pub max: Duration,
    /// Each wait is stretched by a random factor in `[1, 1 + jitter)`.
    pub jitter: f64,
    /// Attempts after which the item is given up; `None`: tried until something else
    /// ends it (a payment, until its order expires).
    pub limit: Option<u32>,
}

/// How an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Trying again cannot help (bad input, a refusal that will not change).
    Permanent,
    /// It may work later; the provider may have said when.
    Transient { retry_after: Option<Duration> },
}

/// What to do with the item after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again, not before this instant.
    RetryAt(DateTime<Utc>),
    /// Never again: the failure was permanent.
    Fatal,
    /// Never again: the attempt limit is reached.
    Exhausted,
}

/// The longest a provider's `Retry-After` is believed: beyond a day it is more likely a
/// mistake than a plan, and Resend keeps idempotency keys for 24 hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

impl Backoff {
    /// `attempts` attempts have been made (1 = the first just failed) and the last failed
    /// like `failure`: give up, or try again at the later of the ladder's wait and the
    /// provider's `Retry-After`.
    pub fn decide(&self, now: DateTime<Utc>, attempts: u32, failure: &Failure) -> Decision {
        let retry_after = match failure {
            Failure::Permanent => return Decision::Fatal,
            Failure::Transient { retry_after } => *retry_after,
        };
        if self.exhausted(attempts) {
            return Decision::Exhausted;
        }
        Decision::RetryAt(self.retry_at(now, attempts, retry_after))
    }

    /// When an item that failed for a passing reason may be tried again: the later of the
    /// ladder's wait and the provider's `Retry-After`. What [`Backoff::decide`] answers
    /// for an item it does not give up, and all there is for an item that is never given
    /// up (a payment, whose order's expiry ends its retries; a receipt not yet readable).
    pub fn retry_at(
        &self,
        now: DateTime<Utc>,
        attempts: u32,
        retry_after: Option<Duration>,
    ) -> DateTime<Utc> {
        let ladder = self.next_attempt_at(now, attempts);
        let asked = retry_after
            .map(|a| a.min(MAX_RETRY_AFTER))
            .and_then(|a| TimeDelta::from_std(a).ok())
            .and_then(|a| now.checked_add_signed(a));
        asked.map_or(ladder, |a| a.max(ladder))
    }

    /// Whether `attempts` attempts use up the limit.
    pub fn exhausted(&self, attempts: u32) -> bool {
        self.limit.is_some_and(|limit| attempts >= limit)
    }

    /// When an item that has now failed `failures` times (1 = first failure) may be tried
    /// again, by the ladder alone.
    fn next_attempt_at(&self, now: DateTime<Utc>, failures: u32) -> DateTime<Utc> {
        let doublings = failures.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << doublings).min(self.max);
        let stretched = if self.jitter > 0.0 {
            base.mul_f64(1.0 + self.jitter * fastrand::f64())
        } else {
            base
        };
        now + TimeDelta::from_std(stretched).unwrap_or(TimeDelta::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    const LADDER: Backoff = Backoff {
        initial: Duration::from_secs(5 * 60),
        max: Duration::from_secs(6 * 3600),
        jitter: 0.2,
        limit: None,
    };

    #[test]
    fn waits_double_from_the_initial_and_stop_at_the_cap() {
        let wait = |failures| (LADDER.next_attempt_at(now(), failures) - now()).num_seconds();
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

    #[test]
    fn without_jitter_the_waits_are_exact() {
        let queue = Backoff {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(u32::MAX as u64),
            jitter: 0.0,
            limit: Some(5),
        };
        let waits: Vec<i64> = (1..=5)
            .map(|f| (queue.next_attempt_at(now(), f) - now()).num_minutes())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16]);
    }

    #[test]
    fn a_permanent_failure_is_fatal_and_the_limit_exhausts() {
        let limited = Backoff {
            limit: Some(3),
            ..LADDER
        };
        let transient = Failure::Transient { retry_after: None };
        assert_eq!(
            limited.decide(now(), 1, &Failure::Permanent),
            Decision::Fatal
        );
        assert!(matches!(
            limited.decide(now(), 2, &transient),
            Decision::RetryAt(_)
        ));
        assert_eq!(limited.decide(now(), 3, &transient), Decision::Exhausted);
        assert!(matches!(
            LADDER.decide(now(), 1000, &transient),
            Decision::RetryAt(_)
        ));
    }

    #[test]
    fn retry_after_wins_when_later_and_is_capped_at_a_day() {
        let asked = |secs| Failure::Transient {
            retry_after: Some(Duration::from_secs(secs)),
        };
        let at = |d| match d {
            Decision::RetryAt(t) => (t - now()).num_seconds(),
            other => panic!("{other:?}"),
        };
        assert_eq!(at(LADDER.decide(now(), 1, &asked(3600))), 3600);
        let ladder_first = at(LADDER.decide(now(), 1, &asked(10)));
        assert!((300..=360).contains(&ladder_first), "{ladder_first}");
        assert_eq!(at(LADDER.decide(now(), 1, &asked(10 * 86_400))), 86_400);
    }

    #[test]
    fn an_item_never_given_up_waits_its_ladder_or_what_the_provider_asked() {
        // A payment: no limit, so retry_at is all there is; a rate limit's Retry-After
        // pushes the next attempt past the ladder's first wait, a short one does not.
        let secs = |t: DateTime<Utc>| (t - now()).num_seconds();
        let two_hours = Some(Duration::from_secs(7200));
        assert_eq!(secs(LADDER.retry_at(now(), 1, two_hours)), 7200);
        let short = secs(LADDER.retry_at(now(), 1, Some(Duration::from_secs(1))));
        assert!((300..=360).contains(&short), "{short}");
        let none = secs(LADDER.retry_at(now(), 3, None));
        assert!((1200..=1440).contains(&none), "{none}");
    }
}
