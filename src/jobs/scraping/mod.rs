//! The scraping job: crawls Entraste, RedTickets and Tickantel with one headless
//! Chromium and keeps the catalogue current.
//!
//! A run: the sites are crawled concurrently ([`crawl`], [`sites`]) and the browser is
//! closed; events are classified ([`model`]); valid ones get their venue ([`venues`])
//! and are stored one transaction each ([`store`]); their images are published
//! ([`images`]); then cleanup ([`cleanup`]): guest lists and stale events of each
//! platform whose crawl was complete, and past events everywhere. Every SQL statement
//! of the job is in [`queries`].
//!
//! A site that fails entirely fails the run (after the others are stored), so the
//! alarm fires; a partial crawl stores what it found and skips that site's cleanup.

mod browser;
mod cleanup;
mod crawl;
pub mod images;
mod indexnow;
mod model;
mod queries;
mod run;
mod sites;
mod store;
mod text;
mod venues;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::PgPool;

use crate::clock::Clock;
use crate::config::{self, Env};
use crate::jobs::{Endpoint, Job, JobError, Registration, RunContext, Summary};
use crate::storage::Storage;
pub use browser::BrowserSettings;
use crawl::{CrawlSettings, Site};
use images::{ImagePipeline, ImageSettings};
use sites::{SITES, SiteEntry};

use crate::egress::{Guard, Hosts};

pub const REGISTRATION: Registration = Registration {
    name: "scraping",
    build: |deps| {
        let settings = Settings::from_env(&*deps.env)?;
        let job = Scraping::new(deps.pool.clone(), settings, deps.clock.clone())?;
        Ok(Arc::new(job) as Arc<dyn Job>)
    },
    requeue: None,
};

#[derive(Debug, Clone)]
pub struct Settings {
    pub browser: BrowserSettings,
    pub crawl: CrawlSettings,
    pub concurrency: usize,
    /// The sites to crawl (`SCRAPER_PLATFORMS`, all by default) and each one's base URL.
    pub sites: Vec<(&'static SiteEntry, String)>,
    pub cleanup_min_ratio: f64,
    pub images: ImageSettings,
    pub storage: Storage,
    /// IndexNow, when `INDEXNOW_KEY` is set.
    pub indexnow: Option<indexnow::IndexNowSettings>,
    /// Google Places base URL and key, when enrichment is on.
    pub places: Option<(String, secrecy::SecretString)>,
}

/// Debian's headless shell (package `chromium-headless-shell`: the same Chromium build
/// without GTK, cairo, pango or cups, what Playwright runs headless by default) when it
/// is installed, else the full browser's real binary (not Debian's /usr/bin/chromium
/// shell wrapper, which adds flags of its own and complains about this VM's /dev/shm).
fn default_chromium() -> PathBuf {
    [
        "/usr/lib/chromium/chromium-headless-shell",
        "/usr/lib/chromium/chromium",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

impl Settings {
    /// Every setting of the job, the images' and the storage's included: the one place
    /// the scraping job reads its environment.
    pub fn from_env(env: &Env) -> Result<Settings, config::Error> {
        let images = ImageSettings::from_env(env)?;
        let sites = chosen_sites(env)?;
        let mut browser = browser_settings(env, &images.user_agent)?;
        browser.reachable_hosts = reachable_hosts(&sites);
        Ok(Settings {
            browser,
            crawl: crawl_settings(env)?,
            concurrency: config::parse(env, "SCRAPER_MAX_CONCURRENCY", 4usize, 1..=32)?,
            sites,
            cleanup_min_ratio: config::parse(env, "SCRAPER_CLEANUP_MIN_RATIO", 0.5f64, 0.0..=1.0)?,
            images,
            storage: Storage::from_env(env)?,
            indexnow: env("INDEXNOW_KEY").map(|key| indexnow::IndexNowSettings {
                endpoint: config::base_url(
                    env,
                    "INDEXNOW_URL",
                    "https://api.indexnow.org/indexnow",
                ),
                host: env("INDEXNOW_HOST").unwrap_or_else(|| "revendiste.com".into()),
                key: key.into(),
                pages: config::app_base_url(env),
            }),
            places: env("GOOGLE_PLACES_API_KEY").map(|key| {
                (
                    config::base_url(env, "GOOGLE_PLACES_BASE_URL", "https://maps.googleapis.com"),
                    key.into(),
                )
            }),
        })
    }
}

/// `SCRAPER_PLATFORMS` (all sites when unset), each with its base URL.
fn chosen_sites(env: &Env) -> Result<Vec<(&'static SiteEntry, String)>, config::Error> {
    let chosen: Vec<&'static SiteEntry> = match env("SCRAPER_PLATFORMS") {
        None => SITES.iter().collect(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                SITES
                    .iter()
                    .find(|e| e.platform == p)
                    .ok_or_else(|| config::Error {
                        variable: "SCRAPER_PLATFORMS",
                        message: format!(
                            "`{p}` is not one of {}",
                            SITES
                                .iter()
                                .map(|e| e.platform)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(chosen
        .into_iter()
        .map(|e| (e, config::base_url(env, e.url_variable, e.default_url)))
        .collect())
}

/// The host names the browser may resolve at all: each chosen site's configured host
/// and the hosts its table entry names, with their subdomains.
fn reachable_hosts(sites: &[(&'static SiteEntry, String)]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for (entry, base) in sites {
        if let Some(host) = reqwest::Url::parse(base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        {
            hosts.push(host);
        }
        for host in entry.hosts {
            hosts.push(host.to_string());
            hosts.push(format!("*.{host}"));
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

fn browser_settings(env: &Env, user_agent: &str) -> Result<BrowserSettings, config::Error> {
    Ok(BrowserSettings {
        executable: env("SCRAPER_CHROMIUM_PATH").map_or_else(default_chromium, PathBuf::from),
        user_agent: user_agent.to_string(),
        navigation_timeout: config::seconds(env, "SCRAPER_NAVIGATION_TIMEOUT_SECS", 45, 0..=600)?
            .max(Duration::from_secs(1)),
        host_resolver_rules: env("SCRAPER_HOST_RESOLVER_RULES"),
        reachable_hosts: Vec::new(),
        single_process: config::parse(env, "SCRAPER_CHROMIUM_SINGLE_PROCESS", true, false..=true)?,
        extra_args: env("SCRAPER_CHROMIUM_ARGS")
            .map(|a| {
                a.split_whitespace()
                    .map(|s| s.trim_start_matches('-').to_string())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn crawl_settings(env: &Env) -> Result<CrawlSettings, config::Error> {
    let secs = |name, default, max| config::seconds(env, name, default, 0..=max);
    let delay = config::parse(env, "SCRAPER_SAME_DOMAIN_DELAY_SECS", 4.0f64, 0.0..=60.0)?;
    Ok(CrawlSettings {
        same_domain_delay: Duration::from_millis((delay * 1000.0) as u64),
        max_requests: config::parse(env, "SCRAPER_MAX_REQUESTS_PER_CRAWL", 100usize, 1..=10_000)?,
        handler_timeout: secs("SCRAPER_REQUEST_HANDLER_TIMEOUT_SECS", 90, 3600)?
            .max(Duration::from_secs(1)),
        budget: match env("SCRAPER_SITE_BUDGET_SECONDS") {
            None => None,
            Some(_) => Some(secs("SCRAPER_SITE_BUDGET_SECONDS", 300, 86_400)?),
        },
    })
}

#[derive(Clone)]
pub struct Scraping {
    pool: PgPool,
    clock: Clock,
    settings: Settings,
    pipeline: Arc<ImagePipeline>,
}

impl Scraping {
    pub fn new(pool: PgPool, settings: Settings, clock: Clock) -> anyhow::Result<Scraping> {
        let origins: Vec<String> = settings
            .sites
            .iter()
            .map(|(_, base)| base.clone())
            .collect();
        let pipeline = Arc::new(ImagePipeline::new(
            &settings.images,
            settings.storage.clone(),
            &origins,
        )?);
        Ok(Scraping {
            pool,
            clock,
            settings,
            pipeline,
        })
    }

    fn sites(&self, now: DateTime<Utc>) -> Vec<Box<dyn Site>> {
        self.settings
            .sites
            .iter()
            .map(|(entry, base)| {
                (entry.build)(sites::SiteContext {
                    base: base.clone(),
                    now,
                    guard: Guard::new(
                        Hosts::Within(entry.hosts.iter().map(|h| h.to_string()).collect()),
                        [base.as_str()],
                    ),
                })
            })
            .collect()
    }
}

impl Job for Scraping {
    fn run(&self, cx: RunContext) -> BoxFuture<'static, Result<Summary, JobError>> {
        let job = self.clone();
        Box::pin(async move { job.run_once(&cx).await })
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        let mut endpoints: Vec<Endpoint> = self
            .settings
            .sites
            .iter()
            .map(|(entry, base)| Endpoint {
                name: entry.platform,
                url: base.clone(),
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
