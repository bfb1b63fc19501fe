//! The providers notifications are delivered through: Resend (email) and the WhatsApp
//! Cloud API (template messages). Owns their wire formats and how their answers are
//! classified: sent, worth retrying later (network, 5xx, 429 with its Retry-After), or
//! refused for good (other 4xx). Without credentials a provider logs what it would send
//! and reports success, like the original's console providers.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};

use crate::http::{self, RetryPolicy, Timeouts, Transient};

/// The most of one Resend or WhatsApp answer read: theirs are a few hundred bytes.
const MAX_ANSWER: usize = 1024 * 1024;

/// Why a send did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Try again later (network, timeout, 5xx, 429), after `after` if the provider said.
    Transient {
        message: String,
        after: Option<Duration>,
    },
    /// The provider asked for a wait too long to sit out in this run (429 with a long
    /// Retry-After): a later run tries again, no sooner than `after`.
    Deferred { message: String, after: Duration },
    /// The provider refused this message; sending it again would not help.
    Permanent(String),
    /// A request that cannot be repeated safely was sent and no answer came back: it may
    /// or may not have been accepted. Only a delivery receipt can tell.
    Unknown(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Transient { message, .. }
            | SendError::Deferred { message, .. }
            | SendError::Permanent(message)
            | SendError::Unknown(message) => f.write_str(message),
        }
    }
}

impl Transient for SendError {
    fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient { .. })
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Transient { after, .. } => *after,
            SendError::Deferred { after, .. } => Some(*after),
            SendError::Permanent(_) | SendError::Unknown(_) => None,
        }
    }
}

/// In-process retries of one send: quick, because a channel that keeps failing is
/// retried by a later run (with backoff) anyway.
const QUICK: RetryPolicy = RetryPolicy {
    retries: 2,
    initial: Duration::from_millis(250),
    max: Duration::from_secs(2),
};

/// How a provider call may be repeated.
#[derive(Clone, Copy, PartialEq)]
enum Repeat {
    /// The provider deduplicates (Resend's Idempotency-Key): retry whatever happened.
    Safe,
    /// No deduplication (WhatsApp): never resend a request that may have been accepted.
    /// Only a refused connection (nothing sent) or an error answer (not accepted) is
    /// worth another try, by a later run; an answer lost on the way means the outcome is
    /// unknown, and the caller settles it from delivery receipts, never by resending now.
    AtMostOnce,
}

/// POSTs JSON and classifies the answer.
async fn post(
    client: &reqwest::Client,
    url: &str,
    provider: &str,
    headers: &[(&str, &str)],
    body: &Value,
    repeat: Repeat,
) -> Result<Value, SendError> {
    let once = || async {
        let mut request = client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| no_answer(&e, provider, repeat))?;
        let status = response.status();
        let after = http::retry_after(response.headers());
        match http::read_capped(response, provider, MAX_ANSWER).await {
            Ok(bytes) => classify(status, after, &bytes, provider, repeat),
            Err(e @ http::BodyError::TooLarge { .. }) if status.is_success() => {
                // Accepted: it was sent, whatever else the answer says.
                tracing::warn!(error = %e, "provider's answer not read");
                Ok(Value::Null)
            }
            Err(e @ http::BodyError::TooLarge { .. }) => Err(SendError::Permanent(e.to_string())),
            // Accepted, then the body was cut off: it was sent.
            Err(_) if status.is_success() => Ok(Value::Null),
            Err(_) => Err(SendError::Transient {
                message: format!("{provider} answer cut off"),
                after: None,
            }),
        }
    };
    match repeat {
        Repeat::Safe => http::retry(QUICK, provider, once).await,
        Repeat::AtMostOnce => once().await,
    }
}

/// A request that got no answer: never sent (connection refused), or sent with its
/// outcome unknown, which only a provider that deduplicates may simply repeat.
fn no_answer(e: &reqwest::Error, provider: &str, repeat: Repeat) -> SendError {
    if repeat == Repeat::AtMostOnce && !e.is_connect() {
        return SendError::Unknown(format!(
            "{provider}: outcome unknown (no answer after sending)"
        ));
    }
    let why = if e.is_timeout() {
        "timed out"
    } else {
        "connection failed"
    };
    SendError::Transient {
        message: format!("{provider} unreachable: {why}"),
        after: None,
    }
}

/// What a provider's answer means: its JSON, or why not and whether to try again.
fn classify(
    status: reqwest::StatusCode,
    after: Option<std::time::Duration>,
    bytes: &[u8],
    provider: &str,
    repeat: Repeat,
) -> Result<Value, SendError> {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    let detail = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.pointer("/error/message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned());
    match status.as_u16() {
        200..=299 => match (parsed, repeat) {
            (Some(v), _) => Ok(v),
            // A provider that deduplicates can be asked again to get a readable answer.
            (None, Repeat::Safe) => Err(SendError::Transient {
                message: format!("{provider} answered {status} with a body that is not JSON"),
                after: None,
            }),
            (None, Repeat::AtMostOnce) => Ok(Value::Null),
        },
        429 => {
            let message = format!("{provider} answered 429: {detail}");
            match after {
                Some(after) if after > QUICK.max => Err(SendError::Deferred { message, after }),
                _ => Err(SendError::Transient { message, after }),
            }
        }
        // Resend: the same idempotency key still in flight (a retry racing the
        // first request). Asking again later gets the first request's answer.
        409 if repeat == Repeat::Safe => Err(SendError::Transient {
            message: format!("{provider} answered 409: {detail}"),
            after: None,
        }),
        500..=599 => Err(SendError::Transient {
            message: format!("{provider} answered {status}: {detail}"),
            after,
        }),
        _ => Err(SendError::Permanent(format!(
            "{provider} answered {status}: {detail}"
        ))),
    }
}

/// One email, rendered.
#[derive(Debug, Clone, Serialize)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Files, as Resend takes them: name and base64 content.
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub filename: String,
    pub content: String,
}

/// Resend's `POST /emails`.
#[derive(Clone)]
pub struct Resend {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<SecretString>,
    from: String,
    reply_to: String,
}

impl Resend {
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        from: &str,
        timeouts: Timeouts,
    ) -> reqwest::Result<Resend> {
        Ok(Resend {
            http: http::client(timeouts)?,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            from: format!("Revendiste <{from}>"),
            reply_to: "ayuda@revendiste.com".to_string(),
        })
    }

    /// Sends `email`. `idempotency_key` makes a resend after a crash a no-op at Resend.
    pub async fn send(&self, email: &Email, idempotency_key: &str) -> Result<String, SendError> {
        let Some(key) = &self.api_key else {
            // Neither address nor subject: a subject can carry a one-time code.
            tracing::info!(
                attachments = email.attachments.len(),
                "email (console provider, not sent)"
            );
            return Ok("console".to_string());
        };
        let mut body = json!({
            "from": self.from,
            "to": [email.to],
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
            "reply_to": self.reply_to,
        });
        if !email.attachments.is_empty() {
            body["attachments"] = json!(email.attachments);
        }
        let auth = format!("Bearer {}", key.expose_secret());
        let answer = post(
            &self.http,
            &format!("{}/emails", self.base_url),
            "Resend",
            &[
                ("Authorization", &auth),
                ("Idempotency-Key", idempotency_key),
            ],
            &body,
            Repeat::Safe,
        )
        .await?;
        Ok(answer
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }
}

/// One WhatsApp template message.
#[derive(Debug, Clone)]
pub struct WhatsAppMessage {
    pub to: String,
    pub template: &'static str,
    pub parameters: Vec<String>,
    /// Sent as `biz_opaque_callback_data`: Meta echoes it in every status webhook of this
    /// message, which is how a receipt is matched to its notification.
    pub callback_data: String,
}

/// The WhatsApp Cloud API's `POST /<version>/<phone-number-id>/messages`.
#[derive(Clone)]
pub struct WhatsApp {
    http: reqwest::Client,
    url: String,
    token: Option<SecretString>,
}

impl WhatsApp {
    pub fn new(
        base_url: &str,
        api_version: &str,
        phone_number_id: &str,
        token: Option<SecretString>,
        timeouts: Timeouts,
    ) -> reqwest::Result<WhatsApp> {
        Ok(WhatsApp {
            http: http::client(timeouts)?,
            url: format!(
                "{}/{api_version}/{phone_number_id}/messages",
                base_url.trim_end_matches('/')
            ),
            token,
        })
    }

    pub async fn send(&self, message: &WhatsAppMessage) -> Result<String, SendError> {
        let Some(token) = &self.token else {
            tracing::info!(
                template = message.template,
                "whatsapp (console provider, not sent)"
            );
            return Ok("console".to_string());
        };
        let parameters: Vec<Value> = message
            .parameters
            .iter()
            .map(|text| json!({ "type": "text", "text": text }))
            .collect();
        let body = json!({
            "messaging_product": "whatsapp",
            "to": message.to,
            "type": "template",
            "template": {
                "name": message.template,
                "language": { "code": "es" },
                "components": [{ "type": "body", "parameters": parameters }],
            },
            "biz_opaque_callback_data": message.callback_data,
        });
        let auth = format!("Bearer {}", token.expose_secret());
        let answer = post(
            &self.http,
            &self.url,
            "WhatsApp",
            &[("Authorization", &auth)],
            &body,
            Repeat::AtMostOnce,
        )
        .await?;
        Ok(answer
            .pointer("/messages/0/id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }
}
