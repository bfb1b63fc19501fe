//! Outcomes written in small batches beside the deliveries: up to [`BATCH`] finished
//! notifications, or whatever finished within [`EVERY`], in one statement per claimed
//! batch (`queries::finish`, guarded by each row's lease). One statement per outcome
//! made the database's round trip the pace of in-app delivery.
//!
//! A run that stops (cancelled, timed out) writes everything it holds before it
//! returns. A run killed outright loses the outcomes not yet written (normally the last
//! [`EVERY`]; more if the database falls behind the deliveries); their rows come back
//! when their lease ends, and delivering them again sends no second email (idempotency
//! key) or WhatsApp message (marked `sending` before its call); in-app is the row
//! itself, but its web push goes out again. A statement refused for a passing reason is
//! tried once more (`database::retry`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::queries::{self, Outcome};
use crate::clock::Clock;

/// Outcomes in one statement at most.
pub(super) const BATCH: usize = 200;
/// How long a finished notification waits for others before its outcome is written.
pub(super) const EVERY: Duration = Duration::from_millis(100);

/// A finished notification and the lease it was delivered under.
pub(super) type Finished = (Outcome, DateTime<Utc>);

pub(super) fn channel() -> (
    mpsc::UnboundedSender<Finished>,
    mpsc::UnboundedReceiver<Finished>,
) {
    mpsc::unbounded_channel()
}

/// Writes what arrives until every sender is gone and everything is written.
pub(super) async fn write(
    pool: &PgPool,
    clock: &Clock,
    finished: mpsc::UnboundedReceiver<Finished>,
) {
    let received =
        futures::stream::unfold(
            finished,
            |mut r| async move { r.recv().await.map(|f| (f, r)) },
        );
    let chunks = tokio_stream::StreamExt::chunks_timeout(received, BATCH, EVERY);
    futures::pin_mut!(chunks);
    while let Some(chunk) = chunks.next().await {
        let mut by_lease: BTreeMap<DateTime<Utc>, Vec<Outcome>> = BTreeMap::new();
        for (outcome, lease_until) in chunk {
            by_lease.entry(lease_until).or_default().push(outcome);
        }
        for (lease_until, outcomes) in by_lease {
            let written = crate::database::retry(
                "recording notification outcomes",
                Some(1),
                |e: &sqlx::Error| !crate::database::is_permanent(e),
                || queries::finish(pool, &outcomes, lease_until, clock.now()),
            )
            .await;
            if let Err(e) = written {
                // The leases run out and the rows come back (see the module's docs).
                let ids: Vec<String> = outcomes.iter().map(|o| o.id.to_string()).collect();
                tracing::error!(notification_ids = %ids.join(","), error = %e, "could not record these outcomes");
            }
        }
    }
}
