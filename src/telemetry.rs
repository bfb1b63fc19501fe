//! Logs: one subscriber, JSON lines off a terminal, readable colour on one. (Each run's
//! summary line, in CloudWatch Embedded Metric Format, is the run's own: `run::summary`.)
//!
//! Logs go to stderr (awslogs captures it) so that stdout carries only what a command
//! prints (`list`, `next`). Every line inside a run carries the job name and run id
//! through the `run` span. This module never sees secrets: nothing that formats
//! settings with a password exists (see `config`).
//!
//! Every byte written to stderr through [`stderr`] is counted, as CloudWatch Logs bills
//! ingestion: the line's bytes plus 26 per line, for the process and for the run whose
//! span the line is in. The runner records the count with each run (a run alone in its
//! task: everything the task logged; a member of a tick or of `--schedule`: its own
//! lines), and `run-job cost` projects the log bill from it.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::registry::{LookupSpan, Registry};

/// How log lines are written: `auto` is JSON lines unless stderr is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

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
        .with_writer(stderr)
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

/// What CloudWatch Logs adds to each event's bytes when it bills ingestion.
const EVENT_OVERHEAD_BYTES: u64 = 26;

static LOGGED: AtomicU64 = AtomicU64::new(0);

/// Bytes logged by this process so far, as CloudWatch Logs counts them.
pub fn logged() -> u64 {
    LOGGED.load(Ordering::Relaxed)
}

/// What a log line of `len` bytes (without its newline) costs in ingested bytes.
pub fn billable(len: usize) -> u64 {
    len as u64 + EVENT_OVERHEAD_BYTES
}

/// Standard error, counting what passes through it: for the process, and for the run
/// whose span the line is logged in.
pub fn stderr() -> Counted<std::io::Stderr> {
    Counted(std::io::stderr(), run_counter())
}

/// A writer that adds what it writes to the process's logged bytes, and to its run's.
/// awslogs makes one event of each line, so each newline is an event.
pub struct Counted<W>(W, Option<Arc<AtomicU64>>);

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        let lines = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        // The newline itself is not part of the event; the overhead is.
        let bytes = n as u64 - lines + lines * EVENT_OVERHEAD_BYTES;
        LOGGED.fetch_add(bytes, Ordering::Relaxed);
        if let Some(run) = &self.1 {
            run.fetch_add(bytes, Ordering::Relaxed);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The bytes logged inside one run's span, kept in the span itself: a process running
/// several jobs at once (a tick, `--schedule`) bills each its own lines.
struct RunLogs(Arc<AtomicU64>);

/// Gives `span` (a run's, see `run::span`) its own count of logged bytes.
pub fn count_run_logs(span: &tracing::Span) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(span) = dispatch
            .downcast_ref::<Registry>()
            .and_then(|registry| registry.span(id))
        {
            span.extensions_mut()
                .insert(RunLogs(Arc::new(AtomicU64::new(0))));
        }
    });
}

/// Bytes logged so far inside the run whose span is current (0 outside one).
pub fn run_logged() -> u64 {
    run_counter().map_or(0, |c| c.load(Ordering::Relaxed))
}

/// The counter of the innermost run span around the current one, if any.
fn run_counter() -> Option<Arc<AtomicU64>> {
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let id = dispatch.current_span().id()?.clone();
        let span = registry.span(&id)?;
        span.scope()
            .find_map(|s| s.extensions().get::<RunLogs>().map(|r| r.0.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_as_cloudwatch_bills_them() {
        let before = logged();
        let mut w = Counted(Vec::new(), None);
        w.write_all(b"{\"a\":1}\n{\"b\":22}\n").unwrap();
        // 7 + 8 bytes of events, two events of 26 bytes' overhead.
        assert!(logged() - before >= 15 + 52);
        assert_eq!(w.0.len(), 17);
        assert_eq!(billable(7), 33);
    }
}
