//! Publishing a scraped event's images: download, transform, store, record.
//!
//! Each flyer or hero image becomes, under content-addressed keys in the public bucket,
//! a WebP copy of the original (quality 75, not resized), a 560×560 centre-cropped WebP
//! thumbnail, and for heroes a 1200×630 Open Graph JPEG ([`og`]). Keys are
//! `public/assets/events/<event id>/<type>-<hash16>.webp`, `…_thumb.webp` and
//! `og_hero-<hash16>.jpg`, where `hash16` is the first 16 hex digits of the SHA-256 of
//! the image's URL, so an unchanged image is recognised by a HEAD on its key and never
//! downloaded again; a missing thumbnail or card is rebuilt from the stored copy.
//! Uploads go original first, so a task killed halfway leaves nothing the next run
//! does not complete.
//!
//! A failed original drops that image (its `event_images` row keeps its old value); a
//! failed thumbnail or card is reported and the rest is kept. Images in flight and the
//! threads decoding them are both bounded, so memory stays bounded however many events
//! a crawl finds: at most `IMAGES_CONCURRENCY` downloads of at most `IMAGES_MAX_BYTES`,
//! and `IMAGES_CPU_WORKERS` decodes of at most `IMAGES_MAX_PIXELS`.

pub mod codec;
mod download;
pub mod og;
pub mod transform;
pub mod watermark;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::config::{self, Env};
use crate::egress::{Guard, Hosts};
use crate::storage::{Storage, StorageError};
use download::Downloader;
use watermark::Watermark;

/// The User-Agent image hosts see unless `SCRAPER_USER_AGENT` says otherwise: a
/// desktop browser's, since some hosts refuse anything else, naming us at the end.
pub const DEFAULT_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36 run-job/0.1";

pub const WEBP_QUALITY: f32 = 75.0;
pub const THUMBNAIL_SIDE: u32 = 560;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not a usable URL: {0}")]
    BadUrl(String),
    #[error("download failed: {0}")]
    Download(String),
    #[error("too large: {bytes} bytes or more, over the cap of {max_bytes} (IMAGES_MAX_BYTES)")]
    TooLarge { bytes: u64, max_bytes: u64 },
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("cannot be decoded: {0}")]
    Corrupt(String),
    #[error(
        "{width}x{height} is over the limit of {max_pixels} pixels (IMAGES_MAX_PIXELS) or {} per side; refused before decoding",
        codec::MAX_SIDE
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("cannot be encoded: {0}")]
    Encode(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

/// The pipeline's settings, from the environment.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    pub max_bytes: u64,
    pub download_timeout: Duration,
    pub max_pixels: u64,
    /// Images downloading or processing at once.
    pub concurrency: usize,
    /// Threads decoding and encoding at once.
    pub cpu_workers: usize,
    /// MiB the images being decoded may take together (see [`memory_needed_mib`]).
    pub memory_budget_mib: u32,
    pub watermark_path: Option<String>,
    pub user_agent: String,
}

impl ImageSettings {
    pub fn from_env(env: &Env) -> Result<ImageSettings, config::Error> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(ImageSettings {
            max_bytes: config::parse(env, "IMAGES_MAX_BYTES", 20 << 20, 1024..=(512 << 20))?,
            download_timeout: config::seconds(env, "IMAGES_DOWNLOAD_TIMEOUT_SECONDS", 20, 1..=600)?,
            max_pixels: config::parse(
                env,
                "IMAGES_MAX_PIXELS",
                40_000_000u64,
                1..=u64::from(codec::MAX_SIDE).pow(2),
            )?,
            concurrency: config::parse(env, "IMAGES_CONCURRENCY", 4usize, 1..=64)?,
            cpu_workers: config::parse(env, "IMAGES_CPU_WORKERS", cpus, 1..=64)?,
            memory_budget_mib: config::parse(
                env,
                "IMAGES_MEMORY_BUDGET_MB",
                default_memory_budget_mib(env)?,
                64..=1 << 20,
            )?,
            watermark_path: env("IMAGES_WATERMARK_PATH"),
            user_agent: env("SCRAPER_USER_AGENT").unwrap_or_else(|| DEFAULT_USER_AGENT.into()),
        })
    }
}

/// Peak bytes per pixel of one image on its way through `render`, measured on the real
/// path (bench/drivers/image-publish.rs, allocator tuned): a 40 MP PNG peaked at 346 MiB, a
/// 36 MP JPEG at 314 MiB, about 8.6-8.8 bytes a pixel with the process's own ~10 MiB
/// (the pixels in RGB, WebP's YUV planes and encoder, the card's buffers).
const BYTES_PER_PIXEL: u64 = 9;

/// What the rest of a scraping task takes besides images: Chromium's tree (315-390 MiB
/// measured, BENCHMARKS.md "scraping") with a margin, and the process itself.
const BROWSER_RESERVE_MIB: u32 = 450;
const PROCESS_RESERVE_MIB: u32 = 64;

/// MiB to reserve before decoding an image of this size.
pub fn memory_needed_mib(width: u32, height: u32) -> u32 {
    let bytes = u64::from(width) * u64::from(height) * BYTES_PER_PIXEL;
    u32::try_from(bytes.div_ceil(1 << 20)).unwrap_or(u32::MAX)
}

/// The budget when `IMAGES_MEMORY_BUDGET_MB` is not set: what the task's declared memory
/// (`RUN_JOB_TASK_MEMORY_MB`, which the Terraform sets from the declaration) leaves after
/// the browser and the process, at least 128 MiB; 512 MiB when the task's memory is not
/// known (as a 1 GB task would leave).
fn default_memory_budget_mib(env: &Env) -> Result<u32, config::Error> {
    let task: u32 = config::parse(env, "RUN_JOB_TASK_MEMORY_MB", 0u32, 0..=122_880)?;
    Ok(if task == 0 {
        512
    } else {
        task.saturating_sub(BROWSER_RESERVE_MIB + PROCESS_RESERVE_MIB)
            .max(128)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Flyer,
    Hero,
}

impl ImageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Flyer => "flyer",
            ImageKind::Hero => "hero",
        }
    }
}

/// An image as scraped: what it is and where the site publishes it.
#[derive(Debug, Clone)]
pub struct SourceImage {
    pub kind: ImageKind,
    pub url: String,
}

/// One `event_images` row to be: `image_type` is `flyer`, `hero` or `og_hero`.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub image_type: &'static str,
    pub url: String,
    pub thumbnail_url: Option<String>,
}

/// Something that went wrong with one image. `fatal` when the image was dropped.
#[derive(Debug)]
pub struct ImageFailure {
    pub url: String,
    pub stage: &'static str,
    pub fatal: bool,
    pub error: ImageError,
}

/// What publishing one event's images did.
#[derive(Debug, Default)]
pub struct EventImages {
    pub published: Vec<Published>,
    pub failures: Vec<ImageFailure>,
    pub downloaded: u64,
    /// Images whose stored copy was found, so nothing was downloaded.
    pub reused: u64,
}

/// The keys of one source image.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    pub original: String,
    pub thumbnail: String,
    pub og: String,
}

impl Keys {
    pub fn new(event_id: Uuid, kind: ImageKind, url: &str) -> Keys {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, url.as_bytes());
        let hash: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = format!("public/assets/events/{event_id}");
        let kind = kind.as_str();
        Keys {
            original: format!("{dir}/{kind}-{hash}.webp"),
            thumbnail: format!("{dir}/{kind}-{hash}_thumb.webp"),
            og: format!("{dir}/og_hero-{hash}.jpg"),
        }
    }
}

/// The encoded outputs of one image; `None` where not asked for, `Err` where failed.
pub struct Outputs {
    pub original: Option<Vec<u8>>,
    pub thumbnail: Option<Result<Vec<u8>, ImageError>>,
    pub og: Option<Result<Vec<u8>, ImageError>>,
}

/// Which derived objects of an image are stored.
#[derive(Debug, Clone, Copy, Default)]
struct Present {
    thumbnail: bool,
    og: bool,
}

/// Which outputs to produce.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub original: bool,
    pub thumbnail: bool,
    pub og: bool,
}

pub struct ImagePipeline {
    storage: Storage,
    downloader: Downloader,
    watermark: Arc<Watermark>,
    max_pixels: u64,
    in_flight: Semaphore,
    cpu: Arc<Semaphore>,
    /// One permit a MiB of `memory_budget_mib`: an image reserves what it will need
    /// before it is decoded, so a 40 MP image waits for room instead of racing another.
    memory: Arc<Semaphore>,
    memory_budget_mib: u32,
    /// The most reserved at once so far (MiB), for the run's summary.
    memory_peak_mib: std::sync::atomic::AtomicU32,
}

impl ImagePipeline {
    /// `origins`: where images may come from besides https on public addresses (the
    /// configured sites' own base URLs, exactly).
    pub fn new(
        settings: &ImageSettings,
        storage: Storage,
        origins: &[String],
    ) -> anyhow::Result<ImagePipeline> {
        let watermark = match &settings.watermark_path {
            None => Watermark::built_in()?,
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("IMAGES_WATERMARK_PATH: cannot read `{path}`: {e}")
                })?;
                Watermark::from_png(&bytes)
                    .map_err(|e| anyhow::anyhow!("IMAGES_WATERMARK_PATH: `{path}`: {e}"))?
            }
        };
        Ok(ImagePipeline {
            storage,
            downloader: Downloader::new(
                settings.download_timeout,
                settings.max_bytes,
                &settings.user_agent,
                Guard::new(Hosts::Any, origins.iter().map(String::as_str)),
            )?,
            watermark: Arc::new(watermark),
            max_pixels: settings.max_pixels,
            in_flight: Semaphore::new(settings.concurrency),
            cpu: Arc::new(Semaphore::new(settings.cpu_workers)),
            memory: Arc::new(Semaphore::new(settings.memory_budget_mib as usize)),
            memory_budget_mib: settings.memory_budget_mib,
            memory_peak_mib: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// The most memory images had reserved at once so far (MiB, of the budget).
    pub fn memory_peak_mib(&self) -> u32 {
        self.memory_peak_mib
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Publishes an event's images (concurrently, within the pipeline's bounds) and
    /// returns the rows to record, in the order of `images`.
    pub async fn publish(&self, event_id: Uuid, images: &[SourceImage]) -> EventImages {
        let results = join_all(images.iter().map(|image| self.publish_one(event_id, image))).await;
        let mut report = EventImages::default();
        for (image, result) in images.iter().zip(results) {
            match result {
                Ok(one) => {
                    report.published.extend(one.published);
                    report.failures.extend(one.failures);
                    report.downloaded += one.downloaded;
                    report.reused += one.reused;
                }
                Err((stage, error)) => report.failures.push(ImageFailure {
                    url: image.url.clone(),
                    stage,
                    fatal: true,
                    error,
                }),
            }
        }
        for failure in &report.failures {
            tracing::warn!(
                %event_id,
                url = %failure.url,
                stage = failure.stage,
                dropped = failure.fatal,
                error = %failure.error,
                "image failed"
            );
        }
        report
    }

    /// Publishes and records an event's images; the rows are written in one
    /// transaction, and only for images that were published.
    pub async fn publish_and_record(
        &self,
        pool: &PgPool,
        event_id: Uuid,
        images: &[SourceImage],
    ) -> Result<EventImages, sqlx::Error> {
        let report = self.publish(event_id, images).await;
        record(pool, event_id, &report.published).await?;
        Ok(report)
    }

    async fn publish_one(
        &self,
        event_id: Uuid,
        image: &SourceImage,
    ) -> Result<EventImages, (&'static str, ImageError)> {
        let _slot = self.in_flight.acquire().await.map_err(|_| {
            (
                "queue",
                ImageError::Download("the pipeline is closed".into()),
            )
        })?;
        let keys = Keys::new(event_id, image.kind, &image.url);
        let mut report = EventImages::default();
        let stored = self
            .storage
            .exists(&keys.original)
            .await
            .map_err(|e| ("check", e.into()))?;
        let (present, outputs) = if stored {
            report.reused = 1;
            self.derive_from_stored(&keys, image, &mut report).await
        } else {
            report.downloaded = 1;
            (
                Present::default(),
                Some(self.download_and_derive(&keys, image).await?),
            )
        };
        let present = match outputs {
            Some(outputs) => {
                self.store_derived(outputs, &keys, image, present, &mut report)
                    .await
            }
            None => present,
        };
        report.published.push(Published {
            image_type: image.kind.as_str(),
            url: self.storage.public_url(&keys.original),
            thumbnail_url: present
                .thumbnail
                .then(|| self.storage.public_url(&keys.thumbnail)),
        });
        if present.og {
            report.published.push(Published {
                image_type: "og_hero",
                url: self.storage.public_url(&keys.og),
                thumbnail_url: None,
            });
        }
        Ok(report)
    }

    /// An image stored by an earlier run: which derived objects are there, and those
    /// missing rebuilt from the stored copy (a failure there is reported, not fatal).
    async fn derive_from_stored(
        &self,
        keys: &Keys,
        image: &SourceImage,
        report: &mut EventImages,
    ) -> (Present, Option<Outputs>) {
        let hero = image.kind == ImageKind::Hero;
        let present = Present {
            thumbnail: self.present(&keys.thumbnail).await,
            og: hero && self.present(&keys.og).await,
        };
        let wanted = Wanted {
            original: false,
            thumbnail: !present.thumbnail,
            og: hero && !present.og,
        };
        if !(wanted.thumbnail || wanted.og) {
            return (present, None);
        }
        let rebuilt = match self.storage.get(&keys.original).await {
            Ok(bytes) => self.transform(bytes, wanted).await,
            Err(e) => Err(e.into()),
        };
        let outputs = rebuilt
            .map_err(|error| {
                report.failures.push(ImageFailure {
                    url: image.url.clone(),
                    stage: "rebuild from stored copy",
                    fatal: false,
                    error,
                })
            })
            .ok();
        (present, outputs)
    }

    /// A new image: downloaded, transformed, its original stored (any failure here is
    /// the image's failure, with its stage).
    async fn download_and_derive(
        &self,
        keys: &Keys,
        image: &SourceImage,
    ) -> Result<Outputs, (&'static str, ImageError)> {
        let bytes = self
            .downloader
            .get(&image.url)
            .await
            .map_err(|e| ("download", e))?;
        let wanted = Wanted {
            original: true,
            thumbnail: true,
            og: image.kind == ImageKind::Hero,
        };
        let mut outputs = self
            .transform(bytes, wanted)
            .await
            .map_err(|e| ("decode", e))?;
        if let Some(original) = outputs.original.take() {
            self.storage
                .put(&keys.original, original, "image/webp")
                .await
                .map_err(|e| ("upload", e.into()))?;
        }
        Ok(outputs)
    }

    /// Stores the thumbnail and the card that were made; a failure is reported, and the
    /// event is published without that output.
    async fn store_derived(
        &self,
        outputs: Outputs,
        keys: &Keys,
        image: &SourceImage,
        mut present: Present,
        report: &mut EventImages,
    ) -> Present {
        let uploads = [
            (
                outputs.thumbnail,
                &keys.thumbnail,
                "image/webp",
                "thumbnail",
            ),
            (outputs.og, &keys.og, "image/jpeg", "og card"),
        ];
        for (output, key, content_type, stage) in uploads {
            let Some(result) = output else { continue };
            let done = match result {
                Ok(bytes) => self
                    .storage
                    .put(key, bytes, content_type)
                    .await
                    .map_err(Into::into),
                Err(e) => Err(e),
            };
            match done {
                Ok(()) if stage == "thumbnail" => present.thumbnail = true,
                Ok(()) => present.og = true,
                Err(error) => report.failures.push(ImageFailure {
                    url: image.url.clone(),
                    stage,
                    fatal: false,
                    error,
                }),
            }
        }
        present
    }

    /// Whether a derived object is stored; an error counts as missing, so it is rebuilt.
    async fn present(&self, key: &str) -> bool {
        self.storage.exists(key).await.unwrap_or(false)
    }

    /// Decodes and encodes on a blocking thread, at most `cpu_workers` at once and
    /// within the memory budget. An image larger than the whole budget runs alone.
    async fn transform(&self, bytes: Vec<u8>, wanted: Wanted) -> Result<Outputs, ImageError> {
        // An unreadable header reserves nothing: `render` refuses it before decoding.
        // Nor one over the pixel limits, which `render` refuses before decoding.
        let need = codec::dimensions(&bytes)
            .ok()
            .filter(|&(w, h)| codec::within_limits(w, h, self.max_pixels))
            .map_or(0, |(w, h)| memory_needed_mib(w, h))
            .min(self.memory_budget_mib);
        let reserved = self
            .memory
            .clone()
            .acquire_many_owned(need)
            .await
            .map_err(|_| ImageError::Encode("the pipeline is closed".into()))?;
        let in_use = self.memory_budget_mib - self.memory.available_permits() as u32;
        self.memory_peak_mib
            .fetch_max(in_use, std::sync::atomic::Ordering::Relaxed);
        let permit = self
            .cpu
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ImageError::Encode("the pipeline is closed".into()))?;
        let watermark = self.watermark.clone();
        let max_pixels = self.max_pixels;
        tokio::task::spawn_blocking(move || {
            let _permits = (permit, reserved);
            render(bytes, max_pixels, &watermark, wanted)
        })
        .await
        .map_err(|e| ImageError::Encode(format!("the image worker failed: {e}")))?
    }
}

/// Decodes `bytes` once and produces every output `wanted` from the pixels: the
/// CPU-bound part of publishing an image, synchronous so it runs on a blocking thread.
/// The source bytes are freed as soon as they are decoded.
pub fn render(
    bytes: Vec<u8>,
    max_pixels: u64,
    watermark: &Watermark,
    wanted: Wanted,
) -> Result<Outputs, ImageError> {
    let pixels = codec::decode(&bytes, max_pixels)?;
    drop(bytes);
    let original = if wanted.original {
        Some(codec::webp(&pixels, WEBP_QUALITY)?)
    } else {
        None
    };
    let thumbnail = wanted.thumbnail.then(|| {
        transform::cover(&pixels, THUMBNAIL_SIDE, THUMBNAIL_SIDE)
            .and_then(|thumb| codec::webp(&thumb, WEBP_QUALITY))
    });
    let og = wanted
        .og
        .then(|| og::card(&pixels, watermark).map(|(jpeg, _dark)| jpeg));
    Ok(Outputs {
        original,
        thumbnail,
        og,
    })
}

/// Upserts an event's image rows in one transaction; `display_order` is the position
/// in `published`. Rows of images not in `published` are left as they were. The
/// statement is `upsert_image` in scraping's `queries`.
pub async fn record(
    pool: &PgPool,
    event_id: Uuid,
    published: &[Published],
) -> Result<(), sqlx::Error> {
    if published.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for (order, row) in published.iter().enumerate() {
        super::queries::upsert_image(&mut tx, event_id, row, order as i32).await?;
    }
    tx.commit().await
}
