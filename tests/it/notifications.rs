//! The notifications job against a real PostgreSQL and the provider stand-ins over
//! HTTP: wire formats, partial success, retries and their limit, permanent errors,
//! Retry-After, skip rules, batches, the jobs queue, bad input, two runs at once, kill -9
//! at many points, and WhatsApp's delivery receipts.

use std::time::Duration;

use chrono::TimeDelta;
use run_job::clock::Clock;
use run_job::jobs::Summary;
use run_job::jobs::notifications::{Notifications, Settings};
use run_job::sandbox::{ProviderScript, Sandbox};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::fixtures::NewOrder;
use crate::helpers::{env_of, stand_ins};

fn settings(sb: &Sandbox, extra: &[(&str, &str)]) -> Settings {
    let base = [
        ("RESEND_API_KEY", "re_test_key"),
        ("RESEND_BASE_URL", sb.base_url.as_str()),
        ("EMAIL_FROM", "noreply@revendiste.com"),
        ("WHATSAPP_ACCESS_TOKEN", "wa_test_token"),
        ("WHATSAPP_PHONE_NUMBER_ID", "1234567890"),
        ("WHATSAPP_BASE_URL", sb.base_url.as_str()),
        ("PUSH_SERVICE_ORIGINS", sb.base_url.as_str()),
        ("EMAIL_RATE_PER_SECOND", "0"),
        ("WHATSAPP_RATE_PER_SECOND", "0"),
    ];
    Settings::from_env(&env_of(&base, extra)).unwrap()
}

async fn run(pool: &PgPool, settings: Settings) -> Summary {
    run_at(pool, settings, &Clock::system()).await
}

/// A run on `clock`: a test moves it forward instead of waiting for a backoff.
async fn run_at(pool: &PgPool, settings: Settings, clock: &Clock) -> Summary {
    let job = Notifications::new(pool.clone(), settings, clock.clone()).unwrap();
    let cx = crate::helpers::context(pool, CancellationToken::new());
    job.run_once(&cx)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error))
}

async fn user(pool: &PgPool, email: Option<&str>, phone: Option<&str>) -> Uuid {
    sqlx::query_scalar("INSERT INTO users (email, phone_number) VALUES ($1, $2) RETURNING id")
        .bind(
            email
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}@nomail.invalid", Uuid::new_v4())),
        )
        .bind(phone)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn confirmed() -> Value {
    json!({
        "type": "order_confirmed", "orderId": "00000000-0000-0000-0000-000000000001",
        "eventName": "No Te Va Gustar", "totalAmount": "2146.40", "subtotalAmount": "2000",
        "platformCommission": "120", "vatOnCommission": "26.40", "currency": "UYU",
        "items": [{"id": "00000000-0000-0000-0000-0000000000aa", "ticketWaveName": "General", "quantity": 2, "pricePerTicket": "1000", "subtotal": "2000"}]
    })
}

async fn notification(
    pool: &PgPool,
    user: Uuid,
    kind: &str,
    channels: &str,
    metadata: Value,
) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO notifications (user_id, type, channels, metadata, actions)
         VALUES ($1, $2::notification_type, $3::notification_channel[], $4,
                 '[{\"type\":\"view_order\",\"label\":\"Ver orden\",\"url\":\"https://app.test/o/1\"}]')
         RETURNING id",
    )
    .bind(user)
    .bind(kind)
    .bind(channels)
    .bind(metadata)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// `n` users with an email and a phone, each with a pending order_confirmed on every
/// channel.
async fn everyone_notified(pool: &PgPool, n: usize) {
    for i in 0..n {
        let u = user(
            pool,
            Some(&format!("u{i}@example.com")),
            Some(&format!("+5989{i:07}")),
        )
        .await;
        notification(
            pool,
            u,
            "order_confirmed",
            "{in_app,email,whatsapp}",
            confirmed(),
        )
        .await;
    }
}

async fn state(pool: &PgPool, id: Uuid) -> (String, Value) {
    sqlx::query_as("SELECT status::text, channel_status FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn every_channel_is_delivered_in_its_providers_wire_format(pool: PgPool) {
    let u = user(&pool, Some("ana@example.com"), Some("+59899123456")).await;
    let id = notification(
        &pool,
        u,
        "order_confirmed",
        "{in_app,email,whatsapp}",
        confirmed(),
    )
    .await;
    let sb = stand_ins().await;
    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!((s.processed, s.succeeded, s.failed), (1, 1, 0));

    let emails = sb.emails();
    assert_eq!(emails.len(), 1);
    let e = &emails[0];
    assert_eq!(e.authorization.as_deref(), Some("Bearer re_test_key"));
    assert_eq!(
        e.idempotency_key.as_deref(),
        Some(format!("notification-{id}-email").as_str())
    );
    assert_eq!(e.body["from"], "Revendiste <noreply@revendiste.com>");
    assert_eq!(e.body["to"], json!(["ana@example.com"]));
    assert_eq!(
        e.body["subject"],
        "¡Tu compra para No Te Va Gustar está confirmada!"
    );
    assert!(e.body["html"].as_str().unwrap().contains("UYU 2146.40"));
    assert!(
        e.body["text"]
            .as_str()
            .unwrap()
            .contains("Total: UYU 2146.40")
    );

    let w = sb.whatsapps();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].authorization.as_deref(), Some("Bearer wa_test_token"));
    assert_eq!(w[0].body["messaging_product"], "whatsapp");
    assert_eq!(w[0].body["to"], "+59899123456");
    assert_eq!(w[0].body["template"]["name"], "revendiste_order_confirmed");
    assert_eq!(w[0].body["template"]["language"]["code"], "es");
    assert_eq!(
        w[0].body["template"]["components"][0]["parameters"],
        json!([{"type": "text", "text": "No Te Va Gustar"}, {"type": "text", "text": "UYU 2146.40"}])
    );
    assert_eq!(
        w[0].body["biz_opaque_callback_data"],
        format!("notification-{id}-whatsapp"),
        "the receipts name their notification"
    );

    let (status, channels) = state(&pool, id).await;
    assert_eq!(status, "sent");
    for c in ["in_app", "email", "whatsapp"] {
        assert_eq!(channels[c]["status"], "sent", "{channels}");
    }
    assert_eq!(channels["whatsapp"]["providerId"], "wamid.1");

    run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        (sb.email_requests(), sb.whatsapp_requests()),
        (1, 1),
        "nothing is sent twice"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_channel_that_cannot_be_sent_fails_alone(pool: PgPool) {
    let no_phone = user(&pool, Some("b@example.com"), None).await;
    let id = notification(
        &pool,
        no_phone,
        "order_confirmed",
        "{in_app,email,whatsapp}",
        confirmed(),
    )
    .await;
    let sb = stand_ins().await;
    run(&pool, settings(&sb, &[])).await;
    let (status, channels) = state(&pool, id).await;
    assert_eq!(
        status, "sent",
        "partial success is success, as in the original"
    );
    assert_eq!(channels["email"]["status"], "sent");
    assert_eq!(channels["whatsapp"]["status"], "failed");
    assert_eq!(channels["whatsapp"]["error"], "user has no phone number");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failing_channel_is_retried_later_and_the_others_are_not_resent(pool: PgPool) {
    let u = user(&pool, Some("c@example.com"), Some("+59899000000")).await;
    let id = notification(&pool, u, "order_confirmed", "{email,whatsapp}", confirmed()).await;
    let sb = stand_ins().await;
    // One attempt and two quick in-process retries, all 500.
    sb.script_email(ProviderScript {
        fail_next: 3,
        ..ProviderScript::default()
    });
    let clock = Clock::system();
    run_at(&pool, settings(&sb, &[]), &clock).await;
    let (status, channels) = state(&pool, id).await;
    assert_eq!(status, "pending");
    assert_eq!(channels["email"]["status"], "retry");
    assert_eq!(channels["email"]["attempts"], 1);
    assert_eq!(channels["whatsapp"]["status"], "sent");
    let next: f64 = sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM next_attempt_at - now())::float8 FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        next > 50.0 && next < 80.0,
        "first retry after about a minute, got {next} s"
    );

    run_at(&pool, settings(&sb, &[]), &clock).await;
    assert_eq!(sb.email_requests(), 3, "not due yet");
    clock.advance(TimeDelta::seconds(80));
    run_at(&pool, settings(&sb, &[]), &clock).await;
    let (status, channels) = state(&pool, id).await;
    assert_eq!(
        (status.as_str(), &channels["email"]["status"]),
        ("sent", &json!("sent"))
    );
    assert_eq!(channels["email"]["attempts"], 2);
    assert_eq!(
        sb.whatsapp_requests(),
        1,
        "the channel that succeeded was not sent again"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn retries_stop_at_the_limit_and_permanent_errors_are_not_retried(pool: PgPool) {
    let u = user(&pool, Some("d@example.com"), None).await;
    let limited = notification(&pool, u, "order_confirmed", "{email}", confirmed()).await;
    let sb = stand_ins().await;
    sb.script_email(ProviderScript {
        fail_next: 100,
        ..ProviderScript::default()
    });
    let two = settings(&sb, &[("NOTIFICATIONS_MAX_ATTEMPTS", "2")]);
    let clock = Clock::system();
    run_at(&pool, two.clone(), &clock).await;
    clock.advance(TimeDelta::seconds(80));
    run_at(&pool, two.clone(), &clock).await;
    let (status, channels) = state(&pool, limited).await;
    assert_eq!(status, "failed");
    assert!(
        channels["email"]["error"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 2 attempts: Resend answered 500"),
        "{channels}"
    );
    let retry_count: i32 =
        sqlx::query_scalar("SELECT retry_count FROM notifications WHERE id = $1")
            .bind(limited)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(retry_count, 1);

    sb.script_email(ProviderScript {
        reject_next: 1,
        ..ProviderScript::default()
    });
    let refused = notification(&pool, u, "order_confirmed", "{email}", confirmed()).await;
    let before = sb.email_requests();
    run(&pool, two).await;
    let (status, channels) = state(&pool, refused).await;
    assert_eq!(status, "failed");
    assert_eq!(
        channels["email"]["error"],
        "Resend answered 422 Unprocessable Entity: Invalid `to` field"
    );
    assert_eq!(sb.email_requests(), before + 1, "a 4xx is not retried");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_long_retry_after_defers_the_channel_to_a_later_run(pool: PgPool) {
    let u = user(&pool, Some("e@example.com"), None).await;
    let id = notification(&pool, u, "order_confirmed", "{email}", confirmed()).await;
    let sb = stand_ins().await;
    sb.script_email(ProviderScript {
        rate_limit_next: 1,
        retry_after_secs: 600,
        ..ProviderScript::default()
    });
    let started = std::time::Instant::now();
    run(&pool, settings(&sb, &[])).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the run did not sit out ten minutes"
    );
    let (status, channels) = state(&pool, id).await;
    assert_eq!(
        (status.as_str(), &channels["email"]["status"]),
        ("pending", &json!("retry"))
    );
    let next: f64 = sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM next_attempt_at - now())::float8 FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        next > 590.0 && next < 610.0,
        "Retry-After: 600 honoured, got {next} s"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn bad_input_fails_its_notification_with_a_reason(pool: PgPool) {
    let u = user(&pool, Some("f@example.com"), None).await;
    let mut wrong = confirmed();
    wrong.as_object_mut().unwrap().remove("eventName");
    let misfit = notification(&pool, u, "order_confirmed", "{in_app,email}", wrong).await;
    let untemplated = notification(
        &pool,
        u,
        "identity_verification_failed",
        "{in_app,email}",
        json!({"type": "identity_verification_failed", "failureReason": "foto borrosa", "attemptsRemaining": 2}),
    )
    .await;
    let gone = user(&pool, Some("gone@example.com"), None).await;
    let nobody = notification(&pool, gone, "order_confirmed", "{email}", confirmed()).await;
    sqlx::query("UPDATE users SET deleted_at = now() WHERE id = $1")
        .bind(gone)
        .execute(&pool)
        .await
        .unwrap();
    let sb = stand_ins().await;
    run(&pool, settings(&sb, &[])).await;
    let (status, channels) = state(&pool, misfit).await;
    assert_eq!(status, "failed");
    assert!(
        channels["email"]["error"]
            .as_str()
            .unwrap()
            .contains("missing field `eventName`"),
        "{channels}"
    );
    assert_eq!(
        channels["in_app"]["status"], "failed",
        "nothing with holes is shown either"
    );
    let (status, channels) = state(&pool, untemplated).await;
    assert_eq!(status, "sent", "in-app got through");
    assert_eq!(
        channels["email"]["error"],
        "identity_verification_failed is shown in the app only and has no email"
    );
    let (status, channels) = state(&pool, nobody).await;
    assert_eq!(status, "failed");
    assert_eq!(channels["email"]["error"], "user not found or has no email");
    assert_eq!(sb.email_requests(), 0, "nothing was emailed");
}

#[sqlx::test(migrations = "./migrations")]
async fn two_runs_at_once_deliver_everything_exactly_once(pool: PgPool) {
    let sb = stand_ins().await;
    sb.script_email(ProviderScript {
        latency_ms: 10,
        ..ProviderScript::default()
    });
    everyone_notified(&pool, 60).await;
    let small = settings(&sb, &[("NOTIFICATIONS_BATCH", "7")]);
    let (a, b) = tokio::join!(run(&pool, small.clone()), run(&pool, small));
    assert_eq!(a.processed + b.processed, 60);
    assert!(
        a.processed > 0 && b.processed > 0,
        "both runs took a share: {} and {}",
        a.processed,
        b.processed
    );
    let mut keys: Vec<String> = sb
        .emails()
        .into_iter()
        .filter_map(|e| e.idempotency_key)
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!((sb.email_requests(), keys.len()), (60, 60));
    assert_eq!(sb.whatsapp_requests(), 60);
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE status = 'sent' AND lease_until IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(sent, 60);
}

async fn batch(
    pool: &PgPool,
    user: Uuid,
    kind: &str,
    key: &str,
    window_ends_in_minutes: i64,
) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO notification_batches (debounce_key, user_id, notification_type, channels, window_ends_at)
         VALUES ($1, $2, $3::notification_type, '{in_app,email}', now() + $4 * interval '1 minute') RETURNING id",
    )
    .bind(key)
    .bind(user)
    .bind(kind)
    .bind(window_ends_in_minutes as f64)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn item(pool: &PgPool, batch: Uuid, metadata: Value) {
    sqlx::query(
        "INSERT INTO notification_batch_items (batch_id, metadata, actions)
         VALUES ($1, $2, '[{\"type\":\"view_order\",\"label\":\"Ver\",\"url\":\"https://app.test/o\"}]')",
    )
    .bind(batch)
    .bind(metadata)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = "./migrations")]
async fn closed_batches_are_merged_by_the_original_rules_and_sent(pool: PgPool) {
    let buyer = user(&pool, Some("buyer@example.com"), None).await;
    let seller = user(&pool, Some("seller@example.com"), None).await;
    let order = "00000000-0000-0000-0000-000000000001";
    let uploads = batch(
        &pool,
        buyer,
        "document_uploaded",
        &format!("document_uploaded:{order}"),
        -1,
    )
    .await;
    for _ in 0..3 {
        item(&pool, uploads, json!({"type": "document_uploaded", "orderId": order, "eventName": "Cuarteto", "ticketCount": 1})).await;
    }
    let retained = batch(
        &pool,
        seller,
        "seller_earnings_retained",
        "seller_earnings_retained:s:Cuarteto:missing_document",
        -1,
    )
    .await;
    for n in [2, 3] {
        item(&pool, retained, json!({"type": "seller_earnings_retained", "eventName": "Cuarteto", "ticketCount": n, "reason": "missing_document"})).await;
    }
    let open = batch(
        &pool,
        buyer,
        "document_uploaded",
        "document_uploaded:other",
        5,
    )
    .await;
    item(
        &pool,
        open,
        json!({"type": "document_uploaded", "orderId": order, "eventName": "X", "ticketCount": 1}),
    )
    .await;
    let empty = batch(
        &pool,
        buyer,
        "document_uploaded",
        "document_uploaded:empty",
        -1,
    )
    .await;

    let sb = stand_ins().await;
    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        (
            s.details["batches_merged"].as_u64(),
            s.details["batches_cancelled"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let status = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT status::text FROM notification_batches WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(status(uploads).await, "processed");
    assert_eq!(status(retained).await, "processed");
    assert_eq!(status(open).await, "pending", "its window is still open");
    assert_eq!(status(empty).await, "cancelled");

    let (kind, metadata, state): (String, Value, String) = sqlx::query_as(
        "SELECT n.type::text, n.metadata, n.status::text FROM notifications n
           JOIN notification_batches b ON b.final_notification_id = n.id WHERE b.id = $1",
    )
    .bind(uploads)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (kind.as_str(), state.as_str()),
        ("document_uploaded_batch", "sent")
    );
    assert_eq!(metadata["uploadedCount"], 3);
    assert_eq!(
        metadata["tickets"],
        json!([
            {"ticketNumber": "1", "eventName": "Cuarteto"},
            {"ticketNumber": "2", "eventName": "Cuarteto"},
            {"ticketNumber": "3", "eventName": "Cuarteto"}
        ])
    );
    let retained_count: i64 = sqlx::query_scalar(
        "SELECT (n.metadata->>'ticketCount')::bigint FROM notifications n
           JOIN notification_batches b ON b.final_notification_id = n.id WHERE b.id = $1",
    )
    .bind(retained)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(retained_count, 5, "ticket counts summed");
    let subjects: Vec<String> = sb
        .emails()
        .iter()
        .map(|e| e.body["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects.len(), 2);
    assert!(
        subjects.contains(&"Tus entradas para Cuarteto ya están disponibles".to_string()),
        "{subjects:?}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn an_item_appended_after_its_batch_was_merged_is_sent_not_lost(pool: PgPool) {
    let buyer = user(&pool, Some("late@example.com"), None).await;
    let order = "00000000-0000-0000-0000-000000000002";
    let b = batch(
        &pool,
        buyer,
        "document_uploaded",
        &format!("document_uploaded:{order}"),
        -1,
    )
    .await;
    item(&pool, b, json!({"type": "document_uploaded", "orderId": order, "eventName": "Late", "ticketCount": 1})).await;
    let sb = stand_ins().await;
    run(&pool, settings(&sb, &[])).await;
    // The app found the batch pending just before the merge and appends now.
    item(&pool, b, json!({"type": "document_uploaded", "orderId": order, "eventName": "Late", "ticketCount": 1})).await;
    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!(s.details["batch_items_recovered"], 1);
    let merged: Vec<i64> = sqlx::query_scalar(
        "SELECT (metadata->>'uploadedCount')::bigint FROM notifications WHERE type = 'document_uploaded_batch' ORDER BY created_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        merged,
        [1, 1],
        "the late item got a notification of its own"
    );
    assert_eq!(sb.emails().len(), 2);
}

async fn enqueue(pool: &PgPool, job_type: &str, payload: Value, max_attempts: i32) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO jobs (job_type, payload, idempotency_key, max_attempts) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(job_type)
    .bind(payload)
    .bind(format!("{job_type}:{}", Uuid::new_v4()))
    .bind(max_attempts)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn job_state(pool: &PgPool, id: Uuid) -> (String, i32, Option<String>, f64) {
    sqlx::query_as(
        "SELECT status::text, attempts, error, EXTRACT(EPOCH FROM scheduled_at - now())::float8 FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn the_jobs_queue_runs_send_notification_and_leaves_other_types_alone(pool: PgPool) {
    let u = user(&pool, Some("q@example.com"), None).await;
    let n = notification(&pool, u, "order_confirmed", "{email}", confirmed()).await;
    sqlx::query("UPDATE notifications SET send_via_job = true WHERE id = $1")
        .bind(n)
        .execute(&pool)
        .await
        .unwrap();
    let good = enqueue(&pool, "send-notification", json!({"notificationId": n}), 5).await;
    let bad = enqueue(
        &pool,
        "send-notification",
        json!({"notification": "nope"}),
        5,
    )
    .await;
    let doomed = enqueue(&pool, "send-notification", json!({}), 1).await;
    let invoice = enqueue(&pool, "notify-order-confirmed", json!({"orderId": n}), 5).await;
    let stale = enqueue(
        &pool,
        "send-notification",
        json!({"notificationId": Uuid::new_v4()}),
        5,
    )
    .await;
    sqlx::query("UPDATE jobs SET status = 'processing', started_at = now() - interval '20 minutes' WHERE id = $1")
        .bind(stale)
        .execute(&pool)
        .await
        .unwrap();

    let sb = stand_ins().await;
    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!(s.details["queue_jobs_reclaimed"], 1);
    assert_eq!(job_state(&pool, good).await.0, "completed");
    assert_eq!(
        job_state(&pool, stale).await.0,
        "completed",
        "reclaimed, then done"
    );
    assert_eq!(
        state(&pool, n).await.0,
        "sent",
        "its notification went out in the same run"
    );
    assert_eq!(sb.emails().len(), 1, "once");

    let (status, attempts, error, scheduled_in) = job_state(&pool, bad).await;
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    assert!(
        error
            .unwrap()
            .starts_with("Invalid payload: missing field `notificationId`")
    );
    assert!(
        scheduled_in > 50.0 && scheduled_in < 70.0,
        "2^0 = 1 minute, got {scheduled_in} s"
    );
    let (status, attempts, ..) = job_state(&pool, doomed).await;
    assert_eq!(
        (status.as_str(), attempts),
        ("failed", 1),
        "max_attempts reached"
    );
    let (status, attempts, error, _) = job_state(&pool, invoice).await;
    assert_eq!(
        (status.as_str(), attempts, error),
        ("pending", 0, None),
        "not ours: untouched"
    );
}

/// kill -9 runs at many points while they deliver a few hundred notifications, rerun
/// until done, then count at the stand-ins. WhatsApp's receipts flow as in production:
/// the stand-in sends Meta's status webhooks to the marketplace's route (its stand-in).
#[sqlx::test(migrations = "./migrations")]
async fn killing_runs_at_any_point_loses_nothing_and_sends_nothing_twice(pool: PgPool) {
    const N: usize = 200;
    let sb = stand_ins().await;
    sb.script_email(ProviderScript {
        latency_ms: 15,
        ..ProviderScript::default()
    });
    sb.script_whatsapp(ProviderScript {
        latency_ms: 15,
        ..ProviderScript::default()
    });
    let receipts =
        run_job::sandbox::marketplace::serve_whatsapp_webhook(pool.clone(), "app-secret")
            .await
            .unwrap();
    sb.send_whatsapp_statuses(&receipts, "app-secret");
    everyone_notified(&pool, N).await;
    // Every process runs on the same clock, `ahead` of the wall: the test moves it on
    // to let a dead run's lease or a send's deadline pass instead of sleeping.
    let process = |ahead: TimeDelta| {
        let mut cmd = crate::helpers::run_job_on(&pool);
        cmd.arg("notifications")
            .env("RUN_JOB_NOW", (chrono::Utc::now() + ahead).to_rfc3339())
            .env("RESEND_API_KEY", "re_test_key")
            .env("RESEND_BASE_URL", &sb.base_url)
            .env("WHATSAPP_ACCESS_TOKEN", "wa_test_token")
            .env("WHATSAPP_PHONE_NUMBER_ID", "1234567890")
            .env("WHATSAPP_BASE_URL", &sb.base_url)
            .env("EMAIL_RATE_PER_SECOND", "0")
            .env("WHATSAPP_RATE_PER_SECOND", "0")
            .env("WHATSAPP_RECEIPTS_WAIT_SECONDS", "1")
            .env("NOTIFICATIONS_BATCH", "10")
            .env("NOTIFICATIONS_CONCURRENCY", "5")
            .env("NOTIFICATIONS_LEASE_SECONDS", "2");
        cmd
    };
    let mut ahead = TimeDelta::zero();
    // Kill points spread over start-up, claiming, sending and writing results.
    for (round, delay_ms) in [
        90u64, 160, 230, 300, 370, 440, 510, 580, 650, 720, 130, 270, 410, 550, 690,
    ]
    .into_iter()
    .enumerate()
    {
        let mut child = process(ahead).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        crate::helpers::send_signal(child.id().unwrap(), "KILL");
        child.wait().await.unwrap();
        if round % 5 == 4 {
            ahead += TimeDelta::seconds(3); // the dead runs' 2 s leases lapse
        }
    }
    ahead += TimeDelta::seconds(3);
    // A message a dead run left `sending` without a receipt is sent again once the send's
    // deadline (15 s) and the receipt wait (1 s here) have passed since its mark.
    for _ in 0..15 {
        let r = crate::helpers::output(process(ahead)).await;
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'pending'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if pending == 0 {
            break;
        }
        ahead += TimeDelta::seconds(20);
    }

    // Email: every notification delivered exactly once (Resend dedupes the retries' key).
    let mut keys: Vec<String> = sb
        .emails()
        .into_iter()
        .filter_map(|e| e.idempotency_key)
        .collect();
    keys.sort();
    let distinct = {
        let mut d = keys.clone();
        d.dedup();
        d
    };
    assert_eq!(distinct.len(), keys.len(), "an email delivered twice");
    assert_eq!(keys.len(), N, "an email lost");
    // WhatsApp: exactly once too; a message a dead run left `sending` was settled by its
    // receipt, or sent again once the wait showed it had never been accepted.
    let mut phones: Vec<String> = sb
        .whatsapps()
        .into_iter()
        .map(|m| m.body["to"].as_str().unwrap().to_string())
        .collect();
    phones.sort();
    let total = phones.len();
    phones.dedup();
    assert_eq!(phones.len(), total, "a WhatsApp message delivered twice");
    assert_eq!(total, N, "a WhatsApp message lost");
    let (by_receipt, resent): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE channel_status->'whatsapp'->>'confirmedBy' = 'receipt'),
                count(*) FILTER (WHERE (channel_status->'whatsapp'->>'attempts')::int > 1)
           FROM notifications",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    eprintln!(
        "crash test: {total} WhatsApp messages delivered, {by_receipt} settled by their receipt after a run died, {resent} sent again after a run died before sending"
    );
    let not_final: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE status = 'pending' OR lease_until IS NOT NULL
            OR channel_status->'in_app'->>'status' IS DISTINCT FROM 'sent'
            OR channel_status->'email'->>'status' IS DISTINCT FROM 'sent'
            OR channel_status->'whatsapp'->>'status' IS DISTINCT FROM 'sent'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(not_final, 0);
}

/// Leaves a notification's WhatsApp channel `sending` since `ago_secs`, as a run that
/// died mid-send leaves it.
async fn left_sending(pool: &PgPool, id: Uuid, ago_secs: i64) {
    sqlx::query(
        r#"UPDATE notifications SET channel_status = jsonb_build_object('whatsapp', jsonb_build_object(
               'status', 'sending', 'attempts', 1,
               'since', to_char((now() - make_interval(secs => $2)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
            WHERE id = $1"#,
    )
    .bind(id)
    .bind(ago_secs as f64)
    .execute(pool)
    .await
    .unwrap();
}

async fn receipt(pool: &PgPool, id: Uuid, message_id: &str, status: &str) {
    sqlx::query(
        "INSERT INTO whatsapp_message_statuses (message_id, status, callback_data, error, occurred_at)
         VALUES ($1, $2, $3, CASE WHEN $2 = 'failed' THEN '131026 Message undeliverable' END, now())",
    )
    .bind(message_id)
    .bind(status)
    .bind(format!("notification-{id}-whatsapp"))
    .execute(pool)
    .await
    .unwrap();
}

/// A message a dead run left `sending` is settled by its delivery receipt: sent (never
/// resent), undeliverable (failed with Meta's reason), or, with no receipt once the wait
/// is over, never accepted (sent now, once); within the wait it is left alone.
#[sqlx::test(migrations = "./migrations")]
async fn a_whatsapp_message_left_sending_is_settled_by_its_receipt(pool: PgPool) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let u = user(&pool, None, Some(&format!("+5989100000{i}"))).await;
        let id = notification(&pool, u, "order_confirmed", "{whatsapp}", confirmed()).await;
        ids.push(id);
    }
    let [delivered, undeliverable, never_sent, recent, exhausted] = ids[..] else {
        unreachable!()
    };
    for id in [delivered, undeliverable, never_sent, exhausted] {
        left_sending(&pool, id, 600).await;
    }
    // Still inside the send's own 15 s deadline: its run may be sending right now.
    left_sending(&pool, recent, 5).await;
    sqlx::query(
        "UPDATE notifications SET channel_status = jsonb_set(channel_status, '{whatsapp,attempts}', '5')
          WHERE id = $1",
    )
    .bind(exhausted)
    .execute(&pool)
    .await
    .unwrap();
    receipt(&pool, delivered, "wamid.earlier", "sent").await;
    receipt(&pool, delivered, "wamid.earlier", "delivered").await;
    receipt(&pool, undeliverable, "wamid.lost", "failed").await;

    let sb = stand_ins().await;
    let with_receipts = settings(&sb, &[("WHATSAPP_RECEIPTS_WAIT_SECONDS", "300")]);
    run(&pool, with_receipts.clone()).await;

    let (status, channels) = state(&pool, delivered).await;
    assert_eq!(status, "sent");
    assert_eq!(channels["whatsapp"]["providerId"], "wamid.earlier");
    assert_eq!(channels["whatsapp"]["confirmedBy"], "receipt");
    let (status, channels) = state(&pool, undeliverable).await;
    assert_eq!(status, "failed");
    assert_eq!(
        channels["whatsapp"]["error"],
        "WhatsApp reported the message undeliverable: 131026 Message undeliverable"
    );
    let (status, channels) = state(&pool, never_sent).await;
    assert_eq!(status, "sent");
    assert_eq!(channels["whatsapp"]["attempts"], 2);
    let (status, channels) = state(&pool, recent).await;
    assert_eq!(status, "pending", "still within the wait: {channels}");
    assert_eq!(channels["whatsapp"]["status"], "sending");
    let next: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT next_attempt_at FROM notifications WHERE id = $1")
            .bind(recent)
            .fetch_one(&pool)
            .await
            .unwrap();
    // Marked 5 s ago: the send's deadline (15 s) and then the wait (300 s) from the mark.
    let wait_left = next - chrono::Utc::now();
    assert!(
        wait_left > chrono::TimeDelta::seconds(300) && wait_left <= chrono::TimeDelta::seconds(310),
        "checked again when its wait ends, not before: {wait_left}"
    );
    let (status, channels) = state(&pool, exhausted).await;
    assert_eq!(status, "failed", "the attempt limit holds for resends too");
    assert_eq!(
        channels["whatsapp"]["error"],
        "gave up after 5 attempts, none confirmed by a receipt"
    );
    let sent_to: Vec<String> = sb
        .whatsapps()
        .iter()
        .map(|m| m.body["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        sent_to,
        ["+59891000002"],
        "only the message never accepted is sent"
    );

    // Without receipts nothing can be known: the message is failed, never resent.
    left_sending(&pool, recent, 600).await;
    sqlx::query("UPDATE notifications SET next_attempt_at = NULL WHERE id = $1")
        .bind(recent)
        .execute(&pool)
        .await
        .unwrap();
    run(&pool, settings(&sb, &[])).await;
    let (status, channels) = state(&pool, recent).await;
    assert_eq!(status, "failed");
    assert!(
        channels["whatsapp"]["error"]
            .as_str()
            .unwrap()
            .starts_with("a run stopped while sending this"),
        "{channels}"
    );
    assert_eq!(sb.whatsapp_requests(), 1);
}

/// The whole receipt loop over HTTP: the stand-in sends Meta's signed status webhooks,
/// the marketplace's route (its stand-in) records them, and they name the notification.
#[sqlx::test(migrations = "./migrations")]
async fn whatsapp_receipts_arrive_signed_and_are_recorded_for_their_notification(pool: PgPool) {
    let sb = stand_ins().await;
    let url = run_job::sandbox::marketplace::serve_whatsapp_webhook(pool.clone(), "app-secret")
        .await
        .unwrap();
    sb.send_whatsapp_statuses(&url, "app-secret");
    sb.script_whatsapp(ProviderScript {
        undeliverable_next: 1,
        ..ProviderScript::default()
    });
    let a = user(&pool, None, Some("+59891000010")).await;
    let b = user(&pool, None, Some("+59891000011")).await;
    let first = notification(&pool, a, "order_confirmed", "{whatsapp}", confirmed()).await;
    run(&pool, settings(&sb, &[])).await;
    let second = notification(&pool, b, "order_confirmed", "{whatsapp}", confirmed()).await;
    run(&pool, settings(&sb, &[])).await;

    let mut recorded = Vec::new();
    for _ in 0..50 {
        recorded = sqlx::query_as::<_, (String, String, Option<String>, Option<String>)>(
            "SELECT message_id, status, callback_data, error FROM whatsapp_message_statuses
              ORDER BY message_id, status",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if recorded.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        recorded,
        [
            (
                "wamid.1".to_string(),
                "failed".to_string(),
                Some(format!("notification-{first}-whatsapp")),
                Some("131026 Message undeliverable".to_string())
            ),
            (
                "wamid.2".to_string(),
                "delivered".to_string(),
                Some(format!("notification-{second}-whatsapp")),
                None
            ),
            (
                "wamid.2".to_string(),
                "sent".to_string(),
                Some(format!("notification-{second}-whatsapp")),
                None
            ),
        ]
    );
    // A webhook not signed with the app secret is refused and records nothing.
    let forged = reqwest::Client::new()
        .post(&url)
        .header("X-Hub-Signature-256", "sha256=00")
        .body(r#"{"entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.x","status":"sent","timestamp":"1"}]}}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM whatsapp_message_statuses")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 3);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_originals_skip_rules_hold_at_delivery(pool: PgPool) {
    let ended = crate::fixtures::world(&pool, -2).await;
    let (_, t) = ended.listing(ended.seller_a, &["100"]).await;
    let past_order = ended
        .order(NewOrder {
            tickets: &t,
            total: "100",
            created_minutes_ago: 20,
            expires_in_minutes: -5,
        })
        .await;
    let upcoming = crate::fixtures::world(&pool, 48).await;
    let (_, t2) = upcoming.listing(upcoming.seller_a, &["100", "100"]).await;
    let old_order = upcoming
        .order(NewOrder {
            tickets: &t2[..1],
            total: "100",
            created_minutes_ago: 90,
            expires_in_minutes: -60,
        })
        .await;
    let fresh_order = upcoming
        .order(NewOrder {
            tickets: &t2[1..],
            total: "100",
            created_minutes_ago: 20,
            expires_in_minutes: -5,
        })
        .await;
    let meta = |kind: &str, order: Uuid| json!({"type": kind, "orderId": order, "eventName": "E"});
    let over = notification(
        &pool,
        ended.buyer,
        "payment_failed",
        "{in_app,email}",
        meta("payment_failed", past_order),
    )
    .await;
    let late = notification(
        &pool,
        upcoming.buyer,
        "order_expired",
        "{in_app,email}",
        meta("order_expired", old_order),
    )
    .await;
    let timely = notification(
        &pool,
        upcoming.buyer,
        "order_expired",
        "{in_app,email}",
        meta("order_expired", fresh_order),
    )
    .await;

    let sb = stand_ins().await;
    run(&pool, settings(&sb, &[])).await;
    let (status, channels) = state(&pool, over).await;
    assert_eq!(status, "failed");
    assert_eq!(channels["in_app"]["error"], "skipped: the event has ended");
    let (status, channels) = state(&pool, late).await;
    assert_eq!(
        (status.as_str(), &channels["in_app"]["status"]),
        ("sent", &json!("sent"))
    );
    assert_eq!(
        channels["email"]["error"],
        "skipped: the order is more than an hour old"
    );
    assert_eq!(state(&pool, timely).await.1["email"]["status"], "sent");
    assert_eq!(
        sb.emails().len(),
        1,
        "only the timely order_expired was emailed"
    );
}

pub(crate) fn vapid_keys() -> (String, String) {
    use aws_lc_rs::encoding::AsBigEndian;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let private = pair.private_key().as_be_bytes().unwrap();
    (
        b64.encode(private.as_ref()),
        b64.encode(pair.public_key().as_ref()),
    )
}

/// Subscriptions are rows users fill: an endpoint on a private address, on the
/// instance metadata address, on a host that is no push service, or behind a user name,
/// is never contacted, and the in-app channel records why; only the newest five of a
/// user's subscriptions are pushed to.
#[sqlx::test(migrations = "./migrations")]
async fn push_endpoints_outside_the_push_services_are_never_contacted(pool: PgPool) {
    let u = user(&pool, Some("push@example.com"), None).await;
    let sb = stand_ins().await;
    let internal = run_job::sandbox::site::Site::start(None).await.unwrap();
    let port = internal.base_url.rsplit(':').next().unwrap().to_string();
    let subscribe = |(endpoint, p256dh, auth): (String, String, String), age_minutes: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query("INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, now() - make_interval(mins => $5::int))")
                .bind(u)
                .bind(&endpoint)
                .bind(p256dh)
                .bind(auth)
                .bind(age_minutes as i32)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // Real keys (the stand-in's) at hostile endpoints.
    let at = |endpoint: String| {
        let (_, p256dh, auth) = sb.push_subscription();
        (endpoint, p256dh, auth)
    };
    subscribe(sb.push_subscription(), 0).await;
    subscribe(at(internal.url("/push/a")), 1).await;
    subscribe(at(format!("https://127.0.0.1:{port}/push/b")), 2).await;
    subscribe(at("https://169.254.169.254/latest/meta-data/".into()), 3).await;
    subscribe(
        at(format!(
            "https://fcm.googleapis.com@127.0.0.1:{port}/push/c"
        )),
        4,
    )
    .await;
    // The sixth newest is a real stand-in subscription: not pushed to at all.
    subscribe(sb.push_subscription(), 60).await;

    let id = notification(&pool, u, "order_confirmed", "{in_app}", confirmed()).await;
    let (private, public) = vapid_keys();
    let s = settings(
        &sb,
        &[
            ("VAPID_PRIVATE_KEY", &private),
            ("VAPID_PUBLIC_KEY", &public),
        ],
    );
    run(&pool, s).await;

    assert_eq!(state(&pool, id).await.0, "sent");
    assert_eq!(
        internal.total_hits(),
        0,
        "an internal address was contacted"
    );
    assert_eq!(
        sb.pushes().len(),
        1,
        "only the legitimate newest subscription"
    );
    let note: String = sqlx::query_scalar(
        "SELECT channel_status->'in_app'->>'push' FROM notifications WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    for reason in [
        "web push: 4 of 5 not delivered",
        "scheme `http` is not https",
        // Address literals never pass the list of push-service hosts.
        "host `127.0.0.1` is not one this may reach",
        "host `169.254.169.254` is not one this may reach",
        "the URL carries a user name or password",
    ] {
        assert!(note.contains(reason), "{reason} not in: {note}");
    }
    assert!(
        !note.contains("/push/"),
        "the note repeats an endpoint's path: {note}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn in_app_notifications_are_pushed_encrypted_and_gone_subscriptions_deleted(pool: PgPool) {
    let u = user(&pool, Some("push@example.com"), None).await;
    let sb = stand_ins().await;
    let mut endpoints = Vec::new();
    for _ in 0..2 {
        let (endpoint, p256dh, auth) = sb.push_subscription();
        sqlx::query("INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4)")
            .bind(u)
            .bind(&endpoint)
            .bind(p256dh)
            .bind(auth)
            .execute(&pool)
            .await
            .unwrap();
        endpoints.push(endpoint);
    }
    sb.unsubscribe(&endpoints[1]);
    let id = notification(&pool, u, "order_confirmed", "{in_app,email}", confirmed()).await;
    let (private, public) = vapid_keys();
    let s = settings(
        &sb,
        &[
            ("VAPID_PRIVATE_KEY", &private),
            ("VAPID_PUBLIC_KEY", &public),
        ],
    );
    run(&pool, s).await;

    assert_eq!(state(&pool, id).await.0, "sent");
    assert_eq!(
        sb.pushes_rejected(),
        0,
        "VAPID signature and encryption accepted"
    );
    let pushes = sb.pushes();
    assert_eq!(pushes.len(), 1, "one live browser");
    assert_eq!(
        pushes[0]["title"],
        "¡Tu compra para No Te Va Gustar está confirmada!"
    );
    assert_eq!(pushes[0]["tag"], "order_confirmed");
    assert_eq!(pushes[0]["url"], "https://app.test/o/1");
    assert_eq!(
        sb.push_topics(),
        [Some(id.simple().to_string())],
        "a resent push replaces the copy a push service still holds"
    );
    let left: Vec<String> = sqlx::query_scalar("SELECT endpoint FROM push_subscriptions")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        left,
        [endpoints[0].clone()],
        "the gone subscription was deleted"
    );

    // Mismatched or half-given VAPID keys are a configuration error naming the variable.
    let only_private = private.clone();
    let e = Settings::from_env(&move |k: &str| {
        (k == "VAPID_PRIVATE_KEY").then(|| only_private.clone())
    })
    .err()
    .unwrap();
    assert_eq!(e.variable, "VAPID_PUBLIC_KEY");
    let (_, other_public) = vapid_keys();
    let e = Settings::from_env(&move |k: &str| match k {
        "VAPID_PRIVATE_KEY" => Some(private.clone()),
        "VAPID_PUBLIC_KEY" => Some(other_public.clone()),
        _ => None,
    })
    .err()
    .unwrap();
    assert!(e.to_string().contains("not a P-256 key pair"), "{e}");
}

#[sqlx::test(migrations = "./migrations")]
async fn invoice_emails_carry_their_pdf_and_mark_the_invoice_emailed(pool: PgPool) {
    let w = crate::fixtures::world(&pool, 48).await;
    let u = w.buyer;
    let stranger = user(&pool, Some("stranger@example.com"), None).await;
    let dir = std::env::temp_dir().join(format!("run-job-invoices-{}", Uuid::new_v4()));
    let (o1, o2) = (
        w.order(NewOrder {
            tickets: &[],
            total: "100.00",
            created_minutes_ago: 0,
            expires_in_minutes: 30,
        })
        .await,
        w.order(NewOrder {
            tickets: &[],
            total: "100.00",
            created_minutes_ago: 0,
            expires_in_minutes: 30,
        })
        .await,
    );
    for (order, file) in [
        (o1, "buyer-invoice.pdf".to_string()),
        (o1, format!("seller-{}-invoice.pdf", w.seller_a)),
        (o2, "other-buyer-invoice.pdf".to_string()),
    ] {
        let folder = dir.join(format!("private/invoices/{order}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(file), b"%PDF-1.7 invoice").unwrap();
    }
    std::fs::write(dir.join("private/secret.pdf"), b"%PDF-1.7 secret").unwrap();
    let invoice: Uuid = sqlx::query_scalar(
        "INSERT INTO invoices (party, external_id, base_amount, vat_amount, total_amount, currency)
         VALUES ('buyer', 'revendiste:o1:buyer', 120, 26.4, 146.4, 'UYU') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let metadata = |order: Uuid, path: &str| {
        json!({"type": "order_invoice", "orderId": order, "party": "buyer", "eventName": "E",
               "currency": "UYU", "totalAmount": "146.40",
               "attachmentRefs": [{"type": "storage", "storagePath": path, "filename": "factura-A-1.pdf"}],
               "postSendActions": [{"type": "markInvoiceEmailSent", "invoiceId": invoice}]})
    };
    let with_pdf = notification(
        &pool,
        u,
        "order_invoice",
        "{email}",
        metadata(o1, &format!("private/invoices/{o1}/buyer-invoice.pdf")),
    )
    .await;
    let not_yet = notification(
        &pool,
        u,
        "order_invoice",
        "{email}",
        metadata(o2, &format!("private/invoices/{o2}/buyer-invoice.pdf")),
    )
    .await;
    // Rows that name a key outside their own order's invoices, or attach to another kind.
    let mut refused = Vec::new();
    for (kind, order, path) in [
        (
            "order_invoice",
            o1,
            format!("private/invoices/{o2}/other-buyer-invoice.pdf"),
        ),
        ("order_invoice", o1, "private/secret.pdf".to_string()),
        (
            "order_invoice",
            o1,
            format!("private/invoices/{o1}/../../secret.pdf"),
        ),
    ] {
        refused.push(notification(&pool, u, kind, "{email}", metadata(order, &path)).await);
    }
    // The order's own invoices, but someone else's: the buyer's to a stranger, a seller's
    // to the buyer.
    let buyers_pdf = format!("private/invoices/{o1}/buyer-invoice.pdf");
    let sellers_pdf = format!("private/invoices/{o1}/seller-{}-invoice.pdf", w.seller_a);
    let mut not_theirs = Vec::new();
    for (to, path) in [(stranger, &buyers_pdf), (u, &sellers_pdf)] {
        not_theirs
            .push(notification(&pool, to, "order_invoice", "{email}", metadata(o1, path)).await);
    }
    let mut confirmation = confirmed();
    confirmation["attachmentRefs"] = json!([{"type": "storage", "storagePath": format!("private/invoices/{o1}/buyer-invoice.pdf")}]);
    refused.push(notification(&pool, u, "order_confirmed", "{email}", confirmation).await);
    let sb = stand_ins().await;
    let root = dir.to_string_lossy().to_string();
    run(&pool, settings(&sb, &[("STORAGE_LOCAL_PATH", &root)])).await;

    assert_eq!(state(&pool, with_pdf).await.0, "sent");
    let emails = sb.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(
        emails[0].body["attachments"],
        json!([{"filename": "factura-A-1.pdf", "content": "JVBERi0xLjcgaW52b2ljZQ=="}])
    );
    let emailed: bool =
        sqlx::query_scalar("SELECT email_sent_at IS NOT NULL FROM invoices WHERE id = $1")
            .bind(invoice)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(emailed, "the post-send action ran");
    let (status, channels) = state(&pool, not_yet).await;
    assert_eq!(
        (status.as_str(), &channels["email"]["status"]),
        ("pending", &json!("retry")),
        "its PDF may still come"
    );
    assert_eq!(
        channels["email"]["error"],
        format!("attachment private/invoices/{o2}/buyer-invoice.pdf: not found")
    );
    for id in refused {
        let (status, channels) = state(&pool, id).await;
        assert_eq!(status, "failed", "{channels}");
        let error = channels["email"]["error"].as_str().unwrap();
        assert!(
            error.starts_with("an attachment is not a PDF under private/invoices/")
                || error == "attachments are sent with order_invoice notifications only",
            "{error}"
        );
    }
    for id in not_theirs {
        let (status, channels) = state(&pool, id).await;
        assert_eq!(status, "failed", "{channels}");
        let error = channels["email"]["error"].as_str().unwrap();
        assert!(
            error.ends_with("-invoice.pdf is not the recipient's own invoice"),
            "{error}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[sqlx::test(migrations = "./migrations")]
async fn a_cancelled_run_releases_what_it_has_not_started(pool: PgPool) {
    let sb = stand_ins().await;
    sb.script_email(ProviderScript {
        latency_ms: 400,
        ..ProviderScript::default()
    });
    for i in 0..10 {
        let u = user(&pool, Some(&format!("c{i}@example.com")), None).await;
        notification(&pool, u, "order_confirmed", "{email}", confirmed()).await;
    }
    let job = Notifications::new(
        pool.clone(),
        settings(&sb, &[("NOTIFICATIONS_CONCURRENCY", "1")]),
        Clock::system(),
    )
    .unwrap();
    let cancel = CancellationToken::new();
    let cx = crate::helpers::context(&pool, cancel.clone());
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let s = job
        .run_once(&cx)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    stopper.await.unwrap();
    assert_eq!(
        s.processed, 1,
        "the send in flight finished; nothing new started"
    );
    let (pending, leased): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE lease_until IS NOT NULL) FROM notifications",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (pending, leased),
        (9, 0),
        "the rest released for the next run at once"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_run_cancelled_mid_batch_writes_every_finished_outcome_before_it_returns(pool: PgPool) {
    // Outcomes are written in batches; a cancelled run must not leave a sent email
    // recorded nowhere (its row would go out again after the lease).
    let sb = stand_ins().await;
    sb.script_email(ProviderScript {
        latency_ms: 300,
        ..ProviderScript::default()
    });
    for i in 0..40 {
        let u = user(&pool, Some(&format!("m{i}@example.com")), None).await;
        notification(&pool, u, "order_confirmed", "{in_app,email}", confirmed()).await;
    }
    let job = Notifications::new(
        pool.clone(),
        settings(&sb, &[("NOTIFICATIONS_CONCURRENCY", "8")]),
        Clock::system(),
    )
    .unwrap();
    let cancel = CancellationToken::new();
    let cx = crate::helpers::context(&pool, cancel.clone());
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(450)).await;
        cancel.cancel();
    });
    let s = job
        .run_once(&cx)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    stopper.await.unwrap();
    // The first 8 finished before the cancel, the 8 in flight finished after it.
    assert_eq!(s.processed, 16, "{s:?}");
    assert_eq!(sb.emails().len(), 16);
    let (sent, pending, leased): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'sent' AND channel_status->'email'->>'status' = 'sent'),
                count(*) FILTER (WHERE status = 'pending' AND channel_status->'email' IS NULL),
                count(*) FILTER (WHERE lease_until IS NOT NULL)
           FROM notifications",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (sent, pending, leased),
        (16, 24, 0),
        "every email sent is recorded sent, the rest released untouched"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_provider_answering_garbage_is_retried_later_with_the_reason(pool: PgPool) {
    let u = user(&pool, Some("garbage@example.com"), None).await;
    let id = notification(&pool, u, "order_confirmed", "{email}", confirmed()).await;
    // Resend answering 200 with HTML: not an acceptance we can trust.
    let broken = stand_ins().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/emails",
            axum::routing::post(|| async { "<html>ok</html>" }),
        );
        axum::serve(listener, app).await.ok();
    });
    let s = settings(&broken, &[("RESEND_BASE_URL", &base)]);
    run(&pool, s).await;
    let (status, channels) = state(&pool, id).await;
    assert_eq!(
        (status.as_str(), &channels["email"]["status"]),
        ("pending", &json!("retry"))
    );
    assert!(
        channels["email"]["error"]
            .as_str()
            .unwrap()
            .contains("not JSON"),
        "{channels}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_batch_of_bad_items_is_closed_once_not_retried_forever(pool: PgPool) {
    let u = user(&pool, Some("bad-batch@example.com"), None).await;
    let b = batch(&pool, u, "document_uploaded", "document_uploaded:bad", -1).await;
    item(
        &pool,
        b,
        json!({"type": "document_uploaded", "eventName": "no order id"}),
    )
    .await;
    let sb = stand_ins().await;
    let first = run(&pool, settings(&sb, &[])).await;
    assert_eq!(first.details["batches_failed"], 1);
    let second = run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        (
            second.details["batches_failed"].as_u64(),
            second.details["batch_items_recovered"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_batches")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(batches, 1, "no new batch for the dropped items");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_backlog_too_old_to_matter_is_failed_not_sent(pool: PgPool) {
    let u = user(&pool, Some("old@example.com"), None).await;
    let id = notification(
        &pool,
        u,
        "auth_verification_code",
        "{email}",
        json!({"type": "auth_verification_code", "otpCode": "123456"}),
    )
    .await;
    sqlx::query("UPDATE notifications SET created_at = now() - interval '72 hours' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let sb = stand_ins().await;
    run(&pool, settings(&sb, &[])).await;
    let (status, channels) = state(&pool, id).await;
    assert_eq!(status, "failed");
    assert_eq!(
        channels["email"]["error"],
        "skipped: created 72 hours ago, too late to send"
    );
    assert_eq!(sb.email_requests(), 0, "a three-day-old code is not sent");
}

#[sqlx::test(migrations = "./migrations")]
async fn each_channel_keeps_its_own_retry_time(pool: PgPool) {
    let u = user(&pool, Some("wait@example.com"), Some("+59899111222")).await;
    let id = notification(&pool, u, "order_confirmed", "{email,whatsapp}", confirmed()).await;
    let sb = stand_ins().await;
    sb.script_email(ProviderScript {
        rate_limit_next: 1,
        retry_after_secs: 600,
        ..ProviderScript::default()
    });
    sb.script_whatsapp(ProviderScript {
        fail_next: 1,
        ..ProviderScript::default()
    });
    let clock = Clock::system();
    run_at(&pool, settings(&sb, &[]), &clock).await;
    let (_, channels) = state(&pool, id).await;
    assert_eq!(
        (
            channels["email"]["status"].as_str(),
            channels["whatsapp"]["status"].as_str()
        ),
        (Some("retry"), Some("retry"))
    );
    assert_eq!(
        sb.whatsapp_requests(),
        1,
        "an error answer is not retried in-process: nothing was accepted"
    );

    // WhatsApp's wait (a minute, +20 %) is over; the email's (Retry-After: 600) is not.
    clock.advance(TimeDelta::seconds(80));
    run_at(&pool, settings(&sb, &[]), &clock).await;
    let (status, channels) = state(&pool, id).await;
    assert_eq!(channels["whatsapp"]["status"], "sent");
    assert_eq!(
        channels["email"]["status"], "retry",
        "not asked again before its Retry-After"
    );
    assert_eq!(sb.email_requests(), 1);
    assert_eq!(status, "pending");
}

#[test]
fn a_whatsapp_token_without_a_phone_number_id_is_a_configuration_error() {
    let e =
        Settings::from_env(&|k: &str| (k == "WHATSAPP_ACCESS_TOKEN").then(|| "token".to_string()))
            .err()
            .unwrap();
    assert_eq!(
        e.to_string(),
        "WHATSAPP_PHONE_NUMBER_ID: is required when WHATSAPP_ACCESS_TOKEN is set"
    );
    assert!(
        Settings::from_env(&|_: &str| None).is_ok(),
        "without credentials every channel has a console default"
    );
}

/// A channel state this code does not know (written by another version, or by hand)
/// is not guessed at: the row is failed as it is, nothing is sent, and the other rows
/// of the batch are delivered.
#[sqlx::test(migrations = "./migrations")]
async fn an_unknown_channel_state_fails_its_row_untouched_and_sends_nothing(pool: PgPool) {
    let u = user(&pool, Some("odd@example.com"), None).await;
    let odd = notification(&pool, u, "order_confirmed", "{email}", confirmed()).await;
    let written = json!({"email": {"status": "queued", "attempts": 1}});
    sqlx::query("UPDATE notifications SET channel_status = $2 WHERE id = $1")
        .bind(odd)
        .bind(&written)
        .execute(&pool)
        .await
        .unwrap();
    let fine = notification(&pool, u, "order_confirmed", "{email}", confirmed()).await;
    let sb = stand_ins().await;
    let s = run(&pool, settings(&sb, &[])).await;
    let (status, channels) = state(&pool, odd).await;
    assert_eq!(status, "failed");
    assert_eq!(channels, written, "left as it was");
    assert_eq!(state(&pool, fine).await.0, "sent");
    assert_eq!(sb.email_requests(), 1, "only the readable row was sent");
    assert_eq!((s.succeeded, s.failed), (1, 1));
}

/// `sms` is in the schema but has no provider (nor had the original): that channel
/// fails as not supported and the others still go out.
#[sqlx::test(migrations = "./migrations")]
async fn an_sms_channel_fails_alone_and_the_others_are_delivered(pool: PgPool) {
    let u = user(&pool, Some("sms@example.com"), None).await;
    let id = notification(&pool, u, "order_confirmed", "{email,sms}", confirmed()).await;
    let sb = stand_ins().await;
    run(&pool, settings(&sb, &[])).await;
    let (status, channels) = state(&pool, id).await;
    assert_eq!(status, "sent");
    assert_eq!(channels["email"]["status"], "sent");
    assert_eq!(channels["sms"]["status"], "failed");
    assert_eq!(channels["sms"]["error"], "channel sms is not supported");
}

/// `run-job requeue notifications`: a failed notification goes back to `pending` with
/// its failed channel cleared and its delivered channel kept, so the next run sends the
/// email and not the in-app row again; `--dry-run` changed nothing before that.
#[sqlx::test(migrations = "./migrations")]
async fn a_requeued_notification_keeps_its_delivered_channels(pool: PgPool) {
    let u = user(&pool, Some("ana@example.com"), None).await;
    let id = notification(
        &pool,
        u,
        "order_confirmed",
        "{in_app,email,whatsapp}",
        confirmed(),
    )
    .await;
    sqlx::query(
        "UPDATE notifications SET status = 'failed', retry_count = 3, channel_status =
           '{\"in_app\": {\"status\": \"sent\"}, \"email\": {\"status\": \"failed\", \"error\": \"resend said 422\"},
             \"whatsapp\": {\"status\": \"failed\", \"error\": \"no receipt; not sent again to avoid a duplicate\"}}'
          WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let requeue = |dry: bool| {
        let mut cmd = crate::helpers::run_job_on(&pool);
        cmd.args(["requeue", "notifications"]);
        cmd.arg(if dry { "--dry-run" } else { "--all" });
        cmd
    };
    let dry = crate::helpers::output(requeue(true)).await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(
        dry.stdout.contains("email: resend said 422"),
        "{}",
        dry.stdout
    );
    let status: String = sqlx::query_scalar("SELECT status::text FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "failed", "--dry-run changed nothing");

    let done = crate::helpers::output(requeue(false)).await;
    assert!(done.stdout.contains("Requeued 1 of 1"), "{}", done.stdout);
    let (status, channels, retries): (String, Value, i32) = sqlx::query_as(
        "SELECT status::text, channel_status, retry_count FROM notifications WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), retries), ("pending", 0));
    assert_eq!(
        channels,
        json!({
            "in_app": {"status": "sent"},
            "whatsapp": {"status": "failed", "error": "no receipt; not sent again to avoid a duplicate"},
        }),
        "email tried again; WhatsApp, which may have arrived, never sent twice"
    );
}
