//! One run at a time per job, across tasks and machines: a PostgreSQL session advisory
//! lock held on a dedicated connection for the whole run.
//!
//! A crashed run releases its lock by losing its connection, so there are no stale locks
//! and no TTLs to guess. The other side of that coin: if the connection drops mid-run
//! (the backend terminated, a failover, a network cut), the lock is gone and another run
//! may take it at once. So the connection is never idle on our side: it waits for the
//! server to say something, and a closed or reset socket wakes it immediately, at which
//! point [`RunLock::lost`] fires and the runner stops the run. A cut that closes nothing
//! (a silent network partition) is caught by a heartbeat within `2 × HEARTBEAT`; the
//! server, told to probe the socket, drops the session (and the lock) later than that.
//!
//! Not getting the lock is a normal outcome (`None`), not an error.
//!
//! # Design
//! The key is the two-integer form `(namespace, hashtext(job))`, so it cannot collide
//! with single-key advisory locks the application takes for its own reasons. The wait on
//! the socket is sqlx's `PgListener::try_recv`, which is cancel-safe and reports a lost
//! connection as `Ok(None)`; it is told not to reconnect, since a new connection would
//! not hold the lock.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// "RUNJ": the first key of every run lock.
pub const NAMESPACE: i32 = 0x5255_4E4A;
/// How often a connection that has said nothing is asked whether it is still there, and
/// how long it has to answer. Only a silent network cut depends on this.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The heartbeat period: [`HEARTBEAT`]. A build with the test jobs also reads
/// `RUN_JOB_TEST_LOCK_HEARTBEAT_MS`, so a test of a run that outlives a heartbeat need not
/// last five seconds; a production build has no such variable.
fn heartbeat() -> Duration {
    #[cfg(feature = "test-jobs")]
    if let Some(ms) = std::env::var("RUN_JOB_TEST_LOCK_HEARTBEAT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
    {
        return Duration::from_millis(ms);
    }
    HEARTBEAT
}

/// A held lock. Dropping it without [`RunLock::release`] also releases it (the
/// connection closes), just less promptly.
pub(super) struct RunLock {
    release: CancellationToken,
    lost: CancellationToken,
    task: JoinHandle<()>,
}

/// Takes the job's lock if nobody holds it.
pub(super) async fn try_acquire(
    options: &PgConnectOptions,
    job: &str,
) -> Result<Option<RunLock>, sqlx::Error> {
    // A pool of one, only because sqlx's listener is built from a pool; it never
    // reconnects (see the module docs).
    // The server too must notice a client that vanished without closing its socket, or
    // it would keep the lock (and every later run would skip) until its own keepalive,
    // two hours by default. These make it drop the session, and so the lock, within
    // about 25 s: after this side has stopped the run (within 2 × HEARTBEAT), never before.
    let options = options.clone().options([
        ("tcp_keepalives_idle", "10"),
        ("tcp_keepalives_interval", "5"),
        ("tcp_keepalives_count", "3"),
        ("tcp_user_timeout", "25000"),
    ]);
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(15))
        .connect_lazy_with(options);
    let mut conn = PgListener::connect_with(&pool).await?;
    conn.eager_reconnect(false);
    conn.ignore_pool_close_event(true);
    let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(NAMESPACE)
        .bind(job)
        .fetch_one(&mut conn)
        .await?;
    if !acquired {
        drop(conn);
        crate::database::close(pool).await;
        return Ok(None);
    }
    let release = CancellationToken::new();
    let lost = CancellationToken::new();
    let task = tokio::spawn(
        hold(conn, pool, job.to_string(), release.clone(), lost.clone()).in_current_span(),
    );
    Ok(Some(RunLock {
        release,
        lost,
        task,
    }))
}

/// Why the wait on the lock's connection ended.
enum Ended {
    Released,
    Lost(String),
}

async fn hold(
    mut conn: PgListener,
    pool: PgPool,
    job: String,
    release: CancellationToken,
    lost: CancellationToken,
) {
    let ended = watch(&mut conn, &job, &release).await;
    match ended {
        Ended::Released => {
            let unlock = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(NAMESPACE)
                .bind(&job)
                .execute(&mut conn);
            match tokio::time::timeout(heartbeat(), unlock).await {
                Ok(Ok(_)) => {
                    drop(conn);
                    crate::database::close(pool).await;
                }
                Ok(Err(e)) => tracing::warn!(
                    error = %crate::database::describe(&e),
                    "unlocking failed; closing the connection releases the lock"
                ),
                Err(_) => tracing::warn!(
                    "unlocking got no answer; closing the connection releases the lock"
                ),
            }
        }
        Ended::Lost(why) => {
            tracing::error!(
                cause = %why,
                "lost the run lock: its database connection is gone, so another run may start now"
            );
            lost.cancel();
        }
    }
    // Whatever is left (a connection that did not answer) is dropped, not awaited: a
    // socket to a vanished server could hold a polite close for as long as TCP retries.
}

/// Waits on the socket until the run releases the lock or the connection is gone.
async fn watch(conn: &mut PgListener, job: &str, release: &CancellationToken) -> Ended {
    loop {
        tokio::select! {
            biased;
            _ = release.cancelled() => return Ended::Released,
            message = conn.try_recv() => match message {
                // Nobody notifies this connection; whatever came, it is still alive.
                Ok(Some(_)) => continue,
                Ok(None) => return Ended::Lost("the server closed the connection".to_string()),
                Err(e) => return Ended::Lost(crate::database::describe(&e)),
            },
            _ = tokio::time::sleep(heartbeat()) => {
                // try_recv was cancelled between messages (it is cancel-safe), so the
                // connection is free for a query. It asks whether this session still
                // holds the lock, not just whether it answers.
                let held = sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks
                                     WHERE locktype = 'advisory' AND granted
                                       AND pid = pg_backend_pid()
                                       AND classid = $1::oid AND objid = hashtext($2)::oid
                                       AND objsubid = 2)",
                )
                .bind(i64::from(NAMESPACE))
                .bind(job)
                .fetch_one(&mut *conn);
                match tokio::time::timeout(heartbeat(), held).await {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => return Ended::Lost("the session no longer holds the lock".to_string()),
                    Ok(Err(e)) => return Ended::Lost(crate::database::describe(&e)),
                    Err(_) => return Ended::Lost(format!("no answer within {} ms", heartbeat().as_millis())),
                }
            }
        }
    }
}

impl RunLock {
    /// Resolves if the lock's connection dies while the run holds it.
    pub(super) async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Unlocks and closes the connection, waiting at most a few seconds for the server.
    pub(super) async fn release(self) {
        self.release.cancel();
        let mut task = self.task;
        if tokio::time::timeout(3 * heartbeat(), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}
