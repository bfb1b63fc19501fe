-- The original application's tables that the three jobs read and write, with its
-- physical names, types, enums, indexes and unique constraints (original-jobs.md §5).
-- Development and test databases get them from here. A real database already has
-- them: this migration then does nothing, so `run-job migrate` there only adds the
-- runner's own tables (later migrations).
DO $$
BEGIN
IF to_regclass('public.orders') IS NOT NULL THEN
    RAISE NOTICE 'reference schema already present; left as it is';
    RETURN;
END IF;

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TYPE order_status AS ENUM ('pending', 'confirmed', 'cancelled', 'expired');
CREATE TYPE order_ticket_reservation_status AS ENUM ('active', 'cancelled', 'refund_pending', 'refunded');
CREATE TYPE payment_provider AS ENUM ('dlocal', 'stripe', 'mercadopago');
CREATE TYPE payment_status AS ENUM ('pending', 'processing', 'paid', 'failed', 'cancelled', 'expired', 'refunded', 'partially_refunded');
CREATE TYPE payment_method AS ENUM ('credit_card', 'debit_card', 'bank_transfer', 'voucher', 'pix', 'cash', 'other');
CREATE TYPE payment_event_type AS ENUM ('payment_created', 'status_change', 'webhook_received', 'refund_initiated', 'refund_completed', 'chargeback_received', 'dispute_opened', 'dispute_resolved', 'fraud_check_failed', 'manual_review_required', 'status_synced');
CREATE TYPE event_ticket_currency AS ENUM ('USD', 'UYU', 'ARS');
CREATE TYPE event_image_type AS ENUM ('flyer', 'hero', 'og_hero');
CREATE TYPE qr_availability_timing AS ENUM ('3h', '6h', '12h', '24h', '48h', '72h');
CREATE TYPE notification_type AS ENUM (
    'auth_invitation',
    'auth_new_device_sign_in',
    'auth_password_changed',
    'auth_password_removed',
    'auth_primary_email_changed',
    'auth_reset_password_code',
    'auth_verification_code',
    'buyer_ticket_cancelled',
    'document_reminder',
    'document_uploaded',
    'document_uploaded_batch',
    'identity_verification_completed',
    'identity_verification_failed',
    'identity_verification_manual_review',
    'identity_verification_rejected',
    'order_confirmed',
    'order_expired',
    'order_invoice',
    'payment_failed',
    'payment_succeeded',
    'payout_cancelled',
    'payout_completed',
    'payout_failed',
    'payout_processing',
    'seller_earnings_available',
    'seller_earnings_retained',
    'ticket_report_action_added',
    'ticket_report_closed',
    'ticket_report_created',
    'ticket_report_status_changed',
    'ticket_sold_seller'
);
CREATE TYPE notification_channel AS ENUM ('in_app', 'email', 'sms', 'whatsapp');
CREATE TYPE notification_status AS ENUM ('pending', 'sent', 'failed', 'seen');
CREATE TYPE notification_batch_status AS ENUM ('pending', 'processed', 'cancelled');
CREATE TYPE job_status AS ENUM ('pending', 'processing', 'completed', 'failed');
CREATE TYPE invoice_party AS ENUM ('buyer', 'seller');
CREATE TYPE invoice_status AS ENUM ('pending', 'issued', 'failed');
CREATE TYPE seller_earnings_status AS ENUM ('pending', 'available', 'retained', 'paid_out', 'failed_payout', 'payout_requested');
CREATE TYPE seller_earnings_retained_reason AS ENUM ('missing_document', 'dispute', 'fraud', 'other');
CREATE TYPE ticket_report_status AS ENUM ('awaiting_support', 'awaiting_customer', 'closed');
CREATE TYPE ticket_report_case_type AS ENUM ('invalid_ticket', 'ticket_not_received', 'problem_with_seller', 'other');
CREATE TYPE ticket_report_entity_type AS ENUM ('order', 'order_ticket_reservation', 'listing', 'listing_ticket');
CREATE TYPE ticket_report_source AS ENUM ('user_report', 'auto_missing_document');
CREATE TYPE ticket_report_refund_status AS ENUM ('pending', 'refunded', 'skipped');
CREATE TYPE user_role AS ENUM ('user', 'organizer', 'admin');

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    clerk_id varchar(255) UNIQUE,
    email varchar(255) NOT NULL UNIQUE,
    first_name varchar(255),
    last_name varchar(255),
    phone_number varchar(20),
    whatsapp_opted_in boolean NOT NULL DEFAULT false,
    whatsapp_prompt_dismissed boolean NOT NULL DEFAULT false,
    role user_role NOT NULL DEFAULT 'user',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);

CREATE TABLE event_venues (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name varchar(255) NOT NULL,
    address text NOT NULL,
    city varchar(100) NOT NULL,
    country varchar(100) NOT NULL DEFAULT 'Uruguay',
    region varchar(100),
    google_place_id varchar(255),
    latitude decimal(10, 8),
    longitude decimal(11, 8),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX event_venues_google_place_id_unique ON event_venues (google_place_id) WHERE google_place_id IS NOT NULL;
CREATE INDEX event_venues_city_idx ON event_venues (city);
CREATE INDEX event_venues_region_idx ON event_venues (region);
CREATE INDEX event_venues_coordinates_idx ON event_venues (latitude, longitude) WHERE latitude IS NOT NULL;

CREATE TABLE events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    external_id varchar(255) NOT NULL UNIQUE,
    platform varchar(50) NOT NULL,
    name varchar(500) NOT NULL,
    slug varchar(600) NOT NULL,
    description text,
    event_start_date timestamptz NOT NULL,
    event_end_date timestamptz NOT NULL,
    external_url varchar(1000) NOT NULL,
    status varchar(50) NOT NULL DEFAULT 'active',
    metadata jsonb,
    qr_availability_timing qr_availability_timing,
    venue_id uuid REFERENCES event_venues (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    last_scraped_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_events_slug_unique ON events (slug);
CREATE INDEX events_platform_idx ON events (platform);
CREATE INDEX events_external_id_idx ON events (external_id);
CREATE INDEX events_name_fts_idx ON events USING gin (to_tsvector('spanish', name));
CREATE INDEX events_name_trgm_idx ON events USING gin (name gin_trgm_ops);
CREATE INDEX events_venue_id_idx ON events (venue_id);
CREATE INDEX events_status_end_date_idx ON events (status, event_end_date);

CREATE TABLE event_ticket_waves (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id uuid NOT NULL REFERENCES events (id),
    external_id varchar(255) NOT NULL,
    name varchar(255) NOT NULL,
    description text,
    face_value numeric NOT NULL,
    currency event_ticket_currency NOT NULL,
    is_sold_out boolean NOT NULL DEFAULT false,
    is_available boolean NOT NULL DEFAULT true,
    status varchar(50) NOT NULL DEFAULT 'active',
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_scraped_at timestamptz,
    deleted_at timestamptz,
    CONSTRAINT event_ticket_waves_event_id_external_id_unique UNIQUE (event_id, external_id)
);
CREATE INDEX event_ticket_waves_external_id_idx ON event_ticket_waves (external_id);

CREATE TABLE event_images (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id uuid NOT NULL REFERENCES events (id),
    image_type event_image_type NOT NULL,
    url varchar(1000) NOT NULL,
    thumbnail_url text,
    display_order integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX event_images_event_id_image_type_unique_idx ON event_images (event_id, image_type);

CREATE TABLE orders (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id),
    event_id uuid NOT NULL REFERENCES events (id),
    status order_status NOT NULL DEFAULT 'pending',
    total_amount numeric NOT NULL,
    subtotal_amount numeric NOT NULL,
    platform_commission numeric NOT NULL,
    vat_on_commission numeric NOT NULL,
    currency event_ticket_currency NOT NULL,
    reservation_expires_at timestamptz NOT NULL,
    confirmed_at timestamptz,
    cancelled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX orders_user_id_idx ON orders (user_id);
CREATE INDEX orders_event_id_idx ON orders (event_id);
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX orders_reservation_expires_at_idx ON orders (reservation_expires_at);
CREATE INDEX orders_created_at_idx ON orders (created_at);

CREATE TABLE listings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    publisher_user_id uuid NOT NULL REFERENCES users (id),
    ticket_wave_id uuid NOT NULL REFERENCES event_ticket_waves (id),
    sold_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX listings_ticket_wave_id_idx ON listings (ticket_wave_id);
CREATE INDEX listings_deleted_at_idx ON listings (deleted_at);

CREATE TABLE listing_tickets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    listing_id uuid NOT NULL REFERENCES listings (id) ON DELETE CASCADE,
    ticket_number integer NOT NULL,
    price numeric NOT NULL,
    sold_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX listing_tickets_sold_at_idx ON listing_tickets (sold_at);
CREATE INDEX listing_tickets_listing_id_idx ON listing_tickets (listing_id);

CREATE TABLE order_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    ticket_wave_id uuid NOT NULL REFERENCES event_ticket_waves (id),
    price_per_ticket numeric NOT NULL,
    quantity integer NOT NULL,
    subtotal numeric NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX order_items_order_id_idx ON order_items (order_id);
CREATE INDEX order_items_ticket_wave_id_idx ON order_items (ticket_wave_id);

CREATE TABLE order_ticket_reservations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    listing_ticket_id uuid NOT NULL REFERENCES listing_tickets (id) ON DELETE CASCADE,
    reserved_at timestamptz NOT NULL DEFAULT now(),
    reserved_until timestamptz NOT NULL,
    status order_ticket_reservation_status NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX order_ticket_reservations_order_id_idx ON order_ticket_reservations (order_id);
CREATE INDEX order_ticket_reservations_listing_ticket_id_idx ON order_ticket_reservations (listing_ticket_id);
CREATE INDEX order_ticket_reservations_reserved_until_idx ON order_ticket_reservations (reserved_until);
CREATE INDEX order_ticket_reservations_deleted_at_idx ON order_ticket_reservations (deleted_at);
CREATE INDEX order_ticket_reservations_status_idx ON order_ticket_reservations (status);
CREATE UNIQUE INDEX order_ticket_reservations_unique_active_reservation
    ON order_ticket_reservations (listing_ticket_id) WHERE deleted_at IS NULL;

CREATE TABLE payments (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    provider payment_provider NOT NULL,
    provider_payment_id varchar(255) NOT NULL,
    status payment_status NOT NULL DEFAULT 'pending',
    payment_method payment_method,
    amount numeric NOT NULL,
    currency varchar(3) NOT NULL,
    balance_amount numeric,
    balance_fee numeric,
    balance_currency varchar(3),
    exchange_rate numeric(18, 8),
    created_at timestamptz NOT NULL DEFAULT now(),
    approved_at timestamptz,
    failed_at timestamptz,
    cancelled_at timestamptz,
    expired_at timestamptz,
    refunded_at timestamptz,
    failure_reason varchar(255),
    redirect_url text,
    notification_url text,
    success_url text,
    back_url text,
    provider_metadata jsonb DEFAULT '{}',
    payer_email varchar(255),
    payer_first_name varchar(255),
    payer_last_name varchar(255),
    payer_document_type varchar(50),
    payer_document varchar(255),
    payer_country varchar(2),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT payments_provider_payment_id_unique UNIQUE (provider, provider_payment_id)
);
CREATE INDEX payments_order_id_idx ON payments (order_id);
CREATE INDEX payments_provider_provider_payment_id_idx ON payments (provider, provider_payment_id);
CREATE INDEX payments_status_idx ON payments (status);
CREATE INDEX payments_created_at_idx ON payments (created_at);

CREATE TABLE payment_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    event_type payment_event_type NOT NULL,
    from_status payment_status,
    to_status payment_status,
    event_data jsonb DEFAULT '{}',
    ip_address varchar(45),
    user_agent text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_payment_id_idx ON payment_events (payment_id);
CREATE INDEX payment_events_created_at_idx ON payment_events (created_at);

-- Only its id matters here (seller_earnings.payout_id); its other columns are a
-- minimal stand-in, not the original's, which the reference does not list.
CREATE TABLE payouts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seller_user_id uuid NOT NULL REFERENCES users (id),
    status varchar(50) NOT NULL DEFAULT 'pending',
    amount numeric NOT NULL,
    currency event_ticket_currency NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE seller_earnings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seller_user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    listing_ticket_id uuid NOT NULL REFERENCES listing_tickets (id) ON DELETE CASCADE,
    seller_amount numeric NOT NULL,
    currency event_ticket_currency NOT NULL,
    status seller_earnings_status NOT NULL DEFAULT 'pending',
    retained_reason seller_earnings_retained_reason,
    payout_id uuid REFERENCES payouts (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX seller_earnings_seller_status_idx ON seller_earnings (seller_user_id, status);
CREATE INDEX seller_earnings_payout_id_idx ON seller_earnings (payout_id);
CREATE INDEX seller_earnings_listing_ticket_id_idx ON seller_earnings (listing_ticket_id);
CREATE INDEX seller_earnings_status_idx ON seller_earnings (status);
CREATE UNIQUE INDEX seller_earnings_listing_ticket_id_active_unique ON seller_earnings (listing_ticket_id)
    WHERE status IN ('pending', 'available', 'retained', 'paid_out', 'payout_requested') AND deleted_at IS NULL;

CREATE TABLE ticket_documents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    ticket_id uuid NOT NULL REFERENCES listing_tickets (id) ON DELETE CASCADE,
    storage_path text,
    file_name text,
    original_name text,
    mime_type varchar(255),
    size_bytes bigint,
    document_type varchar(50) DEFAULT 'ticket',
    version integer DEFAULT 1,
    is_primary boolean NOT NULL DEFAULT true,
    status varchar(50) DEFAULT 'verified',
    verified_at timestamptz,
    verified_by uuid,
    uploaded_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX ticket_documents_one_primary_per_ticket ON ticket_documents (ticket_id) WHERE is_primary AND deleted_at IS NULL;
CREATE INDEX ticket_documents_ticket_primary_idx ON ticket_documents (ticket_id, is_primary);
CREATE INDEX ticket_documents_status_idx ON ticket_documents (status);
CREATE INDEX ticket_documents_active_idx ON ticket_documents (ticket_id) WHERE deleted_at IS NULL;

CREATE TABLE notifications (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type notification_type NOT NULL,
    channels notification_channel[] NOT NULL,
    status notification_status NOT NULL DEFAULT 'pending',
    actions jsonb,
    metadata jsonb,
    seen_at timestamptz,
    channel_status jsonb DEFAULT '{}',
    retry_count integer NOT NULL DEFAULT 0,
    send_via_job boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX notifications_user_id_idx ON notifications (user_id);
CREATE INDEX notifications_type_idx ON notifications (type);
CREATE INDEX notifications_status_idx ON notifications (status);
CREATE INDEX notifications_created_at_idx ON notifications (created_at);
CREATE INDEX notifications_user_status_created_idx ON notifications (user_id, status, created_at);
CREATE INDEX notifications_active_idx ON notifications (user_id, created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX notifications_unseen_idx ON notifications (user_id) WHERE seen_at IS NULL AND deleted_at IS NULL;
CREATE INDEX notifications_pending_idx ON notifications (created_at) WHERE status = 'pending' AND deleted_at IS NULL;
CREATE INDEX notifications_pending_retry_idx ON notifications (created_at, retry_count) WHERE status = 'pending' AND deleted_at IS NULL;

CREATE TABLE notification_batches (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    debounce_key varchar(255) NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    notification_type notification_type NOT NULL,
    channels notification_channel[] NOT NULL,
    window_ends_at timestamptz NOT NULL,
    status notification_batch_status NOT NULL DEFAULT 'pending',
    final_notification_id uuid REFERENCES notifications (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_batches_key_user_status_idx ON notification_batches (debounce_key, user_id, status);
CREATE INDEX notification_batches_window_pending_idx ON notification_batches (window_ends_at) WHERE status = 'pending';
CREATE INDEX notification_batches_user_id_idx ON notification_batches (user_id);

CREATE TABLE notification_batch_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    batch_id uuid NOT NULL REFERENCES notification_batches (id) ON DELETE CASCADE,
    metadata jsonb NOT NULL,
    actions jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_batch_items_batch_id_idx ON notification_batch_items (batch_id);

CREATE TABLE jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_type varchar(100) NOT NULL,
    payload jsonb NOT NULL,
    status job_status NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5,
    scheduled_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    error text,
    idempotency_key varchar(255) UNIQUE
);
CREATE INDEX idx_jobs_pending ON jobs (scheduled_at) WHERE status = 'pending';
CREATE INDEX jobs_type_status_idx ON jobs (job_type, status);

CREATE TABLE invoices (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id uuid REFERENCES orders (id),
    party invoice_party NOT NULL,
    seller_user_id uuid,
    status invoice_status NOT NULL DEFAULT 'pending',
    external_id varchar(255) NOT NULL UNIQUE,
    provider varchar(50) NOT NULL DEFAULT 'FEU',
    provider_response jsonb,
    pdf_storage_path text,
    base_amount numeric NOT NULL,
    vat_amount numeric NOT NULL,
    total_amount numeric NOT NULL,
    currency event_ticket_currency NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    issued_at timestamptz,
    email_sent_at timestamptz,
    last_error text
);
CREATE UNIQUE INDEX idx_invoices_order_party_seller ON invoices (order_id, party, seller_user_id);
CREATE INDEX invoices_order_id_idx ON invoices (order_id);
CREATE INDEX invoices_status_idx ON invoices (status);
CREATE INDEX invoices_provider_response_idx ON invoices USING gin (provider_response);

CREATE TABLE push_subscriptions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint text NOT NULL UNIQUE,
    p256dh text NOT NULL,
    auth text NOT NULL,
    user_agent text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_subscriptions_user_id_idx ON push_subscriptions (user_id);

CREATE TABLE ticket_reports (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    case_type ticket_report_case_type NOT NULL,
    entity_type ticket_report_entity_type NOT NULL,
    entity_id uuid NOT NULL,
    status ticket_report_status NOT NULL DEFAULT 'awaiting_support',
    reported_by_user_id uuid REFERENCES users (id),
    source ticket_report_source NOT NULL DEFAULT 'user_report',
    description text,
    closed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_reports_reporter_idx ON ticket_reports (reported_by_user_id);
CREATE INDEX ticket_reports_status_idx ON ticket_reports (status);
CREATE INDEX ticket_reports_entity_idx ON ticket_reports (entity_type, entity_id);

CREATE TABLE ticket_report_refunds (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    ticket_report_id uuid NOT NULL REFERENCES ticket_reports (id) ON DELETE CASCADE,
    order_ticket_reservation_id uuid NOT NULL REFERENCES order_ticket_reservations (id),
    refund_status ticket_report_refund_status NOT NULL DEFAULT 'pending',
    refund_amount numeric NOT NULL,
    currency event_ticket_currency NOT NULL,
    processed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
END
$$;
