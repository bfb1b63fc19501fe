//! The time decisions are made at, and the only reader of the system clock.
//!
//! A job asks its [`Clock`] for "now" (what is due, what has expired, when to try again)
//! instead of the system. Production runs on the system's time; a person replays a run
//! as if it happened at another instant with `RUN_JOB_NOW` (the clock starts there and
//! moves on at the normal pace); tests freeze the clock or move it forward instead of
//! sleeping while a lease or a backoff runs out. Clones share one time, so a test that
//! advances its clock advances the job's.
//!
//! [`wall`] is the other reading: the real time, for what is not a decision of the job
//! but a record of when the process ran (`job_runs`, the scheduler's next fire) or a
//! field another party checks against its own clock (a token's expiry, an HTTP date).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::{self, Env};

/// The real time. Use [`Clock::now`] for anything a job decides.
pub fn wall() -> DateTime<Utc> {
    Utc::now()
}

/// "Now" for a job's decisions. Cheap to clone; clones share one time.
#[derive(Clone)]
pub struct Clock(Arc<Mode>);

enum Mode {
    /// The wall time moved by an offset (microseconds): zero in production.
    Shifted(AtomicI64),
    /// Stands still at this instant (microseconds since the epoch) until advanced.
    Frozen(AtomicI64),
}

impl Clock {
    /// The system's time.
    pub fn system() -> Clock {
        Clock(Arc::new(Mode::Shifted(AtomicI64::new(0))))
    }

    /// Starts at `at` and moves on with the wall time from there.
    pub fn starting_at(at: DateTime<Utc>) -> Clock {
        Clock(Arc::new(Mode::Shifted(AtomicI64::new(micros(at - wall())))))
    }

    /// Stands at `at` until [`advance`](Clock::advance)d.
    pub fn frozen(at: DateTime<Utc>) -> Clock {
        Clock(Arc::new(Mode::Frozen(AtomicI64::new(
            at.timestamp_micros(),
        ))))
    }

    /// The system's time, or the instant `RUN_JOB_NOW` (RFC 3339) names, moving on from
    /// there.
    pub fn from_env(env: &Env) -> Result<Clock, config::Error> {
        match env("RUN_JOB_NOW") {
            None => Ok(Clock::system()),
            Some(raw) => DateTime::parse_from_rfc3339(raw.trim())
                .map(|at| Clock::starting_at(at.with_timezone(&Utc)))
                .map_err(|e| config::Error {
                    variable: "RUN_JOB_NOW",
                    message: format!("`{raw}` is not an RFC 3339 instant: {e}"),
                }),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &*self.0 {
            Mode::Shifted(offset) => {
                wall() + TimeDelta::microseconds(offset.load(Ordering::Relaxed))
            }
            Mode::Frozen(at) => DateTime::from_timestamp_micros(at.load(Ordering::Relaxed))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// Moves this clock and all its clones forward by `by` (backward if negative).
    pub fn advance(&self, by: TimeDelta) {
        let (Mode::Shifted(t) | Mode::Frozen(t)) = &*self.0;
        t.fetch_add(micros(by), Ordering::Relaxed);
    }

    /// Whether this clock reads the system's time unmoved.
    pub fn is_system(&self) -> bool {
        matches!(&*self.0, Mode::Shifted(o) if o.load(Ordering::Relaxed) == 0)
    }
}

fn micros(d: TimeDelta) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Mode::Shifted(_) if self.is_system() => f.write_str("Clock(system)"),
            Mode::Shifted(_) => write!(f, "Clock(shifted, now {})", self.now()),
            Mode::Frozen(_) => write!(f, "Clock(frozen at {})", self.now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced_and_its_clones_with_it() {
        let clock = Clock::frozen(at("2026-11-30T12:00:00Z"));
        let job_side = clock.clone();
        assert_eq!(job_side.now(), at("2026-11-30T12:00:00Z"));
        clock.advance(TimeDelta::seconds(90));
        assert_eq!(job_side.now(), at("2026-11-30T12:01:30Z"));
    }

    #[test]
    fn run_job_now_starts_the_clock_there_and_it_moves_on() {
        let env = |k: &str| (k == "RUN_JOB_NOW").then(|| "2026-11-25T15:00:00-03:00".into());
        let clock = Clock::from_env(&env).unwrap();
        let lag = clock.now() - at("2026-11-25T18:00:00Z");
        assert!(
            lag >= TimeDelta::zero() && lag < TimeDelta::seconds(5),
            "{lag}"
        );
        assert!(!clock.is_system());
        clock.advance(TimeDelta::hours(1));
        assert!(clock.now() - at("2026-11-25T19:00:00Z") >= TimeDelta::zero());
    }

    #[test]
    fn a_malformed_run_job_now_is_an_error_naming_it() {
        let env = |k: &str| (k == "RUN_JOB_NOW").then(|| "yesterday".into());
        let e = Clock::from_env(&env).unwrap_err();
        assert_eq!(e.variable, "RUN_JOB_NOW");
        assert!(e.message.contains("`yesterday`"), "{e}");
    }

    #[test]
    fn without_run_job_now_it_is_the_system_clock() {
        let clock = Clock::from_env(&|_: &str| None).unwrap();
        assert!(clock.is_system());
        assert!((clock.now() - wall()).abs() < TimeDelta::seconds(1));
    }
}
