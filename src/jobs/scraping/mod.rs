//! The scraping job: crawls Entraste, RedTickets and Tickantel with one headless
//! Chromium and keeps the catalogue current.
//!
//! A run: the sites are crawled concurrently ([`crawl`], [`sites`]) and the browser is
//! closed; events are classified ([`model`]); valid ones get their venue ([`venues`])
//! and are stored one transaction each ([`store`]); their images are published
//! ([`images`]); then cleanup ([`cleanup`]): guest lists and stale events of each
//! platform whose crawl was complete, and past events everywhere.
//!
//! A site that fails entirely fails the run (after the others are stored), so the
//! alarm fires; a partial crawl stores what it found and skips that site's cleanup.

mod browser;
pub mod cleanup;
pub mod crawl;
pub mod images;
pub mod model;
pub mod sites;
pub mod store;
pub mod text;
pub mod venues;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, join_all};
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::config::{self, Env};
use crate::jobs::{Endpoint, Job, JobError, Registration, RunContext, Summary};
use crate::storage::Storage;
pub use browser::BrowserSettings;
use crawl::{CrawlSettings, Crawled, Site, Status};
use images::{ImagePipeline, ImageSettings};
use model::Class;

pub const PLATFORMS: [&str; 3] = ["entraste", "redtickets", "tickantel"];

pub const REGISTRATION: Registration = Registration {
    name: "scraping",
    build: |deps| {
        let settings = Settings::from_env(&*deps.env)?;
        Ok(Arc::new(Scraping::new(deps.pool.clone(), settings)?) as Arc<dyn Job>)
    },
};

#[derive(Debug, Clone)]
pub struct Settings {
    pub browser: BrowserSettings,
    pub crawl: CrawlSettings,
    pub concurrency: usize,
    pub platforms: Vec<&'static str>,
    pub base_urls: [String; 3],
    pub cleanup_min_ratio: f64,
    /// The instant the crawl counts as happening at; the clock unless `SCRAPER_NOW`.
    pub now: Option<DateTime<Utc>>,
    pub images: ImageSettings,
    pub storage: Storage,
    /// Google Places base URL and key, when enrichment is on.
    pub places: Option<(String, secrecy::SecretString)>,
}

fn default_chromium() -> PathBuf {
    // The real binary, not Debian's /usr/bin/chromium shell wrapper, which adds flags
    // of its own and complains about this VM's /dev/shm.
    let real = PathBuf::from("/usr/lib/chromium/chromium");
    if real.exists() {
        real
    } else {
        PathBuf::from("/usr/bin/chromium")
    }
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, config::Error> {
        let secs = |name, default, max| config::seconds(env, name, default, 0..=max);
        let platforms = match env("SCRAPER_PLATFORMS") {
            None => PLATFORMS.to_vec(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    PLATFORMS
                        .iter()
                        .copied()
                        .find(|known| *known == p)
                        .ok_or_else(|| config::Error {
                            variable: "SCRAPER_PLATFORMS",
                            message: format!("`{p}` is not one of {}", PLATFORMS.join(", ")),
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let now = match env("SCRAPER_NOW") {
            None => None,
            Some(text) => Some(
                DateTime::parse_from_rfc3339(text.trim())
                    .map_err(|e| config::Error {
                        variable: "SCRAPER_NOW",
                        message: format!("`{text}` is not an RFC 3339 instant: {e}"),
                    })?
                    .with_timezone(&Utc),
            ),
        };
        let images = ImageSettings::from_env(env)?;
        Ok(Settings {
            browser: BrowserSettings {
                executable: env("SCRAPER_CHROMIUM_PATH")
                    .map_or_else(default_chromium, PathBuf::from),
                user_agent: images.user_agent.clone(),
                navigation_timeout: secs("SCRAPER_NAVIGATION_TIMEOUT_SECS", 45, 600)?
                    .max(Duration::from_secs(1)),
                host_resolver_rules: env("SCRAPER_HOST_RESOLVER_RULES"),
                single_process: config::parse(
                    env,
                    "SCRAPER_CHROMIUM_SINGLE_PROCESS",
                    true,
                    false..=true,
                )?,
                extra_args: env("SCRAPER_CHROMIUM_ARGS")
                    .map(|a| {
                        a.split_whitespace()
                            .map(|s| s.trim_start_matches('-').to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            crawl: CrawlSettings {
                same_domain_delay: Duration::from_millis(
                    (config::parse(env, "SCRAPER_SAME_DOMAIN_DELAY_SECS", 4.0f64, 0.0..=60.0)?
                        * 1000.0) as u64,
                ),
                max_requests: config::parse(
                    env,
                    "SCRAPER_MAX_REQUESTS_PER_CRAWL",
                    100usize,
                    1..=10_000,
                )?,
                handler_timeout: secs("SCRAPER_REQUEST_HANDLER_TIMEOUT_SECS", 90, 3600)?
                    .max(Duration::from_secs(1)),
                budget: match env("SCRAPER_SITE_BUDGET_SECONDS") {
                    None => None,
                    Some(_) => Some(secs("SCRAPER_SITE_BUDGET_SECONDS", 300, 86_400)?),
                },
            },
            concurrency: config::parse(env, "SCRAPER_MAX_CONCURRENCY", 4usize, 1..=32)?,
            platforms,
            base_urls: [
                base(env, "SCRAPER_ENTRASTE_URL", "https://entraste.com"),
                base(env, "SCRAPER_REDTICKETS_URL", "https://redtickets.uy"),
                base(env, "SCRAPER_TICKANTEL_URL", "https://tickantel.com.uy"),
            ],
            cleanup_min_ratio: config::parse(env, "SCRAPER_CLEANUP_MIN_RATIO", 0.5f64, 0.0..=1.0)?,
            now,
            images,
            storage: Storage::from_env(env)?,
            places: env("GOOGLE_PLACES_API_KEY").map(|key| {
                (
                    base(env, "GOOGLE_PLACES_BASE_URL", "https://maps.googleapis.com"),
                    key.into(),
                )
            }),
        })
    }
}

fn base(env: &Env, name: &str, default: &str) -> String {
    env(name)
        .unwrap_or_else(|| default.to_string())
        .trim_end_matches('/')
        .to_string()
}

pub struct Scraping {
    pool: PgPool,
    settings: Settings,
    pipeline: Arc<ImagePipeline>,
}

impl Scraping {
    pub fn new(pool: PgPool, settings: Settings) -> anyhow::Result<Scraping> {
        let pipeline = Arc::new(ImagePipeline::new(
            &settings.images,
            settings.storage.clone(),
        )?);
        Ok(Scraping {
            pool,
            settings,
            pipeline,
        })
    }

    fn sites(&self, now: DateTime<Utc>) -> Vec<Box<dyn Site>> {
        let cx = |i: usize| sites::SiteContext {
            base: self.settings.base_urls[i].clone(),
            now,
        };
        self.settings
            .platforms
            .iter()
            .map(|p| -> Box<dyn Site> {
                match *p {
                    "entraste" => Box::new(sites::entraste::Entraste { cx: cx(0) }),
                    "redtickets" => Box::new(sites::redtickets::RedTickets { cx: cx(1) }),
                    _ => Box::new(sites::tickantel::Tickantel { cx: cx(2) }),
                }
            })
            .collect()
    }

    pub async fn run_once(&self, cx: &RunContext) -> Result<Summary, JobError> {
        let now = self.settings.now.unwrap_or_else(Utc::now);
        let browser = browser::Browser::launch(&self.settings.browser).await?;
        let tabs = Arc::new(Semaphore::new(self.settings.concurrency));
        let sites = self.sites(now);
        // Hidden unless stderr is a terminal.
        let bars = indicatif::MultiProgress::with_draw_target(
            indicatif::ProgressDrawTarget::stderr_with_hz(4),
        );
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} pages  {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let site_bars: Vec<indicatif::ProgressBar> = sites
            .iter()
            .map(|site| {
                let bar = bars.add(indicatif::ProgressBar::new(1).with_style(style.clone()));
                bar.set_prefix(site.platform());
                bar
            })
            .collect();
        let crawls: Vec<Crawled> = join_all(sites.iter().zip(&site_bars).map(|(site, bar)| {
            crawl::crawl(
                site.as_ref(),
                &browser,
                tabs.clone(),
                &self.settings.crawl,
                &cx.cancel,
                bar,
            )
        }))
        .await;
        // Chromium is the bulk of the memory; it is not needed past this point.
        browser.shutdown().await;

        let mut summary = Summary::default();
        let mut per_site = serde_json::Map::new();
        let places = match &self.settings.places {
            Some((base, key)) => Some(venues::GooglePlaces::new(base, key.clone())?),
            None => None,
        };
        let mut venues = venues::Venues::new(places);
        let mut failed_sites = Vec::new();
        let mut cut_short = Vec::new();
        let mut images_published = 0u64;
        let mut images_failed = 0u64;
        for crawled in &crawls {
            let mut seen_ids = HashSet::new();
            let events: Vec<_> = crawled
                .events
                .iter()
                .filter(|e| seen_ids.insert(e.external_id.clone()))
                .collect();
            let (mut stored, mut created, mut restored, mut store_failed) =
                (0u64, 0u64, 0u64, Vec::new());
            let mut to_publish = Vec::new();
            for event in events.iter().filter(|e| e.class() == Class::Valid) {
                if cx.cancel.is_cancelled() {
                    break;
                }
                let venue = match venues.resolve(&self.pool, event).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(external_id = %event.external_id, error = %e, "venue not resolved");
                        None
                    }
                };
                match store::upsert(&self.pool, event, venue, now).await {
                    Ok(done) => {
                        stored += 1;
                        created += u64::from(done.created);
                        restored += u64::from(done.restored);
                        if done.restored {
                            tracing::info!(external_id = %event.external_id, "event restored");
                        }
                        if !event.images.is_empty() {
                            to_publish.push((done.id, event.images.clone()));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(external_id = %event.external_id, error = %e, "event not stored");
                        store_failed.push(
                            json!({"external_id": event.external_id, "error": e.to_string()}),
                        );
                    }
                }
            }
            let pipeline = &self.pipeline;
            let pool = &self.pool;
            let reports: Vec<_> =
                stream::iter(to_publish)
                    .map(|(id, images)| async move {
                        pipeline.publish_and_record(pool, id, &images).await
                    })
                    // Events beyond this only wait on the pipeline's own bound.
                    .buffer_unordered(self.settings.images.concurrency)
                    .collect()
                    .await;
            for report in reports {
                match report {
                    Ok(r) => {
                        images_published += r.published.len() as u64;
                        images_failed += r.failures.iter().filter(|f| f.fatal).count() as u64;
                    }
                    Err(e) => {
                        images_failed += 1;
                        tracing::warn!(error = %e, "event images not recorded");
                    }
                }
            }

            let count = |class| events.iter().filter(|e| e.class() == class).count();
            let mut cleaned = json!(null);
            if crawled.status == Status::Complete && !cx.cancel.is_cancelled() {
                let guest: Vec<String> = events
                    .iter()
                    .filter(|e| e.class() == Class::GuestList)
                    .map(|e| e.external_id.clone())
                    .collect();
                let seen: Vec<String> = events
                    .iter()
                    .filter(|e| e.class() != Class::GuestList)
                    .map(|e| e.external_id.clone())
                    .collect();
                let guest_removed =
                    cleanup::guest_lists(&self.pool, crawled.platform, &guest, now).await?;
                let stale = match cleanup::stale(
                    &self.pool,
                    crawled.platform,
                    &seen,
                    self.settings.cleanup_min_ratio,
                    now,
                )
                .await?
                {
                    cleanup::Stale::Removed(n) => json!(n),
                    cleanup::Stale::Skipped(why) => json!({"skipped": why}),
                };
                cleaned = json!({"guest_list": guest_removed, "stale": stale});
            }
            if crawled.status == Status::Failed {
                failed_sites.push(format!(
                    "{}: {}",
                    crawled.platform,
                    crawled.reason.as_deref().unwrap_or("failed")
                ));
            }
            if crawled.browser_lost {
                cut_short.push(format!(
                    "{} ({} of {} events stored)",
                    crawled.platform,
                    stored,
                    events.len()
                ));
            }
            summary.processed += events.len() as u64;
            summary.succeeded += stored;
            summary.failed += (crawled.failed_pages.len() + store_failed.len()) as u64;
            cx.progress
                .set(summary.processed, summary.succeeded, summary.failed);
            per_site.insert(
                crawled.platform.to_string(),
                json!({
                    "status": crawled.status.as_str(),
                    "reason": crawled.reason,
                    "pages": crawled.pages,
                    "pages_failed": crawled.failed_pages.len(),
                    "seconds": (crawled.duration.as_millis() as f64 / 1000.0),
                    "found": events.len(),
                    "valid": count(Class::Valid),
                    "guest_list": count(Class::GuestList),
                    "empty_wave": count(Class::EmptyWave),
                    "stored": stored,
                    "created": created,
                    "restored": restored,
                    "store_failed": store_failed,
                    "cleaned": cleaned,
                    "failures": crawled.failed_pages.iter().map(|(url, e)| json!({"url": url, "error": e})).collect::<Vec<_>>(),
                }),
            );
        }
        let past = if cx.cancel.is_cancelled() {
            0
        } else {
            cleanup::past(&self.pool, now).await?
        };
        summary
            .details
            .insert("sites".into(), Value::Object(per_site));
        summary.details.insert("past_cleaned".into(), json!(past));
        summary
            .details
            .insert("venues_created".into(), json!(venues.created));
        summary
            .details
            .insert("venues_from_google".into(), json!(venues.from_google));
        summary
            .details
            .insert("images_published".into(), json!(images_published));
        summary
            .details
            .insert("images_failed".into(), json!(images_failed));
        summary
            .details
            .insert("browser_lost".into(), json!(!cut_short.is_empty()));
        // A crawl cut short by a dead browser is a failure even where some events were
        // read: the listing is incomplete, and someone should know the browser died.
        let mut failures = Vec::new();
        if !cut_short.is_empty() {
            failures.push(format!(
                "the browser died mid-crawl; what was read is stored: {}",
                cut_short.join(", ")
            ));
        }
        if !failed_sites.is_empty() {
            failures.push(format!("no events from {}", failed_sites.join("; ")));
        }
        if !failures.is_empty() {
            return Err(JobError {
                summary,
                error: anyhow::anyhow!("{}", failures.join("; ")),
            });
        }
        Ok(summary)
    }
}

impl Job for Scraping {
    fn run(&self, cx: RunContext) -> BoxFuture<'static, Result<Summary, JobError>> {
        let job = Scraping {
            pool: self.pool.clone(),
            settings: self.settings.clone(),
            pipeline: self.pipeline.clone(),
        };
        Box::pin(async move { job.run_once(&cx).await })
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        let mut endpoints: Vec<Endpoint> = self
            .settings
            .platforms
            .iter()
            .filter_map(|p| {
                let i = PLATFORMS.iter().position(|known| known == p)?;
                Some(Endpoint {
                    name: PLATFORMS[i],
                    url: self.settings.base_urls[i].clone(),
                })
            })
            .collect();
        if let Some((base, _)) = &self.settings.places {
            endpoints.push(Endpoint {
                name: "Google Places",
                url: base.clone(),
            });
        }
        endpoints
    }
}
