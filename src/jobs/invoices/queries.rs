//! The SQL of the invoices job: the order an invoice bills, and the `invoices` row
//! through its life (pending, then issued with FEU's answer and the PDF's path, in the
//! transaction that also queues its email).

use crate::database;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::statuses::{InvoiceStatus, OrderStatus};

/// The order an invoice bills.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Order {
    pub id: Uuid,
    pub status: OrderStatus,
    pub buyer_user_id: Uuid,
    pub currency: String,
    pub total_amount: Decimal,
    pub subtotal_amount: Decimal,
    pub platform_commission: Decimal,
    pub vat_on_commission: Decimal,
    pub event_name: String,
}

pub(super) async fn order(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Order>> {
    sqlx::query_as(
        "SELECT o.id, o.status, o.user_id AS buyer_user_id, o.currency::text AS currency,
                o.total_amount, o.subtotal_amount, o.platform_commission, o.vat_on_commission,
                COALESCE(NULLIF(e.name, ''), 'el evento') AS event_name
           FROM orders o JOIN events e ON e.id = o.event_id
          WHERE o.id = $1 AND o.deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One line of the buyer's invoice email.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Item {
    pub ticket_wave_name: String,
    pub quantity: i32,
    pub price_per_ticket: Decimal,
    pub subtotal: Decimal,
}

pub(super) async fn items(pool: &PgPool, order: Uuid) -> sqlx::Result<Vec<Item>> {
    sqlx::query_as(
        "SELECT COALESCE(NULLIF(w.name, ''), 'Entrada') AS ticket_wave_name, i.quantity, i.price_per_ticket, i.subtotal
           FROM order_items i JOIN event_ticket_waves w ON w.id = i.ticket_wave_id
          WHERE i.order_id = $1 AND i.deleted_at IS NULL
       ORDER BY i.created_at, i.id",
    )
    .bind(order)
    .fetch_all(pool)
    .await
}

/// One of the seller's tickets in the order: its price, and the earning sync-payments
/// stored for it when there is one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct SoldTicket {
    pub price: Decimal,
    pub seller_amount: Option<Decimal>,
}

/// The seller's tickets in the order, with the original's filters
/// (apps/backend/src/repositories/order-ticket-reservations `getByOrderIdWithSellerAndPrice`):
/// a ticket or listing soft-deleted after the sale is not billed. A confirmed sale's
/// reservation is soft-deleted, so its `deleted_at` is not looked at.
pub(super) async fn seller_tickets(
    pool: &PgPool,
    order: Uuid,
    seller: Uuid,
) -> sqlx::Result<Vec<SoldTicket>> {
    sqlx::query_as(
        "SELECT t.price,
                (SELECT se.seller_amount FROM seller_earnings se
                  WHERE se.listing_ticket_id = t.id AND se.seller_user_id = $2
                    AND se.deleted_at IS NULL
               ORDER BY se.created_at DESC LIMIT 1) AS seller_amount
           FROM order_ticket_reservations r
           JOIN listing_tickets t ON t.id = r.listing_ticket_id AND t.deleted_at IS NULL
           JOIN listings l ON l.id = t.listing_id AND l.deleted_at IS NULL
          WHERE r.order_id = $1 AND l.publisher_user_id = $2
       ORDER BY t.id",
    )
    .bind(order)
    .bind(seller)
    .fetch_all(pool)
    .await
}

/// An invoice row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Invoice {
    pub id: Uuid,
    pub status: InvoiceStatus,
    pub pdf_storage_path: Option<String>,
}

/// What an invoice bills, for its row.
pub(super) struct Amounts {
    pub base: Decimal,
    pub vat: Decimal,
    pub currency: String,
}

/// The invoice row for `external_id`, created `pending` if there is none yet.
pub(super) async fn pending(
    pool: &PgPool,
    order: Uuid,
    party: &str,
    seller: Option<Uuid>,
    external_id: &str,
    amounts: &Amounts,
    now: DateTime<Utc>,
) -> sqlx::Result<Invoice> {
    sqlx::query(
        "INSERT INTO invoices (order_id, party, seller_user_id, status, external_id, base_amount,
                               vat_amount, total_amount, currency, created_at)
         VALUES ($1, $2::invoice_party, $3, 'pending', $4, $5, $6, $5 + $6, $7::event_ticket_currency, $8)
         ON CONFLICT (external_id) DO NOTHING",
    )
    .bind(order)
    .bind(party)
    .bind(seller)
    .bind(external_id)
    .bind(amounts.base)
    .bind(amounts.vat)
    .bind(&amounts.currency)
    .bind(now)
    .execute(pool)
    .await?;
    sqlx::query_as("SELECT id, status, pdf_storage_path FROM invoices WHERE external_id = $1")
        .bind(external_id)
        .fetch_one(pool)
        .await
}

/// Whether the invoice for `external_id` is issued with its PDF stored.
pub(super) async fn already_issued(pool: &PgPool, external_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM invoices WHERE external_id = $1 AND status = 'issued'
                                                AND pdf_storage_path IS NOT NULL)",
    )
    .bind(external_id)
    .fetch_one(pool)
    .await
}

/// Marks the invoice issued with FEU's answer and its PDF's path. False if it was
/// issued already (by a run that got there first).
pub(super) async fn issued(
    conn: &mut PgConnection,
    invoice: Uuid,
    provider_response: &Value,
    pdf_path: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE invoices SET status = 'issued', provider_response = $2, pdf_storage_path = $3,
                issued_at = $4, last_error = NULL
          WHERE id = $1 AND status <> 'issued'",
    )
    .bind(invoice)
    .bind(provider_response)
    .bind(pdf_path)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records why the last attempt at an invoice failed.
pub(super) async fn failed_attempt(
    pool: &PgPool,
    external_id: &str,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE invoices SET last_error = $2 WHERE external_id = $1 AND status <> 'issued'",
    )
    .bind(external_id)
    .bind(database::storable(error))
    .execute(pool)
    .await?;
    Ok(())
}
