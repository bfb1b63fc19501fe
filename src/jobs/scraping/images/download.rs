//! Fetching an image from the site that published it, within bounds.
//!
//! Only URLs the egress guard admits (https to a public address, or the configured
//! site's own origin), each redirect hop checked again; at most a few redirects; one deadline for the whole exchange
//! (connect, headers and body), so a server that trickles or hangs costs a bounded
//! wait; a size cap checked against `Content-Length` and again while streaming, so a
//! 200 MB answer is cut off after the cap rather than buffered; a declared content type
//! that is plainly not an image is refused before the body is read. Whether the bytes
//! really are an image is decided later by their signature.

use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Client, Url};

use super::ImageError;
use crate::egress::Guard;
use crate::http;

/// Redirects followed before giving up (CDNs commonly add one or two).
const MAX_REDIRECTS: usize = 3;

pub(super) struct Downloader {
    client: Client,
    guard: Guard,
    max_bytes: u64,
}

impl Downloader {
    pub(super) fn new(
        timeout: Duration,
        max_bytes: u64,
        user_agent: &str,
        guard: Guard,
    ) -> reqwest::Result<Self> {
        let builder = http::builder(http::Timeouts {
            connect: timeout.min(Duration::from_secs(10)),
            request: timeout,
        })
        .user_agent(user_agent);
        let client = guard.client(builder, MAX_REDIRECTS)?;
        Ok(Downloader {
            client,
            guard,
            max_bytes,
        })
    }

    pub(super) async fn get(&self, url: &str) -> Result<Vec<u8>, ImageError> {
        let parsed: Url = self
            .guard
            .check(url)
            .map_err(|e| ImageError::BadUrl(e.to_string()))?;
        let mut response = self.client.get(parsed).send().await.map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(ImageError::Download(format!("HTTP {status}")));
        }
        if let Some(kind) = response.headers().get(CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
            let plausible = kind.starts_with("image/")
                || kind.starts_with("application/octet-stream")
                || kind.starts_with("binary/octet-stream");
            if !plausible {
                return Err(ImageError::NotAnImage(format!(
                    "the server says it is `{kind}`"
                )));
            }
        }
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let Some(length) = declared.filter(|l| *l > self.max_bytes) {
            return Err(ImageError::TooLarge {
                bytes: length,
                max_bytes: self.max_bytes,
            });
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(64 * 1024) as usize);
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(ImageError::TooLarge {
                    bytes: (body.len() + chunk.len()) as u64,
                    max_bytes: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn failed(error: reqwest::Error) -> ImageError {
    if error.is_timeout() {
        ImageError::Download("timed out".to_string())
    } else {
        // Without the URL: the caller names the image, and the chain of causes is
        // what tells a refused connection from a reset.
        let mut causes = String::new();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            causes.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        let message = format!("{}{causes}", error.without_url());
        ImageError::Download(message)
    }
}
