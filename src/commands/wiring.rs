//! What every command is built from: the checked declarations, the settings and the
//! database pool, the jobs' dependencies, and the shutdown token signals cancel.
//!
//! The only place that installs signal handlers, builds the pool and looks jobs up in
//! the registry. A failure here becomes a message on stderr naming what was wrong and
//! the matching code from `exit`.

use std::collections::BTreeSet;
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cli::RESERVED_NAMES;
use crate::config::{self, Settings};
use crate::database;
use crate::declarations::{self, JobDeclaration};
use crate::exit::Exit;
use crate::jobs::{self, Deps};

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

pub(crate) fn eprint_jobs(declarations: &[JobDeclaration]) {
    if declarations.is_empty() {
        eprintln!("This binary has no jobs.");
        return;
    }
    eprintln!("Jobs:");
    for d in declarations {
        eprintln!("  {:<24} {}", d.name, d.description);
    }
}

/// Settings, pool and connect options, or the exit that explains why not. A signal
/// while connecting exits as interrupted.
pub(crate) async fn connect(
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

/// A token cancelled by the first SIGTERM or SIGINT; a second one exits at once.
pub(crate) fn shutdown_on_signal() -> CancellationToken {
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
pub(crate) fn deps(pool: PgPool) -> Result<Deps, Exit> {
    let deps = Deps::from_env(pool, Arc::new(config::process_env)).map_err(|e| {
        eprintln!("run-job: configuration error: {e}");
        Exit::Config
    })?;
    if !deps.clock.is_system() {
        tracing::warn!(now = %deps.clock.now(), "RUN_JOB_NOW: the job decides as if it were this instant; never against a database other runs use");
    }
    Ok(deps)
}

pub(crate) fn build_job(
    declaration: &JobDeclaration,
    deps: &Deps,
) -> Result<Arc<dyn jobs::Job>, Exit> {
    let name = declaration.name.as_str();
    let registration = jobs::find(name).ok_or(Exit::Config)?;
    (registration.build)(&deps.scoped(name, &declaration.reads)).map_err(|e| {
        eprintln!("run-job: cannot set up job `{name}`: {e:#}");
        Exit::Config
    })
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
