//! The SQL of notify-upload-availability: listings with tickets still lacking a
//! document, and the once-only reminder.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::notify::{self, Notification};

/// A seller's listing for an event within the milestones' reach, with its tickets
/// (sold or not, as the original) that have no primary active document.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Listing {
    pub listing_id: Uuid,
    pub seller_user_id: Uuid,
    pub event_name: String,
    pub event_start_date: DateTime<Utc>,
    pub qr_availability_timing: Option<String>,
    pub venue_country: Option<String>,
    pub tickets_without_document: i64,
}

/// Listings whose event starts after `now` and no later than the largest milestone's
/// band, one row per (seller, listing).
pub(super) async fn listings(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<Vec<Listing>> {
    sqlx::query_as(
        "SELECT l.id AS listing_id, l.publisher_user_id AS seller_user_id,
                COALESCE(NULLIF(e.name, ''), 'el evento') AS event_name,
                e.event_start_date, e.qr_availability_timing::text AS qr_availability_timing,
                v.country AS venue_country, count(*) AS tickets_without_document
           FROM listing_tickets t
           JOIN listings l ON l.id = t.listing_id AND l.deleted_at IS NULL
           JOIN event_ticket_waves w ON w.id = l.ticket_wave_id
           JOIN events e ON e.id = w.event_id
      LEFT JOIN event_venues v ON v.id = e.venue_id
          WHERE t.deleted_at IS NULL
            AND e.event_start_date > $1
            AND e.event_start_date <= $1 + interval '72 hours 30 minutes'
            AND NOT EXISTS (SELECT 1 FROM ticket_documents d
                             WHERE d.ticket_id = t.id AND d.is_primary AND d.deleted_at IS NULL)
       GROUP BY l.id, l.publisher_user_id, e.name, e.event_start_date, e.qr_availability_timing,
                v.country
       ORDER BY e.event_start_date, l.id",
    )
    .bind(now)
    .fetch_all(pool)
    .await
}

/// What became of one due reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reminded {
    /// Inserted now, with its notification.
    Sent,
    /// This or another run already sent it.
    AlreadySent,
    /// The original runner sent it before the cutover (its notification is there).
    SentByTheOriginal,
}

/// Records the reminder and inserts its notification, in one transaction, unless it was
/// sent before. Two runs at once: the second waits on the first's row, then finds it.
pub(super) async fn remind(
    pool: &PgPool,
    listing: &Listing,
    milestone: u32,
    notification: &Notification,
    now: DateTime<Utc>,
) -> sqlx::Result<Reminded> {
    let mut tx = pool.begin().await?;
    let recorded = sqlx::query(
        "INSERT INTO document_reminders (listing_id, seller_user_id, milestone_hours, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(listing.listing_id)
    .bind(listing.seller_user_id)
    .bind(milestone as i16)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if recorded == 0 {
        tx.rollback().await?;
        return Ok(Reminded::AlreadySent);
    }
    let by_original: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM notifications
                         WHERE user_id = $1 AND type = 'document_reminder' AND deleted_at IS NULL
                           AND metadata->>'listingId' = $2::text
                           AND metadata->>'hoursUntilEvent' = $3::text)",
    )
    .bind(listing.seller_user_id)
    .bind(listing.listing_id)
    .bind(milestone.to_string())
    .fetch_one(&mut *tx)
    .await?;
    if !by_original {
        notify::insert(&mut tx, std::slice::from_ref(notification), now).await?;
    }
    tx.commit().await?;
    Ok(if by_original {
        Reminded::SentByTheOriginal
    } else {
        Reminded::Sent
    })
}
