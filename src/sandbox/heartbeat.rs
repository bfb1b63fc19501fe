//! A Healthchecks.io-style ping endpoint: `POST /ping/<check>`, `/ping/<check>/start`
//! and `/ping/<check>/fail`, with the run id in `?rid=`, answered `200 OK` as
//! hc-ping.com does. Records every ping; can be told to hang (never answer).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::post;
use serde::Deserialize;

use super::Sandbox;

/// One ping as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub check: String,
    /// `start`, `success` or `fail`.
    pub kind: String,
    pub rid: Option<String>,
    pub body: String,
}

#[derive(Deserialize)]
struct Rid {
    rid: Option<String>,
}

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/ping/{check}", post(success))
        .route("/ping/{check}/{kind}", post(signal))
}

impl Sandbox {
    /// The pings received, in order.
    pub fn heartbeats(&self) -> Vec<Ping> {
        self.with(|i| i.heartbeats.clone())
    }

    /// From now on, pings are recorded but never answered.
    pub fn hang_heartbeats(&self) {
        self.with(|i| i.heartbeats_hang = true);
    }
}

async fn success(
    s: State<Sandbox>,
    Path(check): Path<String>,
    rid: Query<Rid>,
    body: String,
) -> &'static str {
    record(s, check, "success".into(), rid, body).await
}

async fn signal(
    s: State<Sandbox>,
    Path((check, kind)): Path<(String, String)>,
    rid: Query<Rid>,
    body: String,
) -> &'static str {
    record(s, check, kind, rid, body).await
}

async fn record(
    State(s): State<Sandbox>,
    check: String,
    kind: String,
    Query(rid): Query<Rid>,
    body: String,
) -> &'static str {
    let hang = s.with(|i| {
        i.heartbeats.push(Ping {
            check,
            kind,
            rid: rid.rid,
            body,
        });
        i.heartbeats_hang
    });
    if hang {
        std::future::pending::<()>().await;
    }
    "OK"
}
