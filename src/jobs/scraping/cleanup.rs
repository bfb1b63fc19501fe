//! Removing events the sites no longer offer: soft deletes (`deleted_at`, status
//! `inactive`), each rule with its events' waves in one transaction.
//!
//! Guest-list and stale cleanup run only for a platform whose crawl was complete and
//! not truncated, because both act on what the crawl did *not* see. Stale cleanup also
//! refuses when the crawl found less than `SCRAPER_CLEANUP_MIN_RATIO` of the platform's
//! active events (a site that half-loaded must not empty the catalogue), and like the
//! original it only removes events that have ended; events that vanished from a
//! listing but are still to come are kept. Past events go on every run, all platforms.
//! The statements are in [`queries`](super::queries).

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::queries;

/// Soft-deletes the events `ids` (by external id) of `platform` that are guest lists.
pub(super) async fn guest_lists(
    pool: &PgPool,
    platform: &str,
    ids: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let removed = queries::remove_events(&mut tx, platform, ids, now).await?;
    with_waves(tx, removed, now).await
}

/// What stale cleanup decided.
#[derive(Debug, PartialEq)]
pub(super) enum Stale {
    Removed(u64),
    Skipped(String),
}

/// Soft-deletes ended events of `platform` that the crawl did not see (`seen`: valid
/// and empty-wave external ids), unless the crawl saw too little to be trusted.
pub(super) async fn stale(
    pool: &PgPool,
    platform: &str,
    seen: &[String],
    min_ratio: f64,
    now: DateTime<Utc>,
) -> sqlx::Result<Stale> {
    if seen.is_empty() {
        return Ok(Stale::Skipped("the crawl found no events".into()));
    }
    let active = queries::count_active(pool, platform).await?;
    let ratio = seen.len() as f64 / active.max(1) as f64;
    if ratio < min_ratio {
        return Ok(Stale::Skipped(format!(
            "the crawl found {} events against {active} active ({ratio:.2} < SCRAPER_CLEANUP_MIN_RATIO {min_ratio})",
            seen.len()
        )));
    }
    let mut tx = pool.begin().await?;
    let removed = queries::remove_unseen_ended(&mut tx, platform, seen, now).await?;
    Ok(Stale::Removed(with_waves(tx, removed, now).await?))
}

/// Soft-deletes every event that has ended, on every platform.
pub(super) async fn past(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let removed = queries::remove_ended(&mut tx, now).await?;
    with_waves(tx, removed, now).await
}

/// Soft-deletes the waves of the events just removed, and commits both.
async fn with_waves(
    mut tx: Transaction<'_, Postgres>,
    removed: Vec<Uuid>,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    queries::remove_waves(&mut tx, &removed, now).await?;
    tx.commit().await?;
    Ok(removed.len() as u64)
}
