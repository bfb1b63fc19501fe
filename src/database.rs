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
pub enum ConnectError {
    #[error("interrupted by a signal while connecting to the database")]
    Interrupted,
    #[error("cannot connect to {target}: {cause}")]
    Unreachable { target: String, cause: String },
}

/// Connects once (to learn, quickly, whether the database is there), then returns the
/// pool and the options the run lock uses for its own connection.
pub async fn connect(
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
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(15))
        .connect_lazy_with(options.clone());
    Ok((pool, options))
}

/// Closes the pool politely if the server answers soon: an aborted job may have left a
/// connection to a server that no longer answers, and an exit must not wait for TCP.
pub async fn close(pool: PgPool) {
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

/// One line for a database error, without PostgreSQL's source-file position and
/// without anything from the connection string.
pub fn describe(e: &sqlx::Error) -> String {
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
