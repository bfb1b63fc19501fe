//! The FEU (Facturación Electrónica Uruguay) stand-in, in the wire format the original's
//! client speaks (apps/backend/src/services/feu): `POST /auth/token` (grant
//! `refresh_token` or `password`, answering `{access_token, token_type, refresh_token}`
//! with a JWT whose `exp` says how long it lasts); `POST /comprobantes/crear` (Bearer
//! token and `X-Emisor`; a repeated `id_externo` answers the document already created,
//! which is FEU's idempotency token); `GET /comprobantes/{id}/pdf` (the PDF as base64
//! JSON). Every document created is recorded, so a test can count them; answers can be
//! scripted: 500s, garbage, a slow answer, a PDF that is not base64.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};

use super::{Sandbox, header};

/// The refresh token, user and password the stand-in accepts, and the RUT it serves.
pub const REFRESH_TOKEN: &str = "feu-refresh-token";
pub const USERNAME: &str = "feu-user";
pub const PASSWORD: &str = "feu-password";
pub const EMISOR: &str = "219999830019";

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/auth/token", post(token))
        .route("/comprobantes/crear", post(create))
        .route("/comprobantes/{id}/pdf", get(pdf))
}

/// A document the stand-in issued.
#[derive(Debug, Clone)]
pub struct FeuDocument {
    pub id: u64,
    pub id_externo: Option<String>,
    pub payload: Value,
}

/// How the FEU stand-in answers its next requests.
#[derive(Debug, Clone, Default)]
pub struct FeuScript {
    /// The refresh token is refused (the client must fall back to the password).
    pub refresh_revoked: bool,
    /// The next N creations answer 500 (after creating nothing).
    pub create_fail_next: u32,
    /// The next N creations create the document, then answer 500: the answer is lost.
    pub create_lose_answer_next: u32,
    /// The next N creations answer 200 with a body that is not JSON.
    pub create_garbage_next: u32,
    /// The next N PDF answers carry data that is not base64.
    pub pdf_not_base64_next: u32,
    /// The next N PDF answers are valid base64 of something that is not a PDF.
    pub pdf_not_a_pdf_next: u32,
    /// The next N PDF answers are 500.
    pub pdf_fail_next: u32,
    /// Every token request is answered with this status and body instead (a login
    /// endpoint refusing in its own way: OAuth's 400 `invalid_grant`, a bare 401).
    pub refuse_logins: Option<(u16, String)>,
    /// Added to every creation.
    pub create_latency_ms: u64,
}

#[derive(Default)]
pub(super) struct FeuState {
    pub(super) script: FeuScript,
    pub(super) documents: Vec<FeuDocument>,
    pub(super) auth_requests: Vec<String>,
    pub(super) tokens: Vec<String>,
}

impl Sandbox {
    pub fn script_feu(&self, script: FeuScript) {
        self.with(|i| i.feu.script = script);
    }

    /// Every fiscal document created, in order.
    pub fn feu_documents(&self) -> Vec<FeuDocument> {
        self.with(|i| i.feu.documents.clone())
    }

    /// The grant of each auth request, in order.
    pub fn feu_auth_requests(&self) -> Vec<String> {
        self.with(|i| i.feu.auth_requests.clone())
    }
}

/// An unsigned JWT-shaped token that lasts a day.
fn access_token(n: usize) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = crate::clock::wall().timestamp() + 86_400;
    format!(
        "{}.{}.sig{n}",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(json!({ "exp": exp, "sub": USERNAME }).to_string())
    )
}

async fn token(State(s): State<Sandbox>, Json(body): Json<Value>) -> Response {
    let grant = body["grant_type"].as_str().unwrap_or_default().to_string();
    if let Some((status, answer)) = s.with(|i| i.feu.script.refuse_logins.clone()) {
        s.with(|i| i.feu.auth_requests.push(grant.clone()));
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
        return (status, answer).into_response();
    }
    let issued = s.with(|i| {
        i.feu.auth_requests.push(grant.clone());
        let ok = match grant.as_str() {
            "refresh_token" => {
                !i.feu.script.refresh_revoked && body["refresh_token"] == REFRESH_TOKEN
            }
            "password" => body["username"] == USERNAME && body["password"] == PASSWORD,
            _ => false,
        };
        ok.then(|| {
            let t = access_token(i.feu.tokens.len());
            i.feu.tokens.push(t.clone());
            t
        })
    });
    match issued {
        Some(t) => Json(json!({
            "access_token": t, "token_type": "Bearer", "refresh_token": REFRESH_TOKEN,
        }))
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_grant" })),
        )
            .into_response(),
    }
}

fn authorized(s: &Sandbox, headers: &HeaderMap) -> bool {
    let bearer = header(headers, "authorization");
    let known = s.with(|i| {
        i.feu
            .tokens
            .iter()
            .any(|t| bearer.as_deref() == Some(format!("Bearer {t}").as_str()))
    });
    known && header(headers, "x-emisor").as_deref() == Some(EMISOR)
}

enum CreateAnswer {
    Fail,
    Garbage,
    Created(Value, bool),
}

async fn create(State(s): State<Sandbox>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&s, &headers) {
        return (StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    }
    let latency = s.with(|i| i.feu.script.create_latency_ms);
    tokio::time::sleep(Duration::from_millis(latency)).await;
    let answer = s.with(|i| {
        let script = &mut i.feu.script;
        if script.create_fail_next > 0 {
            script.create_fail_next -= 1;
            return CreateAnswer::Fail;
        }
        if script.create_garbage_next > 0 {
            script.create_garbage_next -= 1;
            return CreateAnswer::Garbage;
        }
        let lose = script.create_lose_answer_next > 0;
        script.create_lose_answer_next = script.create_lose_answer_next.saturating_sub(1);
        let external = body["id_externo"].as_str().map(str::to_string);
        let existing = external.as_ref().and_then(|e| {
            i.feu
                .documents
                .iter()
                .find(|d| d.id_externo.as_ref() == Some(e))
                .map(|d| d.id)
        });
        let id = existing.unwrap_or_else(|| {
            let id = 1000 + i.feu.documents.len() as u64 + 1;
            i.feu.documents.push(FeuDocument {
                id,
                id_externo: external,
                payload: body.clone(),
            });
            id
        });
        CreateAnswer::Created(document(id, &body), lose)
    });
    match answer {
        CreateAnswer::Fail | CreateAnswer::Created(_, true) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        CreateAnswer::Garbage => (StatusCode::OK, "<html>oops</html>").into_response(),
        CreateAnswer::Created(doc, false) => Json(doc).into_response(),
    }
}

/// The create answer (the "Parámetros de Salida" fields).
fn document(id: u64, body: &Value) -> Value {
    let total: f64 = body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    i["precio"].as_f64().unwrap_or(0.0) * i["cantidad"].as_f64().unwrap_or(1.0)
                })
                .sum()
        })
        .unwrap_or(0.0);
    json!({
        "id": id, "serie": "A", "numero": id, "hash": format!("hash-{id}"),
        "cae_numero": 90_000_000 + id, "cae_vencimiento": "2027-12-31",
        "url": format!("https://www.efactura.dgi.gub.uy/consultaQR/cfe?{id}"),
        "comprobante_tipo": 101, "importe_total": total,
    })
}

async fn pdf(State(s): State<Sandbox>, Path(id): Path<u64>, headers: HeaderMap) -> Response {
    if !authorized(&s, &headers) {
        return (StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    }
    enum Pdf {
        Fail,
        Missing,
        NotBase64,
        Html,
        Ok,
    }
    let answer = s.with(|i| {
        let script = &mut i.feu.script;
        if script.pdf_fail_next > 0 {
            script.pdf_fail_next -= 1;
            Pdf::Fail
        } else if !i.feu.documents.iter().any(|d| d.id == id) {
            Pdf::Missing
        } else if script.pdf_not_base64_next > 0 {
            script.pdf_not_base64_next -= 1;
            Pdf::NotBase64
        } else if script.pdf_not_a_pdf_next > 0 {
            script.pdf_not_a_pdf_next -= 1;
            Pdf::Html
        } else {
            Pdf::Ok
        }
    });
    let data = match answer {
        Pdf::Fail => return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        Pdf::Missing => return (StatusCode::NOT_FOUND, "not found").into_response(),
        Pdf::NotBase64 => "%%% not base64 %%%".to_string(),
        Pdf::Html => base64::engine::general_purpose::STANDARD.encode("<html>login</html>"),
        Pdf::Ok => base64::engine::general_purpose::STANDARD.encode(pdf_bytes(id)),
    };
    Json(json!({
        "file_name": format!("A-{id}.pdf"), "mime_type": "application/pdf",
        "format": "base64", "data": data,
    }))
    .into_response()
}

/// A small document that starts like a PDF, different per id.
pub fn pdf_bytes(id: u64) -> Vec<u8> {
    format!("%PDF-1.4\n% FEU stand-in, CFE {id}\n%%EOF\n").into_bytes()
}
