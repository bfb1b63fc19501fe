//! What the two messaging stand-ins (Resend, WhatsApp) share: a script for their next
//! answers (latency, 500s, 429s with `Retry-After`, 422 refusals) and a record of what
//! they accepted.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::error;

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
pub(super) struct Outbox {
    pub(super) script: ProviderScript,
    pub(super) requests: u64,
    pub(super) delivered: Vec<Received>,
    /// Resend answers a repeated Idempotency-Key with the first answer, sending nothing.
    pub(super) keys: HashMap<String, String>,
}

pub(super) enum ScriptedAnswer {
    Fail,
    RateLimited(u64),
    Reject,
    Accept,
}

pub(super) fn next_answer(outbox: &mut Outbox) -> (u64, ScriptedAnswer) {
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

pub(super) fn scripted_error(answer: &ScriptedAnswer) -> Option<Response> {
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
