//! Stands in for the marketplace API's WhatsApp webhook route, the other half of the
//! delivery-receipt contract the notifications job relies on (docs/jobs/notifications.md,
//! "WhatsApp delivery receipts"): it checks Meta's `X-Hub-Signature-256` over the raw
//! body and records every entry of `statuses` in `whatsapp_message_statuses`. In
//! production that route belongs to the marketplace (TypeScript); this is the reference
//! the tests run against.

use std::net::SocketAddr;

use aws_lc_rs::hmac;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// `sha256=<hex>` of the body under the app secret, as Meta signs its webhooks.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, app_secret.as_bytes()),
        body,
    );
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Clone)]
struct Receiver {
    pool: PgPool,
    key: hmac::Key,
}

/// Serves `POST /api/webhooks/whatsapp` on 127.0.0.1; returns its URL.
pub async fn serve_whatsapp_webhook(pool: PgPool, app_secret: &str) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}/api/webhooks/whatsapp", listener.local_addr()?);
    let receiver = Receiver {
        pool,
        key: hmac::Key::new(hmac::HMAC_SHA256, app_secret.as_bytes()),
    };
    let app = Router::new()
        .route("/api/webhooks/whatsapp", post(receive))
        .with_state(receiver);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "webhook stand-in stopped");
        }
    });
    Ok(url)
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signed = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(unhex)
        .is_some_and(|tag| hmac::verify(&r.key, &body, &tag).is_ok());
    if !signed {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let statuses = payload["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["changes"].as_array().into_iter().flatten())
        .filter(|c| c["field"] == "messages")
        .flat_map(|c| c["value"]["statuses"].as_array().into_iter().flatten());
    for s in statuses {
        let (Some(id), Some(status)) = (s["id"].as_str(), s["status"].as_str()) else {
            continue;
        };
        let at = s["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
            .unwrap_or_else(Utc::now);
        let error = s
            .pointer("/errors/0")
            .map(|e| format!("{} {}", e["code"], e["title"].as_str().unwrap_or_default()));
        let inserted = sqlx::query(
            "INSERT INTO whatsapp_message_statuses
                    (message_id, status, callback_data, recipient_id, error, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (message_id, status) DO NOTHING",
        )
        .bind(id)
        .bind(status)
        .bind(s["biz_opaque_callback_data"].as_str())
        .bind(s["recipient_id"].as_str())
        .bind(error)
        .bind(at)
        .execute(&r.pool)
        .await;
        // Meta retries a webhook that did not get a 200: let it.
        if inserted.is_err() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    StatusCode::OK
}
