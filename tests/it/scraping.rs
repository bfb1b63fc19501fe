//! `run-job scraping` end to end with the real Chromium against the fixture sites in
//! tests/fixtures/sites (served on loopback, with pages that hang and pages that fail),
//! compared with tests/fixtures/sites/expected.json: stored events and waves, venues,
//! images, classification, cleanup and its safety rules, and a browser killed mid-run.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use run_job::sandbox::site::{Route, Site};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{output, run_job_on, stand_ins, summary};

const NOW: &str = "2026-11-25T15:00:00-03:00";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("sites/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

struct Sites {
    entraste: Site,
    redtickets: Site,
    tickantel: Site,
    expected: Value,
}

impl Sites {
    fn site(&self, platform: &str) -> &Site {
        match platform {
            "entraste" => &self.entraste,
            "redtickets" => &self.redtickets,
            _ => &self.tickantel,
        }
    }
}

/// The three fixture sites, with their hanging and failing pages, and every image the
/// expected events show answered with a real photograph.
async fn sites() -> Sites {
    let expected = expected();
    let photo = std::fs::read(fixtures().join("images/dark.jpg")).unwrap();
    let start = |name: &str| Site::start(Some(fixtures().join("sites").join(name)));
    let sites = Sites {
        entraste: start("entraste").await.unwrap(),
        redtickets: start("redtickets").await.unwrap(),
        tickantel: start("tickantel").await.unwrap(),
        expected,
    };
    for platform in ["entraste", "redtickets", "tickantel"] {
        let site = sites.site(platform);
        site.route_segment("se-cuelga", Route::Hang);
        site.route_segment(
            "error-500",
            Route::Fixed {
                status: 500,
                content_type: "text/html".into(),
                body: b"<h1>Error</h1>".to_vec(),
            },
        );
        for event in sites.expected["sites"][platform]["events"]
            .as_array()
            .unwrap()
        {
            for image in event["images"].as_array().unwrap() {
                site.route(
                    image["url"].as_str().unwrap(),
                    Route::Fixed {
                        status: 200,
                        content_type: "image/jpeg".into(),
                        body: photo.clone(),
                    },
                );
            }
        }
    }
    sites
}

fn scraping(pool: &PgPool, sites: &Sites, uploads: &std::path::Path) -> tokio::process::Command {
    let mut cmd = run_job_on(pool);
    cmd.arg("scraping")
        .env("SCRAPER_ENTRASTE_URL", &sites.entraste.base_url)
        .env("SCRAPER_REDTICKETS_URL", &sites.redtickets.base_url)
        .env("SCRAPER_TICKANTEL_URL", &sites.tickantel.base_url)
        .env("RUN_JOB_NOW", NOW)
        .env("SCRAPER_SAME_DOMAIN_DELAY_SECS", "0")
        .env("SCRAPER_NAVIGATION_TIMEOUT_SECS", "3")
        .env(
            "SCRAPER_HOST_RESOLVER_RULES",
            "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        )
        .env("STORAGE_LOCAL_PATH", uploads)
        .env("STORAGE_BASE_URL", "https://cdn.test");
    if let Ok(path) = std::env::var("SCRAPER_CHROMIUM_PATH") {
        cmd.env("SCRAPER_CHROMIUM_PATH", path);
    }
    cmd
}

fn instant_of(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[derive(sqlx::FromRow, Debug)]
struct EventRow {
    id: Uuid,
    name: String,
    slug: String,
    description: Option<String>,
    event_start_date: DateTime<Utc>,
    event_end_date: DateTime<Utc>,
    external_url: String,
    qr: Option<String>,
    venue_name: Option<String>,
    venue_address: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    deleted: bool,
}

async fn event_row(pool: &PgPool, external_id: &str) -> Option<EventRow> {
    sqlx::query_as(
        "SELECT e.id, e.name, e.slug, e.description, e.event_start_date, e.event_end_date, e.external_url,
                e.qr_availability_timing::text AS qr, v.name AS venue_name, v.address AS venue_address,
                v.latitude::float8 AS latitude, v.longitude::float8 AS longitude, e.deleted_at IS NOT NULL AS deleted
         FROM events e LEFT JOIN event_venues v ON v.id = e.venue_id WHERE e.external_id = $1",
    )
    .bind(external_id)
    .fetch_optional(pool)
    .await
    .unwrap()
}

type WaveRow = (String, String, Option<String>, Decimal, String, bool, bool);

/// The event's waves; a past event's were soft-deleted with it, so `deleted` says which.
async fn waves(pool: &PgPool, event: Uuid, deleted: bool) -> Vec<WaveRow> {
    sqlx::query_as(
        "SELECT external_id, name, description, face_value, currency::text, is_sold_out, is_available
         FROM event_ticket_waves WHERE event_id = $1 AND (deleted_at IS NOT NULL) = $2
         ORDER BY created_at, external_id",
    )
    .bind(event)
    .bind(deleted)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn a_crawl_of_the_three_sites_stores_what_expected_json_says(pool: PgPool) {
    let sites = sites().await;
    let uploads = tempdir();
    let ran = output(scraping(&pool, &sites, &uploads)).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let summary = summary(&ran.stderr);
    assert_no_library_noise(&ran.stderr);

    for platform in ["entraste", "redtickets", "tickantel"] {
        let site = sites.site(platform);
        let expected = &sites.expected["sites"][platform];
        let report = &summary["details"]["sites"][platform];
        assert_eq!(report["status"], "complete", "{platform}: {report}");
        // The hanging page and the 500 fail with a reason; the others go on.
        let failures = report["failures"].as_array().unwrap();
        assert!(
            failures
                .iter()
                .any(|f| f["url"].as_str().unwrap().contains("se-cuelga")
                    && f["error"].as_str().unwrap().contains("timed out")),
            "{platform}: {failures:?}"
        );
        assert!(
            failures
                .iter()
                .any(|f| f["url"].as_str().unwrap().contains("error-500")
                    && f["error"].as_str().unwrap().contains("HTTP 500")),
            "{platform}: {failures:?}"
        );

        let classes = &expected["classification"];
        assert_eq!(
            report["valid"],
            classes["valid"].as_array().unwrap().len(),
            "{platform}: {report}"
        );
        assert_eq!(
            report["guest_list"],
            classes["guest_list"].as_array().unwrap().len(),
            "{platform}"
        );
        assert_eq!(
            report["empty_wave"],
            classes["empty_wave"].as_array().unwrap().len(),
            "{platform}"
        );

        for event in expected["events"].as_array().unwrap() {
            let id = event["externalId"].as_str().unwrap();
            let row = event_row(&pool, id).await;
            if event["classification"] != "valid" {
                assert!(
                    row.is_none(),
                    "{platform} {id}: a {} event is not stored",
                    event["classification"]
                );
                continue;
            }
            let row = row.unwrap_or_else(|| panic!("{platform} {id}: not stored"));
            assert_eq!(row.name, event["name"].as_str().unwrap(), "{id}");
            assert_eq!(
                row.description.as_deref(),
                event["description"].as_str(),
                "{id}"
            );
            assert_eq!(
                row.event_start_date,
                instant(event["start"].as_str().unwrap()),
                "{id}"
            );
            assert_eq!(
                row.event_end_date,
                instant(event["end"].as_str().unwrap()),
                "{id}"
            );
            assert_eq!(
                row.external_url,
                site.url(event["externalUrl"].as_str().unwrap()),
                "{id}"
            );
            assert_eq!(
                row.qr.as_deref(),
                event["qrAvailabilityTiming"].as_str(),
                "{id}"
            );
            assert_eq!(
                row.venue_address.as_deref(),
                event["venueAddress"].as_str(),
                "{id}"
            );
            assert_eq!(
                row.venue_name.as_deref(),
                event["venueName"].as_str(),
                "{id}"
            );
            match event["lat"].as_f64() {
                Some(lat) => {
                    assert!((row.latitude.unwrap() - lat).abs() < 1e-6, "{id}");
                    let lng = event["lng"].as_f64().unwrap();
                    assert!((row.longitude.unwrap() - lng).abs() < 1e-6, "{id}");
                }
                None => assert!(
                    row.latitude.is_none(),
                    "{id}: (0,0) and missing maps are no position"
                ),
            }
            let slug_day = instant(event["start"].as_str().unwrap())
                .with_timezone(&chrono::FixedOffset::west_opt(3 * 3600).unwrap())
                .format("%Y-%m-%d")
                .to_string();
            assert!(row.slug.ends_with(&slug_day), "{id}: slug {}", row.slug);
            assert_eq!(
                row.deleted,
                event["past"] == true,
                "{id}: past events are cleaned up"
            );

            // Waves: the priced ones, in the site's terms (thousands separators fixed).
            let stored = waves(&pool, row.id, row.deleted).await;
            let wanted: Vec<&Value> = event["waves"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|w| {
                    w["faceValue"].as_str().unwrap().parse::<Decimal>().unwrap() > Decimal::ZERO
                })
                .collect();
            assert_eq!(stored.len(), wanted.len(), "{id}: {stored:?}");
            for w in wanted {
                let got = stored
                    .iter()
                    .find(|s| s.0 == w["externalId"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("{id}: wave {} missing", w["externalId"]));
                assert_eq!(got.1, w["name"].as_str().unwrap(), "{id}");
                assert_eq!(got.2.as_deref(), w["description"].as_str(), "{id}");
                assert_eq!(
                    got.3,
                    w["faceValue"].as_str().unwrap().parse::<Decimal>().unwrap(),
                    "{id} {}",
                    got.1
                );
                assert_eq!(got.4, w["currency"].as_str().unwrap(), "{id}");
                assert_eq!(
                    (got.5, got.6),
                    (
                        w["isSoldOut"].as_bool().unwrap(),
                        w["isAvailable"].as_bool().unwrap()
                    ),
                    "{id} {}",
                    got.1
                );
            }

            // Images: published from the site's URLs and recorded.
            let types: Vec<String> = sqlx::query_scalar(
                "SELECT image_type::text FROM event_images WHERE event_id = $1 ORDER BY display_order",
            )
            .bind(row.id)
            .fetch_all(&pool)
            .await
            .unwrap();
            let mut wanted_types: Vec<String> = Vec::new();
            for image in event["images"].as_array().unwrap() {
                let kind = image["type"].as_str().unwrap().to_string();
                wanted_types.push(kind.clone());
                if kind == "hero" {
                    wanted_types.push("og_hero".into());
                }
            }
            assert_eq!(types, wanted_types, "{id}");
        }
    }
    // A venue shared by events is one row.
    let terraza: i64 =
        sqlx::query_scalar("SELECT count(*) FROM event_venues WHERE name = 'Terraza del Puerto'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(terraza, 1);
    let _ = std::fs::remove_dir_all(&uploads);
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("run-job-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An event row as an earlier run would have left it.
async fn seed(pool: &PgPool, platform: &str, external_id: &str, ends: &str, deleted: bool) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO events (external_id, platform, name, slug, event_start_date, event_end_date, external_url, deleted_at)
         VALUES ($1, $2, $1, $1, $3::timestamptz - interval '4 hours', $3::timestamptz, 'https://x', CASE WHEN $4 THEN now() END)
         RETURNING id",
    )
    .bind(external_id)
    .bind(platform)
    .bind(ends)
    .bind(deleted)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn deleted(pool: &PgPool, external_id: &str) -> bool {
    sqlx::query_scalar("SELECT deleted_at IS NOT NULL FROM events WHERE external_id = $1")
        .bind(external_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn the_full_chromium_still_crawls_what_the_headless_shell_does(pool: PgPool) {
    // The job runs Debian's headless shell when it is installed (the image's browser);
    // SCRAPER_CHROMIUM_PATH may name the full browser instead, and it finds the same.
    let sites = sites().await;
    let uploads = tempdir();
    let mut cmd = scraping(&pool, &sites, &uploads);
    cmd.env("SCRAPER_CHROMIUM_PATH", "/usr/lib/chromium/chromium");
    let ran = output(cmd).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let summary = summary(&ran.stderr);
    for platform in ["entraste", "redtickets", "tickantel"] {
        let report = &summary["details"]["sites"][platform];
        assert_eq!(report["status"], "complete", "{platform}: {report}");
        let valid = &sites.expected["sites"][platform]["classification"]["valid"];
        assert_eq!(
            report["valid"],
            valid.as_array().unwrap().len(),
            "{platform}: {report}"
        );
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn cleanup_runs_only_for_complete_crawls_and_restores_what_reappears(pool: PgPool) {
    let sites = sites().await;
    // Tickantel's listing answers 500: that crawl fails, so nothing of Tickantel's is
    // cleaned up (its guest list stays), and the run says so with exit 1.
    sites.tickantel.route(
        "/inicio/buscar_grupo",
        Route::Fixed {
            status: 500,
            content_type: "text/html".into(),
            body: b"down".to_vec(),
        },
    );
    // Earlier runs left: an Entraste guest list, an ended event the site no longer lists,
    // a future one it no longer lists, a deleted event that is back, and a wave the site
    // dropped; and a Tickantel guest list.
    seed(
        &pool,
        "entraste",
        "lista-invitados",
        "2026-12-04T03:00:00Z",
        false,
    )
    .await;
    seed(
        &pool,
        "entraste",
        "ya-termino",
        "2026-11-20T03:00:00Z",
        false,
    )
    .await;
    seed(
        &pool,
        "entraste",
        "sigue-en-pie",
        "2026-12-20T03:00:00Z",
        false,
    )
    .await;
    seed(&pool, "entraste", "noche-usd", "2026-12-05T09:00:00Z", true).await;
    let verano = seed(
        &pool,
        "entraste",
        "fiesta-de-verano",
        "2026-11-29T08:00:00Z",
        false,
    )
    .await;
    sqlx::query(
        "INSERT INTO event_ticket_waves (event_id, external_id, name, face_value, currency) VALUES ($1, '1999', 'Vieja', 100, 'UYU')",
    )
    .bind(verano)
    .execute(&pool)
    .await
    .unwrap();
    seed(
        &pool,
        "tickantel",
        "40010005",
        "2026-12-20T03:00:00Z",
        false,
    )
    .await;
    // Another platform's event with an id a site also uses is not taken over.
    seed(
        &pool,
        "redtickets",
        "sin-entradas-otra",
        "2026-12-20T03:00:00Z",
        false,
    )
    .await;

    let uploads = tempdir();
    let ran = output(scraping(&pool, &sites, &uploads)).await;
    assert_eq!(
        ran.code,
        Some(1),
        "a failed site fails the run: {}",
        ran.stderr
    );
    let summary = summary(&ran.stderr);
    let report = &summary["details"]["sites"];
    assert_eq!(report["tickantel"]["status"], "failed", "{report}");
    assert!(
        report["tickantel"]["reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{report}"
    );
    assert_eq!(report["tickantel"]["cleaned"], Value::Null);
    assert_eq!(report["entraste"]["status"], "complete");
    assert_eq!(report["entraste"]["cleaned"]["guest_list"], 1, "{report}");

    assert!(
        deleted(&pool, "lista-invitados").await,
        "guest list removed"
    );
    assert!(
        deleted(&pool, "ya-termino").await,
        "ended and gone from the site"
    );
    assert!(
        !deleted(&pool, "sigue-en-pie").await,
        "future events that vanished are kept"
    );
    assert!(
        !deleted(&pool, "noche-usd").await,
        "a deleted event that reappears is restored"
    );
    assert_eq!(report["entraste"]["restored"], 1);
    assert!(
        !deleted(&pool, "40010005").await,
        "an incomplete crawl cleans nothing"
    );
    let dropped: (bool, bool) = sqlx::query_as(
        "SELECT is_available, deleted_at IS NULL FROM event_ticket_waves WHERE event_id = $1 AND external_id = '1999'",
    )
    .bind(verano)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        dropped,
        (false, true),
        "a wave gone from the site is unavailable, not deleted"
    );
    let slug: String = sqlx::query_scalar("SELECT slug FROM events WHERE id = $1")
        .bind(verano)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(slug, "fiesta-de-verano", "an existing event keeps its slug");
    let _ = std::fs::remove_dir_all(&uploads);
}

fn chromium_processes(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(marker)
                .then_some(pid)
        })
        .collect()
}

/// The main Chromium process run-job `pid` started, once it is there.
async fn browser_of(pid: u32) -> u32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<u32> = chromium_processes("run-job-chromium-")
            .into_iter()
            .filter(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                stat.rsplit(") ")
                    .next()
                    .and_then(|s| s.split(' ').nth(1))
                    .and_then(|pp| pp.parse::<u32>().ok())
                    == Some(pid)
            })
            .collect();
        if let Some(p) = found.first() {
            return *p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the browser never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The CDP library's own warnings (messages from a newer Chromium it cannot parse, a
/// dead connection the job reports itself) must not look like incidents in the logs.
fn assert_no_library_noise(stderr: &str) {
    for line in crate::helpers::json_lines(stderr) {
        let target = line["target"].as_str().unwrap_or_default();
        let level = line["level"].as_str().unwrap_or_default();
        assert!(
            !(target.starts_with("chromiumoxide") && (level == "WARN" || level == "ERROR")),
            "{line}"
        );
    }
}

/// Checks that no site of a run whose browser died counts as complete or was cleaned
/// up, and returns how many events the run stored.
fn cut_short(summary: &Value) -> i64 {
    let mut stored = 0;
    for platform in ["entraste", "redtickets", "tickantel"] {
        let report = &summary["details"]["sites"][platform];
        assert_ne!(report["status"], "complete", "{platform}: {report}");
        assert_eq!(
            report["cleaned"],
            Value::Null,
            "{platform}: no cleanup after a crash"
        );
        stored += report["stored"].as_i64().unwrap_or(0);
    }
    stored
}

/// Kills the browser once `details` event pages have been requested and read, while
/// more pages wait for their turn (one page per site per second), and checks that the
/// run stops at once, fails so that the alarm fires, keeps what it had read and leaves
/// no Chromium behind.
async fn kill_the_browser_after(pool: PgPool, details: u64) {
    let sites = sites().await;
    let uploads = tempdir();
    let mut cmd = scraping(&pool, &sites, &uploads);
    cmd.env("SCRAPER_SAME_DOMAIN_DELAY_SECS", "1");
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let browser = browser_of(pid).await;
    let cmdline = std::fs::read(format!("/proc/{browser}/cmdline")).unwrap();
    let profile = String::from_utf8_lossy(&cmdline)
        .split('\0')
        .find_map(|a| a.strip_prefix("--user-data-dir=").map(str::to_string))
        .expect("the browser has a profile of its own");

    let pages: Vec<(&str, String)> = ["entraste", "redtickets"]
        .into_iter()
        .flat_map(|platform| {
            sites.expected["sites"][platform]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |e| (platform, e["externalUrl"].as_str().unwrap().to_string()))
        })
        .collect();
    let requested = || {
        let mut distinct = pages.clone();
        distinct.dedup();
        distinct
            .iter()
            .map(|(platform, path)| sites.site(platform).hits(path).min(1))
            .sum::<u64>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while requested() < details {
        assert!(
            std::time::Instant::now() < deadline,
            "{details} event pages never requested"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Time to read the page just requested; the next ones are still a second away.
    tokio::time::sleep(Duration::from_millis(400)).await;
    crate::helpers::send_signal(browser, "KILL");
    let killed = std::time::Instant::now();
    let killed_at = Utc::now();

    let ran = crate::helpers::finished(child, Duration::from_secs(60)).await;
    let took = killed.elapsed();
    let stderr = ran.stderr;
    // Each site's crawl stops as soon as the browser is gone, whatever it had queued.
    let crawls_stopped: Vec<DateTime<Utc>> = crate::helpers::json_lines(&stderr)
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("the browser died mid-crawl"))
        })
        .filter_map(|l| instant_of(&l["timestamp"]))
        .collect();
    assert!(
        !crawls_stopped.is_empty(),
        "no crawl said it lost the browser:\n{stderr}"
    );
    let stopped_after = crawls_stopped
        .iter()
        .max()
        .map(|t| *t - killed_at)
        .unwrap_or_default();
    println!(
        "browser killed after {details} event page(s): crawls stopped {} ms later, run-job exited {took:?} later",
        stopped_after.num_milliseconds()
    );
    assert_eq!(
        ran.code,
        Some(1),
        "a crawl that lost its browser fails the run:\n{stderr}"
    );
    assert!(
        stopped_after < chrono::TimeDelta::seconds(1),
        "the crawls went on {stopped_after} after the browser died"
    );
    // Then only storing what was read and publishing its images remain.
    assert!(
        took < Duration::from_secs(15),
        "ended {took:?} after the browser died"
    );
    let summary = summary(&stderr);
    assert_eq!(summary["outcome"], "failed");
    assert_eq!(summary["details"]["browser_lost"], true, "{summary}");
    let error = summary["error"].as_str().unwrap();
    assert!(error.contains("the browser died mid-crawl"), "{error}");
    let stored = cut_short(&summary);
    assert!(
        stored >= 1,
        "events read before the crash are stored: {summary}"
    );
    let in_db = crate::helpers::count(&pool, "SELECT count(*) FROM events").await;
    assert_eq!(in_db, stored, "the summary counts what is in the database");
    let rows = crate::helpers::runs(&pool).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].outcome.as_str(), rows[0].exit_code),
        ("failed", Some(1))
    );
    assert!(rows[0].items_succeeded >= 1);
    assert!(
        chromium_processes(&profile).is_empty(),
        "a process of the dead browser is left"
    );
    assert_no_library_noise(&stderr);
    let _ = std::fs::remove_dir_all(&uploads);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_browser_killed_after_the_first_event_page_fails_the_run_at_once(pool: PgPool) {
    kill_the_browser_after(pool, 1).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_browser_killed_halfway_through_the_event_pages_fails_the_run_at_once(pool: PgPool) {
    kill_the_browser_after(pool, 4).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_browser_killed_near_the_end_of_the_event_pages_fails_the_run_at_once(pool: PgPool) {
    kill_the_browser_after(pool, 7).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_browser_killed_mid_crawl_fails_the_sites_and_leaves_no_process(pool: PgPool) {
    let sites = sites().await;
    // Slow the listing's detail pages down so the crawl is surely in progress.
    for platform in ["entraste", "redtickets", "tickantel"] {
        sites.site(platform).route_segment("se-cuelga", Route::Hang);
    }
    let uploads = tempdir();
    let mut cmd = scraping(&pool, &sites, &uploads);
    cmd.env("SCRAPER_NAVIGATION_TIMEOUT_SECS", "20");
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    // Wait for the browser, then kill its main process.
    let marker = "run-job-chromium-";
    let browser = browser_of(pid).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    crate::helpers::send_signal(browser, "KILL");

    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("run-job ends soon after its browser dies")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    cut_short(&summary(&stderr));
    assert!(chromium_processes(marker).iter().all(|p| {
        // Only processes of other tests' browsers may remain.
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        !stat.contains(&format!(" {pid} "))
    }));
    let _ = std::fs::remove_dir_all(&uploads);
}

#[sqlx::test(migrations = "./migrations")]
async fn new_venues_are_enriched_from_google_places_when_a_key_is_set(pool: PgPool) {
    let sites = sites().await;
    let google = stand_ins().await;
    // Google knows the club Entraste places at -34.9107, -56.1539, 40 m away.
    google.add_place(run_job::sandbox::Place {
        place_id: "ChIJ-nautico".into(),
        name: "Club Náutico Punta Carretas".into(),
        formatted_address:
            "Rambla Mahatma Gandhi 1234, 11300 Montevideo, Departamento de Montevideo".into(),
        locality: "Montevideo".into(),
        region: "Departamento de Montevideo".into(),
        lat: -34.9110,
        lng: -56.1536,
    });
    let uploads = tempdir();
    let mut cmd = scraping(&pool, &sites, &uploads);
    cmd.env("SCRAPER_PLATFORMS", "entraste")
        .env("GOOGLE_PLACES_API_KEY", "places-secret-key")
        .env("GOOGLE_PLACES_BASE_URL", &google.base_url);
    let ran = output(cmd).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("places-secret-key"),
        "the key reached the logs"
    );
    assert!(
        google.places_requests() >= 2,
        "nearby search and details were asked"
    );

    let venue: (String, String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT v.address, v.city, v.region, v.google_place_id FROM events e JOIN event_venues v ON v.id = e.venue_id
         WHERE e.external_id = 'fiesta-de-verano'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        venue,
        (
            "Rambla Mahatma Gandhi 1234, 11300 Montevideo, Departamento de Montevideo".into(),
            "Montevideo".into(),
            Some("Departamento de Montevideo".into()),
            Some("ChIJ-nautico".into())
        )
    );
    // Google has nothing near the festival's park: the site's data is used.
    let park: (String, Option<String>) = sqlx::query_as(
        "SELECT v.city, v.google_place_id FROM events e JOIN event_venues v ON v.id = e.venue_id
         WHERE e.external_id = 'festival-de-enero'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(park, ("Colonia del Sacramento".into(), None));
    let summary = summary(&ran.stderr);
    assert_eq!(summary["details"]["venues_from_google"], 1);
    let _ = std::fs::remove_dir_all(&uploads);
}

/// Across three runs of one site: a venue last updated more than a week ago is
/// refreshed from Google (and not again while fresh); the pages of new events are
/// pinged to IndexNow, unchanged ones are not, and an event whose page changed is.
#[sqlx::test(migrations = "./migrations")]
async fn stale_venues_are_refreshed_and_new_or_changed_pages_pinged(pool: PgPool) {
    let sites = sites().await;
    let providers = stand_ins().await;
    providers.add_place(run_job::sandbox::Place {
        place_id: "ChIJ-nautico".into(),
        name: "Club Náutico Punta Carretas".into(),
        formatted_address: "Rambla Mahatma Gandhi 1234, 11300 Montevideo".into(),
        locality: "Montevideo".into(),
        region: "Departamento de Montevideo".into(),
        lat: -34.9110,
        lng: -56.1536,
    });
    // The club, as an earlier run stored it eight days ago, from the site's data.
    let stale: Uuid = sqlx::query_scalar(
        "INSERT INTO event_venues (name, address, city, latitude, longitude, updated_at)
         VALUES ('Nautico', 'Rambla 1234', 'Montevideo', -34.9107, -56.1539, $1) RETURNING id",
    )
    .bind(instant(NOW) - chrono::TimeDelta::days(8))
    .fetch_one(&pool)
    .await
    .unwrap();
    let uploads = tempdir();
    let run = || {
        let mut cmd = scraping(&pool, &sites, &uploads);
        cmd.env("SCRAPER_PLATFORMS", "entraste")
            .env("GOOGLE_PLACES_API_KEY", "places-secret-key")
            .env("GOOGLE_PLACES_BASE_URL", &providers.base_url)
            .env("INDEXNOW_KEY", "indexnow-key")
            .env("INDEXNOW_URL", format!("{}/indexnow", providers.base_url))
            .env("APP_BASE_URL", "https://revendiste.test");
        cmd
    };

    let first = output(run()).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let s = summary(&first.stderr);
    assert_eq!(s["details"]["venues_refreshed"], 1, "{}", first.stderr);
    let venue: (String, Option<String>) =
        sqlx::query_as("SELECT name, google_place_id FROM event_venues WHERE id = $1")
            .bind(stale)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        venue,
        (
            "Club Náutico Punta Carretas".into(),
            Some("ChIJ-nautico".into())
        )
    );
    let on_it: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE venue_id = $1")
        .bind(stale)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(on_it >= 1, "the refreshed venue is the event's");
    let slugs: Vec<String> = sqlx::query_scalar(
        "SELECT slug FROM events WHERE platform = 'entraste' AND event_end_date > $1 ORDER BY slug",
    )
    .bind(instant(NOW))
    .fetch_all(&pool)
    .await
    .unwrap();
    let pings = providers.indexnow_pings();
    assert_eq!(pings.len(), 1, "one batch for the site's few events");
    assert_eq!(pings[0]["host"], "revendiste.com");
    assert_eq!(
        pings[0]["keyLocation"],
        "https://revendiste.com/indexnow-key.txt"
    );
    let mut pinged: Vec<String> = pings[0]["urlList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    pinged.sort();
    let expected: Vec<String> = slugs
        .iter()
        .map(|s| format!("https://revendiste.test/eventos/{s}"))
        .collect();
    assert_eq!(pinged, expected);
    assert_eq!(s["details"]["indexnow_pinged"], slugs.len());

    let google_asked = providers.places_requests();
    let second = output(run()).await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let s = summary(&second.stderr);
    assert_eq!(s["details"]["venues_refreshed"], 0);
    assert_eq!(
        providers.places_requests(),
        google_asked,
        "fresh venues are not asked about"
    );
    assert_eq!(s["details"]["indexnow_pinged"], 0);
    assert_eq!(
        providers.indexnow_pings().len(),
        1,
        "nothing changed, nothing pinged"
    );

    // The page of one event changed (the site now shows another name than stored), and
    // IndexNow refuses: the run still succeeds.
    sqlx::query("UPDATE events SET name = 'old name' WHERE slug = $1")
        .bind(&slugs[0])
        .execute(&pool)
        .await
        .unwrap();
    providers.refuse_indexnow(1);
    let third = output(run()).await;
    assert_eq!(third.code, Some(0), "{}", third.stderr);
    let s = summary(&third.stderr);
    assert_eq!(
        (
            s["details"]["indexnow_pinged"].clone(),
            s["details"]["indexnow_failed"].clone()
        ),
        (json!(0), json!(1))
    );
    providers.refuse_indexnow(0);
    sqlx::query("UPDATE events SET name = 'old name' WHERE slug = $1")
        .bind(&slugs[0])
        .execute(&pool)
        .await
        .unwrap();
    let fourth = output(run()).await;
    assert_eq!(fourth.code, Some(0), "{}", fourth.stderr);
    let pings = providers.indexnow_pings();
    assert_eq!(pings.len(), 2);
    assert_eq!(
        pings[1]["urlList"],
        json!([format!("https://revendiste.test/eventos/{}", slugs[0])])
    );
    assert!(
        !fourth.stderr.contains("indexnow-key") && !fourth.stderr.contains("places-secret-key")
    );
    let _ = std::fs::remove_dir_all(&uploads);
}
