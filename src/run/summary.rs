//! The one line each run ends with: the `job_runs` fields, plus (in JSON) the `_aws`
//! block that makes CloudWatch extract duration, items and failures as metrics, with
//! the job as dimension, from the log line itself: no agent.

use std::io::Write;

use serde_json::json;

use super::report::{Outcome, RunReport};

/// The CloudWatch namespace the summary's metrics land in.
const METRIC_NAMESPACE: &str = "RunJob";

/// The summary of one run as a JSON object: the `job_runs` fields, plus the `_aws`
/// block that makes CloudWatch extract duration, items and failures as metrics (with
/// the job as dimension) from the log line itself, with no agent.
fn summary_json(report: &RunReport) -> serde_json::Value {
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
        "Skipped": u8::from(report.outcome == Outcome::Skipped),
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

/// What the summary line will add to the run's logged bytes (JSON logs: what
/// CloudWatch ingests; a terminal's readable line is not billed).
pub(super) fn billable_bytes(report: &RunReport, json: bool) -> u64 {
    if json {
        crate::telemetry::billable(summary_json(report).to_string().len())
    } else {
        0
    }
}

/// Writes the run's summary line: the EMF object when logging JSON, a readable line
/// otherwise.
pub(super) fn emit(report: &RunReport, json: bool) {
    if json {
        let line = summary_json(report).to_string();
        let _ = writeln!(crate::telemetry::stderr(), "{line}");
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
