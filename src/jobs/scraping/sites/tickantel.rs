//! Tickantel (tickantel.com.uy), category 17: one listing grown by its "Cargar más"
//! button, event pages with a carousel of functions (dates), and virtual-queue pages
//! (`alta_demanda`) in front of the busiest events.
//!
//! An event with several functions yields one event per function, each read from the
//! function's own page (`<id>-<function>`); with one function or none, the event page
//! itself is read. A queue page is passed through its "Continuar" button when that
//! leads to the event; otherwise a limited event without waves is kept, dated from the
//! queue page (read before leaving it).

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{SiteContext, missing, non_empty, path_of};
use crate::egress::Guard;
use crate::jobs::scraping::browser::{PageError, Tab, js_string};
use crate::jobs::scraping::crawl::{Found, Request, Site};
use crate::jobs::scraping::images::{ImageKind, SourceImage};
use crate::jobs::scraping::model::{ScrapedEvent, Wave, position};
use crate::jobs::scraping::text;

pub(crate) struct Tickantel {
    pub cx: SiteContext,
}

const LIST: &str = "list";
const DETAIL: &str = "detail";
const FUNCTION: &str = "function";
/// "Cargar más" clicks before giving up on the end of the listing.
const MAX_LOAD_MORE: usize = 50;

const COUNT_ITEMS: &str = "() => document.querySelectorAll('.col-lg-4 .item').length";
const CLICK_LOAD_MORE: &str = "() => { const a = document.querySelector('a.cargar-link'); if (!a) return false; a.click(); return true; }";
const READ_LIST: &str = r#"() => [...document.querySelectorAll('.col-lg-4 .item a[href*="espectaculo"], .col-lg-4 .item a[href*="alta_demanda"]')].map(a => a.href)"#;

const READ_SHARED: &str = r#"() => {
  let venue = null;
  for (const ul of document.querySelectorAll('.espectaculo__info ul.list-inline')) {
    const strong = ul.querySelector('strong');
    const span = ul.querySelector('li.list-inline-item span');
    if (strong && strong.textContent.trim() === 'Lugar' && span && span.textContent.trim()) { venue = span.textContent.trim(); break; }
  }
  const h1 = document.querySelector('.espectaculo__title h1');
  const info = document.querySelector('#infoModal .modal-body');
  const map = document.querySelector('#lugarModal iframe[src*="openstreetmap"]');
  const image = document.querySelector('.col-md-4 img.img-responsive');
  return {
    name: h1 ? h1.textContent.trim() : null,
    description: info ? info.innerHTML : null,
    venue,
    map: map ? map.getAttribute('src') : null,
    image: image && image.getAttribute('src') ? image.src : null,
  };
}"#;

const READ_FUNCTIONS: &str = r#"() => [...document.querySelectorAll('#calendar-select .item a')].map(a => a.getAttribute('href') || '')"#;

const READ_DATE: &str = r#"() => ({
  heading: (document.querySelector('.filter-content h3') || {}).textContent || null,
  json_ld: [...document.querySelectorAll('script[type="application/ld+json"]')].map(s => s.textContent),
})"#;

const READ_QUEUE_DATE: &str = r#"() => ({
  numeric: (document.querySelector('.espectaculo__info li strong + span span:last-child') || {}).textContent || null,
  long: (document.querySelector('.espectaculo__date span:last-child') || {}).textContent || null,
})"#;

const READ_WAVES: &str = r#"() => [...document.querySelectorAll('.lista-visibilidad.auto-lista-visibilidad')].map(el => {
  const text = s => { const e = el.querySelector(s); return e ? e.textContent.trim() : ''; };
  const buy = el.querySelector('a[href*="idVisibilidad"]');
  return { name: text('.auto-nombre-VisibilidadSector'), price: text('.auto-col-costo'), availability: text('.auto-disponibilidad'),
           disabled: el.classList.contains('disabled'), buy: buy ? buy.href : null };
})"#;

/// What an event's page says about all its functions.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shared {
    name: Option<String>,
    description: Option<String>,
    venue: Option<String>,
    map: Option<String>,
    image: Option<String>,
}

#[derive(Deserialize)]
struct RawDate {
    heading: Option<String>,
    json_ld: Vec<String>,
}

#[derive(Deserialize)]
struct RawQueueDate {
    numeric: Option<String>,
    long: Option<String>,
}

#[derive(Deserialize)]
struct RawWave {
    name: String,
    price: String,
    availability: String,
    disabled: bool,
    buy: Option<String>,
}

impl Site for Tickantel {
    fn platform(&self) -> &'static str {
        "tickantel"
    }

    fn start(&self) -> Vec<Request> {
        vec![Request::list(
            format!("{}/inicio/buscar_grupo?2&cat_id=17", self.cx.base),
            LIST,
        )]
    }

    fn budget(&self) -> Duration {
        Duration::from_secs(10 * 60)
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
            match request.label {
                LIST => self.list(tab).await,
                FUNCTION => self.function(tab, request).await,
                _ => self.detail(tab, request).await,
            }
        })
    }
}

fn event_id(url: &str) -> Option<String> {
    let path = path_of(url);
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    segments
        .find(|s| *s == "espectaculo" || *s == "alta_demanda")
        .and(segments.next())
        .filter(|id| id.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

/// The event's URL without the function part and without Wicket's `?NN` suffix.
fn canonical(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return url.to_string();
    };
    if parsed
        .query()
        .is_some_and(|q| q.chars().all(|c| c.is_ascii_digit()))
    {
        parsed.set_query(None);
    }
    parsed.set_fragment(None);
    let path = parsed.path().to_string();
    if let Some(at) = path.find("/idFuncionSeleccionada/") {
        parsed.set_path(&path[..at + 1]);
    }
    parsed.to_string()
}

impl Tickantel {
    async fn list(&self, tab: &Tab) -> Result<Found, PageError> {
        if !tab
            .wait_for(".col-lg-4 .item", Duration::from_secs(30))
            .await?
        {
            return Err(missing("results (.col-lg-4 .item)"));
        }
        for _ in 0..MAX_LOAD_MORE {
            let before: usize = tab.eval(COUNT_ITEMS).await?;
            if !tab.eval::<bool>(CLICK_LOAD_MORE).await? {
                break;
            }
            let grown = format!(
                "document.querySelectorAll('.col-lg-4 .item').length > {before} || !document.querySelector('a.cargar-link')"
            );
            if tab
                .wait_until(&grown, Duration::from_secs(10), "loading more results")
                .await
                .is_err()
            {
                tracing::warn!(
                    "tickantel: \"Cargar más\" stopped answering; reading what is loaded"
                );
                break;
            }
        }
        let links: Vec<String> = tab.eval(READ_LIST).await?;
        let follow = links
            .into_iter()
            .filter_map(|url| {
                let id = event_id(&url)?;
                Some(Request::detail(url, DETAIL, json!({ "id": id })))
            })
            .collect();
        Ok(Found {
            events: Vec::new(),
            follow,
        })
    }

    async fn detail(&self, tab: &Tab, request: &Request) -> Result<Found, PageError> {
        let id = request.data["id"].as_str().unwrap_or_default().to_string();
        if !tab
            .wait_for(".espectaculo__title h1", Duration::from_secs(15))
            .await?
        {
            return Err(missing("title (.espectaculo__title h1)"));
        }
        let mut shared: Shared = tab.eval(READ_SHARED).await?;
        let mut url = tab.url().await?;
        if url.contains("/alta_demanda/") {
            let queue_date = self.queue_date(tab.eval(READ_QUEUE_DATE).await?);
            let through = self.through_queue(tab, &url).await?;
            match through {
                Some(landed) => {
                    url = landed;
                    if !tab
                        .wait_for(".espectaculo__title h1", Duration::from_secs(10))
                        .await?
                    {
                        return Err(missing("title (.espectaculo__title h1) past the queue"));
                    }
                    shared = tab.eval(READ_SHARED).await?;
                }
                None => {
                    let start = queue_date.ok_or_else(|| missing("date on the queue page"))?;
                    let event =
                        self.event(&shared, id, &canonical(&request.url), start, Vec::new())?;
                    return Ok(Found {
                        events: vec![event],
                        follow: Vec::new(),
                    });
                }
            }
        }
        let functions = self.functions(tab).await?;
        if functions.len() > 1 {
            let suffix = reqwest::Url::parse(&url)
                .ok()
                .and_then(|u| {
                    u.query()
                        .filter(|q| q.chars().all(|c| c.is_ascii_digit()))
                        .map(|q| format!("?{q}"))
                })
                .unwrap_or_default();
            let base = canonical(&url);
            let base = base.trim_end_matches('/');
            let follow = functions
                .iter()
                .map(|function| {
                    Request::detail(
                        format!("{base}/idFuncionSeleccionada/{function}{suffix}"),
                        FUNCTION,
                        json!({ "id": id, "function": function, "shared": shared, "canonical": canonical(&url) }),
                    )
                })
                .collect();
            return Ok(Found {
                events: Vec::new(),
                follow,
            });
        }
        let start = self.function_date(tab).await?;
        let waves = self.waves(tab).await?;
        let external_id = match functions.first() {
            Some(function) => format!("{id}-{function}"),
            None => id,
        };
        let event = self.event(&shared, external_id, &canonical(&url), start, waves)?;
        Ok(Found {
            events: vec![event],
            follow: Vec::new(),
        })
    }

    async fn function(&self, tab: &Tab, request: &Request) -> Result<Found, PageError> {
        let data = &request.data;
        let shared: Shared = serde_json::from_value(data["shared"].clone()).map_err(|e| {
            PageError::Extraction(format!("function request without its event: {e}"))
        })?;
        let external_id = format!(
            "{}-{}",
            data["id"].as_str().unwrap_or_default(),
            data["function"].as_str().unwrap_or_default()
        );
        tab.wait_for(".filter-content h3", Duration::from_secs(15))
            .await?;
        let start = self.function_date(tab).await?;
        let waves = self.waves(tab).await?;
        let canonical = data["canonical"]
            .as_str()
            .unwrap_or(&request.url)
            .to_string();
        let event = self.event(&shared, external_id, &canonical, start, waves)?;
        Ok(Found {
            events: vec![event],
            follow: Vec::new(),
        })
    }

    /// Clicks "Continuar" on a queue page; the URL landed on if it is the event's page.
    async fn through_queue(&self, tab: &Tab, before: &str) -> Result<Option<String>, PageError> {
        let clicked: bool = tab
            .eval("() => { const b = document.querySelector('button[name=\"irAVqueue\"]'); if (!b) return false; b.click(); return true; }")
            .await?;
        if !clicked {
            return Ok(None);
        }
        let moved = format!("location.href !== {}", js_string(before));
        if tab
            .wait_until(&moved, Duration::from_secs(15), "leaving the queue page")
            .await
            .is_err()
        {
            return Ok(None);
        }
        tab.settle().await?;
        let landed = tab.url().await?;
        Ok(
            (landed.contains("/espectaculo/") && !landed.contains("/alta_demanda/"))
                .then_some(landed),
        )
    }

    async fn functions(&self, tab: &Tab) -> Result<Vec<String>, PageError> {
        if !tab
            .eval::<bool>("() => !!document.querySelector('#calendar-select')")
            .await?
        {
            return Ok(Vec::new());
        }
        tab.wait_for("#calendar-select .item a", Duration::from_secs(3))
            .await?;
        let hrefs: Vec<String> = tab.eval(READ_FUNCTIONS).await?;
        let mut ids: Vec<String> = Vec::new();
        for href in hrefs {
            let digits: String = href
                .trim_end_matches('/')
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect();
            let id: String = digits.chars().rev().collect();
            if !id.is_empty() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// "Función: Viernes 4 de diciembre - 21:00 hs", else the JSON-LD event's start.
    async fn function_date(&self, tab: &Tab) -> Result<DateTime<Utc>, PageError> {
        let raw: RawDate = tab.eval(READ_DATE).await?;
        let heading = raw.heading.unwrap_or_default();
        let from_heading = text::day_months(&heading)
            .first()
            .and_then(|dm| text::upcoming(self.cx.now, *dm))
            .zip(text::times(&heading).first().copied())
            .map(|(day, time)| text::at(day, time));
        if let Some(start) = from_heading {
            return Ok(start);
        }
        raw.json_ld
            .iter()
            .filter_map(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .filter(|v| v["@type"] == "Event")
            .find_map(|v| {
                v["startDate"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            })
            .map(|d| d.with_timezone(&Utc))
            .ok_or_else(|| {
                PageError::Extraction(format!("unreadable function date `{}`", heading.trim()))
            })
    }

    /// "DD/MM/YYYY", else "D de <mes>", at 21:00.
    fn queue_date(&self, raw: RawQueueDate) -> Option<DateTime<Utc>> {
        let nine = NaiveTime::from_hms_opt(21, 0, 0)?;
        if let Some(numeric) = raw.numeric {
            let parsed = chrono::NaiveDate::parse_from_str(numeric.trim(), "%d/%m/%Y").ok();
            if let Some(day) = parsed {
                return Some(text::at(day, nine));
            }
        }
        let long = raw.long?;
        let day = text::upcoming(self.cx.now, *text::day_months(&long).first()?)?;
        Some(text::at(day, nine))
    }

    async fn waves(&self, tab: &Tab) -> Result<Vec<Wave>, PageError> {
        let raw: Vec<RawWave> = tab.eval(READ_WAVES).await?;
        Ok(raw
            .into_iter()
            .filter(|w| !w.name.is_empty())
            .filter_map(|w| {
                let face_value = text::price(&w.price)?;
                let sold = w.disabled || w.availability.to_lowercase().contains("agotad");
                let visibility = w.buy.as_deref().and_then(|b| {
                    let id: String = b
                        .split("idVisibilidad=")
                        .nth(1)?
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    (!id.is_empty()).then_some(id)
                });
                let external_id =
                    visibility.unwrap_or_else(|| format!("{}-{}", w.name, face_value.normalize()));
                Some(Wave::pesos(external_id, &w.name, face_value, sold))
            })
            .collect())
    }

    fn event(
        &self,
        shared: &Shared,
        external_id: String,
        url: &str,
        start: DateTime<Utc>,
        waves: Vec<Wave>,
    ) -> Result<ScrapedEvent, PageError> {
        let name = non_empty(shared.name.clone()).ok_or_else(|| missing("title"))?;
        let (lat, lng) = shared.map.as_deref().map_or((None, None), osm_position);
        let venue = non_empty(shared.venue.clone());
        Ok(ScrapedEvent {
            external_id,
            platform: "tickantel",
            name,
            description: shared.description.as_deref().and_then(text::html_to_text),
            start,
            end: start + chrono::Duration::hours(4),
            venue_address: venue.clone().unwrap_or_else(|| "Uruguay".to_string()),
            venue_name: venue,
            lat,
            lng,
            external_url: url.to_string(),
            images: shared
                .image
                .iter()
                .map(|url| SourceImage {
                    kind: ImageKind::Hero,
                    url: url.clone(),
                })
                .collect(),
            waves,
            qr_availability_timing: None,
        })
    }
}

/// `marker=<lat>,<lng>` in an OpenStreetMap embed URL.
fn osm_position(src: &str) -> (Option<f64>, Option<f64>) {
    let Some(marker) = src
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("marker="))
    else {
        return (None, None);
    };
    let marker = marker.replace("%2C", ",").replace("%2c", ",");
    let mut parts = marker.split(',').map(|p| p.trim().parse::<f64>().ok());
    position(parts.next().flatten(), parts.next().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_urls_drop_the_function_and_wicket_suffix() {
        assert_eq!(
            canonical("http://h/inicio/espectaculo/1/espectaculo/x/idFuncionSeleccionada/2?3"),
            "http://h/inicio/espectaculo/1/espectaculo/x/"
        );
        assert_eq!(
            canonical("http://h/a/?2&cat_id=17"),
            "http://h/a/?2&cat_id=17"
        );
        assert_eq!(
            event_id("http://h/inicio/alta_demanda/40010004/x/"),
            Some("40010004".into())
        );
    }
}
