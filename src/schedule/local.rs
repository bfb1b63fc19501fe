//! Translation of an EventBridge schedule into what tokio-cron-scheduler runs.
//!
//! tokio-cron-scheduler parses with croner: seconds first (required), then minutes,
//! hours, day-of-month, month, day-of-week numbered 0-6 from Sunday, and an optional
//! year, with day-of-month AND day-of-week semantics. We emit the seconds as `0`, spell
//! every restricted field as an explicit list of numbers (so wrapping ranges, steps and
//! names never depend on croner's reading of them), shift day-of-week down by one, and
//! keep `L`, `nW`, `nL` and `n#k` as croner spells them. The agreement of the two
//! evaluators is proven by tests over a year of fire times per expression.
//!
//! Rates become cron patterns when their period divides the hour or the day evenly
//! (then epoch-anchored and wall-clock-anchored fires coincide); other rates run as a
//! fixed interval from the scheduler's start, as EventBridge starts them from the
//! rule's creation.

use std::time::Duration;

use super::cron::{DayOfMonth, DayOfWeek, DaySpec, Values};
use super::{CronExpr, Rate, RateUnit, Schedule};

/// What the local scheduler registers for a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalTrigger {
    /// A seven-field croner pattern (`sec min hour dom month dow year`).
    Cron(String),
    /// A fixed interval counted from the scheduler's start.
    Every(Duration),
}

impl Schedule {
    /// The tokio-cron-scheduler form of this schedule.
    pub fn local_trigger(&self) -> LocalTrigger {
        match self {
            Schedule::Cron(c) => LocalTrigger::Cron(cron_pattern(c)),
            Schedule::Rate(r) => rate_trigger(r),
        }
    }
}

fn list(values: &Values, shift: u32) -> String {
    if values.is_full() {
        return "*".to_string();
    }
    values
        .iter()
        .map(|v| (v - shift).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn cron_pattern(c: &CronExpr) -> String {
    let (dom, dow) = match c.days {
        DaySpec::Month(DayOfMonth::Days(v)) => (list(&v, 0), "*".to_string()),
        DaySpec::Month(DayOfMonth::Last) => ("L".to_string(), "*".to_string()),
        DaySpec::Month(DayOfMonth::NearestWeekday(n)) => (format!("{n}W"), "*".to_string()),
        DaySpec::Week(DayOfWeek::Days(v)) => ("*".to_string(), list(&v, 1)),
        DaySpec::Week(DayOfWeek::Last(w)) => ("*".to_string(), format!("{}#L", w - 1)),
        DaySpec::Week(DayOfWeek::Nth(w, k)) => ("*".to_string(), format!("{}#{k}", w - 1)),
    };
    format!(
        "0 {} {} {dom} {} {dow} {}",
        list(&c.minutes, 0),
        list(&c.hours, 0),
        list(&c.months, 0),
        list(&c.years, 0),
    )
}

fn rate_trigger(r: &Rate) -> LocalTrigger {
    let n = r.value;
    let divides = |unit: u32| n < unit && unit.is_multiple_of(n);
    match r.unit {
        RateUnit::Minute if divides(60) => LocalTrigger::Cron(format!("0 0/{n} * * * * *")),
        RateUnit::Minute if n.is_multiple_of(60) && divides_hours(n / 60) => {
            LocalTrigger::Cron(format!("0 0 0/{} * * * *", n / 60))
        }
        RateUnit::Minute if n == 1440 => LocalTrigger::Cron("0 0 0 * * * *".to_string()),
        RateUnit::Hour if divides_hours(n) => LocalTrigger::Cron(format!("0 0 0/{n} * * * *")),
        RateUnit::Hour if n == 24 => LocalTrigger::Cron("0 0 0 * * * *".to_string()),
        RateUnit::Day if n == 1 => LocalTrigger::Cron("0 0 0 * * * *".to_string()),
        _ => LocalTrigger::Every(Duration::from_secs(r.period_seconds() as u64)),
    }
}

fn divides_hours(n: u32) -> bool {
    n < 24 && 24u32.is_multiple_of(n)
}
