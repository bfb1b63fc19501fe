//! The one way run-job talks HTTP to providers: a client setup and a retry policy.
//!
//! Every provider client is built with [`client`] (timeouts, no redirects, our
//! User-Agent) and retries transient failures with [`retry`]: exponential backoff with
//! jitter on network errors, timeouts, 5xx and 429, honouring `Retry-After`, and never
//! on other 4xx. What counts as transient is the provider error's business
//! ([`Transient`]); how long to wait is decided here only. Row-level backoff across runs
//! (a payment that keeps failing) is a different concept and lives in `failure`.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The longest `Retry-After` we honour; a provider asking for more gets this, so one
/// call cannot stall a run past its timeout.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Timeouts of one client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

/// A client with the given timeouts, no redirects, and our User-Agent.
pub(crate) fn client(timeouts: Timeouts) -> reqwest::Result<reqwest::Client> {
    builder(timeouts).build()
}

/// The settings every client starts from; a caller that must differ (the image
/// downloader follows a few redirects and names itself differently) changes only that.
pub(crate) fn builder(timeouts: Timeouts) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("run-job/", env!("CARGO_PKG_VERSION")))
}

/// Why a provider's answer was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("{provider}'s answer is larger than {limit} bytes; it is not read")]
    TooLarge { provider: String, limit: usize },
    #[error("{provider}'s answer was cut off")]
    Cut { provider: String },
}

/// A provider's answer, read up to `limit` bytes: a `Content-Length` over it is refused
/// before reading, a body that grows past it is dropped as soon as it does. A provider
/// (or whoever answers in its place) cannot make a run hold more than that.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    provider: &str,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let too_large = || BodyError::TooLarge {
        provider: provider.to_string(),
        limit,
    };
    if response.content_length().is_some_and(|l| l > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| BodyError::Cut {
        provider: provider.to_string(),
    })? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What the retry loop needs to know about a failed call.
pub(crate) trait Transient {
    /// Worth another attempt: network error, timeout, 5xx, 429.
    fn is_transient(&self) -> bool;
    /// The wait the server asked for (429/503 `Retry-After`).
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// How many times and how fast to retry a call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: usize,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// Three retries starting at 500 ms, doubling, capped at 8 s, each with jitter.
    pub(crate) const DEFAULT: RetryPolicy = RetryPolicy {
        retries: 3,
        initial: Duration::from_millis(500),
        max: Duration::from_secs(8),
    };
}

/// Runs `call` until it succeeds, fails with a non-transient error, or the policy's
/// retries are spent. A `Retry-After` replaces the computed delay (capped at
/// [`MAX_RETRY_AFTER`]).
pub(crate) async fn retry<T, E, F, Fut>(policy: RetryPolicy, what: &str, call: F) -> Result<T, E>
where
    E: Transient + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.initial)
        .with_max_delay(policy.max)
        .with_max_times(policy.retries)
        .with_jitter();
    call.retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e: &E| e.is_transient())
        .adjust(|e: &E, computed| {
            computed.map(|d| {
                e.retry_after()
                    .map_or(d, |asked| asked.min(MAX_RETRY_AFTER))
            })
        })
        .notify(|e: &E, wait| {
            tracing::debug!(call = what, error = %e, wait_ms = wait.as_millis() as u64, "retrying");
        })
        .await
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    (at - crate::clock::wall())
        .to_std()
        .ok()
        .or(Some(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug)]
    struct Failure {
        transient: bool,
        after: Option<Duration>,
    }
    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failure")
        }
    }
    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            self.transient
        }
        fn retry_after(&self) -> Option<Duration> {
            self.after
        }
    }

    const FAST: RetryPolicy = RetryPolicy {
        retries: 3,
        initial: Duration::from_millis(1),
        max: Duration::from_millis(4),
    };

    #[tokio::test]
    async fn transient_failures_are_retried_then_given_up() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Failure> = retry(FAST, "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure {
                transient: true,
                after: None,
            })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "one attempt and three retries"
        );
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Failure> = retry(FAST, "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure {
                transient: false,
                after: None,
            })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retry_after_replaces_the_computed_delay() {
        let calls = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let result = retry(FAST, "test", || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(Failure {
                    transient: true,
                    after: Some(Duration::from_millis(300)),
                })
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "waited as asked"
        );
    }

    /// One answer of `size` bytes on loopback, with or without its length declared.
    async fn answer_of(size: usize, declared: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = if declared {
                format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_string()
            };
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&vec![b'x'; size]).await;
        });
        format!("http://{address}/")
    }

    #[tokio::test]
    async fn answers_over_the_cap_are_refused_naming_the_provider_and_the_limit() {
        let client = client(Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(5),
        })
        .unwrap();
        for declared in [true, false] {
            let url = answer_of(3 * 1024 * 1024, declared).await;
            let response = client.get(&url).send().await.unwrap();
            let refused = read_capped(response, "dLocal Go", 1024 * 1024)
                .await
                .unwrap_err();
            assert_eq!(
                refused.to_string(),
                "dLocal Go's answer is larger than 1048576 bytes; it is not read"
            );
        }
        let url = answer_of(1000, false).await;
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(
            read_capped(response, "dLocal Go", 1024 * 1024)
                .await
                .unwrap()
                .len(),
            1000
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a date in the past: retry now"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
