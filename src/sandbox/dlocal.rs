//! The dLocal Go stand-in: `GET /v1/payments/{id}` (Bearer `key:secret`, JSON bodies,
//! 404 for unknown ids, 429 with `Retry-After`) and the hosted checkout page the sync
//! nudges. Scriptable: a body and status per payment, a default answer for any id
//! (benchmarks), latency, a random 5xx rate, the next N answers as 429 or 500, a
//! payment that hangs; over HTTP with `PUT /sandbox/payments/{id}` and
//! `POST /sandbox/behaviour`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Sandbox, error};

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/v1/payments/{id}", get(get_payment))
        .route("/checkout/{id}", get(checkout))
        .route("/sandbox/payments/{id}", put(put_payment))
        .route("/sandbox/behaviour", post(set_behaviour))
        .route("/sandbox/stats", get(stats))
}

/// What the sandbox answers for one payment.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub body: Value,
    /// HTTP status of the answer (200 unless scripted otherwise).
    pub status: u16,
    /// Extra delay for this payment only (a hanging provider).
    pub delay: Option<Duration>,
}

/// How the sandbox behaves for every request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Behaviour {
    /// Added to every API answer.
    #[serde(default)]
    pub latency_ms: u64,
    /// Fraction of API answers that are a 500.
    #[serde(default)]
    pub error_rate: f64,
    /// The next N API answers are 429 (with `Retry-After: 1`).
    #[serde(default)]
    pub rate_limit_next: u32,
    /// The next N API answers are 500.
    #[serde(default)]
    pub fail_next: u32,
    /// Answer unknown ids with this dLocal status (and `default_amount`) instead of 404.
    pub default_status: Option<String>,
    /// Unknown ids starting with a prefix get that prefix's status instead of the default.
    #[serde(default)]
    pub status_by_prefix: Vec<(String, String)>,
    pub default_amount: Option<String>,
    /// Visiting the checkout page of a PENDING payment makes it EXPIRED (what dLocal Go
    /// does once its link has lapsed).
    #[serde(default)]
    pub expire_on_checkout_visit: bool,
}

/// The body dLocal Go returns for a payment.
pub fn payment_body(base_url: &str, id: &str, status: &str, amount: &str, currency: &str) -> Value {
    json!({
        "id": id,
        "amount": amount,
        "currency": currency,
        "country": "UY",
        "created_date": "2026-03-01T10:00:00.000+0000",
        "approved_date": if status == "PAID" { json!("2026-03-01T10:05:00.000Z") } else { Value::Null },
        "status": status,
        "order_id": id,
        "notification_url": "https://api.example/api/webhooks/dlocal",
        "redirect_url": format!("{base_url}/checkout/{id}"),
    })
}

impl Sandbox {
    /// Scripts a payment's answer with dLocal's usual body.
    pub fn set_status(&self, id: &str, status: &str, amount: &str, currency: &str) {
        let body = payment_body(&self.base_url, id, status, amount, currency);
        self.set(
            id,
            Scripted {
                body,
                status: 200,
                delay: None,
            },
        );
    }

    pub fn set(&self, id: &str, scripted: Scripted) {
        self.with(|i| i.payments.insert(id.to_string(), scripted));
    }

    pub fn behave(&self, behaviour: Behaviour) {
        self.with(|i| i.behaviour = behaviour);
    }

    /// API requests answered so far (checkout visits not included).
    pub fn api_requests(&self) -> u64 {
        self.with(|i| i.api_requests)
    }

    pub fn checkout_visits(&self, id: &str) -> u32 {
        self.with(|i| i.checkout_visits.get(id).copied().unwrap_or(0))
    }
}

async fn get_payment(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == s.authorization.as_str());
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, 3001, "Invalid credentials");
    }
    enum Answer {
        RateLimited,
        Failure,
        Found(Scripted),
        Missing,
    }
    let (latency, answer) = s.with(|i| {
        i.api_requests += 1;
        let b = &mut i.behaviour;
        let answer = if b.rate_limit_next > 0 {
            b.rate_limit_next -= 1;
            Answer::RateLimited
        } else if b.fail_next > 0 {
            b.fail_next -= 1;
            Answer::Failure
        } else if b.error_rate > 0.0 && fastrand::f64() < b.error_rate {
            Answer::Failure
        } else if let Some(p) = i.payments.get(&id) {
            Answer::Found(p.clone())
        } else if let Some(status) = b
            .status_by_prefix
            .iter()
            .find(|(prefix, _)| id.starts_with(prefix.as_str()))
            .map(|(_, status)| status)
            .or(b.default_status.as_ref())
        {
            let amount = b.default_amount.clone().unwrap_or_else(|| "100.00".into());
            Answer::Found(Scripted {
                body: payment_body(&s.base_url, &id, status, &amount, "UYU"),
                status: 200,
                delay: None,
            })
        } else {
            Answer::Missing
        };
        (Duration::from_millis(b.latency_ms), answer)
    });
    tokio::time::sleep(latency).await;
    match answer {
        Answer::RateLimited => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, 4290, "Too many requests");
            r.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            r
        }
        Answer::Failure => error(StatusCode::INTERNAL_SERVER_ERROR, 5000, "Internal error"),
        Answer::Missing => error(StatusCode::NOT_FOUND, 4000, "Payment not found"),
        Answer::Found(p) => {
            if let Some(delay) = p.delay {
                tokio::time::sleep(delay).await;
            }
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::OK);
            (status, Json(p.body)).into_response()
        }
    }
}

async fn checkout(State(s): State<Sandbox>, Path(id): Path<String>) -> Response {
    s.with(|i| {
        *i.checkout_visits.entry(id.clone()).or_default() += 1;
        if i.behaviour.expire_on_checkout_visit
            && let Some(p) = i.payments.get_mut(&id)
            && p.body["status"] == "PENDING"
        {
            p.body["status"] = json!("EXPIRED");
        }
    });
    (
        StatusCode::OK,
        "<html><body>dLocal Go checkout (sandbox)</body></html>",
    )
        .into_response()
}

async fn put_payment(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    s.set(
        &id,
        Scripted {
            body,
            status: 200,
            delay: None,
        },
    );
    StatusCode::NO_CONTENT
}

async fn set_behaviour(State(s): State<Sandbox>, Json(b): Json<Behaviour>) -> StatusCode {
    s.behave(b);
    StatusCode::NO_CONTENT
}

async fn stats(State(s): State<Sandbox>) -> Json<Value> {
    Json(s.with(|i| json!({ "api_requests": i.api_requests, "payments": i.payments.len() })))
}
