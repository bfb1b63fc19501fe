-- What each run logged, as CloudWatch Logs bills ingestion (the bytes of every line plus
-- 26 per line), so `run-job cost` projects the log bill from measurements. NULL for runs
-- recorded before this column existed. Additive: safe to apply to the production database.
ALTER TABLE job_runs ADD COLUMN IF NOT EXISTS log_bytes bigint;
