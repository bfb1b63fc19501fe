//! Check-ins for monitors outside AWS (Healthchecks.io, or any service with the same
//! ping URLs): a run that starts pings `<url>/start`, and when it ends `<url>` if it
//! succeeded or `<url>/fail` if not, each with the run id (`?rid=`, Healthchecks' run
//! ids) and a one-line body naming the job, the outcome and the exit code.
//!
//! A monitor outside AWS learns what AWS cannot tell it: that nothing ran at all (no
//! ping by the deadline it was given). The pings never change a run: each is bounded
//! by [`TIMEOUT`], the start ping goes out beside the job rather than before it, and a
//! ping that fails is a warning, never the run's failure. A run skipped because
//! another holds the lock pings nothing: that other run is the one checking in.
//!
//! The URL is a secret (anyone holding it can report success): it is never logged, and
//! errors are logged without it.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::report::RunReport;

/// The longest a ping may take, connection included.
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);

/// One job's check-in URL and the client that pings it.
pub struct Heartbeat {
    url: SecretString,
    client: reqwest::Client,
}

/// The start ping, under way beside the job.
pub struct Started {
    ping: JoinHandle<()>,
    deadline: Instant,
}

impl Heartbeat {
    /// A heartbeat for `url`, which must be an http(s) URL. The error does not repeat
    /// the URL.
    pub fn new(url: SecretString) -> Result<Heartbeat, String> {
        let parsed = reqwest::Url::parse(url.expose_secret().trim())
            .map_err(|e| format!("is not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err("is not an http(s) URL with a host".to_string());
        }
        let client = crate::http::client(crate::http::Timeouts {
            connect: TIMEOUT,
            request: TIMEOUT,
        })
        .map_err(|e| format!("cannot build an HTTP client: {}", e.without_url()))?;
        Ok(Heartbeat {
            url: SecretString::from(parsed.to_string()),
            client,
        })
    }

    /// Sends `<url>/start` in the background.
    pub fn start(&self, job: &str, run_id: Uuid) -> Started {
        let body = format!("{job} run {run_id} started");
        let deadline = Instant::now() + TIMEOUT;
        Started {
            ping: tokio::spawn(self.ping("/start", run_id, body, deadline)),
            deadline,
        }
    }

    /// Sends `<url>` or `<url>/fail` for how the run ended, after the start ping (given
    /// what is left of its own time), so the monitor sees them in order.
    pub async fn finish(&self, started: Option<Started>, report: &RunReport) {
        let suffix = if report.outcome.is_failure() {
            "/fail"
        } else {
            ""
        };
        let mut body = format!(
            "{} run {}: {}, exit code {}",
            report.job,
            report.run_id,
            report.outcome.as_str(),
            report.exit_code()
        );
        if let Some(first) = report.error.as_deref().and_then(|e| e.lines().next()) {
            body.push_str(": ");
            body.push_str(first);
        }
        self.end(started, suffix, report.run_id, body).await;
    }

    /// The run could not start, be built or be recorded: `/fail`, with the exit code the
    /// process ends with.
    pub async fn runner_failed(
        &self,
        started: Option<Started>,
        job: &str,
        run_id: Uuid,
        exit: crate::exit::Exit,
        why: &str,
    ) {
        let code = exit.code();
        let body = format!("{job} run {run_id}: the runner failed, exit code {code}: {why}");
        self.end(started, "/fail", run_id, body).await;
    }

    /// The end of a run waits at most [`TIMEOUT`] in all: for the start ping (if it is
    /// still under way), then for its own.
    async fn end(&self, started: Option<Started>, suffix: &str, run_id: Uuid, body: String) {
        let deadline = Instant::now() + TIMEOUT;
        if let Some(mut s) = started
            && tokio::time::timeout_at(s.deadline.min(deadline), &mut s.ping)
                .await
                .is_err()
        {
            s.ping.abort();
            tracing::warn!(ping = "/start", "heartbeat not answered in time");
        }
        self.ping(suffix, run_id, body, deadline).await;
    }

    /// One ping, given until `deadline`; failures are logged without the URL.
    fn ping(
        &self,
        suffix: &str,
        run_id: Uuid,
        body: String,
        deadline: Instant,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        // `<url>/start?rid=...`, keeping any query the check's URL has of its own.
        let url = reqwest::Url::parse(self.url.expose_secret()).map(|mut url| {
            let path = format!("{}{suffix}", url.path().trim_end_matches('/'));
            url.set_path(&path);
            url.query_pairs_mut()
                .append_pair("rid", &run_id.to_string());
            url
        });
        let request = url.map(|url| self.client.post(url).body(body));
        let what = if suffix.is_empty() { "/" } else { suffix }.to_string();
        async move {
            // Parsed when the heartbeat was made, so this does not fail.
            let Ok(request) = request else { return };
            match tokio::time::timeout_at(deadline, request.send()).await {
                Ok(Ok(r)) if r.status().is_success() => {
                    tracing::debug!(ping = %what, "heartbeat sent");
                }
                Ok(Ok(r)) => {
                    tracing::warn!(ping = %what, status = r.status().as_u16(), "heartbeat refused");
                }
                Ok(Err(e)) => {
                    tracing::warn!(ping = %what, error = %e.without_url(), "heartbeat not sent");
                }
                Err(_) => {
                    tracing::warn!(ping = %what, timeout_s = TIMEOUT.as_secs(), "heartbeat not answered in time");
                }
            }
        }
    }
}
