//! Logs: one subscriber, JSON lines off a terminal, readable colour on one. (Each run's
//! summary line, in CloudWatch Embedded Metric Format, is the run's own: `run::summary`.)
//!
//! Logs go to stderr (awslogs captures it) so that stdout carries only what a command
//! prints (`list`, `next`). Every line inside a run carries the job name and run id
//! through the `run` span. This module never sees secrets: nothing that formats
//! settings with a password exists (see `config`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::cli::LogFormat;

/// Whether logs are JSON for this format and this stderr.
pub fn is_json(format: LogFormat) -> bool {
    match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    }
}

/// The filter when `RUST_LOG` is unset. tokio-cron-scheduler narrates its internals at
/// info; its warnings still show. chromiumoxide's handler logs a broken browser
/// connection at ERROR and then hands the same error to the scraping job, which says what
/// it means for the run; logged twice, one dead browser looks like two incidents.
pub const DEFAULT_FILTER: &str = "info,tokio_cron_scheduler=warn,chromiumoxide::handler=off";

/// Installs the global subscriber. The filter comes from `RUST_LOG` (default
/// [`DEFAULT_FILTER`]).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    if is_json(format) {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
