-- The bundled quickstart example, in the spirit of Feast's: drivers with hourly stats, customers
-- with daily profiles, and a spine of ride requests. Deterministic (setseed), so every run shows
-- the same numbers.
SELECT setseed(0.42);

CREATE TABLE driver_hourly_stats (
    driver_id        bigint      NOT NULL,
    event_timestamp  timestamptz NOT NULL,
    created          timestamptz NOT NULL,
    conv_rate        float8,
    acc_rate         float8,
    avg_daily_trips  integer
);
-- 5 drivers (1001..1005), one row per hour over two days ending 2026-01-02 00:00 UTC.
INSERT INTO driver_hourly_stats
SELECT d, ts, ts + interval '5 minutes',
       round(random()::numeric, 3)::float8, round(random()::numeric, 3)::float8, (random() * 1000)::int
FROM generate_series(1001, 1005) d,
     generate_series('2025-12-31 00:00+00'::timestamptz, '2026-01-01 23:00+00', interval '1 hour') ts;

CREATE TABLE customer_daily_profile (
    customer_id      text        NOT NULL,
    event_timestamp  timestamptz NOT NULL,
    current_balance  numeric(10,2),
    lifetime_trips   integer
);
INSERT INTO customer_daily_profile
SELECT 'c' || c, ts, round((random() * 500)::numeric, 2), c * 10 + extract(day FROM ts)::int
FROM generate_series(1, 3) c,
     generate_series('2025-12-30 00:00+00'::timestamptz, '2026-01-01 00:00+00', interval '1 day') ts;

-- Ride requests: the spine of a training set (who asked, when).
CREATE TABLE ride_requests (
    request_id       bigint PRIMARY KEY,
    driver_id        bigint,
    customer_id      text,
    event_timestamp  timestamptz
);
INSERT INTO ride_requests VALUES
    (1, 1001, 'c1', '2025-12-31 08:30+00'),
    (2, 1002, 'c2', '2026-01-01 12:00+00'),
    (3, 1003, 'c3', '2026-01-01 23:59+00'),
    (4, 1004, 'c1', '2025-12-30 10:00+00'),   -- before any driver history: NULL features
    (5, 9999, 'c2', '2026-01-01 06:00+00');   -- unknown driver: NULL features
