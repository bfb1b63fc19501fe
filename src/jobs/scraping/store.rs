//! Writing scraped events: one transaction per event, so a bad event costs only itself.
//!
//! Events are upserted on `external_id` (a soft-deleted event that reappears is
//! restored), but never across platforms: an id another platform already owns is an
//! error, not an overwrite. Slugs are chosen once, when the event is first stored, and
//! kept. Waves are upserted on `(event_id, external_id)`; a wave that disappeared from
//! the site (or became free) is marked unavailable, not deleted, since orders and
//! listings may point at it. The statements are in [`queries`](super::queries).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::model::ScrapedEvent;
use super::queries::{self, Stored};
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
    let existing = queries::lock_event(&mut tx, &event.external_id).await?;
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
    let (id, slug) = queries::upsert_event(&mut tx, event, venue_id, slug.as_deref(), now).await?;
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
        queries::upsert_wave(&mut *conn, id, wave, now).await?;
    }
    let kept: Vec<&str> = priced.iter().map(|w| w.external_id.as_str()).collect();
    queries::unavailable_waves_except(&mut *conn, id, &kept, now).await?;
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
    let taken = queries::taken_slugs(tx, &base).await?;
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
