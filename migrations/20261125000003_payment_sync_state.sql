-- sync-payments: per-payment backoff, so a payment the provider keeps refusing (404,
-- amount mismatch) waits longer between attempts instead of being retried every run
-- and starving newer ones. Additive: a table of its own, nothing in `payments` changes.
CREATE TABLE payment_sync_state (
    payment_id uuid PRIMARY KEY REFERENCES payments (id) ON DELETE CASCADE,
    failures integer NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    last_error text NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX payment_sync_state_next_attempt_idx ON payment_sync_state (next_attempt_at);
