//! Reaching the database: one connection first, to fail fast with the real cause, then
//! the pool the run uses.
//!
//! sqlx's pool retries a refused connection until its acquire timeout and then reports
//! only "pool timed out", which hides why. So a single connection is made first, bounded
//! by `DATABASE_CONNECT_TIMEOUT_SECONDS` (a host that never answers), and its error is
//! turned into one line that says what went wrong: refused, unknown host, TLS, login,
//! missing database. A server that is starting up or out of connection slots is asked
//! again until the timeout. A signal while connecting ends the wait at once. Nothing here reads
//! the environment (see `config`) or prints (see `app`).

use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// Why the database could not be reached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("interrupted by a signal while connecting to the database")]
    Interrupted,
    #[error("cannot connect to {target}: {cause}")]
    Unreachable { target: String, cause: String },
}

/// Connects once (to learn, quickly, whether the database is there), then returns the
/// pool and the options the run lock uses for its own connection.
pub(crate) async fn connect(
    settings: &Settings,
    application_name: &str,
    shutdown: &CancellationToken,
) -> Result<(PgPool, PgConnectOptions), ConnectError> {
    let options = settings.database.connect_options(application_name);
    let unreachable = |cause: String| ConnectError::Unreachable {
        target: settings.database.to_string(),
        cause,
    };
    let probe = tokio::select! {
        probe = tokio::time::timeout(settings.connect_timeout, probe(&options)) => probe,
        _ = shutdown.cancelled() => return Err(ConnectError::Interrupted),
    };
    match probe {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => return Err(unreachable(describe(&e))),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {} s (DATABASE_CONNECT_TIMEOUT_SECONDS); is the host reachable from here?",
                settings.connect_timeout.as_secs()
            )));
        }
    }
    let port = options.get_port();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(15))
        .after_connect(move |_conn, _meta| {
            Box::pin(async move {
                disable_nagle(port);
                Ok(())
            })
        })
        .connect_lazy_with(options.clone());
    Ok((pool, options))
}

/// Turns Nagle's algorithm off on this process's TCP connections to `port`, the
/// database's (nothing else here talks to it).
///
/// sqlx 0.9.0 no longer sets TCP_NODELAY (transact-rs/sqlx#4335). A statement larger
/// than its 16 KiB write buffer then leaves in pieces, and the last piece waits for the
/// server's delayed ACK (40 ms on Linux) before PostgreSQL can run the statement: every
/// batched write paid 40 ms. sqlx has no hook into its socket, so each new connection
/// finds the sockets by their peer's port. Setting the option twice, or on a socket
/// closed meanwhile, is harmless. Remove once sqlx sets it again.
pub(crate) fn disable_nagle(port: u16) {
    #[cfg(target_os = "linux")]
    {
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for fd in fds.flatten() {
            let Ok(fd) = fd.file_name().to_string_lossy().parse::<libc::c_int>() else {
                continue;
            };
            if peer_port(fd) == Some(port) {
                let one: libc::c_int = 1;
                // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local;
                // on a descriptor that is not a TCP socket it fails and changes nothing.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::IPPROTO_TCP,
                        libc::TCP_NODELAY,
                        (&raw const one).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    );
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = port;
}

/// The remote port of an IPv4 or IPv6 socket, or `None` for anything else.
#[cfg(target_os = "linux")]
fn peer_port(fd: libc::c_int) -> Option<u16> {
    // SAFETY: sockaddr_storage is plain data, valid zeroed; getpeername writes at most
    // `len` bytes into it and fails on anything that is not a connected socket.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let got = unsafe { libc::getpeername(fd, (&raw mut addr).cast(), &mut len) };
    if got != 0 {
        return None;
    }
    // SAFETY: the family says which of the two layouts getpeername filled in.
    match libc::c_int::from(addr.ss_family) {
        libc::AF_INET => {
            let v4: &libc::sockaddr_in = unsafe { &*(&raw const addr).cast() };
            Some(u16::from_be(v4.sin_port))
        }
        libc::AF_INET6 => {
            let v6: &libc::sockaddr_in6 = unsafe { &*(&raw const addr).cast() };
            Some(u16::from_be(v6.sin6_port))
        }
        _ => None,
    }
}

/// Closes the pool politely if the server answers soon: an aborted job may have left a
/// connection to a server that no longer answers, and an exit must not wait for TCP.
pub(crate) async fn close(pool: PgPool) {
    let _ = tokio::time::timeout(Duration::from_secs(5), pool.close()).await;
}

/// One connection, tried again while the server says it will take one soon (starting
/// up, or out of connection slots for a moment); anything else is the answer.
async fn probe(options: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    let mut wait = Duration::from_millis(100);
    loop {
        match PgConnection::connect_with(options).await {
            Err(sqlx::Error::Database(db)) if is_transient_refusal(db.as_ref()) => {
                tracing::warn!(error = %describe_database(db.as_ref()), "the database refused for now; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            answer => return answer,
        }
    }
}

/// cannot_connect_now (starting up, recovering) and too_many_connections.
fn is_transient_refusal(db: &dyn DatabaseError) -> bool {
    matches!(db.code().as_deref(), Some("57P03" | "53300"))
}

/// The one way a statement is tried again within a run, after a refusal that may pass (a
/// failover, a dropped connection, a deadlock): waits from 100 ms growing to 2 s, with
/// jitter, up to `times` more tries (`None`: until the caller's own timeout ends it).
/// Which errors may pass is the caller's `transient` ([`is_permanent`] negated is the
/// usual answer). Each retry is logged with `what` and the wait. Across runs, a row's
/// retries are `failure`'s business, not this.
pub(crate) async fn retry<T, E, F, Fut>(
    what: &'static str,
    times: Option<usize>,
    transient: impl Fn(&E) -> bool,
    op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    use backon::{ExponentialBuilder, Retryable};
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter();
    let backoff = match times {
        Some(n) => backoff.with_max_times(n),
        None => backoff.without_max_times(),
    };
    op.retry(backoff)
        .when(|e| transient(e))
        .notify(|e, wait| {
            tracing::warn!(
                error = %e,
                retry_in_ms = wait.as_millis() as u64,
                "{what} failed; retrying"
            );
        })
        .await
}

/// Errors that the same statement would meet again: bad data, a broken constraint, a
/// missing table or column, a refused privilege (SQLSTATE classes 22, 23 and 42).
pub(crate) fn is_permanent(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    db.code().is_some_and(|code| {
        ["22", "23", "42"]
            .iter()
            .any(|class| code.starts_with(class))
    })
}

/// A deadlock (SQLSTATE 40P01) anywhere in the chain: the transaction was rolled back
/// and may simply be run again.
pub(crate) fn is_deadlock(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|s| s.as_database_error())
            .and_then(|d| d.code())
            .is_some_and(|code| code == "40P01")
    })
}

/// One line for a database error, without PostgreSQL's source-file position and
/// without anything from the connection string.
pub(crate) fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens on that host and port)".to_string()
        }
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        sqlx::Error::Database(db) => describe_database(db.as_ref()),
        sqlx::Error::PoolTimedOut => "no connection became free in time".to_string(),
        other => other.to_string(),
    }
}

fn describe_database(db: &dyn DatabaseError) -> String {
    let code = db.code().unwrap_or_default();
    let message = db.message();
    match code.as_ref() {
        // invalid_password, invalid_authorization_specification
        "28P01" | "28000" => format!("the server refused the login: {message}"),
        // invalid_catalog_name
        "3D000" => format!("{message} (check the database name)"),
        "" => message.to_string(),
        code => format!("{message} (SQLSTATE {code})"),
    }
}

/// `text` as PostgreSQL stores it: without NUL, which neither `text` nor `jsonb`
/// accepts. Error messages quote provider answers and page text, and one NUL in them
/// would make the write that records the failure fail too.
pub(crate) fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// `value` as a `jsonb` parameter, every string in it (keys included) made
/// [`storable`]. The one way JSON built from outside data is bound.
pub(crate) fn jsonb<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<sqlx::types::Json<serde_json::Value>, sqlx::Error> {
    let value = serde_json::to_value(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    Ok(sqlx::types::Json(storable_json(value)))
}

fn storable_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (storable(&k).into_owned(), storable_json(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod storable_tests {
    use super::*;

    #[test]
    fn nul_is_dropped_from_text_and_from_every_string_in_json() {
        assert_eq!(storable("a\0b"), "ab");
        let bound = jsonb(&serde_json::json!({"e\0": ["x\0y", {"z": "\0"}], "n": 1})).unwrap();
        assert_eq!(bound.0, serde_json::json!({"e": ["xy", {"z": ""}], "n": 1}));
    }
}
