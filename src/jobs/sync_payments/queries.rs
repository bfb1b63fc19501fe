//! Every SQL statement of sync-payments. Batched where one statement can serve many
//! rows: rows travel as one JSON array (`jsonb_to_recordset`), so N payments cost one
//! round trip, not N.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
// Statements assembled from the constant fragments below only, never from data.
use crate::database;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

use crate::statuses::OrderStatus;

/// A payment to sync, with what the sync needs of its order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Candidate {
    pub id: Uuid,
    pub order_id: Uuid,
    pub provider_payment_id: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub order_total: Decimal,
    /// Failed syncs so far (backoff state), 0 when none.
    pub failures: i32,
}

/// Pending/processing dLocal payments older than five minutes whose backoff (if any)
/// has elapsed, oldest first.
pub(super) async fn candidates(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Candidate>> {
    sqlx::query_as(
        "SELECT p.id, p.order_id, p.provider_payment_id, p.status::text AS status, p.created_at,
                o.total_amount AS order_total, COALESCE(s.failures, 0) AS failures
           FROM payments p
           JOIN orders o ON o.id = p.order_id
      LEFT JOIN payment_sync_state s ON s.payment_id = p.id
          WHERE p.status IN ('pending', 'processing')
            AND p.provider = 'dlocal'
            AND p.provider_payment_id IS NOT NULL
            AND p.deleted_at IS NULL
            AND p.created_at < $1 - interval '5 minutes'
            AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= $1)
       ORDER BY p.created_at ASC
          LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The provider's view of a payment, as written to its row.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Refresh {
    pub id: Uuid,
    /// Written only if the row still has this status (another writer may have moved it).
    pub expected_status: String,
    pub status: &'static str,
    pub payment_method: Option<&'static str>,
    pub balance_amount: Option<Decimal>,
    pub balance_fee: Option<Decimal>,
    pub balance_currency: Option<String>,
    pub exchange_rate: Option<Decimal>,
    pub payer_email: Option<String>,
    pub payer_first_name: Option<String>,
    pub payer_last_name: Option<String>,
    pub payer_document_type: Option<String>,
    pub payer_document: Option<String>,
    pub payer_country: Option<String>,
    pub failure_reason: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub provider_metadata: serde_json::Value,
}

/// Writes refreshed payment rows; returns the ids actually updated (those whose status
/// was still the expected one).
pub(super) async fn refresh_payments(
    conn: &mut PgConnection,
    rows: &[Refresh],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "UPDATE payments p SET
                status = x.status::payment_status,
                payment_method = COALESCE(x.payment_method::payment_method, p.payment_method),
                balance_amount = COALESCE(x.balance_amount, p.balance_amount),
                balance_fee = COALESCE(x.balance_fee, p.balance_fee),
                balance_currency = COALESCE(x.balance_currency, p.balance_currency),
                exchange_rate = COALESCE(x.exchange_rate, p.exchange_rate),
                payer_email = COALESCE(x.payer_email, p.payer_email),
                payer_first_name = COALESCE(x.payer_first_name, p.payer_first_name),
                payer_last_name = COALESCE(x.payer_last_name, p.payer_last_name),
                payer_document_type = COALESCE(x.payer_document_type, p.payer_document_type),
                payer_document = COALESCE(x.payer_document, p.payer_document),
                payer_country = COALESCE(x.payer_country, p.payer_country),
                failure_reason = COALESCE(x.failure_reason, p.failure_reason),
                approved_at = x.approved_at,
                failed_at = CASE WHEN x.status = 'failed' THEN $2 ELSE p.failed_at END,
                cancelled_at = CASE WHEN x.status = 'cancelled' THEN $2 ELSE p.cancelled_at END,
                expired_at = CASE WHEN x.status = 'expired' THEN $2 ELSE p.expired_at END,
                provider_metadata = x.provider_metadata,
                updated_at = $2
           FROM jsonb_to_recordset($1) AS x(
                id uuid, expected_status text, status text, payment_method text,
                balance_amount numeric, balance_fee numeric, balance_currency text, exchange_rate numeric,
                payer_email text, payer_first_name text, payer_last_name text,
                payer_document_type text, payer_document text, payer_country text,
                failure_reason text, approved_at timestamptz, provider_metadata jsonb)
          WHERE p.id = x.id AND p.status = x.expected_status::payment_status
      RETURNING p.id",
    )
    .bind(database::jsonb(&rows)?)
    .bind(now)
    .fetch_all(conn)
    .await
}

/// One `payment_events` row.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Event {
    pub payment_id: Uuid,
    pub event_type: &'static str,
    pub from_status: Option<String>,
    pub to_status: Option<&'static str>,
    pub event_data: serde_json::Value,
}

pub(super) async fn insert_events(
    conn: &mut PgConnection,
    events: &[Event],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO payment_events (payment_id, event_type, from_status, to_status, event_data, created_at)
         SELECT x.payment_id, x.event_type::payment_event_type, x.from_status::payment_status,
                x.to_status::payment_status, x.event_data, $2
           FROM jsonb_to_recordset($1) AS x(payment_id uuid, event_type text, from_status text,
                                            to_status text, event_data jsonb)",
    )
    .bind(database::jsonb(&events)?)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failed sync to remember, with when to try again.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Backoff {
    pub payment_id: Uuid,
    pub failures: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: String,
}

pub(super) async fn record_failures(
    pool: &PgPool,
    rows: &[Backoff],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO payment_sync_state (payment_id, failures, next_attempt_at, last_error, updated_at)
         SELECT x.payment_id, x.failures, x.next_attempt_at, x.last_error, $2
           FROM jsonb_to_recordset($1) AS x(payment_id uuid, failures int, next_attempt_at timestamptz, last_error text)
         ON CONFLICT (payment_id) DO UPDATE SET
                failures = EXCLUDED.failures, next_attempt_at = EXCLUDED.next_attempt_at,
                last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at",
    )
    .bind(database::jsonb(&rows)?)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the backoff of payments that synced.
pub(super) async fn clear_failures(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM payment_sync_state WHERE payment_id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// An order, locked, with what its transitions and notifications need.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct LockedOrder {
    pub id: Uuid,
    pub status: OrderStatus,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub total_amount: Decimal,
    pub subtotal_amount: Decimal,
    pub platform_commission: Decimal,
    pub vat_on_commission: Decimal,
    pub currency: String,
    pub event_name: String,
    pub event_start_date: DateTime<Utc>,
    pub event_end_date: DateTime<Utc>,
    pub platform: String,
    pub qr_timing: Option<String>,
    pub venue_name: Option<String>,
    pub venue_address: Option<String>,
    pub venue_country: Option<String>,
}

const LOCK_ORDERS: &str = "SELECT o.id, o.status, o.user_id, o.created_at, o.total_amount,
            o.subtotal_amount, o.platform_commission, o.vat_on_commission, o.currency::text AS currency,
            COALESCE(NULLIF(e.name, ''), 'el evento') AS event_name, e.event_start_date, e.event_end_date, e.platform,
            e.qr_availability_timing::text AS qr_timing, v.name AS venue_name, v.address AS venue_address,
            v.country AS venue_country
       FROM orders o
       JOIN events e ON e.id = o.event_id
  LEFT JOIN event_venues v ON v.id = e.venue_id
      WHERE o.id = ANY($1) AND o.deleted_at IS NULL";

/// Locks orders (waiting for other writers) and reads them.
pub(super) async fn lock_orders(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> sqlx::Result<Vec<LockedOrder>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "{LOCK_ORDERS} ORDER BY o.id FOR UPDATE OF o"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Locks the pending ones among `ids` that nobody else holds (a webhook may be working
/// on one; the next run gets it).
pub(super) async fn lock_pending_orders_skip_locked(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> sqlx::Result<Vec<LockedOrder>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "{LOCK_ORDERS} AND o.status = 'pending' ORDER BY o.id FOR UPDATE OF o SKIP LOCKED"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Locks a payment row and returns its current status.
pub(super) async fn lock_payment(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT status::text FROM payments WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Sets the status of orders (the caller holds their locks and checked they are pending).
pub(super) async fn set_order_status(
    conn: &mut PgConnection,
    ids: &[Uuid],
    status: OrderStatus,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET status = $2::order_status, updated_at = $3,
                confirmed_at = CASE WHEN $2 = 'confirmed' THEN $3 ELSE confirmed_at END,
                cancelled_at = CASE WHEN $2 IN ('cancelled', 'expired') THEN $3 ELSE cancelled_at END
          WHERE id = ANY($1)",
    )
    .bind(ids)
    .bind(status.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Soft-deletes the active reservations of orders: releases their tickets (or, after a
/// confirmation, retires the reservation).
pub(super) async fn release_reservations(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE order_ticket_reservations SET deleted_at = $2, updated_at = $2
          WHERE order_id = ANY($1) AND deleted_at IS NULL",
    )
    .bind(order_ids)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A ticket the confirmed order bought.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct SoldTicket {
    pub id: Uuid,
    pub listing_id: Uuid,
    pub price: Decimal,
    pub seller_user_id: Uuid,
    pub currency: String,
    pub has_document: bool,
}

/// Marks the order's reserved tickets sold and returns them with their seller.
pub(super) async fn sell_reserved_tickets(
    conn: &mut PgConnection,
    order_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<SoldTicket>> {
    sqlx::query_as(
        "UPDATE listing_tickets lt SET sold_at = $2, updated_at = $2
           FROM listings l, event_ticket_waves w
          WHERE lt.id IN (SELECT listing_ticket_id FROM order_ticket_reservations
                           WHERE order_id = $1 AND deleted_at IS NULL)
            AND l.id = lt.listing_id AND w.id = l.ticket_wave_id
      RETURNING lt.id, lt.listing_id, lt.price, l.publisher_user_id AS seller_user_id,
                w.currency::text AS currency,
                EXISTS (SELECT 1 FROM ticket_documents d
                         WHERE d.ticket_id = lt.id AND d.is_primary AND d.deleted_at IS NULL) AS has_document",
    )
    .bind(order_id)
    .bind(now)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Earning {
    pub seller_user_id: Uuid,
    pub listing_ticket_id: Uuid,
    pub seller_amount: Decimal,
    pub currency: String,
}

/// Inserts pending earnings, skipping tickets that already have an active one (the
/// partial unique index the original relies on).
pub(super) async fn insert_earnings(
    conn: &mut PgConnection,
    rows: &[Earning],
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "INSERT INTO seller_earnings (seller_user_id, listing_ticket_id, seller_amount, currency, status, created_at, updated_at)
         SELECT x.seller_user_id, x.listing_ticket_id, x.seller_amount, x.currency::event_ticket_currency, 'pending', $2, $2
           FROM jsonb_to_recordset($1) AS x(seller_user_id uuid, listing_ticket_id uuid, seller_amount numeric, currency text)
         ON CONFLICT (listing_ticket_id)
            WHERE status IN ('pending', 'available', 'retained', 'paid_out', 'payout_requested') AND deleted_at IS NULL
         DO NOTHING",
    )
    .bind(database::jsonb(&rows)?)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Marks listings sold whose every live ticket is sold.
pub(super) async fn close_sold_out_listings(
    conn: &mut PgConnection,
    listing_ids: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE listings l SET sold_at = $2, updated_at = $2
          WHERE l.id = ANY($1) AND l.sold_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM listing_tickets t
                             WHERE t.listing_id = l.id AND t.deleted_at IS NULL AND t.sold_at IS NULL)",
    )
    .bind(listing_ids)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderItem {
    pub id: Uuid,
    pub ticket_wave_name: String,
    pub quantity: i32,
    pub price_per_ticket: Decimal,
    pub subtotal: Decimal,
    pub currency: String,
}

pub(super) async fn order_items(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Vec<OrderItem>> {
    sqlx::query_as(
        "SELECT oi.id, COALESCE(NULLIF(w.name, ''), 'Entrada') AS ticket_wave_name, oi.quantity, oi.price_per_ticket, oi.subtotal,
                w.currency::text AS currency
           FROM order_items oi JOIN event_ticket_waves w ON w.id = oi.ticket_wave_id
          WHERE oi.order_id = $1 AND oi.deleted_at IS NULL
       ORDER BY oi.created_at, oi.id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// Pending orders that time or their payments have closed, oldest first.
pub(super) async fn expirable_orders(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT o.id FROM orders o
          WHERE o.status = 'pending' AND o.deleted_at IS NULL AND ({EXPIRABLE})
       ORDER BY o.created_at ASC LIMIT $2"
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Why an order expires: no payment and its reservation elapsed, or every payment
/// ended without paying. `$1` is now. A pending payment keeps an order alive however
/// long it takes (offline methods can stay pending for 72 h).
const EXPIRABLE: &str = "(o.reservation_expires_at < $1
          AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.deleted_at IS NULL))
      OR (EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.deleted_at IS NULL)
          AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.deleted_at IS NULL
                             AND p.status NOT IN ('expired', 'failed', 'cancelled')))";

/// Expires the locked orders that are still expirable, judged after the locks were
/// taken; returns them with the reason.
pub(super) async fn expire_orders(
    conn: &mut PgConnection,
    locked: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, bool)>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE orders o SET status = 'expired', cancelled_at = $1, updated_at = $1
          WHERE o.id = ANY($2) AND o.status = 'pending' AND ({EXPIRABLE})
      RETURNING o.id, EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.deleted_at IS NULL) AS had_payments"
    )))
    .bind(now)
    .bind(locked)
    .fetch_all(conn)
    .await
}
