//! The SQL of check-payout-hold-periods. Every state change is guarded by the row's
//! current status and made under its row lock, so a second run (or the API) acting on
//! the same earnings at the same instant changes nothing twice.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

/// A pending earning of an ended event whose ticket, sold on a confirmed order, never
/// got a document.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Undelivered {
    pub earning_id: Uuid,
    pub seller_user_id: Uuid,
    pub reservation_id: Uuid,
    pub buyer_user_id: Uuid,
    pub ticket_price: Decimal,
    pub order_currency: String,
    pub event_name: String,
}

/// Up to `limit` undelivered earnings, `skip` left out (rows that failed this run), with
/// the original's filters (apps/backend/src/repositories/seller-earnings
/// `getTicketsWithMissingDocumentsAfterEventEnd`): a soft-deleted earning or listing
/// ticket is not acted on. The reservation's `deleted_at` is not looked at: a confirmed
/// sale's reservation is soft-deleted, as in the original.
pub(super) async fn undelivered(
    pool: &PgPool,
    now: DateTime<Utc>,
    skip: &[Uuid],
    limit: i64,
) -> sqlx::Result<Vec<Undelivered>> {
    sqlx::query_as(
        "SELECT DISTINCT ON (se.id) se.id AS earning_id, se.seller_user_id, r.id AS reservation_id,
                o.user_id AS buyer_user_id, lt.price AS ticket_price,
                o.currency::text AS order_currency, e.name AS event_name
           FROM seller_earnings se
           JOIN listing_tickets lt ON lt.id = se.listing_ticket_id
           JOIN listings l ON l.id = lt.listing_id
           JOIN event_ticket_waves w ON w.id = l.ticket_wave_id
           JOIN events e ON e.id = w.event_id
           JOIN order_ticket_reservations r ON r.listing_ticket_id = lt.id AND r.status = 'active'
           JOIN orders o ON o.id = r.order_id AND o.status = 'confirmed'
          WHERE se.status = 'pending' AND se.deleted_at IS NULL AND lt.deleted_at IS NULL
            AND e.event_end_date <= $1
            AND NOT (se.id = ANY($2))
            AND NOT EXISTS (SELECT 1 FROM ticket_documents d
                             WHERE d.ticket_id = lt.id AND d.is_primary AND d.deleted_at IS NULL)
       ORDER BY se.id, r.id
          LIMIT $3",
    )
    .bind(now)
    .bind(skip)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Retains the earning and cancels its reservation, if all that made it undelivered
/// still holds under the row lock (still pending, still no document, the sale still
/// active). False if another writer changed any of it first.
pub(super) async fn retain(
    conn: &mut PgConnection,
    u: &Undelivered,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let retained = sqlx::query(
        "UPDATE seller_earnings se
            SET status = 'retained', retained_reason = 'missing_document', updated_at = $2
          WHERE se.id = $1 AND se.status = 'pending' AND se.deleted_at IS NULL
            AND EXISTS (SELECT 1 FROM listing_tickets lt
                         WHERE lt.id = se.listing_ticket_id AND lt.deleted_at IS NULL)
            AND NOT EXISTS (SELECT 1 FROM ticket_documents d
                             WHERE d.ticket_id = se.listing_ticket_id AND d.is_primary
                               AND d.deleted_at IS NULL)
            AND EXISTS (SELECT 1 FROM order_ticket_reservations r
                          JOIN orders o ON o.id = r.order_id AND o.status = 'confirmed'
                         WHERE r.id = $3 AND r.status = 'active')",
    )
    .bind(u.earning_id)
    .bind(now)
    .bind(u.reservation_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if retained == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE order_ticket_reservations SET status = 'cancelled', updated_at = $2
          WHERE id = $1 AND status = 'active'",
    )
    .bind(u.reservation_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Opens the support case for the reservation (a report and its pending refund) unless
/// one is open already; the new report's id.
pub(super) async fn open_case(
    conn: &mut PgConnection,
    u: &Undelivered,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    let report: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO ticket_reports (case_type, entity_type, entity_id, status, reported_by_user_id,
                                     source, created_at, updated_at)
         SELECT 'ticket_not_received', 'order_ticket_reservation', $1, 'awaiting_support', $2,
                'auto_missing_document', $3, $3
          WHERE NOT EXISTS (SELECT 1 FROM ticket_reports
                             WHERE entity_type = 'order_ticket_reservation' AND entity_id = $1
                               AND status <> 'closed')
      RETURNING id",
    )
    .bind(u.reservation_id)
    .bind(u.buyer_user_id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(report) = report else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO ticket_report_refunds (ticket_report_id, order_ticket_reservation_id, refund_status,
                                            refund_amount, currency, created_at, updated_at)
         VALUES ($1, $2, 'pending', $3, $4::event_ticket_currency, $5, $5)",
    )
    .bind(report)
    .bind(u.reservation_id)
    .bind(u.ticket_price)
    .bind(&u.order_currency)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(Some(report))
}

/// Pending, not deleted, its ticket not deleted, and its event ended at least the hold
/// ($2 hours) before $1.
const HELD_LONG_ENOUGH: &str = "se.status = 'pending' AND se.deleted_at IS NULL
    AND EXISTS (SELECT 1 FROM listing_tickets lt
                  JOIN listings l ON l.id = lt.listing_id
                  JOIN event_ticket_waves w ON w.id = l.ticket_wave_id
                  JOIN events e ON e.id = w.event_id
                 WHERE lt.id = se.listing_ticket_id AND lt.deleted_at IS NULL
                   AND e.event_end_date + make_interval(hours => $2) <= $1)";

/// No report still open on the sale: on its order or reservation (as the original), or
/// on its listing or listing ticket (which the original did not look at).
const NO_OPEN_REPORT: &str = "NOT EXISTS (
    SELECT 1 FROM listing_tickets lt
 LEFT JOIN order_ticket_reservations r ON r.listing_ticket_id = lt.id
      JOIN ticket_reports tr ON tr.status <> 'closed' AND (
               (tr.entity_type = 'order_ticket_reservation' AND tr.entity_id = r.id)
            OR (tr.entity_type = 'order' AND tr.entity_id = r.order_id)
            OR (tr.entity_type = 'listing_ticket' AND tr.entity_id = lt.id)
            OR (tr.entity_type = 'listing' AND tr.entity_id = lt.listing_id))
     WHERE lt.id = se.listing_ticket_id)";

/// Up to `limit` earnings whose hold has passed with no open report, `skip` left out;
/// the longest-held first, as the original orders them (so the same earnings share a
/// batch and its `seller_earnings_available`).
pub(super) async fn releasable(
    pool: &PgPool,
    now: DateTime<Utc>,
    hold_hours: i32,
    skip: &[Uuid],
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT se.id FROM seller_earnings se
          WHERE {HELD_LONG_ENOUGH} AND {NO_OPEN_REPORT} AND NOT (se.id = ANY($3))
       ORDER BY (SELECT e.event_end_date FROM listing_tickets lt
                   JOIN listings l ON l.id = lt.listing_id
                   JOIN event_ticket_waves w ON w.id = l.ticket_wave_id
                   JOIN events e ON e.id = w.event_id
                  WHERE lt.id = se.listing_ticket_id), se.id
          LIMIT $4"
    )))
    .bind(now)
    .bind(hold_hours)
    .bind(skip)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// An earning made available.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Released {
    pub seller_user_id: Uuid,
    pub seller_amount: Decimal,
    pub currency: String,
}

/// Makes `ids` available where they still qualify (checked again under the row locks);
/// the ones this call released.
pub(super) async fn release(
    conn: &mut PgConnection,
    ids: &[Uuid],
    now: DateTime<Utc>,
    hold_hours: i32,
) -> sqlx::Result<Vec<Released>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE seller_earnings se SET status = 'available', updated_at = $1
          WHERE se.id = ANY($3) AND {HELD_LONG_ENOUGH} AND {NO_OPEN_REPORT}
      RETURNING se.seller_user_id, se.seller_amount, se.currency::text AS currency"
    )))
    .bind(now)
    .bind(hold_hours)
    .bind(ids)
    .fetch_all(conn)
    .await
}
