//! Debounced batches: notifications the app collects over a window (documents uploaded
//! for one order, earnings retained for one seller and event) and sends as one.
//!
//! A closed window is merged into one pending notification, delivered by the same run:
//! `document_uploaded` becomes `document_uploaded_batch` (count and numbered tickets),
//! `seller_earnings_retained` sums its ticket counts, any other type keeps its last
//! item. Batches are claimed with `FOR UPDATE SKIP LOCKED`, one transaction each. Each
//! merged item is stamped `merged_at`; an item the app appended while its batch was
//! being merged (the app does not lock the batch) is found later, unstamped under a
//! closed batch, and moved to a new batch, so it is sent, not lost.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::notify::metadata;

#[derive(sqlx::FromRow)]
struct Batch {
    id: Uuid,
    user_id: Uuid,
    notification_type: String,
    channels: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct Item {
    id: Uuid,
    metadata: Value,
    actions: Option<Value>,
}

/// What one pass over the batches did.
#[derive(Debug, Default)]
pub(super) struct Merged {
    pub processed: u64,
    pub cancelled: u64,
    pub failed: u64,
    pub orphans_moved: u64,
}

/// Merges every closed batch (up to `limit`) into a notification.
pub(super) async fn merge_closed(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<Merged> {
    let mut merged = Merged {
        orphans_moved: rebatch_orphans(pool, now).await?,
        ..Merged::default()
    };
    for _ in 0..limit {
        let mut tx = pool.begin().await?;
        let batch: Option<Batch> = sqlx::query_as(
            "SELECT id, user_id, notification_type::text AS notification_type, channels::text[] AS channels
               FROM notification_batches
              WHERE status = 'pending' AND window_ends_at <= $1
           ORDER BY window_ends_at, id
              LIMIT 1
                FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(batch) = batch else { break };
        let items: Vec<Item> = sqlx::query_as(
            "SELECT id, metadata, actions FROM notification_batch_items
              WHERE batch_id = $1 AND merged_at IS NULL ORDER BY created_at, id",
        )
        .bind(batch.id)
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
        if items.is_empty() {
            cancel(&mut tx, batch.id, &ids, now).await?;
            tx.commit().await?;
            merged.cancelled += 1;
            continue;
        }
        let (kind, metadata, actions) = merge(&batch.notification_type, &items);
        if let Err(reason) = metadata::validate(&kind, &metadata) {
            // Bad items from the app: nothing can be sent; say why and close the batch.
            // Its items are stamped too, or they would come back as orphans every run.
            tracing::error!(batch_id = %batch.id, error = %reason, "batch cannot be merged");
            cancel(&mut tx, batch.id, &ids, now).await?;
            tx.commit().await?;
            merged.failed += 1;
            continue;
        }
        let notification: Uuid = sqlx::query_scalar(
            "INSERT INTO notifications (user_id, type, channels, actions, metadata, status, created_at, updated_at)
             VALUES ($1, $2::notification_type, $3::notification_channel[], $4, $5, 'pending', $6, $6)
             RETURNING id",
        )
        .bind(batch.user_id)
        .bind(&kind)
        .bind(&batch.channels)
        .bind(actions)
        .bind(&metadata)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE notification_batch_items SET merged_at = $2 WHERE id = ANY($1)")
            .bind(&ids)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE notification_batches SET status = 'processed', final_notification_id = $2, updated_at = $3
              WHERE id = $1",
        )
        .bind(batch.id)
        .bind(notification)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        merged.processed += 1;
    }
    Ok(merged)
}

/// Closes a batch that yields no notification, stamping its items as handled.
async fn cancel(
    tx: &mut sqlx::PgConnection,
    batch: Uuid,
    items: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE notification_batch_items SET merged_at = $2 WHERE id = ANY($1)")
        .bind(items)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE notification_batches SET status = 'cancelled', updated_at = $2 WHERE id = $1",
    )
    .bind(batch)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The original's merge rules (mathfalcon/revendiste
/// apps/backend/src/cronjobs/process-pending-notifications.ts and
/// apps/backend/src/services/notifications/).
fn merge(kind: &str, items: &[Item]) -> (String, Value, Option<Value>) {
    let first = &items[0];
    let last = &items[items.len() - 1];
    match kind {
        "document_uploaded" => {
            let tickets: Vec<Value> = (1..=items.len())
                .map(|n| json!({ "ticketNumber": n.to_string(), "eventName": first.metadata["eventName"] }))
                .collect();
            (
                "document_uploaded_batch".to_string(),
                json!({
                    "type": "document_uploaded_batch",
                    "orderId": first.metadata["orderId"],
                    "eventName": first.metadata["eventName"],
                    "uploadedCount": items.len(),
                    "tickets": tickets,
                }),
                first.actions.clone(),
            )
        }
        "seller_earnings_retained" => {
            let total: u64 = items
                .iter()
                .filter_map(|i| i.metadata["ticketCount"].as_u64())
                .sum();
            let mut metadata = first.metadata.clone();
            metadata["ticketCount"] = json!(total);
            (
                "seller_earnings_retained".to_string(),
                metadata,
                first.actions.clone(),
            )
        }
        other => (
            other.to_string(),
            last.metadata.clone(),
            last.actions.clone(),
        ),
    }
}

/// Moves items that arrived under an already closed batch to a new batch of their own.
async fn rebatch_orphans(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let moved = sqlx::query(
        "WITH orphan_items AS (
             SELECT i.id AS item_id, b.debounce_key, b.user_id, b.notification_type, b.channels
               FROM notification_batch_items i JOIN notification_batches b ON b.id = i.batch_id
              WHERE i.merged_at IS NULL AND b.status <> 'pending'),
         groups AS (
             SELECT DISTINCT ON (debounce_key, user_id) debounce_key, user_id, notification_type, channels
               FROM orphan_items),
         fresh AS (
             INSERT INTO notification_batches (debounce_key, user_id, notification_type, channels,
                                               window_ends_at, status, created_at, updated_at)
             SELECT debounce_key, user_id, notification_type, channels, $1, 'pending', $1, $1 FROM groups
             RETURNING id, debounce_key, user_id)
         UPDATE notification_batch_items i SET batch_id = f.id
           FROM orphan_items o JOIN fresh f ON f.debounce_key = o.debounce_key AND f.user_id = o.user_id
          WHERE i.id = o.item_id",
    )
    .bind(now)
    .execute(pool)
    .await?;
    Ok(moved.rows_affected())
}
