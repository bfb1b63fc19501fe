//! Check-ins against the Healthchecks.io-style stand-in: start then success, start then
//! fail with the exit code, a fail when the database is gone, a monitor that hangs (the
//! run still ends on time), and the secret URL in no log line.

use std::time::{Duration, Instant};

use run_job::sandbox::Sandbox;
use sqlx::PgPool;

use crate::helpers::*;

const CHECK: &str = "5f1d0c2e-secret-check";

fn url(s: &Sandbox) -> String {
    format!("{}/ping/{CHECK}", s.base_url)
}

fn assert_no_url(stderr: &str) {
    assert!(
        !stderr.contains(CHECK),
        "the check-in URL reached a log line:\n{stderr}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_checks_in_at_its_start_and_on_success(pool: PgPool) {
    let s = stand_ins().await;
    let mut c = run_job_on(&pool);
    c.arg("demo-sleep")
        .env("RUN_JOB_DEMO_SLEEP_MS", "200")
        .env("RUN_JOB_DEMO_HEARTBEAT_URL", url(&s));
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let run_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM job_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    let pings = s.heartbeats();
    let kinds: Vec<&str> = pings.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["start", "success"], "{pings:?}");
    assert!(
        pings
            .iter()
            .all(|p| p.check == CHECK && p.rid == Some(run_id.to_string()))
    );
    assert!(
        pings[1].body.contains("succeeded, exit code 0"),
        "{:?}",
        pings[1]
    );
    assert_no_url(&r.stderr);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failed_run_checks_in_as_failed_with_its_exit_code(pool: PgPool) {
    let s = stand_ins().await;
    let mut c = run_job_on(&pool);
    c.arg("demo-fail")
        .env("RUN_JOB_DEMO_HEARTBEAT_URL", url(&s));
    let r = output(c).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let pings = s.heartbeats();
    let kinds: Vec<&str> = pings.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["start", "fail"], "{pings:?}");
    assert!(
        pings[1].body.contains("failed, exit code 1"),
        "{:?}",
        pings[1]
    );
    assert_no_url(&r.stderr);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_that_cannot_reach_its_database_checks_in_as_failed(_pool: PgPool) {
    let s = stand_ins().await;
    let mut c = run_job();
    c.arg("demo-sleep")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("RUN_JOB_DEMO_HEARTBEAT_URL", url(&s));
    let r = output(c).await;
    assert_eq!(r.code, Some(6), "{}", r.stderr);
    let pings = s.heartbeats();
    assert_eq!(pings.len(), 1, "{pings:?}");
    assert_eq!(pings[0].kind, "fail");
    assert!(pings[0].body.contains("exit code 6"), "{:?}", pings[0]);
    assert_no_url(&r.stderr);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_monitor_that_hangs_or_refuses_delays_the_run_by_at_most_five_seconds(pool: PgPool) {
    let s = stand_ins().await;
    s.hang_heartbeats();
    let started = Instant::now();
    let mut c = run_job_on(&pool);
    c.arg("demo-sleep")
        .env("RUN_JOB_DEMO_SLEEP_MS", "100")
        .env("RUN_JOB_DEMO_HEARTBEAT_URL", url(&s));
    let r = output(c).await;
    let took = started.elapsed();
    assert_eq!(
        r.code,
        Some(0),
        "a monitor never fails the run:\n{}",
        r.stderr
    );
    // 100 ms of work; the start ping goes out beside it, the end waits 5 s in all.
    assert!(took < Duration::from_secs(9), "took {took:?}");
    assert_eq!(s.heartbeats().len(), 2, "both pings were sent");
    assert!(
        r.stderr.contains("heartbeat not answered in time"),
        "{}",
        r.stderr
    );
    assert_no_url(&r.stderr);
    let outcome: String = sqlx::query_scalar("SELECT outcome::text FROM job_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(outcome, "succeeded");

    // Nobody listening: the error is logged, without the URL.
    let mut c = run_job_on(&pool);
    c.arg("demo-sleep").env("RUN_JOB_DEMO_SLEEP_MS", "100").env(
        "RUN_JOB_DEMO_HEARTBEAT_URL",
        format!("http://127.0.0.1:1/ping/{CHECK}"),
    );
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("heartbeat not sent"), "{}", r.stderr);
    assert_no_url(&r.stderr);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_url_that_is_not_http_is_a_check_error_that_does_not_repeat_it(_pool: PgPool) {
    let mut c = run_job();
    c.arg("check")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("RUN_JOB_DEMO_HEARTBEAT_URL", format!("ftp://{CHECK}"));
    let r = output(c).await;
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("RUN_JOB_DEMO_HEARTBEAT_URL is not an http(s) URL"),
        "{}",
        r.stderr
    );
    assert_no_url(&r.stderr);
    assert_no_url(&r.stdout);
}
