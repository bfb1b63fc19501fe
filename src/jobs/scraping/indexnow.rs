//! IndexNow: telling search engines which event pages are new or changed, so they are
//! crawled again soon (the original's apps/backend/src/lib/indexnow.ts, which pinged
//! every stored event every run; here only those whose page changed).
//!
//! `POST {INDEXNOW_URL}` with `{host, key, keyLocation, urlList}`, 100 URLs a request.
//! A ping is a courtesy: a failure is logged and counted, never the run's failure.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::http;

/// URLs per request (the protocol allows 10,000; the original sent 100).
const BATCH: usize = 100;

#[derive(Debug, Clone)]
pub struct IndexNowSettings {
    /// `INDEXNOW_URL`: the endpoint. Defaults to `https://api.indexnow.org/indexnow`.
    pub endpoint: String,
    /// `INDEXNOW_HOST`: the site's host. Defaults to `revendiste.com`.
    pub host: String,
    /// `INDEXNOW_KEY`: the site's key (its file is served at `https://<host>/<key>.txt`).
    pub key: SecretString,
    /// `APP_BASE_URL`: where event pages live (`<base>/eventos/<slug>`).
    pub pages: String,
}

/// What a run's pings did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pinged {
    pub urls: u64,
    pub failed: u64,
}

pub(super) struct IndexNow {
    client: reqwest::Client,
    settings: IndexNowSettings,
}

impl IndexNow {
    pub(super) fn new(settings: IndexNowSettings) -> reqwest::Result<IndexNow> {
        let client = http::client(http::Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(15),
        })?;
        Ok(IndexNow { client, settings })
    }

    /// Pings the pages of these event slugs; never fails.
    pub(super) async fn ping(&self, slugs: &[String]) -> Pinged {
        let s = &self.settings;
        let urls: Vec<String> = slugs
            .iter()
            .map(|slug| format!("{}/eventos/{slug}", s.pages))
            .collect();
        let mut pinged = Pinged::default();
        for batch in urls.chunks(BATCH) {
            let body = json!({
                "host": s.host,
                "key": s.key.expose_secret(),
                "keyLocation": format!("https://{}/{}.txt", s.host, s.key.expose_secret()),
                "urlList": batch,
            });
            let sent = self
                .client
                .post(&s.endpoint)
                .header("Content-Type", "application/json; charset=utf-8")
                .body(body.to_string())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => pinged.urls += batch.len() as u64,
                Ok(r) => {
                    tracing::warn!(status = %r.status(), urls = batch.len(), "IndexNow refused a ping");
                    pinged.failed += batch.len() as u64;
                }
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), urls = batch.len(), "IndexNow unreachable");
                    pinged.failed += batch.len() as u64;
                }
            }
        }
        pinged
    }
}
