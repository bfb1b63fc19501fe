//! Every SQL statement of the notifications job: the claim, the users, the
//! "about to send" mark, the batched write of results, the merge of debounced batches
//! ([`batches`](super::batches)) and the check of the queue's `send-notification` rows
//! ([`queue`](super::queue)). Rows are claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease, so several runs can deliver side by side and a
//! crashed run's rows come back when its lease ends; every later write is guarded by
//! the lease, so a run whose lease was taken over writes nothing. A debounced batch is
//! claimed with `FOR UPDATE SKIP LOCKED` inside the caller's transaction, one batch
//! each, and held until that transaction ends.

use crate::database;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Claimed {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub channels: Vec<String>,
    pub metadata: Option<Value>,
    pub actions: Option<Value>,
    pub channel_status: Option<Value>,
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` deliverable notifications until `lease_until`.
pub(super) async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "WITH c AS (
             SELECT id FROM notifications
              WHERE status = 'pending' AND deleted_at IS NULL
                AND COALESCE(next_attempt_at, created_at) <= $1
                AND (lease_until IS NULL OR lease_until < $1)
           ORDER BY COALESCE(next_attempt_at, created_at), id
              LIMIT $3
                FOR UPDATE SKIP LOCKED)
         UPDATE notifications n SET lease_until = $2
           FROM c WHERE n.id = c.id
       RETURNING n.id, n.user_id, n.type::text AS kind, n.channels::text[] AS channels, n.metadata,
                 n.actions, n.channel_status, n.created_at",
    )
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct User {
    pub id: Uuid,
    pub email: Option<String>,
    pub phone_number: Option<String>,
}

pub(super) async fn users(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<User>> {
    sqlx::query_as(
        "SELECT id, email, phone_number FROM users WHERE id = ANY($1) AND deleted_at IS NULL",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// The buyer of an order, if the order exists.
pub(super) async fn order_buyer(pool: &PgPool, order: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT user_id FROM orders WHERE id = $1")
        .bind(order)
        .fetch_optional(pool)
        .await
}

/// Records one channel's state before a send that cannot be repeated safely, so a
/// crash mid-send is known afterwards. False if the lease is no longer ours.
pub(super) async fn mark_channel(
    conn: &mut PgConnection,
    id: Uuid,
    lease_until: DateTime<Utc>,
    channel: &str,
    state: &Value,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE notifications
            SET channel_status = jsonb_set(COALESCE(channel_status, '{}'::jsonb), ARRAY[$3], $4)
          WHERE id = $1 AND lease_until = $2",
    )
    .bind(id)
    .bind(lease_until)
    .bind(channel)
    .bind(database::jsonb(state)?)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What Meta's delivery receipts say of one message (see the whatsapp_receipts migration).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Receipt {
    /// Accepted by WhatsApp (sent, delivered or read): it went out.
    Sent {
        message_id: String,
        at: DateTime<Utc>,
    },
    /// WhatsApp accepted it and then reported it undeliverable.
    Failed { error: String },
}

/// The receipt recorded for the message sent with `callback_data`, if any arrived:
/// delivered or read wins, then failed (accepted, then undeliverable), then sent.
pub(super) async fn whatsapp_receipt(
    pool: &PgPool,
    callback_data: &str,
) -> sqlx::Result<Option<Receipt>> {
    let row: Option<(String, String, Option<String>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT message_id, status, error, occurred_at FROM whatsapp_message_statuses
          WHERE callback_data = $1 AND status IN ('sent', 'delivered', 'read', 'failed')
       ORDER BY CASE status WHEN 'read' THEN 0 WHEN 'delivered' THEN 0 WHEN 'failed' THEN 1 ELSE 2 END,
                occurred_at
          LIMIT 1",
    )
    .bind(callback_data)
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map(|(message_id, status, error, at)| match status.as_str() {
            "failed" => Receipt::Failed {
                error: error.unwrap_or_else(|| "no reason given".into()),
            },
            _ => Receipt::Sent { message_id, at },
        }),
    )
}

/// The outcome of one notification.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Outcome {
    pub id: Uuid,
    pub status: super::state::Delivery,
    pub channel_status: Value,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// 1 when the notification failed on every channel (the original's retry_count).
    pub failed_once: i32,
}

/// Writes outcomes and releases the leases, for rows whose lease is still ours.
pub(super) async fn finish(
    pool: &PgPool,
    outcomes: &[Outcome],
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    if outcomes.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "UPDATE notifications n SET
                status = x.status::notification_status,
                channel_status = x.channel_status,
                next_attempt_at = x.next_attempt_at,
                retry_count = n.retry_count + x.failed_once,
                lease_until = NULL,
                updated_at = $3
           FROM jsonb_to_recordset($1) AS x(id uuid, status text, channel_status jsonb,
                                            next_attempt_at timestamptz, failed_once int)
          WHERE n.id = x.id AND n.lease_until = $2",
    )
    .bind(database::jsonb(&outcomes)?)
    .bind(lease_until)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Gives back claims a stopping run did not get to.
pub(super) async fn release(
    pool: &PgPool,
    ids: &[Uuid],
    lease_until: DateTime<Utc>,
) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE notifications SET lease_until = NULL WHERE id = ANY($1) AND lease_until = $2",
    )
    .bind(ids)
    .bind(lease_until)
    .execute(pool)
    .await?;
    Ok(())
}

/// What the skip rules need: the event's end and the order's age, for notifications
/// about an order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct OrderFacts {
    pub id: Uuid,
    pub event_end_date: DateTime<Utc>,
    pub order_created_at: DateTime<Utc>,
}

pub(super) async fn order_facts(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<OrderFacts>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT n.id, e.event_end_date, o.created_at AS order_created_at
           FROM notifications n
           JOIN orders o ON o.id = CASE WHEN n.metadata->>'orderId' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                        THEN (n.metadata->>'orderId')::uuid END
           JOIN events e ON e.id = o.event_id
          WHERE n.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// The browsers each of these users subscribed (the newest
/// [`MAX_SUBSCRIPTIONS_PER_USER`](super::webpush::MAX_SUBSCRIPTIONS_PER_USER) each),
/// read once for a claimed batch.
pub(super) async fn subscriptions(
    pool: &PgPool,
    users: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, super::webpush::Subscription)>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Uuid, String, String, String)> = sqlx::query_as(
        "SELECT user_id, endpoint, p256dh, auth FROM (
            SELECT user_id, endpoint, p256dh, auth,
                   row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC, id) AS newest
            FROM push_subscriptions WHERE user_id = ANY($1)
        ) s WHERE newest <= $2",
    )
    .bind(users)
    .bind(super::webpush::MAX_SUBSCRIPTIONS_PER_USER)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(user, endpoint, p256dh, auth)| {
            (
                user,
                super::webpush::Subscription {
                    endpoint,
                    p256dh,
                    auth,
                },
            )
        })
        .collect())
}

pub(super) async fn delete_subscription(pool: &PgPool, endpoint: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1")
        .bind(endpoint)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn mark_invoice_emailed(
    pool: &PgPool,
    invoice: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE invoices SET email_sent_at = $2 WHERE id = $1 AND email_sent_at IS NULL")
        .bind(invoice)
        .bind(at)
        .execute(pool)
        .await?;
    Ok(())
}

// Debounced batches (see `batches`).

/// A closed batch, claimed for merging.
#[derive(sqlx::FromRow)]
pub(super) struct Batch {
    pub id: Uuid,
    pub user_id: Uuid,
    pub notification_type: String,
    pub channels: Vec<String>,
}

/// One item of a batch, as the app appended it.
#[derive(sqlx::FromRow)]
pub(super) struct BatchItem {
    pub id: Uuid,
    pub metadata: Value,
    pub actions: Option<Value>,
}

/// Claims the pending batch whose window closed first, if any: locked
/// (`FOR UPDATE SKIP LOCKED`) until the caller's transaction ends.
pub(super) async fn claim_closed_batch(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Batch>> {
    sqlx::query_as(
        "SELECT id, user_id, notification_type::text AS notification_type, channels::text[] AS channels
           FROM notification_batches
          WHERE status = 'pending' AND window_ends_at <= $1
       ORDER BY window_ends_at, id
          LIMIT 1
            FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// The batch's items not merged yet (no `merged_at`), oldest first.
pub(super) async fn unmerged_items(
    conn: &mut PgConnection,
    batch: Uuid,
) -> sqlx::Result<Vec<BatchItem>> {
    sqlx::query_as(
        "SELECT id, metadata, actions FROM notification_batch_items
          WHERE batch_id = $1 AND merged_at IS NULL ORDER BY created_at, id",
    )
    .bind(batch)
    .fetch_all(conn)
    .await
}

/// Inserts the pending notification a batch merged into, for the batch's user and
/// channels; its id.
pub(super) async fn insert_merged(
    conn: &mut PgConnection,
    batch: &Batch,
    kind: &str,
    actions: Option<Value>,
    metadata: &Value,
    now: DateTime<Utc>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO notifications (user_id, type, channels, actions, metadata, status, created_at, updated_at)
         VALUES ($1, $2::notification_type, $3::notification_channel[], $4, $5, 'pending', $6, $6)
         RETURNING id",
    )
    .bind(batch.user_id)
    .bind(kind)
    .bind(&batch.channels)
    .bind(actions)
    .bind(metadata)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Stamps the items `items` as merged (`merged_at`), so they do not come back as orphans.
pub(super) async fn stamp_merged(
    conn: &mut PgConnection,
    items: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE notification_batch_items SET merged_at = $2 WHERE id = ANY($1)")
        .bind(items)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Closes the batch as processed into `notification`.
pub(super) async fn mark_processed(
    conn: &mut PgConnection,
    batch: Uuid,
    notification: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notification_batches SET status = 'processed', final_notification_id = $2, updated_at = $3
          WHERE id = $1",
    )
    .bind(batch)
    .bind(notification)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Closes a batch that yields no notification, stamping its items as handled.
pub(super) async fn cancel_batch(
    conn: &mut PgConnection,
    batch: Uuid,
    items: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    stamp_merged(&mut *conn, items, now).await?;
    sqlx::query(
        "UPDATE notification_batches SET status = 'cancelled', updated_at = $2 WHERE id = $1",
    )
    .bind(batch)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves items that arrived under an already closed batch to a new batch of their own;
/// how many items moved.
pub(super) async fn rebatch_orphans(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<u64> {
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

// The queue's `send-notification` rows (see `queue`).

/// Whether the notification row exists (deleted ones included).
pub(super) async fn notification_exists(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
}
