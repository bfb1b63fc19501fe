//! check-payout-hold-periods on a real database: the hold, reports that keep money held,
//! retention with its support case opened once, two runs at once, and a run through the
//! binary. The job's clock is frozen relative to the event's end.

use chrono::{DateTime, TimeDelta, Utc};
use run_job::clock::Clock;
use run_job::jobs::Summary;
use run_job::jobs::check_payout_hold_periods::{PayoutHolds, Settings};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::fixtures::*;
use crate::helpers::*;

/// A ticket of `seller` sold on a confirmed order: (ticket, reservation, order, earning).
async fn sold(w: &World, seller: Uuid, amount: &str, uploaded: bool) -> (Uuid, Uuid, Uuid, Uuid) {
    let (_, tickets) = w.listing(seller, &["1000"]).await;
    let ticket = tickets[0];
    let order = w
        .order(NewOrder {
            tickets: &[ticket],
            total: "1000",
            created_minutes_ago: 60,
            expires_in_minutes: 30,
        })
        .await;
    w.set_order_status(order, "confirmed").await;
    let reservation: Uuid =
        sqlx::query_scalar("SELECT id FROM order_ticket_reservations WHERE listing_ticket_id = $1")
            .bind(ticket)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    let earning: Uuid = sqlx::query_scalar(
        "INSERT INTO seller_earnings (seller_user_id, listing_ticket_id, seller_amount, currency)
         VALUES ($1, $2, $3, 'UYU') RETURNING id",
    )
    .bind(seller)
    .bind(ticket)
    .bind(dec(amount))
    .fetch_one(&w.pool)
    .await
    .unwrap();
    if uploaded {
        sqlx::query("INSERT INTO ticket_documents (ticket_id, storage_path) VALUES ($1, 'x.pdf')")
            .bind(ticket)
            .execute(&w.pool)
            .await
            .unwrap();
    }
    (ticket, reservation, order, earning)
}

async fn event_end(w: &World) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT event_end_date FROM events WHERE id = $1")
        .bind(w.event)
        .fetch_one(&w.pool)
        .await
        .unwrap()
}

/// One run with the clock `hours` after the event's end.
async fn run_after(w: &World, hours: i64) -> Summary {
    let at = event_end(w).await + TimeDelta::hours(hours);
    let settings = Settings::from_env(&|_: &str| None).unwrap();
    let job = PayoutHolds::new(w.pool.clone(), settings, Clock::frozen(at));
    let cx = crate::helpers::context(&w.pool, CancellationToken::new());
    job.run_once(&cx)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error))
}

async fn status(pool: &PgPool, earning: Uuid) -> String {
    text(
        pool,
        "SELECT status::text FROM seller_earnings WHERE id = $1",
        earning,
    )
    .await
}

async fn metadata_of(pool: &PgPool, kind: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT metadata FROM notifications WHERE type = $1::notification_type ORDER BY created_at, id",
    )
    .bind(kind)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn earnings_are_released_after_the_hold_and_only_without_an_open_report(pool: PgPool) {
    let w = world(&pool, -1).await;
    let (_, _, _, free) = sold(&w, w.seller_a, "926.80", true).await;
    let (_, _, disputed_order, disputed) = sold(&w, w.seller_a, "100", true).await;
    let report: Uuid = sqlx::query_scalar(
        "INSERT INTO ticket_reports (case_type, entity_type, entity_id, reported_by_user_id)
         VALUES ('invalid_ticket', 'order', $1, $2) RETURNING id",
    )
    .bind(disputed_order)
    .bind(w.buyer)
    .fetch_one(&pool)
    .await
    .unwrap();

    let s = run_after(&w, 47).await;
    assert_eq!(s.details["released"], 0, "still within the 48 h hold");
    assert_eq!(status(&pool, free).await, "pending");

    let s = run_after(&w, 49).await;
    assert_eq!(s.details["released"], 1);
    assert_eq!(status(&pool, free).await, "available");
    assert_eq!(
        status(&pool, disputed).await,
        "pending",
        "its order has an open report"
    );
    assert_eq!(
        metadata_of(&pool, "seller_earnings_available").await,
        [json!({"type": "seller_earnings_available",
                "lines": [{"currency": "UYU", "amount": "926.80", "earningCount": 1}]})]
    );

    sqlx::query("UPDATE ticket_reports SET status = 'closed', closed_at = now() WHERE id = $1")
        .bind(report)
        .execute(&pool)
        .await
        .unwrap();
    run_after(&w, 50).await;
    assert_eq!(
        status(&pool, disputed).await,
        "available",
        "the report closed"
    );
    assert_eq!(
        metadata_of(&pool, "seller_earnings_available").await.len(),
        2
    );
    assert_notifications_match_golden(&pool, "payout_holds_released").await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_report_on_the_listing_ticket_also_holds_the_money(pool: PgPool) {
    let w = world(&pool, -1).await;
    let (ticket, _, _, earning) = sold(&w, w.seller_a, "100", true).await;
    sqlx::query(
        "INSERT INTO ticket_reports (case_type, entity_type, entity_id) VALUES ('other', 'listing_ticket', $1)",
    )
    .bind(ticket)
    .execute(&pool)
    .await
    .unwrap();
    run_after(&w, 72).await;
    assert_eq!(status(&pool, earning).await, "pending");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_ticket_never_uploaded_is_retained_and_its_case_opened_once(pool: PgPool) {
    let w = world(&pool, -1).await;
    let (_, reservation, _, earning) = sold(&w, w.seller_b, "926.80", false).await;
    let s = run_after(&w, 1).await;
    assert_eq!(
        (
            s.details["retained"].clone(),
            s.details["cases_opened"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(status(&pool, earning).await, "retained");
    assert_eq!(
        text(
            &pool,
            "SELECT retained_reason::text FROM seller_earnings WHERE id = $1",
            earning
        )
        .await,
        "missing_document"
    );
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM order_ticket_reservations WHERE id = $1",
            reservation
        )
        .await,
        "cancelled"
    );
    let (report, case_type, source, reporter): (Uuid, String, String, Uuid) = sqlx::query_as(
        "SELECT id, case_type::text, source::text, reported_by_user_id FROM ticket_reports
          WHERE entity_type = 'order_ticket_reservation' AND entity_id = $1",
    )
    .bind(reservation)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (case_type.as_str(), source.as_str(), reporter),
        ("ticket_not_received", "auto_missing_document", w.buyer)
    );
    let (amount, currency, refund): (String, String, String) = sqlx::query_as(
        "SELECT refund_amount::text, currency::text, refund_status::text FROM ticket_report_refunds WHERE ticket_report_id = $1",
    )
    .bind(report)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (amount.as_str(), currency.as_str(), refund.as_str()),
        ("1000", "UYU", "pending")
    );
    assert_eq!(
        metadata_of(&pool, "buyer_ticket_cancelled").await,
        [
            json!({"type": "buyer_ticket_cancelled", "eventName": "Cuarteto de Nos",
                "ticketCount": 1, "reason": "seller_failed_to_upload"})
        ]
    );
    assert_eq!(
        metadata_of(&pool, "ticket_report_created").await[0]["ticketReportId"],
        json!(report)
    );
    let (key, kind, item): (String, String, Value) = sqlx::query_as(
        "SELECT b.debounce_key, b.notification_type::text, i.metadata
           FROM notification_batches b JOIN notification_batch_items i ON i.batch_id = b.id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        key,
        format!(
            "seller_earnings_retained:{}:Cuarteto de Nos:missing_document",
            w.seller_b
        )
    );
    assert_eq!(
        (kind.as_str(), &item["ticketCount"]),
        ("seller_earnings_retained", &json!(1))
    );

    // Later runs change nothing more, and a retained earning is never released.
    run_after(&w, 2).await;
    run_after(&w, 60).await;
    assert_eq!(status(&pool, earning).await, "retained");
    assert_eq!(count(&pool, "SELECT count(*) FROM ticket_reports").await, 1);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM ticket_report_refunds").await,
        1
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM notifications").await, 2);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM notification_batch_items").await,
        1
    );
    assert_notifications_match_golden(&pool, "payout_holds_retained").await;
}

#[sqlx::test(migrations = "./migrations")]
async fn two_runs_at_once_change_nothing_twice(pool: PgPool) {
    let w = world(&pool, -1).await;
    for i in 0..30 {
        let seller = if i % 2 == 0 { w.seller_a } else { w.seller_b };
        sold(&w, seller, "10.05", i >= 10).await;
    }
    let (a, b) = tokio::join!(run_after(&w, 49), run_after(&w, 49));
    let sum = |k: &str| a.details[k].as_u64().unwrap() + b.details[k].as_u64().unwrap();
    assert_eq!(
        (sum("retained"), sum("cases_opened"), sum("released")),
        (10, 10, 20),
        "{a:?} {b:?}"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM seller_earnings WHERE status = 'retained'"
        )
        .await,
        10
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM seller_earnings WHERE status = 'available'"
        )
        .await,
        20
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM ticket_reports").await,
        10
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM ticket_report_refunds").await,
        10
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM notifications WHERE type = 'buyer_ticket_cancelled'"
        )
        .await,
        10
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM notification_batch_items").await,
        10
    );
    // The two sellers' retentions share one open batch each, not one per run.
    assert_eq!(
        count(&pool, "SELECT count(*) FROM notification_batches").await,
        2
    );
    let released: u64 = metadata_of(&pool, "seller_earnings_available")
        .await
        .iter()
        .flat_map(|m| m["lines"].as_array().unwrap().clone())
        .map(|l| l["earningCount"].as_u64().unwrap())
        .sum();
    assert_eq!(released, 20, "each release told once");
}

#[sqlx::test(migrations = "./migrations")]
async fn the_binary_runs_it_and_records_the_run(pool: PgPool) {
    let w = world(&pool, -1).await;
    let (_, _, _, earning) = sold(&w, w.seller_a, "50", true).await;
    let mut cmd = run_job_on(&pool);
    cmd.arg("check-payout-hold-periods").env(
        "RUN_JOB_NOW",
        (event_end(&w).await + TimeDelta::hours(49)).to_rfc3339(),
    );
    let r = output(cmd).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(status(&pool, earning).await, "available");
    let outcome: String = sqlx::query_scalar(
        "SELECT outcome::text FROM job_runs WHERE job = 'check-payout-hold-periods'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(outcome, "succeeded");
}

/// The debounce key carries the event's name, as the original's; a name longer than
/// the key column still retains (the key is cut to fit).
#[sqlx::test(migrations = "./migrations")]
async fn a_very_long_event_name_still_retains(pool: PgPool) {
    let w = world(&pool, -1).await;
    sqlx::query("UPDATE events SET name = repeat('Festival ', 50) WHERE id = $1")
        .bind(w.event)
        .execute(&pool)
        .await
        .unwrap();
    let (_, _, _, earning) = sold(&w, w.seller_a, "10", false).await;
    let s = run_after(&w, 1).await;
    assert_eq!(s.details["failed"], 0);
    assert_eq!(status(&pool, earning).await, "retained");
    let key_length: i32 =
        sqlx::query_scalar("SELECT length(debounce_key) FROM notification_batches")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(key_length, 255);
}

/// The case retention opens is the system's, not the buyer's: the original's
/// `createAutoCase` marks its notification `isAutoCase` (and names the event), and the
/// email tells the buyer we opened it for them.
#[sqlx::test(migrations = "./migrations")]
async fn the_case_retention_opens_tells_the_buyer_it_was_opened_for_them(pool: PgPool) {
    let w = world(&pool, -1).await;
    let (_, reservation, _, _) = sold(&w, w.seller_a, "926.80", false).await;
    run_after(&w, 1).await;
    let created = metadata_of(&pool, "ticket_report_created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["isAutoCase"], json!(true));
    assert_eq!(created[0]["eventName"], json!("Cuarteto de Nos"));
    assert_eq!(created[0]["entityId"], json!(reservation));
    assert_eq!(created[0]["reportedByUserId"], json!(w.buyer));
}

/// A listing ticket the seller or support soft-deleted is out of the sale's life, as in
/// the original's query: retention neither retains its earning nor cancels the buyer's
/// reservation, opens a case or tells anyone.
#[sqlx::test(migrations = "./migrations")]
async fn a_soft_deleted_listing_ticket_is_not_retained(pool: PgPool) {
    let w = world(&pool, -1).await;
    let (ticket, reservation, _, earning) = sold(&w, w.seller_a, "926.80", false).await;
    let (_, _, _, kept) = sold(&w, w.seller_b, "926.80", false).await;
    sqlx::query("UPDATE listing_tickets SET deleted_at = now() WHERE id = $1")
        .bind(ticket)
        .execute(&pool)
        .await
        .unwrap();
    let s = run_after(&w, 1).await;
    assert_eq!(s.details["retained"], 1, "only the live ticket's earning");
    assert_eq!(status(&pool, earning).await, "pending");
    assert_eq!(status(&pool, kept).await, "retained");
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM order_ticket_reservations WHERE id = $1",
            reservation
        )
        .await,
        "active"
    );
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM ticket_reports WHERE entity_id = $1",
            reservation
        )
        .await,
        0
    );
    assert_eq!(
        metadata_of(&pool, "buyer_ticket_cancelled").await.len(),
        1,
        "the buyer hears only of the live ticket"
    );
}
