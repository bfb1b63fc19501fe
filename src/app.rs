//! What each command does, from a parsed command line to an exit code.
//!
//! The only module that installs signal handlers, builds the database pool and looks
//! up jobs in the registry. Every failure that reaches here becomes a message on
//! stderr naming what was wrong, and the matching code from `exit`.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::cli::{Cli, Command, RESERVED_NAMES};
use crate::clock::{self, Clock};
use crate::config::{self, Settings};
use crate::declarations::{self, JobDeclaration};
use crate::exit::Exit;
use crate::jobs::{self, Deps};
use crate::run::{self, Heartbeat, RunRequest};
use crate::schedule::Schedule;
use crate::scheduler::{self, Scheduled};
use crate::telemetry;
use crate::{check, cost, database, requeue, runs};

/// Runs the command and returns how the process should exit.
pub async fn run(cli: Cli) -> Exit {
    if let Some(Command::Next {
        expression,
        after,
        count,
    }) = &cli.command
    {
        return next(expression, *after, *count);
    }
    let declarations = match load_declarations() {
        Ok(d) => d,
        Err(problems) => {
            eprintln!("run-job: the job declarations are invalid:");
            for p in problems {
                eprintln!("  {p}");
            }
            return Exit::Config;
        }
    };
    match &cli.command {
        Some(Command::List) => list(&declarations),
        Some(Command::Check { connect }) => check(&declarations, *connect).await,
        Some(Command::Migrate) => migrate().await,
        Some(Command::Runs {
            job,
            since,
            limit,
            json,
        }) => {
            let q = runs::Query {
                job: job.as_deref(),
                since: *since,
                limit: *limit,
                json: *json,
            };
            show_runs(&declarations, &q).await
        }
        Some(Command::Cost {
            region,
            since,
            capacity,
            startup,
            compare,
            prices,
            json,
            infra,
        }) => {
            let q = cost::Query {
                region,
                since: *since,
                capacity: *capacity,
                startup: startup.unwrap_or_default(),
                compare_original: compare.is_some(),
                json: *json,
                infra: infra.clone(),
            };
            show_cost(&declarations, &q, prices.as_deref()).await
        }
        Some(Command::Requeue {
            job,
            since,
            ids,
            all,
            dry_run,
        }) => {
            if !*dry_run && !*all && since.is_none() && ids.is_empty() {
                eprintln!(
                    "run-job: name the rows to requeue: --since <window>, --id <uuid>, or --all \
                     (--dry-run lists them all first)."
                );
                return Exit::Usage;
            }
            let filter = requeue::Filter {
                since: *since,
                ids: ids.clone(),
            };
            requeue_failed(&declarations, job, &filter, *dry_run).await
        }
        Some(Command::Tick { group }) => tick(&cli, &declarations, group).await,
        Some(Command::Next { .. }) => unreachable!("handled above"),
        None if cli.schedule => schedule(&cli, declarations).await,
        None => match &cli.job {
            Some(name) => run_one(&cli, &declarations, name).await,
            None => {
                eprintln!(
                    "run-job: name a job to run, or use --schedule or a command (see --help)."
                );
                eprint_jobs(&declarations);
                Exit::Usage
            }
        },
    }
}

/// The declarations, checked against the registry both ways.
pub fn load_declarations() -> Result<Vec<JobDeclaration>, Vec<String>> {
    let declarations = declarations::embedded()
        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    let mut problems = registry_mismatches(&declarations);
    if let Err(mut refused) = crate::groups::derive(&declarations) {
        problems.append(&mut refused);
    }
    if problems.is_empty() {
        Ok(declarations)
    } else {
        Err(problems)
    }
}

/// Declarations without an implementation, implementations without a declaration, and
/// names the command line reserves.
pub fn registry_mismatches(declarations: &[JobDeclaration]) -> Vec<String> {
    let declared: BTreeSet<&str> = declarations.iter().map(|d| d.name.as_str()).collect();
    let registered: BTreeSet<&str> = jobs::REGISTRY.iter().map(|r| r.name).collect();
    let mut problems = Vec::new();
    for name in declared.difference(&registered) {
        problems.push(format!(
            "job `{name}` is declared but has no implementation in jobs::REGISTRY"
        ));
    }
    for name in registered.difference(&declared) {
        problems.push(format!(
            "job `{name}` is in jobs::REGISTRY but has no declaration in jobs/"
        ));
    }
    if jobs::REGISTRY.len() != registered.len() {
        problems.push("jobs::REGISTRY lists a name twice".to_string());
    }
    for name in declared.iter().filter(|n| RESERVED_NAMES.contains(n)) {
        problems.push(format!("job name `{name}` is reserved for a command"));
    }
    problems
}

fn eprint_jobs(declarations: &[JobDeclaration]) {
    if declarations.is_empty() {
        eprintln!("This binary has no jobs.");
        return;
    }
    eprintln!("Jobs:");
    for d in declarations {
        eprintln!("  {:<24} {}", d.name, d.description);
    }
}

fn next(expression: &str, after: Option<chrono::DateTime<Utc>>, count: u32) -> Exit {
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

fn list(declarations: &[JobDeclaration]) -> Exit {
    if declarations.is_empty() {
        println!("This binary has no jobs.");
        return Exit::Success;
    }
    let now = clock::wall();
    // The name column fits the longest name (notify-upload-availability is 26).
    let w = declarations
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0)
        .max(16);
    println!(
        "{:<w$} {:<26} {:<18} {:<7} {:>7}  {:<7} {:<7} NEXT 3 FIRES (UTC)",
        "JOB", "SCHEDULE", "SIZE", "ARCH", "TIMEOUT", "OVERLAP", "ENABLED"
    );
    for d in declarations {
        let fires: Vec<String> = d
            .schedule
            .iter_after(now)
            .take(3)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .collect();
        println!(
            "{:<w$} {:<26} {:<18} {:<7} {:>6}s  {:<7} {:<7} {}",
            d.name,
            d.schedule.to_string(),
            format!("{}/{} MiB", d.size.cpu, d.size.memory),
            d.architecture.to_string(),
            d.timeout.as_secs(),
            d.overlap.to_string(),
            if d.enabled { "yes" } else { "no" },
            if fires.is_empty() {
                "never".to_string()
            } else {
                fires.join(", ")
            }
        );
    }
    let groups = crate::groups::derive(declarations).unwrap_or_default();
    if !groups.is_empty() {
        println!();
        println!("Shared tasks (one task per tick runs the members that are due):");
    }
    for g in &groups {
        let delays: Vec<String> = declarations
            .iter()
            .filter(|d| g.members.contains(&d.name))
            .map(|d| format!("{} +{} min", d.name, g.max_delay_minutes(d)))
            .collect();
        println!(
            "  tick {}: {}, {}/{} MiB {}{}; members at most this late: {}",
            g.name,
            g.schedule_expression(),
            g.size.cpu,
            g.size.memory,
            g.architecture,
            if g.enabled { "" } else { ", disabled" },
            delays.join(", ")
        );
    }
    Exit::Success
}

async fn check(declarations: &[JobDeclaration], connect: bool) -> Exit {
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
    let mut jobs = Vec::new();
    if let Some(s) = &settings {
        println!("database: {}", s.database);
        // Each job checks its own settings as it is built; this pool never connects.
        let clock = Clock::from_env(&config::process_env).unwrap_or_else(|e| {
            errors.push(format!("configuration: {e}"));
            Clock::system()
        });
        let deps = Deps {
            pool: PgPoolOptions::new()
                .connect_lazy_with(s.database.connect_options("run-job:check")),
            env: Arc::new(config::process_env),
            clock,
        };
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
    }
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
        Some(settings) if connect => check::reach(&settings, &jobs, &shutdown_on_signal()).await,
        _ => Exit::Success,
    }
}

/// Settings, pool and connect options, or the exit that explains why not. A signal
/// while connecting exits as interrupted.
async fn connect(
    application_name: &str,
    shutdown: &CancellationToken,
) -> Result<(PgPool, PgConnectOptions), Exit> {
    let settings = Settings::from_env(&config::process_env).map_err(|e| {
        eprintln!("run-job: configuration error: {e}");
        Exit::Config
    })?;
    database::connect(&settings, application_name, shutdown)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot reach the database");
            eprintln!("run-job: {e}");
            match e {
                database::ConnectError::Interrupted => Exit::Interrupted,
                database::ConnectError::Unreachable { .. } => Exit::Runner,
            }
        })
}

async fn show_runs(declarations: &[JobDeclaration], q: &runs::Query<'_>) -> Exit {
    if let Some(job) = q.job
        && !declarations.iter().any(|d| d.name == job)
    {
        eprintln!("run-job: unknown job `{job}`.");
        eprint_jobs(declarations);
        return Exit::Usage;
    }
    let shutdown = shutdown_on_signal();
    let (pool, _) = match connect("run-job:runs", &shutdown).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let shown = runs::show(&pool, declarations, q, clock::wall()).await;
    database::close(pool).await;
    match shown {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("run-job: cannot read job_runs: {e}");
            Exit::Runner
        }
    }
}

/// `run-job requeue`: the rows first, then what was done.
async fn requeue_failed(
    declarations: &[JobDeclaration],
    job: &str,
    filter: &requeue::Filter,
    dry_run: bool,
) -> Exit {
    let Some(registration) = jobs::find(job).filter(|_| declarations.iter().any(|d| d.name == job))
    else {
        eprintln!("run-job: unknown job `{job}`.");
        eprint_jobs(declarations);
        return Exit::Usage;
    };
    let Some(what) = registration.requeue else {
        eprintln!(
            "run-job: `{job}` leaves no failed rows to requeue: its next run tries again by itself."
        );
        return Exit::Usage;
    };
    let shutdown = shutdown_on_signal();
    let (pool, _) = match connect("run-job:requeue", &shutdown).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let done = requeue::requeue(&pool, &what, filter, clock::wall(), dry_run).await;
    database::close(pool).await;
    match done {
        Ok(outcome) if outcome.rows.is_empty() => {
            println!("No failed rows of `{job}` match.");
            Exit::Success
        }
        Ok(outcome) => {
            print!("{}", requeue::render(&outcome.rows));
            if dry_run {
                println!(
                    "Dry run: {} row(s) would be requeued; nothing changed.",
                    outcome.rows.len()
                );
            } else {
                println!(
                    "Requeued {} of {} row(s); the next `{job}` run takes them.",
                    outcome.requeued,
                    outcome.rows.len()
                );
            }
            Exit::Success
        }
        Err(e) => {
            eprintln!("run-job: cannot requeue `{job}`'s rows: {e}");
            Exit::Runner
        }
    }
}

/// `run-job cost`. Without a database (none configured, or unreachable) every job is
/// costed at its declared timeout, and stderr says so.
async fn show_cost(
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
async fn cost_history(
    from: chrono::DateTime<Utc>,
) -> std::collections::BTreeMap<String, cost::History> {
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

async fn migrate() -> Exit {
    let (pool, _) = match connect("run-job:migrate", &shutdown_on_signal()).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    match sqlx::migrate!("./migrations").run(&pool).await {
        Ok(()) => {
            println!("migrations applied");
            Exit::Success
        }
        Err(e) => {
            eprintln!("run-job: migration failed: {e}");
            Exit::Runner
        }
    }
}

/// A token cancelled by the first SIGTERM or SIGINT; a second one exits at once.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    let listener = async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            tracing::error!("cannot listen for SIGTERM");
            return;
        };
        let mut signals = 0;
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            };
            signals += 1;
            if signals == 1 {
                tracing::warn!(signal = name, "stopping: cancelling running work");
                cancel.cancel();
            } else {
                tracing::error!(signal = name, "second signal: exiting now");
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
        }
    };
    tokio::spawn(listener.in_current_span());
    token
}

/// What every job is built from: the pool, the process environment for its own
/// settings, and the clock (`RUN_JOB_NOW` replays a run at another instant).
fn deps(pool: PgPool) -> Result<Deps, Exit> {
    let clock = Clock::from_env(&config::process_env).map_err(|e| {
        eprintln!("run-job: configuration error: {e}");
        Exit::Config
    })?;
    if !clock.is_system() {
        tracing::warn!(now = %clock.now(), "RUN_JOB_NOW: the job decides as if it were this instant; never against a database other runs use");
    }
    Ok(Deps {
        pool,
        env: Arc::new(config::process_env),
        clock,
    })
}

fn build_job(declaration: &JobDeclaration, deps: &Deps) -> Result<Arc<dyn jobs::Job>, Exit> {
    let name = declaration.name.as_str();
    let registration = jobs::find(name).ok_or(Exit::Config)?;
    (registration.build)(&deps.scoped(name, &declaration.reads)).map_err(|e| {
        eprintln!("run-job: cannot set up job `{name}`: {e:#}");
        Exit::Config
    })
}

async fn run_one(cli: &Cli, declarations: &[JobDeclaration], name: &str) -> Exit {
    let Some(declaration) = declarations.iter().find(|d| d.name == name) else {
        eprintln!("run-job: unknown job `{name}`.");
        eprint_jobs(declarations);
        return Exit::Usage;
    };
    let run_id = Uuid::now_v7();
    run_declared(cli, declaration, run_id)
        .instrument(run::span(name, run_id))
        .await
}

/// What a declaration's `heartbeat_url_env` comes to in this environment.
enum HeartbeatSetting {
    /// The declaration names none.
    None,
    Ready(Heartbeat),
    /// Named, but the variable is not set (a warning: the run goes on without).
    Unset(String),
    /// Set to something that is not an http(s) URL (the message does not repeat it).
    Invalid(String),
}

fn heartbeat_for(d: &JobDeclaration) -> HeartbeatSetting {
    let Some(var) = &d.heartbeat_url_env else {
        return HeartbeatSetting::None;
    };
    match config::process_env(var) {
        None => HeartbeatSetting::Unset(format!(
            "job `{}` declares heartbeat_url_env {var}, which is not set",
            d.name
        )),
        Some(url) => match Heartbeat::new(url.into()) {
            Ok(h) => HeartbeatSetting::Ready(h),
            Err(e) => HeartbeatSetting::Invalid(format!("{var} {e}")),
        },
    }
}

/// The heartbeat a run checks in with; a run goes on without one when its variable is
/// unset or not a URL, and says so.
fn run_heartbeat(d: &JobDeclaration) -> Option<Heartbeat> {
    match heartbeat_for(d) {
        HeartbeatSetting::Ready(h) => Some(h),
        HeartbeatSetting::None => None,
        HeartbeatSetting::Unset(why) | HeartbeatSetting::Invalid(why) => {
            tracing::warn!("{why}; this run sends no check-ins");
            None
        }
    }
}

/// Runs a known job once, inside its `run` span so every line carries job and run id.
async fn run_declared(cli: &Cli, declaration: &JobDeclaration, run_id: Uuid) -> Exit {
    let name = declaration.name.as_str();
    let shutdown = shutdown_on_signal();
    let heartbeat = run_heartbeat(declaration);
    let (pool, options) = match connect(&format!("run-job:{name}"), &shutdown).await {
        Ok(c) => c,
        Err(exit) => {
            if let Some(h) = &heartbeat {
                h.runner_failed(None, name, run_id, exit, "cannot reach the database")
                    .await;
            }
            return exit;
        }
    };
    let job = match deps(pool.clone()).and_then(|deps| build_job(declaration, &deps)) {
        Ok(job) => job,
        Err(exit) => {
            if let Some(h) = &heartbeat {
                h.runner_failed(
                    None,
                    name,
                    run_id,
                    exit,
                    "the job could not be set up (see stderr)",
                )
                .await;
            }
            return exit;
        }
    };
    let request = RunRequest {
        declaration,
        run_id,
        trigger: cli.trigger.as_str(),
        pool: &pool,
        connect_options: &options,
        shutdown: &shutdown,
        grace: cli.grace(),
        host: config::process_env("HOSTNAME"),
        json_logs: telemetry::is_json(cli.log_format),
        logs: run::LogScope::Process,
        heartbeat: heartbeat.as_ref(),
    };
    let exit = match run::run_once(request, job).await {
        Ok(report) => report.outcome.exit(),
        Err(e) => {
            tracing::error!(error = %e, "the run could not start or be recorded");
            eprintln!("run-job: {e} (has `run-job migrate` been applied to this database?)");
            Exit::Runner
        }
    };
    database::close(pool).await;
    exit
}

/// `run-job tick <group>`: see `tick` for the rule. Members are claimed, built and
/// run here, each inside its own run span, all at once.
async fn tick(cli: &Cli, declarations: &[JobDeclaration], name: &str) -> Exit {
    let groups = crate::groups::derive(declarations).unwrap_or_default();
    let Some(group) = groups.iter().find(|g| g.name == name) else {
        let known: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        eprintln!(
            "run-job: no group `{name}` (shares_task in jobs/); groups: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        return Exit::Usage;
    };
    let shutdown = shutdown_on_signal();
    let (pool, options) = match connect(&format!("run-job:tick-{name}"), &shutdown).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let deps = match deps(pool.clone()) {
        Ok(d) => d,
        Err(exit) => return exit,
    };
    let now = deps.clock.now();
    // A tick claims the fires it runs: one dated ahead of the real clock would make the
    // real tick at that instant skip it.
    if now > clock::wall() + chrono::TimeDelta::minutes(1) {
        eprintln!(
            "run-job: RUN_JOB_NOW ({now}) is ahead of the clock; a tick would claim fires that have not happened"
        );
        return Exit::Config;
    }
    let members = &group.members;
    let claimed = match crate::tick::claimed(&pool, members, now).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "run-job: cannot read the tick's claims: {} (has `run-job migrate` been applied to this database?)",
                database::describe(&e)
            );
            return Exit::Runner;
        }
    };
    let due = crate::tick::due(group, declarations, &claimed, now);
    let mut outcomes: Vec<crate::tick::MemberOutcome> = Vec::new();
    let mut runs = Vec::new();
    for d in &due {
        let run_id = Uuid::now_v7();
        let job = d.job;
        // Set up first: a member that cannot be built keeps its fire for a tick that can.
        let built = match build_job(job, &deps) {
            Ok(built) => built,
            Err(exit) => {
                member_not_started(
                    job,
                    run_id,
                    exit,
                    "the job could not be set up (see stderr)",
                )
                .await;
                outcomes.push(member(job, Some(d.fire), "not_started", exit));
                continue;
            }
        };
        if shutdown.is_cancelled() {
            outcomes.push(member(job, Some(d.fire), "not_started", Exit::Interrupted));
            continue;
        }
        match crate::tick::claim(&pool, &job.name, d.fire, run_id).await {
            Ok(true) => {}
            Ok(false) => {
                outcomes.push(member(
                    job,
                    Some(d.fire),
                    "claimed_elsewhere",
                    Exit::Success,
                ));
                continue;
            }
            Err(e) => {
                tracing::error!(job = %job.name, error = %database::describe(&e), "cannot claim the fire");
                member_not_started(job, run_id, Exit::Runner, "its fire could not be claimed")
                    .await;
                outcomes.push(member(job, Some(d.fire), "not_started", Exit::Runner));
                continue;
            }
        }
        runs.push((d.clone(), run_id, built));
    }
    let json_logs = telemetry::is_json(cli.log_format);
    let host = config::process_env("HOSTNAME");
    let ran = futures::future::join_all(runs.into_iter().map(|(d, run_id, built)| {
        let (pool, options, shutdown, host) = (&pool, &options, &shutdown, host.clone());
        async move {
            let heartbeat = run_heartbeat(d.job);
            let request = RunRequest {
                declaration: d.job,
                run_id,
                trigger: crate::tick::TRIGGER,
                pool,
                connect_options: options,
                shutdown,
                grace: cli.grace(),
                host,
                json_logs,
                logs: run::LogScope::Run,
                heartbeat: heartbeat.as_ref(),
            };
            match run::run_once(request, built).await {
                Ok(report) => member(
                    d.job,
                    Some(d.fire),
                    report.outcome.as_str(),
                    report.outcome.exit(),
                ),
                Err(e) => {
                    tracing::error!(error = %e, "the run could not start or be recorded");
                    member(d.job, Some(d.fire), "not_started", Exit::Runner)
                }
            }
        }
        .instrument(run::span(&d.job.name, run_id))
    }))
    .await;
    outcomes.extend(ran);
    for d in declarations
        .iter()
        .filter(|d| group.members.contains(&d.name))
    {
        if !outcomes.iter().any(|o| o.job == d.name) {
            let why = if d.enabled { "not_due" } else { "disabled" };
            outcomes.push(member(d, None, why, Exit::Success));
        }
    }
    outcomes.sort_by(|a, b| a.job.cmp(&b.job));
    if let Err(e) = crate::tick::prune(&pool, members, now).await {
        tracing::warn!(error = %database::describe(&e), "could not delete old tick claims");
    }
    let exit = crate::tick::worst(outcomes.iter().map(|o| o.exit));
    tracing::info!(
        tick = %name,
        at = %now,
        ran = outcomes
            .iter()
            .filter(|o| o.fire.is_some() && !matches!(o.outcome.as_str(), "claimed_elsewhere" | "not_started"))
            .count(),
        members = %serde_json::to_string(&outcomes).unwrap_or_default(),
        exit_code = exit.code(),
        "tick finished"
    );
    database::close(pool).await;
    exit
}

/// A member that will not run this tick says so where a run of its own would: its
/// heartbeat's failure ping, if it declares one.
async fn member_not_started(job: &JobDeclaration, run_id: Uuid, exit: Exit, why: &str) {
    if let HeartbeatSetting::Ready(h) = heartbeat_for(job) {
        h.runner_failed(None, &job.name, run_id, exit, why).await;
    }
}

fn member(
    job: &JobDeclaration,
    fire: Option<chrono::DateTime<Utc>>,
    outcome: &str,
    exit: Exit,
) -> crate::tick::MemberOutcome {
    crate::tick::MemberOutcome {
        job: job.name.clone(),
        fire,
        outcome: outcome.to_string(),
        exit,
    }
}

async fn schedule(cli: &Cli, declarations: Vec<JobDeclaration>) -> Exit {
    let unknown: Vec<&String> = cli
        .only
        .iter()
        .filter(|n| !declarations.iter().any(|d| &d.name == *n))
        .collect();
    if !unknown.is_empty() {
        eprintln!(
            "run-job: --only names unknown job(s): {}",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        eprint_jobs(&declarations);
        return Exit::Usage;
    }
    let selected: Vec<JobDeclaration> = declarations
        .into_iter()
        .filter(|d| {
            if cli.only.is_empty() {
                d.enabled
            } else {
                cli.only.contains(&d.name)
            }
        })
        .collect();
    if selected.is_empty() {
        eprintln!("run-job: no enabled jobs to schedule");
        return Exit::Usage;
    }
    let shutdown = shutdown_on_signal();
    let (pool, options) = match connect("run-job:scheduler", &shutdown).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let deps = match deps(pool.clone()) {
        Ok(deps) => deps,
        Err(exit) => return exit,
    };
    let mut jobs = Vec::new();
    for d in selected {
        match build_job(&d, &deps) {
            Ok(job) => jobs.push(Scheduled {
                declaration: Arc::new(d),
                job,
            }),
            Err(exit) => return exit,
        }
    }
    let shared = scheduler::Shared {
        pool: pool.clone(),
        connect_options: Arc::new(options),
        shutdown,
        grace: cli.grace(),
        json_logs: telemetry::is_json(cli.log_format),
        host: config::process_env("HOSTNAME"),
    };
    let exit = match scheduler::run(jobs, shared).await {
        Ok(()) => Exit::Success,
        Err(e) => {
            tracing::error!(error = %e, "scheduler failed");
            Exit::Runner
        }
    };
    database::close(pool).await;
    exit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declaration_has_an_implementation_and_every_implementation_a_declaration() {
        let declarations = load_declarations().unwrap_or_else(|p| panic!("{p:#?}"));
        let declared: Vec<&str> = declarations.iter().map(|d| d.name.as_str()).collect();
        let mut registered: Vec<&str> = jobs::REGISTRY.iter().map(|r| r.name).collect();
        registered.sort();
        assert_eq!(declared, registered);
    }

    #[test]
    fn a_declaration_without_implementation_is_reported() {
        let mut declarations = load_declarations().unwrap();
        let orphan = "name: orphan-job\ndescription: x\nschedule: rate(1 hour)\nsize: {cpu: 256, memory: 512}\narchitecture: arm64\ntimeout_seconds: 60\noverlap: forbid\nenabled: true\n";
        declarations.push(JobDeclaration::parse("jobs/orphan-job.yaml", orphan).unwrap());
        let problems = registry_mismatches(&declarations);
        assert_eq!(
            problems,
            ["job `orphan-job` is declared but has no implementation in jobs::REGISTRY"]
        );
    }

    #[test]
    fn an_implementation_without_declaration_is_reported() {
        let problems = registry_mismatches(&[]);
        assert_eq!(problems.len(), jobs::REGISTRY.len());
        for r in jobs::REGISTRY {
            assert!(problems.contains(&format!(
                "job `{}` is in jobs::REGISTRY but has no declaration in jobs/",
                r.name
            )));
        }
    }

    #[test]
    fn reserved_names_cannot_be_jobs() {
        let text = "name: list\ndescription: x\nschedule: rate(1 hour)\nsize: {cpu: 256, memory: 512}\narchitecture: arm64\ntimeout_seconds: 60\noverlap: forbid\nenabled: true\n";
        let d = JobDeclaration::parse("jobs/list.yaml", text).unwrap();
        let problems = registry_mismatches(&[d]);
        assert!(
            problems
                .iter()
                .any(|p| p == "job name `list` is reserved for a command")
        );
    }
}
