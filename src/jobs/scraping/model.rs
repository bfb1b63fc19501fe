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

impl ScrapedEvent {
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
pub fn position(lat: Option<f64>, lng: Option<f64>) -> (Option<f64>, Option<f64>) {
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
