-- notifications: delivery claims and retry timing, for the notifications job.
-- Additive: two nullable columns and an index; the API that writes notification rows
-- does not need to know them.
--   lease_until      a run that claimed the row owns it until then; a crashed run's
--                    claim simply expires
--   next_attempt_at  when a channel that failed transiently may be tried again
ALTER TABLE notifications
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN next_attempt_at timestamptz;
CREATE INDEX notifications_deliverable_idx ON notifications (COALESCE(next_attempt_at, created_at))
    WHERE status = 'pending' AND deleted_at IS NULL;

-- notification_batch_items: which items a batch's notification already includes, so an
-- item appended while its batch was being merged is found and sent, not lost.
ALTER TABLE notification_batch_items ADD COLUMN merged_at timestamptz;
-- Items of batches already closed were handled by the original: mark them so, or they
-- would look like late arrivals and be sent again.
UPDATE notification_batch_items i SET merged_at = b.updated_at
  FROM notification_batches b
 WHERE b.id = i.batch_id AND b.status <> 'pending';
CREATE INDEX notification_batch_items_unmerged_idx ON notification_batch_items (batch_id) WHERE merged_at IS NULL;
