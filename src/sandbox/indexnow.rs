//! The IndexNow stand-in: `POST /indexnow`, recording each ping's body; the next N
//! pings can be refused with a 500.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use super::Sandbox;

pub(super) fn routes() -> Router<Sandbox> {
    Router::new().route("/indexnow", post(ping))
}

impl Sandbox {
    /// The pings received and accepted, in order.
    pub fn indexnow_pings(&self) -> Vec<Value> {
        self.with(|i| i.indexnow.clone())
    }

    /// The next `n` pings are answered 500.
    pub fn refuse_indexnow(&self, n: u32) {
        self.with(|i| i.indexnow_refuse_next = n);
    }
}

async fn ping(State(s): State<Sandbox>, Json(body): Json<Value>) -> StatusCode {
    s.with(|i| {
        if i.indexnow_refuse_next > 0 {
            i.indexnow_refuse_next -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        i.indexnow.push(body);
        StatusCode::OK
    })
}
