//! Object storage behind one small interface, with two backends: a local directory (the
//! default when nothing is configured) and an S3-compatible service (Cloudflare R2 in
//! production) through aws-sdk-s3.
//!
//! Keys follow the original's layout: keys under `public/` go to the public bucket
//! (served from the CDN domain, cached for a year), everything else to the private
//! bucket under `private/`. Jobs get a `Storage` from their settings; they never build
//! an S3 client themselves.

use std::path::{Component, Path, PathBuf};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{self, Env};

/// `Cache-Control` of public objects: content-addressed keys never change.
pub const PUBLIC_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}: not found")]
    NotFound(String),
    #[error("{key}: {message}")]
    Failed { key: String, message: String },
    #[error("`{0}` is not a valid storage key")]
    BadKey(String),
}

#[derive(Clone)]
pub enum Storage {
    Local { root: PathBuf, base_url: String },
    S3(S3Storage),
}

#[derive(Clone)]
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    public_bucket: String,
    private_bucket: String,
    public_base: String,
}

/// Checks a key and turns it into a relative path without `..`, absolute parts or
/// empty segments.
fn checked(key: &str) -> Result<&Path, StorageError> {
    let path = Path::new(key);
    let fine = !key.is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && !key.ends_with('/');
    fine.then_some(path)
        .ok_or_else(|| StorageError::BadKey(key.to_string()))
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No credentials, whatever the backend.
        match self {
            Storage::Local { root, .. } => write!(f, "Storage::Local({})", root.display()),
            Storage::S3(s3) => write!(f, "Storage::S3({})", s3.public_bucket),
        }
    }
}

impl Storage {
    /// `STORAGE_TYPE` `local` (default: `STORAGE_LOCAL_PATH` `./uploads`, `STORAGE_BASE_URL`)
    /// or `r2` (`R2_ACCOUNT_ID`, `R2_ACCESS_KEY_ID`, `R2_SECRET_ACCESS_KEY`, `R2_PUBLIC_BUCKET`,
    /// `R2_PRIVATE_BUCKET`, `R2_CDN_DOMAIN`; `R2_ENDPOINT` overrides the endpoint for any
    /// S3-compatible server, which is then addressed path-style).
    pub fn from_env(env: &Env) -> Result<Storage, config::Error> {
        let kind = env("STORAGE_TYPE").unwrap_or_else(|| "local".to_string());
        match kind.as_str() {
            "local" => Ok(Storage::Local {
                root: PathBuf::from(
                    env("STORAGE_LOCAL_PATH").unwrap_or_else(|| "./uploads".to_string()),
                ),
                base_url: env("STORAGE_BASE_URL")
                    .unwrap_or_else(|| "http://localhost:3000".to_string()),
            }),
            "r2" => {
                let required = |name| config::required(env, name, "when STORAGE_TYPE is r2");
                let account = env("R2_ACCOUNT_ID");
                let endpoint = match (env("R2_ENDPOINT"), &account) {
                    (Some(e), _) => e,
                    (None, Some(a)) => format!("https://{a}.r2.cloudflarestorage.com"),
                    (None, None) => {
                        return Err(config::Error {
                            variable: "R2_ACCOUNT_ID",
                            message: "is required when STORAGE_TYPE is r2 (or set R2_ENDPOINT)"
                                .to_string(),
                        });
                    }
                };
                let path_style = env("R2_ENDPOINT").is_some();
                let public_bucket = required("R2_PUBLIC_BUCKET")?;
                let public_base = match env("R2_CDN_DOMAIN") {
                    Some(domain) => format!("https://{}", domain.trim_start_matches("https://")),
                    None => format!("{endpoint}/{public_bucket}"),
                };
                Ok(Storage::S3(S3Storage::new(
                    &endpoint,
                    path_style,
                    &required("R2_ACCESS_KEY_ID")?,
                    &SecretString::from(required("R2_SECRET_ACCESS_KEY")?),
                    public_bucket,
                    required("R2_PRIVATE_BUCKET")?,
                    public_base,
                )))
            }
            other => Err(config::Error {
                variable: "STORAGE_TYPE",
                message: format!("`{other}` is not one of local, r2"),
            }),
        }
    }

    /// Stores `bytes` under `key`.
    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let path = checked(key)?;
        match self {
            Storage::Local { root, .. } => {
                let file = root.join(path);
                let failed = |e: std::io::Error| StorageError::Failed {
                    key: key.to_string(),
                    message: e.to_string(),
                };
                if let Some(dir) = file.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(failed)?;
                }
                // Written aside and renamed: a reader never sees half a file.
                let partial = file.with_extension("partial");
                tokio::fs::write(&partial, bytes).await.map_err(failed)?;
                tokio::fs::rename(&partial, &file).await.map_err(failed)
            }
            Storage::S3(s3) => s3.put(key, bytes, content_type).await,
        }
    }

    /// Whether `key` exists (a HEAD on S3).
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = checked(key)?;
        match self {
            Storage::Local { root, .. } => Ok(tokio::fs::try_exists(root.join(path))
                .await
                .unwrap_or(false)),
            Storage::S3(s3) => s3.exists(key).await,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let path = checked(key)?;
        match self {
            Storage::Local { root, .. } => {
                tokio::fs::read(root.join(path))
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => StorageError::NotFound(key.to_string()),
                        _ => StorageError::Failed {
                            key: key.to_string(),
                            message: e.to_string(),
                        },
                    })
            }
            Storage::S3(s3) => s3.get(key).await,
        }
    }

    /// The public URL of a public key.
    pub fn public_url(&self, key: &str) -> String {
        match self {
            Storage::Local { base_url, .. } => {
                format!("{}/uploads/{key}", base_url.trim_end_matches('/'))
            }
            Storage::S3(s3) => format!("{}/{key}", s3.public_base.trim_end_matches('/')),
        }
    }
}

impl S3Storage {
    fn new(
        endpoint: &str,
        path_style: bool,
        access_key: &str,
        secret_key: &SecretString,
        public_bucket: String,
        private_bucket: String,
        public_base: String,
    ) -> S3Storage {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("auto"))
            .endpoint_url(endpoint)
            .force_path_style(path_style)
            .credentials_provider(Credentials::new(
                access_key,
                secret_key.expose_secret(),
                None,
                None,
                "run-job",
            ))
            .build();
        S3Storage {
            client: aws_sdk_s3::Client::from_conf(config),
            public_bucket,
            private_bucket,
            public_base,
        }
    }

    /// The original's routing: `public/...` to the public bucket, the rest to the
    /// private one under `private/`.
    fn route(&self, key: &str) -> (&str, String) {
        if key.starts_with("public/") {
            (&self.public_bucket, key.to_string())
        } else if key.starts_with("private/") {
            (&self.private_bucket, key.to_string())
        } else {
            (&self.private_bucket, format!("private/{key}"))
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StorageError> {
        let (bucket, object) = self.route(key);
        let public = bucket == self.public_bucket;
        let mut request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(&object)
            .content_type(content_type)
            .content_length(bytes.len() as i64)
            .metadata("uploadedAt", crate::clock::wall().to_rfc3339())
            .metadata("bucketType", if public { "public" } else { "private" })
            .body(ByteStream::from(bytes));
        if public {
            request = request.cache_control(PUBLIC_CACHE_CONTROL);
        }
        request.send().await.map_err(|e| StorageError::Failed {
            key: key.to_string(),
            message: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
        })?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let (bucket, object) = self.route(key);
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(&object)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(StorageError::Failed {
                key: key.to_string(),
                message: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
            }),
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let (bucket, object) = self.route(key);
        let response = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(&object)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(StorageError::NotFound(key.to_string()));
            }
            Err(e) => {
                return Err(StorageError::Failed {
                    key: key.to_string(),
                    message: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
                });
            }
        };
        let bytes = response
            .body
            .collect()
            .await
            .map_err(|e| StorageError::Failed {
                key: key.to_string(),
                message: e.to_string(),
            })?;
        Ok(bytes.into_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_backend_stores_reads_and_refuses_escaping_keys() {
        let dir = std::env::temp_dir().join(format!("run-job-storage-{}", uuid::Uuid::new_v4()));
        let s = Storage::Local {
            root: dir.clone(),
            base_url: "http://localhost:3000/".into(),
        };
        s.put(
            "invoices/o1/buyer-invoice.pdf",
            b"%PDF-1.7".to_vec(),
            "application/pdf",
        )
        .await
        .unwrap();
        assert!(s.exists("invoices/o1/buyer-invoice.pdf").await.unwrap());
        assert_eq!(
            s.get("invoices/o1/buyer-invoice.pdf").await.unwrap(),
            b"%PDF-1.7"
        );
        assert!(matches!(
            s.get("invoices/none.pdf").await,
            Err(StorageError::NotFound(_))
        ));
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", "", "dir/"] {
            assert!(
                matches!(s.get(bad).await, Err(StorageError::BadKey(_))),
                "{bad}"
            );
        }
        assert_eq!(
            s.public_url("public/x.webp"),
            "http://localhost:3000/uploads/public/x.webp"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
