//! What a site scraper produces: events with their waves and image URLs, and how an
//! event is classified before anything is stored.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::images::SourceImage;

#[derive(Debug, Clone, PartialEq)]
pub struct Wave {
    pub external_id: String,
    pub name: String,
    pub description: Option<String>,
    pub face_value: Decimal,
    /// `UYU` or `USD`.
    pub currency: &'static str,
    pub sold_out: bool,
    pub available: bool,
}

impl Wave {
    /// A wave in pesos without a description, available unless sold out (how
    /// RedTickets and Tickantel list them).
    pub fn pesos(external_id: String, name: &str, face_value: Decimal, sold_out: bool) -> Wave {
        Wave {
            external_id,
            name: name.trim().to_string(),
            description: None,
            face_value,
            currency: "UYU",
            sold_out,
            available: !sold_out,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScrapedEvent {
    pub external_id: String,
    pub platform: &'static str,
    pub name: String,
    pub description: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub venue_name: Option<String>,
    pub venue_address: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub external_url: String,
    pub images: Vec<SourceImage>,
    pub waves: Vec<Wave>,
    pub qr_availability_timing: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// At least one wave with a face value: stored.
    Valid,
    /// Waves, all free: a guest list, not for resale; removed if stored earlier.
    GuestList,
    /// No waves (sold out, queue page): not stored, but not stale either.
    EmptyWave,
}

/// Longest text kept of what a page shows, in characters. The marketplace shows
/// descriptions as plain text; a few thousand characters is a long one.
pub(super) const MAX_DESCRIPTION: usize = 10_000;
/// Longest name, venue, address or wave name kept.
pub(super) const MAX_NAME: usize = 300;
/// Longest URL or id kept.
pub(super) const MAX_URL: usize = 2_000;
/// Most waves and images kept of one event.
pub(super) const MAX_WAVES: usize = 100;
pub(super) const MAX_IMAGES: usize = 10;

/// `text` without control characters (a NUL makes PostgreSQL refuse the row; the rest
/// have no place in plain text) except line breaks and tabs, cut to `max` characters.
/// Everything else stays as the site showed it: `<` is text, not markup.
pub(super) fn plain(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .take(max)
        .collect()
}

impl ScrapedEvent {
    /// The event with every field a site controls made plain text and cut to its
    /// limit. Every scraped event passes here before anything else sees it.
    pub fn bounded(mut self) -> ScrapedEvent {
        self.external_id = plain(&self.external_id, MAX_URL);
        self.name = plain(&self.name, MAX_NAME);
        self.description = self.description.map(|d| plain(&d, MAX_DESCRIPTION));
        self.venue_name = self.venue_name.map(|v| plain(&v, MAX_NAME));
        self.venue_address = plain(&self.venue_address, MAX_NAME);
        self.external_url = plain(&self.external_url, MAX_URL);
        self.images.truncate(MAX_IMAGES);
        for image in &mut self.images {
            image.url = plain(&image.url, MAX_URL);
        }
        self.waves.truncate(MAX_WAVES);
        for wave in &mut self.waves {
            wave.external_id = plain(&wave.external_id, MAX_URL);
            wave.name = plain(&wave.name, MAX_NAME);
            wave.description = wave.description.take().map(|d| plain(&d, MAX_NAME * 4));
        }
        self
    }

    pub fn class(&self) -> Class {
        if self.waves.is_empty() {
            Class::EmptyWave
        } else if self.waves.iter().any(|w| w.face_value > Decimal::ZERO) {
            Class::Valid
        } else {
            Class::GuestList
        }
    }
}

/// A position, unless it is (0, 0) or out of range, which sites print for "unknown".
pub(super) fn position(lat: Option<f64>, lng: Option<f64>) -> (Option<f64>, Option<f64>) {
    match (lat, lng) {
        (Some(lat), Some(lng))
            if lat.is_finite()
                && lng.is_finite()
                && lat.abs() <= 90.0
                && lng.abs() <= 180.0
                && (lat.abs() >= 0.001 || lng.abs() >= 0.001) =>
        {
            (Some(lat), Some(lng))
        }
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_drops_control_characters_and_keeps_markup_as_text() {
        assert_eq!(
            plain("a\u{0}b\r\nc\u{1b}[31m\td <b>", 100),
            "ab\nc[31m\td <b>"
        );
        assert_eq!(plain("ñandú", 3), "ñan");
    }
}
