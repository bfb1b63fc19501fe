//! Notification rows, as jobs leave them for the notifications job to deliver.
//!
//! A job with something to tell a user builds a [`Notification`] and inserts it in the
//! same transaction as the change it is about: a crash after the commit loses nothing,
//! a rollback sends nothing. Shapes follow the original (mathfalcon/revendiste,
//! packages/shared/src/schemas/notifications.ts): `metadata` carries `type` and the
//! fields its template needs; `actions` is a list of `{type, label, url}`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

/// A notification row to deliver later.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub user_id: Uuid,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub channels: Vec<&'static str>,
    pub actions: Option<Value>,
    pub metadata: Value,
}

/// One action button: `[{type, label, url}]`.
pub fn action(kind: &str, label: &str, url: String) -> Value {
    json!([{ "type": kind, "label": label, "url": url }])
}

/// An instant as the original's metadata carries it: RFC 3339, milliseconds, `Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Inserts `rows` as pending notifications, in the caller's transaction.
pub async fn insert(
    conn: &mut PgConnection,
    rows: &[Notification],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO notifications (user_id, type, channels, actions, metadata, status, created_at, updated_at)
         SELECT x.user_id, x.type::notification_type,
                ARRAY(SELECT jsonb_array_elements_text(x.channels))::notification_channel[],
                x.actions, x.metadata, 'pending', $2, $2
           FROM jsonb_to_recordset($1) AS x(user_id uuid, type text, channels jsonb, actions jsonb, metadata jsonb)",
    )
    .bind(sqlx::types::Json(rows))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
