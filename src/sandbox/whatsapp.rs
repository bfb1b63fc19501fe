//! The WhatsApp Cloud API stand-in: `POST /{version}/{phone-number-id}/messages`, and
//! Meta's signed status webhooks (`sent`, `delivered`, or `failed`) to the marketplace's
//! route when asked to send them.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::outbox::{ProviderScript, Received, next_answer, scripted_error};
use super::{Sandbox, header, marketplace};

pub(super) fn routes() -> Router<Sandbox> {
    Router::new().route("/{version}/{phone}/messages", post(whatsapp_message))
}

impl Sandbox {
    pub fn script_whatsapp(&self, script: ProviderScript) {
        self.with(|i| i.whatsapp.script = script);
    }

    /// From now on every accepted WhatsApp message is followed by Meta's status webhooks
    /// (`sent`, then `delivered`), signed with `app_secret`, POSTed to `url`.
    pub fn send_whatsapp_statuses(&self, url: &str, app_secret: &str) {
        self.with(|i| i.whatsapp_webhook = Some((url.to_string(), app_secret.to_string())));
    }

    pub fn whatsapps(&self) -> Vec<Received> {
        self.with(|i| i.whatsapp.delivered.clone())
    }

    pub fn whatsapp_requests(&self) -> u64 {
        self.with(|i| i.whatsapp.requests)
    }
}

async fn whatsapp_message(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (latency, answer) = s.with(|i| next_answer(&mut i.whatsapp));
    tokio::time::sleep(Duration::from_millis(latency)).await;
    if let Some(r) = scripted_error(&answer) {
        return r;
    }
    let (id, webhook, undeliverable) = s.with(|i| {
        i.whatsapp.delivered.push(Received {
            authorization: header(&headers, "authorization"),
            idempotency_key: None,
            body: body.clone(),
        });
        let script = &mut i.whatsapp.script;
        let undeliverable = script.undeliverable_next > 0;
        script.undeliverable_next = script.undeliverable_next.saturating_sub(1);
        (
            format!("wamid.{}", i.whatsapp.delivered.len()),
            i.whatsapp_webhook.clone(),
            undeliverable,
        )
    });
    if let Some((url, secret)) = webhook {
        let statuses: &[&str] = if undeliverable {
            &["failed"]
        } else {
            &["sent", "delivered"]
        };
        for status in statuses {
            let payload = status_webhook(&id, status, &body);
            tokio::spawn(post_webhook(
                s.webhooks.clone(),
                url.clone(),
                secret.clone(),
                payload,
            ));
        }
    }
    (
        StatusCode::OK,
        Json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": body["to"], "wa_id": body["to"] }],
            "messages": [{ "id": id }],
        })),
    )
        .into_response()
}

/// Meta's `messages` webhook carrying one status of a message the stand-in accepted.
fn status_webhook(id: &str, status: &str, message: &Value) -> Value {
    let mut entry = json!({
        "id": id,
        "status": status,
        "timestamp": crate::clock::wall().timestamp().to_string(),
        "recipient_id": message["to"],
    });
    if let Some(data) = message.get("biz_opaque_callback_data") {
        entry["biz_opaque_callback_data"] = data.clone();
    }
    if status == "failed" {
        entry["errors"] = json!([{
            "code": 131026,
            "title": "Message undeliverable",
            "message": "Message undeliverable",
        }]);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "59899000000", "phone_number_id": "1234567890" },
                    "statuses": [entry],
                },
            }],
        }],
    })
}

/// Delivers one webhook, retrying for a while as Meta does when it gets no 200.
async fn post_webhook(client: reqwest::Client, url: String, secret: String, payload: Value) {
    let body = payload.to_string();
    let signature = marketplace::signature(&secret, body.as_bytes());
    for _ in 0..10 {
        let sent = client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", &signature)
            .body(body.clone())
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
