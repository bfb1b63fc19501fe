//! Every SQL statement of the notifications job: the claim, the users, the
//! "about to send" mark, and the batched write of results. Rows are claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease, so several runs can deliver side by side and a
//! crashed run's rows come back when its lease ends; every later write is guarded by
//! the lease, so a run whose lease was taken over writes nothing.

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
