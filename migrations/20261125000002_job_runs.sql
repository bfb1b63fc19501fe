-- The runner's own history: one row per run of a job, skips included.
-- Additive: safe to apply to the production database.
CREATE TYPE job_run_outcome AS ENUM (
    'running',      -- started, not finished yet (or killed: see 'abandoned')
    'succeeded',
    'failed',
    'timed_out',
    'interrupted',  -- SIGTERM/SIGINT (ECS stop, Fargate Spot interruption)
    'skipped',      -- another run of the job held its lock; nothing ran
    'abandoned'     -- left 'running' by a process that died; closed by the next run
);

CREATE TABLE job_runs (
    id uuid PRIMARY KEY,
    job text NOT NULL,
    trigger text NOT NULL CHECK (trigger IN ('manual', 'eventbridge', 'schedule')),
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome job_run_outcome NOT NULL DEFAULT 'running',
    exit_code integer,
    items_processed bigint NOT NULL DEFAULT 0,
    items_succeeded bigint NOT NULL DEFAULT 0,
    items_failed bigint NOT NULL DEFAULT 0,
    error text,
    details jsonb NOT NULL DEFAULT '{}',
    host text
);
CREATE INDEX job_runs_job_started_idx ON job_runs (job, started_at DESC);
CREATE INDEX job_runs_running_idx ON job_runs (job) WHERE outcome = 'running';
