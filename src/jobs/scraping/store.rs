//! Writing scraped events: one transaction per event, so a bad event costs only itself.
//!
//! Events are upserted on `external_id` (a soft-deleted event that reappears is
//! restored), but never across platforms: an id another platform already owns is an
//! error, not an overwrite. Slugs are chosen once, when the event is first stored, and
//! kept. Waves are upserted on `(event_id, external_id)`; a wave that disappeared from
//! the site (or became free) is marked unavailable, not deleted, since orders and
//! listings may point at it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::model::ScrapedEvent;
use super::text;

/// What storing one event did.
#[derive(Debug, Clone)]
pub(super) struct Upserted {
    pub id: Uuid,
    pub slug: String,
    pub created: bool,
    pub restored: bool,
    /// New, restored, or any field its page shows differs from what was stored.
    pub changed: bool,
}

/// The stored event, as far as its page shows it.
#[derive(sqlx::FromRow)]
struct Stored {
    platform: String,
    deleted: bool,
    name: String,
    description: Option<String>,
    event_start_date: DateTime<Utc>,
    event_end_date: DateTime<Utc>,
    venue_id: Option<Uuid>,
    external_url: String,
    qr: Option<String>,
}

impl Stored {
    fn differs(&self, e: &ScrapedEvent, venue_id: Option<Uuid>) -> bool {
        self.deleted
            || self.name != e.name
            || self.description != e.description
            || self.event_start_date != e.start
            || self.event_end_date != e.end
            // No venue this run (its lookup failed) keeps the stored one.
            || (venue_id.is_some() && self.venue_id != venue_id)
            || self.external_url != e.external_url
            || self.qr.as_deref() != e.qr_availability_timing
    }
}

pub(super) async fn upsert(
    pool: &PgPool,
    event: &ScrapedEvent,
    venue_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> anyhow::Result<Upserted> {
    let mut tx = pool.begin().await?;
    let existing: Option<Stored> = sqlx::query_as(
        "SELECT platform, deleted_at IS NOT NULL AS deleted, name, description, event_start_date,
                event_end_date, venue_id, external_url, qr_availability_timing::text AS qr
           FROM events WHERE external_id = $1 FOR UPDATE",
    )
    .bind(&event.external_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(stored) = &existing
        && stored.platform != event.platform
    {
        anyhow::bail!(
            "external id `{}` already belongs to a {} event; not overwritten",
            event.external_id,
            stored.platform
        );
    }
    let slug = match &existing {
        Some(_) => None,
        None => Some(unique_slug(&mut tx, event).await?),
    };
    let (id, slug) = event_row(&mut tx, event, venue_id, slug.as_deref(), now).await?;
    waves_rows(&mut tx, id, event, now).await?;
    tx.commit().await?;
    Ok(Upserted {
        id,
        slug,
        created: existing.is_none(),
        restored: existing.as_ref().is_some_and(|s| s.deleted),
        changed: existing.as_ref().is_none_or(|s| s.differs(event, venue_id)),
    })
}

/// Inserts the event, or updates it (restoring it if deleted); its id and slug.
async fn event_row(
    conn: &mut PgConnection,
    event: &ScrapedEvent,
    venue_id: Option<Uuid>,
    slug: Option<&str>,
    now: DateTime<Utc>,
) -> sqlx::Result<(Uuid, String)> {
    sqlx::query_as(
        "INSERT INTO events (external_id, platform, name, slug, description, event_start_date,
                             event_end_date, venue_id, external_url, qr_availability_timing,
                             status, created_at, updated_at, last_scraped_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::qr_availability_timing, 'active', $11, $11, $11)
         ON CONFLICT (external_id) DO UPDATE SET
             name = EXCLUDED.name, description = EXCLUDED.description,
             event_start_date = EXCLUDED.event_start_date, event_end_date = EXCLUDED.event_end_date,
             venue_id = COALESCE(EXCLUDED.venue_id, events.venue_id), external_url = EXCLUDED.external_url,
             qr_availability_timing = EXCLUDED.qr_availability_timing,
             status = 'active', deleted_at = NULL, updated_at = $11, last_scraped_at = $11
         RETURNING id, slug",
    )
    .bind(&event.external_id)
    .bind(event.platform)
    .bind(&event.name)
    .bind(slug.unwrap_or(""))
    .bind(&event.description)
    .bind(event.start)
    .bind(event.end)
    .bind(venue_id)
    .bind(&event.external_url)
    .bind(event.qr_availability_timing)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// The event's priced waves inserted or updated; its other waves no longer available.
async fn waves_rows(
    conn: &mut PgConnection,
    id: Uuid,
    event: &ScrapedEvent,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let priced: Vec<_> = event
        .waves
        .iter()
        .filter(|w| w.face_value > Decimal::ZERO)
        .collect();
    for wave in &priced {
        sqlx::query(
            "INSERT INTO event_ticket_waves (event_id, external_id, name, description, face_value,
                                             currency, is_sold_out, is_available, status,
                                             created_at, updated_at, last_scraped_at)
             VALUES ($1, $2, $3, $4, $5, $6::event_ticket_currency, $7, $8, 'active', $9, $9, $9)
             ON CONFLICT (event_id, external_id) DO UPDATE SET
                 name = EXCLUDED.name, description = EXCLUDED.description,
                 face_value = EXCLUDED.face_value, currency = EXCLUDED.currency,
                 is_sold_out = EXCLUDED.is_sold_out, is_available = EXCLUDED.is_available,
                 status = 'active', deleted_at = NULL, updated_at = $9, last_scraped_at = $9",
        )
        .bind(id)
        .bind(&wave.external_id)
        .bind(&wave.name)
        .bind(&wave.description)
        .bind(wave.face_value)
        .bind(wave.currency)
        .bind(wave.sold_out)
        .bind(wave.available)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    let kept: Vec<&str> = priced.iter().map(|w| w.external_id.as_str()).collect();
    sqlx::query(
        "UPDATE event_ticket_waves SET is_available = false, updated_at = $3
         WHERE event_id = $1 AND deleted_at IS NULL AND is_available
           AND NOT (external_id = ANY($2))",
    )
    .bind(id)
    .bind(&kept)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `<name> <start date in Uruguay>` as a slug, with `-2`, `-3`… if taken (by any
/// event, deleted ones included).
async fn unique_slug(
    tx: &mut Transaction<'_, Postgres>,
    event: &ScrapedEvent,
) -> sqlx::Result<String> {
    let day = event
        .start
        .with_timezone(&text::uruguay())
        .format("%Y-%m-%d");
    let mut base = text::slugify(&format!("{} {day}", event.name));
    base.truncate(560);
    let taken: Vec<String> =
        sqlx::query_scalar("SELECT slug FROM events WHERE slug = $1 OR slug LIKE $1 || '-%'")
            .bind(&base)
            .fetch_all(&mut **tx)
            .await?;
    if !taken.contains(&base) {
        return Ok(base);
    }
    let mut n = 2;
    loop {
        let candidate = format!("{base}-{n}");
        if !taken.contains(&candidate) {
            return Ok(candidate);
        }
        n += 1;
    }
}
