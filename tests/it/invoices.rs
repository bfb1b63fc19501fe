//! The invoices job on a real database against the FEU stand-in over HTTP: buyer and
//! seller invoices with their amounts, PDFs and emails; bad input failing only its row;
//! two runs at once; and runs killed at many points, then rerun: one fiscal document
//! per invoice at FEU, every queue row final, every PDF stored.

use std::path::PathBuf;
use std::time::Duration;

use chrono::TimeDelta;
use run_job::clock::Clock;
use run_job::jobs::invoices::{Invoices, Settings};
use run_job::jobs::{JobError, Summary};
use run_job::sandbox::Sandbox;
use run_job::sandbox::feu::{self as standin, FeuScript};
use run_job::storage::Storage;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::fixtures::*;
use crate::helpers::*;

struct Setup {
    sb: Sandbox,
    storage_root: PathBuf,
}

impl Setup {
    async fn new() -> Setup {
        let storage_root =
            std::env::temp_dir().join(format!("run-job-invoices-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&storage_root).unwrap();
        Setup {
            sb: stand_ins().await,
            storage_root,
        }
    }

    fn vars(&self) -> Vec<(String, String)> {
        vec![
            (
                "FEU_AUTH_URL".into(),
                format!("{}/auth/token", self.sb.base_url),
            ),
            ("FEU_API_BASE_URL".into(), self.sb.base_url.clone()),
            ("FEU_REFRESH_TOKEN".into(), standin::REFRESH_TOKEN.into()),
            ("FEU_EMISOR_RUT".into(), standin::EMISOR.into()),
            (
                "STORAGE_LOCAL_PATH".into(),
                self.storage_root.to_string_lossy().into(),
            ),
        ]
    }

    fn storage(&self) -> Storage {
        let vars = self.vars();
        Storage::from_env(&move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap()
    }

    async fn run(&self, pool: &PgPool) -> Result<Summary, JobError> {
        let vars = self.vars();
        let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let job = Invoices::new(
            pool.clone(),
            Settings::from_env(&env).unwrap(),
            Clock::system(),
        )
        .unwrap();
        job.run_once(&context(pool, CancellationToken::new())).await
    }
}

/// A confirmed order of two tickets from two sellers (1000 and 500 UYU), commission 90
/// + VAT 19.80, with its three invoice jobs queued as sync-payments queues them.
async fn confirmed_sale(w: &World) -> Uuid {
    let (_, a) = w.listing(w.seller_a, &["1000"]).await;
    let (_, b) = w.listing(w.seller_b, &["500"]).await;
    let order = w
        .order(NewOrder {
            tickets: &[a[0], b[0]],
            total: "1609.80",
            created_minutes_ago: 10,
            expires_in_minutes: 30,
        })
        .await;
    sqlx::query(
        "UPDATE orders SET status = 'confirmed', subtotal_amount = 1500, platform_commission = 90,
                vat_on_commission = 19.80 WHERE id = $1",
    )
    .bind(order)
    .execute(&w.pool)
    .await
    .unwrap();
    enqueue(
        &w.pool,
        "notify-order-confirmed",
        json!({"orderId": order, "buyerUserId": w.buyer}),
    )
    .await;
    for seller in [w.seller_a, w.seller_b] {
        enqueue(
            &w.pool,
            "notify-seller-ticket-sold",
            json!({"orderId": order, "sellerUserId": seller}),
        )
        .await;
    }
    order
}

async fn enqueue(pool: &PgPool, kind: &str, payload: Value) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO jobs (job_type, payload, idempotency_key) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(kind)
    .bind(&payload)
    .bind(format!("{kind}:{}", Uuid::new_v4()))
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn job_rows(pool: &PgPool) -> Vec<(String, i32, Option<String>)> {
    sqlx::query_as("SELECT status::text, attempts, error FROM jobs ORDER BY created_at, id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn buyer_and_seller_invoices_are_issued_stored_and_emailed(pool: PgPool) {
    let w = world(&pool, 48).await;
    let order = confirmed_sale(&w).await;
    let s = Setup::new().await;
    let summary = s
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    assert_eq!(summary.details["issued"], 3);

    let docs = s.sb.feu_documents();
    let precio = |external: String| {
        docs.iter()
            .find(|d| d.id_externo.as_deref() == Some(external.as_str()))
            .map(|d| d.payload["items"][0]["precio"].clone())
            .unwrap()
    };
    assert_eq!(docs.len(), 3);
    assert_eq!(precio(format!("revendiste:{order}:buyer")), json!(109.8));
    assert_eq!(
        precio(format!("revendiste:{order}:seller:{}", w.seller_a)),
        json!(73.2),
        "60 + 13.20"
    );
    assert_eq!(
        precio(format!("revendiste:{order}:seller:{}", w.seller_b)),
        json!(36.6),
        "30 + 6.60"
    );

    let invoices: Vec<(Uuid, String, String, String, String, Value)> = sqlx::query_as(
        "SELECT id, party::text, status::text, total_amount::text, pdf_storage_path, provider_response
           FROM invoices ORDER BY party, total_amount DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let storage = s.storage();
    for (_, party, status, _, path, answer) in &invoices {
        assert_eq!(status, "issued", "{party}");
        let pdf = storage.get(path).await.unwrap();
        assert_eq!(pdf, standin::pdf_bytes(answer["id"].as_u64().unwrap()));
    }
    assert_eq!(invoices[0].3, "109.80");
    // The key the original's R2 provider returns and stores, `private/` included: the
    // API reads the stored path as the key.
    assert_eq!(
        invoices[0].4,
        format!("private/invoices/{order}/buyer-invoice.pdf")
    );
    assert_eq!(
        invoices[1].4,
        format!("private/invoices/{order}/seller-{}-invoice.pdf", w.seller_a)
    );

    let emails: Vec<(Uuid, Vec<String>, Value)> = sqlx::query_as(
        "SELECT user_id, channels::text[], metadata FROM notifications WHERE type = 'order_invoice'
          ORDER BY metadata->>'party', metadata->>'sellerAmount' DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(emails.len(), 3);
    let (buyer, channels, m) = &emails[0];
    assert_eq!(
        (buyer, channels.as_slice()),
        (&w.buyer, ["email".to_string()].as_slice())
    );
    assert_eq!(m["party"], "buyer");
    assert_eq!(m["totalAmount"], "1609.80");
    assert_eq!(m["postSendActions"][0]["invoiceId"], json!(invoices[0].0));
    let serie_numero = format!("factura-A-{}.pdf", invoices[0].5["numero"]);
    assert_eq!(m["attachmentRefs"][0]["filename"], serie_numero);
    let seller_a = &emails[1].2;
    assert_eq!(
        (
            &seller_a["sellerSubtotal"],
            &seller_a["sellerCommission"],
            &seller_a["sellerVat"],
            &seller_a["sellerAmount"]
        ),
        // JavaScript's `String(n)`, as the API writes the breakdown.
        (
            &json!("1000"),
            &json!("60"),
            &json!("13.2"),
            &json!("926.8")
        )
    );
    assert!(
        job_rows(&pool)
            .await
            .iter()
            .all(|(status, ..)| status == "completed")
    );

    // Nothing left to do: a rerun issues nothing and FEU sees nothing new.
    let again = s
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    assert_eq!(again.processed, 0);
    assert_eq!(s.sb.feu_documents().len(), 3);
    assert_notifications_match_golden(&pool, "invoices").await;
}

#[sqlx::test(migrations = "./migrations")]
async fn bad_input_fails_only_its_row_and_the_run_says_so(pool: PgPool) {
    let w = world(&pool, 48).await;
    let order = confirmed_sale(&w).await;
    let missing = enqueue(
        &pool,
        "notify-seller-ticket-sold",
        json!({"orderId": order}),
    )
    .await;
    let (_, t) = w.listing(w.seller_a, &["100"]).await;
    let pending_order = w
        .order(NewOrder {
            tickets: &t,
            total: "100",
            created_minutes_ago: 5,
            expires_in_minutes: 30,
        })
        .await;
    let unconfirmed = enqueue(
        &pool,
        "notify-order-confirmed",
        json!({"orderId": pending_order}),
    )
    .await;
    let s = Setup::new().await;
    let e = s.run(&pool).await.unwrap_err();
    assert_eq!(e.summary.details["issued"], 3, "the good rows went on");
    assert_eq!(e.summary.details["failed"], 2);
    let row = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT status::text, error FROM jobs WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (status, error) = row(missing).await;
    assert_eq!(status, "failed");
    assert!(error.unwrap().contains("missing field `sellerUserId`"));
    let (status, error) = row(unconfirmed).await;
    assert_eq!(status, "failed");
    assert_eq!(
        error.unwrap(),
        format!("order {pending_order} is pending, not confirmed")
    );

    // FEU answering garbage, then a PDF that is not base64: retried later, with the reason.
    let other = confirmed_sale(&w).await;
    s.sb.script_feu(FeuScript {
        create_garbage_next: 100,
        ..FeuScript::default()
    });
    let e = s.run(&pool).await.unwrap_err();
    assert_eq!(e.summary.details["retrying"], 3);
    let errors: Vec<String> = sqlx::query_scalar(
        "SELECT error FROM jobs WHERE status = 'pending' AND attempts = 1 AND payload->>'orderId' = $1",
    )
    .bind(other.to_string())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e.contains("not JSON")), "{errors:?}");
    let last_error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM invoices WHERE external_id = $1")
            .bind(format!("revendiste:{other}:buyer"))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(last_error.unwrap().contains("not JSON"));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_pdf_that_is_not_base64_is_retried_and_then_issued_once(pool: PgPool) {
    let w = world(&pool, 48).await;
    let order = confirmed_sale(&w).await;
    let s = Setup::new().await;
    s.sb.script_feu(FeuScript {
        pdf_not_base64_next: 100,
        ..FeuScript::default()
    });
    let e = s.run(&pool).await.unwrap_err();
    assert_eq!(e.summary.details["retrying"], 3);
    assert_eq!(
        s.sb.feu_documents().len(),
        3,
        "created; the PDF is what failed"
    );
    s.sb.script_feu(FeuScript::default());
    sqlx::query("UPDATE jobs SET scheduled_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    s.run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    assert_eq!(
        s.sb.feu_documents().len(),
        3,
        "the rerun got the same documents"
    );
    let issued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM invoices WHERE status = 'issued' AND order_id = $1",
    )
    .bind(order)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(issued, 3);
}

#[sqlx::test(migrations = "./migrations")]
async fn two_runs_at_once_issue_each_document_once(pool: PgPool) {
    let w = world(&pool, 48).await;
    for _ in 0..5 {
        confirmed_sale(&w).await;
    }
    let s = Setup::new().await;
    s.sb.script_feu(FeuScript {
        create_latency_ms: 20,
        ..FeuScript::default()
    });
    let (a, b) = tokio::join!(s.run(&pool), s.run(&pool));
    let issued = |r: &Result<Summary, JobError>| match r {
        Ok(s) => s.details["issued"].as_u64().unwrap(),
        Err(e) => panic!("{:#}", e.error),
    };
    assert_eq!(issued(&a) + issued(&b), 15);
    assert_eq!(s.sb.feu_documents().len(), 15);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM notifications WHERE type = 'order_invoice'"
        )
        .await,
        15
    );
}

/// kill -9 runs of the binary at many points while invoices are issued, then rerun
/// until the queue is done: one fiscal document per invoice at FEU, every row final,
/// every PDF stored, one email per invoice.
#[sqlx::test(migrations = "./migrations")]
async fn killing_runs_at_any_point_issues_every_invoice_exactly_once(pool: PgPool) {
    let w = world(&pool, 48).await;
    for _ in 0..8 {
        confirmed_sale(&w).await;
    }
    let s = Setup::new().await;
    s.sb.script_feu(FeuScript {
        create_latency_ms: 60,
        ..FeuScript::default()
    });
    // A killed run's claimed rows come back after 15 minutes: each round runs later.
    let process = |ahead: TimeDelta| {
        let mut cmd = run_job_on(&pool);
        cmd.arg("invoices")
            .env("RUN_JOB_NOW", (chrono::Utc::now() + ahead).to_rfc3339());
        for (k, v) in s.vars() {
            cmd.env(k, v);
        }
        cmd
    };
    let mut ahead = TimeDelta::zero();
    let mut mid_work = false;
    for delay_ms in [150u64, 350, 600, 900, 1300, 250, 800] {
        let mut child = process(ahead).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        send_signal(child.id().unwrap(), "KILL");
        child.wait().await.unwrap();
        ahead += TimeDelta::minutes(16);
        let unfinished = count(
            &pool,
            "SELECT count(*) FROM jobs WHERE status <> 'completed'",
        )
        .await;
        mid_work |= !s.sb.feu_documents().is_empty() && unfinished > 0;
    }
    assert!(
        mid_work,
        "a kill landed while FEU had issued documents and rows were unfinished"
    );
    for _ in 0..5 {
        let r = output(process(ahead)).await;
        let left = count(
            &pool,
            "SELECT count(*) FROM jobs WHERE status <> 'completed'",
        )
        .await;
        if left == 0 {
            assert_eq!(r.code, Some(0), "{}", r.stderr);
            break;
        }
        ahead += TimeDelta::minutes(16);
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs WHERE status <> 'completed'"
        )
        .await,
        0
    );
    let docs = s.sb.feu_documents();
    let mut externals: Vec<String> = docs.iter().filter_map(|d| d.id_externo.clone()).collect();
    externals.sort();
    externals.dedup();
    assert_eq!(
        (docs.len(), externals.len()),
        (24, 24),
        "one document per invoice"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM invoices WHERE status = 'issued'"
        )
        .await,
        24
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM notifications WHERE type = 'order_invoice'"
        )
        .await,
        24
    );
    let storage = s.storage();
    let paths: Vec<String> = sqlx::query_scalar("SELECT pdf_storage_path FROM invoices")
        .fetch_all(&pool)
        .await
        .unwrap();
    for path in paths {
        assert!(storage.get(&path).await.is_ok(), "{path} stored");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn without_feu_settings_the_job_exits_3_naming_the_variable(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.arg("invoices");
    let r = output(cmd).await;
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("FEU_AUTH_URL"), "{}", r.stderr);
}

/// A confirmed order of `seller`'s tickets at `prices`, in `currency`, with the seller's
/// invoice job queued; (order, listing, tickets, queue row).
async fn sellers_sale(
    w: &World,
    seller: Uuid,
    prices: &[&str],
    currency: &str,
) -> (Uuid, Uuid, Vec<Uuid>, Uuid) {
    let (listing, tickets) = w.listing(seller, prices).await;
    let order = w
        .order(NewOrder {
            tickets: &tickets,
            total: "1",
            created_minutes_ago: 10,
            expires_in_minutes: 30,
        })
        .await;
    sqlx::query("UPDATE orders SET status = 'confirmed', currency = $2::event_ticket_currency WHERE id = $1")
        .bind(order)
        .bind(currency)
        .execute(&w.pool)
        .await
        .unwrap();
    let row = enqueue(
        &w.pool,
        "notify-seller-ticket-sold",
        json!({"orderId": order, "sellerUserId": seller}),
    )
    .await;
    (order, listing, tickets, row)
}

async fn seller_invoice(pool: &PgPool, order: Uuid) -> (String, String, String, Value) {
    let (base, vat, total): (String, String, String) = sqlx::query_as(
        "SELECT base_amount::text, vat_amount::text, total_amount::text FROM invoices
          WHERE order_id = $1 AND party = 'seller'",
    )
    .bind(order)
    .fetch_one(pool)
    .await
    .unwrap();
    let email: Value = sqlx::query_scalar(
        "SELECT metadata FROM notifications WHERE type = 'order_invoice' AND metadata->>'orderId' = $1",
    )
    .bind(order.to_string())
    .fetch_one(pool)
    .await
    .unwrap();
    (base, vat, total, email)
}

/// The seller's invoice bills what the API computes, to the cent, at the prices where
/// binary doubles and exact decimals part (packages/shared fees: 20.75 × 6 % is
/// 1.2449999… and rounds to 1.24; 39.75 × 22 % to 8.74), in UYU and in USD. Exact
/// decimals would bill 41.00 + 9.03 and 0.17 + 0.04.
#[sqlx::test(migrations = "./migrations")]
async fn a_sellers_invoice_has_the_apis_cents_at_half_cent_prices(pool: PgPool) {
    let w = world(&pool, 48).await;
    let (uyu, ..) = sellers_sale(&w, w.seller_a, &["20.75", "662.50"], "UYU").await;
    let (usd, ..) = sellers_sale(&w, w.seller_b, &["2.75"], "USD").await;
    let s = Setup::new().await;
    s.run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));

    let (base, vat, total, email) = seller_invoice(&pool, uyu).await;
    assert_eq!((base.as_str(), vat.as_str()), ("40.99", "9.01"));
    assert_eq!(total, "50.00");
    assert_eq!(
        (
            &email["sellerCommission"],
            &email["sellerVat"],
            &email["sellerAmount"],
            &email["currency"]
        ),
        (
            &json!("40.99"),
            &json!("9.01"),
            &json!("633.25"),
            &json!("UYU")
        ),
        "19.24 + 614.01, as calculateSellerAmount gives them"
    );
    let (base, vat, _, email) = seller_invoice(&pool, usd).await;
    assert_eq!((base.as_str(), vat.as_str()), ("0.16", "0.04"));
    assert_eq!(
        (&email["sellerAmount"], &email["currency"]),
        (&json!("2.55"), &json!("USD"))
    );
    let precio = |order: Uuid| {
        s.sb.feu_documents()
            .iter()
            .find(|d| {
                d.id_externo
                    .as_deref()
                    .is_some_and(|e| e.starts_with(&format!("revendiste:{order}:seller")))
            })
            .map(|d| d.payload["items"][0]["precio"].clone())
            .unwrap()
    };
    assert_eq!(precio(uyu), json!(50.0));
    assert_eq!(precio(usd), json!(0.2));
}

/// What the seller earned is the earning stored for each ticket (what their balance
/// shows), not a figure computed again.
#[sqlx::test(migrations = "./migrations")]
async fn a_sellers_invoice_email_shows_the_stored_earnings(pool: PgPool) {
    let w = world(&pool, 48).await;
    let (order, _, tickets, _) = sellers_sale(&w, w.seller_a, &["100", "100"], "UYU").await;
    for t in &tickets {
        sqlx::query(
            "INSERT INTO seller_earnings (seller_user_id, listing_ticket_id, seller_amount, currency)
             VALUES ($1, $2, 92.50, 'UYU')",
        )
        .bind(w.seller_a)
        .bind(t)
        .execute(&pool)
        .await
        .unwrap();
    }
    Setup::new()
        .await
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    let (base, vat, _, email) = seller_invoice(&pool, order).await;
    assert_eq!((base.as_str(), vat.as_str()), ("12", "2.64"));
    assert_eq!(email["sellerAmount"], json!("185"), "2 × 92.50 stored");
}

/// A listing the seller deleted after the sale is not billed, as the original's query
/// filters it: its tickets leave the invoice, and with none left the row fails.
#[sqlx::test(migrations = "./migrations")]
async fn soft_deleted_listings_and_tickets_are_not_billed(pool: PgPool) {
    let w = world(&pool, 48).await;
    let (order, _, tickets, _) = sellers_sale(&w, w.seller_a, &["1000", "500"], "UYU").await;
    sqlx::query("UPDATE listing_tickets SET deleted_at = now() WHERE id = $1")
        .bind(tickets[1])
        .execute(&pool)
        .await
        .unwrap();
    let (gone, listing, _, row) = sellers_sale(&w, w.seller_b, &["700"], "UYU").await;
    sqlx::query("UPDATE listings SET deleted_at = now() WHERE id = $1")
        .bind(listing)
        .execute(&pool)
        .await
        .unwrap();
    let s = Setup::new().await;
    let e = s.run(&pool).await.unwrap_err();
    assert_eq!(e.summary.details["issued"], 1);
    let (base, vat, ..) = seller_invoice(&pool, order).await;
    assert_eq!(
        (base.as_str(), vat.as_str()),
        ("60", "13.2"),
        "the 1000 only"
    );
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status::text, error FROM jobs WHERE id = $1")
            .bind(row)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(
        error.unwrap(),
        format!("seller {} has no tickets in order {gone}", w.seller_b)
    );
    assert_eq!(
        s.sb.feu_documents().len(),
        1,
        "no document for the deleted listing"
    );
}

/// FEU refuses our credentials (a rotated refresh token, no password to fall back on):
/// the run fails with exit 1 naming the cause, every due row stays claimable as it was
/// (no attempt counted, nothing failed), and once the credentials are right the next
/// run issues each invoice once.
#[sqlx::test(migrations = "./migrations")]
async fn refused_credentials_fail_the_run_and_leave_every_row_claimable(pool: PgPool) {
    let w = world(&pool, 48).await;
    for _ in 0..3 {
        confirmed_sale(&w).await;
    }
    let s = Setup::new().await;
    let process = |refresh: &str| {
        let mut cmd = run_job_on(&pool);
        cmd.arg("invoices");
        for (k, v) in s.vars() {
            cmd.env(k, v);
        }
        cmd.env("FEU_REFRESH_TOKEN", refresh);
        cmd
    };
    let r = output(process("rotated-away")).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("FEU refused our credentials"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("rotated-away"), "no secret in the log");
    let rows = job_rows(&pool).await;
    assert_eq!(rows.len(), 9);
    assert!(
        rows.iter()
            .all(|(status, attempts, _)| status == "pending" && *attempts == 0),
        "{rows:?}"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs WHERE status = 'pending' AND scheduled_at <= now()"
        )
        .await,
        9,
        "due now, not pushed down a backoff ladder"
    );
    assert!(s.sb.feu_documents().is_empty());

    let r = output(process(standin::REFRESH_TOKEN)).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(s.sb.feu_documents().len(), 9);
    assert!(
        job_rows(&pool)
            .await
            .iter()
            .all(|(status, ..)| status == "completed")
    );
}

/// An invoice issued already is done, whatever became of its order since: a queue row
/// for it (a duplicate, a retry) completes without FEU, as in the original, which looks
/// at the invoice before the order.
#[sqlx::test(migrations = "./migrations")]
async fn an_issued_invoice_of_a_cancelled_order_completes_its_row(pool: PgPool) {
    let w = world(&pool, 48).await;
    let order = confirmed_sale(&w).await;
    let s = Setup::new().await;
    s.run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    w.set_order_status(order, "cancelled").await;
    let again = enqueue(&pool, "notify-order-confirmed", json!({"orderId": order})).await;
    let summary = s
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    assert_eq!(summary.details["already_issued"], 1);
    assert_eq!(
        text(&pool, "SELECT status::text FROM jobs WHERE id = $1", again).await,
        "completed"
    );
    assert_eq!(s.sb.feu_documents().len(), 3, "FEU asked nothing more");
}

/// `run-job requeue invoices`: the failed row is listed first; `--dry-run` changes
/// nothing; the real requeue puts it back with its attempts reset, and the next run
/// issues exactly one document for it.
#[sqlx::test(migrations = "./migrations")]
async fn a_failed_invoice_row_requeued_runs_once_and_issues_one_document(pool: PgPool) {
    let w = world(&pool, 48).await;
    let (order, _, _, row) = sellers_sale(&w, w.seller_a, &["1000"], "UYU").await;
    let s = Setup::new().await;
    s.sb.script_feu(FeuScript {
        create_fail_next: 1000,
        ..FeuScript::default()
    });
    sqlx::query("UPDATE jobs SET max_attempts = 1 WHERE id = $1")
        .bind(row)
        .execute(&pool)
        .await
        .unwrap();
    s.run(&pool).await.unwrap_err();
    let before = job_rows(&pool).await;
    assert_eq!(before[0].0, "failed");
    s.sb.script_feu(FeuScript::default());

    let requeue = |extra: &[&str]| {
        let mut cmd = run_job_on(&pool);
        cmd.args(["requeue", "invoices", "--since", "1h"])
            .args(extra);
        cmd
    };
    let dry = output(requeue(&["--dry-run"])).await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(dry.stdout.contains(&row.to_string()), "{}", dry.stdout);
    assert!(dry.stdout.contains("notify-seller-ticket-sold"));
    assert!(dry.stdout.contains("Dry run: 1 row(s)"), "{}", dry.stdout);
    assert_eq!(job_rows(&pool).await, before, "--dry-run changed nothing");

    let other = Uuid::new_v4();
    let none = output(requeue(&["--id", &other.to_string()])).await;
    assert!(none.stdout.contains("No failed rows"), "{}", none.stdout);

    let done = output(requeue(&["--id", &row.to_string()])).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stdout.contains(&row.to_string()));
    assert!(done.stdout.contains("Requeued 1 of 1"), "{}", done.stdout);
    let (status, attempts, _) = job_rows(&pool).await.remove(0);
    assert_eq!((status.as_str(), attempts), ("pending", 0));

    let summary = s
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    assert_eq!(summary.details["issued"], 1);
    let run_again = s
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    assert_eq!(run_again.processed, 0);
    let docs = s.sb.feu_documents();
    assert_eq!(docs.len(), 1, "exactly one fiscal document");
    assert_eq!(
        docs[0].id_externo.as_deref(),
        Some(format!("revendiste:{order}:seller:{}", w.seller_a).as_str())
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn requeue_names_a_job_without_failed_rows_as_a_usage_error(pool: PgPool) {
    let mut cmd = run_job_on(&pool);
    cmd.args(["requeue", "scraping", "--all"]);
    let r = output(cmd).await;
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("no failed rows to requeue"),
        "{}",
        r.stderr
    );
    // Unscoped, it would put back every failed row ever: it asks which.
    let mut cmd = run_job_on(&pool);
    cmd.args(["requeue", "invoices"]);
    let r = output(cmd).await;
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("--since <window>, --id <uuid>, or --all"),
        "{}",
        r.stderr
    );
}

/// An event without a name is "el evento" in what the buyer and seller read, as the
/// original writes it (`event.name || 'el evento'`), never an empty string.
#[sqlx::test(migrations = "./migrations")]
async fn an_event_without_a_name_is_el_evento_in_the_invoice_emails(pool: PgPool) {
    let w = world(&pool, 48).await;
    sqlx::query("UPDATE events SET name = '' WHERE id = $1")
        .bind(w.event)
        .execute(&pool)
        .await
        .unwrap();
    confirmed_sale(&w).await;
    Setup::new()
        .await
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{:#}", e.error));
    let names: Vec<Value> = sqlx::query_scalar(
        "SELECT metadata->'eventName' FROM notifications WHERE type = 'order_invoice'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(names, vec![json!("el evento"); 3]);
}
