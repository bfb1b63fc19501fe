//! The image pipeline on real photographs (tests/fixtures/images), downloading from a
//! stand-in image host over HTTP and publishing to a real S3-compatible server
//! (s3s-fs, started by scripts/test): outputs, keys, headers, HEAD-skip, rebuilds, rows,
//! and every kind of bad input, each failing alone while the rest is published.

use std::path::PathBuf;
use std::time::Duration;

use image::{GenericImageView, ImageFormat};
use run_job::jobs::scraping::images::{
    ImageKind, ImagePipeline, ImageSettings, Keys, SourceImage, memory_needed_mib, og,
    watermark::Watermark,
};
use run_job::sandbox::site::{Route, Site};
use run_job::storage::{PUBLIC_CACHE_CONTROL, Storage};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{s3_client, s3_server};

fn photo(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct S3 {
    storage: Storage,
    raw: aws_sdk_s3::Client,
    bucket: String,
}

/// A fresh public and private bucket on the test S3 server, and a `Storage` over them.
async fn s3() -> S3 {
    let server = s3_server();
    let raw = s3_client(&server);
    let crate::helpers::S3Server {
        endpoint,
        key,
        secret,
    } = server;
    let suffix = Uuid::new_v4().simple().to_string();
    let (public, private) = (
        format!("img-{}", &suffix[..12]),
        format!("imp-{}", &suffix[..12]),
    );
    for bucket in [&public, &private] {
        raw.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let env = {
        let public = public.clone();
        move |name: &str| {
            Some(match name {
                "STORAGE_TYPE" => "r2".to_string(),
                "R2_ENDPOINT" => endpoint.clone(),
                "R2_ACCESS_KEY_ID" => key.clone(),
                "R2_SECRET_ACCESS_KEY" => secret.clone(),
                "R2_PUBLIC_BUCKET" => public.clone(),
                "R2_PRIVATE_BUCKET" => private.clone(),
                "R2_CDN_DOMAIN" => "cdn.example.com".to_string(),
                _ => return None,
            })
        }
    };
    S3 {
        storage: Storage::from_env(&env).unwrap(),
        raw,
        bucket: public,
    }
}

impl S3 {
    async fn object(&self, key: &str) -> (Vec<u8>, Option<String>, Option<String>) {
        let got = self
            .raw
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
        let (kind, cache) = (
            got.content_type().map(str::to_string),
            got.cache_control().map(str::to_string),
        );
        (got.body.collect().await.unwrap().to_vec(), kind, cache)
    }

    async fn exists(&self, key: &str) -> bool {
        self.raw
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }
}

fn settings(env: &[(&str, &str)]) -> ImageSettings {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ImageSettings::from_env(&move |name: &str| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap()
}

async fn event(pool: &PgPool) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO events (external_id, platform, name, slug, event_start_date, event_end_date, external_url)
         VALUES ($1, 'entraste', 'Fiesta', $1, now() + interval '1 day', now() + interval '2 days', 'https://entraste.com/e')
         RETURNING id",
    )
    .bind(Uuid::new_v4().to_string())
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn image_rows(pool: &PgPool, event: Uuid) -> Vec<(String, String, Option<String>, i32)> {
    sqlx::query_as(
        "SELECT image_type::text, url, thumbnail_url, display_order FROM event_images
         WHERE event_id = $1 ORDER BY display_order",
    )
    .bind(event)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn decoded(bytes: &[u8], format: ImageFormat) -> image::DynamicImage {
    assert_eq!(image::guess_format(bytes).unwrap(), format);
    image::load_from_memory_with_format(bytes, format).unwrap()
}

/// The first quantisation value of a baseline JPEG's luminance table: with the
/// standard tables it is `(16 * (200 - 2 q) + 50) / 100` for quality q ≥ 50.
fn jpeg_dc_quantiser(bytes: &[u8]) -> u8 {
    let at = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xDB])
        .expect("a DQT segment");
    bytes[at + 5]
}

async fn host() -> Site {
    let site = Site::start(None).await.unwrap();
    for name in [
        "dark.jpg",
        "light.jpg",
        "photo.png",
        "photo.webp",
        "portrait.jpg",
    ] {
        let kind = match name.rsplit('.').next() {
            Some("png") => "image/png",
            Some("webp") => "image/webp",
            _ => "image/jpeg",
        };
        site.route(
            &format!("/img/{name}"),
            Route::Fixed {
                status: 200,
                content_type: kind.into(),
                body: photo(name),
            },
        );
    }
    site
}

#[sqlx::test(migrations = "./migrations")]
async fn real_photographs_become_webp_copies_thumbnails_and_og_cards(pool: PgPool) {
    let site = host().await;
    let s3 = s3().await;
    let pipeline = ImagePipeline::new(
        &settings(&[]),
        s3.storage.clone(),
        std::slice::from_ref(&site.base_url),
    )
    .unwrap();
    let event = event(&pool).await;
    let images = [
        SourceImage {
            kind: ImageKind::Flyer,
            url: site.url("/img/portrait.jpg"),
        },
        SourceImage {
            kind: ImageKind::Hero,
            url: site.url("/img/dark.jpg"),
        },
    ];
    let report = pipeline
        .publish_and_record(&pool, event, &images)
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((report.downloaded, report.reused), (2, 0));

    // Keys: first 16 hex digits of SHA-256 of the URL, under the event's directory.
    let hash = |url: &str| {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, url.as_bytes());
        d.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let dir = format!("public/assets/events/{event}");
    let (flyer_hash, hero_hash) = (hash(&images[0].url), hash(&images[1].url));
    let flyer = Keys::new(event, ImageKind::Flyer, &images[0].url);
    let hero = Keys::new(event, ImageKind::Hero, &images[1].url);
    assert_eq!(flyer.original, format!("{dir}/flyer-{flyer_hash}.webp"));
    assert_eq!(
        flyer.thumbnail,
        format!("{dir}/flyer-{flyer_hash}_thumb.webp")
    );
    assert_eq!(hero.og, format!("{dir}/og_hero-{hero_hash}.jpg"));
    assert!(!s3.exists(&flyer.og).await, "flyers get no OG card");

    // Rows: original, thumbnail URL on the CDN domain; the hero's card after the hero.
    let cdn = |key: &str| format!("https://cdn.example.com/{key}");
    assert_eq!(
        image_rows(&pool, event).await,
        vec![
            (
                "flyer".into(),
                cdn(&flyer.original),
                Some(cdn(&flyer.thumbnail)),
                0
            ),
            (
                "hero".into(),
                cdn(&hero.original),
                Some(cdn(&hero.thumbnail)),
                1
            ),
            ("og_hero".into(), cdn(&hero.og), None, 2),
        ]
    );

    for (keys, name) in [(&flyer, "portrait.jpg"), (&hero, "dark.jpg")] {
        let source = image::load_from_memory(&photo(name)).unwrap();
        // The original: WebP, not resized, quality 75 (byte-identical to libwebp at 75).
        let (bytes, kind, cache) = s3.object(&keys.original).await;
        assert_eq!(kind.as_deref(), Some("image/webp"));
        assert_eq!(cache.as_deref(), Some(PUBLIC_CACHE_CONTROL));
        assert_eq!(
            decoded(&bytes, ImageFormat::WebP).dimensions(),
            source.dimensions()
        );
        let rgb = source.to_rgb8();
        let expected = webp::Encoder::from_rgb(rgb.as_raw(), rgb.width(), rgb.height())
            .encode_simple(false, 75.0)
            .unwrap();
        assert!(
            bytes == *expected,
            "{name}: the original is not libwebp's quality-75 encoding"
        );

        // The thumbnail: 560×560 WebP.
        let (bytes, kind, cache) = s3.object(&keys.thumbnail).await;
        assert_eq!(kind.as_deref(), Some("image/webp"));
        assert_eq!(cache.as_deref(), Some(PUBLIC_CACHE_CONTROL));
        assert_eq!(decoded(&bytes, ImageFormat::WebP).dimensions(), (560, 560));
    }

    // The card: 1200×630 JPEG at quality 85.
    let (bytes, kind, cache) = s3.object(&hero.og).await;
    assert_eq!(kind.as_deref(), Some("image/jpeg"));
    assert_eq!(cache.as_deref(), Some(PUBLIC_CACHE_CONTROL));
    assert_eq!(decoded(&bytes, ImageFormat::Jpeg).dimensions(), (1200, 630));
    assert_eq!(
        u32::from(jpeg_dc_quantiser(&bytes)),
        (16 * (200 - 2 * 85) + 50) / 100
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn stored_images_are_not_downloaded_again_and_missing_parts_are_rebuilt(pool: PgPool) {
    let site = host().await;
    let s3 = s3().await;
    let pipeline = ImagePipeline::new(
        &settings(&[]),
        s3.storage.clone(),
        std::slice::from_ref(&site.base_url),
    )
    .unwrap();
    let event = event(&pool).await;
    let images = [SourceImage {
        kind: ImageKind::Hero,
        url: site.url("/img/light.jpg"),
    }];
    let keys = Keys::new(event, ImageKind::Hero, &images[0].url);

    pipeline
        .publish_and_record(&pool, event, &images)
        .await
        .unwrap();
    let first_rows = image_rows(&pool, event).await;
    let (card, _, _) = s3.object(&keys.og).await;

    // HEAD finds the original: no download, same rows.
    let again = pipeline
        .publish_and_record(&pool, event, &images)
        .await
        .unwrap();
    assert_eq!((again.downloaded, again.reused), (0, 1));
    assert!(again.failures.is_empty(), "{:?}", again.failures);
    assert_eq!(site.hits("/img/light.jpg"), 1);
    assert_eq!(image_rows(&pool, event).await, first_rows);

    // A task killed after the original was stored: thumbnail and card are rebuilt from
    // the stored copy, still without downloading.
    for key in [&keys.thumbnail, &keys.og] {
        s3.raw
            .delete_object()
            .bucket(&s3.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    let rebuilt = pipeline
        .publish_and_record(&pool, event, &images)
        .await
        .unwrap();
    assert!(rebuilt.failures.is_empty(), "{:?}", rebuilt.failures);
    assert_eq!(site.hits("/img/light.jpg"), 1);
    assert!(s3.exists(&keys.thumbnail).await);
    let (rebuilt_card, _, _) = s3.object(&keys.og).await;
    assert_eq!(
        decoded(&rebuilt_card, ImageFormat::Jpeg).dimensions(),
        (1200, 630)
    );
    assert!(!card.is_empty());
    assert_eq!(image_rows(&pool, event).await, first_rows);

    // A new URL for the hero is a new key; the row follows it (upsert on event and type).
    site.route(
        "/img/light-v2.jpg",
        Route::Fixed {
            status: 200,
            content_type: "image/jpeg".into(),
            body: photo("light.jpg"),
        },
    );
    let moved = [SourceImage {
        kind: ImageKind::Hero,
        url: site.url("/img/light-v2.jpg"),
    }];
    pipeline
        .publish_and_record(&pool, event, &moved)
        .await
        .unwrap();
    let new_keys = Keys::new(event, ImageKind::Hero, &moved[0].url);
    let rows = image_rows(&pool, event).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].1,
        format!("https://cdn.example.com/{}", new_keys.original)
    );
    assert_eq!(
        rows[1].1,
        format!("https://cdn.example.com/{}", new_keys.og)
    );
}

#[test]
fn the_watermark_is_light_on_dark_photos_and_dark_on_light_ones() {
    let logo = Watermark::built_in().unwrap();
    let mark = logo.for_background(true);
    let (mw, mh) = mark.dimensions();
    assert!(mw == 280 || mh == 144, "the logo fits 280x144: {mw}x{mh}");
    let (left, top) = ((1200 - mw).div_ceil(2), 630 - mh - 12);

    for (name, dark) in [("dark.jpg", true), ("light.jpg", false)] {
        let pixels =
            run_job::jobs::scraping::images::codec::decode(&photo(name), 40_000_000).unwrap();
        let (jpeg, judged_dark) = og::card(&pixels, &logo).unwrap();
        assert_eq!(judged_dark, dark, "{name}: brightness rule");
        let card = decoded(&jpeg, ImageFormat::Jpeg).to_rgb8();
        // The wordmark's ink, where the logo is opaque and neutral (not the accent).
        let luma: Vec<f32> = mark
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0[3] == 255 && p.0[0].abs_diff(p.0[2]) < 8)
            .map(|(x, y, _)| {
                let [r, g, b] = card.get_pixel(left + x, top + y).0;
                0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
            })
            .collect();
        assert!(luma.len() > 200, "{name}: the wordmark has ink");
        let mean = luma.iter().sum::<f32>() / luma.len() as f32;
        if dark {
            assert!(
                mean > 200.0,
                "{name}: white wordmark expected, mean luma {mean}"
            );
        } else {
            assert!(
                mean < 50.0,
                "{name}: black wordmark expected, mean luma {mean}"
            );
        }
    }
}

/// A PNG whose header claims `width`×`height`, followed by a little real data.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut real = photo("photo.png");
    // IHDR's width and height sit right after the signature, length and chunk type;
    // its CRC must be recomputed or the decoder rejects the chunk for the wrong reason.
    real[16..20].copy_from_slice(&width.to_be_bytes());
    real[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&real[12..29]);
    real[29..33].copy_from_slice(&crc.to_be_bytes());
    real
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A JPEG whose frame header claims `width`×`height`.
fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut real = photo("dark.jpg");
    let sof = real
        .windows(2)
        .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0..=0xC2))
        .expect("a frame header");
    real[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    real[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    real
}

/// A PNG of `w`×`h` black pixels: large decoded, small on the wire.
fn black_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbImage::new(w, h)
        .write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

#[sqlx::test(migrations = "./migrations")]
async fn images_wait_for_their_memory_and_one_larger_than_the_budget_runs_alone(pool: PgPool) {
    // 6 MP needs 52 MiB, so two cannot run at once in 64 MiB; 12 MP needs more than the
    // whole budget and runs alone. All are published, none refused, nothing stalls.
    let site = host().await;
    let s3 = s3().await;
    for (name, (w, h)) in [
        ("a", (3000, 2000)),
        ("b", (3000, 2000)),
        ("c", (4000, 3000)),
    ] {
        site.route(
            &format!("/big/{name}.png"),
            Route::Fixed {
                status: 200,
                content_type: "image/png".into(),
                body: black_png(w, h),
            },
        );
    }
    assert_eq!(memory_needed_mib(3000, 2000), 52);
    let pipeline = ImagePipeline::new(
        &settings(&[
            ("IMAGES_MEMORY_BUDGET_MB", "64"),
            ("IMAGES_CPU_WORKERS", "2"),
        ]),
        s3.storage.clone(),
        std::slice::from_ref(&site.base_url),
    )
    .unwrap();
    let images: Vec<SourceImage> = ["a", "b", "c"]
        .iter()
        .map(|n| SourceImage {
            kind: ImageKind::Flyer,
            url: site.url(&format!("/big/{n}.png")),
        })
        .collect();
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        pipeline.publish(event(&pool).await, &images),
    )
    .await
    .expect("the budget never deadlocks");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.published.len(), 3);
    // One at a time: 52 MiB (a 6 MP image), 64 (the 12 MP one, clamped), never 104.
    assert_eq!(pipeline.memory_peak_mib(), 64);
}

#[test]
fn the_budget_defaults_to_what_the_task_leaves_after_the_browser() {
    let budget = |env: &[(&str, &str)]| settings(env).memory_budget_mib;
    assert_eq!(budget(&[]), 512, "task memory unknown");
    assert_eq!(
        budget(&[("RUN_JOB_TASK_MEMORY_MB", "1024")]),
        1024 - 450 - 64
    );
    assert_eq!(
        budget(&[("RUN_JOB_TASK_MEMORY_MB", "512")]),
        128,
        "never below 128"
    );
    assert_eq!(
        budget(&[
            ("RUN_JOB_TASK_MEMORY_MB", "1024"),
            ("IMAGES_MEMORY_BUDGET_MB", "300")
        ]),
        300
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn bad_images_fail_alone_with_a_reason_and_the_rest_is_published(pool: PgPool) {
    let site = host().await;
    let s3 = s3().await;
    let pipeline = ImagePipeline::new(
        &settings(&[
            ("IMAGES_DOWNLOAD_TIMEOUT_SECONDS", "2"),
            ("IMAGES_MAX_BYTES", "10485760"),
        ]),
        s3.storage.clone(),
        std::slice::from_ref(&site.base_url),
    )
    .unwrap();
    let fixed = |kind: &str, body: Vec<u8>| Route::Fixed {
        status: 200,
        content_type: kind.into(),
        body,
    };
    let jpeg = photo("dark.jpg");
    let png = photo("photo.png");
    let webp = {
        let rgb = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        webp::Encoder::from_rgb(rgb.as_raw(), rgb.width(), rgb.height())
            .encode(75.0)
            .to_vec()
    };
    // Header damage: the JPEG's quantisation and Huffman tables, the WebP's VP8 frame header.
    let mut corrupt_jpeg = jpeg.clone();
    let tables = corrupt_jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xDB])
        .unwrap();
    corrupt_jpeg[tables..tables + 600].fill(0x5A);
    let mut corrupt_webp = webp.clone();
    corrupt_webp[20..60].fill(0x00);
    let mut corrupt_png = png.clone();
    let middle = corrupt_png.len() / 2;
    corrupt_png[middle..middle + 64].fill(0xAB);
    let bad: Vec<(&str, Route, &str)> = vec![
        (
            "/bad/truncated.jpg",
            fixed("image/jpeg", jpeg[..jpeg.len() / 2].to_vec()),
            "truncated",
        ),
        (
            "/bad/truncated.png",
            fixed("image/png", png[..png.len() / 2].to_vec()),
            "cannot be decoded",
        ),
        (
            "/bad/corrupt.png",
            fixed("image/png", corrupt_png),
            "cannot be decoded",
        ),
        (
            "/bad/truncated.webp",
            fixed("image/webp", webp[..webp.len() / 2].to_vec()),
            "cannot be decoded",
        ),
        (
            "/bad/bomb.png",
            fixed("image/png", png_claiming(30_000, 30_000)),
            "30000x30000 is over the limit",
        ),
        (
            "/bad/bomb.jpg",
            fixed("image/jpeg", jpeg_claiming(30_000, 30_000)),
            "30000x30000 is over the limit",
        ),
        (
            "/bad/page.jpg",
            fixed(
                "image/jpeg",
                b"<!DOCTYPE html><html><body>Not found</body></html>".to_vec(),
            ),
            "not an image: it starts with `<!DOCTYPE",
        ),
        (
            "/bad/page.html",
            fixed("text/html", b"<html></html>".to_vec()),
            "the server says it is `text/html`",
        ),
        (
            "/bad/huge-declared.jpg",
            Route::Stream {
                content_type: "image/jpeg".into(),
                bytes: 200 << 20,
                declared: true,
            },
            "too large: 209715200 bytes",
        ),
        (
            "/bad/huge-streamed.jpg",
            Route::Stream {
                content_type: "image/jpeg".into(),
                bytes: 200 << 20,
                declared: false,
            },
            "over the cap of 10485760",
        ),
        ("/bad/hang.jpg", Route::Hang, "timed out"),
        (
            "/bad/missing.jpg",
            Route::Fixed {
                status: 404,
                content_type: "text/plain".into(),
                body: Vec::new(),
            },
            "HTTP 404",
        ),
        (
            "/bad/loop.jpg",
            Route::Redirect("/bad/loop.jpg".into()),
            "redirects",
        ),
    ];
    let mut images = vec![SourceImage {
        kind: ImageKind::Flyer,
        url: site.url("/img/photo.png"),
    }];
    for (path, route, _) in &bad {
        site.route(path, route.clone());
        images.push(SourceImage {
            kind: ImageKind::Hero,
            url: site.url(path),
        });
    }
    images.push(SourceImage {
        kind: ImageKind::Flyer,
        url: "ftp://example.com/a.jpg".into(),
    });
    // An internal service on another loopback port, named directly, behind a redirect
    // from the image host, and behind a user name that looks like the image host.
    let internal = Site::start(None).await.unwrap();
    site.route(
        "/bad/to-internal.jpg",
        Route::Redirect(internal.url("/latest/meta-data")),
    );
    let internal_port = internal.base_url.rsplit(':').next().unwrap().to_string();
    let hostile = [
        (internal.url("/secret.jpg"), "scheme `http` is not https"),
        (
            site.url("/bad/to-internal.jpg"),
            "redirect refused: scheme `http` is not https",
        ),
        (
            format!("{}@127.0.0.1:{internal_port}/x.jpg", site.base_url),
            "user name or password",
        ),
    ];
    for (url, _) in &hostile {
        images.push(SourceImage {
            kind: ImageKind::Flyer,
            url: url.clone(),
        });
    }
    images.push(SourceImage {
        kind: ImageKind::Hero,
        url: site.url("/img/photo.webp"),
    });

    let event = event(&pool).await;
    let started = std::time::Instant::now();
    let report = pipeline
        .publish_and_record(&pool, event, &images)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bad images stalled the run"
    );

    for (path, _, reason) in &bad {
        let failure = report
            .failures
            .iter()
            .find(|f| f.url == site.url(path))
            .unwrap_or_else(|| panic!("{path}: no failure reported"));
        assert!(failure.fatal, "{path}: the image must be dropped");
        assert!(
            failure.error.to_string().contains(reason),
            "{path}: {}",
            failure.error
        );
    }
    let ftp = report
        .failures
        .iter()
        .find(|f| f.url.starts_with("ftp:"))
        .unwrap();
    assert!(
        ftp.error.to_string().contains("scheme `ftp`"),
        "{}",
        ftp.error
    );
    for (url, reason) in &hostile {
        let failure = report
            .failures
            .iter()
            .find(|f| &f.url == url)
            .unwrap_or_else(|| panic!("{url}: no failure reported"));
        assert!(
            failure.error.to_string().contains(reason),
            "{url}: {}",
            failure.error
        );
    }
    assert_eq!(internal.total_hits(), 0, "the internal service was reached");
    assert_eq!(
        report.failures.len(),
        bad.len() + 1 + hostile.len(),
        "{:#?}",
        report.failures
    );

    // The good ones around them were published and recorded.
    let types: Vec<String> = image_rows(&pool, event)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(types, ["flyer", "hero", "og_hero"]);
}
