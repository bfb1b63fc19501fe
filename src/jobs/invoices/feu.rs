//! The FEU (Facturación Electrónica Uruguay) API, as the original's client uses it
//! (mathfalcon/revendiste, apps/backend/src/services/feu): a token from `FEU_AUTH_URL`
//! (the refresh-token grant, falling back to username and password), kept for the run;
//! `POST /comprobantes/crear` for an e-ticket without an identified receiver, carrying
//! `id_externo`, FEU's idempotency token, so asking again after a lost answer returns
//! the document already created instead of a second one; `GET /comprobantes/{id}/pdf`,
//! the PDF as base64 JSON. Every call sends `X-Emisor` (the issuer's RUT).
//!
//! Secrets (`FEU_REFRESH_TOKEN`, `FEU_PASSWORD`, the access token) never reach a message.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::config::{self, Env};
use crate::http::{self, RetryPolicy, Transient};

/// Where FEU is and who we are to it.
#[derive(Clone)]
pub struct FeuSettings {
    /// `FEU_AUTH_URL`, required.
    pub auth_url: String,
    /// `FEU_API_BASE_URL`, required.
    pub api_base: String,
    /// `FEU_REFRESH_TOKEN`; without it, `FEU_USERNAME` and `FEU_PASSWORD` are required.
    pub refresh_token: Option<SecretString>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// `FEU_EMISOR_RUT`, required: the issuer, sent as `X-Emisor`.
    pub emisor_rut: String,
    /// `FEU_SUCURSAL`: the issuer's DGI branch. Defaults to 1.
    pub sucursal: u32,
    /// `FEU_REQUEST_TIMEOUT_MS`: one call. Defaults to 30000 (the original's).
    pub timeout: Duration,
}

impl FeuSettings {
    pub fn from_env(env: &Env) -> Result<FeuSettings, config::Error> {
        let why = "by the invoices job";
        let auth_url = config::required(env, "FEU_AUTH_URL", why)?;
        let api_base = config::required(env, "FEU_API_BASE_URL", why)?;
        let emisor_rut = config::required(env, "FEU_EMISOR_RUT", why)?;
        let refresh_token = env("FEU_REFRESH_TOKEN").map(SecretString::from);
        let (username, password) = (env("FEU_USERNAME"), env("FEU_PASSWORD"));
        if refresh_token.is_none() {
            let why = "when FEU_REFRESH_TOKEN is not set";
            config::required(env, "FEU_USERNAME", why)?;
            config::required(env, "FEU_PASSWORD", why)?;
        }
        Ok(FeuSettings {
            auth_url,
            api_base: api_base.trim_end_matches('/').to_string(),
            refresh_token,
            username,
            password: password.map(SecretString::from),
            emisor_rut,
            sucursal: config::parse(env, "FEU_SUCURSAL", 1u32, 1..=9999)?,
            timeout: Duration::from_millis(config::parse(
                env,
                "FEU_REQUEST_TIMEOUT_MS",
                30_000u64,
                1_000..=300_000,
            )?),
        })
    }
}

/// A failed FEU call.
#[derive(Debug, Clone, PartialEq)]
pub enum FeuError {
    /// Worth another try later: unreachable, 5xx, an answer that cannot be read. With
    /// `id_externo` a retried creation cannot issue a second document.
    Transient(String),
    /// FEU refused the document (a 4xx about the request): asking again cannot help.
    Rejected(String),
    /// FEU refused our credentials: the token grants (refresh token, then password)
    /// were refused (any 4xx), or the API refused a freshly granted token (401).
    /// Nothing is wrong with the documents; every call of the run would fail the same.
    Refused(String),
}

impl fmt::Display for FeuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeuError::Transient(m) | FeuError::Rejected(m) | FeuError::Refused(m) => f.write_str(m),
        }
    }
}

impl Transient for FeuError {
    fn is_transient(&self) -> bool {
        matches!(self, FeuError::Transient(_))
    }
}

/// One e-ticket (type 101) line: FEU reads `precio` as the total, VAT included.
#[derive(Debug, Clone)]
pub struct Comprobante {
    pub id_externo: String,
    pub moneda: String,
    pub fecha: NaiveDate,
    pub concepto: String,
    pub precio: Decimal,
    pub adenda: String,
}

/// What FEU answers for a created document (its "Parámetros de Salida").
#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    pub id: i64,
    pub serie: String,
    pub numero: i64,
    /// The whole answer, stored with the invoice.
    #[serde(skip)]
    pub raw: Value,
}

/// Two quick retries inside a call, as the original (which tried twice on 5xx).
const QUICK: RetryPolicy = RetryPolicy {
    retries: 2,
    initial: Duration::from_millis(300),
    max: Duration::from_secs(2),
};

pub struct Feu {
    client: reqwest::Client,
    settings: FeuSettings,
    /// The access token, obtained once per run.
    token: Mutex<Option<SecretString>>,
}

impl Feu {
    pub fn new(settings: FeuSettings) -> reqwest::Result<Feu> {
        let client = http::client(http::Timeouts {
            connect: Duration::from_secs(5),
            request: settings.timeout,
        })?;
        Ok(Feu {
            client,
            settings,
            token: Mutex::new(None),
        })
    }

    /// The run's access token: the refresh-token grant, else username and password.
    async fn token(&self) -> Result<SecretString, FeuError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            return Ok(t.clone());
        }
        let s = &self.settings;
        let mut refused = None;
        if let Some(refresh) = &s.refresh_token {
            let body =
                json!({ "grant_type": "refresh_token", "refresh_token": refresh.expose_secret() });
            match self.grant(&body).await {
                Ok(t) => {
                    *cached = Some(t.clone());
                    return Ok(t);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "FEU refresh token refused; trying username and password");
                    refused = Some(e);
                }
            }
        }
        let (Some(user), Some(password)) = (&s.username, &s.password) else {
            return Err(refused.unwrap_or_else(|| FeuError::Refused("FEU: no credentials".into())));
        };
        let body = json!({ "grant_type": "password", "username": user, "password": password.expose_secret() });
        let t = http::retry(QUICK, "FEU auth", || self.grant(&body)).await?;
        *cached = Some(t.clone());
        Ok(t)
    }

    async fn grant(&self, body: &Value) -> Result<SecretString, FeuError> {
        let response = self
            .client
            .post(&self.settings.auth_url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| unreachable("FEU auth", &e))?;
        let status = response.status();
        // A login carries no invoice that could be wrong: any refusal (401, 403, OAuth's
        // 400 invalid_grant, with or without a JSON body) is a refusal of who we are.
        if !status.is_success() {
            return Err(match by_status(status, "FEU auth") {
                FeuError::Rejected(m) => FeuError::Refused(m),
                transient => transient,
            });
        }
        let answer: Value = read(response, "FEU auth").await?;
        answer["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_string()))
            .ok_or_else(|| FeuError::Transient("FEU auth answered without an access_token".into()))
    }

    /// Creates the e-ticket; the same `id_externo` again returns the same document.
    pub async fn create(&self, c: &Comprobante) -> Result<Created, FeuError> {
        let precio = c
            .precio
            .round_dp(2)
            .to_f64()
            .ok_or_else(|| FeuError::Rejected(format!("amount {} out of range", c.precio)))?;
        let body = json!({
            "sucursal": self.settings.sucursal,
            "tipo_comprobante": 101,
            "forma_pago": 1,
            "moneda": c.moneda,
            "cod_montos_brutos": 1,
            "fecha_comprobante": c.fecha.format("%Y-%m-%d").to_string(),
            "id_externo": c.id_externo,
            "items": [{
                "cantidad": 1, "concepto": truncate(&c.concepto, 80), "precio": precio,
                "indicador_facturacion": 3, "unidad": "Un",
            }],
            "adenda": { "texto": truncate(&c.adenda, 150) },
        });
        let url = format!("{}/comprobantes/crear", self.settings.api_base);
        let raw = self
            .call(reqwest::Method::POST, &url, Some(&body), "FEU create")
            .await?;
        let mut created: Created = serde_json::from_value(raw.clone()).map_err(|e| {
            FeuError::Transient(format!(
                "FEU create answered without its document fields: {e}"
            ))
        })?;
        created.raw = raw;
        Ok(created)
    }

    /// The document's PDF.
    pub async fn pdf(&self, id: i64) -> Result<Vec<u8>, FeuError> {
        let url = format!("{}/comprobantes/{id}/pdf", self.settings.api_base);
        let answer = self
            .call(reqwest::Method::GET, &url, None, "FEU pdf")
            .await?;
        if answer["format"] != "base64" {
            return Err(FeuError::Transient(format!(
                "FEU pdf answered format {}, not base64",
                answer["format"]
            )));
        }
        let data = answer["data"].as_str().unwrap_or_default();
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| FeuError::Transient("FEU pdf data is not base64".into()))?;
        // It is attached to an email as a PDF: anything else is not sent to a customer.
        if !pdf.starts_with(b"%PDF-") {
            return Err(FeuError::Transient(
                "FEU pdf data is not a PDF (no %PDF- header)".into(),
            ));
        }
        Ok(pdf)
    }

    /// One API call with the run's token, retried quickly on transient failures; an
    /// expired token is replaced once.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        what: &'static str,
    ) -> Result<Value, FeuError> {
        let once = || async {
            let token = self.token().await?;
            let mut request = self
                .client
                .request(method.clone(), url)
                .bearer_auth(token.expose_secret())
                .header("X-Emisor", &self.settings.emisor_rut);
            if let Some(body) = body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.to_string());
            }
            let response = request.send().await.map_err(|e| unreachable(what, &e))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return Err(FeuError::Refused(format!("{what} answered {status}")));
            }
            // A 403 on a document may be about that document (the issuer not allowed a
            // currency, a filter in front of FEU): the row uses an attempt, the run goes on.
            if status == reqwest::StatusCode::FORBIDDEN {
                return Err(FeuError::Transient(format!("{what} answered {status}")));
            }
            if !status.is_success() {
                return Err(by_status(status, what));
            }
            read(response, what).await
        };
        match http::retry(QUICK, what, once).await {
            // The token may have expired during the run: one fresh grant, one more try.
            Err(FeuError::Refused(_)) if self.token.lock().await.take().is_some() => {
                http::retry(QUICK, what, once).await
            }
            other => other,
        }
    }
}

/// The most of one FEU answer read: a document's PDF comes base64-encoded inside it,
/// and an invoice's PDF is tens of kilobytes.
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;

async fn read(response: reqwest::Response, what: &str) -> Result<Value, FeuError> {
    let status = response.status();
    let bytes = http::read_capped(response, "FEU", MAX_ANSWER)
        .await
        .map_err(|e| match e {
            // The same document would bring the same answer: that document's failure.
            http::BodyError::TooLarge { .. } => FeuError::Rejected(format!("{what}: {e}")),
            http::BodyError::Cut { .. } => FeuError::Transient(format!("{what}: answer cut off")),
        })?;
    serde_json::from_slice(&bytes).map_err(|_| {
        if status.is_success() {
            FeuError::Transient(format!(
                "{what} answered {status} with a body that is not JSON"
            ))
        } else {
            by_status(status, what)
        }
    })
}

fn by_status(status: reqwest::StatusCode, what: &str) -> FeuError {
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        FeuError::Transient(format!("{what} answered {status}"))
    } else {
        FeuError::Rejected(format!("{what} answered {status}"))
    }
}

fn unreachable(what: &str, e: &reqwest::Error) -> FeuError {
    let why = if e.is_timeout() {
        "timed out"
    } else {
        "unreachable"
    };
    FeuError::Transient(format!("{what}: {why}"))
}

/// At most `max` UTF-16 units, with an ellipsis when cut: FEU's field limits as the
/// original measures them (apps/backend/src/services/feu/builders.ts, `text.length`), so
/// an emoji counts two. The cut never splits a character (JavaScript's `slice` can leave
/// half an emoji; we stop before it).
fn truncate(text: &str, max: usize) -> String {
    if text.encode_utf16().count() <= max {
        return text.to_string();
    }
    let mut units = 0;
    let kept: String = text
        .chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= max - 3
        })
        .collect();
    format!("{kept}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_fields_are_cut_to_feus_limits() {
        assert_eq!(truncate("corto", 80), "corto");
        let long = "Comisión ".repeat(20);
        let cut = truncate(&long, 80);
        assert_eq!(cut.chars().count(), 80);
        assert!(cut.ends_with("..."));
        // Emoji are two units each, as JavaScript's `length` counts them.
        let party = "🎉".repeat(40);
        assert_eq!(truncate(&party, 80), party, "exactly 80 units");
        let cut = truncate(&format!("{party}!"), 80);
        assert_eq!(cut.encode_utf16().count(), 79, "38 emoji and the ellipsis");
        assert_eq!(cut, format!("{}...", "🎉".repeat(38)));
    }

    #[test]
    fn settings_name_what_is_missing() {
        let e = FeuSettings::from_env(&|_: &str| None).err().unwrap();
        assert_eq!(e.variable, "FEU_AUTH_URL");
        let env = |k: &str| match k {
            "FEU_AUTH_URL" | "FEU_API_BASE_URL" | "FEU_EMISOR_RUT" => Some("x".to_string()),
            _ => None,
        };
        let e = FeuSettings::from_env(&env).err().unwrap();
        assert_eq!(
            e.variable, "FEU_USERNAME",
            "no refresh token: the password login"
        );
        let env = |k: &str| match k {
            "FEU_AUTH_URL" | "FEU_API_BASE_URL" | "FEU_EMISOR_RUT" | "FEU_REFRESH_TOKEN" => {
                Some("x".to_string())
            }
            _ => None,
        };
        assert!(FeuSettings::from_env(&env).is_ok());
    }
}
