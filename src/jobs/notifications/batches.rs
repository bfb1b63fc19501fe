//! Debounced batches: notifications the app collects over a window (documents uploaded
//! for one order, earnings retained for one seller and event) and sends as one.
//!
//! A closed window is merged into one pending notification, delivered by the same run:
//! `document_uploaded` becomes `document_uploaded_batch` (count and numbered tickets),
//! `seller_earnings_retained` sums its ticket counts, any other type keeps its last
//! item. Batches are claimed with `FOR UPDATE SKIP LOCKED`, one transaction each. Each
//! merged item is stamped `merged_at`; an item the app appended while its batch was
//! being merged (the app does not lock the batch) is found later, unstamped under a
//! closed batch, and moved to a new batch, so it is sent, not lost. The statements are
//! in [`queries`].

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::queries::{self, BatchItem};
use crate::notify::metadata;

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
        orphans_moved: queries::rebatch_orphans(pool, now).await?,
        ..Merged::default()
    };
    for _ in 0..limit {
        let mut tx = pool.begin().await?;
        let batch = queries::claim_closed_batch(&mut tx, now).await?;
        let Some(batch) = batch else { break };
        let items = queries::unmerged_items(&mut tx, batch.id).await?;
        let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
        if items.is_empty() {
            queries::cancel_batch(&mut tx, batch.id, &ids, now).await?;
            tx.commit().await?;
            merged.cancelled += 1;
            continue;
        }
        let (kind, metadata, actions) = merge(&batch.notification_type, &items);
        if let Err(reason) = metadata::validate(&kind, &metadata) {
            // Bad items from the app: nothing can be sent; say why and close the batch.
            // Its items are stamped too, or they would come back as orphans every run.
            tracing::error!(batch_id = %batch.id, error = %reason, "batch cannot be merged");
            queries::cancel_batch(&mut tx, batch.id, &ids, now).await?;
            tx.commit().await?;
            merged.failed += 1;
            continue;
        }
        let notification =
            queries::insert_merged(&mut tx, &batch, &kind, actions, &metadata, now).await?;
        queries::stamp_merged(&mut tx, &ids, now).await?;
        queries::mark_processed(&mut tx, batch.id, notification, now).await?;
        tx.commit().await?;
        merged.processed += 1;
    }
    Ok(merged)
}

/// The original's merge rules (mathfalcon/revendiste
/// apps/backend/src/cronjobs/process-pending-notifications.ts and
/// apps/backend/src/services/notifications/).
fn merge(kind: &str, items: &[BatchItem]) -> (String, Value, Option<Value>) {
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
