//! `run-job <name>`: one run of one job, as EventBridge starts it, and the heartbeat a
//! run checks in with (shared with the tick's members).

use tracing::Instrument;
use uuid::Uuid;

use super::wiring::{build_job, connect, deps, eprint_jobs, shutdown_on_signal};
use crate::cli::Cli;
use crate::config;
use crate::database;
use crate::declarations::JobDeclaration;
use crate::exit::Exit;
use crate::run::{self, Heartbeat, RunRequest};
use crate::telemetry;

/// `run-job <name>`.
pub(crate) async fn run(cli: &Cli, declarations: &[JobDeclaration], name: &str) -> Exit {
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
pub(crate) enum HeartbeatSetting {
    /// The declaration names none.
    None,
    Ready(Heartbeat),
    /// Named, but the variable is not set (a warning: the run goes on without).
    Unset(String),
    /// Set to something that is not an http(s) URL (the message does not repeat it).
    Invalid(String),
}

pub(crate) fn heartbeat_for(d: &JobDeclaration) -> HeartbeatSetting {
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
pub(crate) fn run_heartbeat(d: &JobDeclaration) -> Option<Heartbeat> {
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
