//! Notification rows, as jobs leave them for the notifications job to deliver, in one
//! vocabulary: [`Channel`] and the kinds with their metadata ([`metadata`]).
//!
//! A job with something to tell a user builds a [`Notification`] and inserts it in the
//! same transaction as the change it is about: a crash after the commit loses nothing,
//! a rollback sends nothing. Shapes follow the original (mathfalcon/revendiste,
//! packages/shared/src/schemas/notifications.ts): `metadata` carries `type` and the
//! fields its template needs; `actions` is a list of `{type, label, url}`.

mod channel;
pub(crate) mod metadata;

use crate::database;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

pub(crate) use channel::Channel;
pub(crate) use metadata::Metadata;

/// A notification row to deliver later; its kind is its metadata's.
#[derive(Debug, Clone)]
pub(crate) struct Notification {
    pub user_id: Uuid,
    pub channels: Vec<Channel>,
    pub actions: Option<Value>,
    pub metadata: Metadata,
}

/// In-app and email: what most notifications go out on.
pub(crate) const IN_APP_AND_EMAIL: [Channel; 2] = [Channel::InApp, Channel::Email];

/// A row as `insert` hands it to PostgreSQL.
#[derive(Serialize)]
struct Row<'a> {
    user_id: Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
    channels: &'a [Channel],
    actions: &'a Option<Value>,
    metadata: Value,
}

/// The buttons' labels, as the original names them
/// (apps/backend/src/constants/error-messages.ts `NOTIFICATION_BUTTON_LABELS`): the API
/// and its emails show these strings.
pub(crate) mod label {
    pub(crate) const UPLOAD_DOCUMENTS: &str = "Subir documentos";
    pub(crate) const VIEW_MY_TICKETS: &str = "Ver mis tickets";
    pub(crate) const RETRY_PAYMENT: &str = "Reintentar pago";
    pub(crate) const VIEW_EARNINGS: &str = "Ver ganancias";
    pub(crate) const REQUEST_WITHDRAWAL: &str = "Solicitar retiro";
    pub(crate) const VIEW_MY_CASE: &str = "Ver mi caso";
}

/// One action button: `[{type, label, url}]`.
pub(crate) fn action(kind: &str, label: &str, url: String) -> Value {
    json!([{ "type": kind, "label": label, "url": url }])
}

/// The IANA zone of a venue's country, by name or code; Montevideo when unknown: the
/// `eventTimezone` the original derives with `getTimezoneForCountry`.
pub(crate) fn time_zone(country: Option<&str>) -> &'static str {
    match country.map(|c| c.trim().to_lowercase()).as_deref() {
        Some("argentina" | "ar") => "America/Argentina/Buenos_Aires",
        _ => "America/Montevideo",
    }
}

/// An instant as the original's metadata carries it: RFC 3339, milliseconds, `Z`.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Inserts `rows` as pending notifications, in the caller's transaction.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    rows: &[Notification],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows: Vec<Row> = rows
        .iter()
        .map(|n| Row {
            user_id: n.user_id,
            kind: n.metadata.kind(),
            channels: &n.channels,
            actions: &n.actions,
            metadata: n.metadata.to_json(),
        })
        .collect();
    sqlx::query(
        "INSERT INTO notifications (user_id, type, channels, actions, metadata, status, created_at, updated_at)
         SELECT x.user_id, x.type::notification_type,
                ARRAY(SELECT jsonb_array_elements_text(x.channels))::notification_channel[],
                x.actions, x.metadata, 'pending', $2, $2
           FROM jsonb_to_recordset($1) AS x(user_id uuid, type text, channels jsonb, actions jsonb, metadata jsonb)",
    )
    .bind(database::jsonb(&rows)?)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A debounced notification: an item for the user's pending batch under `key`.
#[derive(Debug, Clone)]
pub(crate) struct Debounced {
    pub key: String,
    pub user_id: Uuid,
    pub channels: Vec<Channel>,
    /// How long a new batch stays open (not extended by later items, as in the original).
    pub window: chrono::TimeDelta,
    pub metadata: Metadata,
    pub actions: Option<Value>,
}

/// Adds the item to the user's pending batch for its key, or opens a batch; the
/// notifications job merges a closed batch into one notification. Batch creation is
/// serialised per key and user, so two writers at once share one batch.
pub(crate) async fn debounce(
    conn: &mut PgConnection,
    d: &Debounced,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("notification_batches:{}:{}", d.key, d.user_id))
        .execute(&mut *conn)
        .await?;
    let open: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM notification_batches
          WHERE debounce_key = $1 AND user_id = $2 AND status = 'pending'
          ORDER BY created_at LIMIT 1",
    )
    .bind(&d.key)
    .bind(d.user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let batch = match open {
        Some(id) => id,
        None => {
            sqlx::query_scalar(
                "INSERT INTO notification_batches (debounce_key, user_id, notification_type, channels,
                                                   window_ends_at, status, created_at, updated_at)
                 VALUES ($1, $2, $3::notification_type, $4::notification_channel[], $5, 'pending', $6, $6)
                 RETURNING id",
            )
            .bind(&d.key)
            .bind(d.user_id)
            .bind(d.metadata.kind())
            .bind(d.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>())
            .bind(now + d.window)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
        }
    };
    sqlx::query(
        "INSERT INTO notification_batch_items (batch_id, metadata, actions, created_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(batch)
    .bind(d.metadata.to_json())
    .bind(&d.actions)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
