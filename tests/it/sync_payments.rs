//! sync-payments against a real PostgreSQL and the dLocal Go sandbox over HTTP: every
//! transition of the original's payment adapter (mathfalcon/revendiste
//! apps/backend/src/services/payments/adapters/PaymentWebhookAdapter.ts), earnings
//! rounding, idempotency, the late-PAID
//! anomaly, backoff, bad provider answers, two runs racing, and a deadlock's victim
//! trying again.

use std::time::Duration;

use chrono::TimeDelta;
use run_job::clock::Clock;
use run_job::jobs::Summary;
use run_job::jobs::sync_payments::{Settings, SyncPayments};
use run_job::sandbox::{Behaviour, Sandbox, Scripted};
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::fixtures::*;
use crate::helpers::*;

fn settings(sandbox: &Sandbox, extra: &[(&str, &str)]) -> Settings {
    let base = [
        ("DLOCAL_BASE_URL", sandbox.base_url.as_str()),
        ("DLOCAL_API_KEY", DLOCAL_KEY),
        ("DLOCAL_SECRET_KEY", DLOCAL_SECRET),
        ("APP_BASE_URL", "https://app.test"),
    ];
    Settings::from_env(&env_of(&base, extra)).unwrap()
}

async fn run(pool: &PgPool, settings: Settings) -> Summary {
    run_at(pool, settings, &Clock::system()).await
}

/// A run on `clock`: a test moves it forward instead of waiting for a backoff.
async fn run_at(pool: &PgPool, settings: Settings, clock: &Clock) -> Summary {
    let job = SyncPayments::new(pool.clone(), settings, clock.clone()).unwrap();
    let cx = context(pool, CancellationToken::new());
    job.run_once(&cx)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error))
}

fn detail(s: &Summary, key: &str) -> u64 {
    s.details[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {:?}", s.details))
}

#[sqlx::test(migrations = "./migrations")]
async fn a_paid_payment_confirms_its_order_with_every_write_of_the_original(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (listing_a, a) = w.listing(w.seller_a, &["1000", "12.25"]).await;
    let (listing_b, b) = w.listing(w.seller_b, &["45.83", "45.83"]).await;
    let order = w
        .order(NewOrder {
            tickets: &[a[0], a[1], b[0]],
            total: "1100.00",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    let payment = w
        .payment(NewPayment {
            order,
            provider_id: "D-PAID",
            status: "pending",
            amount: "1100.00",
            created_minutes_ago: 10,
        })
        .await;
    let sb = stand_ins().await;
    sb.set_status("D-PAID", "PAID", "1100.00", "UYU");

    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        (
            detail(&s, "orders_confirmed"),
            detail(&s, "payments_synced"),
            s.failed
        ),
        (1, 1, 0)
    );

    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM orders WHERE id = $1",
            order
        )
        .await,
        "confirmed"
    );
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM orders WHERE id = $1 AND confirmed_at IS NOT NULL",
            order
        )
        .await,
        1
    );
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM payments WHERE id = $1",
            payment
        )
        .await,
        "paid"
    );
    assert_eq!(scalar_i64(&pool, "SELECT count(*) FROM payments WHERE id = $1 AND approved_at IS NOT NULL AND provider_metadata->'fullResponse'->>'id' = 'D-PAID'", payment).await, 1);
    // Tickets sold, reservations retired, the fully sold listing closed.
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM listing_tickets WHERE sold_at IS NOT NULL AND id <> $1",
            Uuid::nil()
        )
        .await,
        3
    );
    assert_eq!(scalar_i64(&pool, "SELECT count(*) FROM order_ticket_reservations WHERE order_id = $1 AND deleted_at IS NULL", order).await, 0);
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM listings WHERE id = $1 AND sold_at IS NOT NULL",
            listing_a
        )
        .await,
        1
    );
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM listings WHERE id = $1 AND sold_at IS NOT NULL",
            listing_b
        )
        .await,
        0
    );
    // Seller earnings: 6 % commission, 22 % VAT on it, each step rounded as the API's
    // packages/shared fees round it, and written as its driver writes the number ("926.8").
    let earnings: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT seller_user_id, seller_amount::text, status::text FROM seller_earnings ORDER BY seller_amount DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        earnings,
        [
            (w.seller_a, "926.8".to_string(), "pending".to_string()),
            (w.seller_b, "42.47".to_string(), "pending".to_string()),
            (w.seller_a, "11.35".to_string(), "pending".to_string()),
        ]
    );
    // Events, notifications and invoice jobs, written with the confirmation.
    let events: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT event_type::text, from_status::text, to_status::text FROM payment_events WHERE payment_id = $1 ORDER BY event_type",
    )
    .bind(payment)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        events,
        [
            (
                "status_change".to_string(),
                Some("pending".to_string()),
                Some("paid".to_string())
            ),
            ("status_synced".to_string(), None, None),
        ]
    );
    let notifications: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT user_id, type::text, array_to_string(channels, ',') FROM notifications ORDER BY type, user_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(notifications.len(), 3);
    assert!(notifications.contains(&(w.buyer, "order_confirmed".into(), "in_app,email".into())));
    assert!(notifications.contains(&(
        w.seller_a,
        "ticket_sold_seller".into(),
        "in_app,email".into()
    )));
    assert!(notifications.contains(&(
        w.seller_b,
        "ticket_sold_seller".into(),
        "in_app,email".into()
    )));
    let seller_a_count: i64 = sqlx::query_scalar(
        "SELECT (metadata->>'ticketCount')::bigint FROM notifications WHERE user_id = $1",
    )
    .bind(w.seller_a)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(seller_a_count, 2);
    let mut keys: Vec<String> = sqlx::query_scalar("SELECT idempotency_key FROM jobs")
        .fetch_all(&pool)
        .await
        .unwrap();
    keys.sort();
    let mut expected = vec![
        format!("notify-order-confirmed:{order}"),
        format!("notify-seller-ticket-sold:{order}:{}", w.seller_a),
        format!("notify-seller-ticket-sold:{order}:{}", w.seller_b),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    let (payload, metadata): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "SELECT j.payload, n.metadata FROM jobs j, notifications n
          WHERE j.job_type = 'notify-order-confirmed' AND n.type = 'order_confirmed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(payload["buyerUserId"], json!(w.buyer));
    assert_eq!(payload["orderId"], json!(order));
    assert_eq!(payload["venueName"], "Antel Arena");
    assert_eq!(payload["totalAmount"], "1100.00");
    assert_eq!(payload["items"][0]["quantity"], 3);
    assert!(payload.get("type").is_none());
    assert_eq!(metadata["type"], "order_confirmed");
    assert_eq!(metadata["eventName"], "Cuarteto de Nos");
    assert_eq!(metadata["items"], payload["items"]);
    // As the original's helpers write them: the venue's zone (Montevideo when its country
    // is unknown), and whether the seller had uploaded every document already.
    assert_eq!(metadata["eventTimezone"], "America/Montevideo");
    assert!(
        payload.get("eventTimezone").is_none(),
        "not in the job's payload"
    );
    let sold: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT metadata FROM notifications WHERE type = 'ticket_sold_seller'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(sold.len(), 2);
    for m in &sold {
        assert_eq!(m["allDocumentsUploaded"], json!(false), "{m}");
        assert_eq!(m["eventTimezone"], "America/Montevideo", "{m}");
    }
    assert_notifications_match_golden(&pool, "sync_payments_paid").await;
}

#[sqlx::test(migrations = "./migrations")]
async fn running_twice_changes_nothing_the_second_time(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w.listing(w.seller_a, &["500", "500", "500"]).await;
    let paid = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "500",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    let failed = w
        .order(NewOrder {
            tickets: &[t[1]],
            total: "500",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    let stale = w
        .order(NewOrder {
            tickets: &[t[2]],
            total: "500",
            created_minutes_ago: 30,
            expires_in_minutes: -1,
        })
        .await;
    w.payment(NewPayment {
        order: paid,
        provider_id: "D-1",
        status: "pending",
        amount: "500",
        created_minutes_ago: 10,
    })
    .await;
    w.payment(NewPayment {
        order: failed,
        provider_id: "D-2",
        status: "pending",
        amount: "500",
        created_minutes_ago: 10,
    })
    .await;
    let sb = stand_ins().await;
    sb.set_status("D-1", "PAID", "500", "UYU");
    sb.set_status("D-2", "REJECTED", "500", "UYU");

    let first = run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        (
            detail(&first, "orders_confirmed"),
            detail(&first, "orders_cancelled"),
            detail(&first, "orders_expired")
        ),
        (1, 1, 1)
    );
    let after_first = snapshot(&pool).await;
    let requests = sb.api_requests();

    let second = run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        snapshot(&pool).await,
        after_first,
        "second run wrote nothing"
    );
    assert_eq!((second.processed, second.failed), (0, 0));
    assert_eq!(sb.api_requests(), requests, "nothing left to ask dLocal");
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM orders WHERE id = $1",
            stale
        )
        .await,
        "expired"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn failed_cancelled_and_expired_payments_cancel_their_orders_and_release_tickets(
    pool: PgPool,
) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w.listing(w.seller_a, &["100", "100", "100"]).await;
    let mut orders = Vec::new();
    for (i, (status, age)) in [("REJECTED", 30), ("CANCELLED", 30), ("EXPIRED", 120)]
        .iter()
        .enumerate()
    {
        let o = w
            .order(NewOrder {
                tickets: &[t[i]],
                total: "100",
                created_minutes_ago: *age,
                expires_in_minutes: 5,
            })
            .await;
        w.payment(NewPayment {
            order: o,
            provider_id: &format!("D-{status}"),
            status: "pending",
            amount: "100",
            created_minutes_ago: 10,
        })
        .await;
        orders.push(o);
    }
    let sb = stand_ins().await;
    sb.set(
        "D-REJECTED",
        Scripted {
            body: json!({"id": "D-REJECTED", "status": "REJECTED", "amount": 100, "currency": "UYU", "rejected_reason": "Tarjeta rechazada"}),
            status: 200,
            delay: None,
        },
    );
    sb.set_status("D-CANCELLED", "CANCELLED", "100", "UYU");
    sb.set_status("D-EXPIRED", "EXPIRED", "100", "UYU");

    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!(detail(&s, "orders_cancelled"), 3);
    for o in &orders {
        assert_eq!(
            text(&pool, "SELECT status::text FROM orders WHERE id = $1", *o).await,
            "cancelled",
            "expired payments cancel too, as in the original"
        );
        assert_eq!(scalar_i64(&pool, "SELECT count(*) FROM order_ticket_reservations WHERE order_id = $1 AND deleted_at IS NULL", *o).await, 0);
    }
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status::text FROM payments ORDER BY provider_payment_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(statuses, ["cancelled", "expired", "failed"]);
    assert_eq!(scalar_i64(&pool, "SELECT count(*) FROM payments WHERE failure_reason = 'Tarjeta rechazada' AND failed_at IS NOT NULL AND id <> $1", Uuid::nil()).await, 1);
    let notes: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT type::text, array_to_string(channels, ','), metadata->>'errorMessage' FROM notifications ORDER BY type, metadata->>'errorMessage' NULLS FIRST",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        notes,
        [
            // The expired order is two hours old: in-app only, no email.
            ("order_expired".to_string(), "in_app".to_string(), None),
            (
                "payment_failed".to_string(),
                "in_app,email".to_string(),
                None
            ),
            (
                "payment_failed".to_string(),
                "in_app,email".to_string(),
                Some("Tarjeta rechazada".to_string())
            ),
        ]
    );
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM seller_earnings WHERE id <> $1",
            Uuid::nil()
        )
        .await,
        0
    );
    assert_notifications_match_golden(&pool, "sync_payments_failed").await;
}

#[sqlx::test(migrations = "./migrations")]
async fn orders_expire_by_time_or_when_every_payment_ended(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w
        .listing(w.seller_a, &["100", "100", "100", "100", "100"])
        .await;
    let timed_out = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "100",
            created_minutes_ago: 20,
            expires_in_minutes: -5,
        })
        .await;
    let still_reserved = w
        .order(NewOrder {
            tickets: &[t[1]],
            total: "100",
            created_minutes_ago: 2,
            expires_in_minutes: 8,
        })
        .await;
    let waiting_for_bank = w
        .order(NewOrder {
            tickets: &[t[2]],
            total: "100",
            created_minutes_ago: 600,
            expires_in_minutes: -500,
        })
        .await;
    w.payment(NewPayment {
        order: waiting_for_bank,
        provider_id: "D-BANK",
        status: "pending",
        amount: "100",
        created_minutes_ago: 590,
    })
    .await;
    let all_failed = w
        .order(NewOrder {
            tickets: &[t[3]],
            total: "100",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    w.payment(NewPayment {
        order: all_failed,
        provider_id: "D-F1",
        status: "failed",
        amount: "100",
        created_minutes_ago: 25,
    })
    .await;
    w.payment(NewPayment {
        order: all_failed,
        provider_id: "D-F2",
        status: "expired",
        amount: "100",
        created_minutes_ago: 20,
    })
    .await;
    let sb = stand_ins().await;
    sb.set_status("D-BANK", "PENDING", "100", "UYU");

    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!(detail(&s, "orders_expired"), 2);
    let status = |o| text(&pool, "SELECT status::text FROM orders WHERE id = $1", o);
    assert_eq!(status(timed_out).await, "expired");
    assert_eq!(status(all_failed).await, "expired");
    assert_eq!(status(still_reserved).await, "pending");
    assert_eq!(
        status(waiting_for_bank).await,
        "pending",
        "a pending payment keeps its order"
    );
    for o in [timed_out, all_failed] {
        assert_eq!(scalar_i64(&pool, "SELECT count(*) FROM order_ticket_reservations WHERE order_id = $1 AND deleted_at IS NULL", o).await, 0);
        assert_eq!(
            scalar_i64(
                &pool,
                "SELECT count(*) FROM orders WHERE id = $1 AND cancelled_at IS NOT NULL",
                o
            )
            .await,
            1
        );
    }
    assert_eq!(scalar_i64(&pool, "SELECT count(*) FROM order_ticket_reservations WHERE order_id = $1 AND deleted_at IS NULL", still_reserved).await, 1);
    let notes: Vec<String> = sqlx::query_scalar("SELECT array_to_string(channels, ',') FROM notifications WHERE type = 'order_expired' ORDER BY 1")
        .fetch_all(&pool).await.unwrap();
    assert_eq!(
        notes,
        ["in_app,email", "in_app,email"],
        "both orders are younger than an hour"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn no_notification_for_an_event_that_has_ended(pool: PgPool) {
    let w = world(&pool, -2).await;
    let (_, t) = w.listing(w.seller_a, &["100", "100"]).await;
    let o1 = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "100",
            created_minutes_ago: 20,
            expires_in_minutes: -5,
        })
        .await;
    let o2 = w
        .order(NewOrder {
            tickets: &[t[1]],
            total: "100",
            created_minutes_ago: 20,
            expires_in_minutes: 5,
        })
        .await;
    w.payment(NewPayment {
        order: o2,
        provider_id: "D-R",
        status: "pending",
        amount: "100",
        created_minutes_ago: 10,
    })
    .await;
    let sb = stand_ins().await;
    sb.set_status("D-R", "REJECTED", "100", "UYU");
    run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        text(&pool, "SELECT status::text FROM orders WHERE id = $1", o1).await,
        "expired"
    );
    assert_eq!(
        text(&pool, "SELECT status::text FROM orders WHERE id = $1", o2).await,
        "cancelled"
    );
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM notifications WHERE id <> $1",
            Uuid::nil()
        )
        .await,
        0
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_late_paid_on_a_closed_order_is_an_anomaly_not_a_confirmation(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w.listing(w.seller_a, &["300"]).await;
    let order = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "300",
            created_minutes_ago: 90,
            expires_in_minutes: -60,
        })
        .await;
    let payment = w
        .payment(NewPayment {
            order,
            provider_id: "D-LATE",
            status: "pending",
            amount: "300",
            created_minutes_ago: 80,
        })
        .await;
    w.set_order_status(order, "expired").await;
    let sb = stand_ins().await;
    sb.set_status("D-LATE", "PAID", "300", "UYU");

    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!(detail(&s, "anomalies"), 1);
    assert!(s.failed >= 1, "counted as a failure for alerting");
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM orders WHERE id = $1",
            order
        )
        .await,
        "expired"
    );
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM payments WHERE id = $1",
            payment
        )
        .await,
        "paid",
        "the payment row tells the truth"
    );
    assert_eq!(
        text(&pool, "SELECT event_data->>'reason' FROM payment_events WHERE payment_id = $1 AND event_type = 'manual_review_required'", payment).await,
        "paid_after_order_closed"
    );
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM seller_earnings WHERE id <> $1",
            Uuid::nil()
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM listing_tickets WHERE sold_at IS NOT NULL AND id <> $1",
            Uuid::nil()
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM notifications WHERE id <> $1",
            Uuid::nil()
        )
        .await,
        0
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn stuck_payments_back_off_and_do_not_starve_newer_ones(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w.listing(w.seller_a, &["100", "100", "100"]).await;
    let unknown = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "100",
            created_minutes_ago: 60,
            expires_in_minutes: 5,
        })
        .await;
    let mismatch = w
        .order(NewOrder {
            tickets: &[t[1]],
            total: "100",
            created_minutes_ago: 50,
            expires_in_minutes: 5,
        })
        .await;
    let fresh = w
        .order(NewOrder {
            tickets: &[t[2]],
            total: "100",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    let p_unknown = w
        .payment(NewPayment {
            order: unknown,
            provider_id: "D-404",
            status: "pending",
            amount: "100",
            created_minutes_ago: 40,
        })
        .await;
    let p_mismatch = w
        .payment(NewPayment {
            order: mismatch,
            provider_id: "D-AMT",
            status: "pending",
            amount: "100",
            created_minutes_ago: 30,
        })
        .await;
    w.payment(NewPayment {
        order: fresh,
        provider_id: "D-OK",
        status: "pending",
        amount: "100",
        created_minutes_ago: 10,
    })
    .await;
    let sb = stand_ins().await;
    sb.set_status("D-AMT", "PAID", "99.00", "UYU");
    sb.set_status("D-OK", "PAID", "100", "UYU");

    // A batch of one: the stuck payments come first, yet the fresh one gets its turn.
    let one = settings(&sb, &[("SYNC_PAYMENTS_BATCH_LIMIT", "1")]);
    let clock = Clock::system();
    for _ in 0..3 {
        run_at(&pool, one.clone(), &clock).await;
    }
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM orders WHERE id = $1",
            fresh
        )
        .await,
        "confirmed"
    );
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM orders WHERE id = $1",
            mismatch
        )
        .await,
        "pending",
        "nothing written on a mismatch"
    );
    let state: Vec<(Uuid, i32, f64, String)> = sqlx::query_as(
        "SELECT payment_id, failures, EXTRACT(EPOCH FROM next_attempt_at - now())::float8, last_error FROM payment_sync_state ORDER BY last_error",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(state.len(), 2);
    assert_eq!((state[0].0, state[0].1), (p_mismatch, 1));
    assert!(state[0].3.contains("amount mismatch"), "{}", state[0].3);
    assert_eq!((state[1].0, state[1].1), (p_unknown, 1));
    assert!(state[1].3.contains("404"), "{}", state[1].3);
    for s in &state {
        assert!(
            s.2 > 290.0 && s.2 < 370.0,
            "first retry after about 5 minutes, got {} s",
            s.2
        );
    }
    let before = sb.api_requests();
    run_at(&pool, settings(&sb, &[]), &clock).await;
    assert_eq!(
        sb.api_requests(),
        before,
        "backed-off payments are not asked again yet"
    );

    // Once its wait is over and dLocal answers, the payment syncs and its backoff goes.
    sb.set_status("D-404", "PENDING", "100", "UYU");
    clock.advance(TimeDelta::minutes(7));
    sb.set_status("D-AMT", "PENDING", "99.00", "UYU");
    let s = run_at(&pool, settings(&sb, &[]), &clock).await;
    assert_eq!(detail(&s, "payments_synced"), 1);
    let left: Vec<(Uuid, i32)> =
        sqlx::query_as("SELECT payment_id, failures FROM payment_sync_state")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        left,
        [(p_mismatch, 2)],
        "the mismatch failed again; the 404 recovered"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn bad_provider_answers_fail_only_their_payment(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w
        .listing(
            w.seller_a,
            &["100", "100", "100", "100", "100", "100", "100", "100"],
        )
        .await;
    let ids = [
        "D-HTML",
        "D-NOAMOUNT",
        "D-HANG",
        "D-WEIRD",
        "D-NUM",
        "D-USD",
        "D-HUGE",
        "D-NUL",
    ];
    let mut orders = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let o = w
            .order(NewOrder {
                tickets: &[t[i]],
                total: "100",
                created_minutes_ago: 30,
                expires_in_minutes: 5,
            })
            .await;
        w.payment(NewPayment {
            order: o,
            provider_id: id,
            status: "pending",
            amount: "100",
            created_minutes_ago: 10,
        })
        .await;
        orders.push(o);
    }
    let sb = stand_ins().await;
    let raw = |body| Scripted {
        body,
        status: 200,
        delay: None,
    };
    sb.set("D-HTML", raw(json!("<html>oops</html>")));
    sb.set(
        "D-NOAMOUNT",
        raw(json!({"id": "D-NOAMOUNT", "status": "PAID", "currency": "UYU"})),
    );
    sb.set(
        "D-HANG",
        Scripted {
            body: json!({}),
            status: 200,
            delay: Some(Duration::from_secs(30)),
        },
    );
    sb.set(
        "D-WEIRD",
        raw(
            json!({"id": "D-WEIRD", "status": "AUTHORIZED", "amount": "100.00", "currency": "UYU"}),
        ),
    );
    sb.set(
        "D-NUM",
        raw(json!({"id": "D-NUM", "status": "PAID", "amount": 100, "currency": "UYU"})),
    );
    sb.set("D-USD", raw(json!({
        "id": "D-USD", "status": "PENDING", "amount": "100", "currency": "USD", "payment_type": "CREDIT_CARD",
        "balance_amount": "4050.5", "balance_fee": 49.5, "balance_currency": "UYU", "country": "UY",
        "payer": {"email": "ana@example.com", "first_name": "Ana", "last_name": "Pérez", "document_type": "CI", "document": "12345678"}
    })));

    // A "payment" of 2 MiB: refused past 1 MiB, naming dLocal and the limit.
    sb.set(
        "D-HUGE",
        raw(json!({"id": "D-HUGE", "status": "PAID", "amount": "100", "currency": "UYU", "padding": "x".repeat(2 << 20)})),
    );

    // An error whose message carries a NUL, which neither text nor jsonb accepts.
    sb.set(
        "D-NUL",
        Scripted {
            body: json!({"message": "bad\u{0}request"}),
            status: 400,
            delay: None,
        },
    );

    let s = run(&pool, settings(&sb, &[("DLOCAL_TIMEOUT_SECONDS", "1")])).await;
    assert_eq!(detail(&s, "payments_failed"), 5, "{:?}", s.details);
    assert_eq!(detail(&s, "unknown_statuses"), 1);
    assert_eq!(
        detail(&s, "orders_confirmed"),
        1,
        "the numeric amount was read"
    );
    let errors: Vec<String> =
        sqlx::query_scalar("SELECT last_error FROM payment_sync_state ORDER BY last_error")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(errors.len(), 5);
    assert!(
        errors.iter().any(|e| e.contains("badrequest")),
        "the error is recorded without its NUL: {errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("timed out")), "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("dLocal Go's answer is larger than 1048576 bytes")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("missing field `amount`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unexpected payment JSON") || e.contains("not JSON")),
        "{errors:?}"
    );
    // The USD payment settled in UYU: exchange rate, method and payer refreshed.
    let (rate, method, email, country): (String, String, String, String) = sqlx::query_as(
        "SELECT exchange_rate::text, payment_method::text, payer_email, payer_country FROM payments WHERE provider_payment_id = 'D-USD'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (
            rate.as_str(),
            method.as_str(),
            email.as_str(),
            country.as_str()
        ),
        ("41.00000000", "credit_card", "ana@example.com", "UY")
    );
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM payments WHERE provider_payment_id = 'D-WEIRD' AND id <> $1",
            Uuid::nil()
        )
        .await,
        "pending"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn rate_limits_and_server_errors_are_retried(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w.listing(w.seller_a, &["100"]).await;
    let o = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "100",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    w.payment(NewPayment {
        order: o,
        provider_id: "D-1",
        status: "pending",
        amount: "100",
        created_minutes_ago: 10,
    })
    .await;
    let sb = stand_ins().await;
    sb.set_status("D-1", "PAID", "100", "UYU");
    sb.behave(Behaviour {
        rate_limit_next: 1,
        fail_next: 2,
        ..Behaviour::default()
    });
    let started = std::time::Instant::now();
    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!(detail(&s, "orders_confirmed"), 1);
    assert_eq!(sb.api_requests(), 4, "429, 500, 500, then the answer");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_lingering_payment_gets_its_checkout_nudged_and_then_expires(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w.listing(w.seller_a, &["100", "100"]).await;
    let old = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "100",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    let young = w
        .order(NewOrder {
            tickets: &[t[1]],
            total: "100",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    w.payment(NewPayment {
        order: old,
        provider_id: "D-OLD",
        status: "pending",
        amount: "100",
        created_minutes_ago: 20,
    })
    .await;
    w.payment(NewPayment {
        order: young,
        provider_id: "D-YOUNG",
        status: "pending",
        amount: "100",
        created_minutes_ago: 8,
    })
    .await;
    let sb = stand_ins().await;
    sb.set_status("D-OLD", "PENDING", "100", "UYU");
    sb.set_status("D-YOUNG", "PENDING", "100", "UYU");
    sb.behave(Behaviour {
        expire_on_checkout_visit: true,
        ..Behaviour::default()
    });

    run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        (sb.checkout_visits("D-OLD"), sb.checkout_visits("D-YOUNG")),
        (1, 0),
        "only after 15 minutes"
    );
    assert_eq!(
        text(&pool, "SELECT status::text FROM orders WHERE id = $1", old).await,
        "pending"
    );
    run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        text(&pool, "SELECT status::text FROM orders WHERE id = $1", old).await,
        "cancelled"
    );
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM orders WHERE id = $1",
            young
        )
        .await,
        "pending"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn two_runs_racing_on_the_same_payments_double_nothing(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let sb = stand_ins().await;
    let mut orders = Vec::new();
    for i in 0..20 {
        let (_, t) = w
            .listing(
                if i % 2 == 0 { w.seller_a } else { w.seller_b },
                &["250", "250"],
            )
            .await;
        let o = w
            .order(NewOrder {
                tickets: &t,
                total: "500",
                created_minutes_ago: 30,
                expires_in_minutes: 5,
            })
            .await;
        w.payment(NewPayment {
            order: o,
            provider_id: &format!("D-{i}"),
            status: "pending",
            amount: "500",
            created_minutes_ago: 10,
        })
        .await;
        sb.set_status(&format!("D-{i}"), "PAID", "500", "UYU");
        orders.push(o);
    }
    sb.behave(Behaviour {
        latency_ms: 20,
        ..Behaviour::default()
    });
    let (a, b) = tokio::join!(
        run(&pool, settings(&sb, &[])),
        run(&pool, settings(&sb, &[]))
    );
    assert_eq!(
        detail(&a, "orders_confirmed") + detail(&b, "orders_confirmed"),
        20
    );

    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders WHERE status = 'confirmed'"
        )
        .await,
        20
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM seller_earnings").await,
        40
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(DISTINCT listing_ticket_id) FROM seller_earnings"
        )
        .await,
        40
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM payment_events WHERE event_type = 'status_change'"
        )
        .await,
        20
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM notifications WHERE type = 'order_confirmed'"
        )
        .await,
        20
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM notifications WHERE type = 'ticket_sold_seller'"
        )
        .await,
        20
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM jobs").await, 40);
}

#[sqlx::test(migrations = "./migrations")]
async fn writers_side_by_side_and_a_webhook_racing_them_change_nothing_twice(pool: PgPool) {
    // 30 paid orders, two per listing (the writers meet on listings), confirmed by up to
    // 6 transactions at once; meanwhile a webhook-style writer confirms 10 of the same
    // orders itself, under the same locks, as the marketplace's webhook handler would.
    let w = world(&pool, 24 * 7).await;
    let sb = stand_ins().await;
    let mut orders = Vec::new();
    for i in 0..15 {
        let (_, t) = w.listing(w.seller_a, &["250", "250"]).await;
        for (k, ticket) in t.iter().enumerate() {
            let o = w
                .order(NewOrder {
                    tickets: &[*ticket],
                    total: "250",
                    created_minutes_ago: 30,
                    expires_in_minutes: 5,
                })
                .await;
            let id = format!("W-{i}-{k}");
            w.payment(NewPayment {
                order: o,
                provider_id: &id,
                status: "pending",
                amount: "250",
                created_minutes_ago: 10,
            })
            .await;
            sb.set_status(&id, "PAID", "250", "UYU");
            orders.push(o);
        }
    }
    sb.behave(Behaviour {
        latency_ms: 30,
        ..Behaviour::default()
    });
    let webhook = async {
        // Once the run has read its candidates (its first call is out), so that it meets
        // these payments already moved.
        while sb.api_requests() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for o in orders.iter().step_by(3) {
            let mut tx = pool.begin().await.unwrap();
            let status: String =
                sqlx::query_scalar("SELECT status::text FROM orders WHERE id = $1 FOR UPDATE")
                    .bind(o)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
            sqlx::query("SELECT 1 FROM payments WHERE order_id = $1 FOR UPDATE")
                .bind(o)
                .execute(&mut *tx)
                .await
                .unwrap();
            if status == "pending" {
                sqlx::query("UPDATE payments SET status = 'paid' WHERE order_id = $1")
                    .bind(o)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                sqlx::query("UPDATE orders SET status = 'confirmed' WHERE id = $1")
                    .bind(o)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
    };
    let (s, ()) = tokio::join!(
        run(&pool, settings(&sb, &[("SYNC_PAYMENTS_WRITERS", "6")])),
        webhook
    );
    let confirmed_by_job = detail(&s, "orders_confirmed");
    let raced = detail(&s, "payments_raced");
    assert_eq!((confirmed_by_job, raced), (20, 10), "{:?}", s.details);
    assert_eq!(
        detail(&s, "payments_failed"),
        0,
        "no deadlock left a payment failed"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders WHERE status = 'confirmed'"
        )
        .await,
        30
    );
    // Only the job's confirmations wrote earnings, events, notifications: once each.
    let earnings = count(&pool, "SELECT count(*) FROM seller_earnings").await;
    assert_eq!(earnings, confirmed_by_job as i64);
    assert_eq!(
        count(
            &pool,
            "SELECT count(DISTINCT listing_ticket_id) FROM seller_earnings"
        )
        .await,
        earnings
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM payment_events WHERE event_type = 'status_change'"
        )
        .await,
        confirmed_by_job as i64
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM notifications WHERE type = 'order_confirmed'"
        )
        .await,
        confirmed_by_job as i64
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn two_sync_payments_tasks_at_once_run_once_and_the_second_skips(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let sb = stand_ins().await;
    for i in 0..10 {
        let (_, t) = w.listing(w.seller_a, &["100"]).await;
        let o = w
            .order(NewOrder {
                tickets: &[t[0]],
                total: "100",
                created_minutes_ago: 30,
                expires_in_minutes: 5,
            })
            .await;
        w.payment(NewPayment {
            order: o,
            provider_id: &format!("T-{i}"),
            status: "pending",
            amount: "100",
            created_minutes_ago: 10,
        })
        .await;
        sb.set_status(&format!("T-{i}"), "PAID", "100", "UYU");
    }
    sb.behave(Behaviour {
        latency_ms: 2000,
        ..Behaviour::default()
    });
    let task = || {
        let mut cmd = run_job_on(&pool);
        cmd.arg("sync-payments")
            .env("DLOCAL_BASE_URL", &sb.base_url)
            .env("DLOCAL_API_KEY", "key-1")
            .env("DLOCAL_SECRET_KEY", "secret-1");
        output(cmd)
    };
    let (a, b) = tokio::join!(task(), task());
    let confirmed = |r: &Ran| summary(&r.stderr)["details"]["orders_confirmed"].as_u64();
    assert_eq!(
        confirmed(&a).unwrap_or(0) + confirmed(&b).unwrap_or(0),
        10,
        "the run that ran confirmed them all"
    );
    let mut outcomes = [
        summary(&a.stderr)["outcome"].as_str().unwrap().to_string(),
        summary(&b.stderr)["outcome"].as_str().unwrap().to_string(),
    ];
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["skipped", "succeeded"],
        "{}\n{}",
        a.stderr,
        b.stderr
    );
    assert_eq!((a.code, b.code), (Some(0), Some(0)));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders WHERE status = 'confirmed'"
        )
        .await,
        10
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM seller_earnings").await,
        10
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM payment_events WHERE event_type = 'status_change'"
        )
        .await,
        10
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn refused_credentials_or_a_silent_provider_fail_the_run_not_the_payments(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let sb = stand_ins().await;
    for i in 0..3 {
        let (_, t) = w.listing(w.seller_a, &["100"]).await;
        let o = w
            .order(NewOrder {
                tickets: &[t[0]],
                total: "100",
                created_minutes_ago: 30,
                expires_in_minutes: 5,
            })
            .await;
        w.payment(NewPayment {
            order: o,
            provider_id: &format!("R-{i}"),
            status: "pending",
            amount: "100",
            created_minutes_ago: 10,
        })
        .await;
        sb.set_status(&format!("R-{i}"), "PAID", "100", "UYU");
    }
    let task = |base: String, secret: &'static str| {
        let mut cmd = run_job_on(&pool);
        cmd.arg("sync-payments")
            .env("DLOCAL_BASE_URL", base)
            .env("DLOCAL_API_KEY", "key-1")
            .env("DLOCAL_SECRET_KEY", secret)
            .env("DLOCAL_TIMEOUT_SECONDS", "2");
        output(cmd)
    };
    // An order whose reservation ran out with no payment: expiry needs only the
    // database, so it happens whatever dLocal does.
    let (_, t) = w.listing(w.seller_a, &["100"]).await;
    let timed_out = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "100",
            created_minutes_ago: 20,
            expires_in_minutes: -5,
        })
        .await;
    // Keys dLocal does not accept: exit 1 so the alarm fires, and the payments are not
    // backed off for it (nothing is wrong with them).
    let r = task(sb.base_url.clone(), "a-wrong-secret").await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("dLocal refused our credentials"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("a-wrong-secret"),
        "the secret is never logged"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM payment_sync_state").await,
        0
    );
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM orders WHERE id = $1",
            timed_out
        )
        .await,
        "expired",
        "a provider outage does not stop expiry"
    );
    // Once the keys are right, all three go through at once: none was backed off.
    let r = task(sb.base_url.clone(), "secret-1").await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(summary(&r.stderr)["details"]["orders_confirmed"], 3);
    // Nobody answering at all: the run fails too (each payment backs off as usual).
    for i in 3..5 {
        let (_, t) = w.listing(w.seller_a, &["100"]).await;
        let o = w
            .order(NewOrder {
                tickets: &[t[0]],
                total: "100",
                created_minutes_ago: 30,
                expires_in_minutes: 5,
            })
            .await;
        w.payment(NewPayment {
            order: o,
            provider_id: &format!("R-{i}"),
            status: "pending",
            amount: "100",
            created_minutes_ago: 10,
        })
        .await;
    }
    let r = task("http://127.0.0.1:1".into(), "secret-1").await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("dLocal answered none of 2 payment queries"),
        "{}",
        r.stderr
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM payment_sync_state").await,
        2
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn the_binary_runs_sync_payments_against_the_sandbox(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w.listing(w.seller_a, &["100"]).await;
    let o = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "100",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    w.payment(NewPayment {
        order: o,
        provider_id: "D-1",
        status: "pending",
        amount: "100",
        created_minutes_ago: 10,
    })
    .await;
    let sb = stand_ins().await;
    sb.set_status("D-1", "PAID", "100", "UYU");
    let mut cmd = run_job_on(&pool);
    cmd.arg("sync-payments")
        .env("DLOCAL_BASE_URL", &sb.base_url)
        .env("DLOCAL_API_KEY", "key-1")
        .env("DLOCAL_SECRET_KEY", "secret-1");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        !r.stderr.contains("secret-1"),
        "the secret key never reaches a log line"
    );
    let s = summary(&r.stderr);
    assert_eq!(s["details"]["orders_confirmed"], 1);
    assert_eq!(
        text(&pool, "SELECT status::text FROM orders WHERE id = $1", o).await,
        "confirmed"
    );
    assert_eq!(runs(&pool).await[0].outcome, "succeeded");

    let mut cmd = run_job_on(&pool);
    cmd.arg("sync-payments");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(3));
    assert!(
        r.stderr
            .contains("DLOCAL_BASE_URL: is required by sync-payments"),
        "{}",
        r.stderr
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_cancelled_run_stops_promptly_and_leaves_nothing_half_written(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let sb = stand_ins().await;
    for i in 0..30 {
        let (_, t) = w.listing(w.seller_a, &["100"]).await;
        let o = w
            .order(NewOrder {
                tickets: &t,
                total: "100",
                created_minutes_ago: 30,
                expires_in_minutes: 5,
            })
            .await;
        w.payment(NewPayment {
            order: o,
            provider_id: &format!("D-{i}"),
            status: "pending",
            amount: "100",
            created_minutes_ago: 10,
        })
        .await;
        sb.set_status(&format!("D-{i}"), "PAID", "100", "UYU");
    }
    sb.behave(Behaviour {
        latency_ms: 3000,
        ..Behaviour::default()
    });
    let job = SyncPayments::new(pool.clone(), settings(&sb, &[]), Clock::system()).unwrap();
    let cancel = CancellationToken::new();
    let cx = context(&pool, cancel.clone());
    let started = std::time::Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel();
    });
    let s = job
        .run_once(&cx)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    canceller.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped in {:?}",
        started.elapsed()
    );
    assert_eq!(s.processed, 0);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM payments WHERE status = 'pending'"
        )
        .await,
        30
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM payment_events").await, 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM payment_sync_state").await,
        0,
        "a cancelled call is not a failure"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_row_the_database_refuses_fails_alone(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w.listing(w.seller_a, &["100", "100", "100"]).await;
    let sb = stand_ins().await;
    let mut payments = Vec::new();
    for (i, status) in ["pending", "pending", "processing"].iter().enumerate() {
        let o = w
            .order(NewOrder {
                tickets: &[t[i]],
                total: "100",
                created_minutes_ago: 30,
                expires_in_minutes: 5,
            })
            .await;
        payments.push(
            w.payment(NewPayment {
                order: o,
                provider_id: &format!("D-{i}"),
                status,
                amount: "100",
                created_minutes_ago: 10,
            })
            .await,
        );
        sb.set_status(&format!("D-{i}"), "PENDING", "100", "UYU");
    }
    // The database refuses any update of the first payment.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.id = '{}' THEN RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION refuse();",
        payments[0]
    )))
    .execute(&pool)
    .await
    .unwrap();

    let s = run(&pool, settings(&sb, &[])).await;
    assert_eq!(
        (detail(&s, "payments_synced"), detail(&s, "payments_failed")),
        (2, 1),
        "{:?}",
        s.details
    );
    let error = text(
        &pool,
        "SELECT last_error FROM payment_sync_state WHERE payment_id = $1",
        payments[0],
    )
    .await;
    assert!(error.contains("refused by a test trigger"), "{error}");
    let synced = scalar_i64(&pool, "SELECT count(*) FROM payment_events WHERE event_type = 'status_synced' AND payment_id <> $1", payments[0]).await;
    assert_eq!(synced, 2);
    // dLocal has no "processing": PENDING does not demote it, and no status_change is written.
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM payments WHERE id = $1",
            payments[2]
        )
        .await,
        "processing"
    );
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM payment_events WHERE event_type = 'status_change' AND id <> $1",
            Uuid::nil()
        )
        .await,
        0
    );
}

/// A writer that PostgreSQL picks as a deadlock's victim is rolled back whole and tries
/// once more: the order is confirmed once, and the other transaction goes through.
#[sqlx::test(migrations = "./migrations")]
async fn a_writer_chosen_as_a_deadlock_victim_tries_again(pool: PgPool) {
    let w = world(&pool, 24 * 7).await;
    let (_, t) = w.listing(w.seller_a, &["500"]).await;
    let order = w
        .order(NewOrder {
            tickets: &[t[0]],
            total: "500",
            created_minutes_ago: 30,
            expires_in_minutes: 5,
        })
        .await;
    let payment = w
        .payment(NewPayment {
            order,
            provider_id: "D-1",
            status: "pending",
            amount: "500",
            created_minutes_ago: 10,
        })
        .await;
    let sb = stand_ins().await;
    sb.set_status("D-1", "PAID", "500", "UYU");

    // The other side takes the locks in the opposite order (the payment, then the
    // order), as a webhook handler written another way would. It looks for deadlocks
    // only after 10 s, so the writer (PostgreSQL's 1 s) finds this one and is the victim.
    let mut other = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL deadlock_timeout = '10s'")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE")
        .bind(payment)
        .execute(&mut *other)
        .await
        .unwrap();
    let job = tokio::spawn({
        let pool = pool.clone();
        let settings = settings(&sb, &[]);
        async move { run(&pool, settings).await }
    });
    // The writer holds the order and waits for the payment...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(
        &pool,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND query LIKE 'SELECT status::text FROM payments%'",
    )
    .await
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the writer never waited for the payment's lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and now waits for the order: a deadlock.
    sqlx::query("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE")
        .bind(order)
        .execute(&mut *other)
        .await
        .unwrap();
    other.commit().await.unwrap();

    let summary = job.await.unwrap();
    assert_eq!(
        (detail(&summary, "orders_confirmed"), summary.failed),
        (1, 0),
        "{:?}",
        summary.details
    );
    assert_eq!(
        text(
            &pool,
            "SELECT status::text FROM orders WHERE id = $1",
            order
        )
        .await,
        "confirmed"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM payment_events WHERE event_type = 'status_change'"
        )
        .await,
        1,
        "the rolled-back attempt left nothing behind"
    );
}
