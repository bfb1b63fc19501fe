//! The work a transition leaves for others: notification rows and `jobs` queue rows,
//! built here and written in the same transaction as the transition, so a crash right
//! after commit loses nothing. Delivering them is the notifications job's business.
//!
//! Shapes follow the original (mathfalcon/revendiste, under apps/backend/src/:
//! services/payments/adapters/PaymentWebhookAdapter.ts for the transitions,
//! services/orders/reservation-expiry.ts for expiry, services/job-queue/index.ts for the
//! queue, and packages/shared/src/schemas/notifications.ts): metadata carries
//! `type` plus the fields its template needs; invoice jobs carry the idempotency keys
//! `notify-order-confirmed:<orderId>` and `notify-seller-ticket-sold:<orderId>:<seller>`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::queries::{LockedOrder, OrderItem, SoldTicket};
use crate::notify::{Notification, action, iso, label, time_zone};
use crate::queue::NewJob;

/// `order_expired` emails are dropped for orders older than this: offline payments can
/// stay pending for days, and an email that late confuses more than it helps.
const EXPIRED_EMAIL_MAX_AGE_MINUTES: i64 = 60;

fn event_over(order: &LockedOrder, now: DateTime<Utc>) -> bool {
    order.event_end_date < now
}

/// Per seller, what they sold in this order.
pub struct SellerSale {
    pub seller_user_id: Uuid,
    pub listing_id: Uuid,
    pub ticket_count: usize,
    pub all_documents_uploaded: bool,
}

pub fn sales_by_seller(tickets: &[SoldTicket]) -> Vec<SellerSale> {
    let mut by_seller: BTreeMap<Uuid, SellerSale> = BTreeMap::new();
    for t in tickets {
        let sale = by_seller.entry(t.seller_user_id).or_insert(SellerSale {
            seller_user_id: t.seller_user_id,
            listing_id: t.listing_id,
            ticket_count: 0,
            all_documents_uploaded: true,
        });
        sale.ticket_count += 1;
        sale.all_documents_uploaded &= t.has_document;
    }
    by_seller.into_values().collect()
}

fn qr_hours(timing: Option<&str>) -> Option<i64> {
    timing?.trim_end_matches('h').parse().ok()
}

/// The original prompts a seller to upload only inside the upload window: from
/// `start - QR hours` until the start, or any time before the end without QR timing.
fn should_prompt_upload(order: &LockedOrder, all_uploaded: bool, now: DateTime<Utc>) -> bool {
    if all_uploaded {
        return false;
    }
    match qr_hours(order.qr_timing.as_deref()) {
        Some(h) => {
            now >= order.event_start_date - TimeDelta::hours(h) && now < order.event_start_date
        }
        None => now < order.event_end_date,
    }
}

/// Rows written when an order is confirmed: buyer and seller notifications, invoice jobs.
pub fn on_confirmed(
    order: &LockedOrder,
    items: &[OrderItem],
    sales: &[SellerSale],
    app_base_url: &str,
    now: DateTime<Utc>,
) -> (Vec<Notification>, Vec<NewJob>) {
    let (notification, job) = buyer_confirmed(order, items, app_base_url);
    let (mut notifications, mut jobs) = (vec![notification], vec![job]);
    for sale in sales {
        let (notification, job) = seller_sold(order, sale, app_base_url, now);
        notifications.push(notification);
        jobs.push(job);
    }
    (notifications, jobs)
}

/// The buyer's `order_confirmed` and the order's `notify-order-confirmed` invoice job.
fn buyer_confirmed(
    order: &LockedOrder,
    items: &[OrderItem],
    app_base_url: &str,
) -> (Notification, NewJob) {
    let money = |d: rust_decimal::Decimal| d.to_string();
    // What the buyer's notification and the invoice job both carry.
    let summary = json!({
        "orderId": order.id,
        "eventName": order.event_name,
        "eventStartDate": iso(order.event_start_date),
        "eventEndDate": iso(order.event_end_date),
        "venueName": order.venue_name,
        "venueAddress": order.venue_address,
        "totalAmount": money(order.total_amount),
        "subtotalAmount": money(order.subtotal_amount),
        "platformCommission": money(order.platform_commission),
        "vatOnCommission": money(order.vat_on_commission),
        "currency": order.currency,
        "items": items,
    });
    let notification = Notification {
        user_id: order.user_id,
        kind: "order_confirmed",
        channels: vec!["in_app", "email"],
        actions: Some(action(
            "view_order",
            label::VIEW_MY_TICKETS,
            format!("{app_base_url}/cuenta/entradas?orden={}", order.id),
        )),
        metadata: with(
            &summary,
            json!({
                "type": "order_confirmed",
                "eventTimezone": time_zone(order.venue_country.as_deref()),
            }),
        ),
    };
    // Omitted, not null, when unknown: the job schema says optional string (a gap in the
    // original, which sent null and failed its own validation).
    let mut payload = with(&summary, json!({ "buyerUserId": order.user_id }));
    if let Value::Object(map) = &mut payload {
        map.retain(|_, v| !v.is_null());
    }
    let job = NewJob {
        job_type: "notify-order-confirmed",
        idempotency_key: format!("notify-order-confirmed:{}", order.id),
        payload,
    };
    (notification, job)
}

/// One seller's `ticket_sold_seller` and its `notify-seller-ticket-sold` invoice job.
fn seller_sold(
    order: &LockedOrder,
    sale: &SellerSale,
    app_base_url: &str,
    now: DateTime<Utc>,
) -> (Notification, NewJob) {
    let prompt = should_prompt_upload(order, sale.all_documents_uploaded, now);
    let actions = prompt.then(|| {
        action(
            "upload_documents",
            label::UPLOAD_DOCUMENTS,
            format!(
                "{app_base_url}/cuenta/subir-entradas?subirPublicacion={}",
                sale.listing_id
            ),
        )
    });
    // What the seller's notification and the invoice job both carry.
    let sold = json!({
        "orderId": order.id,
        "listingId": sale.listing_id,
        "eventName": order.event_name,
        "eventStartDate": iso(order.event_start_date),
        "eventEndDate": iso(order.event_end_date),
        "platform": order.platform,
        "qrAvailabilityTiming": order.qr_timing,
        "ticketCount": sale.ticket_count,
    });
    let notification = Notification {
        user_id: sale.seller_user_id,
        kind: "ticket_sold_seller",
        channels: vec!["in_app", "email"],
        actions,
        metadata: with(
            &sold,
            json!({
                "type": "ticket_sold_seller", "shouldPromptUpload": prompt,
                "allDocumentsUploaded": sale.all_documents_uploaded,
                "eventTimezone": time_zone(order.venue_country.as_deref()),
            }),
        ),
    };
    let job = NewJob {
        job_type: "notify-seller-ticket-sold",
        idempotency_key: format!(
            "notify-seller-ticket-sold:{}:{}",
            order.id, sale.seller_user_id
        ),
        payload: with(&sold, json!({ "sellerUserId": sale.seller_user_id })),
    };
    (notification, job)
}

/// `payment_failed` for a cancelled order, unless its event is over.
pub fn on_payment_failed(
    order: &LockedOrder,
    reason: Option<&str>,
    app_base_url: &str,
    now: DateTime<Utc>,
) -> Option<Notification> {
    if event_over(order, now) {
        return None;
    }
    Some(Notification {
        user_id: order.user_id,
        kind: "payment_failed",
        channels: vec!["in_app", "email"],
        actions: Some(action(
            "retry_payment",
            label::RETRY_PAYMENT,
            format!("{app_base_url}/checkout/{}", order.id),
        )),
        metadata: json!({
            "type": "payment_failed",
            "orderId": order.id,
            "eventName": order.event_name,
            "errorMessage": reason,
        }),
    })
}

/// `order_expired`, unless its event is over; email only for orders younger than an hour.
pub fn on_order_expired(order: &LockedOrder, now: DateTime<Utc>) -> Option<Notification> {
    if event_over(order, now) {
        return None;
    }
    let fresh = now - order.created_at <= TimeDelta::minutes(EXPIRED_EMAIL_MAX_AGE_MINUTES);
    Some(Notification {
        user_id: order.user_id,
        kind: "order_expired",
        channels: if fresh {
            vec!["in_app", "email"]
        } else {
            vec!["in_app"]
        },
        actions: None,
        metadata: json!({
            "type": "order_expired",
            "orderId": order.id,
            "eventName": order.event_name,
        }),
    })
}

/// A notification's single action, as the app renders it.
/// `base`'s fields plus `extra`'s.
fn with(base: &Value, extra: Value) -> Value {
    let mut merged = base.clone();
    if let (Value::Object(m), Value::Object(e)) = (&mut merged, extra) {
        m.extend(e);
    }
    merged
}
