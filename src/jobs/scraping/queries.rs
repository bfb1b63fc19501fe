//! Every SQL statement of the scraping job: events and their waves (store), venues
//! (venues), image rows (images) and the soft deletes of cleanup. A statement that is
//! part of a transaction takes the caller's connection; the caller begins and commits.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::images::Published;
use super::model::{ScrapedEvent, Wave};
use super::venues::Place;

// Events and waves (store).

/// The stored event, as far as its page shows it.
#[derive(sqlx::FromRow)]
pub(super) struct Stored {
    pub platform: String,
    pub deleted: bool,
    pub name: String,
    pub description: Option<String>,
    pub event_start_date: DateTime<Utc>,
    pub event_end_date: DateTime<Utc>,
    pub venue_id: Option<Uuid>,
    pub external_url: String,
    pub qr: Option<String>,
}

/// The event with this external id (deleted ones included), locked `FOR UPDATE` until
/// the caller's transaction ends.
pub(super) async fn lock_event(
    conn: &mut PgConnection,
    external_id: &str,
) -> sqlx::Result<Option<Stored>> {
    sqlx::query_as(
        "SELECT platform, deleted_at IS NOT NULL AS deleted, name, description, event_start_date,
                event_end_date, venue_id, external_url, qr_availability_timing::text AS qr
           FROM events WHERE external_id = $1 FOR UPDATE",
    )
    .bind(external_id)
    .fetch_optional(conn)
    .await
}

/// Inserts the event, or updates it (restoring it if deleted); its id and slug.
pub(super) async fn upsert_event(
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

/// Inserts the event's wave, or updates it (restoring it if deleted).
pub(super) async fn upsert_wave(
    conn: &mut PgConnection,
    event_id: Uuid,
    wave: &Wave,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
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
    .bind(event_id)
    .bind(&wave.external_id)
    .bind(&wave.name)
    .bind(&wave.description)
    .bind(wave.face_value)
    .bind(wave.currency)
    .bind(wave.sold_out)
    .bind(wave.available)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the event's live, available waves whose external id is not in `kept` as no
/// longer available.
pub(super) async fn unavailable_waves_except(
    conn: &mut PgConnection,
    event_id: Uuid,
    kept: &[&str],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE event_ticket_waves SET is_available = false, updated_at = $3
         WHERE event_id = $1 AND deleted_at IS NULL AND is_available
           AND NOT (external_id = ANY($2))",
    )
    .bind(event_id)
    .bind(kept)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The slugs, of any event (deleted ones included), that are `base` or start with
/// `base-`.
pub(super) async fn taken_slugs(conn: &mut PgConnection, base: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT slug FROM events WHERE slug = $1 OR slug LIKE $1 || '-%'")
        .bind(base)
        .fetch_all(conn)
        .await
}

// Venues.

/// Creates a venue in Uruguay from what the site shows; its id.
pub(super) async fn insert_venue(
    pool: &PgPool,
    name: &str,
    address: &str,
    city: &str,
    lat: Option<f64>,
    lng: Option<f64>,
    now: DateTime<Utc>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO event_venues (name, address, city, country, latitude, longitude,
                                   created_at, updated_at)
         VALUES ($1, $2, $3, 'Uruguay', $4::float8::numeric, $5::float8::numeric, $6, $6)
         RETURNING id",
    )
    .bind(name)
    .bind(address)
    .bind(city)
    .bind(lat)
    .bind(lng)
    .bind(now)
    .fetch_one(pool)
    .await
}

/// Marks the venue as checked now (its `updated_at`), changing nothing else.
pub(super) async fn mark_venue_checked(
    pool: &PgPool,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE event_venues SET updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// The venue other than `id` (deleted ones included) that has Google's place
/// `place_id`, and whether it is deleted.
pub(super) async fn other_venue_with_place(
    pool: &PgPool,
    place_id: &str,
    id: Uuid,
) -> sqlx::Result<Option<(Uuid, bool)>> {
    sqlx::query_as(
        "SELECT id, deleted_at IS NOT NULL FROM event_venues WHERE google_place_id = $1 AND id <> $2",
    )
    .bind(place_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Replaces the venue's name, address, city, region, country, place id and position
/// with Google's place.
pub(super) async fn update_venue_from_place(
    pool: &PgPool,
    id: Uuid,
    place: &Place,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    with_place(
        sqlx::query(
            "UPDATE event_venues SET name = $1, address = $2, city = $3, region = $4, country = $5,
                    google_place_id = $6, latitude = $7::float8::numeric,
                    longitude = $8::float8::numeric, updated_at = $9
              WHERE id = $10",
        ),
        place,
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Creates a venue from Google's place; its id, or `None` when a venue already has that
/// place id (`ON CONFLICT ... DO NOTHING`).
pub(super) async fn insert_venue_from_place(
    pool: &PgPool,
    place: &Place,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    let inserted: Option<Uuid> = with_place(
        sqlx::query(
            "INSERT INTO event_venues (name, address, city, region, country, google_place_id,
                                       latitude, longitude, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7::float8::numeric, $8::float8::numeric, $9, $9)
             ON CONFLICT (google_place_id) WHERE google_place_id IS NOT NULL DO NOTHING
             RETURNING id",
        ),
        place,
    )
    .bind(now)
    .fetch_optional(pool)
    .await?
    .map(|row| row.try_get("id"))
    .transpose()?;
    Ok(inserted)
}

/// The venue (deleted ones included) that has Google's place `place_id`.
pub(super) async fn venue_with_place(pool: &PgPool, place_id: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT id FROM event_venues WHERE google_place_id = $1")
        .bind(place_id)
        .fetch_optional(pool)
        .await
}

/// Binds a place's fields as `$1`..`$8`: name, address, city, region, country, place id,
/// latitude, longitude.
fn with_place<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    place: &'q Place,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&place.name)
        .bind(&place.address)
        .bind(&place.city)
        .bind(&place.region)
        .bind(&place.country)
        .bind(&place.place_id)
        .bind(place.lat)
        .bind(place.lng)
}

/// The live venue nearest to (`lat`, `lng`) within `within_metres`, and when it was
/// last updated: the box `lat ± dlat`, `lng ± dlng` narrows the search, the haversine
/// distance on a sphere of `earth_radius_metres` decides.
pub(super) async fn nearest_venue(
    pool: &PgPool,
    lat: f64,
    lng: f64,
    dlat: f64,
    dlng: f64,
    earth_radius_metres: f64,
    within_metres: f64,
) -> sqlx::Result<Option<(Uuid, DateTime<Utc>)>> {
    sqlx::query_as(
        "SELECT id, updated_at FROM (
             SELECT id, updated_at, 2 * $5 * asin(sqrt(
                 power(sin(radians(latitude::float8 - $1) / 2), 2)
                 + cos(radians($1)) * cos(radians(latitude::float8))
                   * power(sin(radians(longitude::float8 - $2) / 2), 2))) AS metres
             FROM event_venues
             WHERE deleted_at IS NULL AND latitude IS NOT NULL
               AND latitude BETWEEN $1 - $3 AND $1 + $3 AND longitude BETWEEN $2 - $4 AND $2 + $4
         ) near WHERE metres <= $6 ORDER BY metres LIMIT 1",
    )
    .bind(lat)
    .bind(lng)
    .bind(dlat)
    .bind(dlng)
    .bind(earth_radius_metres)
    .bind(within_metres)
    .fetch_optional(pool)
    .await
}

/// The oldest live venue with this name, or with this address when it is not empty,
/// ignoring case.
pub(super) async fn venue_by_name(
    pool: &PgPool,
    name: &str,
    address: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT id FROM event_venues
         WHERE deleted_at IS NULL AND (lower(name) = lower($1) OR (lower(address) = lower($2) AND $2 <> ''))
         ORDER BY created_at LIMIT 1",
    )
    .bind(name)
    .bind(address)
    .fetch_optional(pool)
    .await
}

// Images.

/// Inserts or updates (restoring it if deleted) the event's image row of
/// `image.image_type`, at `display_order`.
pub(super) async fn upsert_image(
    conn: &mut PgConnection,
    event_id: Uuid,
    image: &Published,
    display_order: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO event_images (event_id, image_type, url, thumbnail_url, display_order)
         VALUES ($1, $2::event_image_type, $3, $4, $5)
         ON CONFLICT (event_id, image_type) DO UPDATE
         SET url = EXCLUDED.url, thumbnail_url = EXCLUDED.thumbnail_url,
             display_order = EXCLUDED.display_order, deleted_at = NULL",
    )
    .bind(event_id)
    .bind(image.image_type)
    .bind(&image.url)
    .bind(&image.thumbnail_url)
    .bind(display_order)
    .execute(conn)
    .await?;
    Ok(())
}

// Cleanup: soft deletes (`deleted_at`, status `inactive`), each inside the caller's
// transaction.

/// Soft-deletes the live events of `platform` whose external id is in `ids`; their ids.
pub(super) async fn remove_events(
    conn: &mut PgConnection,
    platform: &str,
    ids: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "UPDATE events SET deleted_at = $1, status = 'inactive', updated_at = $1
         WHERE deleted_at IS NULL AND platform = $2 AND external_id = ANY($3) RETURNING id",
    )
    .bind(now)
    .bind(platform)
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// How many live, active events `platform` has.
pub(super) async fn count_active(pool: &PgPool, platform: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE platform = $1 AND deleted_at IS NULL AND status = 'active'",
    )
    .bind(platform)
    .fetch_one(pool)
    .await
}

/// Soft-deletes the live, active events of `platform` that have ended and whose
/// external id is not in `seen`; their ids.
pub(super) async fn remove_unseen_ended(
    conn: &mut PgConnection,
    platform: &str,
    seen: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "UPDATE events SET deleted_at = $1, status = 'inactive', updated_at = $1
         WHERE deleted_at IS NULL AND status = 'active' AND platform = $2
           AND event_end_date < $1 AND NOT (external_id = ANY($3)) RETURNING id",
    )
    .bind(now)
    .bind(platform)
    .bind(seen)
    .fetch_all(conn)
    .await
}

/// Soft-deletes every live event that has ended, on every platform; their ids.
pub(super) async fn remove_ended(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "UPDATE events SET deleted_at = $1, status = 'inactive', updated_at = $1
         WHERE deleted_at IS NULL AND event_end_date < $1 RETURNING id",
    )
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Soft-deletes the live waves of the events `event_ids`.
pub(super) async fn remove_waves(
    conn: &mut PgConnection,
    event_ids: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE event_ticket_waves SET deleted_at = $1, status = 'inactive', updated_at = $1
         WHERE deleted_at IS NULL AND event_id = ANY($2)",
    )
    .bind(now)
    .bind(event_ids)
    .execute(conn)
    .await?;
    Ok(())
}
