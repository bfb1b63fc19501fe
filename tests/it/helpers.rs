//! Starting `run-job` processes against a test's own database, and reading what they
//! left behind.

use std::process::Stdio;
use std::time::Duration;

use sqlx::PgPool;
use tokio::process::Command;

/// The binary under test, built by cargo with the test-only jobs.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_run-job");

/// A `run-job` command with a clean environment: only the variables a test sets.
pub(crate) fn run_job() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUN_JOB_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// A `run-job` command pointed at the test's database.
pub(crate) fn run_job_on(pool: &PgPool) -> Command {
    let mut cmd = run_job();
    cmd.env("DATABASE_URL", url_for(pool));
    cmd
}

/// The URL of the database sqlx::test made for this test.
pub(crate) fn url_for(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (set in .cargo/config.toml)");
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    let db = pool
        .connect_options()
        .get_database()
        .expect("sqlx::test names its database")
        .to_string();
    format!("{server}/{db}")
}

pub(crate) struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub(crate) async fn output(mut cmd: Command) -> Ran {
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("run-job finished within 2 minutes")
        .expect("run-job started");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits for a spawned `run-job` to exit (at most `within`) and collects its output.
pub(crate) async fn finished(child: tokio::process::Child, within: Duration) -> Ran {
    let out = tokio::time::timeout(within, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("run-job did not exit within {within:?}"))
        .expect("run-job's output");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Each line of stderr parsed as JSON; fails the test if a line is not JSON.
pub(crate) fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// The summary line of a run (the one with the EMF block).
pub(crate) fn summary(stderr: &str) -> serde_json::Value {
    json_lines(stderr)
        .into_iter()
        .find(|v| v.get("_aws").is_some())
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"))
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RunRow {
    pub job: String,
    pub trigger: String,
    pub outcome: String,
    pub exit_code: Option<i32>,
    pub finished: bool,
    pub items_processed: i64,
    pub items_succeeded: i64,
    pub items_failed: i64,
    pub error: Option<String>,
}

pub(crate) async fn runs(pool: &PgPool) -> Vec<RunRow> {
    sqlx::query_as(
        "SELECT job, trigger, outcome::text AS outcome, exit_code, finished_at IS NOT NULL AS finished,
                items_processed, items_succeeded, items_failed, error
           FROM job_runs ORDER BY started_at, id",
    )
    .fetch_all(pool)
    .await
    .expect("job_runs readable")
}

/// Waits until a run of `job` is recorded as running.
pub(crate) async fn wait_for_running(pool: &PgPool, job: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_runs WHERE job = $1 AND outcome = 'running'",
        )
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap();
        if running > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no running {job} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A `SELECT count(*) ...` (or any single bigint) against the test's database.
pub(crate) async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("a count")
}

/// An environment for settings: `base` pairs, then `extra` pairs overriding them.
pub(crate) fn env_of(
    base: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: std::collections::HashMap<String, String> = base
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

/// The S3-compatible server scripts/test starts on loopback, and its credentials.
pub(crate) struct S3Server {
    pub endpoint: String,
    pub key: String,
    pub secret: String,
}

pub(crate) fn s3_server() -> S3Server {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with scripts/test, which starts the S3-compatible server")
        })
    };
    S3Server {
        endpoint: var("RUN_JOB_TEST_S3_ENDPOINT"),
        key: var("RUN_JOB_TEST_S3_ACCESS_KEY"),
        secret: var("RUN_JOB_TEST_S3_SECRET_KEY"),
    }
}

/// A plain aws-sdk-s3 client of that server, for reading back what run-job stored.
pub(crate) fn s3_client(s: &S3Server) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("auto"))
        .endpoint_url(&s.endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(&s.key, &s.secret, None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// What the runner hands a job for one run, for tests that run a job in-process: a
/// deadline five minutes away (longer than a notifications lease, so it claims).
pub(crate) fn context(
    pool: &PgPool,
    cancel: tokio_util::sync::CancellationToken,
) -> run_job::jobs::RunContext {
    run_job::jobs::RunContext {
        pool: pool.clone(),
        cancel,
        deadline: tokio::time::Instant::now() + Duration::from_secs(300),
        progress: Default::default(),
    }
}

/// The notifications, debounced batch items and queued jobs (the invoice jobs a
/// confirmation leaves, or the test's own) in the test's database as PostgreSQL
/// prints them (jsonb's own text, so key order and number formats are what the API
/// reads), ids masked as `<uuid>`, invoice numbers as `<number>`, and every digit of an instant as `9` (the format is
/// kept, the values are the fixture's), one row a line, sorted; compared with
/// tests/golden/<name>.jsonl. `RUN_JOB_GOLDEN=write` writes the file instead.
pub(crate) async fn assert_notifications_match_golden(pool: &PgPool, name: &str) {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT jsonb_build_object('table', 'notifications', 'type', type, 'channels', channels,
                                   'actions', actions, 'metadata', metadata)::text
           FROM notifications
         UNION ALL
         SELECT jsonb_build_object('table', 'notification_batch_items', 'type', b.notification_type,
                                   'channels', b.channels, 'key', b.debounce_key,
                                   'actions', i.actions, 'metadata', i.metadata)::text
           FROM notification_batch_items i JOIN notification_batches b ON b.id = i.batch_id
         UNION ALL
         SELECT jsonb_build_object('table', 'jobs', 'type', job_type, 'key', idempotency_key,
                                   'payload', payload)::text
           FROM jobs",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let uuid =
        regex::Regex::new("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let instant =
        regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
            .unwrap();
    // FEU numbers documents in the order they are issued, which rows issued side by side
    // make vary.
    let invoice_number = regex::Regex::new(r"factura-([A-Z]+)-[0-9]+").unwrap();
    let mut masked: Vec<String> = rows
        .iter()
        .map(|r| {
            let r = uuid.replace_all(r, "<uuid>");
            let r = invoice_number.replace_all(&r, "factura-$1-<number>");
            instant
                .replace_all(&r, |c: &regex::Captures| {
                    c[0].chars()
                        .map(|ch| if ch.is_ascii_digit() { '9' } else { ch })
                        .collect::<String>()
                })
                .into_owned()
        })
        .collect();
    masked.sort();
    let text = masked.join("\n") + "\n";
    let path = format!("{}/tests/golden/{name}.jsonl", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("RUN_JOB_GOLDEN").as_deref() == Ok("write") {
        std::fs::create_dir_all(format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR"))).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (RUN_JOB_GOLDEN=write creates it)"));
    assert_eq!(
        text, expected,
        "the notifications written differ from {path}"
    );
}

/// The dLocal Go keys the stand-ins accept.
pub(crate) const DLOCAL_KEY: &str = "key-1";
pub(crate) const DLOCAL_SECRET: &str = "secret-1";

/// Every provider's stand-in (dLocal Go, Resend, WhatsApp, push, Places, IndexNow, FEU,
/// heartbeat monitor) on one loopback port of its own.
pub(crate) async fn stand_ins() -> run_job::sandbox::Sandbox {
    run_job::sandbox::Sandbox::start(0, DLOCAL_KEY, DLOCAL_SECRET)
        .await
        .unwrap()
}
