//! Fuzzes the EventBridge schedule parser and evaluator.
//!
//! For any input: parsing never panics. For an accepted schedule: it prints back as
//! written (rates normalised), its fire times strictly increase after any instant, and
//! tokio-cron-scheduler accepts its local translation and agrees on the first fires.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use run_job::schedule::Schedule;
use run_job::schedule::local::LocalTrigger;

const STARTS: [i64; 3] = [0, 1_772_359_650, 4_102_444_799]; // 1970, 2026-03-01, 2099-12-31

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Steer towards the grammar: half the inputs get the cron( ) wrapper for free.
    let wrapped;
    let text = if data.first().is_some_and(|b| b & 1 == 1) && !text.starts_with("rate(") {
        wrapped = format!("cron({text})");
        wrapped.as_str()
    } else {
        text
    };
    let Ok(schedule) = Schedule::parse(text) else { return };
    let again = Schedule::parse(&schedule.to_string()).expect("a printed schedule parses");
    assert_eq!(again, schedule);

    let pattern = match schedule.local_trigger() {
        LocalTrigger::Cron(p) => Some(p),
        LocalTrigger::Every(_) => None,
    };
    let local = pattern.as_ref().map(|p| {
        let mut job = tokio_cron_scheduler::Job::new_async(p.as_str(), |_, _| Box::pin(async {}))
            .unwrap_or_else(|e| panic!("{text}: tokio-cron-scheduler rejects {p}: {e:?}"));
        job.job_data().unwrap().schedule().unwrap()
    });

    for start in STARTS {
        let start = DateTime::<Utc>::from_timestamp(start, 0).unwrap();
        let ours: Vec<_> = schedule.iter_after(start).take(3).collect();
        assert!(ours.windows(2).all(|w| w[0] < w[1]), "{text}: not increasing: {ours:?}");
        assert!(ours.first().is_none_or(|t| *t > start), "{text}: {ours:?} not after {start}");
        if let Some(cron) = &local {
            // Only as many as we found: past our last year (2199) croner keeps searching
            // to year 5000, which would make this target crawl.
            let theirs: Vec<_> = cron.iter_after(start).take(ours.len()).collect();
            assert_eq!(ours, theirs, "{text} as {pattern:?} after {start}");
        }
    }
});
