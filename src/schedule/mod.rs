//! Schedules in Amazon EventBridge syntax: parsing, validation and next fire times.
//!
//! A job's declaration carries one schedule string, and it means the same thing in
//! production (EventBridge reads it verbatim from the Terraform) and locally (`run-job
//! --schedule`). This module owns that dialect: [`Schedule::parse`] accepts exactly the
//! EventBridge forms and rejects everything else with a message naming the field, the
//! token and its column; [`Schedule::next_after`] evaluates fire times in UTC.
//!
//! It does not run anything: [`local`] translates a schedule into what
//! tokio-cron-scheduler executes, and the scheduler module drives it.
//!
//! # Design
//! `cron(Minutes Hours Day-of-month Month Day-of-week Year)`:
//!
//! | field        | values               | operators          |
//! |--------------|----------------------|--------------------|
//! | minutes      | 0-59                 | `, - * /`          |
//! | hours        | 0-23                 | `, - * /`          |
//! | day-of-month | 1-31                 | `, - * ? / L W`    |
//! | month        | 1-12, JAN-DEC        | `, - * /`          |
//! | day-of-week  | 1-7 (1 = SUN), SUN-SAT | `, - * ? L #`    |
//! | year         | 1970-2199            | `, - * /`          |
//!
//! Exactly one of day-of-month and day-of-week is `?`. `L`, `nW`, `nL` and `n#k` each
//! stand alone in their field (EventBridge allows a single `#` expression per field).
//! Ranges in cyclic fields may wrap (`20-2` in hours, `FRI-MON`), as AWS's own examples
//! do; a year range may not. Names are case-insensitive. Where the EventBridge docs are
//! silent (Quartz's `L-3` and `LW`), the form is rejected rather than guessed at.
//!
//! `rate(N unit)` with unit `minute|minutes|hour|hours|day|days`, singular exactly when
//! N is 1. EventBridge starts a rate at the rule's creation; here rates are anchored to
//! the Unix epoch so that `next` and the local scheduler give reproducible answers.

mod cron;
mod error;
pub mod local;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};

pub use cron::CronExpr;
pub use error::ScheduleError;

/// The longest `ScheduleExpression` EventBridge's API accepts (PutRule and
/// CreateSchedule alike).
const MAX_EXPRESSION_LEN: usize = 256;

/// A parsed EventBridge schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Cron(Box<CronExpr>),
    Rate(Rate),
}

/// `rate(N unit)`: a fixed period, anchored at the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub value: u32,
    pub unit: RateUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Minute,
    Hour,
    Day,
}

impl RateUnit {
    fn seconds(self) -> i64 {
        match self {
            RateUnit::Minute => 60,
            RateUnit::Hour => 3_600,
            RateUnit::Day => 86_400,
        }
    }
}

impl Rate {
    /// Length of one period in seconds.
    pub fn period_seconds(&self) -> i64 {
        i64::from(self.value) * self.unit.seconds()
    }

    fn parse(expr: &str, body: &str, body_column: usize) -> Result<Rate, ScheduleError> {
        let err = |column: usize, message: String| ScheduleError::at(expr, None, column, message);
        let mut parts = body.split(' ');
        let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err(
                body_column,
                format!(
                    "expected `rate(value unit)` with one space between value and unit, found `{body}`"
                ),
            ));
        };
        let unit_column = body_column + value.len() + 1;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                body_column,
                format!("rate value `{value}` is not a positive whole number"),
            ));
        }
        let value: u32 = value
            .parse()
            .map_err(|_| err(body_column, format!("rate value `{value}` is too large")))?;
        if value == 0 {
            return Err(err(
                body_column,
                "rate value must be at least 1".to_string(),
            ));
        }
        let written = unit;
        let (unit, plural) = match unit {
            "minute" => (RateUnit::Minute, false),
            "minutes" => (RateUnit::Minute, true),
            "hour" => (RateUnit::Hour, false),
            "hours" => (RateUnit::Hour, true),
            "day" => (RateUnit::Day, false),
            "days" => (RateUnit::Day, true),
            other => {
                return Err(err(
                    unit_column,
                    format!("unknown rate unit `{other}`; expected minute(s), hour(s) or day(s)"),
                ));
            }
        };
        if plural != (value != 1) {
            let want = if value == 1 { "singular" } else { "plural" };
            return Err(err(
                unit_column,
                format!("a rate of {value} needs the {want} unit, found `{written}`"),
            ));
        }
        let rate = Rate { value, unit };
        // AWS documents no largest rate value (only that the whole expression fits in
        // 256 characters), but a period longer than the calendar EventBridge evaluates
        // (years 1970-2199) can never fire, so it is refused rather than scheduled.
        if rate.period_seconds() >= calendar_end().timestamp() {
            let longest = Rate {
                value: u32::try_from((calendar_end().timestamp() - 1) / unit.seconds())
                    .unwrap_or(u32::MAX),
                unit,
            };
            return Err(err(
                body_column,
                format!(
                    "`{written}` of {value} never fires within EventBridge's calendar (years {}-{}); the longest such rate is {}",
                    cron::YEAR_MIN,
                    cron::YEAR_MAX,
                    Schedule::Rate(longest)
                ),
            ));
        }
        Ok(rate)
    }

    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let period = self.period_seconds();
        let k = after.timestamp().div_euclid(period) + 1;
        DateTime::from_timestamp(k.checked_mul(period)?, 0).filter(|t| *t < calendar_end())
    }
}

/// The first instant after EventBridge's calendar: 2200-01-01T00:00:00Z. No schedule
/// fires at or after it.
fn calendar_end() -> DateTime<Utc> {
    let end = chrono::NaiveDate::from_ymd_opt(cron::YEAR_MAX as i32 + 1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    end.unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Schedule {
    /// Parses an EventBridge schedule expression, rejecting what EventBridge rejects.
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        if expr.chars().count() > MAX_EXPRESSION_LEN {
            return Err(ScheduleError::at(
                expr,
                None,
                MAX_EXPRESSION_LEN + 1,
                format!(
                    "{} characters; EventBridge accepts at most {MAX_EXPRESSION_LEN}",
                    expr.chars().count()
                ),
            ));
        }
        let (kind, body) = expr
            .strip_suffix(')')
            .and_then(|s| s.split_once('('))
            .ok_or_else(|| {
                ScheduleError::at(
                    expr,
                    None,
                    1,
                    "expected `cron(Minutes Hours Day-of-month Month Day-of-week Year)` or `rate(value unit)`"
                        .to_string(),
                )
            })?;
        let body_column = kind.len() + 2;
        match kind {
            "cron" => CronExpr::parse(expr, body, body_column).map(|c| Schedule::Cron(Box::new(c))),
            "rate" => Rate::parse(expr, body, body_column).map(Schedule::Rate),
            other => Err(ScheduleError::at(
                expr,
                None,
                1,
                format!("unknown schedule kind `{other}`; expected `cron(...)` or `rate(...)`"),
            )),
        }
    }

    /// The first fire time strictly after `after`, or `None` if it never fires again
    /// (a cron expression whose years have all passed, or that names a day that never
    /// exists such as 30 February).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(c) => c.next_after(after),
            Schedule::Rate(r) => r.next_after(after),
        }
    }

    /// Fire times strictly after `after`, in order.
    pub fn iter_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let mut cursor = after;
        std::iter::from_fn(move || {
            let next = self.next_after(cursor)?;
            cursor = next;
            Some(next)
        })
    }

    /// Whether the schedule repeats the same way every day or every week, as the
    /// Terraform can read it (schedule.tf): a rate, or a cron with month `*` firing
    /// every day or on weekdays (day-of-month `?`, no `L` or `#`). Its year field is not
    /// looked at ([`Schedule::names_years`]).
    pub fn repeats_weekly(&self) -> bool {
        let Some(f) = self.cron_fields() else {
            return true;
        };
        let any = |s: &str| s == "*" || s == "?";
        f[3] == "*"
            && ((any(f[2]) && any(f[4]))
                || (f[2] == "?" && !f[4].to_uppercase().contains(['L', '#'])))
    }

    /// Whether a cron's year field restricts the years it fires in.
    pub fn names_years(&self) -> bool {
        self.cron_fields().is_some_and(|f| f[5] != "*")
    }

    /// A cron's six fields as written.
    fn cron_fields(&self) -> Option<Vec<&str>> {
        let Schedule::Cron(c) = self else {
            return None;
        };
        let inner = c.source().trim().strip_prefix("cron(")?.strip_suffix(')')?;
        let fields: Vec<&str> = inner.split_whitespace().collect();
        (fields.len() == 6).then_some(fields)
    }

    /// The shortest gap between two fires within the next `horizon` fires, used to
    /// warn when a timeout is longer than the period.
    pub fn shortest_gap(&self, after: DateTime<Utc>, horizon: usize) -> Option<TimeDelta> {
        let times: Vec<_> = self.iter_after(after).take(horizon).collect();
        times.windows(2).map(|w| w[1] - w[0]).min()
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron(c) => write!(f, "{}", c.source()),
            Schedule::Rate(r) => {
                let unit = match r.unit {
                    RateUnit::Minute => "minute",
                    RateUnit::Hour => "hour",
                    RateUnit::Day => "day",
                };
                let s = if r.value == 1 { "" } else { "s" };
                write!(f, "rate({} {unit}{s})", r.value)
            }
        }
    }
}

#[cfg(test)]
mod tests;
