-- Quickstart data: a buyer's pending order for two tickets of one seller, with a dLocal
-- payment created ten minutes ago (old enough for sync-payments to ask about it).
INSERT INTO users (id, email, first_name) VALUES
    ('00000000-0000-0000-0000-0000000000b1', 'buyer@example.com', 'Ana'),
    ('00000000-0000-0000-0000-0000000000c1', 'seller@example.com', 'Bruno');
INSERT INTO events (id, external_id, platform, name, slug, event_start_date, event_end_date, external_url, qr_availability_timing)
VALUES ('00000000-0000-0000-0000-0000000000e1', 'entraste-123', 'entraste', 'No Te Va Gustar', 'no-te-va-gustar',
        now() + interval '7 days', now() + interval '7 days 5 hours', 'https://example.com/e/123', '12h');
INSERT INTO event_ticket_waves (id, event_id, external_id, name, face_value, currency)
VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000e1', 'general', 'General', 1200, 'UYU');
INSERT INTO listings (id, publisher_user_id, ticket_wave_id)
VALUES ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1');
INSERT INTO listing_tickets (id, listing_id, ticket_number, price) VALUES
    ('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000d1', 1, 1000),
    ('00000000-0000-0000-0000-0000000000f2', '00000000-0000-0000-0000-0000000000d1', 2, 1000);
INSERT INTO orders (id, user_id, event_id, total_amount, subtotal_amount, platform_commission, vat_on_commission, currency,
                    reservation_expires_at, created_at)
VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000e1',
        2146.40, 2000, 120, 26.40, 'UYU', now() + interval '5 minutes', now() - interval '12 minutes');
INSERT INTO order_items (order_id, ticket_wave_id, price_per_ticket, quantity, subtotal)
VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 1000, 2, 2000);
INSERT INTO order_ticket_reservations (order_id, listing_ticket_id, reserved_until) VALUES
    ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000f1', now() + interval '5 minutes'),
    ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000f2', now() + interval '5 minutes');
INSERT INTO payments (order_id, provider, provider_payment_id, status, amount, currency, created_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'dlocal', 'DP-QUICKSTART-1', 'pending', 2146.40, 'UYU', now() - interval '10 minutes');
