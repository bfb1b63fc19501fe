//! `cron(...)` expressions: the six-field grammar, its validation, and the evaluator.
//!
//! Each field becomes a set of allowed values; the two day fields become a [`DaySpec`],
//! because `L`, `W` and `#` depend on the month and cannot be a plain set. Evaluation
//! walks forward a day at a time (jumping whole months and years that cannot match), so
//! even a schedule that fires once in a century answers quickly.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Timelike, Utc};

use super::error::ScheduleError;

pub(crate) const YEAR_MIN: u32 = 1970;
pub(crate) const YEAR_MAX: u32 = 2199;

/// A set of small integers in `min..=min+255`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Values {
    min: u32,
    max: u32,
    bits: [u64; 4],
}

impl Values {
    fn empty(min: u32, max: u32) -> Values {
        Values {
            min,
            max,
            bits: [0; 4],
        }
    }

    fn full(min: u32, max: u32) -> Values {
        let mut v = Values::empty(min, max);
        for x in min..=max {
            v.insert(x);
        }
        v
    }

    fn insert(&mut self, value: u32) {
        let i = (value - self.min) as usize;
        self.bits[i / 64] |= 1 << (i % 64);
    }

    pub(crate) fn contains(&self, value: u32) -> bool {
        if value < self.min || value > self.max {
            return false;
        }
        let i = (value - self.min) as usize;
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    pub(crate) fn is_full(&self) -> bool {
        (self.min..=self.max).all(|v| self.contains(v))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (self.min..=self.max).filter(|v| self.contains(*v))
    }

    fn first_at_or_after(&self, value: u32) -> Option<u32> {
        (value.max(self.min)..=self.max).find(|v| self.contains(*v))
    }
}

/// The day part of a cron expression: exactly one of the two day fields is `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DaySpec {
    /// Day-of-week is `?`.
    Month(DayOfMonth),
    /// Day-of-month is `?`.
    Week(DayOfWeek),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayOfMonth {
    Days(Values),
    /// `L`: the last day of the month.
    Last,
    /// `nW`: the weekday (Mon-Fri) nearest day n, never leaving the month.
    NearestWeekday(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayOfWeek {
    /// EventBridge numbering: 1 = Sunday ... 7 = Saturday.
    Days(Values),
    /// `nL`: the last weekday n of the month.
    Last(u32),
    /// `n#k`: the k-th weekday n of the month.
    Nth(u32, u32),
}

/// A validated `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: String,
    pub(crate) minutes: Values,
    pub(crate) hours: Values,
    pub(crate) days: DaySpec,
    pub(crate) months: Values,
    pub(crate) years: Values,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    cyclic: bool,
}

const MINUTES: Field = Field {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
    cyclic: true,
};
const HOURS: Field = Field {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
    cyclic: true,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    cyclic: true,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    cyclic: true,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    cyclic: true,
};
const YEAR: Field = Field {
    name: "year",
    min: YEAR_MIN,
    max: YEAR_MAX,
    names: &[],
    cyclic: false,
};

/// Parsing context for one field: where it sits in the whole expression.
struct Cursor<'a> {
    expr: &'a str,
    field: &'a Field,
    column: usize,
}

impl Cursor<'_> {
    fn err(&self, offset: usize, reason: String) -> ScheduleError {
        ScheduleError::at(
            self.expr,
            Some(self.field.name),
            self.column + offset,
            reason,
        )
    }

    fn value(&self, token: &str, offset: usize) -> Result<u32, ScheduleError> {
        let f = self.field;
        if token.is_empty() {
            return Err(self.err(offset, "missing value".to_string()));
        }
        if token.bytes().all(|b| b.is_ascii_digit()) {
            let v: u32 = token
                .parse()
                .map_err(|_| self.err(offset, format!("value `{token}` is too large")))?;
            if v < f.min || v > f.max {
                return Err(self.err(
                    offset,
                    format!("value {v} is out of range {}-{}", f.min, f.max),
                ));
            }
            return Ok(v);
        }
        if let Some(i) = f.names.iter().position(|n| n.eq_ignore_ascii_case(token)) {
            return Ok(f.min + i as u32);
        }
        for special in ['?', 'L', 'W', '#', '*'] {
            if token.contains(special) {
                return Err(self.err(offset, special_misuse(special, f.name)));
            }
        }
        let hint = if f.names.is_empty() {
            format!("expected a number {}-{}", f.min, f.max)
        } else {
            format!(
                "expected {}-{} or {}-{}",
                f.min,
                f.max,
                f.names[0],
                f.names[f.names.len() - 1]
            )
        };
        Err(self.err(offset, format!("`{token}` is not a valid value; {hint}")))
    }

    /// `*`, or a list of `a`, `a-b`, `a/s`, `a-b/s`, `*/s`.
    fn set(&self, text: &str) -> Result<Values, ScheduleError> {
        let f = self.field;
        if text == "*" {
            return Ok(Values::full(f.min, f.max));
        }
        let mut values = Values::empty(f.min, f.max);
        let mut offset = 0;
        for item in text.split(',') {
            self.item(item, offset, &mut values)?;
            offset += item.len() + 1;
        }
        Ok(values)
    }

    fn item(&self, item: &str, offset: usize, values: &mut Values) -> Result<(), ScheduleError> {
        let f = self.field;
        if item.is_empty() {
            return Err(self.err(offset, "empty item in list".to_string()));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step_offset = offset + range.len() + 1;
                if f.name == DAY_OF_WEEK.name {
                    return Err(self.err(
                        offset + range.len(),
                        "`/` is not allowed in day-of-week".to_string(),
                    ));
                }
                if step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(self.err(
                        step_offset,
                        format!("step `{step}` is not a positive whole number"),
                    ));
                }
                // Quartz (and so EventBridge) caps an increment at the field's maximum.
                let cap = if f.cyclic { f.max } else { f.max - f.min + 1 };
                let s: u32 = step.parse().unwrap_or(u32::MAX);
                if s == 0 || s > cap {
                    return Err(
                        self.err(step_offset, format!("step {step} is out of range 1-{cap}"))
                    );
                }
                (range, Some(s))
            }
            None => (item, None),
        };
        if range == "*" && step.is_none() {
            return Err(self.err(offset, "`*` must stand alone in its field".to_string()));
        }
        let (start, end) = if range == "*" {
            (f.min, f.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let start = self.value(a, offset)?;
            let end = self.value(b, offset + a.len() + 1)?;
            if start > end && !f.cyclic {
                return Err(self.err(offset, format!("range {start}-{end} runs backwards")));
            }
            (start, end)
        } else {
            let start = self.value(range, offset)?;
            match step {
                Some(_) => (start, f.max),
                None => (start, start),
            }
        };
        let step = step.unwrap_or(1);
        // A wrapping range (`20-2`) runs to the maximum and continues from the minimum.
        let span = if end >= start {
            end - start
        } else {
            (f.max - start) + (end - f.min) + 1
        };
        let width = f.max - f.min + 1;
        let mut k = 0;
        while k <= span {
            values.insert(f.min + (start - f.min + k) % width);
            k += step;
        }
        Ok(())
    }
}

fn special_misuse(special: char, field: &str) -> String {
    let day_field = field == DAY_OF_MONTH.name || field == DAY_OF_WEEK.name;
    match special {
        '?' if day_field => "`?` must stand alone in its field".to_string(),
        '?' => format!("`?` is only allowed in day-of-month or day-of-week, not in {field}"),
        'L' if day_field => {
            "`L` must stand alone in its field (`L`, or `nL` in day-of-week)".to_string()
        }
        'L' => format!("`L` is only allowed in day-of-month or day-of-week, not in {field}"),
        'W' if field == DAY_OF_MONTH.name => {
            "`W` takes a single day and stands alone (for example `15W`)".to_string()
        }
        'W' => format!("`W` is only allowed in day-of-month, not in {field}"),
        '#' if field == DAY_OF_WEEK.name => {
            "only one `#` expression is allowed, standing alone (for example `3#2`)".to_string()
        }
        '#' => format!("`#` is only allowed in day-of-week, not in {field}"),
        _ => "`*` must stand alone in its field or start a step (`*/n`)".to_string(),
    }
}

impl CronExpr {
    pub(super) fn parse(
        expr: &str,
        body: &str,
        body_column: usize,
    ) -> Result<CronExpr, ScheduleError> {
        let mut fields = Vec::with_capacity(6);
        let mut start = None;
        for (i, c) in body.char_indices().chain([(body.len(), ' ')]) {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    fields.push((&body[s..i], body_column + s));
                    start = None;
                }
                _ => {}
            }
        }
        if fields.len() != 6 {
            return Err(ScheduleError::at(
                expr,
                None,
                body_column,
                format!(
                    "expected 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), found {}",
                    fields.len()
                ),
            ));
        }
        let cursor = |i: usize, field| Cursor {
            expr,
            field,
            column: fields[i].1,
        };
        let minutes = cursor(0, &MINUTES).set(fields[0].0)?;
        let hours = cursor(1, &HOURS).set(fields[1].0)?;
        let months = cursor(3, &MONTH).set(fields[3].0)?;
        let years = cursor(5, &YEAR).set(fields[5].0)?;
        let (dom, dow) = (fields[2].0, fields[4].0);
        let days = match (dom == "?", dow == "?") {
            (true, true) => {
                return Err(ScheduleError::at(
                    expr,
                    Some(DAY_OF_WEEK.name),
                    fields[4].1,
                    "day-of-month and day-of-week are both `?`; exactly one of them must be `?`"
                        .to_string(),
                ));
            }
            (false, false) => {
                return Err(ScheduleError::at(
                    expr,
                    Some(DAY_OF_WEEK.name),
                    fields[4].1,
                    "one of day-of-month and day-of-week must be `?` when the other is set (use `?` in one of them)"
                        .to_string(),
                ));
            }
            (false, true) => DaySpec::Month(day_of_month(&cursor(2, &DAY_OF_MONTH), dom)?),
            (true, false) => DaySpec::Week(day_of_week(&cursor(4, &DAY_OF_WEEK), dow)?),
        };
        Ok(CronExpr {
            source: expr.to_string(),
            minutes,
            hours,
            days,
            months,
            years,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Fire times are whole minutes strictly after `after`.
        let floor = after.with_second(0)?.with_nanosecond(0)?;
        let start = floor + chrono::TimeDelta::minutes(1);
        let mut date = start.date_naive();
        let mut first_time = Some((start.hour(), start.minute()));
        loop {
            let year = date.year() as u32;
            if year > YEAR_MAX {
                return None;
            }
            if !self.years.contains(year) {
                let next = self.years.first_at_or_after(year + 1)?;
                date = NaiveDate::from_ymd_opt(next as i32, 1, 1)?;
                first_time = None;
                continue;
            }
            if !self.months.contains(date.month()) {
                date = first_of_next_month(date)?;
                first_time = None;
                continue;
            }
            if self.day_matches(date)
                && let Some((h, m)) = self.first_time_of_day(first_time.unwrap_or((0, 0)))
            {
                let t = NaiveTime::from_hms_opt(h, m, 0)?;
                return Some(date.and_time(t).and_utc());
            }
            date = date.checked_add_days(Days::new(1))?;
            first_time = None;
        }
    }

    fn first_time_of_day(&self, (hour, minute): (u32, u32)) -> Option<(u32, u32)> {
        if self.hours.contains(hour)
            && let Some(m) = self.minutes.first_at_or_after(minute)
        {
            return Some((hour, m));
        }
        let h = self.hours.first_at_or_after(hour + 1)?;
        Some((h, self.minutes.first_at_or_after(0)?))
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = date.day();
        let last = days_in_month(date);
        match self.days {
            DaySpec::Month(DayOfMonth::Days(v)) => v.contains(day),
            DaySpec::Month(DayOfMonth::Last) => day == last,
            DaySpec::Month(DayOfMonth::NearestWeekday(n)) => {
                n <= last && day == nearest_weekday(date.with_day(n).unwrap_or(date), last)
            }
            DaySpec::Week(dow) => {
                let weekday = date.weekday().number_from_sunday();
                match dow {
                    DayOfWeek::Days(v) => v.contains(weekday),
                    DayOfWeek::Last(w) => weekday == w && day + 7 > last,
                    DayOfWeek::Nth(w, k) => weekday == w && (day - 1) / 7 + 1 == k,
                }
            }
        }
    }
}

fn day_of_month(c: &Cursor, text: &str) -> Result<DayOfMonth, ScheduleError> {
    if text == "L" || text == "l" {
        return Ok(DayOfMonth::Last);
    }
    if let Some(day) = text.strip_suffix(['W', 'w']) {
        if day.contains([',', '-', '/', '*', 'L', 'l']) {
            return Err(c.err(
                0,
                format!("`{text}`: `W` takes a single day (for example `15W`) and stands alone"),
            ));
        }
        return Ok(DayOfMonth::NearestWeekday(c.value(day, 0)?));
    }
    if text.contains(['L', 'l']) {
        return Err(c.err(
            0,
            format!("`{text}`: `L` must stand alone in day-of-month (the last day of the month)"),
        ));
    }
    if text.contains('#') {
        return Err(c.err(0, special_misuse('#', c.field.name)));
    }
    c.set(text).map(DayOfMonth::Days)
}

fn day_of_week(c: &Cursor, text: &str) -> Result<DayOfWeek, ScheduleError> {
    if text == "L" || text == "l" {
        // Quartz semantics, which EventBridge follows: `L` alone is the last day of the
        // week, Saturday.
        return Ok(DayOfWeek::Days({
            let mut v = Values::empty(1, 7);
            v.insert(7);
            v
        }));
    }
    if let Some((day, nth)) = text.split_once('#') {
        if day.contains([',', '-', '/', '*']) || nth.contains([',', '#']) {
            return Err(c.err(
                0,
                format!("`{text}`: only one `#` expression is allowed, standing alone (for example `3#2`)"),
            ));
        }
        let weekday = c.value(day, 0)?;
        let k_offset = day.len() + 1;
        let k: u32 = match nth.parse() {
            Ok(k) if (1..=5).contains(&k) && nth.bytes().all(|b| b.is_ascii_digit()) => k,
            _ => {
                return Err(c.err(
                    k_offset,
                    format!("`#{nth}`: the occurrence after `#` must be 1-5"),
                ));
            }
        };
        return Ok(DayOfWeek::Nth(weekday, k));
    }
    if let Some(day) = text.strip_suffix(['L', 'l'])
        && !day.is_empty()
    {
        if day.contains([',', '-', '/', '*']) {
            return Err(c.err(
                0,
                format!("`{text}`: `L` takes a single weekday (for example `6L`) and stands alone"),
            ));
        }
        return Ok(DayOfWeek::Last(c.value(day, 0)?));
    }
    c.set(text).map(DayOfWeek::Days)
}

fn days_in_month(date: NaiveDate) -> u32 {
    first_of_next_month(date)
        .and_then(|d| d.pred_opt())
        .map_or(31, |d| d.day())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    let (y, m) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
}

/// The weekday nearest `target` without leaving its month (Quartz's `W`).
fn nearest_weekday(target: NaiveDate, last: u32) -> u32 {
    let day = target.day();
    match target.weekday().number_from_sunday() {
        // Saturday: the Friday before, unless that is last month, then the Monday after.
        7 if day == 1 => 3,
        7 => day - 1,
        // Sunday: the Monday after, unless that is next month, then the Friday before.
        1 if day == last => day - 2,
        1 => day + 1,
        _ => day,
    }
}
