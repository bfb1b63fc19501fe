//! RedTickets (redtickets.uy), the "Fiestas" category: numbered listing pages, one page
//! per event rendered by script, waves in a select or a set of radio tiles.
//!
//! Dates carry no year: a date before today is next year's; an hour up to 05:00 is the
//! night of the listed date (stored as 23:59); "Todos los días de <mes>" yields today's
//! and tomorrow's occurrences within that month, each its own event.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{SiteContext, missing, non_empty, path_of};
use crate::egress::Guard;
use crate::jobs::scraping::browser::{PageError, Tab};
use crate::jobs::scraping::crawl::{Found, Request, Site};
use crate::jobs::scraping::images::{ImageKind, SourceImage};
use crate::jobs::scraping::model::{ScrapedEvent, Wave, position};
use crate::jobs::scraping::text;

pub(crate) struct RedTickets {
    pub cx: SiteContext,
}

const LIST: &str = "list";
const DETAIL: &str = "detail";
const CATEGORY: &str = "/categoria/9/Fiestas";

const READ_LIST: &str = r#"() => ({
  summary: (document.querySelector('.wPageSelectorActual') || {}).textContent || null,
  numbers: [...document.querySelectorAll('.wPageSelector a')].map(a => parseInt(a.textContent, 10)).filter(n => !isNaN(n)),
  links: [...document.querySelectorAll('article.card a[href^="/evento/"]')].map(a => a.href),
})"#;

const READ_DETAIL: &str = r#"() => {
  const q = s => document.querySelector(s);
  const text = s => { const el = q(s); return el ? el.textContent.trim() : null; };
  const map = q('iframe[src*="maps.google"], iframe[src*="google.com/maps"]');
  const image = q('img.EventImage');
  const description = q('.TableEventInfo .RowPadding p');
  const time = q('#comboTime option:not([value="0"])') || q('#radioButtonTime .id-radio-tile-label');
  return {
    title: text('#W0010TXTTITLE'),
    image: image && image.getAttribute('src') ? image.src : null,
    address: text('#W0010TXTADDRESS'),
    description: description ? description.innerHTML : null,
    min_age: text('#span_W0010vMINAGE'),
    map: map ? map.getAttribute('src') : null,
    date: text('#W0010TXTDATELONG'),
    time: time ? time.textContent.trim() : null,
    options: [...document.querySelectorAll('#comboTicket option')].map(o => [o.getAttribute('value') || '', o.textContent.trim()]),
    tiles: [...document.querySelectorAll('#radioButtonTicket .id-input-container')].map(el => ({
      value: (el.querySelector('input') || {}).value || '',
      labels: [...el.querySelectorAll('.id-radio-tile-label')].map(l => l.textContent.trim()),
    })),
  };
}"#;

#[derive(Deserialize)]
struct RawList {
    summary: Option<String>,
    numbers: Vec<u32>,
    links: Vec<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    title: Option<String>,
    image: Option<String>,
    address: Option<String>,
    description: Option<String>,
    min_age: Option<String>,
    map: Option<String>,
    date: Option<String>,
    time: Option<String>,
    options: Vec<(String, String)>,
    tiles: Vec<RawTile>,
}

#[derive(Deserialize)]
struct RawTile {
    value: String,
    labels: Vec<String>,
}

impl Site for RedTickets {
    fn platform(&self) -> &'static str {
        "redtickets"
    }

    fn start(&self) -> Vec<Request> {
        vec![Request::list(format!("{}{CATEGORY}/0", self.cx.base), LIST)]
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
                return self.list(tab, request).await;
            }
            // Rendered by script: wait for the title to exist (an empty title has no box,
            // so waiting for it to be visible would wait forever).
            if !tab
                .wait_for("#W0010TXTTITLE, .Title", Duration::from_secs(10))
                .await?
            {
                return Err(missing("title (#W0010TXTTITLE)"));
            }
            let raw: RawEvent = tab.eval(READ_DETAIL).await?;
            let id = request
                .data
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(Found {
                events: self.events(raw, id, &request.url)?,
                follow: Vec::new(),
            })
        })
    }
}

impl RedTickets {
    async fn list(&self, tab: &Tab, request: &Request) -> Result<Found, PageError> {
        let first_page = request.url.ends_with(&format!("{CATEGORY}/0"));
        if !tab
            .wait_for("article.card", Duration::from_secs(15))
            .await?
            && first_page
        {
            return Err(missing("event cards (article.card)"));
        }
        let raw: RawList = tab.eval(READ_LIST).await?;
        let mut follow = Vec::new();
        if first_page {
            // "Página 1 de N", else the highest page number linked (they count from 1).
            let pages = raw
                .summary
                .as_deref()
                .and_then(|s| s.split_whitespace().last()?.parse::<u32>().ok())
                .or_else(|| raw.numbers.iter().copied().max())
                .unwrap_or(1)
                .min(50);
            follow.extend(
                (1..pages).map(|n| Request::list(format!("{}{CATEGORY}/{n}", self.cx.base), LIST)),
            );
        }
        for url in raw.links {
            let segments: Vec<String> = path_of(&url)
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if let [evento, _, id] = segments.as_slice()
                && evento == "evento"
                && id.chars().all(|c| c.is_ascii_digit())
            {
                follow.push(Request::detail(url.clone(), DETAIL, json!({ "id": id })));
            }
        }
        Ok(Found {
            events: Vec::new(),
            follow,
        })
    }

    fn events(&self, raw: RawEvent, id: &str, url: &str) -> Result<Vec<ScrapedEvent>, PageError> {
        let Some(name) = non_empty(raw.title) else {
            return Err(missing("title (#W0010TXTTITLE is empty)"));
        };
        let date = raw.date.unwrap_or_default();
        let time = raw
            .time
            .as_deref()
            .and_then(|t| text::times(t).first().copied());
        let starts = self.dates(&date, time);
        if starts.is_empty() {
            return Err(PageError::Extraction(format!("unreadable date `{date}`")));
        }
        let description = {
            let parts: Vec<String> = [
                raw.description.as_deref().and_then(text::html_to_text),
                non_empty(raw.min_age),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!parts.is_empty()).then(|| parts.join("\n"))
        };
        let (lat, lng) = raw
            .map
            .as_deref()
            .map_or((None, None), google_maps_position);
        let address = raw.address.unwrap_or_default();
        let venue_name = non_empty(address.split(" - ").next().map(str::to_string));
        let waves = waves(&raw.options, &raw.tiles);
        let images: Vec<SourceImage> = raw
            .image
            .into_iter()
            .map(|url| SourceImage {
                kind: ImageKind::Hero,
                url,
            })
            .collect();
        Ok(starts
            .into_iter()
            .map(|(start, suffix)| ScrapedEvent {
                external_id: match suffix {
                    Some(day) => format!("{id}-{day}"),
                    None => id.to_string(),
                },
                platform: "redtickets",
                name: name.clone(),
                description: description.clone(),
                start,
                end: start + chrono::Duration::hours(7),
                venue_name: venue_name.clone(),
                venue_address: address.clone(),
                lat,
                lng,
                external_url: url.to_string(),
                images: images.clone(),
                waves: waves.clone(),
                qr_availability_timing: None,
            })
            .collect())
    }

    /// Start instants, with a date suffix for each occurrence of a multi-day event.
    fn dates(&self, date: &str, time: Option<NaiveTime>) -> Vec<(DateTime<Utc>, Option<String>)> {
        let now = self.cx.now;
        let lower = date.to_lowercase();
        if let Some(rest) = lower
            .split("todos los días de")
            .nth(1)
            .or_else(|| lower.split("todos los dias de").nth(1))
        {
            let Some(month) = rest.split_whitespace().next().and_then(text::month) else {
                return Vec::new();
            };
            let clock =
                time.unwrap_or_else(|| NaiveTime::from_hms_opt(23, 59, 0).unwrap_or_default());
            let today = text::today(now);
            return [today, today.succ_opt().unwrap_or(today)]
                .into_iter()
                .filter(|day| chrono::Datelike::month(day) == month)
                .map(|day| {
                    (
                        text::at(day, clock),
                        Some(day.format("%Y-%m-%d").to_string()),
                    )
                })
                .collect();
        }
        let Some(day_month) = text::day_months(date).first().copied() else {
            return Vec::new();
        };
        let Some(day) = text::upcoming(now, day_month) else {
            return Vec::new();
        };
        let default = NaiveTime::from_hms_opt(23, 0, 0).unwrap_or_default();
        let mut clock = text::times(date)
            .first()
            .copied()
            .or(time)
            .unwrap_or(default);
        if chrono::Timelike::hour(&clock) <= 5 {
            clock = NaiveTime::from_hms_opt(23, 59, 0).unwrap_or(default);
        }
        vec![(text::at(day, clock), None)]
    }
}

/// `q=<lat> , <lng>` in a Google Maps embed URL.
fn google_maps_position(src: &str) -> (Option<f64>, Option<f64>) {
    let Some(q) = src.split(['?', '&']).find_map(|p| p.strip_prefix("q=")) else {
        return (None, None);
    };
    let q = q.replace("%20", " ").replace("%2C", ",");
    let mut parts = q.split(',').map(|p| p.trim().parse::<f64>().ok());
    position(parts.next().flatten(), parts.next().flatten())
}

/// "agotad…" or exactly zero left means sold out ("10 disponibles" does not).
fn sold_out(text: &str) -> bool {
    let lower = text.to_lowercase();
    if lower.contains("agotad") {
        return true;
    }
    let words: Vec<&str> = lower.split_whitespace().collect();
    words
        .windows(2)
        .any(|w| w[1].starts_with("disponible") && w[0] == "0")
}

fn waves(options: &[(String, String)], tiles: &[RawTile]) -> Vec<Wave> {
    // The id is the option's or tile's value, or its position when the site left it out.
    let id = |value: &str, n: usize| {
        if value.is_empty() {
            format!("ticket-{n}")
        } else {
            value.to_string()
        }
    };
    let mut waves = Vec::new();
    for (value, label) in options {
        if value == "0" || label.to_lowercase().contains("elige") {
            continue;
        }
        // "Name ($ 1.190) extra"
        let Some((name, rest)) = label.split_once('(') else {
            continue;
        };
        let Some((price, extra)) = rest.split_once(')') else {
            continue;
        };
        if !price.contains('$') {
            continue;
        }
        let Some(face_value) = text::price(price) else {
            continue;
        };
        let wave = Wave::pesos(id(value, waves.len()), name, face_value, sold_out(extra));
        waves.push(wave);
    }
    if !waves.is_empty() {
        return waves;
    }
    for tile in tiles {
        let [name, price, rest @ ..] = tile.labels.as_slice() else {
            continue;
        };
        if tile.value == "0" || name.to_lowercase().contains("elige") {
            continue;
        }
        let Some(face_value) = text::price(price) else {
            continue;
        };
        let sold = sold_out(&rest.join(" "));
        let wave = Wave::pesos(id(&tile.value, waves.len()), name, face_value, sold);
        waves.push(wave);
    }
    waves
}
