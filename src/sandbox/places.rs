//! The Google Places (legacy) stand-in: Nearby Search and Place Details over the
//! places a test adds.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::Sandbox;

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/maps/api/place/nearbysearch/json", get(places_nearby))
        .route("/maps/api/place/details/json", get(places_details))
}

/// A place the Google Places stand-in knows.
#[derive(Debug, Clone)]
pub struct Place {
    pub place_id: String,
    pub name: String,
    pub formatted_address: String,
    pub locality: String,
    pub region: String,
    pub lat: f64,
    pub lng: f64,
}

impl Sandbox {
    /// A place the Google Places stand-in will find.
    pub fn add_place(&self, place: Place) {
        self.with(|i| i.places.push(place));
    }

    pub fn places_requests(&self) -> u64 {
        self.with(|i| i.places_requests)
    }
}

/// Google Places (legacy) Nearby Search: places within `radius` metres of `location`
/// whose name contains `keyword`, nearest first. A missing key is REQUEST_DENIED.
async fn places_nearby(
    State(s): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    s.with(|i| i.places_requests += 1);
    if q.get("key").is_none_or(|k| k.is_empty()) {
        return Json(json!({"status": "REQUEST_DENIED", "results": []}));
    }
    let parse = |v: &str| v.trim().parse::<f64>().ok();
    let location = q.get("location").and_then(|l| {
        let (lat, lng) = l.split_once(',')?;
        Some((parse(lat)?, parse(lng)?))
    });
    let radius = q.get("radius").and_then(|r| parse(r)).unwrap_or(0.0);
    let Some((lat, lng)) = location else {
        return Json(json!({"status": "INVALID_REQUEST", "results": []}));
    };
    let keyword = q
        .get("keyword")
        .map(|k| k.to_lowercase())
        .unwrap_or_default();
    let mut found: Vec<(f64, Place)> = s.with(|i| {
        i.places
            .iter()
            .map(|p| (metres(lat, lng, p.lat, p.lng), p.clone()))
            .filter(|(d, p)| *d <= radius && p.name.to_lowercase().contains(&keyword))
            .collect()
    });
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let results: Vec<Value> = found
        .iter()
        .map(|(_, p)| {
            json!({"place_id": p.place_id, "name": p.name, "vicinity": p.formatted_address,
                   "geometry": {"location": {"lat": p.lat, "lng": p.lng}}})
        })
        .collect();
    let status = if results.is_empty() {
        "ZERO_RESULTS"
    } else {
        "OK"
    };
    Json(json!({"status": status, "results": results}))
}

/// Google Places (legacy) Place Details.
async fn places_details(
    State(s): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    s.with(|i| i.places_requests += 1);
    let id = q.get("place_id").cloned().unwrap_or_default();
    let Some(p) = s.with(|i| i.places.iter().find(|p| p.place_id == id).cloned()) else {
        return Json(json!({"status": "NOT_FOUND"}));
    };
    Json(json!({"status": "OK", "result": {
        "place_id": p.place_id, "name": p.name, "formatted_address": p.formatted_address,
        "address_components": [
            {"long_name": p.locality, "short_name": p.locality, "types": ["locality", "political"]},
            {"long_name": p.region, "short_name": p.region, "types": ["administrative_area_level_1", "political"]},
            {"long_name": "Uruguay", "short_name": "UY", "types": ["country", "political"]},
        ],
        "geometry": {"location": {"lat": p.lat, "lng": p.lng}},
    }}))
}

fn metres(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let a = ((p2 - p1) / 2.0).sin().powi(2)
        + p1.cos() * p2.cos() * ((lng2 - lng1).to_radians() / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}
