//! Local stand-ins for the providers (feature `sandbox`; never in a release image):
//! dLocal Go, and for notifications Resend (`POST /emails`) and the WhatsApp Cloud API
//! (`POST /{version}/{phone-number-id}/messages`), which record what they receive.
//!
//! Speaks the same wire format as `GET /v1/payments/{id}` (Bearer `key:secret` auth,
//! JSON bodies, 404 for unknown ids, 429 with `Retry-After`) and serves the hosted
//! checkout page the sync nudges. Its behaviour is scriptable: a body and status per
//! payment, a default answer for any id (benchmarks), latency, a random 5xx rate, the
//! next N answers as 429 or 500, a payment that hangs. Tests drive it through
//! [`Sandbox`]; the `dlocal-sandbox` binary serves it for the Quickstart and benchmarks,
//! scriptable over `PUT /sandbox/payments/{id}` and `POST /sandbox/behaviour`.

pub mod marketplace;
pub mod site;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

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

#[derive(Default)]
struct Inner {
    payments: HashMap<String, Scripted>,
    behaviour: Behaviour,
    api_requests: u64,
    checkout_visits: HashMap<String, u32>,
    email: Outbox,
    whatsapp: Outbox,
    /// Where the WhatsApp stand-in sends its status webhooks, and the app secret it
    /// signs them with.
    whatsapp_webhook: Option<(String, String)>,
    push: PushService,
    places: Vec<Place>,
    places_requests: u64,
}

/// A place the Google Places stand-in knows.
#[derive(Debug, Clone)]
pub struct Place {
    pub place_id: String,
    pub name: String,
    pub formatted_address: String,
    pub locality: String,
    pub region: String,
    pub lat: f64,
    pub lng: f64,
}

/// Browser subscriptions the sandbox plays, and what it decrypted for them.
#[derive(Default)]
struct PushService {
    browsers: HashMap<String, Arc<(aws_lc_rs::agreement::PrivateKey, Vec<u8>)>>,
    gone: std::collections::HashSet<String>,
    received: Vec<Value>,
    /// The `Topic` header of each received push, in the same order.
    topics: Vec<Option<String>>,
    rejected: u64,
}

/// How a notification provider stand-in answers its next requests.
#[derive(Debug, Clone, Default)]
pub struct ProviderScript {
    pub latency_ms: u64,
    /// The next N requests get a 500.
    pub fail_next: u32,
    /// The next N requests get a 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_next: u32,
    pub retry_after_secs: u64,
    /// The next N requests get a 422 (a message the provider refuses).
    pub reject_next: u32,
    /// WhatsApp: the next N accepted messages get a `failed` status webhook (131026,
    /// undeliverable) instead of `sent` and `delivered`.
    pub undeliverable_next: u32,
}

/// A message a provider stand-in accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Outbox {
    script: ProviderScript,
    requests: u64,
    delivered: Vec<Received>,
    /// Resend answers a repeated Idempotency-Key with the first answer, sending nothing.
    keys: HashMap<String, String>,
}

/// A running sandbox.
#[derive(Clone)]
pub struct Sandbox {
    pub base_url: String,
    authorization: Arc<String>,
    inner: Arc<Mutex<Inner>>,
    /// Sends the WhatsApp status webhooks.
    webhooks: reqwest::Client,
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
    /// Serves on 127.0.0.1 (`port` 0 picks one) until the runtime ends.
    pub async fn start(port: u16, api_key: &str, secret_key: &str) -> std::io::Result<Sandbox> {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let sandbox = Sandbox {
            base_url,
            authorization: Arc::new(format!("Bearer {api_key}:{secret_key}")),
            inner: Arc::new(Mutex::new(Inner::default())),
            webhooks: crate::http::client(crate::http::Timeouts {
                connect: Duration::from_secs(2),
                request: Duration::from_secs(5),
            })
            .map_err(std::io::Error::other)?,
        };
        let app = Router::new()
            .route("/v1/payments/{id}", get(get_payment))
            .route("/checkout/{id}", get(checkout))
            .route("/sandbox/payments/{id}", put(put_payment))
            .route("/sandbox/behaviour", post(set_behaviour))
            .route("/sandbox/stats", get(stats))
            .route("/emails", post(resend_email))
            .route("/push/{id}", post(push_message))
            .route("/{version}/{phone}/messages", post(whatsapp_message))
            .route("/maps/api/place/nearbysearch/json", get(places_nearby))
            .route("/maps/api/place/details/json", get(places_details))
            .with_state(sandbox.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "sandbox stopped");
            }
        });
        Ok(sandbox)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

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

    /// A new browser subscription: `(endpoint, p256dh, auth)` as a browser would give
    /// them (base64url), with the private key kept here to decrypt what arrives.
    pub fn push_subscription(&self) -> (String, String, String) {
        use aws_lc_rs::rand::SecureRandom;
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let private = aws_lc_rs::agreement::PrivateKey::generate(&aws_lc_rs::agreement::ECDH_P256)
            .expect("P-256 key generation");
        let public = private.compute_public_key().expect("public key");
        let mut auth = vec![0u8; 16];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut auth)
            .expect("randomness");
        let id = uuid::Uuid::new_v4().to_string();
        let (p256dh, auth64) = (b64.encode(public.as_ref()), b64.encode(&auth));
        self.with(|i| {
            i.push
                .browsers
                .insert(id.clone(), Arc::new((private, auth)))
        });
        (format!("{}/push/{id}", self.base_url), p256dh, auth64)
    }

    /// The push service answers 410 Gone for this endpoint from now on.
    pub fn unsubscribe(&self, endpoint: &str) {
        let id = endpoint.rsplit('/').next().unwrap_or_default().to_string();
        self.with(|i| i.push.gone.insert(id));
    }

    /// Decrypted push payloads, in arrival order.
    pub fn pushes(&self) -> Vec<Value> {
        self.with(|i| i.push.received.clone())
    }

    /// The `Topic` header of each push in [`Sandbox::pushes`].
    pub fn push_topics(&self) -> Vec<Option<String>> {
        self.with(|i| i.push.topics.clone())
    }

    /// Pushes refused for a bad VAPID signature or undecryptable body.
    pub fn pushes_rejected(&self) -> u64 {
        self.with(|i| i.push.rejected)
    }

    pub fn script_email(&self, script: ProviderScript) {
        self.with(|i| i.email.script = script);
    }

    pub fn script_whatsapp(&self, script: ProviderScript) {
        self.with(|i| i.whatsapp.script = script);
    }

    /// Emails delivered (a repeated idempotency key delivers nothing new).
    pub fn emails(&self) -> Vec<Received> {
        self.with(|i| i.email.delivered.clone())
    }

    /// Requests to `POST /emails`, answered or not.
    pub fn email_requests(&self) -> u64 {
        self.with(|i| i.email.requests)
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

    /// A place the Google Places stand-in will find.
    pub fn add_place(&self, place: Place) {
        self.with(|i| i.places.push(place));
    }

    pub fn places_requests(&self) -> u64 {
        self.with(|i| i.places_requests)
    }

    pub fn checkout_visits(&self, id: &str) -> u32 {
        self.with(|i| i.checkout_visits.get(id).copied().unwrap_or(0))
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
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

/// Google Places (legacy) Nearby Search: places within `radius` metres of `location`
/// whose name contains `keyword`, nearest first. A missing key is REQUEST_DENIED.
async fn places_nearby(
    State(s): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    s.with(|i| i.places_requests += 1);
    if q.get("key").is_none_or(|k| k.is_empty()) {
        return Json(json!({"status": "REQUEST_DENIED", "results": []}));
    }
    let parse = |v: &str| v.trim().parse::<f64>().ok();
    let location = q.get("location").and_then(|l| {
        let (lat, lng) = l.split_once(',')?;
        Some((parse(lat)?, parse(lng)?))
    });
    let radius = q.get("radius").and_then(|r| parse(r)).unwrap_or(0.0);
    let Some((lat, lng)) = location else {
        return Json(json!({"status": "INVALID_REQUEST", "results": []}));
    };
    let keyword = q
        .get("keyword")
        .map(|k| k.to_lowercase())
        .unwrap_or_default();
    let mut found: Vec<(f64, Place)> = s.with(|i| {
        i.places
            .iter()
            .map(|p| (metres(lat, lng, p.lat, p.lng), p.clone()))
            .filter(|(d, p)| *d <= radius && p.name.to_lowercase().contains(&keyword))
            .collect()
    });
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let results: Vec<Value> = found
        .iter()
        .map(|(_, p)| {
            json!({"place_id": p.place_id, "name": p.name, "vicinity": p.formatted_address,
                   "geometry": {"location": {"lat": p.lat, "lng": p.lng}}})
        })
        .collect();
    let status = if results.is_empty() {
        "ZERO_RESULTS"
    } else {
        "OK"
    };
    Json(json!({"status": status, "results": results}))
}

/// Google Places (legacy) Place Details.
async fn places_details(
    State(s): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    s.with(|i| i.places_requests += 1);
    let id = q.get("place_id").cloned().unwrap_or_default();
    let Some(p) = s.with(|i| i.places.iter().find(|p| p.place_id == id).cloned()) else {
        return Json(json!({"status": "NOT_FOUND"}));
    };
    Json(json!({"status": "OK", "result": {
        "place_id": p.place_id, "name": p.name, "formatted_address": p.formatted_address,
        "address_components": [
            {"long_name": p.locality, "short_name": p.locality, "types": ["locality", "political"]},
            {"long_name": p.region, "short_name": p.region, "types": ["administrative_area_level_1", "political"]},
            {"long_name": "Uruguay", "short_name": "UY", "types": ["country", "political"]},
        ],
        "geometry": {"location": {"lat": p.lat, "lng": p.lng}},
    }}))
}

fn metres(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let a = ((p2 - p1) / 2.0).sin().powi(2)
        + p1.cos() * p2.cos() * ((lng2 - lng1).to_radians() / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}

async fn stats(State(s): State<Sandbox>) -> Json<Value> {
    Json(s.with(|i| json!({ "api_requests": i.api_requests, "payments": i.payments.len() })))
}

enum ScriptedAnswer {
    Fail,
    RateLimited(u64),
    Reject,
    Accept,
}

fn next_answer(outbox: &mut Outbox) -> (u64, ScriptedAnswer) {
    outbox.requests += 1;
    let s = &mut outbox.script;
    let answer = if s.rate_limit_next > 0 {
        s.rate_limit_next -= 1;
        ScriptedAnswer::RateLimited(s.retry_after_secs.max(1))
    } else if s.fail_next > 0 {
        s.fail_next -= 1;
        ScriptedAnswer::Fail
    } else if s.reject_next > 0 {
        s.reject_next -= 1;
        ScriptedAnswer::Reject
    } else {
        ScriptedAnswer::Accept
    };
    (s.latency_ms, answer)
}

fn scripted_error(answer: &ScriptedAnswer) -> Option<Response> {
    match answer {
        ScriptedAnswer::Fail => Some(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            500,
            "Internal server error",
        )),
        ScriptedAnswer::RateLimited(after) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, 429, "Too many requests");
            if let Ok(v) = axum::http::HeaderValue::from_str(&after.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
            Some(r)
        }
        ScriptedAnswer::Reject => Some(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            422,
            "Invalid `to` field",
        )),
        ScriptedAnswer::Accept => None,
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
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

/// A push service and the browser behind it: checks the VAPID JWT's signature against
/// the `k` it carries, decrypts the aes128gcm body with the browser's key, records it.
async fn push_message(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let browser = s.with(|i| {
        if i.push.gone.contains(&id) {
            None
        } else {
            i.push.browsers.get(&id).cloned()
        }
    });
    let Some(browser) = browser else {
        return StatusCode::GONE;
    };
    let verified = header(&headers, "authorization").is_some_and(|a| vapid_valid(&a))
        && header(&headers, "content-encoding").as_deref() == Some("aes128gcm");
    let decrypted = crate::jobs::notifications::webpush::decrypt(&browser.0, &browser.1, &body)
        .ok()
        .and_then(|plain| serde_json::from_slice::<Value>(&plain).ok());
    match (verified, decrypted) {
        (true, Some(payload)) => {
            s.with(|i| {
                i.push.received.push(payload);
                i.push.topics.push(header(&headers, "topic"));
            });
            StatusCode::CREATED
        }
        _ => {
            s.with(|i| i.push.rejected += 1);
            StatusCode::UNAUTHORIZED
        }
    }
}

/// `vapid t=<header.claims.signature>, k=<public key>` with a valid ES256 signature.
fn vapid_valid(authorization: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some(rest) = authorization.strip_prefix("vapid t=") else {
        return false;
    };
    let Some((token, key)) = rest.split_once(", k=") else {
        return false;
    };
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let (Ok(key), Ok(signature)) = (b64.decode(key), b64.decode(signature)) else {
        return false;
    };
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        key,
    )
    .verify(signed.as_bytes(), &signature)
    .is_ok()
}
