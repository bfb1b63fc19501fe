//! Entraste (entraste.com): a home page of event cards, one page per event.
//!
//! Waves come from `.ticket` elements with a `data-ticket` JSON (its `etid` is the
//! wave id); prices may be in pesos or dollars; positions come from the inline
//! `initMap()` script; every Entraste event releases its QR codes six hours before.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use super::{SiteContext, missing, non_empty, path_of};
use crate::egress::Guard;
use crate::jobs::scraping::browser::{PageError, Tab};
use crate::jobs::scraping::crawl::{Found, Request, Site};
use crate::jobs::scraping::images::{ImageKind, SourceImage};
use crate::jobs::scraping::model::{ScrapedEvent, Wave, position};
use crate::jobs::scraping::text;

pub(crate) struct Entraste {
    pub cx: SiteContext,
}

const LIST: &str = "list";
const DETAIL: &str = "detail";

const READ_LIST: &str = r#"() => [...document.querySelectorAll('a.event-card')].map(a => a.href)"#;

const READ_DETAIL: &str = r#"() => {
  const q = s => document.querySelector(s);
  const text = el => el ? el.textContent.trim() : null;
  const without_small = el => {
    if (!el) return null;
    const copy = el.cloneNode(true);
    copy.querySelectorAll('small').forEach(s => s.remove());
    return copy.textContent.trim();
  };
  const src = s => { const img = q(s); return img && img.getAttribute('src') ? img.src : null; };
  const map = [...document.scripts].map(s => s.textContent).find(t => t.includes('function initMap()')) || '';
  const num = name => { const m = map.match(new RegExp('(?:const|let|var)\\s+' + name + '\\s*=\\s*(-?[\\d.]+)')); return m ? m[1] : null; };
  const description = q('#event-description');
  return {
    title: without_small(q('.event-info-title')),
    description: description ? description.innerHTML : null,
    venue: text(q('.location-section h3')),
    address: text(q('.location-section p')),
    date: text(q('.event-dates p')),
    lat: num('lat'),
    lng: num('lng'),
    imagebox: src('img.hero-imagebox'),
    flyer_image: src('img.event-flyer-image'),
    url: location.href,
    tickets: [...document.querySelectorAll('.ticket')].map(t => ({
      data: t.getAttribute('data-ticket'),
      name: without_small(t.querySelector('.ticket-description .title')),
      text: text(t.querySelector('.ticket-description .text')),
      price: text(t.querySelector('.ticket-price .price')),
      currency: text(t.querySelector('.ticket-price small')),
      sold_out: t.classList.contains('tickets-soldout'),
    })),
  };
}"#;

#[derive(Deserialize)]
struct RawEvent {
    title: Option<String>,
    description: Option<String>,
    venue: Option<String>,
    address: Option<String>,
    date: Option<String>,
    lat: Option<String>,
    lng: Option<String>,
    imagebox: Option<String>,
    flyer_image: Option<String>,
    url: String,
    tickets: Vec<RawTicket>,
}

#[derive(Deserialize)]
struct RawTicket {
    data: Option<String>,
    name: Option<String>,
    text: Option<String>,
    price: Option<String>,
    currency: Option<String>,
    sold_out: bool,
}

impl Site for Entraste {
    fn platform(&self) -> &'static str {
        "entraste"
    }

    fn start(&self) -> Vec<Request> {
        vec![Request::list(format!("{}/", self.cx.base), LIST)]
    }

    fn budget(&self) -> Duration {
        Duration::from_secs(5 * 60)
    }

    fn guard(&self) -> &Guard {
        &self.cx.guard
    }

    fn handle<'a>(
        &'a self,
        tab: &'a Tab,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<Found, PageError>> {
        Box::pin(async move {
            if request.label == LIST {
                if !tab
                    .wait_for("a.event-card", Duration::from_secs(15))
                    .await?
                {
                    return Err(missing("event cards (a.event-card)"));
                }
                let links: Vec<String> = tab.eval(READ_LIST).await?;
                // Links outside the site are dropped, and counted, by the crawl's guard.
                let follow = links
                    .into_iter()
                    .map(|url| Request::detail(url, DETAIL, Value::Null))
                    .collect();
                return Ok(Found {
                    events: Vec::new(),
                    follow,
                });
            }
            let raw: RawEvent = tab.eval(READ_DETAIL).await?;
            Ok(Found {
                events: vec![self.event(raw)?],
                follow: Vec::new(),
            })
        })
    }
}

impl Entraste {
    fn event(&self, raw: RawEvent) -> Result<ScrapedEvent, PageError> {
        let name = non_empty(raw.title).ok_or_else(|| missing("title (.event-info-title)"))?;
        let date = raw.date.unwrap_or_default();
        let (start, end) = text::entraste_dates(&date, self.cx.now)
            .ok_or_else(|| PageError::Extraction(format!("unreadable date `{date}`")))?;
        // Read from the page's own location (in run-job's isolated world), and stored
        // as the event's link: it must be the site's.
        if let Err(refused) = self.cx.guard.check(&raw.url) {
            return Err(PageError::Refused(format!("the page's address: {refused}")));
        }
        let external_id = path_of(&raw.url)
            .split('/')
            .rfind(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| missing("event slug in its URL"))?;
        let (lat, lng) = position(
            raw.lat.and_then(|v| v.parse().ok()),
            raw.lng.and_then(|v| v.parse().ok()),
        );
        // The site's names are swapped: the "imagebox" is the flyer.
        let mut images = Vec::new();
        if let Some(url) = raw.imagebox.clone().or_else(|| raw.flyer_image.clone()) {
            images.push(SourceImage {
                kind: ImageKind::Flyer,
                url,
            });
        }
        if let Some(url) = raw.flyer_image {
            images.push(SourceImage {
                kind: ImageKind::Hero,
                url,
            });
        }
        let waves = raw.tickets.into_iter().filter_map(wave).collect();
        Ok(ScrapedEvent {
            external_id,
            platform: "entraste",
            name,
            description: raw.description.as_deref().and_then(text::html_to_text),
            start,
            end,
            venue_name: non_empty(raw.venue),
            venue_address: raw.address.unwrap_or_default(),
            lat,
            lng,
            external_url: raw.url,
            images,
            waves,
            qr_availability_timing: Some("6h"),
        })
    }
}

/// A ticket as a wave; tickets without `data-ticket` or without a price are not for sale.
fn wave(ticket: RawTicket) -> Option<Wave> {
    let data: Value = serde_json::from_str(ticket.data.as_deref()?).ok()?;
    let external_id = match data.get("etid")? {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let face_value = text::price(ticket.price.as_deref()?)?;
    let currency = match ticket.currency.as_deref().map(str::trim) {
        Some("USD" | "US$" | "U$S") => "USD",
        _ => "UYU",
    };
    Some(Wave {
        external_id,
        name: non_empty(ticket.name)?,
        description: non_empty(ticket.text),
        face_value,
        currency,
        sold_out: ticket.sold_out,
        available: !ticket.sold_out,
    })
}
