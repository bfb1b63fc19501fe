//! `run-job cost`: the handler. The price book, the history from `job_runs` when a
//! database answers, and the projection and its printing from [`crate::cost`].

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{self, Settings};
use crate::cost;
use crate::database;
use crate::declarations::JobDeclaration;
use crate::exit::Exit;

/// `run-job cost`. Without a database (none configured, or unreachable) every job is
/// costed at its declared timeout, and stderr says so.
pub(crate) async fn run(
    declarations: &[JobDeclaration],
    q: &cost::Query<'_>,
    prices: Option<&std::path::Path>,
) -> Exit {
    let book = match prices {
        None => cost::prices::PriceBook::parse(cost::prices::EMBEDDED, "pricing/aws.yaml"),
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|text| cost::prices::PriceBook::parse(&text, &path.display().to_string())),
    };
    let book = match book {
        Ok(b) => b,
        Err(e) => {
            eprintln!("run-job: {e}");
            return Exit::Config;
        }
    };
    if let Some(rule) = q.original_run_times.unknown(&book) {
        let rules: Vec<&str> = book.original.jobs.keys().map(String::as_str).collect();
        eprintln!(
            "run-job: --original-run-time names `{rule}`, which is not one of the original's rules ({})",
            rules.join(", ")
        );
        return Exit::Usage;
    }
    let region = match book.region(q.region) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("run-job: {e}");
            return Exit::Usage;
        }
    };
    // RUN_JOB_NOW projects from another instant (and makes the tests' figures exact).
    let now = match Clock::from_env(&config::process_env) {
        Ok(c) => c.now(),
        Err(e) => {
            eprintln!("run-job: configuration error: {e}");
            return Exit::Config;
        }
    };
    let history = cost_history(now - q.since).await;
    let projection = cost::project(declarations, &history, &book, region, q, now);
    cost::print(&projection, &book, region, q, now);
    Exit::Success
}

/// The runs behind `cost`, or none (with a note) when the database cannot give them.
async fn cost_history(from: DateTime<Utc>) -> std::collections::BTreeMap<String, cost::History> {
    let settings = match Settings::from_env(&config::process_env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("run-job: no run history ({e}); every job is costed at its timeout.");
            return Default::default();
        }
    };
    let shutdown = CancellationToken::new();
    let pool = match database::connect(&settings, "run-job:cost", &shutdown).await {
        Ok((pool, _)) => pool,
        Err(e) => {
            eprintln!("run-job: no run history ({e}); every job is costed at its timeout.");
            return Default::default();
        }
    };
    let history = cost::history(&pool, from).await;
    database::close(pool).await;
    history.unwrap_or_else(|e| {
        eprintln!(
            "run-job: cannot read job_runs ({}); every job is costed at its timeout.",
            database::describe(&e)
        );
        Default::default()
    })
}
