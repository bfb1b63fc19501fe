//! A stand-in web site: static files from a directory plus scripted routes, for the
//! image hosts and ticket sites the scraping job reads.
//!
//! Files are served by path (the query string is ignored, a directory serves its
//! `index.html`), with the content type their extension implies. A scripted route
//! overrides a path: a fixed answer (any status, any content type, so an HTML page can
//! pose as a JPEG), a body streamed up to a given size (with or without a declared
//! length), a redirect, or an answer that never comes. Every request is counted per
//! path, so a test can tell whether something was fetched again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// A scripted answer for one path.
#[derive(Debug, Clone)]
pub enum Route {
    /// This status, content type and body.
    Fixed {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// `bytes` bytes of zeros in 64 KiB chunks; `Content-Length` only if `declared`.
    Stream {
        content_type: String,
        bytes: u64,
        declared: bool,
    },
    /// A 302 to `location`.
    Redirect(String),
    /// Headers never come.
    Hang,
}

#[derive(Default)]
struct SiteState {
    root: Option<PathBuf>,
    routes: Mutex<HashMap<String, Route>>,
    /// Routes for any path with this segment, e.g. every `/…/error-500/…`.
    segments: Mutex<Vec<(String, Route)>>,
    hits: Mutex<HashMap<String, u64>>,
}

#[derive(Clone)]
pub struct Site {
    pub base_url: String,
    state: Arc<SiteState>,
}

impl Site {
    /// Serves `root` (if any) on a free loopback port until the runtime ends.
    pub async fn start(root: Option<PathBuf>) -> std::io::Result<Site> {
        Site::start_on([127, 0, 0, 1], root).await
    }

    /// [`Site::start`] on another loopback address (127.0.0.2: an address no site is
    /// on, as a private service would be).
    pub async fn start_on(address: [u8; 4], root: Option<PathBuf>) -> std::io::Result<Site> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((address, 0))).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(SiteState {
            root,
            ..SiteState::default()
        });
        let app = Router::new().fallback(answer).with_state(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "stand-in site stopped");
            }
        });
        Ok(Site { base_url, state })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn route(&self, path: &str, route: Route) {
        lock(&self.state.routes).insert(path.to_string(), route);
    }

    /// Answers every path that has `segment` as one of its segments with `route`.
    pub fn route_segment(&self, segment: &str, route: Route) {
        lock(&self.state.segments).push((segment.to_string(), route));
    }

    /// Requests received on any path.
    pub fn total_hits(&self) -> u64 {
        lock(&self.state.hits).values().sum()
    }

    /// Requests received for `path`.
    pub fn hits(&self, path: &str) -> u64 {
        lock(&self.state.hits).get(path).copied().unwrap_or(0)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn answer(State(state): State<Arc<SiteState>>, uri: Uri) -> Response {
    let path = uri.path().to_string();
    *lock(&state.hits).entry(path.clone()).or_default() += 1;
    let scripted = lock(&state.routes).get(&path).cloned().or_else(|| {
        lock(&state.segments)
            .iter()
            .find(|(segment, _)| path.split('/').any(|s| s == segment))
            .map(|(_, route)| route.clone())
    });
    match scripted {
        Some(route) => scripted_answer(route).await,
        None => match &state.root {
            Some(root) => file(root, &path).await,
            None => StatusCode::NOT_FOUND.into_response(),
        },
    }
}

async fn scripted_answer(route: Route) -> Response {
    match route {
        Route::Fixed {
            status,
            content_type,
            body,
        } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response(),
        Route::Stream {
            content_type,
            bytes,
            declared,
        } => {
            const CHUNK: u64 = 64 * 1024;
            let chunks = bytes.div_ceil(CHUNK);
            let stream = futures::stream::iter((0..chunks).map(move |i| {
                let size = CHUNK.min(bytes - i * CHUNK) as usize;
                Ok::<_, std::io::Error>(Bytes::from(vec![0u8; size]))
            }));
            let mut response = Response::new(Body::from_stream(stream));
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            if declared {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes));
            }
            response
        }
        Route::Redirect(location) => {
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        Route::Hang => std::future::pending().await,
    }
}

async fn file(root: &Path, path: &str) -> Response {
    let relative = Path::new(path.trim_start_matches('/'));
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut full = root.join(relative);
    if full.is_dir() {
        full = full.join("index.html");
    }
    match tokio::fs::read(&full).await {
        Ok(body) => ([(header::CONTENT_TYPE, content_type(&full))], body).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript",
        "css" => "text/css",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}
