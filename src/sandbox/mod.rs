//! Local stand-ins for the providers (feature `sandbox`; never in a release image),
//! speaking their real wire formats on one loopback port: dLocal Go (`dlocal`), Resend
//! (`resend`), the WhatsApp Cloud API (`whatsapp`), a web push service (`push`), Google
//! Places (`places`), IndexNow (`indexnow`), FEU's invoicing API ([`feu`]) and a
//! Healthchecks.io-style heartbeat endpoint (`heartbeat`); besides, the marketplace's own WhatsApp webhook route
//! ([`marketplace`]) and the ticket sites ([`site`]).
//!
//! Tests drive it through [`Sandbox`], which scripts each stand-in and reads what it
//! received; the `provider-sandbox` binary serves it for the Quickstart and benchmarks.

pub mod marketplace;
pub mod site;

mod dlocal;
pub mod feu;
mod heartbeat;
mod indexnow;
mod outbox;
mod places;
mod push;
mod resend;
mod whatsapp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use dlocal::{Behaviour, Scripted, payment_body};
pub use heartbeat::Ping;
pub use outbox::{ProviderScript, Received};
pub use places::Place;

/// Every stand-in's state, behind one lock.
#[derive(Default)]
struct Inner {
    payments: HashMap<String, Scripted>,
    behaviour: Behaviour,
    api_requests: u64,
    checkout_visits: HashMap<String, u32>,
    email: outbox::Outbox,
    whatsapp: outbox::Outbox,
    /// Where the WhatsApp stand-in sends its status webhooks, and the app secret it
    /// signs them with.
    whatsapp_webhook: Option<(String, String)>,
    push: push::PushService,
    places: Vec<Place>,
    places_requests: u64,
    indexnow: Vec<serde_json::Value>,
    indexnow_refuse_next: u32,
    feu: feu::FeuState,
    heartbeats: Vec<Ping>,
    heartbeats_hang: bool,
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
        let app = dlocal::routes()
            .merge(resend::routes())
            .merge(whatsapp::routes())
            .merge(push::routes())
            .merge(places::routes())
            .merge(indexnow::routes())
            .merge(feu::routes())
            .merge(heartbeat::routes())
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
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
