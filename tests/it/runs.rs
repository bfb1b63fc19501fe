//! Runs of real jobs as real processes: overlap, signals, timeouts, failures, history.

use std::time::{Duration, Instant};

use futures::future::join_all;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test(migrations = "./migrations")]
async fn five_copies_started_at_once_run_once_and_skip_four(pool: PgPool) {
    let children: Vec<_> = (0..5)
        .map(|_| {
            let mut cmd = run_job_on(&pool);
            cmd.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "3000");
            output(cmd)
        })
        .collect();
    let ran = join_all(children).await;

    for r in &ran {
        assert_eq!(r.code, Some(0), "a skip exits 0 too:\n{}", r.stderr);
    }
    let outcomes: Vec<String> = ran
        .iter()
        .map(|r| summary(&r.stderr)["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "succeeded").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "skipped").count(),
        4,
        "{outcomes:?}"
    );
    let skipper = ran
        .iter()
        .find(|r| summary(&r.stderr)["outcome"] == "skipped")
        .unwrap();
    assert!(
        skipper
            .stderr
            .contains("another run of this job holds its lock")
    );

    let rows = runs(&pool).await;
    assert_eq!(rows.len(), 5);
    let succeeded: Vec<_> = rows.iter().filter(|r| r.outcome == "succeeded").collect();
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0].items_processed, 30);
    assert_eq!(rows.iter().filter(|r| r.outcome == "skipped").count(), 4);
    assert!(rows.iter().all(|r| r.job == "demo-sleep"
        && r.finished
        && r.exit_code == Some(0)
        && r.trigger == "manual"));
}

#[sqlx::test(migrations = "./migrations")]
async fn jobs_that_allow_overlap_run_side_by_side(pool: PgPool) {
    let children: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = run_job_on(&pool);
            cmd.arg("demo-parallel")
                .env("RUN_JOB_DEMO_SLEEP_MS", "1500");
            output(cmd)
        })
        .collect();
    for r in join_all(children).await {
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    }
    let rows = runs(&pool).await;
    assert_eq!(rows.iter().filter(|r| r.outcome == "succeeded").count(), 3);
}

#[sqlx::test(migrations = "./migrations")]
async fn sigterm_interrupts_the_job_and_closes_its_run_within_the_grace(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.args(["demo-sleep", "--grace-seconds", "10"])
        .env("RUN_JOB_DEMO_SLEEP_MS", "120000");
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    wait_for_running(&pool, "demo-sleep", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    send_signal(pid, "TERM");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exited")
        .unwrap();
    let took = signalled.elapsed();

    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM, grace is 10 s"
    );
    assert_eq!(out.status.code(), Some(5), "interrupted exit code");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let s = summary(&stderr);
    assert_eq!(s["outcome"], "interrupted");
    assert_eq!(s["exit_code"], 5);
    let rows = runs(&pool).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.outcome, "interrupted");
    assert!(row.finished, "run row closed");
    assert_eq!(row.exit_code, Some(5));
    assert!(
        row.items_processed >= 1,
        "work done before the signal is counted"
    );
    assert!(
        row.error
            .as_deref()
            .unwrap()
            .contains("interrupted by a signal")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_job_past_its_timeout_is_cancelled_then_aborted(pool: PgPool) {
    // demo-stubborn declares timeout_seconds: 2 and ignores cancellation.
    let mut cmd = run_job_on(&pool);
    cmd.args(["demo-stubborn", "--grace-seconds", "1"])
        .env("RUN_JOB_DEMO_SLEEP_MS", "60000");
    let started = Instant::now();
    let r = output(cmd).await;
    let took = started.elapsed();

    assert_eq!(r.code, Some(4), "timed-out exit code:\n{}", r.stderr);
    assert!(
        took >= Duration::from_secs(3),
        "timeout 2 s + grace 1 s, took {took:?}"
    );
    assert!(
        took < Duration::from_secs(15),
        "aborted promptly, took {took:?}"
    );
    let rows = runs(&pool).await;
    assert_eq!(rows[0].outcome, "timed_out");
    assert!(
        rows[0].items_processed >= 20,
        "an aborted run records the items it had done: {:?}",
        rows[0]
    );
    assert!(
        rows[0]
            .error
            .as_deref()
            .unwrap()
            .contains("timed out after 2 s; did not stop within 1 s and was aborted")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failed_job_exits_1_with_its_counts_and_reason(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-fail");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(1));
    let s = summary(&r.stderr);
    assert_eq!(s["outcome"], "failed");
    assert_eq!(s["level"], "ERROR");
    assert_eq!(s["items_processed"], 3);
    assert_eq!(s["items_failed"], 1);
    assert_eq!(s["error"], "demo failure: the provider answered 500");
    // CloudWatch Embedded Metric Format: the metrics it declares are top-level numbers.
    let emf = &s["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(emf["Namespace"], "RunJob");
    assert_eq!(emf["Dimensions"][0][0], "job");
    for metric in emf["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap();
        assert!(s[name].is_number(), "metric {name} has a numeric value");
    }
    assert!(s["_aws"]["Timestamp"].is_i64());
    assert_eq!(s["Failed"], 1);

    let rows = runs(&pool).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].outcome.as_str(),
            rows[0].items_processed,
            rows[0].items_succeeded,
            rows[0].items_failed
        ),
        ("failed", 3, 2, 1)
    );
    assert_eq!(
        rows[0].error.as_deref(),
        Some("demo failure: the provider answered 500")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_killed_outright_is_closed_as_abandoned_by_the_next(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "120000");
    let mut child = cmd.spawn().unwrap();
    wait_for_running(&pool, "demo-sleep", Duration::from_secs(20)).await;
    send_signal(child.id().unwrap(), "KILL");
    child.wait().await.unwrap();

    // The lock went with the connection: the next run is not skipped.
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "200");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let rows = runs(&pool).await;
    let outcomes: Vec<_> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["abandoned", "succeeded"]);
    assert!(rows[0].finished);
}

#[sqlx::test(migrations = "./migrations")]
async fn every_log_line_is_json_with_job_and_run_id_and_no_secret(pool: PgPool) {
    // Trust auth accepts any password, so a real one can travel the whole path.
    let url = url_for(&pool).replacen("postgres@", "postgres:Sup3r-Secret-Pw@", 1);
    let mut cmd = run_job();
    cmd.arg("demo-sleep")
        .env("DATABASE_URL", &url)
        .env("RUN_JOB_DEMO_SLEEP_MS", "200")
        .env("RUN_JOB_TRIGGER", "eventbridge");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("Sup3r-Secret-Pw") && !r.stdout.contains("Sup3r-Secret-Pw"));
    assert!(!r.stderr.contains('\u{1b}'), "no ANSI escapes in JSON logs");
    let lines = json_lines(&r.stderr);
    assert!(lines.len() >= 3, "{}", r.stderr);
    let run_id = summary(&r.stderr)["run_id"].as_str().unwrap().to_string();
    for line in &lines {
        let (job, id) = match line.get("span") {
            Some(span) => (&span["job"], &span["run_id"]),
            None => (&line["job"], &line["run_id"]),
        };
        assert_eq!(job, "demo-sleep", "{line}");
        assert_eq!(id.as_str(), Some(run_id.as_str()), "{line}");
    }
    assert_eq!(runs(&pool).await[0].trigger, "eventbridge");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_database_without_the_schema_exits_6_naming_the_table(pool: PgPool) {
    sqlx::query("DROP TABLE job_runs")
        .execute(&pool)
        .await
        .unwrap();
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-fail");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(6));
    assert!(r.stderr.contains("job_runs"), "{}", r.stderr);
    assert!(r.stderr.contains("run-job migrate"), "{}", r.stderr);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_whose_row_cannot_be_closed_still_reports_its_outcome(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "1500");
    let child = cmd.spawn().unwrap();
    wait_for_running(&pool, "demo-sleep", Duration::from_secs(20)).await;
    // From now on no row may become `succeeded`: closing this run's row fails.
    sqlx::query(
        "ALTER TABLE job_runs ADD CONSTRAINT no_success CHECK (outcome <> 'succeeded') NOT VALID",
    )
    .execute(&pool)
    .await
    .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exited")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the job succeeded:\n{stderr}");
    assert_eq!(summary(&stderr)["outcome"], "succeeded");
    assert!(
        stderr.contains("could not close this run's job_runs row"),
        "{stderr}"
    );
    assert_eq!(
        runs(&pool).await[0].outcome,
        "running",
        "left for the next run to close"
    );
}

/// The JSON lines of a run's stderr whose message contains `fragment`, with their time.
fn logged_at(stderr: &str, fragment: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    json_lines(stderr).into_iter().find_map(|line| {
        let message = line["message"].as_str()?;
        if !message.contains(fragment) {
            return None;
        }
        chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str()?)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    })
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_that_loses_its_lock_stops_at_once_and_both_rows_tell_the_truth(pool: PgPool) {
    let mut first = run_job_on(&pool);
    first
        .arg("demo-sleep")
        .env("RUN_JOB_DEMO_SLEEP_MS", "60000");
    let first = first.spawn().unwrap();
    wait_for_running(&pool, "demo-sleep", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;

    // A second run waits for the lock on a connection of its own; it gets it the moment
    // the first run's lock connection is gone.
    let mut waiter = pool.acquire().await.unwrap();
    let lock_pid: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_locks
          WHERE locktype = 'advisory' AND granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&pool)
    .await
    .expect("the first run holds its advisory lock");
    let waiting = tokio::spawn(async move {
        sqlx::query("SELECT pg_advisory_lock($1, hashtext('demo-sleep'))")
            .bind(run_job::run::LOCK_NAMESPACE)
            .execute(&mut *waiter)
            .await
            .unwrap();
        (chrono::Utc::now(), waiter)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the lock is still held");
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(lock_pid)
        .execute(&pool)
        .await
        .unwrap();
    let (taken_over_at, mut waiter) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the lock is free once its connection is gone")
        .unwrap();

    // Well inside the 10 s grace a cancelled run would get.
    let ran = finished(first, Duration::from_secs(5)).await;
    let stderr = ran.stderr;
    assert_eq!(ran.code, Some(7), "{stderr}");
    let stopped_at = logged_at(&stderr, "stopped at once").expect("the stop is logged");
    let overlap = stopped_at - taken_over_at;
    println!(
        "lock lost -> job stopped, measured overlap: {} µs",
        overlap.num_microseconds().unwrap_or(i64::MAX)
    );
    assert!(
        overlap < chrono::TimeDelta::milliseconds(500),
        "the first run went on {} ms after another could take its lock",
        overlap.num_milliseconds()
    );
    let s = summary(&stderr);
    assert_eq!(s["outcome"], "lock_lost");
    assert_eq!(s["exit_code"], 7);
    assert!(s["items_processed"].as_u64().unwrap() >= 5, "{s}");

    // The next run takes over; the waiting stand-in lets go first.
    sqlx::query("SELECT pg_advisory_unlock($1, hashtext('demo-sleep'))")
        .bind(run_job::run::LOCK_NAMESPACE)
        .execute(&mut *waiter)
        .await
        .unwrap();
    let mut second = run_job_on(&pool);
    second.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "300");
    let r = output(second).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(summary(&r.stderr)["outcome"], "succeeded");

    let rows = runs(&pool).await;
    let outcomes: Vec<_> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["lock_lost", "succeeded"]);
    let lost = &rows[0];
    assert!(lost.finished);
    assert_eq!(lost.exit_code, Some(7));
    assert_eq!(lost.items_processed, s["items_processed"].as_i64().unwrap());
    assert!(
        lost.error.as_deref().unwrap().contains("lost the run lock"),
        "{:?}",
        lost.error
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_row_closed_as_abandoned_by_the_next_run_is_corrected_by_the_run_itself(pool: PgPool) {
    // A run whose lock connection died keeps stopping while the next run, holding the
    // lock, closes its row as abandoned; the stopping run's own report wins.
    let run_id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO job_runs (id, job, trigger, started_at, finished_at, outcome, error)
         VALUES ($1, 'demo-sleep', 'manual', now(), now(), 'abandoned', 'guessed')",
    )
    .bind(run_id)
    .execute(&pool)
    .await
    .unwrap();
    let report = run_job::run::RunReport {
        run_id,
        job: "demo-sleep".into(),
        trigger: "manual".into(),
        started_at: chrono::Utc::now(),
        finished_at: chrono::Utc::now(),
        outcome: run_job::run::Outcome::LockLost,
        summary: run_job::jobs::Summary {
            processed: 12,
            succeeded: 12,
            ..Default::default()
        },
        error: Some("lost the run lock".into()),
        host: None,
        log_bytes: 2_048,
    };
    run_job::run::finish(&pool, &report).await.unwrap();
    // A final row is final: writing again changes nothing.
    let mut again = report.clone();
    again.outcome = run_job::run::Outcome::Succeeded;
    run_job::run::finish(&pool, &again).await.unwrap();
    let rows = runs(&pool).await;
    assert_eq!(
        (
            rows[0].outcome.as_str(),
            rows[0].items_processed,
            rows[0].exit_code
        ),
        ("lock_lost", 12, Some(7))
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_ending_while_the_database_refuses_connections_closes_its_row_when_it_returns(
    pool: PgPool,
) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    // A database cannot close itself to connections: this is done from the server's
    // maintenance database.
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
        .await
        .unwrap();
    // demo-parallel takes no lock, so only the end of the run meets the outage.
    let mut cmd = run_job_on(&pool);
    cmd.args(["demo-parallel", "--grace-seconds", "20"])
        .env("RUN_JOB_DEMO_SLEEP_MS", "1500");
    let child = cmd.spawn().unwrap();
    wait_for_running(&pool, "demo-parallel", Duration::from_secs(20)).await;
    // The database goes away: no new connections, and the run's own are cut.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND application_name LIKE 'run-job:%'",
    )
    .bind(&db)
    .execute(&mut admin)
    .await
    .unwrap();
    // The job ends (failing its last query) and its row cannot be written for a while.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS true"
    )))
    .execute(&mut admin)
    .await
    .unwrap();

    let ran = finished(child, Duration::from_secs(30)).await;
    let stderr = ran.stderr;
    assert_eq!(ran.code, Some(1), "{stderr}");
    assert!(
        stderr.contains("retrying"),
        "the write was retried:\n{stderr}"
    );
    let s = summary(&stderr);
    assert_eq!(s["outcome"], "failed");
    let rows = runs(&pool).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(row.finished, "closed once the database came back");
    assert_eq!(row.outcome, "failed");
    assert_eq!(row.exit_code, Some(1));
    assert_eq!(row.items_processed, s["items_processed"].as_i64().unwrap());
    assert!(row.items_processed >= 10, "{row:?}");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_longer_than_the_lock_heartbeat_keeps_its_lock(pool: PgPool) {
    // The heartbeat asks the server whether the session still holds the lock; a run that
    // outlives several must neither lose the lock nor let a second run in. The test build
    // beats every 200 ms instead of every 5 s.
    let mut cmd = run_job_on(&pool);
    cmd.arg("demo-sleep")
        .env("RUN_JOB_DEMO_SLEEP_MS", "2000")
        .env("RUN_JOB_TEST_LOCK_HEARTBEAT_MS", "200");
    let first = cmd.spawn().unwrap();
    wait_for_running(&pool, "demo-sleep", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut second = run_job_on(&pool);
    second.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "100");
    let second = output(second).await;
    assert_eq!(
        summary(&second.stderr)["outcome"],
        "skipped",
        "{}",
        second.stderr
    );
    let first = finished(first, Duration::from_secs(20)).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(summary(&first.stderr)["outcome"], "succeeded");
    assert!(
        !first.stderr.contains("lost the run lock"),
        "{}",
        first.stderr
    );
}
