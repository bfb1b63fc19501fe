//! `run-job check --connect`: what an operator runs after a deploy, with the task's own
//! settings, to learn whether production can work before the next schedule fires.
//!
//! It reaches the database (failing fast with the cause, as a run would), asks whether
//! every table, column and enum value the migrations create is there (naming what is
//! missing and the migration that adds it), and sends one request to each provider the
//! configured jobs call. Any HTTP answer counts as reached: the point is the network
//! path, DNS and TLS, not the credentials. One line per check with its latency; exit 0
//! only when every check passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::exit::Exit;
use crate::jobs::Job;
use crate::{database, http, schema};

/// How long one provider may take to answer the check.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every check, prints a line for each, and says how the process should exit.
pub async fn reach(
    settings: &Settings,
    jobs: &[(&str, Arc<dyn Job>)],
    shutdown: &CancellationToken,
) -> Exit {
    let mut failed = 0;
    let mut line = |ok: bool, what: &str, detail: String, took: Duration| {
        if !ok {
            failed += 1;
        }
        println!(
            "{:<7} {what}: {detail} ({} ms)",
            if ok { "ok" } else { "FAILED" },
            took.as_millis()
        );
    };

    if !database_and_schema(settings, shutdown, &mut line).await {
        return Exit::Interrupted;
    }

    let client = match http::client(http::Timeouts {
        connect: PROVIDER_TIMEOUT,
        request: PROVIDER_TIMEOUT,
    }) {
        Ok(c) => c,
        Err(e) => {
            line(
                false,
                "providers",
                format!("no HTTP client: {e}"),
                Duration::ZERO,
            );
            return Exit::Runner;
        }
    };
    providers(&client, jobs, &mut line).await;
    if failed == 0 {
        Exit::Success
    } else {
        Exit::Runner
    }
}

/// Prints one line for a check: whether it passed, what, the detail, how long it took.
type Line<'a> = dyn FnMut(bool, &str, String, Duration) + 'a;

/// The database with the task's settings, then every object the migrations create.
/// False when a signal stopped the check while it was connecting.
async fn database_and_schema(
    settings: &Settings,
    shutdown: &CancellationToken,
    line: &mut Line<'_>,
) -> bool {
    let started = Instant::now();
    let connected = database::connect(settings, "run-job:check", shutdown).await;
    match connected {
        Ok((pool, _)) => {
            line(
                true,
                "database",
                settings.database.to_string(),
                started.elapsed(),
            );
            let started = Instant::now();
            let expected = schema::expected();
            match schema::missing(&pool, &expected).await {
                Ok(missing) if missing.is_empty() => {
                    let objects: usize = expected.iter().map(|m| m.objects.len()).sum();
                    line(
                        true,
                        "schema",
                        format!(
                            "{objects} tables, columns and values of {} migrations present",
                            expected.len()
                        ),
                        started.elapsed(),
                    );
                }
                Ok(missing) => {
                    let took = started.elapsed();
                    for (migration, object) in missing {
                        line(
                            false,
                            "schema",
                            format!("{object} is missing (migrations/{migration}.sql)"),
                            took,
                        );
                    }
                }
                Err(e) => line(false, "schema", database::describe(&e), started.elapsed()),
            }
            database::close(pool).await;
        }
        Err(e @ database::ConnectError::Interrupted) => {
            eprintln!("run-job: {e}");
            return false;
        }
        Err(e) => line(false, "database", e.to_string(), started.elapsed()),
    }
    true
}

/// One request to each provider the configured jobs call (each URL once).
async fn providers(client: &reqwest::Client, jobs: &[(&str, Arc<dyn Job>)], line: &mut Line<'_>) {
    let mut tried = std::collections::HashSet::new();
    for (job, implementation) in jobs {
        for endpoint in implementation.endpoints() {
            if !tried.insert(endpoint.url.clone()) {
                continue;
            }
            let started = Instant::now();
            let what = format!("{} ({job})", endpoint.name);
            match client.head(&endpoint.url).send().await {
                Ok(answer) => line(
                    true,
                    &what,
                    format!("HTTP {} from {}", answer.status().as_u16(), endpoint.url),
                    started.elapsed(),
                ),
                Err(e) => line(
                    false,
                    &what,
                    format!("{}: {}", endpoint.url, chain(&e)),
                    started.elapsed(),
                ),
            }
        }
    }
}

/// An error with its causes, which is where reqwest keeps the useful part ("connection
/// refused", "dns error", "invalid peer certificate").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}
