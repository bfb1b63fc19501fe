//! sync-payments: reconcile pending dLocal Go payments with the provider and expire
//! orders whose reservation ran out, which releases their tickets back to sale.
//!
//! Webhooks usually update a payment, but they get lost, arrive late, or never fire for
//! expirations; this job is the safety net. Phase A (`sync`) asks dLocal about every
//! pending payment and applies what it says; phase B (`expiry`) expires pending orders
//! that can no longer be paid. The contract is the original's (mathfalcon/revendiste
//! apps/backend/src/cronjobs/sync-payments-and-expire-orders.ts and
//! src/services/payments/adapters/PaymentWebhookAdapter.ts) with its gaps fixed:
//! transitions are guarded by the order's status under a row lock,
//! a late PAID on a closed order is an anomaly for a person instead of a silent
//! confirmation, stuck payments back off, and follow-up work is written in the same
//! transaction as the confirmation.
//!
//! Boundaries: `dlocal` speaks HTTP, `queries` speaks SQL, `crate::money` rounds, `followups`
//! shapes notification and job rows. This module wires them and reads settings.

mod dlocal;
mod expiry;
mod followups;
mod queries;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use secrecy::SecretString;
use serde_json::json;
use sqlx::PgPool;

pub use dlocal::{DlocalPayment, PaymentStatus};

use super::{Deps, Endpoint, Job, JobError, Progress, Registration, RunContext, Summary};
use crate::clock::Clock;
use crate::config::{self, Env};
use crate::failure::Backoff;
use crate::http::{RetryPolicy, Timeouts};
use crate::money;

pub const REGISTRATION: Registration = Registration {
    name: "sync-payments",
    build: |deps| Ok(Arc::new(SyncPayments::from_deps(deps)?)),
    requeue: None,
};

/// What sync-payments reads from the environment.
#[derive(Clone)]
pub struct Settings {
    /// `DLOCAL_BASE_URL`, required (production `https://api.dlocalgo.com`).
    pub dlocal_base_url: String,
    /// `DLOCAL_API_KEY`, required.
    pub dlocal_api_key: SecretString,
    /// `DLOCAL_SECRET_KEY`, required.
    pub dlocal_secret_key: SecretString,
    /// `APP_BASE_URL`, for links in notifications. Defaults to `https://revendiste.com`.
    pub app_base_url: String,
    /// `SYNC_PAYMENTS_BATCH_LIMIT`: payments (and orders) per run. Defaults to 500.
    pub batch_limit: i64,
    /// `SYNC_PAYMENTS_CONCURRENCY`: provider calls in flight. Defaults to 25.
    pub concurrency: usize,
    /// `SYNC_PAYMENTS_WRITERS`: status changes written at once, each in its own
    /// transaction on its own connection. Defaults to 6, at most 6 (the pool has 8,
    /// and the chunk's batched refresh needs one).
    pub writers: usize,
    /// `PLATFORM_COMMISSION_RATE` and `VAT_RATE`. Default 0.06 and 0.22.
    pub rates: money::Rates,
    /// `DLOCAL_TIMEOUT_SECONDS`: one provider call. Defaults to 30 (the original's).
    pub timeout: Duration,
    pub backoff: Backoff,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, config::Error> {
        let required = |name| config::required(env, name, "by sync-payments");
        let base = required("DLOCAL_BASE_URL")?;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(config::Error {
                variable: "DLOCAL_BASE_URL",
                message: format!("`{base}` is not an http(s) URL"),
            });
        }
        Ok(Settings {
            dlocal_base_url: base,
            dlocal_api_key: SecretString::from(required("DLOCAL_API_KEY")?),
            dlocal_secret_key: SecretString::from(required("DLOCAL_SECRET_KEY")?),
            app_base_url: config::app_base_url(env),
            batch_limit: config::parse(env, "SYNC_PAYMENTS_BATCH_LIMIT", 500i64, 1..=100_000)?,
            concurrency: config::parse(env, "SYNC_PAYMENTS_CONCURRENCY", 25usize, 1..=500)?,
            writers: config::parse(env, "SYNC_PAYMENTS_WRITERS", 6usize, 1..=6)?,
            rates: money::Rates::from_env(env)?,
            timeout: config::seconds(env, "DLOCAL_TIMEOUT_SECONDS", 30, 1..=120)?,
            // The original asked about a failing payment every run (5 min) forever, so
            // stuck payments starved newer ones (oldest first, 500 a run): 5 min, 10, 20, ...
            // capped at 6 h. No limit: the order's expiry ends a pending payment.
            backoff: Backoff {
                initial: Duration::from_secs(5 * 60),
                max: Duration::from_secs(6 * 3600),
                jitter: 0.2,
                limit: None,
            },
        })
    }
}

/// The job.
#[derive(Clone)]
pub struct SyncPayments {
    pool: PgPool,
    clock: Clock,
    dlocal: dlocal::DlocalClient,
    settings: Settings,
}

/// What a run did, for the summary.
#[derive(Debug, Default)]
struct Counts {
    payments: u64,
    /// Payments dLocal answered (whatever it said).
    answered: u64,
    /// Why dLocal refused our credentials, if it did.
    credentials_refused: Option<String>,
    payments_synced: u64,
    payments_failed: u64,
    payments_raced: u64,
    unknown_statuses: u64,
    orders_confirmed: u64,
    orders_cancelled: u64,
    orders_examined: u64,
    orders_expired: u64,
    anomalies: u64,
}

impl Counts {
    fn add(&mut self, a: sync::Applied) {
        self.payments_raced += u64::from(a.raced);
        self.orders_confirmed += u64::from(a.confirmed);
        self.orders_cancelled += u64::from(a.cancelled);
        self.anomalies += u64::from(a.anomaly);
    }
}

impl SyncPayments {
    pub fn from_deps(deps: &Deps) -> anyhow::Result<SyncPayments> {
        let settings = Settings::from_env(&*deps.env)?;
        SyncPayments::new(deps.pool.clone(), settings, deps.clock.clone())
    }

    pub fn new(pool: PgPool, settings: Settings, clock: Clock) -> anyhow::Result<SyncPayments> {
        let dlocal = dlocal::DlocalClient::new(
            &settings.dlocal_base_url,
            &settings.dlocal_api_key,
            &settings.dlocal_secret_key,
            Timeouts {
                connect: Duration::from_secs(5),
                request: settings.timeout,
            },
            RetryPolicy::DEFAULT,
        )?;
        Ok(SyncPayments {
            pool,
            clock,
            dlocal,
            settings,
        })
    }

    /// Both phases once.
    pub async fn run_once(&self, cx: &RunContext) -> Result<Summary, JobError> {
        let now = self.clock.now();
        let mut counts = Counts::default();
        let candidates = queries::candidates(&self.pool, now, self.settings.batch_limit).await?;
        tracing::info!(candidates = candidates.len(), "syncing pending payments");
        let synced = self
            .sync_payments(candidates, &cx.cancel, &cx.progress, now, &mut counts)
            .await;
        // Expiry needs only the database: a dLocal outage must not keep tickets held.
        let expired = match &synced {
            Ok(_) if !cx.cancel.is_cancelled() => {
                self.expire_orders(&cx.cancel, self.clock.now(), &mut counts)
                    .await
            }
            _ => Ok(()),
        };
        let summary = counts.summary();
        let failed = match (synced, expired) {
            (Err(e), _) | (_, Err(e)) => Some(e),
            (Ok(provider), Ok(())) => provider.map(anyhow::Error::msg),
        };
        match failed {
            None => Ok(summary),
            Some(error) => Err(JobError { summary, error }),
        }
    }
}

impl Counts {
    /// Tells the runner the totals so far (see `RunContext::progress`).
    fn publish(&self, progress: &Progress) {
        let s = self.summary();
        progress.set(s.processed, s.succeeded, s.failed);
    }

    fn summary(&self) -> Summary {
        let failed = self.payments_failed;
        let details = json!({
            "payments": self.payments,
            "payments_synced": self.payments_synced,
            "payments_failed": self.payments_failed,
            "payments_raced": self.payments_raced,
            "unknown_statuses": self.unknown_statuses,
            "orders_confirmed": self.orders_confirmed,
            "orders_cancelled": self.orders_cancelled,
            "orders_examined": self.orders_examined,
            "orders_expired": self.orders_expired,
            "anomalies": self.anomalies,
        });
        Summary {
            processed: self.payments + self.orders_examined,
            succeeded: self.payments_synced + self.payments_raced + self.orders_examined,
            failed: failed + self.anomalies,
            details: details.as_object().cloned().unwrap_or_default(),
        }
    }
}

impl Job for SyncPayments {
    fn run(&self, cx: RunContext) -> BoxFuture<'static, Result<Summary, JobError>> {
        let job = self.clone();
        async move { job.run_once(&cx).await }.boxed()
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        vec![Endpoint {
            name: "dLocal Go",
            url: self.settings.dlocal_base_url.clone(),
        }]
    }
}
