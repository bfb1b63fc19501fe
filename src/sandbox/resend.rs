//! The Resend stand-in: `POST /emails`, answering a repeated `Idempotency-Key` with the
//! first answer and sending nothing, as Resend does.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::outbox::{ProviderScript, Received, next_answer, scripted_error};
use super::{Sandbox, header};

pub(super) fn routes() -> Router<Sandbox> {
    Router::new().route("/emails", post(resend_email))
}

impl Sandbox {
    pub fn script_email(&self, script: ProviderScript) {
        self.with(|i| i.email.script = script);
    }

    /// Emails delivered (a repeated idempotency key delivers nothing new).
    pub fn emails(&self) -> Vec<Received> {
        self.with(|i| i.email.delivered.clone())
    }

    /// Requests to `POST /emails`, answered or not.
    pub fn email_requests(&self) -> u64 {
        self.with(|i| i.email.requests)
    }
}

async fn resend_email(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (latency, answer) = s.with(|i| next_answer(&mut i.email));
    tokio::time::sleep(Duration::from_millis(latency)).await;
    if let Some(r) = scripted_error(&answer) {
        return r;
    }
    let key = header(&headers, "idempotency-key");
    let id = s.with(|i| {
        if let Some(id) = key.as_ref().and_then(|k| i.email.keys.get(k)) {
            return id.clone();
        }
        let id = format!("email-{}", i.email.delivered.len() + 1);
        if let Some(k) = &key {
            i.email.keys.insert(k.clone(), id.clone());
        }
        i.email.delivered.push(Received {
            authorization: header(&headers, "authorization"),
            idempotency_key: key.clone(),
            body,
        });
        id
    });
    (StatusCode::OK, Json(json!({ "id": id }))).into_response()
}
