-- A run whose lock connection died mid-run is stopped at once and recorded as such.
-- Additive: safe to apply to the production database.
ALTER TYPE job_run_outcome ADD VALUE IF NOT EXISTS 'lock_lost' AFTER 'interrupted';
