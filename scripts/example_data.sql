-- The bundled quickstart example, in the spirit of Feast's: drivers with hourly stats, customers
-- with daily profiles, and a spine of ride requests. Values are deterministic (setseed); times are
-- relative to the current hour, so that online TTLs (measured from now()) behave as in production:
-- the history covers the 48 hours up to the last full hour.
SELECT setseed(0.42);
CREATE TEMP TABLE anchor AS SELECT date_trunc('hour', now()) AS t;

CREATE TABLE driver_hourly_stats (
    driver_id        bigint      NOT NULL,
    event_timestamp  timestamptz NOT NULL,
    created          timestamptz NOT NULL,
    conv_rate        float8,
    acc_rate         float8,
    avg_daily_trips  integer
);
-- 5 drivers (1001..1005), one row per hour over the last two days, written 5 minutes later.
INSERT INTO driver_hourly_stats
SELECT d, a.t - h * interval '1 hour', a.t - h * interval '1 hour' + interval '5 minutes',
       round(random()::numeric, 3)::float8, round(random()::numeric, 3)::float8, (random() * 1000)::int
FROM anchor a, generate_series(47, 0, -1) h, generate_series(1001, 1005) d
ORDER BY h DESC, d;

CREATE TABLE customer_daily_profile (
    customer_id      text        NOT NULL,
    event_timestamp  timestamptz NOT NULL,
    current_balance  numeric(10,2),
    lifetime_trips   integer
);
INSERT INTO customer_daily_profile
SELECT 'c' || c, a.t - dd * interval '1 day', round((random() * 500)::numeric, 2), c * 10 + 3 - dd
FROM anchor a, generate_series(2, 0, -1) dd, generate_series(1, 3) c
ORDER BY dd DESC, c;

-- Ride requests: the spine of a training set (who asked, when).
CREATE TABLE ride_requests (
    request_id       bigint PRIMARY KEY,
    driver_id        bigint,
    customer_id      text,
    event_timestamp  timestamptz
);
INSERT INTO ride_requests
SELECT r.id, r.driver, r.customer, a.t - r.ago
FROM anchor a, (VALUES
    (1, 1001, 'c1', interval '39 hours 30 minutes'),
    (2, 1002, 'c2', interval '12 hours'),
    (3, 1003, 'c3', interval '1 minute'),
    (4, 1004, 'c1', interval '60 hours'),    -- before any driver history: NULL features
    (5, 9999, 'c2', interval '18 hours')     -- unknown driver: NULL features
) AS r(id, driver, customer, ago);
-- Purchases: events from which an aggregation view computes windowed features
-- (user_avg_purchase_last_7_days and friends). 20 per customer over the last 10 days.
CREATE TABLE purchases (
    customer_id   text        NOT NULL,
    purchased_at  timestamptz NOT NULL,
    amount        numeric(10,2),
    category      text
);
CREATE INDEX ON purchases (customer_id, purchased_at);
INSERT INTO purchases
SELECT 'c' || c, a.t - floor(random() * 10 * 24 * 60) * interval '1 minute',
       round((random() * 100)::numeric, 2), (ARRAY['food', 'travel', 'books'])[1 + floor(random() * 3)::int]
FROM anchor a, generate_series(1, 3) c, generate_series(1, 20)
ORDER BY 2;
DROP TABLE anchor;
