//! The S3 backend against a real S3-compatible server on loopback (s3s-fs, started by
//! scripts/test): keys, bucket routing, headers, HEAD, overwrite.

use run_job::storage::{PUBLIC_CACHE_CONTROL, Storage};

use crate::helpers::{s3_client as client, s3_server as server};

#[tokio::test]
async fn the_s3_backend_routes_keys_sets_headers_and_heads() {
    let s = server();
    let raw = client(&s);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (public, private) = (
        format!("pub-{}", &suffix[..12]),
        format!("priv-{}", &suffix[..12]),
    );
    for bucket in [&public, &private] {
        raw.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let env = {
        let s = (
            s.endpoint.clone(),
            s.key.clone(),
            s.secret.clone(),
            public.clone(),
            private.clone(),
        );
        move |name: &str| {
            Some(match name {
                "STORAGE_TYPE" => "r2".to_string(),
                "R2_ENDPOINT" => s.0.clone(),
                "R2_ACCESS_KEY_ID" => s.1.clone(),
                "R2_SECRET_ACCESS_KEY" => s.2.clone(),
                "R2_PUBLIC_BUCKET" => s.3.clone(),
                "R2_PRIVATE_BUCKET" => s.4.clone(),
                "R2_CDN_DOMAIN" => "cdn.example.com".to_string(),
                _ => return None,
            })
        }
    };
    let storage = Storage::from_env(&env).unwrap();

    let image = "public/assets/events/e1/flyer-0123456789abcdef.webp";
    assert!(
        !storage.exists(image).await.unwrap(),
        "HEAD on a missing key"
    );
    storage
        .put(image, b"RIFF....WEBP".to_vec(), "image/webp")
        .await
        .unwrap();
    assert!(storage.exists(image).await.unwrap());
    let head = raw
        .head_object()
        .bucket(&public)
        .key(image)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/webp"));
    assert_eq!(head.cache_control(), Some(PUBLIC_CACHE_CONTROL));
    assert_eq!(head.content_length(), Some(12));
    assert_eq!(
        storage.public_url(image),
        format!("https://cdn.example.com/{image}")
    );

    // Anything not public goes to the private bucket under private/, without cache headers.
    storage
        .put(
            "invoices/o1/buyer-invoice.pdf",
            b"%PDF-1".to_vec(),
            "application/pdf",
        )
        .await
        .unwrap();
    let head = raw
        .head_object()
        .bucket(&private)
        .key("private/invoices/o1/buyer-invoice.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/pdf"));
    assert_eq!(head.cache_control(), None);
    assert!(
        raw.head_object()
            .bucket(&public)
            .key("invoices/o1/buyer-invoice.pdf")
            .send()
            .await
            .is_err()
    );

    // Overwrite replaces; get reads back what was last put.
    storage
        .put(
            "invoices/o1/buyer-invoice.pdf",
            b"%PDF-2".to_vec(),
            "application/pdf",
        )
        .await
        .unwrap();
    assert_eq!(
        storage.get("invoices/o1/buyer-invoice.pdf").await.unwrap(),
        b"%PDF-2"
    );
    let missing = storage.get("invoices/none.pdf").await.unwrap_err();
    assert_eq!(missing.to_string(), "invoices/none.pdf: not found");
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_server() {
    let s = server();
    let env = {
        let endpoint = s.endpoint.clone();
        let key = s.key.clone();
        move |name: &str| {
            Some(match name {
                "STORAGE_TYPE" => "r2".to_string(),
                "R2_ENDPOINT" => endpoint.clone(),
                "R2_ACCESS_KEY_ID" => key.clone(),
                "R2_SECRET_ACCESS_KEY" => "wrong".to_string(),
                "R2_PUBLIC_BUCKET" => "any".to_string(),
                "R2_PRIVATE_BUCKET" => "any".to_string(),
                _ => return None,
            })
        }
    };
    let storage = Storage::from_env(&env).unwrap();
    let e = storage
        .put("public/x.webp", b"x".to_vec(), "image/webp")
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("public/x.webp:"), "{e}");
}
