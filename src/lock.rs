//! One run at a time per job, across tasks and machines: a PostgreSQL session advisory
//! lock held on a dedicated connection for the whole run.
//!
//! A crashed run releases its lock by losing its connection, so there are no stale locks
//! and no TTLs to guess. The connection is watched: if it drops mid-run the lock is
//! gone, another run may start, and [`RunLock::lost`] fires so the runner cancels this
//! one. Not getting the lock is a normal outcome (`None`), not an error.
//!
//! # Design
//! The key is the two-integer form `(namespace, hashtext(job))`, so it cannot collide
//! with single-key advisory locks the application takes for its own reasons.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// "RUNJ": the first key of every run lock.
const NAMESPACE: i32 = 0x5255_4E4A;
/// How often the lock's connection is checked.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// A held lock. Dropping it without [`RunLock::release`] also releases it (the
/// connection closes), just less promptly.
pub struct RunLock {
    release: CancellationToken,
    lost: CancellationToken,
    task: JoinHandle<()>,
}

/// Takes the job's lock if nobody holds it.
pub async fn try_acquire(
    options: &PgConnectOptions,
    job: &str,
) -> Result<Option<RunLock>, sqlx::Error> {
    let mut conn = PgConnection::connect_with(options).await?;
    let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(NAMESPACE)
        .bind(job)
        .fetch_one(&mut conn)
        .await?;
    if !acquired {
        let _ = conn.close().await;
        return Ok(None);
    }
    let release = CancellationToken::new();
    let lost = CancellationToken::new();
    let task =
        tokio::spawn(hold(conn, job.to_string(), release.clone(), lost.clone()).in_current_span());
    Ok(Some(RunLock {
        release,
        lost,
        task,
    }))
}

async fn hold(
    mut conn: PgConnection,
    job: String,
    release: CancellationToken,
    lost: CancellationToken,
) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    loop {
        tokio::select! {
            _ = release.cancelled() => {
                let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                    .bind(NAMESPACE)
                    .bind(&job)
                    .execute(&mut conn)
                    .await;
                if let Err(e) = unlocked {
                    tracing::warn!(error = %e, "unlocking failed; closing the connection releases the lock");
                }
                let _ = conn.close().await;
                return;
            }
            _ = beat.tick() => {
                let alive = tokio::time::timeout(HEARTBEAT, conn.ping()).await;
                if !matches!(alive, Ok(Ok(()))) {
                    tracing::error!("lost the lock's database connection; another run may start");
                    lost.cancel();
                    return;
                }
            }
        }
    }
}

impl RunLock {
    /// Resolves if the lock's connection dies while the run holds it.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Unlocks and closes the connection.
    pub async fn release(self) {
        self.release.cancel();
        let _ = self.task.await;
    }
}
