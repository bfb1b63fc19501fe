//! notify-upload-availability on a real database: the original's milestone rules as
//! cases, exact once-only reminders (also across overlapping runs and the cutover from
//! the original), and a run through the binary. The job's clock is frozen at a given
//! number of hours before the event instead of moving the event around.

use chrono::{DateTime, TimeDelta, Utc};
use run_job::clock::Clock;
use run_job::jobs::Summary;
use run_job::jobs::notify_upload_availability::{Settings, UploadReminders};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::fixtures::*;
use crate::helpers::*;

/// The event of `w` starts at this instant in every test.
fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-05T23:00:00Z")
        .unwrap()
        .to_utc()
}

async fn event_at(w: &World, qr: Option<&str>) {
    sqlx::query(
        "UPDATE events SET event_start_date = $2, event_end_date = $2 + interval '4 hours',
                qr_availability_timing = $3::qr_availability_timing WHERE id = $1",
    )
    .bind(w.event)
    .bind(start())
    .bind(qr)
    .execute(&w.pool)
    .await
    .unwrap();
}

/// One run with the clock `hours` before the event.
async fn run_at(pool: &PgPool, hours: f64) -> Summary {
    let at = start() - TimeDelta::milliseconds((hours * 3_600_000.0) as i64);
    let settings = Settings::from_env(&|_: &str| None).unwrap();
    let job = UploadReminders::new(pool.clone(), settings, Clock::frozen(at));
    let cx = crate::helpers::context(pool, CancellationToken::new());
    job.run_once(&cx)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error))
}

/// The reminders' metadata, oldest first.
async fn reminders(pool: &PgPool) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT metadata FROM notifications WHERE type = 'document_reminder' ORDER BY created_at, id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn document(pool: &PgPool, ticket: Uuid) {
    sqlx::query("INSERT INTO ticket_documents (ticket_id, storage_path) VALUES ($1, 'x.pdf')")
        .bind(ticket)
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test(migrations = "./migrations")]
async fn inside_the_qr_window_the_largest_milestone_ahead_is_caught_up(pool: PgPool) {
    let w = world(&pool, 100).await;
    event_at(&w, Some("12h")).await;
    let (listing, _) = w.listing(w.seller_a, &["100", "100"]).await;
    // h = 5 with a 12 h window: no band, caught up to 12 (the original's example).
    let s = run_at(&pool, 5.0).await;
    assert_eq!(s.details["reminders_sent"], 1);
    let sent = reminders(&pool).await;
    assert_eq!(
        sent,
        [json!({
            "type": "document_reminder",
            "listingId": listing,
            "eventName": "Cuarteto de Nos",
            "eventStartDate": "2026-12-05T23:00:00.000Z",
            "eventTimezone": "America/Montevideo",
            "ticketCount": 2,
            "hoursUntilEvent": 12,
        })]
    );
    let (user, channels, actions): (Uuid, Vec<String>, Value) = sqlx::query_as(
        "SELECT user_id, channels::text[], actions FROM notifications WHERE type = 'document_reminder'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(user, w.seller_a);
    assert_eq!(channels, ["in_app", "email", "whatsapp"]);
    assert_eq!(
        actions[0]["url"],
        format!("https://revendiste.com/cuenta/subir-entradas?subirPublicacion={listing}")
    );

    // h = 4.338 with a 6 h window: caught up to 6 (the original's other example).
    event_at(&w, Some("6h")).await;
    run_at(&pool, 4.338).await;
    let hours: Vec<Value> = reminders(&pool)
        .await
        .iter()
        .map(|m| m["hoursUntilEvent"].clone())
        .collect();
    assert_eq!(hours, [json!(12), json!(6)]);
    assert_notifications_match_golden(&pool, "upload_reminders").await;
}

#[sqlx::test(migrations = "./migrations")]
async fn bands_outside_the_window_and_between_milestones_send_nothing(pool: PgPool) {
    let w = world(&pool, 100).await;
    event_at(&w, Some("24h")).await;
    w.listing(w.seller_a, &["100"]).await;
    for hours in [72.0, 48.2, 30.0] {
        let s = run_at(&pool, hours).await;
        assert_eq!(s.details["not_due"], 1, "{hours} h: before the 24 h window");
    }
    event_at(&w, None).await;
    for hours in [71.4, 30.0, 5.0] {
        run_at(&pool, hours).await;
    }
    assert!(reminders(&pool).await.is_empty(), "no band was hit");
    run_at(&pool, 72.3).await;
    assert_eq!(reminders(&pool).await[0]["hoursUntilEvent"], 72);
}

/// The original's ±1 h dedupe window let a 3 h reminder suppress the 2 h one; here
/// each milestone is sent once, and the next one still goes out.
#[sqlx::test(migrations = "./migrations")]
async fn each_milestone_is_sent_once_and_the_next_one_still_goes_out(pool: PgPool) {
    let w = world(&pool, 100).await;
    event_at(&w, None).await;
    w.listing(w.seller_a, &["100"]).await;
    run_at(&pool, 3.2).await;
    let again = run_at(&pool, 2.9).await;
    assert_eq!(again.details["already_sent"], 1);
    run_at(&pool, 2.0).await;
    run_at(&pool, 1.1).await;
    let hours: Vec<Value> = reminders(&pool)
        .await
        .iter()
        .map(|m| m["hoursUntilEvent"].clone())
        .collect();
    assert_eq!(hours, [json!(3), json!(2), json!(1)]);
}

#[sqlx::test(migrations = "./migrations")]
async fn only_tickets_without_a_document_count_and_a_complete_listing_is_left_alone(pool: PgPool) {
    let w = world(&pool, 100).await;
    event_at(&w, None).await;
    let (_, partly) = w.listing(w.seller_a, &["100", "100", "100"]).await;
    document(&pool, partly[0]).await;
    let (_, complete) = w.listing(w.seller_b, &["100"]).await;
    document(&pool, complete[0]).await;
    // A deleted document does not count as uploaded.
    sqlx::query("UPDATE ticket_documents SET deleted_at = now() WHERE ticket_id = $1")
        .bind(complete[0])
        .execute(&pool)
        .await
        .unwrap();
    document(&pool, complete[0]).await;
    run_at(&pool, 24.0).await;
    let sent = reminders(&pool).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["ticketCount"], 2);
}

#[sqlx::test(migrations = "./migrations")]
async fn two_runs_at_once_send_each_reminder_once(pool: PgPool) {
    let w = world(&pool, 100).await;
    event_at(&w, None).await;
    for i in 0..40 {
        let seller = if i % 2 == 0 { w.seller_a } else { w.seller_b };
        w.listing(seller, &["100"]).await;
    }
    let (a, b) = tokio::join!(run_at(&pool, 6.0), run_at(&pool, 6.0));
    let sent = |s: &Summary| s.details["reminders_sent"].as_u64().unwrap();
    let skipped = |s: &Summary| s.details["already_sent"].as_u64().unwrap();
    assert_eq!(sent(&a) + sent(&b), 40, "{a:?} {b:?}");
    assert_eq!(skipped(&a) + skipped(&b), 40);
    assert_eq!(reminders(&pool).await.len(), 40);
    let recorded = scalar_i64(
        &pool,
        "SELECT count(*) FROM document_reminders WHERE $1::uuid IS NOT NULL",
        w.event,
    )
    .await;
    assert_eq!(recorded, 40);
}

/// At the cutover, what the original already sent is not sent again.
#[sqlx::test(migrations = "./migrations")]
async fn a_reminder_the_original_sent_is_not_sent_again(pool: PgPool) {
    let w = world(&pool, 100).await;
    event_at(&w, None).await;
    let (listing, _) = w.listing(w.seller_a, &["100"]).await;
    sqlx::query(
        "INSERT INTO notifications (user_id, type, channels, metadata, status)
         VALUES ($1, 'document_reminder', '{in_app}', $2, 'sent')",
    )
    .bind(w.seller_a)
    .bind(json!({"listingId": listing, "hoursUntilEvent": 12, "eventName": "Cuarteto de Nos"}))
    .execute(&pool)
    .await
    .unwrap();
    let s = run_at(&pool, 12.0).await;
    assert_eq!(s.details["sent_by_original"], 1);
    assert_eq!(reminders(&pool).await.len(), 1);
    let again = run_at(&pool, 11.8).await;
    assert_eq!(again.details["already_sent"], 1);
    run_at(&pool, 6.0).await;
    assert_eq!(reminders(&pool).await.len(), 2, "the 6 h one is new");
}

#[sqlx::test(migrations = "./migrations")]
async fn the_time_zone_comes_from_the_venues_country_by_name_or_code(pool: PgPool) {
    let w = world(&pool, 100).await;
    event_at(&w, None).await;
    w.listing(w.seller_a, &["100"]).await;
    sqlx::query("UPDATE event_venues SET country = 'Argentina'")
        .execute(&pool)
        .await
        .unwrap();
    run_at(&pool, 48.0).await;
    sqlx::query("UPDATE event_venues SET country = 'AR'")
        .execute(&pool)
        .await
        .unwrap();
    run_at(&pool, 24.0).await;
    let zones: Vec<Value> = reminders(&pool)
        .await
        .iter()
        .map(|m| m["eventTimezone"].clone())
        .collect();
    assert_eq!(zones, vec![json!("America/Argentina/Buenos_Aires"); 2]);
}

/// Through the binary, as EventBridge runs it: the reminder queued, the run recorded.
#[sqlx::test(migrations = "./migrations")]
async fn the_binary_runs_it_and_records_the_run(pool: PgPool) {
    let w = world(&pool, 100).await;
    event_at(&w, Some("12h")).await;
    w.listing(w.seller_a, &["100"]).await;
    let mut cmd = run_job_on(&pool);
    cmd.arg("notify-upload-availability")
        .env("RUN_JOB_NOW", (start() - TimeDelta::hours(12)).to_rfc3339());
    let r = output(cmd).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(reminders(&pool).await.len(), 1);
    let (outcome, items): (String, i64) = sqlx::query_as(
        "SELECT outcome::text, items_processed FROM job_runs WHERE job = 'notify-upload-availability'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((outcome.as_str(), items), ("succeeded", 1));
}
