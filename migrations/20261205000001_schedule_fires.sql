-- Shared tasks (`run-job tick <group>`): each schedule fire of a member job is claimed
-- once, before the job runs for it, so two ticks at once, or a tick started twice,
-- never run a job twice for one fire; a job's latest claim is where the next tick
-- catches up from. Ticks delete claims older than a week.
-- Additive: safe to apply to the production database.
CREATE TABLE IF NOT EXISTS schedule_fires (
    job text NOT NULL,
    fire_at timestamptz NOT NULL,
    run_id uuid NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, fire_at)
);

ALTER TABLE job_runs DROP CONSTRAINT IF EXISTS job_runs_trigger_check;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_trigger_check
    CHECK (trigger IN ('manual', 'eventbridge', 'schedule', 'tick'));
