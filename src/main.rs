//! `run-job`: parse the command line, start logging, run, exit with the outcome's code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    run_job::allocator::tune();
    let cli = run_job::cli::Cli::parse();
    run_job::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("run-job: cannot start the async runtime: {e}");
            return run_job::exit::Exit::Runner.into();
        }
    };
    let exit = runtime.block_on(run_job::app::run(cli));
    // Don't wait for stray blocking tasks: the run is recorded and logged by now.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    exit.into()
}
