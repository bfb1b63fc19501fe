//! `invoices`: the fiscal documents of confirmed orders, issued with FEU.
//!
//! The `jobs` queue's `notify-order-confirmed` (the buyer's invoice for the platform's
//! commission) and `notify-seller-ticket-sold` (the seller's), claimed through
//! [`crate::queue`] with the original's contract (SKIP LOCKED, 2^n-minute retries up to
//! `max_attempts`, stale `processing` rows reclaimed), as the original
//! (apps/backend/src/services/job-handlers, services/invoices) handles them: the
//! `invoices` row `pending`, the e-ticket created with FEU ([`feu`]), its PDF stored in
//! the private bucket at `invoices/<order>/buyer-invoice.pdf` or
//! `invoices/<order>/seller-<seller>-invoice.pdf`, the row `issued` with FEU's answer,
//! and the `order_invoice` email (PDF attached) queued for the notifications job.
//!
//! Idempotent under kills: FEU is asked with the invoice's `external_id` as its
//! `id_externo`, so a run killed after FEU answered and before the row was written gets
//! the same document on the rerun, never a second one; the email is queued in the
//! transaction that marks the invoice issued, so it is queued once. A payload that does
//! not parse, a missing or unconfirmed order, or a document FEU refuses fails its row at
//! once with the reason; an unreachable or garbled FEU is retried by the queue. Either
//! way the rest of the batch goes on and the run exits 1.

pub mod feu;
mod queries;

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::{self, Env};
use crate::failure::{Decision, Failure};
use crate::jobs::{Endpoint, Job, JobError, Registration, Requeue, RunContext, Summary};
use crate::money::{self, Rates};
use crate::notify::metadata::{
    self, AttachmentRef, Count, InvoiceItem, OrderInvoice, PostSendAction,
};
use crate::notify::{self, Channel, Metadata, Notification};
use crate::queue::{self, QueuedJob};
use crate::statuses::{InvoiceStatus, OrderStatus};
use crate::storage::Storage;
use feu::{Comprobante, Feu, FeuError, FeuSettings};
use queries::{Amounts, Order};

pub const REGISTRATION: Registration = Registration {
    name: "invoices",
    build: |deps| {
        let settings = Settings::from_env(&*deps.env)?;
        let job = Invoices::new(deps.pool.clone(), settings, deps.clock.clone())?;
        Ok(Arc::new(job) as Arc<dyn Job>)
    },
    requeue: Some(Requeue {
        queue_types: HANDLED,
        notifications: false,
    }),
};

/// The queue rows this job handles.
const HANDLED: &[&str] = &["notify-order-confirmed", "notify-seller-ticket-sold"];

/// Uruguay's civil time (no daylight saving since 2015): the date a document carries.
const URUGUAY: FixedOffset = match FixedOffset::west_opt(3 * 3600) {
    Some(zone) => zone,
    None => panic!("UTC-3 is a valid offset"),
};

/// What the job reads from the environment.
#[derive(Clone)]
pub struct Settings {
    pub feu: FeuSettings,
    pub storage: Storage,
    /// `PLATFORM_COMMISSION_RATE`, `VAT_RATE`: as sync-payments, 0.06 and 0.22.
    pub rates: Rates,
    /// `INVOICES_BATCH`: queue rows claimed at a time. Defaults to 10.
    pub batch: i64,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, config::Error> {
        Ok(Settings {
            feu: FeuSettings::from_env(env)?,
            storage: Storage::from_env(env)?,
            rates: Rates::from_env(env)?,
            batch: config::parse(env, "INVOICES_BATCH", 10i64, 1..=200)?,
        })
    }
}

/// The job.
#[derive(Clone)]
pub struct Invoices {
    pool: PgPool,
    clock: Clock,
    settings: Settings,
    feu: Arc<Feu>,
}

/// Why one queue row did not end in an issued invoice.
enum Failed {
    /// Asking again cannot help: fails the row now.
    Invalid(String),
    /// May work later: the queue retries it.
    Retry(String),
    /// FEU refused our credentials: nothing is wrong with the row, and nothing else can
    /// be issued this run. The row goes back to the queue untouched and the run fails.
    Refused(String),
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Failed {
        Failed::Retry(format!("database: {e}"))
    }
}

impl From<FeuError> for Failed {
    fn from(e: FeuError) -> Failed {
        match e {
            FeuError::Transient(m) => Failed::Retry(m),
            FeuError::Rejected(m) => Failed::Invalid(m),
            FeuError::Refused(m) => Failed::Refused(m),
        }
    }
}

/// Who an invoice bills, and the names the original gives its invoice.
#[derive(Debug, Clone, Copy)]
enum Party {
    Buyer,
    Seller(Uuid),
}

impl Party {
    fn seller(self) -> Option<Uuid> {
        match self {
            Party::Buyer => None,
            Party::Seller(s) => Some(s),
        }
    }

    /// The `invoice_party` value.
    fn name(self) -> &'static str {
        match self {
            Party::Buyer => "buyer",
            Party::Seller(_) => "seller",
        }
    }

    /// As the document's line names the party.
    fn spanish(self) -> &'static str {
        match self {
            Party::Buyer => "comprador",
            Party::Seller(_) => "vendedor",
        }
    }

    fn external_id(self, order: Uuid) -> String {
        match self {
            Party::Buyer => format!("revendiste:{order}:buyer"),
            Party::Seller(s) => format!("revendiste:{order}:seller:{s}"),
        }
    }

    fn pdf_path(self, order: Uuid) -> String {
        match self {
            Party::Buyer => format!("private/invoices/{order}/buyer-invoice.pdf"),
            Party::Seller(s) => format!("private/invoices/{order}/seller-{s}-invoice.pdf"),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuyerPayload {
    order_id: Uuid,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SellerPayload {
    order_id: Uuid,
    seller_user_id: Uuid,
}

/// What a run did.
#[derive(Debug, Default)]
struct Counts {
    issued: u64,
    already_issued: u64,
    failed: u64,
    retrying: u64,
    reclaimed: u64,
    /// Rows put back untouched because FEU refused our credentials.
    requeued: u64,
}

impl Invoices {
    pub fn new(pool: PgPool, settings: Settings, clock: Clock) -> anyhow::Result<Invoices> {
        let feu = Arc::new(Feu::new(settings.feu.clone())?);
        Ok(Invoices {
            pool,
            clock,
            settings,
            feu,
        })
    }

    /// Claims and handles queue rows until none is due or the run is cancelled.
    pub async fn run_once(&self, cx: &RunContext) -> Result<Summary, JobError> {
        let mut counts = Counts {
            reclaimed: queue::reclaim_stale(&self.pool, self.clock.now(), HANDLED).await?,
            ..Counts::default()
        };
        let mut refused = None;
        while !cx.cancel.is_cancelled() && refused.is_none() {
            let now = self.clock.now();
            let jobs = queue::claim(&self.pool, now, HANDLED, self.settings.batch).await?;
            if jobs.is_empty() {
                break;
            }
            for (i, job) in jobs.iter().enumerate() {
                if let Err(reason) = self.handle(job, &mut counts).await? {
                    // This row and the rest of the batch go back as they were claimed.
                    counts.requeued += queue::release(&self.pool, &jobs[i..]).await?;
                    refused = Some(reason);
                    break;
                }
                let s = counts.summary();
                cx.progress.set(s.processed, s.succeeded, s.failed);
            }
        }
        let summary = counts.summary();
        if let Some(reason) = refused {
            return Err(JobError {
                error: anyhow::anyhow!(
                    "FEU refused our credentials ({reason}); {} claimed invoice job(s) put back \
                     untouched, every due row waits for the next run. Check \
                     FEU_REFRESH_TOKEN, FEU_USERNAME and FEU_PASSWORD",
                    counts.requeued
                ),
                summary,
            });
        }
        if counts.failed + counts.retrying > 0 {
            return Err(JobError {
                error: anyhow::anyhow!(
                    "{} invoice job(s) failed, {} to be retried",
                    counts.failed,
                    counts.retrying
                ),
                summary,
            });
        }
        Ok(summary)
    }

    /// One queue row to its end: completed, retried later, or failed; `Ok(Err(reason))`
    /// when FEU refused our credentials and the row was left as it is.
    async fn handle(
        &self,
        job: &QueuedJob,
        counts: &mut Counts,
    ) -> sqlx::Result<Result<(), String>> {
        let now = self.clock.now();
        let (error, failure) = match self.issue(job, now).await {
            Ok(newly) => {
                queue::complete(&self.pool, job, now).await?;
                if newly {
                    counts.issued += 1;
                } else {
                    counts.already_issued += 1;
                }
                return Ok(Ok(()));
            }
            Err(Failed::Refused(reason)) => return Ok(Err(reason)),
            Err(Failed::Invalid(e)) => (e, Failure::Permanent),
            Err(Failed::Retry(e)) => (e, Failure::Transient { retry_after: None }),
        };
        tracing::warn!(job_id = %job.id, job_type = %job.job_type, error = %error, "invoice not issued");
        match queue::fail(&self.pool, job, now, &error, &failure).await? {
            Some(Decision::RetryAt(_)) => counts.retrying += 1,
            _ => counts.failed += 1,
        }
        Ok(Ok(()))
    }

    /// Issues the row's invoice; `Ok(false)` if it was issued already.
    async fn issue(&self, job: &QueuedJob, now: DateTime<Utc>) -> Result<bool, Failed> {
        let (order_id, party) = parse(job)?;
        let external_id = party.external_id(order_id);
        // An invoice issued already is done whatever became of its order since (as the
        // original, which looks at the invoice before the order): a cancellation after
        // issuing is the API's business (a credit note), not a reason to fail the job.
        if queries::already_issued(&self.pool, &external_id).await? {
            return Ok(false);
        }
        let order = queries::order(&self.pool, order_id)
            .await?
            .ok_or_else(|| Failed::Invalid(format!("order {order_id} not found")))?;
        if order.status != OrderStatus::Confirmed {
            return Err(Failed::Invalid(format!(
                "order {order_id} is {}, not confirmed",
                order.status
            )));
        }
        let (amounts, email) = self.bill(&order, party).await?;
        let result = self
            .issue_with_feu(&order, party, &external_id, &amounts, email, now)
            .await;
        if let Err(Failed::Invalid(e) | Failed::Retry(e) | Failed::Refused(e)) = &result {
            // A note for people; failing to write it must not change what the row's
            // failure was (a refusal would otherwise become a counted retry).
            if let Err(db) = queries::failed_attempt(&self.pool, &external_id, e).await {
                tracing::warn!(error = %db, "could not record the invoice's last error");
            }
        }
        result
    }

    async fn issue_with_feu(
        &self,
        order: &Order,
        party: Party,
        external_id: &str,
        amounts: &Amounts,
        mut email: OrderInvoice,
        now: DateTime<Utc>,
    ) -> Result<bool, Failed> {
        let path = party.pdf_path(order.id);
        let invoice = queries::pending(
            &self.pool,
            order.id,
            party.name(),
            party.seller(),
            external_id,
            amounts,
            now,
        )
        .await?;
        if invoice.status == InvoiceStatus::Issued && invoice.pdf_storage_path.is_some() {
            return Ok(false);
        }
        let short: String = order.id.to_string().chars().take(8).collect();
        let created = self
            .feu
            .create(&Comprobante {
                id_externo: external_id.to_string(),
                moneda: amounts.currency.clone(),
                fecha: now.with_timezone(&URUGUAY).date_naive(),
                concepto: format!(
                    "Comisión por intermediación ({}) - Orden {short}",
                    party.spanish()
                ),
                precio: amounts.base + amounts.vat,
                adenda: format!("Evento: {} | Orden: {}", order.event_name, order.id),
            })
            .await?;
        let pdf = self.feu.pdf(created.id).await?;
        self.settings
            .storage
            .put(&path, pdf, "application/pdf")
            .await
            .map_err(|e| Failed::Retry(format!("storing the PDF: {e}")))?;
        let recipient = party.seller().unwrap_or(order.buyer_user_id);
        email.attachment_refs = Some(vec![AttachmentRef {
            r#type: "storage".into(),
            storage_path: path.clone(),
            filename: Some(format!("factura-{}-{}.pdf", created.serie, created.numero)),
        }]);
        email.post_send_actions = Some(vec![PostSendAction {
            r#type: "markInvoiceEmailSent".into(),
            invoice_id: invoice.id,
        }]);
        let mut tx = self.pool.begin().await?;
        if queries::issued(&mut tx, invoice.id, &created.raw, &path, now).await? {
            let email = Notification {
                user_id: recipient,
                channels: vec![Channel::Email],
                actions: None,
                metadata: Metadata::OrderInvoice(email),
            };
            notify::insert(&mut tx, &[email], now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// What the invoice bills, and its email's fields: the buyer pays the platform's
    /// commission and its VAT on the whole order; a seller, on their tickets in it.
    async fn bill(&self, order: &Order, party: Party) -> Result<(Amounts, OrderInvoice), Failed> {
        let money = |d: Decimal| d.to_string();
        match party {
            Party::Buyer => {
                let items = queries::items(&self.pool, order.id)
                    .await?
                    .into_iter()
                    .map(|i| InvoiceItem {
                        ticket_wave_name: i.ticket_wave_name,
                        quantity: Count(i64::from(i.quantity)),
                        price_per_ticket: money(i.price_per_ticket),
                        subtotal: money(i.subtotal),
                    })
                    .collect();
                let email = OrderInvoice {
                    subtotal_amount: Some(money(order.subtotal_amount)),
                    platform_commission: Some(money(order.platform_commission)),
                    vat_on_commission: Some(money(order.vat_on_commission)),
                    total_amount: Some(money(order.total_amount)),
                    items: Some(items),
                    ..invoice_email(order, metadata::Party::Buyer)
                };
                let amounts = Amounts {
                    base: order.platform_commission,
                    vat: order.vat_on_commission,
                    currency: order.currency.clone(),
                };
                Ok((amounts, email))
            }
            Party::Seller(seller) => {
                let tickets = queries::seller_tickets(&self.pool, order.id, seller).await?;
                if tickets.is_empty() {
                    return Err(Failed::Invalid(format!(
                        "seller {seller} has no tickets in order {}",
                        order.id
                    )));
                }
                let sale = SellerSale::of(&tickets, self.settings.rates);
                // The API writes these with JavaScript's `String(n)`: "92.7", not "92.70".
                let text = |d: Decimal| d.normalize().to_string();
                let email = OrderInvoice {
                    seller_subtotal: Some(text(sale.subtotal)),
                    seller_commission: Some(text(sale.commission)),
                    seller_vat: Some(text(sale.vat)),
                    seller_amount: Some(text(sale.earned)),
                    ..invoice_email(order, metadata::Party::Seller)
                };
                let amounts = Amounts {
                    base: sale.commission,
                    vat: sale.vat,
                    currency: order.currency.clone(),
                };
                Ok((amounts, email))
            }
        }
    }
}

/// The invoice email's fields every party's carries; the rest are the party's own.
fn invoice_email(order: &Order, party: metadata::Party) -> OrderInvoice {
    OrderInvoice {
        order_id: order.id,
        party,
        event_name: Some(order.event_name.clone()),
        currency: Some(order.currency.clone()),
        subtotal_amount: None,
        platform_commission: None,
        vat_on_commission: None,
        total_amount: None,
        items: None,
        seller_subtotal: None,
        seller_commission: None,
        seller_vat: None,
        seller_amount: None,
        attachment_refs: None,
        post_send_actions: None,
    }
}

/// What a seller's invoice bills for their tickets in one order, as the API computes
/// it (apps/backend/src/services/invoices `issueInvoice`): each ticket's commission and
/// VAT from its price by the API's own arithmetic ([`money::seller_fees`]), summed and
/// rounded. What the seller earned is the earning stored for each ticket, the figure
/// their balance shows, and the API's arithmetic only where none is stored.
#[derive(Debug, Default, PartialEq)]
struct SellerSale {
    subtotal: Decimal,
    commission: Decimal,
    vat: Decimal,
    earned: Decimal,
}

impl SellerSale {
    fn of(tickets: &[queries::SoldTicket], rates: Rates) -> SellerSale {
        let mut sale = SellerSale::default();
        for t in tickets {
            let fees = money::seller_fees(t.price, rates);
            sale.subtotal += t.price;
            sale.commission += fees.commission;
            sale.vat += fees.vat;
            sale.earned += t.seller_amount.unwrap_or(fees.seller_amount);
        }
        SellerSale {
            subtotal: money::round2(sale.subtotal),
            commission: money::round2(sale.commission),
            vat: money::round2(sale.vat),
            earned: money::round2(sale.earned),
        }
    }
}

/// The row's order and party, or why its payload is not one.
fn parse(job: &QueuedJob) -> Result<(Uuid, Party), Failed> {
    let invalid = |e: serde_json::Error| Failed::Invalid(format!("invalid payload: {e}"));
    match job.job_type.as_str() {
        "notify-order-confirmed" => {
            let p: BuyerPayload = serde_json::from_value(job.payload.clone()).map_err(invalid)?;
            Ok((p.order_id, Party::Buyer))
        }
        "notify-seller-ticket-sold" => {
            let p: SellerPayload = serde_json::from_value(job.payload.clone()).map_err(invalid)?;
            Ok((p.order_id, Party::Seller(p.seller_user_id)))
        }
        other => Err(Failed::Invalid(format!("no handler for job type {other}"))),
    }
}

impl Counts {
    fn summary(&self) -> Summary {
        let details = json!({
            "issued": self.issued,
            "already_issued": self.already_issued,
            "failed": self.failed,
            "retrying": self.retrying,
            "reclaimed": self.reclaimed,
            "requeued": self.requeued,
        });
        Summary {
            processed: self.issued + self.already_issued + self.failed + self.retrying,
            succeeded: self.issued + self.already_issued,
            failed: self.failed + self.retrying,
            details: details.as_object().cloned().unwrap_or_default(),
        }
    }
}

impl Job for Invoices {
    fn run(&self, cx: RunContext) -> BoxFuture<'static, Result<Summary, JobError>> {
        let job = self.clone();
        async move { job.run_once(&cx).await }.boxed()
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        vec![
            Endpoint {
                name: "FEU auth",
                url: self.settings.feu.auth_url.clone(),
            },
            Endpoint {
                name: "FEU API",
                url: self.settings.feu.api_base.clone(),
            },
        ]
    }
}
