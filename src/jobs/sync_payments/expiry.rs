//! Phase B: expire pending orders that can no longer be paid, which releases their
//! tickets back to sale.
//!
//! An order expires when its reservation ran out and it never got a payment, or when
//! every payment it had ended without paying (expired, failed, cancelled). Orders are
//! handled in chunks, each in one transaction: the orders are locked (skipping any a
//! webhook holds right now; the next run gets them), the condition is judged again
//! after the locks, and expiry, release and notification are written together.

use chrono::{DateTime, Utc};

use super::queries;
use super::{Counts, SyncPayments, followups};

/// Orders locked and expired per transaction.
const CHUNK: usize = 100;

impl SyncPayments {
    pub(super) async fn expire_orders(
        &self,
        cancel: &tokio_util::sync::CancellationToken,
        now: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let ids = queries::expirable_orders(&self.pool, now, self.settings.batch_limit).await?;
        for chunk in ids.chunks(CHUNK) {
            if cancel.is_cancelled() {
                break;
            }
            let mut tx = self.pool.begin().await?;
            let locked = queries::lock_pending_orders_skip_locked(&mut tx, chunk).await?;
            let locked_ids: Vec<_> = locked.iter().map(|o| o.id).collect();
            let expired = queries::expire_orders(&mut tx, &locked_ids, now).await?;
            let expired_ids: Vec<_> = expired.iter().map(|(id, _)| *id).collect();
            queries::release_reservations(&mut tx, &expired_ids, now).await?;
            let notifications: Vec<_> = locked
                .iter()
                .filter(|o| expired_ids.contains(&o.id))
                .filter_map(|o| followups::on_order_expired(o, now))
                .collect();
            crate::notify::insert(&mut tx, &notifications, now).await?;
            tx.commit().await?;
            for (id, had_payments) in &expired {
                let reason = if *had_payments {
                    "all_payments_terminal"
                } else {
                    "no_payment_link"
                };
                tracing::info!(order_id = %id, reason, "order expired");
            }
            counts.orders_examined += chunk.len() as u64;
            counts.orders_expired += expired.len() as u64;
        }
        Ok(())
    }
}
