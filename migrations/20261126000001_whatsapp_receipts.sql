-- whatsapp_message_statuses: the delivery receipts Meta sends for the WhatsApp messages
-- the notifications job sent (the `statuses` of the Cloud API's `messages` webhook).
-- Additive. Written by the marketplace API's WhatsApp webhook route, read by the job:
-- the Cloud API has no idempotency key, so when a run dies (or loses the answer) after
-- sending a message, the receipt carrying the message's `biz_opaque_callback_data`
-- (`notification-<id>-whatsapp`) is the only way to know whether it went out. See the
-- README ("WhatsApp delivery receipts") for the rows the webhook route must insert.
CREATE TABLE IF NOT EXISTS whatsapp_message_statuses (
    message_id    text        NOT NULL, -- statuses[].id, the wamid
    status        text        NOT NULL, -- statuses[].status: sent, delivered, read, failed
    callback_data text,                 -- statuses[].biz_opaque_callback_data
    recipient_id  text,                 -- statuses[].recipient_id
    error         text,                 -- statuses[].errors[0]: "<code> <title>", when failed
    occurred_at   timestamptz NOT NULL, -- statuses[].timestamp (Unix seconds)
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, status)
);
CREATE INDEX IF NOT EXISTS whatsapp_message_statuses_callback_idx
    ON whatsapp_message_statuses (callback_data) WHERE callback_data IS NOT NULL;
