-- notify-upload-availability: one row per reminder sent, so a listing's reminder for a
-- milestone goes out once, whatever runs overlap or are retried (the primary key
-- decides, inside the transaction that inserts the notification). No foreign keys:
-- the runner's own bookkeeping, it must not depend on the shape of the original's tables.
CREATE TABLE document_reminders (
    listing_id uuid NOT NULL,
    seller_user_id uuid NOT NULL,
    milestone_hours smallint NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (listing_id, seller_user_id, milestone_hours)
);
