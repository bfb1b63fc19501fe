//! Finding or creating the venue of each scraped event, once per venue per run.
//!
//! With a position: the nearest live venue within 100 m (a bounding box narrows the
//! search, the haversine distance decides). Without one: a venue with the same name or
//! the same address, ignoring case. Otherwise a new venue, its city guessed from the
//! address. Results are remembered for the run, so a venue shared by many events is
//! resolved once (the original resolved each venue twice per event).
//!
//! A new venue with a position is looked up in Google Places (legacy Nearby Search
//! within 150 m, then Place Details) when `GOOGLE_PLACES_API_KEY` is set, and created
//! with Google's name, address, city and place id; a place another venue already has
//! is that venue. Without a key, or when Google finds nothing or fails, the venue is
//! created from what the site shows. A venue found by position that was last updated
//! more than [`STALE_AFTER`] ago is refreshed from Google the same way, as the
//! original did: Google's data replaces its own, a place another venue has means that
//! venue, and nothing found only marks it checked. The statements are in
//! [`queries`](super::queries).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::http;

use super::model::ScrapedEvent;
use super::queries;

/// Metres within which two positions are the same venue.
const SAME_PLACE_METRES: f64 = 100.0;
const EARTH_RADIUS_METRES: f64 = 6_371_000.0;
const METRES_PER_DEGREE: f64 = 111_320.0;

/// Cities recognised in addresses, most specific first.
const CITIES: [&str; 15] = [
    "Montevideo",
    "Punta del Este",
    "Maldonado",
    "Colonia del Sacramento",
    "Salto",
    "Paysandú",
    "Rivera",
    "Las Piedras",
    "Ciudad de la Costa",
    "Atlántida",
    "Piriápolis",
    "Rocha",
    "La Paloma",
    "José Ignacio",
    "Manantiales",
];

/// A venue found by position is refreshed from Google when older than this.
pub(super) const STALE_AFTER: TimeDelta = TimeDelta::days(7);

/// The radius of the Nearby Search for a new venue.
const PLACES_RADIUS_METRES: u32 = 150;

pub(super) struct Venues {
    known: HashMap<String, Uuid>,
    places: Option<GooglePlaces>,
    /// The run's "now", against which a venue's age is measured.
    now: DateTime<Utc>,
    pub created: u64,
    pub from_google: u64,
    pub refreshed: u64,
}

/// A place as Google describes it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Place {
    pub place_id: String,
    pub name: String,
    pub address: String,
    pub city: String,
    pub region: Option<String>,
    pub country: String,
    pub lat: f64,
    pub lng: f64,
}

/// The legacy Places API: Nearby Search and Place Details.
pub(super) struct GooglePlaces {
    client: reqwest::Client,
    base: String,
    key: SecretString,
}

impl GooglePlaces {
    pub(super) fn new(base: &str, key: SecretString) -> reqwest::Result<GooglePlaces> {
        Ok(GooglePlaces {
            client: http::client(http::Timeouts {
                connect: Duration::from_secs(5),
                request: Duration::from_secs(10),
            })?,
            base: base.trim_end_matches('/').to_string(),
            key,
        })
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| format!("GOOGLE_PLACES_BASE_URL: {e}"))?;
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("language", "es")
            .append_pair("key", self.key.expose_secret());
        let response = self
            .client
            .get(url)
            .send()
            .await
            // The URL carries the key: never let it into a message.
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let body = crate::http::read_capped(response, "Google Places", 2 * 1024 * 1024)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
    }

    /// The place Google has for a venue at this position, if any.
    pub(super) async fn find(
        &self,
        lat: f64,
        lng: f64,
        name: &str,
    ) -> Result<Option<Place>, String> {
        let location = format!("{lat},{lng}");
        let radius = PLACES_RADIUS_METRES.to_string();
        let mut query = vec![("location", location.as_str()), ("radius", radius.as_str())];
        if !name.is_empty() {
            query.push(("keyword", name));
        }
        let nearby = self
            .get("/maps/api/place/nearbysearch/json", &query)
            .await?;
        match nearby["status"].as_str() {
            Some("OK") => {}
            Some("ZERO_RESULTS") => return Ok(None),
            other => {
                return Err(format!(
                    "Nearby Search answered {}",
                    other.unwrap_or("nothing")
                ));
            }
        }
        let Some(first) = nearby["results"].get(0) else {
            return Ok(None);
        };
        let Some(place_id) = first["place_id"].as_str() else {
            return Ok(None);
        };
        let fields = "place_id,name,formatted_address,address_components,geometry/location";
        let details = self
            .get(
                "/maps/api/place/details/json",
                &[("place_id", place_id), ("fields", fields)],
            )
            .await;
        let (source, address_key) = match &details {
            Ok(d) if d["status"] == "OK" => (&d["result"], "formatted_address"),
            // Details failed: what the nearby result says is still better than nothing.
            _ => (first, "vicinity"),
        };
        let component = |kind: &str| {
            source["address_components"].as_array().and_then(|parts| {
                parts
                    .iter()
                    .find(|p| {
                        p["types"]
                            .as_array()
                            .is_some_and(|t| t.iter().any(|t| t == kind))
                    })
                    .and_then(|p| p["long_name"].as_str())
                    .map(str::to_string)
            })
        };
        let address = source[address_key].as_str().unwrap_or_default().to_string();
        Ok(Some(Place {
            place_id: place_id.to_string(),
            name: source["name"].as_str().unwrap_or(name).to_string(),
            city: component("locality")
                .or_else(|| component("administrative_area_level_2"))
                .or_else(|| component("administrative_area_level_1"))
                .unwrap_or_else(|| city(&address)),
            region: component("administrative_area_level_1"),
            country: component("country").unwrap_or_else(|| "Uruguay".into()),
            lat: source["geometry"]["location"]["lat"]
                .as_f64()
                .unwrap_or(lat),
            lng: source["geometry"]["location"]["lng"]
                .as_f64()
                .unwrap_or(lng),
            address,
        }))
    }
}

impl Venues {
    pub(super) fn new(places: Option<GooglePlaces>, now: DateTime<Utc>) -> Venues {
        Venues {
            known: HashMap::new(),
            places,
            now,
            created: 0,
            from_google: 0,
            refreshed: 0,
        }
    }

    pub(super) async fn resolve(
        &mut self,
        pool: &PgPool,
        event: &ScrapedEvent,
    ) -> sqlx::Result<Option<Uuid>> {
        let name = event.venue_name.as_deref().unwrap_or("").trim();
        let address = event.venue_address.trim();
        if name.is_empty() && address.is_empty() && event.lat.is_none() {
            return Ok(None);
        }
        let key = format!(
            "{name}\u{1f}{address}\u{1f}{:?}\u{1f}{:?}",
            event.lat, event.lng
        );
        if let Some(id) = self.known.get(&key) {
            return Ok(Some(*id));
        }
        let found = match (event.lat, event.lng) {
            (Some(lat), Some(lng)) => match nearest(pool, lat, lng).await? {
                Some((id, updated)) if self.now - updated > STALE_AFTER => {
                    Some(self.refresh(pool, id, (lat, lng), name).await?)
                }
                found => found.map(|(id, _)| id),
            },
            _ => {
                queries::venue_by_name(pool, if name.is_empty() { address } else { name }, address)
                    .await?
            }
        };
        let id = match found {
            Some(id) => id,
            None => match self.via_places(pool, event, name).await? {
                Some(id) => id,
                None => {
                    self.created += 1;
                    queries::insert_venue(
                        pool,
                        if name.is_empty() {
                            "Venue desconocido"
                        } else {
                            name
                        },
                        address,
                        &city(address),
                        event.lat,
                        event.lng,
                        self.now,
                    )
                    .await?
                }
            },
        };
        self.known.insert(key, id);
        Ok(Some(id))
    }
}

impl Venues {
    /// A stale venue brought up to date from Google: its data replaced by Google's, or
    /// the venue that already has Google's place, or (Google finding nothing) marked as
    /// checked. Without Google, or when Google fails, it is left as it is.
    async fn refresh(
        &mut self,
        pool: &PgPool,
        id: Uuid,
        (lat, lng): (f64, f64),
        name: &str,
    ) -> sqlx::Result<Uuid> {
        let Some(places) = &self.places else {
            return Ok(id);
        };
        let place = match places.find(lat, lng, name).await {
            Ok(place) => place,
            Err(e) => {
                tracing::warn!(venue = name, error = %e, "Google Places refresh failed; venue left as it is");
                return Ok(id);
            }
        };
        let Some(place) = place else {
            queries::mark_venue_checked(pool, id, self.now).await?;
            return Ok(id);
        };
        // The place id is unique among all venues, deleted ones included.
        let other = queries::other_venue_with_place(pool, &place.place_id, id).await?;
        if let Some((other, deleted)) = other {
            // Checked: not asked again for a week either way.
            queries::mark_venue_checked(pool, id, self.now).await?;
            return Ok(if deleted { id } else { other });
        }
        queries::update_venue_from_place(pool, id, &place, self.now).await?;
        self.refreshed += 1;
        Ok(id)
    }

    /// The venue of Google's place for this position: an existing one with that place
    /// id, or a new one from Google's data. `None` when Google is not configured, finds
    /// nothing or fails (the caller then creates the venue from the site's data).
    async fn via_places(
        &mut self,
        pool: &PgPool,
        event: &ScrapedEvent,
        name: &str,
    ) -> sqlx::Result<Option<Uuid>> {
        let (Some(places), Some(lat), Some(lng)) = (&self.places, event.lat, event.lng) else {
            return Ok(None);
        };
        let place = match places.find(lat, lng, name).await {
            Ok(Some(place)) => place,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(venue = name, error = %e, "Google Places lookup failed; using the site's data");
                return Ok(None);
            }
        };
        let inserted = queries::insert_venue_from_place(pool, &place, self.now).await?;
        if inserted.is_some() {
            self.created += 1;
            self.from_google += 1;
            return Ok(inserted);
        }
        queries::venue_with_place(pool, &place.place_id).await
    }
}

/// The nearest live venue within [`SAME_PLACE_METRES`], and when it was last updated.
async fn nearest(pool: &PgPool, lat: f64, lng: f64) -> sqlx::Result<Option<(Uuid, DateTime<Utc>)>> {
    let dlat = SAME_PLACE_METRES / METRES_PER_DEGREE;
    let dlng = dlat / lat.to_radians().cos().abs().max(0.01);
    queries::nearest_venue(
        pool,
        lat,
        lng,
        dlat,
        dlng,
        EARTH_RADIUS_METRES,
        SAME_PLACE_METRES,
    )
    .await
}

/// The first known city named in the address, else its last comma part, else Uruguay.
pub(super) fn city(address: &str) -> String {
    let lower = address.to_lowercase();
    if let Some(known) = CITIES.iter().find(|c| lower.contains(&c.to_lowercase())) {
        return known.to_string();
    }
    address
        .rsplit(',')
        .next()
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() < 100 && *c != address.trim())
        .unwrap_or("Uruguay")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::city;

    #[test]
    fn cities_come_from_the_address() {
        assert_eq!(city("Rambla Mahatma Gandhi 1234, Montevideo"), "Montevideo");
        assert_eq!(city("Av. del Lago 500, Punta del Este"), "Punta del Este");
        assert_eq!(city("Ruta 10 km 160, Aguas Dulces"), "Aguas Dulces");
        assert_eq!(city("Teatro Solís"), "Uruguay");
    }
}
