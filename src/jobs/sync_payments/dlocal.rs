//! The dLocal Go API, as much of it as the sync needs: `GET /v1/payments/{id}` and the
//! checkout-page nudge.
//!
//! Owns the wire format (typed, tolerant of amounts as strings or numbers, keeping the
//! whole JSON for `provider_metadata`), the status mapping, and which failures are
//! transient. It does not touch the database.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use reqwest::StatusCode;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::egress::{Guard, Hosts};
use crate::http::{self, RetryPolicy, Timeouts, Transient};

/// Our status for a payment, from dLocal's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Pending,
    Processing,
    Paid,
    Failed,
    Cancelled,
    Expired,
}

impl PaymentStatus {
    /// dLocal's status string, mapped like the original: anything unknown is pending
    /// (and the caller logs it).
    pub fn from_dlocal(status: &str) -> (PaymentStatus, bool) {
        match status {
            "PENDING" => (PaymentStatus::Pending, true),
            "PAID" => (PaymentStatus::Paid, true),
            "REJECTED" => (PaymentStatus::Failed, true),
            "CANCELLED" => (PaymentStatus::Cancelled, true),
            "EXPIRED" => (PaymentStatus::Expired, true),
            _ => (PaymentStatus::Pending, false),
        }
    }

    /// The `payment_status` enum label.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Expired => "expired",
        }
    }

    pub fn parse(label: &str) -> Option<PaymentStatus> {
        Some(match label {
            "pending" => PaymentStatus::Pending,
            "processing" => PaymentStatus::Processing,
            "paid" => PaymentStatus::Paid,
            "failed" => PaymentStatus::Failed,
            "cancelled" => PaymentStatus::Cancelled,
            "expired" => PaymentStatus::Expired,
            _ => return None,
        })
    }
}

/// `payment_type` as a `payment_method` label. dLocal sends upper case
/// (`CREDIT_CARD`); the original wrote it verbatim, which the enum rejects (a gap).
pub(super) fn payment_method(payment_type: &str) -> Option<&'static str> {
    Some(match payment_type.to_ascii_uppercase().as_str() {
        "" => return None,
        "CREDIT_CARD" | "CARD" => "credit_card",
        "DEBIT_CARD" => "debit_card",
        "BANK_TRANSFER" => "bank_transfer",
        "VOUCHER" | "TICKET" => "voucher",
        "PIX" => "pix",
        "CASH" => "cash",
        _ => "other",
    })
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Payer {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub document_type: Option<String>,
    pub document: Option<String>,
}

/// The fields of `GET /v1/payments/{id}` that the sync consumes, plus the whole body.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DlocalPayment {
    pub id: String,
    pub status: String,
    #[serde(deserialize_with = "decimal")]
    pub amount: Decimal,
    pub currency: String,
    pub payment_type: Option<String>,
    #[serde(default, deserialize_with = "optional_decimal")]
    pub balance_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "optional_decimal")]
    pub balance_fee: Option<Decimal>,
    pub balance_currency: Option<String>,
    pub approved_date: Option<String>,
    pub rejected_reason: Option<String>,
    pub country: Option<String>,
    pub redirect_url: Option<String>,
    pub payer: Option<Payer>,
    /// The response as received, stored as `{"fullResponse": ...}`.
    #[serde(skip)]
    pub raw: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Amount {
    Number(serde_json::Number),
    Text(String),
}

fn to_decimal<E: serde::de::Error>(amount: Amount) -> Result<Decimal, E> {
    let text = match amount {
        Amount::Number(n) => n.to_string(),
        Amount::Text(s) => s,
    };
    Decimal::from_str(text.trim())
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map_err(|_| E::custom(format!("`{text}` is not an amount")))
}

fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    to_decimal(Amount::deserialize(d)?)
}

fn optional_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    Option::<Amount>::deserialize(d)?
        .map(to_decimal)
        .transpose()
}

impl DlocalPayment {
    /// Parses a response body, keeping it whole in `raw`.
    pub fn from_body(body: &[u8]) -> Result<DlocalPayment, DlocalError> {
        let raw: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| DlocalError::Decode(format!("the body is not JSON: {e}")))?;
        let mut payment: DlocalPayment = serde_json::from_value(raw.clone())
            .map_err(|e| DlocalError::Decode(format!("unexpected payment JSON: {e}")))?;
        payment.raw = raw;
        Ok(payment)
    }

    /// Our status, and whether dLocal's status was one we know.
    pub fn status(&self) -> (PaymentStatus, bool) {
        PaymentStatus::from_dlocal(&self.status)
    }
}

/// The most of one dLocal Go answer read: a payment is a few kilobytes.
pub(super) const MAX_ANSWER: usize = 1024 * 1024;

/// Why a call to dLocal failed.
#[derive(Debug, Clone, PartialEq)]
pub enum DlocalError {
    /// 404: dLocal does not know this payment id.
    NotFound,
    /// 429, with the wait it asked for.
    RateLimited(Option<Duration>),
    /// Another non-2xx answer, with dLocal's message when it gave one.
    Status(u16, String),
    /// No answer: connection refused, reset, or timed out.
    Network(String),
    /// An answer we could not read.
    Decode(String),
}

impl fmt::Display for DlocalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DlocalError::NotFound => write!(f, "dLocal answered 404: payment not found"),
            DlocalError::RateLimited(_) => write!(f, "dLocal answered 429: rate limited"),
            DlocalError::Status(status, message) => {
                write!(f, "dLocal answered {status}: {message}")
            }
            DlocalError::Network(e) => write!(f, "dLocal unreachable: {e}"),
            DlocalError::Decode(e) => write!(f, "dLocal response unreadable: {e}"),
        }
    }
}

impl Transient for DlocalError {
    fn is_transient(&self) -> bool {
        match self {
            DlocalError::RateLimited(_) | DlocalError::Network(_) => true,
            DlocalError::Status(status, _) => *status >= 500,
            DlocalError::NotFound | DlocalError::Decode(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            DlocalError::RateLimited(after) => *after,
            _ => None,
        }
    }
}

/// Where and how to reach dLocal Go.
#[derive(Clone)]
pub(super) struct DlocalClient {
    http: reqwest::Client,
    /// For the checkout page, whose URL comes from dLocal's answer: checked by
    /// [`CHECKOUT`]'s guard, its redirects too.
    checkout: reqwest::Client,
    checkout_guard: Guard,
    base_url: String,
    authorization: SecretString,
    retry: RetryPolicy,
}

/// The nudge GETs a page, not the API: short timeout, any answer is fine.
const NUDGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where dLocal Go's hosted checkout pages live (`checkout.dlocalgo.com`); the
/// configured base URL's origin is admitted too, for the stand-in.
const CHECKOUT: &str = "dlocalgo.com";

impl DlocalClient {
    pub(super) fn new(
        base_url: &str,
        api_key: &SecretString,
        secret_key: &SecretString,
        timeouts: Timeouts,
        retry: RetryPolicy,
    ) -> reqwest::Result<DlocalClient> {
        let checkout_guard = Guard::new(Hosts::Within(vec![CHECKOUT.into()]), [base_url]);
        Ok(DlocalClient {
            http: http::client(timeouts)?,
            checkout: checkout_guard.client(http::builder(timeouts), 3)?,
            checkout_guard,
            base_url: base_url.trim_end_matches('/').to_string(),
            authorization: SecretString::from(format!(
                "Bearer {}:{}",
                api_key.expose_secret(),
                secret_key.expose_secret()
            )),
            retry,
        })
    }

    /// `GET /v1/payments/{id}`, retried on transient failures.
    pub(super) async fn get_payment(
        &self,
        provider_payment_id: &str,
    ) -> Result<DlocalPayment, DlocalError> {
        let url = format!(
            "{}/v1/payments/{}",
            self.base_url,
            urlencode(provider_payment_id)
        );
        http::retry(self.retry, "dlocal get_payment", || self.get_once(&url)).await
    }

    async fn get_once(&self, url: &str) -> Result<DlocalPayment, DlocalError> {
        let response = self
            .http
            .get(url)
            .header("Authorization", self.authorization.expose_secret())
            .header("Content-Type", "application/json")
            .send()
            .await
            .map_err(|e| DlocalError::Network(without_url(e)))?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        let body = http::read_capped(response, "dLocal Go", MAX_ANSWER)
            .await
            .map_err(|e| match e {
                http::BodyError::TooLarge { .. } => DlocalError::Decode(e.to_string()),
                http::BodyError::Cut { .. } => DlocalError::Network(e.to_string()),
            })?;
        match status {
            s if s.is_success() => DlocalPayment::from_body(&body),
            StatusCode::NOT_FOUND => Err(DlocalError::NotFound),
            StatusCode::TOO_MANY_REQUESTS => Err(DlocalError::RateLimited(retry_after)),
            s => Err(DlocalError::Status(s.as_u16(), message(&body))),
        }
    }

    /// GETs the hosted checkout page of a payment still pending: dLocal Go may only
    /// emit the EXPIRED transition once that page is visited (the original's
    /// force-expiration check). Never fails: errors are logged.
    pub(super) async fn nudge_checkout(&self, redirect_url: &str) {
        let url = match self.checkout_guard.check(redirect_url) {
            Ok(url) => url,
            Err(refused) => {
                tracing::warn!(%refused, "checkout nudge skipped: dLocal's redirect_url is refused");
                return;
            }
        };
        let result = self.checkout.get(url).timeout(NUDGE_TIMEOUT).send().await;
        if let Err(e) = result {
            tracing::warn!(error = %without_url(e), "checkout nudge failed");
        }
    }
}

/// dLocal's `message` field, or the start of the body.
fn message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

/// reqwest's message without the URL (a payment id is fine in logs, but keep lines short).
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match std::error::Error::source(&e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_string(),
    }
}

fn urlencode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_checkout_url_outside_dlocal_is_never_fetched() {
        let internal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = internal.local_addr().unwrap().port();
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(1),
        };
        let key = SecretString::from("k");
        let client = DlocalClient::new(
            "http://127.0.0.1:1",
            &key,
            &key,
            timeouts,
            RetryPolicy::DEFAULT,
        )
        .unwrap();
        for url in [
            format!("http://127.0.0.1:{port}/checkout"),
            format!("https://127.0.0.1:{port}/checkout"),
            format!("https://checkout.dlocalgo.com@127.0.0.1:{port}/"),
            "https://checkout.evil.test/".to_string(),
        ] {
            client.nudge_checkout(&url).await;
        }
        let accepted = tokio::time::timeout(Duration::from_millis(200), internal.accept()).await;
        assert!(accepted.is_err(), "a refused checkout URL was contacted");
        assert!(
            client
                .checkout_guard
                .check("https://checkout.dlocalgo.com/validate/x")
                .is_ok()
        );
    }

    #[test]
    fn amounts_are_read_from_numbers_and_strings() {
        let p = DlocalPayment::from_body(br#"{"id":"D-1","status":"PAID","amount":"1250.50","currency":"UYU","balance_amount":31.2,"balance_fee":1,"extra":{"x":1}}"#).unwrap();
        assert_eq!(p.amount, Decimal::from_str("1250.50").unwrap());
        assert_eq!(p.balance_amount, Some(Decimal::from_str("31.2").unwrap()));
        assert_eq!(p.balance_fee, Some(Decimal::ONE));
        assert_eq!(p.raw["extra"]["x"], 1, "the whole body is kept");
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let e = DlocalPayment::from_body(b"<html>").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = DlocalPayment::from_body(br#"{"id":"D-1","status":"PAID","currency":"UYU"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("missing field `amount`"), "{e}");
        let e = DlocalPayment::from_body(
            br#"{"id":"D-1","status":"PAID","amount":"12,5","currency":"UYU"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`12,5` is not an amount"), "{e}");
    }

    #[test]
    fn statuses_map_like_the_original_with_unknown_as_pending() {
        assert_eq!(
            PaymentStatus::from_dlocal("REJECTED"),
            (PaymentStatus::Failed, true)
        );
        assert_eq!(
            PaymentStatus::from_dlocal("EXPIRED"),
            (PaymentStatus::Expired, true)
        );
        assert_eq!(
            PaymentStatus::from_dlocal("AUTHORIZED"),
            (PaymentStatus::Pending, false)
        );
    }

    #[test]
    fn payment_types_become_enum_labels() {
        assert_eq!(payment_method("CREDIT_CARD"), Some("credit_card"));
        assert_eq!(payment_method("bank_transfer"), Some("bank_transfer"));
        assert_eq!(payment_method("WALLET"), Some("other"));
        assert_eq!(payment_method(""), None);
    }
}
