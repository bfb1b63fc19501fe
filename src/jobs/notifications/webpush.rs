//! Web push: payloads encrypted for the browser (RFC 8291, `aes128gcm` of RFC 8188)
//! and signed for the push service with VAPID (RFC 8292), on aws-lc-rs, already in the
//! tree through rustls.
//!
//! A push is a side effect of an in-app notification: its failures never change the
//! notification's status. A subscription the push service calls gone (404, 410) is
//! deleted. Without VAPID keys, pushes are logged, not sent.

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P256, UnparsedPublicKey};
use aws_lc_rs::hkdf::{self, HKDF_SHA256, KeyType, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;

use crate::egress::{Guard, Hosts, Refused};
use crate::http::{self, Timeouts};

/// Record size announced in the header: one record carries the whole payload.
const RECORD_SIZE: u32 = 4096;

struct Len(usize);
impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[&[u8]], len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; len];
    prk.expand(info, Len(len))
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| "HKDF expansion failed".to_string())?;
    Ok(out)
}

/// CEK and nonce from the ECDH secret, as RFC 8291 section 3.4 derives them.
fn derive(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let prk_key = Salt::new(HKDF_SHA256, auth).extract(ecdh_secret);
    let ikm = expand(&prk_key, &[b"WebPush: info\0", ua_public, as_public], 32)?;
    let prk = Salt::new(HKDF_SHA256, salt).extract(&ikm);
    let cek = expand(&prk, &[b"Content-Encoding: aes128gcm\0"], 16)?;
    let nonce = expand(&prk, &[b"Content-Encoding: nonce\0"], 12)?;
    Ok((cek, nonce))
}

/// Encrypts `plaintext` for a subscription (`p256dh` public key and `auth` secret).
pub fn encrypt(ua_public: &[u8], auth: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let rng = SystemRandom::new();
    // A fresh sender key and salt for every message, used once.
    let as_private =
        agreement::PrivateKey::generate(&ECDH_P256).map_err(|_| "key generation failed")?;
    let mut salt = [0u8; 16];
    rng.fill(&mut salt).map_err(|_| "no randomness")?;
    encrypt_with(&as_private, &salt, ua_public, auth, plaintext)
}

fn encrypt_with(
    as_private: &agreement::PrivateKey,
    salt: &[u8; 16],
    ua_public: &[u8],
    auth: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, String> {
    if ua_public.len() != 65 || auth.len() != 16 {
        return Err("malformed subscription keys (p256dh must be 65 bytes, auth 16)".into());
    }
    let as_public = as_private
        .compute_public_key()
        .map_err(|_| "key generation failed")?;
    let as_public = as_public.as_ref().to_vec();
    let peer = UnparsedPublicKey::new(&ECDH_P256, ua_public);
    let ecdh = agreement::agree(
        as_private,
        peer,
        "the subscription's p256dh key is not a P-256 point".to_string(),
        |s| Ok(s.to_vec()),
    )?;
    let (cek, nonce) = derive(&ecdh, auth, ua_public, &as_public, salt)?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek).map_err(|_| "bad key")?);
    let mut record = plaintext.to_vec();
    record.push(0x02); // last (and only) record, no padding
    let nonce = Nonce::try_assume_unique_for_key(&nonce).map_err(|_| "bad nonce")?;
    key.seal_in_place_append_tag(nonce, Aad::empty(), &mut record)
        .map_err(|_| "encryption failed")?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + record.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

/// The browser's side: decrypts what `encrypt` produced (used by the sandbox's push
/// endpoint, so tests read what a browser would).
pub fn decrypt(
    ua_private: &agreement::PrivateKey,
    auth: &[u8],
    body: &[u8],
) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("body shorter than the aes128gcm header".into());
    }
    let (salt, rest) = body.split_at(16);
    let idlen = rest[4] as usize;
    let rest = &rest[5..];
    if rest.len() < idlen {
        return Err("truncated key id".into());
    }
    let (as_public, ciphertext) = rest.split_at(idlen);
    let ua_public = ua_private
        .compute_public_key()
        .map_err(|_| "bad private key")?;
    let peer = UnparsedPublicKey::new(&ECDH_P256, as_public);
    let ecdh = agreement::agree(ua_private, peer, "bad sender key".to_string(), |s| {
        Ok(s.to_vec())
    })?;
    let (cek, nonce) = derive(&ecdh, auth, ua_public.as_ref(), as_public, salt)?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek).map_err(|_| "bad key")?);
    let mut buffer = ciphertext.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(&nonce).map_err(|_| "bad nonce")?;
    let plain = key
        .open_in_place(nonce, Aad::empty(), &mut buffer)
        .map_err(|_| "authentication failed")?;
    let end = plain
        .iter()
        .rposition(|b| *b != 0)
        .ok_or("no padding delimiter")?;
    if plain[end] != 0x02 {
        return Err("not a last-record delimiter".into());
    }
    Ok(plain[..end].to_vec())
}

/// VAPID: the application server's identity towards push services.
pub struct Vapid {
    key_pair: EcdsaKeyPair,
    public_b64: String,
    subject: String,
}

impl Vapid {
    /// From the usual base64url keys (32-byte private scalar, 65-byte public point).
    pub fn new(private_b64: &str, public_b64: &str, subject: &str) -> Result<Vapid, String> {
        let private = B64
            .decode(private_b64.trim())
            .map_err(|_| "VAPID_PRIVATE_KEY is not base64url")?;
        let public = B64
            .decode(public_b64.trim())
            .map_err(|_| "VAPID_PUBLIC_KEY is not base64url")?;
        let key_pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &private,
            &public,
        )
        .map_err(|_| "VAPID_PRIVATE_KEY and VAPID_PUBLIC_KEY are not a P-256 key pair")?;
        Ok(Vapid {
            key_pair,
            public_b64: B64.encode(public),
            subject: subject.to_string(),
        })
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for a push endpoint.
    pub fn authorization(&self, endpoint: &str) -> Result<String, String> {
        let origin = endpoint
            .splitn(4, '/')
            .take(3)
            .collect::<Vec<_>>()
            .join("/");
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = B64.encode(
            json!({"aud": origin, "exp": crate::clock::wall().timestamp() + 12 * 3600, "sub": self.subject})
                .to_string(),
        );
        let signing_input = format!("{header}.{claims}");
        let signature = self
            .key_pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| "VAPID signing failed")?;
        Ok(format!(
            "vapid t={signing_input}.{}, k={}",
            B64.encode(signature.as_ref()),
            self.public_b64
        ))
    }

    pub fn public_key(&self) -> &[u8] {
        self.key_pair.public_key().as_ref()
    }
}

/// Why a push was not delivered.
#[derive(Debug)]
pub enum PushError {
    /// 404/410: the subscription is gone; delete it.
    Gone,
    Other(String),
}

/// One browser subscription.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// The push services browsers subscribe with: Chrome and Edge's FCM, Firefox's
/// autopush, Windows' WNS, Safari's APNs web push. An endpoint elsewhere was not made
/// by a browser; posting to it would let anyone who can register a subscription aim
/// our requests (from inside the VPC) wherever they like.
pub const PUSH_SERVICES: &[&str] = &[
    "fcm.googleapis.com",
    "push.services.mozilla.com",
    "notify.windows.com",
    "push.apple.com",
];

/// The subscriptions a notification is pushed to, per user: the newest few. A user
/// (or a script) that registered thousands cannot make one notification cost thousands
/// of requests.
pub const MAX_SUBSCRIPTIONS_PER_USER: i64 = 5;

pub struct WebPush {
    http: reqwest::Client,
    guard: Guard,
    vapid: Option<Vapid>,
}

impl WebPush {
    /// `extra_origins`: push services accepted besides [`PUSH_SERVICES`], by exact
    /// origin (`PUSH_SERVICE_ORIGINS`, for stand-ins).
    pub fn new(
        vapid: Option<Vapid>,
        timeouts: Timeouts,
        extra_origins: &[String],
    ) -> reqwest::Result<WebPush> {
        let guard = Guard::new(
            Hosts::Within(PUSH_SERVICES.iter().map(|h| h.to_string()).collect()),
            extra_origins.iter().map(String::as_str),
        );
        Ok(WebPush {
            http: guard.client(http::builder(timeouts), 0)?,
            guard,
            vapid,
        })
    }

    /// Whether `endpoint` may be contacted, and why not: https on a known push
    /// service's host that resolves to public addresses only.
    pub async fn admits(&self, endpoint: &str) -> Result<(), Refused> {
        self.guard.check_resolved(endpoint).await.map(|_| ())
    }

    /// Pushes `payload`. `topic` (RFC 8030: at most 32 base64url characters) lets the push
    /// service replace a copy it still holds for an offline browser instead of delivering
    /// both: a push resent after a crash then arrives once.
    pub async fn send(
        &self,
        s: &Subscription,
        payload: &[u8],
        topic: &str,
    ) -> Result<(), PushError> {
        let Some(vapid) = &self.vapid else {
            tracing::info!("web push (no VAPID keys, not sent)");
            return Ok(());
        };
        let ua_public = B64
            .decode(s.p256dh.trim_end_matches('='))
            .map_err(|_| PushError::Other("p256dh is not base64url".into()))?;
        let auth = B64
            .decode(s.auth.trim_end_matches('='))
            .map_err(|_| PushError::Other("auth is not base64url".into()))?;
        let body = encrypt(&ua_public, &auth, payload).map_err(PushError::Other)?;
        let authorization = vapid.authorization(&s.endpoint).map_err(PushError::Other)?;
        let response = self
            .http
            .post(&s.endpoint)
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("TTL", "3600")
            .header("Topic", topic)
            .header("Authorization", authorization)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                PushError::Other(format!(
                    "push service unreachable: {}",
                    if e.is_timeout() {
                        "timed out"
                    } else {
                        "connection failed"
                    }
                ))
            })?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            404 | 410 => Err(PushError::Gone),
            status => Err(PushError::Other(format!("push service answered {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_8291_example_encrypts_to_its_published_bytes() {
        let d = |s: &str| B64.decode(s).unwrap();
        let as_private = agreement::PrivateKey::from_private_key(
            &ECDH_P256,
            &d("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"),
        )
        .unwrap();
        let ua_private = agreement::PrivateKey::from_private_key(
            &ECDH_P256,
            &d("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"),
        )
        .unwrap();
        let ua_public = d(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        );
        let auth = d("BTBZMqHH6r4Tts7J_aSIgg");
        let salt: [u8; 16] = d("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let plaintext = b"When I grow up, I want to be a watermelon";
        let body = encrypt_with(&as_private, &salt, &ua_public, &auth, plaintext).unwrap();
        assert_eq!(
            B64.encode(&body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
        assert_eq!(decrypt(&ua_private, &auth, &body).unwrap(), plaintext);
    }

    #[test]
    fn what_is_encrypted_for_a_subscription_decrypts_with_its_keys() {
        let rng = SystemRandom::new();
        let ua_private = agreement::PrivateKey::generate(&ECDH_P256).unwrap();
        let ua_public = ua_private.compute_public_key().unwrap();
        let mut auth = [0u8; 16];
        rng.fill(&mut auth).unwrap();
        let body = encrypt(ua_public.as_ref(), &auth, b"{\"title\":\"Hola\"}").unwrap();
        assert_eq!(&body[16..20], &4096u32.to_be_bytes());
        assert_eq!(body[20], 65);
        assert_eq!(
            decrypt(&ua_private, &auth, &body).unwrap(),
            b"{\"title\":\"Hola\"}"
        );
        let mut tampered = body.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(decrypt(&ua_private, &auth, &tampered).is_err());
        assert!(
            encrypt(&[4; 10], &auth, b"x")
                .unwrap_err()
                .contains("malformed subscription keys")
        );
    }
}
