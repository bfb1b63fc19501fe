//! One run of the scraping job, as its outline: crawl the sites with one browser, then
//! for each site store its events, publish their images and clean up, then clean the
//! ended events of every platform and summarise.
//!
//! The summary's details are built from [`Details`] and [`SiteReport`], typed, so the
//! shape the tests and dashboards read is written down in one place.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::crawl::{self, Crawled, Status};
use super::images::SourceImage;
use super::model::{Class, ScrapedEvent};
use super::{Scraping, browser, cleanup, indexnow, store, venues};
use crate::jobs::{JobError, RunContext, Summary};

/// The summary's `details`.
#[derive(Debug, Default, Serialize)]
struct Details {
    sites: BTreeMap<&'static str, SiteReport>,
    past_cleaned: u64,
    venues_created: u64,
    venues_from_google: u64,
    venues_refreshed: u64,
    /// Event pages new or changed this run, by slug, for IndexNow.
    #[serde(skip)]
    changed_pages: Vec<String>,
    indexnow_pinged: u64,
    indexnow_failed: u64,
    images_published: u64,
    images_failed: u64,
    /// The most the images reserved of their memory budget at once (MiB).
    images_memory_peak_mib: u32,
    browser_lost: bool,
    /// Requests pages made outside their site, blocked in the browser.
    blocked_requests: u64,
}

/// One site's crawl and what became of its events: the summary's `sites.<platform>`.
#[derive(Debug, Serialize)]
struct SiteReport {
    status: &'static str,
    reason: Option<String>,
    pages: u64,
    pages_failed: usize,
    seconds: f64,
    found: usize,
    valid: usize,
    guest_list: usize,
    empty_wave: usize,
    stored: u64,
    created: u64,
    restored: u64,
    store_failed: Vec<Value>,
    /// `null` when the crawl was not complete (nothing is cleaned on partial evidence).
    cleaned: Value,
    failures: Vec<Value>,
    /// Links found that pointed outside the site, not followed.
    refused_links: u64,
}

/// What storing one site's events did.
#[derive(Debug, Default)]
struct Stored {
    stored: u64,
    created: u64,
    restored: u64,
    failed: Vec<Value>,
    /// Slugs of the events whose page is new or changed.
    changed: Vec<String>,
    /// Events with images, by their row id, for the image pipeline.
    to_publish: Vec<(Uuid, Vec<SourceImage>)>,
}

impl Scraping {
    pub async fn run_once(&self, cx: &RunContext) -> Result<Summary, JobError> {
        let now = self.clock.now();
        let (crawls, blocked_requests) = self.crawl_sites(now, &cx.cancel).await?;
        let places = match &self.settings.places {
            Some((base, key)) => Some(venues::GooglePlaces::new(base, key.clone())?),
            None => None,
        };
        let mut venues = venues::Venues::new(places, now);
        let mut details = Details {
            blocked_requests,
            ..Details::default()
        };
        let mut summary = Summary::default();
        let (mut failed_sites, mut cut_short) = (Vec::new(), Vec::new());
        for crawled in &crawls {
            let site = self
                .store_site(crawled, &mut venues, &mut details, now, &cx.cancel)
                .await?;
            if crawled.status == Status::Failed {
                let reason = crawled.reason.as_deref().unwrap_or("failed");
                failed_sites.push(format!("{}: {reason}", crawled.platform));
            }
            if crawled.browser_lost {
                cut_short.push(format!(
                    "{} ({} of {} events stored)",
                    crawled.platform, site.stored, site.found
                ));
            }
            summary.processed += site.found as u64;
            summary.succeeded += site.stored;
            summary.failed += (site.pages_failed + site.store_failed.len()) as u64;
            cx.progress
                .set(summary.processed, summary.succeeded, summary.failed);
            details.sites.insert(crawled.platform, site);
        }
        if !cx.cancel.is_cancelled() {
            details.past_cleaned = cleanup::past(&self.pool, now).await?;
        }
        if let Some(settings) = &self.settings.indexnow
            && !details.changed_pages.is_empty()
        {
            let pinged = indexnow::IndexNow::new(settings.clone())?
                .ping(&details.changed_pages)
                .await;
            (details.indexnow_pinged, details.indexnow_failed) = (pinged.urls, pinged.failed);
        }
        details.images_memory_peak_mib = self.pipeline.memory_peak_mib();
        details.venues_created = venues.created;
        details.venues_from_google = venues.from_google;
        details.venues_refreshed = venues.refreshed;
        details.browser_lost = !cut_short.is_empty();
        summary.details = match serde_json::to_value(&details) {
            Ok(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        verdict(summary, &cut_short, &failed_sites)
    }

    /// Crawls every selected site at once with one browser, closed before returning:
    /// Chromium is the bulk of the memory and nothing after the crawl needs it. Also
    /// says how many requests the pages made outside their sites.
    async fn crawl_sites(
        &self,
        now: DateTime<Utc>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<(Vec<Crawled>, u64)> {
        let browser = browser::Browser::launch(&self.settings.browser).await?;
        let tabs = Arc::new(Semaphore::new(self.settings.concurrency));
        let sites = self.sites(now);
        let platforms: Vec<&str> = sites.iter().map(|s| s.platform()).collect();
        let (_bars, site_bars) = progress_bars(&platforms);
        let crawls = join_all(sites.iter().zip(&site_bars).map(|(site, bar)| {
            crawl::crawl(
                site.as_ref(),
                &browser,
                tabs.clone(),
                &self.settings.crawl,
                cancel,
                bar,
            )
        }))
        .await;
        let blocked = browser.blocked_requests();
        browser.shutdown().await;
        Ok((crawls, blocked))
    }

    /// Stores one site's events, publishes their images, and cleans up after a complete
    /// crawl.
    async fn store_site(
        &self,
        crawled: &Crawled,
        venues: &mut venues::Venues,
        details: &mut Details,
        now: DateTime<Utc>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<SiteReport> {
        let mut seen_ids = HashSet::new();
        let events: Vec<&ScrapedEvent> = crawled
            .events
            .iter()
            .filter(|e| seen_ids.insert(e.external_id.clone()))
            .collect();
        let mut stored = self.store_events(&events, venues, now, cancel).await;
        details.changed_pages.append(&mut stored.changed);
        let (published, failed) = self.publish_images(stored.to_publish).await;
        details.images_published += published;
        details.images_failed += failed;
        let cleaned = if crawled.status == Status::Complete && !cancel.is_cancelled() {
            self.clean_site(crawled.platform, &events, now).await?
        } else {
            Value::Null
        };
        let count = |class| events.iter().filter(|e| e.class() == class).count();
        Ok(SiteReport {
            status: crawled.status.as_str(),
            reason: crawled.reason.clone(),
            pages: crawled.pages,
            pages_failed: crawled.failed_pages.len(),
            seconds: crawled.duration.as_millis() as f64 / 1000.0,
            found: events.len(),
            valid: count(Class::Valid),
            guest_list: count(Class::GuestList),
            empty_wave: count(Class::EmptyWave),
            stored: stored.stored,
            created: stored.created,
            restored: stored.restored,
            store_failed: stored.failed,
            cleaned,
            failures: crawled
                .failed_pages
                .iter()
                .map(|(url, e)| json!({"url": url, "error": e}))
                .collect(),
            refused_links: crawled.refused_links,
        })
    }

    /// Upserts each valid event with its venue, one transaction each; a failure loses
    /// that event only.
    async fn store_events(
        &self,
        events: &[&ScrapedEvent],
        venues: &mut venues::Venues,
        now: DateTime<Utc>,
        cancel: &CancellationToken,
    ) -> Stored {
        let mut out = Stored::default();
        for event in events.iter().filter(|e| e.class() == Class::Valid) {
            if cancel.is_cancelled() {
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
                    out.stored += 1;
                    out.created += u64::from(done.created);
                    out.restored += u64::from(done.restored);
                    // A past event's page is not worth a search engine's visit.
                    if done.changed && event.end > now {
                        out.changed.push(done.slug.clone());
                    }
                    if done.restored {
                        tracing::info!(external_id = %event.external_id, "event restored");
                    }
                    if !event.images.is_empty() {
                        out.to_publish.push((done.id, event.images.clone()));
                    }
                }
                Err(e) => {
                    tracing::warn!(external_id = %event.external_id, error = %e, "event not stored");
                    out.failed
                        .push(json!({"external_id": event.external_id, "error": e.to_string()}));
                }
            }
        }
        out
    }

    /// Publishes the events' images; returns (published, failed).
    async fn publish_images(&self, to_publish: Vec<(Uuid, Vec<SourceImage>)>) -> (u64, u64) {
        let (pipeline, pool) = (&self.pipeline, &self.pool);
        let reports: Vec<_> = stream::iter(to_publish)
            .map(|(id, images)| async move { pipeline.publish_and_record(pool, id, &images).await })
            // Events beyond this only wait on the pipeline's own bound.
            .buffer_unordered(self.settings.images.concurrency)
            .collect()
            .await;
        let (mut published, mut failed) = (0, 0);
        for report in reports {
            match report {
                Ok(r) => {
                    published += r.published.len() as u64;
                    failed += r.failures.iter().filter(|f| f.fatal).count() as u64;
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(error = %e, "event images not recorded");
                }
            }
        }
        (published, failed)
    }

    /// After a complete crawl: the platform's guest lists, and its ended events the crawl
    /// no longer saw (unless too few were seen to trust the listing).
    async fn clean_site(
        &self,
        platform: &str,
        events: &[&ScrapedEvent],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Value> {
        let ids = |guest: bool| -> Vec<String> {
            events
                .iter()
                .filter(|e| (e.class() == Class::GuestList) == guest)
                .map(|e| e.external_id.clone())
                .collect()
        };
        let guest_removed = cleanup::guest_lists(&self.pool, platform, &ids(true), now).await?;
        let stale = match cleanup::stale(
            &self.pool,
            platform,
            &ids(false),
            self.settings.cleanup_min_ratio,
            now,
        )
        .await?
        {
            cleanup::Stale::Removed(n) => json!(n),
            cleanup::Stale::Skipped(why) => json!({"skipped": why}),
        };
        Ok(json!({"guest_list": guest_removed, "stale": stale}))
    }
}

/// One bar per site, drawn only when stderr is a terminal (the progress lines in the
/// log say the same otherwise). The first value must live as long as the bars.
fn progress_bars(platforms: &[&str]) -> (indicatif::MultiProgress, Vec<indicatif::ProgressBar>) {
    let bars = indicatif::MultiProgress::with_draw_target(
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    let style =
        indicatif::ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} pages  {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let site_bars = platforms
        .iter()
        .map(|platform| {
            let bar = bars.add(indicatif::ProgressBar::new(1).with_style(style.clone()));
            bar.set_prefix(platform.to_string());
            bar
        })
        .collect();
    (bars, site_bars)
}

/// A crawl cut short by a dead browser is a failure even where some events were read
/// (the listing is incomplete, and someone should know the browser died), and so is a
/// site that yielded nothing.
fn verdict(
    summary: Summary,
    cut_short: &[String],
    failed_sites: &[String],
) -> Result<Summary, JobError> {
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
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(JobError {
            summary,
            error: anyhow::anyhow!("{}", failures.join("; ")),
        })
    }
}
