//! Finding or creating the venue of each scraped event, once per venue per run.
//!
//! With a position: the nearest live venue within 100 m (a bounding box narrows the
//! search, the haversine distance decides). Without one: a venue with the same name or
//! the same address, ignoring case. Otherwise a new venue, its city guessed from the
//! address. Results are remembered for the run, so a venue shared by many events is
//! resolved once (the original resolved each venue twice per event).
//!
//! Google Places enrichment of new venues is not done yet: venues are created from
//! what the site shows.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use super::model::ScrapedEvent;

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

#[derive(Default)]
pub struct Venues {
    known: HashMap<String, Uuid>,
    pub created: u64,
}

impl Venues {
    pub async fn resolve(
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
            (Some(lat), Some(lng)) => nearest(pool, lat, lng).await?,
            _ => by_name(pool, if name.is_empty() { address } else { name }, address).await?,
        };
        let id = match found {
            Some(id) => id,
            None => {
                self.created += 1;
                sqlx::query_scalar(
                    "INSERT INTO event_venues (name, address, city, country, latitude, longitude)
                     VALUES ($1, $2, $3, 'Uruguay', $4::float8::numeric, $5::float8::numeric) RETURNING id",
                )
                .bind(if name.is_empty() { "Venue desconocido" } else { name })
                .bind(address)
                .bind(city(address))
                .bind(event.lat)
                .bind(event.lng)
                .fetch_one(pool)
                .await?
            }
        };
        self.known.insert(key, id);
        Ok(Some(id))
    }
}

async fn nearest(pool: &PgPool, lat: f64, lng: f64) -> sqlx::Result<Option<Uuid>> {
    let dlat = SAME_PLACE_METRES / METRES_PER_DEGREE;
    let dlng = dlat / lat.to_radians().cos().abs().max(0.01);
    sqlx::query_scalar(
        "SELECT id FROM (
             SELECT id, 2 * $5 * asin(sqrt(
                 power(sin(radians(latitude::float8 - $1) / 2), 2)
                 + cos(radians($1)) * cos(radians(latitude::float8))
                   * power(sin(radians(longitude::float8 - $2) / 2), 2))) AS metres
             FROM event_venues
             WHERE deleted_at IS NULL AND latitude IS NOT NULL
               AND latitude BETWEEN $1 - $3 AND $1 + $3 AND longitude BETWEEN $2 - $4 AND $2 + $4
         ) near WHERE metres <= $6 ORDER BY metres LIMIT 1",
    )
    .bind(lat)
    .bind(lng)
    .bind(dlat)
    .bind(dlng)
    .bind(EARTH_RADIUS_METRES)
    .bind(SAME_PLACE_METRES)
    .fetch_optional(pool)
    .await
}

async fn by_name(pool: &PgPool, name: &str, address: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT id FROM event_venues
         WHERE deleted_at IS NULL AND (lower(name) = lower($1) OR (lower(address) = lower($2) AND $2 <> ''))
         ORDER BY created_at LIMIT 1",
    )
    .bind(name)
    .bind(address)
    .fetch_optional(pool)
    .await
}

/// The first known city named in the address, else its last comma part, else Uruguay.
pub fn city(address: &str) -> String {
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
