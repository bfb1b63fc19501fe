//! Known answers and rejections for the EventBridge dialect, and agreement with the
//! tokio-cron-scheduler translation. Expected fire times were worked out by hand from a
//! calendar, not produced by the evaluator under test.

use chrono::{DateTime, TimeDelta, Utc};
use tokio_cron_scheduler::Job;

use super::local::LocalTrigger;
use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Sunday 2026-03-01, 10:07:30 UTC.
const BASE: &str = "2026-03-01T10:07:30Z";

fn fires(expr: &str, after: &str, n: usize) -> Vec<String> {
    let schedule = Schedule::parse(expr).unwrap_or_else(|e| panic!("{e}"));
    schedule
        .iter_after(t(after))
        .take(n)
        .map(|d| d.format("%Y-%m-%dT%H:%MZ").to_string())
        .collect()
}

/// (expression, start, expected fire times) with every operator and special character.
const KNOWN: &[(&str, &str, &[&str])] = &[
    (
        "cron(* * * * ? *)",
        BASE,
        &[
            "2026-03-01T10:08Z",
            "2026-03-01T10:09Z",
            "2026-03-01T10:10Z",
        ],
    ),
    (
        "cron(0/15 * * * ? *)",
        BASE,
        &[
            "2026-03-01T10:15Z",
            "2026-03-01T10:30Z",
            "2026-03-01T10:45Z",
            "2026-03-01T11:00Z",
        ],
    ),
    (
        "cron(*/5 * * * ? *)",
        BASE,
        &[
            "2026-03-01T10:10Z",
            "2026-03-01T10:15Z",
            "2026-03-01T10:20Z",
        ],
    ),
    (
        "cron(5,35 * * * ? *)",
        BASE,
        &[
            "2026-03-01T10:35Z",
            "2026-03-01T11:05Z",
            "2026-03-01T11:35Z",
        ],
    ),
    (
        "cron(10-12 * * * ? *)",
        BASE,
        &[
            "2026-03-01T10:10Z",
            "2026-03-01T10:11Z",
            "2026-03-01T10:12Z",
            "2026-03-01T11:10Z",
        ],
    ),
    (
        "cron(10-30/10 * * * ? *)",
        BASE,
        &[
            "2026-03-01T10:10Z",
            "2026-03-01T10:20Z",
            "2026-03-01T10:30Z",
            "2026-03-01T11:10Z",
        ],
    ),
    (
        "cron(50-10/10 * * * ? *)",
        BASE,
        &[
            "2026-03-01T10:10Z",
            "2026-03-01T10:50Z",
            "2026-03-01T11:00Z",
            "2026-03-01T11:10Z",
        ],
    ),
    (
        "cron(0 20-2 * * ? *)",
        BASE,
        &[
            "2026-03-01T20:00Z",
            "2026-03-01T21:00Z",
            "2026-03-01T22:00Z",
            "2026-03-01T23:00Z",
            "2026-03-02T00:00Z",
            "2026-03-02T01:00Z",
            "2026-03-02T02:00Z",
            "2026-03-02T20:00Z",
        ],
    ),
    (
        "cron(0 12 * * ? *)",
        BASE,
        &[
            "2026-03-01T12:00Z",
            "2026-03-02T12:00Z",
            "2026-03-03T12:00Z",
        ],
    ),
    (
        "cron(30 9 * * ? *)",
        BASE,
        &["2026-03-02T09:30Z", "2026-03-03T09:30Z"],
    ),
    (
        "cron(0,30 8-17/3 ? * MON-FRI *)",
        BASE,
        &[
            "2026-03-02T08:00Z",
            "2026-03-02T08:30Z",
            "2026-03-02T11:00Z",
            "2026-03-02T11:30Z",
            "2026-03-02T14:00Z",
        ],
    ),
    (
        "cron(0 8 1 * ? *)",
        BASE,
        &[
            "2026-04-01T08:00Z",
            "2026-05-01T08:00Z",
            "2026-06-01T08:00Z",
        ],
    ),
    (
        "cron(0 0 1,15 * ? *)",
        BASE,
        &[
            "2026-03-15T00:00Z",
            "2026-04-01T00:00Z",
            "2026-04-15T00:00Z",
        ],
    ),
    (
        "cron(0 0 1/10 * ? *)",
        BASE,
        &[
            "2026-03-11T00:00Z",
            "2026-03-21T00:00Z",
            "2026-03-31T00:00Z",
            "2026-04-01T00:00Z",
        ],
    ),
    (
        "cron(0 0 28-3 * ? *)",
        BASE,
        &[
            "2026-03-02T00:00Z",
            "2026-03-03T00:00Z",
            "2026-03-28T00:00Z",
        ],
    ),
    (
        "cron(0 0 L * ? *)",
        BASE,
        &[
            "2026-03-31T00:00Z",
            "2026-04-30T00:00Z",
            "2026-05-31T00:00Z",
        ],
    ),
    (
        "cron(0 0 L 2 ? *)",
        BASE,
        &[
            "2027-02-28T00:00Z",
            "2028-02-29T00:00Z",
            "2029-02-28T00:00Z",
        ],
    ),
    (
        "cron(0 9 15W * ? *)",
        BASE,
        &[
            "2026-03-16T09:00Z",
            "2026-04-15T09:00Z",
            "2026-05-15T09:00Z",
        ],
    ),
    (
        "cron(0 9 1W * ? *)",
        BASE,
        &[
            "2026-03-02T09:00Z",
            "2026-04-01T09:00Z",
            "2026-05-01T09:00Z",
        ],
    ),
    (
        "cron(0 9 1W * ? *)",
        "2026-07-15T00:00:00Z",
        &["2026-08-03T09:00Z"],
    ),
    (
        "cron(0 9 31W * ? *)",
        BASE,
        &[
            "2026-03-31T09:00Z",
            "2026-05-29T09:00Z",
            "2026-07-31T09:00Z",
        ],
    ),
    (
        "cron(0 10 ? * 2 *)",
        BASE,
        &[
            "2026-03-02T10:00Z",
            "2026-03-09T10:00Z",
            "2026-03-16T10:00Z",
        ],
    ),
    (
        "cron(0 10 ? * MON-FRI *)",
        BASE,
        &[
            "2026-03-02T10:00Z",
            "2026-03-03T10:00Z",
            "2026-03-04T10:00Z",
        ],
    ),
    (
        "cron(0 10 ? * FRI-MON *)",
        BASE,
        &[
            "2026-03-02T10:00Z",
            "2026-03-06T10:00Z",
            "2026-03-07T10:00Z",
            "2026-03-08T10:00Z",
            "2026-03-09T10:00Z",
        ],
    ),
    (
        "cron(0 10 ? * 1,7 *)",
        BASE,
        &[
            "2026-03-07T10:00Z",
            "2026-03-08T10:00Z",
            "2026-03-14T10:00Z",
        ],
    ),
    (
        "cron(15 10 ? * sun *)",
        BASE,
        &[
            "2026-03-01T10:15Z",
            "2026-03-08T10:15Z",
            "2026-03-15T10:15Z",
        ],
    ),
    (
        "cron(0 10 ? * 6L *)",
        BASE,
        &[
            "2026-03-27T10:00Z",
            "2026-04-24T10:00Z",
            "2026-05-29T10:00Z",
        ],
    ),
    (
        "cron(0 10 ? * 3#2 *)",
        BASE,
        &[
            "2026-03-10T10:00Z",
            "2026-04-14T10:00Z",
            "2026-05-12T10:00Z",
        ],
    ),
    (
        "cron(0 10 ? * 1#1 *)",
        BASE,
        &[
            "2026-04-05T10:00Z",
            "2026-05-03T10:00Z",
            "2026-06-07T10:00Z",
        ],
    ),
    (
        "cron(0 0 ? * 7#5 *)",
        BASE,
        &[
            "2026-05-30T00:00Z",
            "2026-08-29T00:00Z",
            "2026-10-31T00:00Z",
        ],
    ),
    (
        "cron(0 10 ? * L *)",
        BASE,
        &[
            "2026-03-07T10:00Z",
            "2026-03-14T10:00Z",
            "2026-03-21T10:00Z",
        ],
    ),
    (
        "cron(0 0 1 JAN,JUL ? *)",
        BASE,
        &[
            "2026-07-01T00:00Z",
            "2027-01-01T00:00Z",
            "2027-07-01T00:00Z",
        ],
    ),
    (
        "cron(0 0 1 NOV-FEB ? *)",
        BASE,
        &[
            "2026-11-01T00:00Z",
            "2026-12-01T00:00Z",
            "2027-01-01T00:00Z",
            "2027-02-01T00:00Z",
            "2027-11-01T00:00Z",
        ],
    ),
    (
        "cron(0 0 1 1/3 ? *)",
        BASE,
        &[
            "2026-04-01T00:00Z",
            "2026-07-01T00:00Z",
            "2026-10-01T00:00Z",
            "2027-01-01T00:00Z",
        ],
    ),
    ("cron(0 0 1 1 ? 2030)", BASE, &["2030-01-01T00:00Z"]),
    (
        "cron(0 0 1 1 ? 2027-2029)",
        BASE,
        &[
            "2027-01-01T00:00Z",
            "2028-01-01T00:00Z",
            "2029-01-01T00:00Z",
        ],
    ),
    (
        "cron(0 0 1 1 ? 2026/2)",
        BASE,
        &[
            "2028-01-01T00:00Z",
            "2030-01-01T00:00Z",
            "2032-01-01T00:00Z",
        ],
    ),
    (
        "cron(0 0 29 2 ? *)",
        BASE,
        &[
            "2028-02-29T00:00Z",
            "2032-02-29T00:00Z",
            "2036-02-29T00:00Z",
        ],
    ),
    (
        "cron(59 23 31 12 ? *)",
        BASE,
        &["2026-12-31T23:59Z", "2027-12-31T23:59Z"],
    ),
    (
        "cron(0 0 1 1 ? *)",
        "2026-12-31T23:59:59Z",
        &["2027-01-01T00:00Z"],
    ),
    (
        "cron(0/15 * * * ? *)",
        "2026-03-01T10:15:00Z",
        &["2026-03-01T10:30Z"],
    ),
    (
        "rate(1 minute)",
        BASE,
        &["2026-03-01T10:08Z", "2026-03-01T10:09Z"],
    ),
    (
        "rate(5 minutes)",
        BASE,
        &["2026-03-01T10:10Z", "2026-03-01T10:15Z"],
    ),
    (
        "rate(7 minutes)",
        BASE,
        &[
            "2026-03-01T10:08Z",
            "2026-03-01T10:15Z",
            "2026-03-01T10:22Z",
        ],
    ),
    (
        "rate(2 hours)",
        BASE,
        &["2026-03-01T12:00Z", "2026-03-01T14:00Z"],
    ),
    (
        "rate(1 day)",
        BASE,
        &["2026-03-02T00:00Z", "2026-03-03T00:00Z"],
    ),
    (
        "rate(3 days)",
        BASE,
        &[
            "2026-03-02T00:00Z",
            "2026-03-05T00:00Z",
            "2026-03-08T00:00Z",
        ],
    ),
];

#[test]
fn known_fire_times() {
    let distinct: std::collections::BTreeSet<_> = KNOWN.iter().map(|k| k.0).collect();
    assert!(distinct.len() >= 30, "at least 30 distinct expressions");
    for (expr, after, expected) in KNOWN {
        assert_eq!(
            &fires(expr, after, expected.len()),
            expected,
            "{expr} after {after}"
        );
    }
}

#[test]
fn schedules_that_never_fire_again_end() {
    for expr in [
        "cron(0 0 30 2 ? *)",
        "cron(0 0 1 1 ? 1970-1980)",
        "cron(0 0 31 4 ? *)",
    ] {
        assert_eq!(fires(expr, BASE, 1), Vec::<String>::new(), "{expr}");
    }
    assert_eq!(fires("cron(0 0 1 1 ? 2030)", BASE, 2).len(), 1);
    assert_eq!(
        fires("cron(0 12 * * ? 2199)", "2199-12-31T12:00:00Z", 1).len(),
        0
    );
}

#[test]
fn accepts_every_documented_form() {
    for expr in [
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 20-2 ? * MON-FRI *)",
        "cron(*/5 * * * ? *)",
        "cron(0 0 L * ? *)",
        "cron(0 0 3W * ? *)",
        "cron(0 0 ? * 6L *)",
        "cron(0 0 ? * L *)",
        "cron(0 0 1 jan-dec ? 1970-2199)",
        "cron(0 0 ? * sun-sat *)",
        "cron(59 23 31 12 ? 2199)",
        "cron(0 0 1/31 1/12 ? *)",
        "cron(0/59 0/23 * * ? *)",
        "rate(1 minute)",
        "rate(10 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(7 days)",
    ] {
        if let Err(e) = Schedule::parse(expr) {
            panic!("{expr} should be accepted: {e}");
        }
    }
}

/// Each EventBridge rule, broken once: (expression, a fragment the message must contain).
const REJECTED: &[(&str, &str)] = &[
    // Shape.
    ("", "expected `cron("),
    ("0 10 * * ? *", "expected `cron("),
    ("cron(0 10 * * ? *", "expected `cron("),
    ("at(2026-01-01T00:00:00)", "unknown schedule kind `at`"),
    ("cron(0 10 * * ?)", "expected 6 fields"),
    ("cron(0 0 10 * * ? *)", "expected 6 fields"),
    ("cron()", "expected 6 fields"),
    // Exactly one day field is `?`.
    (
        "cron(0 10 * * * *)",
        "one of day-of-month and day-of-week must be `?`",
    ),
    (
        "cron(0 10 1 * MON *)",
        "one of day-of-month and day-of-week must be `?`",
    ),
    ("cron(0 10 ? * ? *)", "both `?`"),
    // `?` only in the day fields.
    (
        "cron(? 10 * * ? *)",
        "`?` is only allowed in day-of-month or day-of-week, not in minutes",
    ),
    ("cron(0 10 * ? ? *)", "`?` is only allowed"),
    ("cron(0 10 ? * MON ?)", "`?` is only allowed"),
    ("cron(0 10 ?,1 * ? *)", "`?` must stand alone"),
    // Ranges of values.
    (
        "cron(60 10 * * ? *)",
        "minutes (column 6): value 60 is out of range 0-59",
    ),
    (
        "cron(0 24 * * ? *)",
        "hours (column 8): value 24 is out of range 0-23",
    ),
    (
        "cron(0 10 0 * ? *)",
        "day-of-month (column 11): value 0 is out of range 1-31",
    ),
    ("cron(0 10 32 * ? *)", "value 32 is out of range 1-31"),
    (
        "cron(0 10 * 13 ? *)",
        "month (column 13): value 13 is out of range 1-12",
    ),
    ("cron(0 10 * 0 ? *)", "value 0 is out of range 1-12"),
    (
        "cron(0 10 ? * 0 *)",
        "day-of-week (column 15): value 0 is out of range 1-7",
    ),
    ("cron(0 10 ? * 8 *)", "value 8 is out of range 1-7"),
    (
        "cron(0 10 * * ? 1969)",
        "year (column 17): value 1969 is out of range 1970-2199",
    ),
    (
        "cron(0 10 * * ? 2200)",
        "value 2200 is out of range 1970-2199",
    ),
    ("cron(-1 10 * * ? *)", "missing value"),
    ("cron(99999999999 10 * * ? *)", "too large"),
    // Names belong to their field.
    (
        "cron(0 10 * MON ? *)",
        "`MON` is not a valid value; expected 1-12 or JAN-DEC",
    ),
    (
        "cron(0 10 ? * JAN *)",
        "`JAN` is not a valid value; expected 1-7 or SUN-SAT",
    ),
    ("cron(0 10 ? * MONDAY *)", "`MONDAY` is not a valid value"),
    (
        "cron(x 10 * * ? *)",
        "`x` is not a valid value; expected a number 0-59",
    ),
    // Lists, ranges and steps.
    ("cron(1,,2 10 * * ? *)", "empty item in list"),
    (
        "cron(1, 10 * * ? *)",
        "minutes (column 8): empty item in list",
    ),
    ("cron(1,2, 10 * * ? *)", "empty item in list"),
    ("cron(0,* 10 * * ? *)", "`*` must stand alone"),
    (
        "cron(0 10 * * ? 2030-2020)",
        "range 2030-2020 runs backwards",
    ),
    ("cron(0/0 10 * * ? *)", "step 0 is out of range 1-59"),
    ("cron(0/60 10 * * ? *)", "step 60 is out of range 1-59"),
    ("cron(0 0/24 * * ? *)", "step 24 is out of range 1-23"),
    ("cron(0 10 1/32 * ? *)", "step 32 is out of range 1-31"),
    ("cron(0 10 1 1/13 ? *)", "step 13 is out of range 1-12"),
    (
        "cron(0/ 10 * * ? *)",
        "step `` is not a positive whole number",
    ),
    (
        "cron(0/x 10 * * ? *)",
        "step `x` is not a positive whole number",
    ),
    ("cron(1-2-3 10 * * ? *)", "not a valid value"),
    // No `/` in day-of-week.
    ("cron(0 10 ? * 1/2 *)", "`/` is not allowed in day-of-week"),
    ("cron(0 10 ? * */2 *)", "`/` is not allowed in day-of-week"),
    // `L` only in the day fields, alone.
    (
        "cron(L 10 * * ? *)",
        "`L` is only allowed in day-of-month or day-of-week, not in minutes",
    ),
    ("cron(0 10 * L ? *)", "`L` is only allowed"),
    (
        "cron(0 10 L,15 * ? *)",
        "`L` must stand alone in day-of-month",
    ),
    (
        "cron(0 10 L-3 * ? *)",
        "`L` must stand alone in day-of-month",
    ),
    ("cron(0 10 LW * ? *)", "`W` takes a single day"),
    ("cron(0 10 ? * 1,6L *)", "`L` takes a single weekday"),
    ("cron(0 10 ? * 8L *)", "value 8 is out of range 1-7"),
    // `W` only in day-of-month, on a single day.
    (
        "cron(0 10 ? * 2W *)",
        "`W` is only allowed in day-of-month, not in day-of-week",
    ),
    (
        "cron(W 10 * * ? *)",
        "`W` is only allowed in day-of-month, not in minutes",
    ),
    ("cron(0 10 1-5W * ? *)", "`W` takes a single day"),
    ("cron(0 10 1,15W * ? *)", "`W` takes a single day"),
    ("cron(0 10 32W * ? *)", "value 32 is out of range 1-31"),
    ("cron(0 10 W * ? *)", "missing value"),
    // `#` only in day-of-week, once, standing alone.
    (
        "cron(0 10 1#2 * ? *)",
        "`#` is only allowed in day-of-week, not in day-of-month",
    ),
    ("cron(0 10 ? * 3#1,6#3 *)", "only one `#` expression"),
    ("cron(0 10 ? * 3#1,5 *)", "only one `#` expression"),
    (
        "cron(0 10 ? * 3#6 *)",
        "the occurrence after `#` must be 1-5",
    ),
    (
        "cron(0 10 ? * 3#0 *)",
        "the occurrence after `#` must be 1-5",
    ),
    ("cron(0 10 ? * 8#1 *)", "value 8 is out of range 1-7"),
    (
        "cron(0 10 ? * 3# *)",
        "the occurrence after `#` must be 1-5",
    ),
    // Rates.
    ("rate(0 minutes)", "at least 1"),
    ("rate(1 minutes)", "needs the singular unit"),
    ("rate(5 minute)", "needs the plural unit"),
    ("rate(2 hour)", "needs the plural unit"),
    ("rate(1 days)", "needs the singular unit"),
    ("rate(5 seconds)", "unknown rate unit `seconds`"),
    ("rate(1 week)", "unknown rate unit `week`"),
    ("rate(-5 minutes)", "not a positive whole number"),
    ("rate(1.5 hours)", "not a positive whole number"),
    ("rate(5minutes)", "expected `rate(value unit)`"),
    ("rate(5  minutes)", "expected `rate(value unit)`"),
    ("rate(5 minutes extra)", "expected `rate(value unit)`"),
    ("rate(99999999999 minutes)", "too large"),
    (
        "rate(4294967295 minutes)",
        "never fires within EventBridge's calendar (years 1970-2199); the longest such rate is rate(120968639 minutes)",
    ),
    (
        "rate(84006 days)",
        "the longest such rate is rate(84005 days)",
    ),
    (
        "rate(2016144 hours)",
        "the longest such rate is rate(2016143 hours)",
    ),
];

#[test]
fn no_schedule_fires_after_eventbridges_last_year() {
    // The longest rate fires once, on the last day of 2199, and never again.
    let longest = Schedule::parse("rate(84005 days)").unwrap();
    assert_eq!(
        longest
            .iter_after(t("2026-11-30T00:00:00Z"))
            .collect::<Vec<_>>(),
        [t("2199-12-31T00:00:00Z")]
    );
    let minutes = Schedule::parse("rate(1 minute)").unwrap();
    assert_eq!(
        minutes
            .iter_after(t("2199-12-31T23:57:30Z"))
            .collect::<Vec<_>>(),
        [t("2199-12-31T23:58:00Z"), t("2199-12-31T23:59:00Z")]
    );
    let every_minute = Schedule::parse("cron(* * * * ? *)").unwrap();
    assert_eq!(every_minute.next_after(t("2199-12-31T23:59:00Z")), None);
}

#[test]
fn expressions_longer_than_eventbridge_accepts_are_refused() {
    let long = format!("cron(0 10 ? * MON{} *)", ",MON".repeat(70));
    let e = Schedule::parse(&long).unwrap_err().to_string();
    assert!(e.contains("EventBridge accepts at most 256"), "{e}");
    // 256 characters exactly is still a schedule.
    let pad = 256 - "cron(0 10 ? * MON *)".len();
    let fits = format!("cron(0 10 ? * MON{} *)", ",MON".repeat(pad / 4));
    assert!(fits.len() <= 256);
    assert!(Schedule::parse(&fits).is_ok(), "{fits}");
}

#[test]
fn rejects_what_eventbridge_rejects_with_what_and_where() {
    for (expr, fragment) in REJECTED {
        match Schedule::parse(expr) {
            Ok(s) => panic!("{expr} should be rejected, parsed as {s:?}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(fragment), "{expr}: `{msg}` lacks `{fragment}`");
                assert!(
                    msg.contains(&format!("`{expr}`")),
                    "{msg} names the expression"
                );
            }
        }
    }
}

#[test]
fn display_round_trips() {
    for expr in ["cron(0/5 * * * ? *)", "rate(1 day)", "rate(15 minutes)"] {
        assert_eq!(Schedule::parse(expr).unwrap().to_string(), expr);
    }
}

/// The croner schedule exactly as tokio-cron-scheduler builds it for a job.
fn tokio_cron_schedule(pattern: &str) -> croner::Cron {
    let mut job = Job::new_async(pattern, |_, _| Box::pin(async {}))
        .unwrap_or_else(|e| panic!("tokio-cron-scheduler rejects {pattern}: {e:?}"));
    job.job_data()
        .expect("job data")
        .schedule()
        .expect("a cron job has a schedule")
}

#[test]
fn tokio_cron_scheduler_agrees_for_a_year_of_fire_times() {
    let start = t("2026-01-01T00:00:00Z");
    let end = start + TimeDelta::days(366);
    let mut expressions: Vec<&str> = KNOWN.iter().map(|k| k.0).collect();
    expressions.extend([
        "cron(0 12 29 2 ? 2028)",
        "cron(0 0 L 2 ? *)",
        "cron(0 9 1W * ? *)",
    ]);
    expressions.sort();
    expressions.dedup();
    let mut compared = 0;
    for expr in expressions {
        let schedule = Schedule::parse(expr).unwrap();
        let LocalTrigger::Cron(pattern) = schedule.local_trigger() else {
            continue; // rate(7 minutes), rate(3 days): interval triggers, tested below
        };
        let ours: Vec<_> = schedule
            .iter_after(start)
            .take_while(|d| *d < end)
            .collect();
        let cron = tokio_cron_schedule(&pattern);
        let theirs: Vec<_> = cron.iter_after(start).take_while(|d| *d < end).collect();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{expr} as `{pattern}`: {} fires vs {}",
            ours.len(),
            theirs.len()
        );
        if let Some((a, b)) = ours.iter().zip(&theirs).find(|(a, b)| a != b) {
            panic!("{expr} as `{pattern}`: first disagreement {a} vs {b}");
        }
        compared += 1;
    }
    assert!(compared >= 30, "compared {compared} expressions");
}

#[test]
fn rates_that_do_not_divide_a_day_run_as_intervals() {
    let every = |e: &str| Schedule::parse(e).unwrap().local_trigger();
    assert_eq!(
        every("rate(7 minutes)"),
        LocalTrigger::Every(std::time::Duration::from_secs(420))
    );
    assert_eq!(
        every("rate(3 days)"),
        LocalTrigger::Every(std::time::Duration::from_secs(3 * 86_400))
    );
    assert_eq!(
        every("rate(5 minutes)"),
        LocalTrigger::Cron("0 0/5 * * * * *".into())
    );
    assert_eq!(
        every("rate(60 minutes)"),
        LocalTrigger::Cron("0 0 0/1 * * * *".into())
    );
    assert_eq!(
        every("rate(24 hours)"),
        LocalTrigger::Cron("0 0 0 * * * *".into())
    );
}
