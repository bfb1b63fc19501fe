//! The three ticket sites, each a [`Site`](super::crawl::Site): where its listing
//! starts, how a page is read, what an event of it looks like.
//!
//! A page is read by one script evaluated in the page that returns the raw strings
//! the site shows (one round trip per page); all interpretation (prices, dates,
//! descriptions) happens in Rust, in `text`. Every base URL is configurable so the
//! fixture sites in tests/fixtures/sites can stand in for the real ones.

pub(super) mod entraste;
pub(super) mod redtickets;
pub(super) mod tickantel;

use chrono::{DateTime, Utc};

use super::browser::PageError;
use super::crawl::Site;
use crate::egress::Guard;

/// One site the job can crawl. Adding a site is one entry here and its module.
#[derive(Debug)]
pub struct SiteEntry {
    /// Its name in `SCRAPER_PLATFORMS` and in `events.platform`.
    pub platform: &'static str,
    /// The variable that points the crawl elsewhere (a mirror, the tests' fixtures).
    pub url_variable: &'static str,
    pub default_url: &'static str,
    /// The hosts the real site serves its pages and their scripts from (each with its
    /// subdomains), reached over https only. A page's request anywhere else is blocked
    /// in the browser and counted (`blocked_requests` in the run's summary): a site that
    /// starts needing another host shows there first, and the host is added here.
    pub hosts: &'static [&'static str],
    pub build: fn(SiteContext) -> Box<dyn Site>,
}

/// Every site, in the order they are crawled and reported.
pub(super) const SITES: &[SiteEntry] = &[
    SiteEntry {
        platform: "entraste",
        url_variable: "SCRAPER_ENTRASTE_URL",
        default_url: "https://entraste.com",
        hosts: &["entraste.com"],
        build: |cx| Box::new(entraste::Entraste { cx }),
    },
    SiteEntry {
        platform: "redtickets",
        url_variable: "SCRAPER_REDTICKETS_URL",
        default_url: "https://redtickets.uy",
        hosts: &["redtickets.uy"],
        build: |cx| Box::new(redtickets::RedTickets { cx }),
    },
    SiteEntry {
        platform: "tickantel",
        url_variable: "SCRAPER_TICKANTEL_URL",
        default_url: "https://tickantel.com.uy",
        hosts: &["tickantel.com.uy"],
        build: |cx| Box::new(tickantel::Tickantel { cx }),
    },
];

/// What every site scraper knows besides its own rules.
#[derive(Debug, Clone)]
pub struct SiteContext {
    /// The site's root, without a trailing slash.
    pub base: String,
    /// The instant the crawl counts as happening at (dates without a year need one).
    pub now: DateTime<Utc>,
    /// Where its pages may go: the base URL's origin exactly, or https to its hosts.
    pub guard: Guard,
}

/// A page that lacks something required: that page yields nothing.
pub(super) fn missing(what: &str) -> PageError {
    PageError::Extraction(format!("the page has no {what}"))
}

/// The path of `url` (absolute), for ids taken from URLs.
pub(super) fn path_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default()
}

/// `Some(text)` unless it is empty after trimming.
pub(super) fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}
