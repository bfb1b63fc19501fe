//! `run-job --schedule`: fires on the EventBridge schedule, records runs like any
//! other, and drains on SIGTERM.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test(migrations = "./migrations")]
async fn the_scheduler_fires_on_the_minute_and_drains_on_sigterm(pool: PgPool) {
    // demo-sleep is declared `cron(* * * * ? *)`: the first fire comes within a minute.
    let mut cmd = run_job_on(&pool);
    cmd.args(["--schedule", "--only", "demo-sleep", "--grace-seconds", "5"])
        .env("RUN_JOB_DEMO_SLEEP_MS", "30000");
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    wait_for_running(&pool, "demo-sleep", Duration::from_secs(75)).await;

    let fired_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT started_at FROM job_runs LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    use chrono::Timelike;
    assert!(
        fired_at.second() < 3,
        "fired at the top of the minute: {fired_at}"
    );

    let signalled = Instant::now();
    send_signal(pid, "TERM");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("scheduler exited")
        .unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "drained within the grace"
    );
    assert_eq!(out.status.code(), Some(0), "a drained scheduler exits 0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scheduler stopped"), "{stderr}");

    let rows = runs(&pool).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].trigger, "schedule");
    assert_eq!(rows[0].outcome, "interrupted");
    assert!(rows[0].finished);
}
