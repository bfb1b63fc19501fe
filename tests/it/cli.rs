//! The command line as a new user meets it: help, list, next, check, bad input.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

fn cmd(args: &[&str]) -> tokio::process::Command {
    let mut c = run_job();
    c.args(args);
    c
}

#[tokio::test]
async fn help_lists_the_commands_and_the_exit_codes() {
    let r = output(cmd(&["--help"])).await;
    assert_eq!(r.code, Some(0));
    for needle in [
        "list",
        "next",
        "check",
        "migrate",
        "--schedule",
        "--only",
        "RUN_JOB_ONLY",
        "RUN_JOB_GRACE_SECONDS",
        "DATABASE_URL",
        "DB_CREDENTIALS_JSON",
        "DATABASE_SSLMODE",
        "Exit codes:",
        "5  interrupted by SIGTERM",
    ] {
        assert!(
            r.stdout.contains(needle),
            "--help lacks {needle}:\n{}",
            r.stdout
        );
    }
}

#[tokio::test]
async fn next_prints_rfc3339_fire_times_strictly_after() {
    let r = output(cmd(&[
        "next",
        "cron(0/15 10 ? * MON-FRI *)",
        "--after",
        "2026-03-02T10:15:00Z",
        "--count",
        "4",
    ]))
    .await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "2026-03-02T10:30:00Z\n2026-03-02T10:45:00Z\n2026-03-03T10:00:00Z\n2026-03-03T10:15:00Z\n"
    );
    let r = output(cmd(&[
        "next",
        "rate(1 day)",
        "--after",
        "2026-03-01T10:00:00+03:00",
    ]))
    .await;
    assert_eq!(r.stdout.lines().next(), Some("2026-03-02T00:00:00Z"));
    assert_eq!(r.stdout.lines().count(), 5, "five by default");
}

#[tokio::test]
async fn next_rejects_a_bad_expression_with_the_reason_on_stderr() {
    let r = output(cmd(&["next", "cron(0 10 * * * *)"])).await;
    assert_eq!(r.code, Some(2));
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr
            .contains("one of day-of-month and day-of-week must be `?`"),
        "{}",
        r.stderr
    );
    let r = output(cmd(&["next", "cron(0 10 * * ? *)", "--after", "yesterday"])).await;
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("--after"), "{}", r.stderr);
}

#[tokio::test]
async fn next_says_when_a_schedule_runs_out() {
    let r = output(cmd(&[
        "next",
        "cron(0 0 1 1 ? 2030)",
        "--after",
        "2026-01-01T00:00:00Z",
        "--count",
        "3",
    ]))
    .await;
    assert_eq!(r.code, Some(0));
    assert_eq!(r.stdout, "2030-01-01T00:00:00Z\n");
    assert!(r.stderr.contains("fires only 1 more time"), "{}", r.stderr);
}

#[tokio::test]
async fn list_shows_every_job_with_schedule_size_timeout_and_three_fires() {
    let r = output(cmd(&["list"])).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("demo-sleep"))
        .expect("demo-sleep listed");
    assert!(
        line.contains("cron(* * * * ? *)") && line.contains("256/512 MiB") && line.contains("30s"),
        "{line}"
    );
    assert_eq!(line.matches(", ").count(), 2, "three fire times: {line}");
    for job in ["demo-fail", "demo-parallel", "demo-stubborn"] {
        assert!(r.stdout.contains(job));
    }
    // The shared tasks, with the size, tick and delays derived from the declarations.
    let light = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("tick light:"))
        .unwrap_or_else(|| panic!("no tick light line: {}", r.stdout));
    assert!(
        light.contains("cron(0/2 * * * ? *), 256/512 MiB arm64")
            && light.contains("sync-payments +1 min"),
        "{light}"
    );
    // The six production jobs, the schedule column aligned under its heading whatever
    // the length of a job's name.
    let column = r.stdout.lines().next().unwrap().find("SCHEDULE").unwrap();
    for job in [
        "check-payout-hold-periods",
        "invoices",
        "notifications",
        "notify-upload-availability",
        "scraping",
        "sync-payments",
    ] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{job} ")))
            .unwrap();
        assert_eq!(
            line.find("cron(").or(line.find("rate(")),
            Some(column),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_missing_or_unknown_job_exits_2_with_the_list() {
    let r = output(cmd(&[])).await;
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("name a job") && r.stderr.contains("demo-sleep"),
        "{}",
        r.stderr
    );
    let r = output(cmd(&["demo-slep"])).await;
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("unknown job `demo-slep`") && r.stderr.contains("demo-sleep"),
        "{}",
        r.stderr
    );
    let r = output(cmd(&["--schedule", "--only", "demo-sleep,nope"])).await;
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("unknown job(s): nope"), "{}", r.stderr);
}

#[tokio::test]
async fn check_validates_configuration_and_names_a_bad_variable() {
    let mut c = cmd(&["check"]);
    c.env("DATABASE_URL", "postgres://app:pw@db.internal:5432/market");
    let r = output(c).await;
    assert_eq!(r.code, Some(3), "sync-payments needs its provider settings");
    assert!(
        r.stderr
            .contains("job `sync-payments`: DLOCAL_BASE_URL: is required by sync-payments"),
        "{}",
        r.stderr
    );

    let mut c = cmd(&["check"]);
    c.env("DATABASE_URL", "postgres://app:pw@db.internal:5432/market")
        .env("DLOCAL_BASE_URL", "https://api.dlocalgo.com")
        .env("DLOCAL_API_KEY", "k")
        .env("DLOCAL_SECRET_KEY", "s");
    let r = output(c).await;
    assert_eq!(r.code, Some(3), "invoices needs FEU's settings");
    assert!(
        r.stderr
            .contains("job `invoices`: FEU_AUTH_URL: is required by the invoices job"),
        "{}",
        r.stderr
    );

    let mut c = cmd(&["check"]);
    c.env("DATABASE_URL", "postgres://app:pw@db.internal:5432/market")
        .env("DLOCAL_BASE_URL", "https://api.dlocalgo.com")
        .env("DLOCAL_API_KEY", "k")
        .env("DLOCAL_SECRET_KEY", "s")
        .env("FEU_AUTH_URL", "https://auth.feu.test/token")
        .env("FEU_API_BASE_URL", "https://api.feu.test")
        .env("FEU_USERNAME", "u")
        .env("FEU_PASSWORD", "p")
        .env("FEU_EMISOR_RUT", "219999830019");
    let r = output(c).await;
    assert_eq!(
        r.code,
        Some(3),
        "notifications declares RESEND_API_KEY a secret it needs"
    );
    assert!(
        r.stderr.contains(
            "job `notifications`: RESEND_API_KEY: is declared as a secret the job needs (jobs/notifications.yaml) but is not set"
        ),
        "{}",
        r.stderr
    );

    let mut c = cmd(&["check"]);
    c.env("DATABASE_URL", "postgres://app:pw@db.internal:5432/market")
        .env("DLOCAL_BASE_URL", "https://api.dlocalgo.com")
        .env("DLOCAL_API_KEY", "k")
        .env("DLOCAL_SECRET_KEY", "s")
        .env("FEU_AUTH_URL", "https://auth.feu.test/token")
        .env("FEU_API_BASE_URL", "https://api.feu.test")
        .env("FEU_USERNAME", "u")
        .env("FEU_PASSWORD", "p")
        .env("FEU_EMISOR_RUT", "219999830019")
        .env("RESEND_API_KEY", "re_test");
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("ok: 13 job declaration(s) valid"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("postgres://app@db.internal:5432/market (sslmode require"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(":pw@"));

    let r = output(cmd(&["check"])).await;
    assert_eq!(r.code, Some(3));
    assert!(
        r.stderr.contains("DATABASE_URL: no database configured"),
        "{}",
        r.stderr
    );

    let mut c = cmd(&["check"]);
    c.env("POSTGRES_HOST", "db")
        .env("POSTGRES_USER", "u")
        .env("POSTGRES_DB", "d")
        .env("POSTGRES_PORT", "54x");
    let r = output(c).await;
    assert_eq!(r.code, Some(3));
    assert!(
        r.stderr.contains("POSTGRES_PORT: `54x` is not a TCP port"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn running_without_configuration_exits_3_naming_the_variable() {
    let mut c = cmd(&["demo-sleep"]);
    c.env("DB_CREDENTIALS_JSON", "{\"username\": \"u\"");
    let r = output(c).await;
    assert_eq!(r.code, Some(3));
    assert!(
        r.stderr
            .contains("DB_CREDENTIALS_JSON: is not the expected JSON object"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn an_unreachable_database_exits_6() {
    let mut c = cmd(&["demo-sleep"]);
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    c.env("DATABASE_URL", "postgres://postgres@127.0.0.1:9/nowhere");
    let r = output(c).await;
    assert_eq!(r.code, Some(6), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cannot connect to postgres://postgres@127.0.0.1:9/nowhere"),
        "{}",
        r.stderr
    );
}

#[sqlx::test(migrations = false)]
async fn migrate_creates_the_schema_and_is_idempotent(pool: PgPool) {
    for _ in 0..2 {
        let mut c = run_job_on(&pool);
        c.arg("migrate");
        let r = output(c).await;
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for t in [
        "job_runs",
        "orders",
        "payments",
        "payment_events",
        "notifications",
        "notification_batches",
        "jobs",
        "events",
        "event_ticket_waves",
        "event_images",
        "event_venues",
        "seller_earnings",
        "invoices",
        "push_subscriptions",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} missing from {tables:?}");
    }
}

#[sqlx::test(migrations = false)]
async fn the_reference_migration_leaves_an_existing_schema_alone(pool: PgPool) {
    // A database that already has the original's tables (production) only gains the
    // runner's own tables.
    sqlx::query("CREATE TABLE orders (id uuid PRIMARY KEY, legacy_column text)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE payments (id uuid PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE notifications (id uuid PRIMARY KEY, status text, created_at timestamptz, deleted_at timestamptz)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE notification_batches (id uuid PRIMARY KEY, status text, updated_at timestamptz)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notification_batch_items (id uuid PRIMARY KEY, batch_id uuid)")
        .execute(&pool)
        .await
        .unwrap();
    // A batch the original already processed, with its item: not to be sent again.
    sqlx::raw_sql(
        "INSERT INTO notification_batches VALUES ('00000000-0000-0000-0000-0000000000b1', 'processed', now());
         INSERT INTO notification_batch_items VALUES ('00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000b1')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut c = run_job_on(&pool);
    c.arg("migrate");
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let has = |t: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                .bind(t)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert!(has("job_runs").await);
    assert!(has("payment_sync_state").await);
    let merged: bool =
        sqlx::query_scalar("SELECT merged_at IS NOT NULL FROM notification_batch_items")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(merged, "items of closed batches are marked handled");
    assert!(
        !has("seller_earnings").await,
        "reference tables are not created beside an existing schema"
    );
    let legacy: i64 = sqlx::query_scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'legacy_column'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(legacy, 1);
}

#[tokio::test]
async fn next_refuses_a_rate_eventbridge_could_never_fire_and_stops_at_2199() {
    let r = output(cmd(&["next", "rate(4294967295 minutes)"])).await;
    assert_eq!(r.code, Some(2), "{}", r.stdout);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("never fires within EventBridge's calendar (years 1970-2199)"),
        "{}",
        r.stderr
    );
    let r = output(cmd(&[
        "next",
        "rate(1 day)",
        "--after",
        "2199-12-29T12:00:00Z",
        "--count",
        "5",
    ]))
    .await;
    assert_eq!(r.code, Some(0));
    assert_eq!(r.stdout, "2199-12-30T00:00:00Z\n2199-12-31T00:00:00Z\n");
    assert!(
        r.stderr.contains("fires only 2 more time(s)"),
        "{}",
        r.stderr
    );
}

/// The environment `check --connect` needs besides the database: every job buildable,
/// every provider on loopback.
fn with_providers(c: &mut tokio::process::Command, dlocal: &str, sites: &str) {
    c.env("DLOCAL_BASE_URL", dlocal)
        .env("DLOCAL_API_KEY", "k")
        .env("DLOCAL_SECRET_KEY", "s")
        .env("FEU_AUTH_URL", format!("{dlocal}/feu/auth/token"))
        .env("FEU_API_BASE_URL", format!("{dlocal}/feu"))
        .env("FEU_REFRESH_TOKEN", "r")
        .env("FEU_EMISOR_RUT", "219999830019")
        .env("RESEND_API_KEY", "re_test")
        .env("RESEND_BASE_URL", format!("{sites}/resend"))
        .env("SCRAPER_ENTRASTE_URL", format!("{sites}/entraste"))
        .env("SCRAPER_REDTICKETS_URL", format!("{sites}/redtickets"))
        .env("SCRAPER_TICKANTEL_URL", format!("{sites}/tickantel"));
}

#[sqlx::test(migrations = "./migrations")]
async fn check_connect_reaches_the_database_the_schema_and_each_provider(pool: PgPool) {
    let stand_in = run_job::sandbox::site::Site::start(None).await.unwrap();
    let mut c = run_job_on(&pool);
    c.args(["check", "--connect"]);
    with_providers(&mut c, &stand_in.base_url, &stand_in.base_url);
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    for line in [
        "ok      database: postgres://postgres@127.0.0.1:5432/",
        "ok      schema: ",
        "ok      dLocal Go (sync-payments): HTTP ",
        "ok      FEU API (invoices): HTTP ",
        "ok      entraste (scraping): HTTP ",
        "ok      tickantel (scraping): HTTP ",
    ] {
        assert!(r.stdout.contains(line), "no `{line}` in:\n{}", r.stdout);
    }
    assert!(
        r.stdout.lines().all(|l| !l.starts_with("FAILED")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.lines().filter(|l| l.ends_with(" ms)")).count() >= 5,
        "every check says how long it took:\n{}",
        r.stdout
    );

    // A migration not applied is named; a provider nobody answers for fails its line.
    sqlx::query("DROP TABLE payment_sync_state")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE notifications DROP COLUMN lease_until")
        .execute(&pool)
        .await
        .unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = run_job_on(&pool);
    c.args(["check", "--connect"]);
    with_providers(
        &mut c,
        &format!("http://127.0.0.1:{closed}"),
        &stand_in.base_url,
    );
    let r = output(c).await;
    assert_eq!(r.code, Some(6), "{}\n{}", r.stdout, r.stderr);
    for line in [
        "FAILED  schema: table payment_sync_state is missing (migrations/20261125000003_payment_sync_state.sql)",
        "FAILED  schema: column notifications.lease_until is missing (migrations/20261125000004_notification_delivery.sql)",
        &format!("FAILED  dLocal Go (sync-payments): http://127.0.0.1:{closed}: "),
        "ok      entraste (scraping): HTTP ",
    ] {
        assert!(r.stdout.contains(line), "no `{line}` in:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("refused"), "{}", r.stdout);
}

#[tokio::test]
async fn check_connect_names_an_unreachable_database() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = cmd(&["check", "--connect"]);
    c.env(
        "DATABASE_URL",
        format!("postgres://app@127.0.0.1:{closed}/market"),
    );
    with_providers(&mut c, "http://127.0.0.1:9", "http://127.0.0.1:9");
    let r = output(c).await;
    assert_eq!(r.code, Some(6), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "FAILED  database: cannot connect to postgres://app@127.0.0.1:{closed}/market"
        )) && r.stdout.contains("connection refused"),
        "{}",
        r.stdout
    );
}

/// `runs`: the latest runs newest first with their figures, per-job success rate and
/// p50/p95 over the window, a job without a recent success marked late, `--json`, a
/// job filter, and a bad window refused.
#[sqlx::test(migrations = "./migrations")]
async fn runs_shows_what_ran_and_what_is_late(pool: PgPool) {
    // sync-payments fires every 5 minutes: 4 runs in the last 24 h, 2 succeeded, the last
    // 40 minutes ago (late: more than two periods). notify-upload-availability (hourly):
    // succeeded 30 minutes ago (on time). A run 3 days ago is outside the default 24 h.
    let rows = [
        ("sync-payments", 100, 1_000, "succeeded", 0, None),
        ("sync-payments", 40, 3_000, "succeeded", 0, None),
        (
            "sync-payments",
            20,
            2_000,
            "failed",
            1,
            Some("dLocal Go unreachable\nat line 2"),
        ),
        ("sync-payments", 10, 0, "skipped", 0, None),
        ("notify-upload-availability", 30, 500, "succeeded", 0, None),
        (
            "sync-payments",
            3 * 24 * 60,
            9_000,
            "failed",
            1,
            Some("old"),
        ),
    ];
    for (job, minutes_ago, ms, outcome, code, error) in rows {
        sqlx::query(
            "INSERT INTO job_runs (id, job, trigger, started_at, finished_at, outcome, exit_code,
                                   items_processed, items_failed, error)
             VALUES (gen_random_uuid(), $1, 'eventbridge', now() - make_interval(mins => $2),
                     now() - make_interval(mins => $2) + make_interval(secs => $3::float8 / 1000),
                     $4::job_run_outcome, $5, 7, 1, $6)",
        )
        .bind(job)
        .bind(minutes_ago)
        .bind(ms)
        .bind(outcome)
        .bind(code)
        .bind(error)
        .execute(&pool)
        .await
        .unwrap();
    }
    let mut c = run_job_on(&pool);
    c.arg("runs");
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("JOB") && lines[0].contains("DURATION"),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].starts_with("sync-payments") && lines[1].contains("skipped"),
        "newest first: {}",
        r.stdout
    );
    assert!(lines[2].contains("failed") && lines[2].contains("dLocal Go unreachable"));
    assert!(!lines[2].contains("line 2"), "only the error's first line");
    assert!(!r.stdout.contains("old"), "outside the window");
    assert!(!r.stdout.contains('\u{1b}'), "no colour off a terminal");
    let sync = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("sync-payments"))
        .unwrap();
    assert!(sync.contains("50.0%") && sync.contains("(late)"), "{sync}");
    let hourly = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("notify-upload-availability"))
        .unwrap();
    assert!(
        hourly.contains("100.0%") && !hourly.contains("late"),
        "{hourly}"
    );

    let mut c = run_job_on(&pool);
    c.args([
        "runs",
        "sync-payments",
        "--json",
        "--since",
        "7d",
        "--limit",
        "2",
    ]);
    let r = output(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let objects: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let runs: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "run").collect();
    assert_eq!(runs.len(), 2, "--limit");
    let job = objects.iter().find(|o| o["kind"] == "job").unwrap();
    assert_eq!(
        (job["job"].clone(), job["runs"].clone(), job["late"].clone()),
        (json!("sync-payments"), json!(5), json!(true))
    );
    // p50 of the finished, not skipped runs (1 s, 3 s, 2 s, 9 s): 2.5 s.
    assert_eq!(job["p50_ms"], json!(2500.0));

    let mut c = run_job_on(&pool);
    c.args(["runs", "--since", "yesterday"]);
    let r = output(c).await;
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr
            .contains("`yesterday` is not a number of minutes, hours or days"),
        "{}",
        r.stderr
    );
}
