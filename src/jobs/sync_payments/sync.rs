//! Phase A: ask dLocal about every pending payment and write what it says.
//!
//! Provider calls run with bounded concurrency; their answers are written in chunks as
//! they arrive. A payment whose status did not change is refreshed in one batched
//! statement with the rest of its chunk. A payment whose status changed gets its own
//! transaction: the order is locked first, then the payment, and both are re-checked
//! under the locks, so a webhook handling the same payment at the same moment cannot
//! make anything happen twice. Failures back off per payment (`backoff`).

use std::collections::HashSet;

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use super::dlocal::{self, DlocalError, DlocalPayment, PaymentStatus};
use super::queries::{self, Candidate, Event, LockedOrder, Refresh};
use super::{Counts, SyncPayments, followups};
use crate::http::Transient;
use crate::jobs::Progress;
use crate::money;
use crate::statuses::OrderStatus;

/// Answers are written in chunks of up to this many, or whatever arrived within
/// `WRITE_EVERY`: big enough that one statement serves many payments (at 25 calls in
/// flight a second fills most of a chunk), and a stopped run still writes what it holds;
/// a killed one loses at most a second of answers, which the next run asks for again.
const WRITE_CHUNK: usize = 200;
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// The checkout page is nudged once a payment has been pending this long (10 minutes
/// of dLocal expiry + 5 minutes of grace, as the original).
const NUDGE_AFTER_MINUTES: i64 = 15;

/// What became of one payment.
enum Fetched {
    Answer(Box<DlocalPayment>),
    /// dLocal answered, and the answer cannot be applied (404, amount mismatch, 4xx).
    Failed(String),
    /// No usable answer: network, timeout, 5xx, 429 after the retries (with the wait
    /// dLocal asked for), unreadable body.
    Unanswered(String, Option<Duration>),
    /// dLocal refused our credentials (401, 403): nothing wrong with the payment, so it
    /// is not backed off; the run fails so that someone fixes the keys.
    Refused(String),
}

/// A chunk's answers, sorted for writing.
#[derive(Default)]
struct Sorted {
    unchanged: Vec<(Candidate, Box<DlocalPayment>)>,
    changed: Vec<(Candidate, Box<DlocalPayment>, PaymentStatus)>,
    failures: Vec<queries::Backoff>,
}

impl SyncPayments {
    pub(super) async fn sync_payments(
        &self,
        candidates: Vec<Candidate>,
        cancel: &tokio_util::sync::CancellationToken,
        progress: &Progress,
        now: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<Option<String>> {
        // Fetching and writing run side by side, joined by a bounded channel: a chunk's
        // transactions never hold up the provider calls. On cancellation no new call
        // starts and calls in flight are dropped unwritten (the next run asks again);
        // answers already in hand are still written.
        let (sender, receiver) =
            tokio::sync::mpsc::channel::<(Candidate, Fetched)>(2 * WRITE_CHUNK);
        let fetch = async move {
            let answers = futures::stream::iter(candidates)
                .take_until(cancel.cancelled())
                .map(|c| async move {
                    tokio::select! {
                        fetched = self.fetch(&c, now) => Some((c, fetched)),
                        _ = cancel.cancelled() => None,
                    }
                })
                .buffer_unordered(self.settings.concurrency)
                .filter_map(std::future::ready);
            futures::pin_mut!(answers);
            while let Some(answer) = answers.next().await {
                if sender.send(answer).await.is_err() {
                    break; // the writer failed and is gone
                }
            }
        };
        let tally = &mut *counts;
        let write =
            async move {
                let received = futures::stream::unfold(receiver, |mut r| async move {
                    r.recv().await.map(|a| (a, r))
                });
                let chunks =
                    tokio_stream::StreamExt::chunks_timeout(received, WRITE_CHUNK, WRITE_EVERY);
                futures::pin_mut!(chunks);
                while let Some(chunk) = chunks.next().await {
                    self.write_chunk(chunk, now, tally).await?;
                    tally.publish(progress);
                }
                anyhow::Ok(())
            };
        let ((), written) = tokio::join!(fetch, write);
        written?;
        Ok(provider_failure(counts))
    }

    /// One provider call, plus the checkout nudge when the payment lingers.
    async fn fetch(&self, c: &Candidate, now: DateTime<Utc>) -> Fetched {
        match self.dlocal.get_payment(&c.provider_payment_id).await {
            Ok(p) => {
                if let Err(reason) = check_amount(c, &p) {
                    return Fetched::Failed(reason);
                }
                let lingering =
                    now - c.created_at >= chrono::TimeDelta::minutes(NUDGE_AFTER_MINUTES);
                if lingering
                    && p.status == "PENDING"
                    && let Some(url) = p.redirect_url.as_deref()
                {
                    self.dlocal.nudge_checkout(url).await;
                }
                Fetched::Answer(Box::new(p))
            }
            Err(DlocalError::NotFound) => {
                Fetched::Failed("dLocal does not know this payment (404)".into())
            }
            Err(e @ DlocalError::Status(401 | 403, _)) => Fetched::Refused(e.to_string()),
            Err(e @ DlocalError::Status(400..=499, _)) => Fetched::Failed(e.to_string()),
            // A 429 carries the wait dLocal asked for.
            Err(e) => Fetched::Unanswered(e.to_string(), e.retry_after()),
        }
    }

    async fn write_chunk(
        &self,
        chunk: Vec<(Candidate, Fetched)>,
        now: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let mut sorted = self.sort(chunk, now, counts);
        // Status changes are independent transactions (each locks its own order, then
        // payment), so a few run at once: one connection's round trips no longer set
        // the pace when many payments change together.
        let applied: Vec<_> = futures::stream::iter(sorted.changed)
            .map(|(c, p, status)| async move {
                let result = self.apply_change_retried(&c, &p, status, now).await;
                (c, result)
            })
            .buffer_unordered(self.settings.writers)
            .collect()
            .await;
        for (c, result) in applied {
            match result {
                Ok(applied) => {
                    counts.add(applied);
                    counts.payments_synced += 1;
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    tracing::error!(payment_id = %c.id, error = %reason, "payment transition failed");
                    sorted.failures.push(self.backoff(&c, &reason, None, now));
                }
            }
        }
        counts.payments_failed += sorted.failures.len() as u64;
        queries::record_failures(&self.pool, &sorted.failures, now).await?;
        self.refresh_all(sorted.unchanged, now, counts).await
    }

    /// Each answer of a chunk sorted: unchanged, changed (and to what), or failed.
    fn sort(
        &self,
        chunk: Vec<(Candidate, Fetched)>,
        now: DateTime<Utc>,
        counts: &mut Counts,
    ) -> Sorted {
        let mut sorted = Sorted::default();
        for (c, fetched) in chunk {
            counts.payments += 1;
            counts.answered +=
                u64::from(matches!(fetched, Fetched::Answer(_) | Fetched::Failed(_)));
            let (reason, retry_after) = match fetched {
                Fetched::Failed(reason) => (reason, None),
                Fetched::Unanswered(reason, retry_after) => (reason, retry_after),
                Fetched::Refused(reason) => {
                    // Not backed off: if the keys are wrong, nothing is wrong with the
                    // payment, and it goes through as soon as they are fixed.
                    tracing::error!(payment_id = %c.id, error = %reason, "dLocal refused the query");
                    counts.payments_failed += 1;
                    counts.credentials_refused = Some(reason);
                    continue;
                }
                Fetched::Answer(p) => {
                    let (mut status, known) = p.status();
                    let ours = PaymentStatus::parse(&c.status);
                    // dLocal has no "processing": a PENDING answer does not demote ours.
                    if status == PaymentStatus::Pending && ours == Some(PaymentStatus::Processing) {
                        status = PaymentStatus::Processing;
                    }
                    if !known {
                        counts.unknown_statuses += 1;
                        tracing::warn!(payment_id = %c.id, dlocal_status = %p.status, "unknown dLocal status, kept as pending");
                    }
                    if ours == Some(status) {
                        sorted.unchanged.push((c, p));
                    } else {
                        sorted.changed.push((c, p, status));
                    }
                    continue;
                }
            };
            tracing::error!(payment_id = %c.id, provider_payment_id = %c.provider_payment_id, error = %reason, "payment sync failed");
            sorted
                .failures
                .push(self.backoff(&c, &reason, retry_after, now));
        }
        sorted
    }

    /// The unchanged payments refreshed in one batch; if the database refuses it, row by
    /// row, backing off the rows that still fail: one bad row must not fail the batch,
    /// nor every later run.
    async fn refresh_all(
        &self,
        unchanged: Vec<(Candidate, Box<DlocalPayment>)>,
        now: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let Err(e) = self.refresh_unchanged(&unchanged, now, counts).await else {
            return Ok(());
        };
        tracing::warn!(
            error = format!("{e:#}"),
            rows = unchanged.len(),
            "batched refresh failed; retrying row by row"
        );
        let mut failures = Vec::new();
        for row in unchanged {
            if let Err(e) = self
                .refresh_unchanged(std::slice::from_ref(&row), now, counts)
                .await
            {
                let reason = format!("{e:#}");
                tracing::error!(payment_id = %row.0.id, error = %reason, "payment refresh failed");
                failures.push(self.backoff(&row.0, &reason, None, now));
            }
        }
        counts.payments_failed += failures.len() as u64;
        queries::record_failures(&self.pool, &failures, now).await?;
        Ok(())
    }

    /// The backoff state of a payment that failed once more. A payment is never given up
    /// (its order's expiry ends its retries), so a failure of any kind waits its turn on
    /// the ladder, or as long as dLocal asked when it rate-limited us, but never longer
    /// than the ladder's longest wait: a provider's long Retry-After must not park pending
    /// payments past what a failing one already waits.
    fn backoff(
        &self,
        c: &Candidate,
        reason: &str,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> queries::Backoff {
        let failures = c.failures.saturating_add(1);
        queries::Backoff {
            payment_id: c.id,
            failures,
            next_attempt_at: self.settings.backoff.retry_at(
                now,
                failures.unsigned_abs(),
                retry_after.map(|asked| asked.min(self.settings.backoff.max)),
            ),
            last_error: truncate(reason, 1000),
        }
    }

    /// Payments whose status is what we already had: one batched refresh, one batch of
    /// `status_synced` events, backoff cleared; all in one transaction.
    async fn refresh_unchanged(
        &self,
        rows: &[(Candidate, Box<DlocalPayment>)],
        now: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let refreshes: Vec<Refresh> = rows
            .iter()
            .map(|(c, p)| {
                refresh(
                    c,
                    p,
                    PaymentStatus::parse(&c.status).unwrap_or(p.status().0),
                )
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        let updated: HashSet<Uuid> = queries::refresh_payments(&mut tx, &refreshes, now)
            .await?
            .into_iter()
            .collect();
        let events: Vec<Event> = rows
            .iter()
            .filter(|(c, _)| updated.contains(&c.id))
            .map(|(c, p)| synced_event(c.id, p))
            .collect();
        queries::insert_events(&mut tx, &events, now).await?;
        let recovered: Vec<Uuid> = rows
            .iter()
            .filter(|(c, _)| c.failures > 0 && updated.contains(&c.id))
            .map(|(c, _)| c.id)
            .collect();
        queries::clear_failures(&mut tx, &recovered).await?;
        tx.commit().await?;
        counts.payments_synced += updated.len() as u64;
        // Rows another writer moved in the meantime are theirs; the next run sees them.
        counts.payments_raced += (rows.len() - updated.len()) as u64;
        Ok(())
    }

    /// [`Self::apply_change`], once more if PostgreSQL chose it as a deadlock's victim
    /// (writers running side by side can meet on a listing two orders share): the
    /// transaction was rolled back whole, so trying again is safe.
    async fn apply_change_retried(
        &self,
        c: &Candidate,
        p: &DlocalPayment,
        status: PaymentStatus,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Applied> {
        // A deadlock with another writer rolled the transaction back: run it again.
        crate::database::retry(
            "a payment's status change",
            Some(1),
            crate::database::is_deadlock,
            || self.apply_change(c, p, status, now),
        )
        .await
    }

    /// A status change: payment, events, order transition and follow-up rows in one
    /// transaction, under the order's and the payment's row locks.
    async fn apply_change(
        &self,
        c: &Candidate,
        p: &DlocalPayment,
        status: PaymentStatus,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Applied> {
        let mut applied = Applied::default();
        let mut tx = self.pool.begin().await?;
        let Some(order) = queries::lock_orders(&mut tx, &[c.order_id]).await?.pop() else {
            anyhow::bail!("order {} of payment {} not found", c.order_id, c.id);
        };
        let current = queries::lock_payment(&mut tx, c.id).await?;
        if current.as_deref() != Some(c.status.as_str()) {
            // A webhook (or another run) moved this payment since we read it: what it
            // wrote stands, and it did the order's transition.
            applied.raced = true;
            tx.rollback().await?;
            return Ok(applied);
        }
        queries::refresh_payments(&mut tx, &[refresh(c, p, status)], now).await?;
        let mut events = vec![
            Event {
                payment_id: c.id,
                event_type: "status_change",
                from_status: Some(c.status.clone()),
                to_status: Some(status.as_str()),
                event_data: json!({ "fullResponse": p.raw }),
            },
            synced_event(c.id, p),
        ];
        match status {
            PaymentStatus::Paid => match order.status {
                OrderStatus::Pending => {
                    self.confirm(&mut tx, &order, now).await?;
                    applied.confirmed = true;
                }
                OrderStatus::Confirmed => {} // already done, by a webhook or an earlier run
                closed @ (OrderStatus::Cancelled | OrderStatus::Expired) => {
                    applied.anomaly = true;
                    events.push(paid_after_close(c, &order, closed.as_str()));
                }
            },
            PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::Expired
                if order.status == OrderStatus::Pending =>
            {
                self.cancel(&mut tx, &order, p, status, now).await?;
                applied.cancelled = true;
            }
            _ => {}
        }
        queries::insert_events(&mut tx, &events, now).await?;
        if c.failures > 0 {
            queries::clear_failures(&mut tx, &[c.id]).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Cancels a locked, pending order whose payment failed, was cancelled or expired:
    /// its reservations released, and the buyer told (unless the event is over).
    async fn cancel(
        &self,
        tx: &mut sqlx::PgConnection,
        order: &LockedOrder,
        p: &DlocalPayment,
        status: PaymentStatus,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        queries::set_order_status(tx, &[order.id], OrderStatus::Cancelled, now).await?;
        queries::release_reservations(tx, &[order.id], now).await?;
        let notification = if status == PaymentStatus::Expired {
            followups::on_order_expired(order, now)
        } else {
            followups::on_payment_failed(
                order,
                p.rejected_reason.as_deref(),
                &self.settings.app_base_url,
                now,
            )
        };
        crate::notify::insert(tx, notification.as_slice(), now).await?;
        Ok(())
    }

    /// Confirms a locked, pending order: tickets sold, seller earnings, reservations
    /// retired, sold-out listings closed, notifications and invoice jobs queued.
    async fn confirm(
        &self,
        tx: &mut sqlx::PgConnection,
        order: &LockedOrder,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        queries::set_order_status(tx, &[order.id], OrderStatus::Confirmed, now).await?;
        let tickets = queries::sell_reserved_tickets(tx, order.id, now).await?;
        let earnings: Vec<queries::Earning> = tickets
            .iter()
            .map(|t| queries::Earning {
                seller_user_id: t.seller_user_id,
                listing_ticket_id: t.id,
                seller_amount: money::seller_amount(t.price, self.settings.rates),
                currency: t.currency.clone(),
            })
            .collect();
        queries::insert_earnings(tx, &earnings, now).await?;
        queries::release_reservations(tx, &[order.id], now).await?;
        let mut listings: Vec<Uuid> = tickets.iter().map(|t| t.listing_id).collect();
        listings.sort();
        listings.dedup();
        queries::close_sold_out_listings(tx, &listings, now).await?;
        let items = queries::order_items(tx, order.id).await?;
        let sales = followups::sales_by_seller(&tickets);
        let (notifications, jobs) =
            followups::on_confirmed(order, &items, &sales, &self.settings.app_base_url, now);
        crate::notify::insert(tx, &notifications, now).await?;
        crate::queue::enqueue(tx, &jobs, now).await?;
        Ok(())
    }
}

/// Why the run failed although each payment's failure is its own: dLocal answered none
/// of the run's queries, refusing our credentials or not answering at all. A refusal
/// among answers (one payment's 403) is that payment's, not the run's.
fn provider_failure(counts: &super::Counts) -> Option<String> {
    if counts.payments == 0 || counts.answered > 0 {
        return None;
    }
    Some(match &counts.credentials_refused {
        Some(reason) => format!(
            "dLocal refused our credentials ({reason}); check DLOCAL_API_KEY and DLOCAL_SECRET_KEY"
        ),
        None => format!(
            "dLocal answered none of {} payment queries (see the errors above)",
            counts.payments
        ),
    })
}

/// What one status change did to its order (committed, or nothing when `raced`).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Applied {
    pub raced: bool,
    pub confirmed: bool,
    pub cancelled: bool,
    pub anomaly: bool,
}

/// The original refuses to act on a payment whose amount differs from the order's total.
fn check_amount(c: &Candidate, p: &DlocalPayment) -> Result<(), String> {
    if money::round2(p.amount) == money::round2(c.order_total) {
        Ok(())
    } else {
        Err(format!(
            "amount mismatch: dLocal says {} {}, the order totals {}",
            p.amount, p.currency, c.order_total
        ))
    }
}

fn synced_event(payment_id: Uuid, p: &DlocalPayment) -> Event {
    Event {
        payment_id,
        event_type: "status_synced",
        from_status: None,
        to_status: None,
        event_data: json!({ "fullResponse": p.raw }),
    }
}

/// Text cut to a column's width, on a character boundary.
fn fit(value: Option<&str>, max: usize) -> Option<String> {
    value.map(|v| v.chars().take(max).collect())
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn refresh(c: &Candidate, p: &DlocalPayment, status: PaymentStatus) -> Refresh {
    let exchange_rate = money::exchange_rate(
        p.amount,
        &p.currency,
        p.balance_amount,
        p.balance_fee,
        p.balance_currency.as_deref(),
    );
    let approved_at = if status == PaymentStatus::Paid {
        p.approved_date
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&Utc))
    } else {
        None
    };
    let payer = p.payer.as_ref();
    Refresh {
        id: c.id,
        expected_status: c.status.clone(),
        status: status.as_str(),
        payment_method: p.payment_type.as_deref().and_then(dlocal::payment_method),
        balance_amount: p.balance_amount,
        balance_fee: p.balance_fee,
        balance_currency: fit(p.balance_currency.as_deref(), 3),
        exchange_rate,
        payer_email: fit(payer.and_then(|x| x.email.as_deref()), 255),
        payer_first_name: fit(payer.and_then(|x| x.first_name.as_deref()), 255),
        payer_last_name: fit(payer.and_then(|x| x.last_name.as_deref()), 255),
        payer_document_type: fit(payer.and_then(|x| x.document_type.as_deref()), 50),
        payer_document: fit(payer.and_then(|x| x.document.as_deref()), 255),
        payer_country: fit(p.country.as_deref(), 2),
        failure_reason: fit(p.rejected_reason.as_deref(), 255),
        approved_at,
        provider_metadata: json!({ "fullResponse": p.raw }),
    }
}

/// Money captured on an order that already let its tickets go: a person must refund or
/// honour it. The original silently flipped the order to confirmed with nothing
/// delivered; here it is logged and recorded for manual review, the order untouched.
fn paid_after_close(c: &Candidate, order: &LockedOrder, order_status: &str) -> Event {
    tracing::error!(
        payment_id = %c.id, order_id = %order.id, order_status,
        "ANOMALY: payment PAID on an order that is no longer pending; left for manual review"
    );
    Event {
        payment_id: c.id,
        event_type: "manual_review_required",
        from_status: Some(c.status.clone()),
        to_status: Some(PaymentStatus::Paid.as_str()),
        event_data: json!({
            "reason": "paid_after_order_closed",
            "orderStatus": order_status,
            "orderId": order.id,
        }),
    }
}
