//! `run-job next <expression>`: when a schedule expression fires, without declarations
//! or a database.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::clock;
use crate::exit::Exit;
use crate::schedule::Schedule;

/// Prints the next `count` fires after `after` (default now).
pub(crate) fn run(expression: &str, after: Option<DateTime<Utc>>, count: u32) -> Exit {
    let schedule = match Schedule::parse(expression) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("run-job: {e}");
            return Exit::Usage;
        }
    };
    let after = after.unwrap_or_else(clock::wall);
    let mut printed = 0;
    for t in schedule.iter_after(after).take(count as usize) {
        println!("{}", t.to_rfc3339_opts(SecondsFormat::Secs, true));
        printed += 1;
    }
    if printed < count {
        eprintln!(
            "run-job: `{expression}` fires only {printed} more time(s) after {}",
            after.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
    }
    Exit::Success
}
