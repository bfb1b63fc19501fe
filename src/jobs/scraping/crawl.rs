//! Crawling one site: a queue of pages, a bounded number open at once, politeness,
//! retries, a time budget, and an honest verdict.
//!
//! A site scraper ([`Site`]) says where to start and what one page yields: events and
//! more pages to visit. This module does the rest. Pages of all sites share one limit
//! on open tabs (`SCRAPER_MAX_CONCURRENCY`); visits to one site start at least
//! `SCRAPER_SAME_DOMAIN_DELAY_SECS` apart; a URL is visited once; a page that times out
//! is tried twice at most, a server error three times, a page that cannot be read once.
//!
//! The verdict decides whether cleanup may trust the crawl: `complete` only when every
//! list page was read, the queue emptied within the budget and the request cap was not
//! reached. A detail page that fails loses that event only, so it does not spoil the
//! verdict; it is counted and reported.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use indicatif::ProgressBar;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::browser::{Browser, PageError, Tab};
use super::model::ScrapedEvent;
use crate::egress::Guard;

/// A page to visit: its URL, what kind of page the site expects there, and anything
/// the page that found it wants to pass on.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub label: &'static str,
    pub data: Value,
    /// List pages decide completeness: losing one loses events we cannot see.
    pub list: bool,
    attempt: u32,
}

impl Request {
    pub fn list(url: String, label: &'static str) -> Request {
        Request {
            url,
            label,
            data: Value::Null,
            list: true,
            attempt: 0,
        }
    }

    pub fn detail(url: String, label: &'static str, data: Value) -> Request {
        Request {
            url,
            label,
            data,
            list: false,
            attempt: 0,
        }
    }
}

/// What one page yielded.
#[derive(Debug, Default)]
pub struct Found {
    pub events: Vec<ScrapedEvent>,
    pub follow: Vec<Request>,
}

/// One ticket site.
pub trait Site: Send + Sync {
    fn platform(&self) -> &'static str;
    fn start(&self) -> Vec<Request>;
    /// How long the whole crawl of this site may take.
    fn budget(&self) -> Duration;
    /// Where this site's pages, and every request they make, may go.
    fn guard(&self) -> &Guard;
    fn handle<'a>(
        &'a self,
        tab: &'a Tab,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<Found, PageError>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Complete,
    Partial,
    Failed,
}

impl Status {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Partial => "partial",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug)]
pub(super) struct Crawled {
    pub platform: &'static str,
    pub status: Status,
    pub reason: Option<String>,
    pub pages: u64,
    pub failed_pages: Vec<(String, String)>,
    pub events: Vec<ScrapedEvent>,
    pub duration: Duration,
    /// The browser died during this crawl: what was read is kept, the rest abandoned.
    pub browser_lost: bool,
    /// Links found that pointed outside the site, not followed.
    pub refused_links: u64,
}

#[derive(Debug, Clone)]
pub struct CrawlSettings {
    pub same_domain_delay: Duration,
    pub max_requests: usize,
    pub handler_timeout: Duration,
    /// Overrides every site's own budget when set.
    pub budget: Option<Duration>,
}

/// How many times a failure may be met before the page is given up.
fn attempts_allowed(error: &PageError) -> u32 {
    match error {
        PageError::Timeout(_) => 2,
        PageError::Status(s) if *s >= 500 => 3,
        PageError::Navigation(_) => 3,
        PageError::Status(_)
        | PageError::Extraction(_)
        | PageError::BrowserGone(_)
        | PageError::Certificate(_)
        | PageError::Refused(_) => 1,
    }
}

/// Crawls one site. `bar` shows pages done against pages known (a hidden bar off a
/// terminal, where the progress lines in the log say the same).
pub(super) async fn crawl(
    site: &dyn Site,
    browser: &Browser,
    tabs: Arc<Semaphore>,
    settings: &CrawlSettings,
    cancel: &CancellationToken,
    bar: &ProgressBar,
) -> Crawled {
    let started = Instant::now();
    let deadline = started + settings.budget.unwrap_or_else(|| site.budget());
    let mut state = State::new(site, settings.max_requests);
    let guard = site.guard().clone();
    let mut in_flight = FuturesUnordered::new();
    let mut next_start = Instant::now();
    let mut stop: Option<String> = None;
    let mut last_progress = Instant::now();
    loop {
        while stop.is_none() {
            let Some(request) = state.queue.pop_front() else {
                break;
            };
            let start_at = next_start;
            next_start = start_at.max(Instant::now()) + settings.same_domain_delay;
            let tabs = tabs.clone();
            let handler_timeout = settings.handler_timeout;
            in_flight.push(async move {
                sleep_until(start_at).await;
                let _permit = tabs.acquire_owned().await;
                let result = visit(site, browser, &request, handler_timeout).await;
                (request, result)
            });
        }
        if in_flight.is_empty() {
            break;
        }
        let next = tokio::select! {
            biased;
            // Every page queued or open needs the browser: stop them all now rather
            // than let each wait for its slot only to fail.
            () = browser.lost() => {
                stop = Some("the browser is gone".into());
                break;
            }
            next = in_flight.next() => next,
            () = cancel.cancelled() => {
                stop = Some("the run was cancelled".into());
                break;
            }
            () = sleep_until(deadline) => {
                stop = Some(format!("the site's time budget ran out after {} s", (deadline - started).as_secs()));
                break;
            }
        };
        let Some((request, result)) = next else {
            break;
        };
        state.pages += 1;
        match result {
            Ok(found) => state.found(found, &guard),
            Err(PageError::BrowserGone(why)) => {
                stop = Some(format!("the browser is gone: {why}"));
                break;
            }
            Err(error) => state.failed(request, error),
        }
        let waiting = state.queue.len() + in_flight.len();
        state.show(bar, waiting, &mut last_progress);
    }
    let browser_lost = !browser.alive();
    if browser_lost {
        state.salvage(&mut in_flight);
    }
    // Pages still waiting for a slot or a tab are dropped here, not left to fail one by one.
    drop(in_flight);
    state.finish(stop, browser_lost, started.elapsed(), bar)
}

/// A crawl's pages to visit and what its visited pages gave.
struct State {
    platform: &'static str,
    queue: VecDeque<Request>,
    seen: HashSet<String>,
    max_requests: usize,
    /// A page linked to more than `max_requests` distinct pages.
    truncated: bool,
    pages: u64,
    events: Vec<ScrapedEvent>,
    failed: Vec<(String, String)>,
    lost_list_page: Option<String>,
    /// Links to outside the site, not followed.
    refused_links: u64,
}

impl State {
    fn new(site: &dyn Site, max_requests: usize) -> State {
        let mut state = State {
            platform: site.platform(),
            queue: VecDeque::new(),
            seen: HashSet::new(),
            max_requests,
            truncated: false,
            pages: 0,
            events: Vec::new(),
            failed: Vec::new(),
            lost_list_page: None,
            refused_links: 0,
        };
        // The start pages are the crawl itself: never cut by the cap.
        for request in site.start() {
            if state.seen.insert(request.url.clone()) {
                state.queue.push_back(request);
            }
        }
        state
    }

    /// Queues a page not seen before, within `SCRAPER_MAX_REQUESTS_PER_CRAWL`.
    fn enqueue(&mut self, request: Request) {
        if self.seen.len() >= self.max_requests {
            self.truncated = true;
        } else if self.seen.insert(request.url.clone()) {
            self.queue.push_back(request);
        }
    }

    /// Keeps a page's events and queues its links, except those outside the site
    /// (checked on the parsed URL: a user name before the host, another port, a `<base
    /// href>` elsewhere all end up here), which are counted and dropped.
    fn found(&mut self, found: Found, guard: &Guard) {
        self.events
            .extend(found.events.into_iter().map(ScrapedEvent::bounded));
        for follow in found.follow {
            match guard.check(&follow.url) {
                Ok(_) => self.enqueue(follow),
                Err(refused) => {
                    self.refused_links += 1;
                    tracing::debug!(platform = self.platform, %refused, "link not followed");
                }
            }
        }
    }

    /// Retries the page if its failure allows, or records it (a lost list page makes the
    /// crawl incomplete).
    fn failed(&mut self, mut request: Request, error: PageError) {
        let platform = self.platform;
        request.attempt += 1;
        if request.attempt < attempts_allowed(&error) {
            tracing::debug!(platform, url = %request.url, %error, attempt = request.attempt, "page failed, retrying");
            self.queue.push_back(request);
            return;
        }
        tracing::warn!(platform, url = %request.url, %error, "page failed");
        if request.list {
            self.lost_list_page = Some(format!("list page {} failed: {error}", request.url));
        }
        self.failed.push((request.url, error.to_string()));
    }

    /// After the browser died: keeps the pages read just before but not yet collected
    /// (the rest fail at once now, or are still waiting) and says what is abandoned.
    fn salvage<F>(&mut self, in_flight: &mut FuturesUnordered<F>)
    where
        F: std::future::Future<Output = (Request, Result<Found, PageError>)>,
    {
        while let Some(Some((_, result))) = in_flight.next().now_or_never() {
            if let Ok(found) = result {
                self.pages += 1;
                self.events
                    .extend(found.events.into_iter().map(ScrapedEvent::bounded));
            }
        }
        tracing::error!(
            platform = self.platform,
            pages_read = self.pages,
            pages_abandoned = self.queue.len() + in_flight.len(),
            events = self.events.len(),
            "the browser died mid-crawl: what was read will be stored, the rest is abandoned"
        );
    }

    /// The bar, and a progress line every 5 s and when the queue runs dry.
    fn show(&self, bar: &ProgressBar, waiting: usize, last: &mut Instant) {
        bar.set_length(self.pages + waiting as u64);
        bar.set_position(self.pages);
        bar.set_message(format!(
            "{} events, {} failed",
            self.events.len(),
            self.failed.len()
        ));
        if last.elapsed() >= Duration::from_secs(5) || waiting == 0 {
            tracing::info!(
                platform = self.platform,
                pages_done = self.pages,
                queued = waiting,
                events = self.events.len(),
                "crawl progress"
            );
            *last = Instant::now();
        }
    }

    /// The verdict: complete only when nothing stopped the crawl, no list page was lost
    /// and the request cap was not reached.
    fn finish(
        self,
        stop: Option<String>,
        browser_lost: bool,
        duration: Duration,
        bar: &ProgressBar,
    ) -> Crawled {
        let max_requests = self.max_requests;
        let reason = stop.or(self.lost_list_page).or_else(|| {
            self.truncated
                .then(|| format!("stopped at SCRAPER_MAX_REQUESTS_PER_CRAWL ({max_requests})"))
        });
        let status = match (&reason, self.events.is_empty()) {
            (None, _) => Status::Complete,
            (Some(_), false) => Status::Partial,
            (Some(_), true) => Status::Failed,
        };
        bar.finish_with_message(format!(
            "{} events, {} failed: {}",
            self.events.len(),
            self.failed.len(),
            status.as_str()
        ));
        Crawled {
            platform: self.platform,
            status,
            reason,
            pages: self.pages,
            failed_pages: self.failed,
            events: self.events,
            duration,
            browser_lost,
            refused_links: self.refused_links,
        }
    }
}

async fn visit(
    site: &dyn Site,
    browser: &Browser,
    request: &Request,
    handler_timeout: Duration,
) -> Result<Found, PageError> {
    let tab = browser.open(&request.url, site.guard()).await?;
    let result = tokio::time::timeout(handler_timeout, site.handle(&tab, request))
        .await
        .unwrap_or(Err(PageError::Timeout("reading the page")));
    browser.close(tab).await;
    result
}
