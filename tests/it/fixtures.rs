//! Rows of the reference schema for sync-payments tests: users, an event, listings,
//! orders with reservations, payments. Times are relative to now.

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::str::FromStr;
use uuid::Uuid;

pub(crate) struct World {
    pub pool: PgPool,
    pub buyer: Uuid,
    pub seller_a: Uuid,
    pub seller_b: Uuid,
    pub event: Uuid,
    pub wave: Uuid,
}

/// A pending order of the world's buyer for its event.
pub(crate) struct NewOrder<'a> {
    /// Listing tickets it reserves (one order item at `total` for all of them).
    pub(crate) tickets: &'a [Uuid],
    pub(crate) total: &'a str,
    pub(crate) created_minutes_ago: i64,
    /// When its reservation ends, from now (negative: already ended).
    pub(crate) expires_in_minutes: i64,
}

/// A dLocal payment of an order, in UYU.
pub(crate) struct NewPayment<'a> {
    pub(crate) order: Uuid,
    /// dLocal's id for it (what the stand-in answers for).
    pub(crate) provider_id: &'a str,
    /// Its `payment_status` in our table.
    pub(crate) status: &'a str,
    pub(crate) amount: &'a str,
    pub(crate) created_minutes_ago: i64,
}

pub(crate) fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn ago(minutes: i64) -> DateTime<Utc> {
    Utc::now() - TimeDelta::minutes(minutes)
}

async fn user(pool: &PgPool, name: &str) -> Uuid {
    sqlx::query_scalar("INSERT INTO users (email, first_name) VALUES ($1, $2) RETURNING id")
        .bind(format!("{name}-{}@example.com", Uuid::new_v4()))
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A world whose event ends `ends_in_hours` from now (negative: already over).
pub(crate) async fn world(pool: &PgPool, ends_in_hours: i64) -> World {
    let buyer = user(pool, "buyer").await;
    let seller_a = user(pool, "seller-a").await;
    let seller_b = user(pool, "seller-b").await;
    let venue: Uuid = sqlx::query_scalar(
        "INSERT INTO event_venues (name, address, city) VALUES ('Antel Arena', 'Av. Dámaso A. Larrañaga', 'Montevideo') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let end = Utc::now() + TimeDelta::hours(ends_in_hours);
    let event: Uuid = sqlx::query_scalar(
        "INSERT INTO events (external_id, platform, name, slug, event_start_date, event_end_date, external_url, venue_id, qr_availability_timing)
         VALUES ($1, 'entraste', 'Cuarteto de Nos', $1, $2, $3, 'https://example.com/e', $4, '12h') RETURNING id",
    )
    .bind(format!("ext-{}", Uuid::new_v4()))
    .bind(end - TimeDelta::hours(5))
    .bind(end)
    .bind(venue)
    .fetch_one(pool)
    .await
    .unwrap();
    let wave: Uuid = sqlx::query_scalar(
        "INSERT INTO event_ticket_waves (event_id, external_id, name, face_value, currency) VALUES ($1, 'w1', 'General', 1000, 'UYU') RETURNING id",
    )
    .bind(event)
    .fetch_one(pool)
    .await
    .unwrap();
    World {
        pool: pool.clone(),
        buyer,
        seller_a,
        seller_b,
        event,
        wave,
    }
}

impl World {
    /// A listing by `seller` with one ticket per price; returns (listing, tickets).
    pub(crate) async fn listing(&self, seller: Uuid, prices: &[&str]) -> (Uuid, Vec<Uuid>) {
        let listing: Uuid = sqlx::query_scalar(
            "INSERT INTO listings (publisher_user_id, ticket_wave_id) VALUES ($1, $2) RETURNING id",
        )
        .bind(seller)
        .bind(self.wave)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        let mut tickets = Vec::new();
        for (i, price) in prices.iter().enumerate() {
            let t: Uuid = sqlx::query_scalar(
                "INSERT INTO listing_tickets (listing_id, ticket_number, price) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(listing)
            .bind(i as i32 + 1)
            .bind(dec(price))
            .fetch_one(&self.pool)
            .await
            .unwrap();
            tickets.push(t);
        }
        (listing, tickets)
    }

    /// A pending order (see [`NewOrder`]).
    pub(crate) async fn order(&self, o: NewOrder<'_>) -> Uuid {
        let NewOrder {
            tickets,
            total,
            created_minutes_ago,
            expires_in_minutes,
        } = o;
        let order: Uuid = sqlx::query_scalar(
            "INSERT INTO orders (user_id, event_id, total_amount, subtotal_amount, platform_commission, vat_on_commission,
                                 currency, reservation_expires_at, created_at)
             VALUES ($1, $2, $3, $3, 0, 0, 'UYU', $4, $5) RETURNING id",
        )
        .bind(self.buyer)
        .bind(self.event)
        .bind(dec(total))
        .bind(Utc::now() + TimeDelta::minutes(expires_in_minutes))
        .bind(ago(created_minutes_ago))
        .fetch_one(&self.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO order_items (order_id, ticket_wave_id, price_per_ticket, quantity, subtotal) VALUES ($1, $2, $3, $4, $3)",
        )
        .bind(order)
        .bind(self.wave)
        .bind(dec(total))
        .bind(tickets.len() as i32)
        .execute(&self.pool)
        .await
        .unwrap();
        for t in tickets {
            sqlx::query(
                "INSERT INTO order_ticket_reservations (order_id, listing_ticket_id, reserved_until) VALUES ($1, $2, $3)",
            )
            .bind(order)
            .bind(t)
            .bind(Utc::now() + TimeDelta::minutes(expires_in_minutes))
            .execute(&self.pool)
            .await
            .unwrap();
        }
        order
    }

    /// A dLocal payment (see [`NewPayment`]).
    pub(crate) async fn payment(&self, p: NewPayment<'_>) -> Uuid {
        let NewPayment {
            order,
            provider_id,
            status,
            amount,
            created_minutes_ago,
        } = p;
        sqlx::query_scalar(
            "INSERT INTO payments (order_id, provider, provider_payment_id, status, amount, currency, created_at, redirect_url)
             VALUES ($1, 'dlocal', $2, $3::payment_status, $4, 'UYU', $5, 'http://127.0.0.1:9/checkout') RETURNING id",
        )
        .bind(order)
        .bind(provider_id)
        .bind(status)
        .bind(dec(amount))
        .bind(ago(created_minutes_ago))
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    pub(crate) async fn set_order_status(&self, order: Uuid, status: &str) {
        sqlx::query("UPDATE orders SET status = $2::order_status WHERE id = $1")
            .bind(order)
            .bind(status)
            .execute(&self.pool)
            .await
            .unwrap();
    }
}

pub(crate) async fn scalar_i64(pool: &PgPool, sql: &'static str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub(crate) async fn text(pool: &PgPool, sql: &'static str, id: Uuid) -> String {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Row counts of every table sync-payments writes, for "nothing changed" checks.
pub(crate) async fn snapshot(pool: &PgPool) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for table in [
        "orders WHERE status = 'pending'",
        "orders WHERE status = 'confirmed'",
        "orders WHERE status = 'cancelled'",
        "orders WHERE status = 'expired'",
        "seller_earnings",
        "payment_events",
        "notifications",
        "jobs",
        "order_ticket_reservations WHERE deleted_at IS NULL",
        "listing_tickets WHERE sold_at IS NOT NULL",
        "listings WHERE sold_at IS NOT NULL",
    ] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(pool)
                .await
                .unwrap();
        out.push((table.to_string(), n));
    }
    out
}
