//! Logs: one subscriber, JSON lines off a terminal, readable colour on one, and the
//! per-run summary line in CloudWatch Embedded Metric Format.
//!
//! Logs go to stderr (awslogs captures it) so that stdout carries only what a command
//! prints (`list`, `next`). Every line inside a run carries the job name and run id
//! through the `run` span. This module never sees secrets: nothing that formats
//! settings with a password exists (see `config`).

use std::io::{IsTerminal, Write};

use serde_json::json;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::cli::LogFormat;
use crate::runner::RunReport;

/// The CloudWatch namespace the summary's metrics land in.
pub const METRIC_NAMESPACE: &str = "RunJob";

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

/// The summary of one run as a JSON object: the `job_runs` fields, plus the `_aws`
/// block that makes CloudWatch extract duration, items and failures as metrics (with
/// the job as dimension) from the log line itself, with no agent.
pub fn summary_json(report: &RunReport) -> serde_json::Value {
    let timestamp_ms = report.finished_at.timestamp_millis();
    let summary = &report.summary;
    json!({
        "timestamp": report.finished_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "level": if report.outcome.is_failure() { "ERROR" } else { "INFO" },
        "message": "run finished",
        "job": report.job,
        "run_id": report.run_id.to_string(),
        "trigger": report.trigger,
        "outcome": report.outcome.as_str(),
        "exit_code": report.exit_code(),
        "started_at": report.started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "finished_at": report.finished_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "duration_ms": report.duration_ms(),
        "items_processed": summary.processed,
        "items_succeeded": summary.succeeded,
        "items_failed": summary.failed,
        "details": summary.details,
        "error": report.error,
        "Duration": report.duration_ms(),
        "ItemsProcessed": summary.processed,
        "ItemsFailed": summary.failed,
        "Failed": u8::from(report.outcome.is_failure()),
        "Skipped": u8::from(report.outcome == crate::runner::Outcome::Skipped),
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [["job"]],
                "Metrics": [
                    {"Name": "Duration", "Unit": "Milliseconds"},
                    {"Name": "ItemsProcessed", "Unit": "Count"},
                    {"Name": "ItemsFailed", "Unit": "Count"},
                    {"Name": "Failed", "Unit": "Count"},
                    {"Name": "Skipped", "Unit": "Count"},
                ],
            }],
        },
    })
}

/// Writes the run's summary line: the EMF object when logging JSON, a readable line
/// otherwise.
pub fn emit_summary(report: &RunReport, format: LogFormat) {
    if is_json(format) {
        let line = summary_json(report).to_string();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    } else {
        let s = &report.summary;
        let message = format!(
            "run finished: {} in {} ms (exit {}), items {} processed / {} succeeded / {} failed{}",
            report.outcome.as_str(),
            report.duration_ms(),
            report.exit_code(),
            s.processed,
            s.succeeded,
            s.failed,
            report
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        // Called inside the run's span, which already names the job and run id.
        if report.outcome.is_failure() {
            tracing::error!("{message}");
        } else {
            tracing::info!("{message}");
        }
    }
}
