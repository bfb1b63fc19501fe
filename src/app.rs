//! From a parsed command line to an exit code: checks the declarations once, then hands
//! the command to its file under [`crate::commands`]. Nothing else happens here.

use crate::cli::{Cli, Command};
use crate::commands::{self, wiring};
use crate::cost;
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
        return commands::next::run(expression, *after, *count);
    }
    let declarations = match wiring::load_declarations() {
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
            commands::cost::run(&declarations, &q, prices.as_deref()).await
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
            let filter = commands::requeue::Filter {
                since: *since,
                ids: ids.clone(),
            };
            commands::requeue::run(&declarations, job, &filter, *dry_run).await
        }
        Some(Command::Tick { group }) => commands::tick::run(&cli, &declarations, group).await,
        Some(Command::Next { .. }) => unreachable!("handled above"),
        None if cli.schedule => commands::scheduler::run(&cli, declarations).await,
        None => match &cli.job {
            Some(name) => commands::once::run(&cli, &declarations, name).await,
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
