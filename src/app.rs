//! From a parsed command line to an exit code: checks the declarations once, then hands
//! the command to its file under [`crate::commands`]. Nothing else happens here.

use crate::cli::{Cli, Command};
use crate::commands::{self, wiring};
use crate::cost;
use crate::declarations::JobDeclaration;
use crate::exit::Exit;

pub use crate::commands::wiring::{load_declarations, registry_mismatches};

/// Runs the command and returns how the process should exit.
pub async fn run(cli: Cli) -> Exit {
    if let Some(Command::Next {
        expression,
        after,
        count,
    }) = &cli.command
    {
        // The one command that needs no declarations.
        return commands::next::run(expression, *after, *count);
    }
    match wiring::load_declarations() {
        Ok(declarations) => dispatch(&cli, declarations).await,
        Err(problems) => {
            eprintln!("run-job: the job declarations are invalid:");
            for p in problems {
                eprintln!("  {p}");
            }
            Exit::Config
        }
    }
}

async fn dispatch(cli: &Cli, declarations: Vec<JobDeclaration>) -> Exit {
    match &cli.command {
        Some(Command::List) => commands::list::run(&declarations),
        Some(Command::Check { connect }) => commands::check::run(&declarations, *connect).await,
        Some(Command::Migrate) => commands::migrate::run().await,
        Some(Command::Runs {
            job,
            since,
            limit,
            json,
        }) => {
            let q = commands::runs::Query {
                job: job.as_deref(),
                since: *since,
                limit: *limit,
                json: *json,
            };
            commands::runs::run(&declarations, &q).await
        }
        Some(command @ Command::Cost { .. }) => cost(command, &declarations).await,
        Some(Command::Requeue {
            job,
            since,
            ids,
            all,
            dry_run,
        }) => {
            let filter = commands::requeue::Filter {
                since: *since,
                ids: ids.clone(),
            };
            commands::requeue::run(&declarations, job, &filter, *all, *dry_run).await
        }
        Some(Command::Tick { group }) => commands::tick::run(cli, &declarations, group).await,
        Some(Command::Next {
            expression,
            after,
            count,
        }) => commands::next::run(expression, *after, *count),
        None if cli.schedule => commands::scheduler::run(cli, declarations).await,
        None => match &cli.job {
            Some(name) => commands::once::run(cli, &declarations, name).await,
            None => {
                eprintln!(
                    "run-job: name a job to run, or use --schedule or a command (see --help)."
                );
                wiring::eprint_jobs(&declarations);
                Exit::Usage
            }
        },
    }
}

async fn cost(command: &Command, declarations: &[JobDeclaration]) -> Exit {
    let Command::Cost {
        region,
        since,
        capacity,
        startup,
        compare,
        original_run_time,
        prices,
        json,
        infra,
    } = command
    else {
        return Exit::Usage;
    };
    let q = cost::Query {
        region,
        since: *since,
        capacity: *capacity,
        startup: startup.unwrap_or_default(),
        compare_original: compare.is_some(),
        original_run_times: original_run_time.clone().unwrap_or_default(),
        json: *json,
        infra: infra.clone(),
    };
    commands::cost::run(declarations, &q, prices.as_deref()).await
}
