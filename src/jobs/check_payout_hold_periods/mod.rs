//! `check-payout-hold-periods`: sellers' earnings leave their hold, or are retained.
//!
//! Every hour, two steps, as the original (apps/backend/src/cronjobs/
//! check-payout-hold-periods.ts):
//! 1. **Retention.** A pending earning of an ended event whose ticket, sold on a
//!    confirmed order, never got a document: the earning is `retained`
//!    (`missing_document`), the buyer's reservation `cancelled`, a support case opened
//!    once per reservation (`ticket_reports` + its pending `ticket_report_refunds`), and
//!    the seller (`seller_earnings_retained`, debounced per seller and event), the buyer
//!    (`buyer_ticket_cancelled`) and, for a new case, the buyer again
//!    (`ticket_report_created`) told; one transaction per earning.
//! 2. **Release.** A pending earning whose event ended at least the hold ago
//!    (`PAYOUT_HOLD_PERIOD_HOURS`, 48) with no report open on its sale becomes
//!    `available`, 50 to a transaction, with one `seller_earnings_available` per seller
//!    per transaction carrying per-currency totals (exact decimals).
//!
//! Every change is guarded by the row's status under its lock ([`queries`]), so a second
//! run or the API acting at the same instant changes nothing twice. Differences from the
//! original, on purpose: both steps go on until nothing is left (the original stopped at
//! 100 a run, so a backlog took hours); a refund row carries the ticket's price and the
//! order's currency (the original left them null, which this schema does not allow); a
//! report open on the listing or the listing ticket also holds the money.

mod queries;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::{self, Env};
use crate::jobs::{Job, JobError, Registration, RunContext, Summary};
use crate::notify::metadata::{
    BuyerTicketCancelled, CancelReason, CaseType, Count, Currency, EarningsAvailable, EarningsLine,
    EarningsRetained, EntityType, ReportCreated, RetainedReason,
};
use crate::notify::{self, Debounced, IN_APP_AND_EMAIL, Metadata, Notification, action, label};
use queries::{Released, Undelivered};

pub const REGISTRATION: Registration = Registration {
    name: "check-payout-hold-periods",
    build: |deps| {
        let settings = Settings::from_env(&*deps.env)?;
        let job = PayoutHolds::new(deps.pool.clone(), settings, deps.clock.clone());
        Ok(Arc::new(job) as Arc<dyn Job>)
    },
    requeue: None,
};

/// Earnings examined per query in the retention step.
const RETAIN_BATCH: i64 = 100;
/// Earnings released per transaction, as the original.
const RELEASE_BATCH: i64 = 50;
/// The original's debounce window for `seller_earnings_retained`.
const RETAINED_WINDOW: TimeDelta = TimeDelta::minutes(5);

/// What the job reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `PAYOUT_HOLD_PERIOD_HOURS`: how long after its event an earning is held. 48.
    pub hold_hours: i32,
    /// `APP_BASE_URL`, for links in notifications. Defaults to `https://revendiste.com`.
    pub app_base_url: String,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, config::Error> {
        Ok(Settings {
            hold_hours: config::parse(env, "PAYOUT_HOLD_PERIOD_HOURS", 48i32, 0..=24 * 60)?,
            app_base_url: config::app_base_url(env),
        })
    }
}

/// The job.
#[derive(Clone)]
pub struct PayoutHolds {
    pool: PgPool,
    clock: Clock,
    settings: Settings,
}

/// What a run did.
#[derive(Debug, Default)]
struct Counts {
    retained: u64,
    cases_opened: u64,
    released: u64,
    sellers_notified: u64,
    /// Changed by another writer between our read and our write.
    raced: u64,
    failed: u64,
}

impl PayoutHolds {
    pub fn new(pool: PgPool, settings: Settings, clock: Clock) -> PayoutHolds {
        PayoutHolds {
            pool,
            clock,
            settings,
        }
    }

    /// Retention, then release. A row that cannot be written is counted failed and left
    /// for the next run; the run then exits 1.
    pub async fn run_once(&self, cx: &RunContext) -> Result<Summary, JobError> {
        let now = self.clock.now();
        let mut counts = Counts::default();
        // An earning whose retention failed is not released in the same run: its
        // ticket was never delivered, and the release does not look at documents.
        let retained = self.retain_all(cx, now, &mut counts).await;
        let released = match retained {
            Ok(not_retained) => self.release_all(cx, now, not_retained, &mut counts).await,
            Err(e) => Err(e),
        };
        let summary = counts.summary();
        match released {
            Ok(()) if counts.failed == 0 => Ok(summary),
            Ok(()) => Err(JobError {
                error: anyhow::anyhow!("{} earning(s) could not be processed", counts.failed),
                summary,
            }),
            Err(error) => Err(JobError { summary, error }),
        }
    }

    /// Retains every undelivered earning; the ids whose retention failed.
    async fn retain_all(
        &self,
        cx: &RunContext,
        now: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<Vec<Uuid>> {
        let mut failed: Vec<Uuid> = Vec::new();
        while !cx.cancel.is_cancelled() {
            let batch = queries::undelivered(&self.pool, now, &failed, RETAIN_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for u in &batch {
                match self.retain(u, now).await {
                    Ok(Some(case_opened)) => {
                        counts.retained += 1;
                        counts.cases_opened += u64::from(case_opened);
                    }
                    Ok(None) => counts.raced += 1,
                    Err(e) => {
                        tracing::error!(earning_id = %u.earning_id, error = %e, "could not retain the earning");
                        counts.failed += 1;
                        failed.push(u.earning_id);
                    }
                }
                let s = counts.summary();
                cx.progress.set(s.processed, s.succeeded, s.failed);
            }
        }
        Ok(failed)
    }

    /// One earning's retention in one transaction: `Some(case opened)`, or `None` if
    /// another writer had moved it.
    async fn retain(&self, u: &Undelivered, now: DateTime<Utc>) -> sqlx::Result<Option<bool>> {
        let mut tx = self.pool.begin().await?;
        if !queries::retain(&mut tx, u, now).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let earnings = self.link(
            "view_earnings",
            label::VIEW_EARNINGS,
            "/cuenta/retiro".into(),
        );
        let seller = Debounced {
            // The original's key; the column holds 255 characters and an event name
            // can be longer.
            key: format!(
                "seller_earnings_retained:{}:{}:missing_document",
                u.seller_user_id, u.event_name
            )
            .chars()
            .take(255)
            .collect(),
            user_id: u.seller_user_id,
            channels: IN_APP_AND_EMAIL.to_vec(),
            window: RETAINED_WINDOW,
            metadata: Metadata::SellerEarningsRetained(EarningsRetained {
                event_name: u.event_name.clone(),
                ticket_count: Count(1),
                reason: RetainedReason::MissingDocument,
                total_amount: None,
                currency: None,
            }),
            actions: Some(earnings),
        };
        notify::debounce(&mut tx, &seller, now).await?;
        let mut told = vec![Notification {
            user_id: u.buyer_user_id,
            channels: IN_APP_AND_EMAIL.to_vec(),
            actions: Some(self.link(
                "view_order",
                label::VIEW_MY_TICKETS,
                "/cuenta/entradas".into(),
            )),
            metadata: Metadata::BuyerTicketCancelled(BuyerTicketCancelled {
                event_name: u.event_name.clone(),
                ticket_count: Count(1),
                reason: CancelReason::SellerFailedToUpload,
            }),
        }];
        let case = queries::open_case(&mut tx, u, now).await?;
        if let Some(report) = case {
            told.push(Notification {
                user_id: u.buyer_user_id,
                channels: IN_APP_AND_EMAIL.to_vec(),
                actions: Some(self.link(
                    "view_report",
                    label::VIEW_MY_CASE,
                    format!("/cuenta/reportes/{report}"),
                )),
                // `isAutoCase` makes the email tell the buyer we opened the case for
                // them (packages/transactional/emails/ticket-report-created-email.tsx).
                metadata: Metadata::TicketReportCreated(ReportCreated {
                    ticket_report_id: report,
                    case_type: CaseType::TicketNotReceived,
                    reported_by_user_id: u.buyer_user_id,
                    entity_type: EntityType::OrderTicketReservation,
                    entity_id: u.reservation_id,
                    is_auto_case: Some(true),
                    event_name: Some(u.event_name.clone()),
                }),
            });
        }
        notify::insert(&mut tx, &told, now).await?;
        tx.commit().await?;
        Ok(Some(case.is_some()))
    }

    async fn release_all(
        &self,
        cx: &RunContext,
        now: DateTime<Utc>,
        skip: Vec<Uuid>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let hold = self.settings.hold_hours;
        let mut seen = skip;
        while !cx.cancel.is_cancelled() {
            let ids = queries::releasable(&self.pool, now, hold, &seen, RELEASE_BATCH).await?;
            if ids.is_empty() {
                break;
            }
            seen.extend(&ids);
            match self.release(&ids, now).await {
                Ok((released, sellers)) => {
                    counts.released += released;
                    counts.sellers_notified += sellers;
                    counts.raced += ids.len() as u64 - released;
                }
                Err(e) => {
                    tracing::error!(earnings = ids.len(), error = %e, "could not release a batch of earnings");
                    counts.failed += ids.len() as u64;
                }
            }
            let s = counts.summary();
            cx.progress.set(s.processed, s.succeeded, s.failed);
        }
        Ok(())
    }

    /// One batch in one transaction: the earnings released and each seller told their
    /// totals per currency. (released, sellers told)
    async fn release(&self, ids: &[Uuid], now: DateTime<Utc>) -> anyhow::Result<(u64, u64)> {
        let mut tx = self.pool.begin().await?;
        let released = queries::release(&mut tx, ids, now, self.settings.hold_hours).await?;
        let notifications: Vec<Notification> = totals(&released)?
            .into_iter()
            .map(|(seller, lines)| Notification {
                user_id: seller,
                channels: IN_APP_AND_EMAIL.to_vec(),
                actions: Some(self.link(
                    "view_earnings",
                    label::REQUEST_WITHDRAWAL,
                    "/cuenta/retiro".into(),
                )),
                metadata: Metadata::SellerEarningsAvailable(EarningsAvailable { lines }),
            })
            .collect();
        notify::insert(&mut tx, &notifications, now).await?;
        tx.commit().await?;
        Ok((released.len() as u64, notifications.len() as u64))
    }

    fn link(&self, kind: &str, label: &str, path: String) -> serde_json::Value {
        action(kind, label, format!("{}{path}", self.settings.app_base_url))
    }
}

/// Per seller, per currency: the amount released (two decimals, exact) and how many
/// earnings make it.
fn totals(released: &[Released]) -> anyhow::Result<BTreeMap<Uuid, Vec<EarningsLine>>> {
    let mut sums: BTreeMap<Uuid, BTreeMap<&str, (Decimal, i64)>> = BTreeMap::new();
    for r in released {
        let line = sums
            .entry(r.seller_user_id)
            .or_default()
            .entry(r.currency.as_str())
            .or_default();
        line.0 += r.seller_amount;
        line.1 += 1;
    }
    let mut by_seller = BTreeMap::new();
    for (seller, lines) in sums {
        let mut out = Vec::new();
        for (currency, (amount, count)) in lines {
            // The column's enum (event_ticket_currency) is the schemas' list; this fires
            // only if the database learns a currency before this code does.
            let Some(currency) = Currency::parse(currency) else {
                anyhow::bail!(
                    "seller {seller}'s earnings are in currency `{currency}`, which the notification schemas do not know"
                );
            };
            let amount = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            out.push(EarningsLine {
                currency,
                amount: format!("{amount:.2}"),
                earning_count: Count(count),
            });
        }
        by_seller.insert(seller, out);
    }
    Ok(by_seller)
}

impl Counts {
    fn summary(&self) -> Summary {
        let details = json!({
            "retained": self.retained,
            "cases_opened": self.cases_opened,
            "released": self.released,
            "sellers_notified": self.sellers_notified,
            "raced": self.raced,
            "failed": self.failed,
        });
        Summary {
            processed: self.retained + self.released + self.raced + self.failed,
            succeeded: self.retained + self.released + self.raced,
            failed: self.failed,
            details: details.as_object().cloned().unwrap_or_default(),
        }
    }
}

impl Job for PayoutHolds {
    fn run(&self, cx: RunContext) -> BoxFuture<'static, Result<Summary, JobError>> {
        let job = self.clone();
        async move { job.run_once(&cx).await }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_exact_per_seller_and_currency() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let r = |seller, amount: &str, currency: &str| Released {
            seller_user_id: seller,
            seller_amount: amount.parse().unwrap(),
            currency: currency.into(),
        };
        let t = totals(&[
            r(a, "0.10", "UYU"),
            r(a, "0.20", "UYU"),
            r(a, "926.8", "UYU"),
            r(a, "50", "USD"),
            r(b, "1", "UYU"),
        ])
        .unwrap();
        assert_eq!(
            serde_json::to_value(&t[&a]).unwrap(),
            json!([
                {"currency": "USD", "amount": "50.00", "earningCount": 1},
                {"currency": "UYU", "amount": "927.10", "earningCount": 3},
            ])
        );
        assert_eq!(t[&b].len(), 1);
    }
}
