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
use crate::notify::metadata::{self, Count};
use crate::notify::{
    Channel, IN_APP_AND_EMAIL, Metadata, Notification, action, iso, label, time_zone,
};
use crate::queue::NewJob;

/// `order_expired` emails are dropped for orders older than this: offline payments can
/// stay pending for days, and an email that late confuses more than it helps.
const EXPIRED_EMAIL_MAX_AGE_MINUTES: i64 = 60;

fn event_over(order: &LockedOrder, now: DateTime<Utc>) -> bool {
    order.event_end_date < now
}

/// Per seller, what they sold in this order.
pub(super) struct SellerSale {
    pub seller_user_id: Uuid,
    pub listing_id: Uuid,
    pub ticket_count: usize,
    pub all_documents_uploaded: bool,
}

pub(super) fn sales_by_seller(tickets: &[SoldTicket]) -> Vec<SellerSale> {
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
pub(super) fn on_confirmed(
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
    let confirmed = metadata::OrderConfirmed {
        order_id: order.id,
        event_name: order.event_name.clone(),
        event_start_date: Some(iso(order.event_start_date)),
        event_end_date: Some(iso(order.event_end_date)),
        event_timezone: Some(time_zone(order.venue_country.as_deref()).to_string()),
        venue_name: order.venue_name.clone(),
        venue_address: order.venue_address.clone(),
        total_amount: money(order.total_amount),
        subtotal_amount: money(order.subtotal_amount),
        platform_commission: money(order.platform_commission),
        vat_on_commission: money(order.vat_on_commission),
        currency: order.currency.clone(),
        items: items
            .iter()
            .map(|i| metadata::OrderItem {
                id: i.id,
                ticket_wave_name: i.ticket_wave_name.clone(),
                quantity: Count(i64::from(i.quantity)),
                price_per_ticket: money(i.price_per_ticket),
                subtotal: money(i.subtotal),
                currency: Some(i.currency.clone()),
            })
            .collect(),
    };
    let metadata = Metadata::OrderConfirmed(confirmed);
    // The invoice job carries the order's summary as the notification does, without the
    // notification's own fields. Unknown values are left out, not null: the job schema
    // says optional string (a gap in the original, which sent null and failed its own
    // validation).
    let payload = summary(
        &metadata,
        &["eventTimezone"],
        ("buyerUserId", order.user_id),
    );
    let notification = Notification {
        user_id: order.user_id,
        channels: IN_APP_AND_EMAIL.to_vec(),
        actions: Some(action(
            "view_order",
            label::VIEW_MY_TICKETS,
            format!("{app_base_url}/cuenta/entradas?orden={}", order.id),
        )),
        metadata,
    };
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
    let metadata = Metadata::TicketSoldSeller(metadata::TicketSoldSeller {
        order_id: Some(order.id),
        listing_id: sale.listing_id,
        event_name: order.event_name.clone(),
        event_start_date: iso(order.event_start_date),
        event_end_date: Some(iso(order.event_end_date)),
        event_timezone: Some(time_zone(order.venue_country.as_deref()).to_string()),
        platform: order.platform.clone(),
        qr_availability_timing: order.qr_timing.clone(),
        ticket_count: Count(i64::try_from(sale.ticket_count).unwrap_or(i64::MAX)),
        should_prompt_upload: prompt,
        all_documents_uploaded: Some(sale.all_documents_uploaded),
    });
    let own = [
        "shouldPromptUpload",
        "allDocumentsUploaded",
        "eventTimezone",
    ];
    let payload = summary(&metadata, &own, ("sellerUserId", sale.seller_user_id));
    let notification = Notification {
        user_id: sale.seller_user_id,
        channels: IN_APP_AND_EMAIL.to_vec(),
        actions,
        metadata,
    };
    let job = NewJob {
        job_type: "notify-seller-ticket-sold",
        idempotency_key: format!(
            "notify-seller-ticket-sold:{}:{}",
            order.id, sale.seller_user_id
        ),
        payload,
    };
    (notification, job)
}

/// What an invoice job carries: the notification's metadata without its `type` and the
/// notification's own fields (`own`), plus the user it is for.
fn summary(metadata: &Metadata, own: &[&str], user: (&str, Uuid)) -> Value {
    let mut payload = metadata.to_json();
    if let Value::Object(fields) = &mut payload {
        fields.remove("type");
        for key in own {
            fields.remove(*key);
        }
        fields.insert(user.0.to_string(), json!(user.1));
    }
    payload
}

/// `payment_failed` for a cancelled order, unless its event is over.
pub(super) fn on_payment_failed(
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
        channels: IN_APP_AND_EMAIL.to_vec(),
        actions: Some(action(
            "retry_payment",
            label::RETRY_PAYMENT,
            format!("{app_base_url}/checkout/{}", order.id),
        )),
        metadata: Metadata::PaymentFailed(metadata::PaymentFailed {
            order_id: order.id,
            event_name: order.event_name.clone(),
            error_message: reason.map(str::to_string),
        }),
    })
}

/// `order_expired`, unless its event is over; email only for orders younger than an hour.
pub(super) fn on_order_expired(order: &LockedOrder, now: DateTime<Utc>) -> Option<Notification> {
    if event_over(order, now) {
        return None;
    }
    let fresh = now - order.created_at <= TimeDelta::minutes(EXPIRED_EMAIL_MAX_AGE_MINUTES);
    Some(Notification {
        user_id: order.user_id,
        channels: if fresh {
            IN_APP_AND_EMAIL.to_vec()
        } else {
            vec![Channel::InApp]
        },
        actions: None,
        metadata: Metadata::OrderExpired(metadata::OrderEvent {
            order_id: order.id,
            event_name: order.event_name.clone(),
        }),
    })
}
