//! `run-job check`: the declarations, each job's settings and secrets, and the
//! heartbeat URLs, checked without side effects.
//!
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

use sqlx::postgres::PgPoolOptions;

use super::once::{HeartbeatSetting, heartbeat_for};
use super::wiring::shutdown_on_signal;
use crate::clock;
use crate::config::{self, Settings};
use crate::declarations::{self, JobDeclaration};
use crate::exit::Exit;
use crate::jobs::{self, Deps, Job};
use crate::{database, http, schema};

/// How long one provider may take to answer the check.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// `run-job check [--connect]`.
pub(crate) async fn run(declarations: &[JobDeclaration], connect: bool) -> Exit {
    let mut errors = schedule_problems(declarations);
    for d in declarations {
        match heartbeat_for(d) {
            HeartbeatSetting::Unset(why) => println!("warning: {why}: no check-ins"),
            HeartbeatSetting::Invalid(why) => errors.push(format!("configuration: {why}")),
            HeartbeatSetting::None | HeartbeatSetting::Ready(_) => {}
        }
    }
    let settings = match Settings::from_env(&config::process_env) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(format!("configuration: {e}"));
            None
        }
    };
    let jobs = match &settings {
        Some(s) => {
            println!("database: {}", s.database);
            build_all(declarations, s, &mut errors)
        }
        None => Vec::new(),
    };
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("run-job: {e}");
        }
        return Exit::Config;
    }
    println!(
        "ok: {} job declaration(s) valid, each with an implementation",
        declarations.len()
    );
    match settings {
        Some(settings) if connect => reach(&settings, &jobs, &shutdown_on_signal()).await,
        _ => Exit::Success,
    }
}

/// Schedules that never fire again (errors); timeouts longer than the gap between
/// fires are printed as warnings.
fn schedule_problems(declarations: &[JobDeclaration]) -> Vec<String> {
    let mut errors = Vec::new();
    let now = clock::wall();
    for d in declarations {
        if d.schedule.next_after(now).is_none() {
            errors.push(format!(
                "{}: schedule `{}` never fires again",
                d.source, d.schedule
            ));
        }
        if let Some(gap) = d.schedule.shortest_gap(now, 500)
            && gap.to_std().is_ok_and(|gap| d.timeout > gap)
        {
            println!(
                "warning: {}: timeout {} s is longer than the shortest gap between fires ({} s); a long run makes the next fire {}",
                d.source,
                d.timeout.as_secs(),
                gap.num_seconds(),
                if d.overlap == declarations::Overlap::Forbid {
                    "skip"
                } else {
                    "overlap"
                }
            );
        }
    }
    errors
}

/// Every job built from these settings (each checks its own as it is built) against a
/// pool that never connects; unset secrets and set-up failures go to `errors`.
fn build_all<'d>(
    declarations: &'d [JobDeclaration],
    settings: &Settings,
    errors: &mut Vec<String>,
) -> Vec<(&'d str, Arc<dyn Job>)> {
    let pool =
        PgPoolOptions::new().connect_lazy_with(settings.database.connect_options("run-job:check"));
    let deps = Deps::from_env(pool.clone(), Arc::new(config::process_env)).unwrap_or_else(|e| {
        errors.push(format!("configuration: {e}"));
        Deps {
            pool,
            env: Arc::new(config::process_env),
            clock: clock::Clock::system(),
        }
    });
    let mut jobs = Vec::new();
    for d in declarations {
        for secret in &d.reads.secrets {
            if config::process_env(secret).is_none() {
                errors.push(format!(
                    "job `{}`: {secret}: is declared as a secret the job needs ({}) but is not set",
                    d.name, d.source
                ));
            }
        }
        match jobs::find(&d.name).map(|r| (r.build)(&deps.scoped(&d.name, &d.reads))) {
            Some(Ok(job)) => jobs.push((d.name.as_str(), job)),
            Some(Err(e)) => errors.push(format!("job `{}`: {e:#}", d.name)),
            None => {}
        }
    }
    jobs
}

/// Runs every check, prints a line for each, and says how the process should exit.
async fn reach(
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
