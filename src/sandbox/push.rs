//! A web push service and the browsers behind it: checks each push's VAPID JWT against
//! the key it carries, decrypts the aes128gcm body with the browser's key, records it;
//! answers 410 Gone for an unsubscribed browser.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

use super::{Sandbox, header};

pub(super) fn routes() -> Router<Sandbox> {
    Router::new().route("/push/{id}", post(push_message))
}

/// Browser subscriptions the sandbox plays, and what it decrypted for them.
#[derive(Default)]
pub(super) struct PushService {
    browsers: HashMap<String, Arc<(aws_lc_rs::agreement::PrivateKey, Vec<u8>)>>,
    gone: std::collections::HashSet<String>,
    received: Vec<Value>,
    /// The `Topic` header of each received push, in the same order.
    topics: Vec<Option<String>>,
    rejected: u64,
}

impl Sandbox {
    /// A new browser subscription: `(endpoint, p256dh, auth)` as a browser would give
    /// them (base64url), with the private key kept here to decrypt what arrives.
    pub fn push_subscription(&self) -> (String, String, String) {
        use aws_lc_rs::rand::SecureRandom;
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let private = aws_lc_rs::agreement::PrivateKey::generate(&aws_lc_rs::agreement::ECDH_P256)
            .expect("P-256 key generation");
        let public = private.compute_public_key().expect("public key");
        let mut auth = vec![0u8; 16];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut auth)
            .expect("randomness");
        let id = uuid::Uuid::new_v4().to_string();
        let (p256dh, auth64) = (b64.encode(public.as_ref()), b64.encode(&auth));
        self.with(|i| {
            i.push
                .browsers
                .insert(id.clone(), Arc::new((private, auth)))
        });
        (format!("{}/push/{id}", self.base_url), p256dh, auth64)
    }

    /// The push service answers 410 Gone for this endpoint from now on.
    pub fn unsubscribe(&self, endpoint: &str) {
        let id = endpoint.rsplit('/').next().unwrap_or_default().to_string();
        self.with(|i| i.push.gone.insert(id));
    }

    /// Decrypted push payloads, in arrival order.
    pub fn pushes(&self) -> Vec<Value> {
        self.with(|i| i.push.received.clone())
    }

    /// The `Topic` header of each push in [`Sandbox::pushes`].
    pub fn push_topics(&self) -> Vec<Option<String>> {
        self.with(|i| i.push.topics.clone())
    }

    /// Pushes refused for a bad VAPID signature or undecryptable body.
    pub fn pushes_rejected(&self) -> u64 {
        self.with(|i| i.push.rejected)
    }
}

/// A push service and the browser behind it: checks the VAPID JWT's signature against
/// the `k` it carries, decrypts the aes128gcm body with the browser's key, records it.
async fn push_message(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let browser = s.with(|i| {
        if i.push.gone.contains(&id) {
            None
        } else {
            i.push.browsers.get(&id).cloned()
        }
    });
    let Some(browser) = browser else {
        return StatusCode::GONE;
    };
    let verified = header(&headers, "authorization").is_some_and(|a| vapid_valid(&a))
        && header(&headers, "content-encoding").as_deref() == Some("aes128gcm");
    let decrypted = crate::jobs::notifications::webpush::decrypt(&browser.0, &browser.1, &body)
        .ok()
        .and_then(|plain| serde_json::from_slice::<Value>(&plain).ok());
    match (verified, decrypted) {
        (true, Some(payload)) => {
            s.with(|i| {
                i.push.received.push(payload);
                i.push.topics.push(header(&headers, "topic"));
            });
            StatusCode::CREATED
        }
        _ => {
            s.with(|i| i.push.rejected += 1);
            StatusCode::UNAUTHORIZED
        }
    }
}

/// `vapid t=<header.claims.signature>, k=<public key>` with a valid ES256 signature.
fn vapid_valid(authorization: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some(rest) = authorization.strip_prefix("vapid t=") else {
        return false;
    };
    let Some((token, key)) = rest.split_once(", k=") else {
        return false;
    };
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let (Ok(key), Ok(signature)) = (b64.decode(key), b64.decode(signature)) else {
        return false;
    };
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        key,
    )
    .verify(signed.as_bytes(), &signature)
    .is_ok()
}
