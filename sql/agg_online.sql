-- Serving aggregation views: fs_online and its forms return value(k, now()) exactly, after random
-- batches of inserts, late rows, updates and deletes, in batch and in stream mode.
-- Two independent checks after every batch:
--  1. against a brute-force SQL oracle of docs/semantics.md (FILTER, t - W <= event_ts < t), in a
--     new statement after the writing transaction committed (read-after-commit);
--  2. the consistency theorem: in one REPEATABLE READ transaction, fs_online of every entity
--     equals the point-in-time join with spine (entity, now()), bit for bit (floats included).
-- Events exactly at now() - W and at now() are written inside the checking transaction, whose
-- now() is fixed, so that the window edges are hit exactly.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';

CREATE TABLE aon_events (user_id bigint, ts timestamptz, created timestamptz, amount numeric, qty int,
                         price float8, category text);
CREATE INDEX ON aon_events (user_id, ts);
SELECT fs_register_entity('aon_user', 'user_id');
SELECT fs_register_view('aon_view', 'aon_events', entity => 'aon_user', event_time => 'ts', created_time => 'created',
  aggregations => ARRAY['count(*) over ''1 hour'' as n_1h', 'count(amount) over ''1 day'' as n_amount_1d',
                        'sum(qty) over ''1 day'' as qty_1d', 'avg(amount) over ''7 days'' as avg_7d',
                        'min(price) over ''90 minutes'' as min_p', 'max(category) over ''7 days'' as max_cat',
                        'first(amount) over ''2 days'' as first_2d', 'last(category) as last_cat',
                        'sum(price) as sum_price', 'avg(price) over ''1 day'' as avg_p'],
  filter => 'qty IS DISTINCT FROM 3');

-- The oracle: the aggregates of key k at time t, in plain SQL.
CREATE FUNCTION aon_oracle(k bigint, t timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'n_1h', count(*) FILTER (WHERE ts >= t - interval '1 hour'),
    'n_amount_1d', count(amount) FILTER (WHERE ts >= t - interval '1 day'),
    'qty_1d', sum(qty) FILTER (WHERE ts >= t - interval '1 day'),
    'avg_7d', avg(amount) FILTER (WHERE ts >= t - interval '7 days'),
    'min_p', min(price) FILTER (WHERE ts >= t - interval '90 minutes'),
    'max_cat', max(category) FILTER (WHERE ts >= t - interval '7 days'),
    'first_2d', (SELECT e.amount FROM aon_events e WHERE e.user_id = k AND e.ts < t AND e.ts >= t - interval '2 days'
                 AND e.qty IS DISTINCT FROM 3 AND e.amount IS NOT NULL
                 ORDER BY e.ts, e.created NULLS FIRST, e.amount LIMIT 1),
    'last_cat', (SELECT e.category FROM aon_events e WHERE e.user_id = k AND e.ts < t
                 AND e.qty IS DISTINCT FROM 3 AND e.category IS NOT NULL
                 ORDER BY e.ts DESC, e.created DESC NULLS LAST, e.category DESC LIMIT 1),
    'sum_price', sum(price),
    'avg_p', avg(price) FILTER (WHERE ts >= t - interval '1 day'))
  FROM aon_events WHERE user_id = k AND ts < t AND qty IS DISTINCT FROM 3
$$;

-- Float aggregates may differ from SQL's by rounding only (docs/semantics.md); the rest is exact.
CREATE FUNCTION aon_same(a jsonb, b jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT (a - 'sum_price' - 'avg_p') = (b - 'sum_price' - 'avg_p')
     AND ((a->'sum_price') = (b->'sum_price') OR abs((a->>'sum_price')::float8 - (b->>'sum_price')::float8)
          <= 1e-12 * abs((b->>'sum_price')::float8))
     AND ((a->'avg_p') = (b->'avg_p') OR abs((a->>'avg_p')::float8 - (b->>'avg_p')::float8)
          <= 1e-12 * abs((b->>'avg_p')::float8))
$$;

-- One random batch of writes: events around now (a few in the future), late rows, updates, deletes.
CREATE FUNCTION aon_batch(seed float8, n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM setseed(seed);
  INSERT INTO aon_events
  SELECT 1 + floor(random() * 40)::bigint,
         now() - floor(random() * 60 * 24 * 8)::int * interval '1 minute'
           + CASE WHEN random() < 0.05 THEN interval '3 hours' ELSE interval '0' END,
         CASE WHEN random() < 0.2 THEN NULL ELSE now() - floor(random() * 5) * interval '1 minute' END,
         CASE WHEN random() < 0.1 THEN NULL ELSE floor(random() * 200)::numeric / 8 END,
         CASE WHEN random() < 0.1 THEN NULL ELSE floor(random() * 6)::int END,
         CASE WHEN random() < 0.1 THEN NULL ELSE floor(random() * 1e6) / 1e3 + random() END,
         (ARRAY['a', 'b', 'c', NULL])[1 + floor(random() * 4)::int]
  FROM generate_series(1, n);
  -- late rows: old event times, written now
  INSERT INTO aon_events
  SELECT 1 + floor(random() * 40)::bigint, now() - interval '6 days' - random() * interval '3 days', now(),
         floor(random() * 100)::numeric, 1, random() * 10, 'late'
  FROM generate_series(1, n / 10);
  UPDATE aon_events SET amount = amount + 1, ts = ts - interval '10 minutes' WHERE random() < 0.05;
  DELETE FROM aon_events WHERE random() < 0.03;
END $$;

-- Check 1, in its own transaction: every entity (and one without events) against the oracle.
-- with_1h, with_1d: entities whose 1-hour / 1-day windows hold events (the check is not vacuous)
CREATE FUNCTION aon_check_oracle() RETURNS TABLE (entities bigint, mismatches bigint, with_1h bigint, with_1d bigint)
LANGUAGE sql AS $$
  SELECT count(*), count(*) FILTER (WHERE NOT aon_same(o, aon_oracle(k, now()))),
         count(*) FILTER (WHERE (o->>'n_1h')::int > 0), count(*) FILTER (WHERE (o->>'n_amount_1d')::int > 0)
  FROM generate_series(1, 41) k, LATERAL (SELECT fs_online(fs_entity('aon_user', k), 'aon_view') -> 'aon_view' AS o) x
$$;

-- Check 2: fs_online = the join at now(), in the caller's (REPEATABLE READ) transaction.
CREATE FUNCTION aon_check_join() RETURNS TABLE (entities bigint, mismatches bigint) LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL client_min_messages = warning;
  DROP TABLE IF EXISTS aon_spine;
  CREATE TEMP TABLE aon_spine AS SELECT k::bigint AS user_id, now() AS ts FROM generate_series(1, 41) k;
  RETURN QUERY
  SELECT count(*), count(*) FILTER (WHERE fs_online(fs_entity('aon_user', j.user_id), 'aon_view') -> 'aon_view'
           IS DISTINCT FROM to_jsonb(j) - 'user_id' - 'ts')
  FROM fs_point_in_time_join('aon_spine', ARRAY['aon_view:*'], 'ts')
       AS j(user_id bigint, ts timestamptz, n_1h bigint, n_amount_1d bigint, qty_1d bigint, avg_7d numeric,
            min_p float8, max_cat text, first_2d numeric, last_cat text, sum_price float8, avg_p float8);
END $$;

-- Edge events at now() - W and at now() of the current transaction, for a few keys.
CREATE FUNCTION aon_edges() RETURNS void LANGUAGE sql AS $$
  INSERT INTO aon_events
  SELECT k, now() - w, now(), 5, 1, 2.5, 'edge'
  FROM generate_series(1, 5) k,
       unnest(ARRAY[interval '0', interval '1 hour', interval '90 minutes', interval '1 day', interval '2 days',
                    interval '7 days']) w
$$;

SELECT aon_batch(0.1, 600);
SELECT * FROM aon_check_oracle();
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM aon_check_join();
COMMIT;

-- the window edges, exactly: an event at now() is not counted, one at now() - W is
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT fs_online(fs_entity('aon_user', 1), 'aon_view') -> 'aon_view' -> 'n_1h' AS n_1h_before \gset
SELECT aon_edges();
SELECT (fs_online(fs_entity('aon_user', 1), 'aon_view') -> 'aon_view' -> 'n_1h')::int - :n_1h_before AS n_1h_added;
SELECT * FROM aon_check_oracle();
SELECT * FROM aon_check_join();
SELECT count(*) AS edge_events_at_t_minus_w FROM aon_events WHERE category = 'edge' AND ts < now();
COMMIT;

SELECT aon_batch(0.2, 400);
SELECT * FROM aon_check_oracle();
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM aon_check_join();
COMMIT;

-- without a filter, serving reads the (user_id, ts) index directly (no executor): the same
-- answers as the join at now() and as SQL
SELECT fs_register_view('aon_plain', 'aon_events', entity => 'aon_user', event_time => 'ts', created_time => 'created',
  aggregations => ARRAY['count(*) over ''1 hour'' as n_1h', 'sum(qty) over ''1 day'' as qty_1d',
                        'avg(amount) over ''7 days'' as avg_7d', 'last(category) as last_cat', 'min(price) as min_p']);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT aon_edges();
CREATE TEMP TABLE aon_spine2 AS SELECT k::bigint AS user_id, now() AS ts FROM generate_series(1, 41) k;
SELECT count(*) AS entities,
       count(*) FILTER (WHERE fs_online(fs_entity('aon_user', j.user_id), 'aon_plain') -> 'aon_plain'
                        IS DISTINCT FROM to_jsonb(j) - 'user_id' - 'ts') AS join_mismatches,
       count(*) FILTER (WHERE fs_online(fs_entity('aon_user', j.user_id), 'aon_plain') -> 'aon_plain'
                        IS DISTINCT FROM (SELECT jsonb_build_object(
                            'n_1h', count(*) FILTER (WHERE e.ts >= now() - interval '1 hour'),
                            'qty_1d', sum(e.qty) FILTER (WHERE e.ts >= now() - interval '1 day'),
                            'avg_7d', avg(e.amount) FILTER (WHERE e.ts >= now() - interval '7 days'),
                            'last_cat', (SELECT x.category FROM aon_events x WHERE x.user_id = j.user_id AND x.ts < now()
                                         AND x.category IS NOT NULL
                                         ORDER BY x.ts DESC, x.created DESC NULLS LAST, x.category DESC LIMIT 1),
                            'min_p', min(e.price))
                          FROM aon_events e WHERE e.user_id = j.user_id AND e.ts < now())) AS sql_mismatches,
       count(*) FILTER (WHERE j.n_1h > 0) AS with_1h
FROM fs_point_in_time_join('aon_spine2', ARRAY['aon_plain:*'], 'ts')
     AS j(user_id bigint, ts timestamptz, n_1h bigint, qty_1d bigint, avg_7d numeric, last_cat text, min_p float8);
ROLLBACK;

-- stream mode: the same answers
SELECT fs_set_online_mode('aon_view', 'stream');
SELECT aon_batch(0.3, 400);
SELECT * FROM aon_check_oracle();
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT aon_edges();
SELECT * FROM aon_check_join();
SELECT * FROM aon_check_oracle();
ROLLBACK;

-- an uncommitted write is never served to another transaction; a rolled back one is gone
BEGIN;
SELECT fs_online(fs_entity('aon_user', 2), 'aon_view') -> 'aon_view' -> 'n_1h' AS n_before \gset
INSERT INTO aon_events VALUES (2, now() - interval '1 minute', now(), 1, 1, 1, 'x');
SELECT (fs_online(fs_entity('aon_user', 2), 'aon_view') -> 'aon_view' -> 'n_1h')::int - :n_before AS seen_own_write;
ROLLBACK;
SELECT (fs_online(fs_entity('aon_user', 2), 'aon_view') -> 'aon_view' -> 'n_1h')::int - :n_before AS after_rollback;

-- the other forms agree with fs_online
SELECT count(*) AS batch_rows,
       count(*) FILTER (WHERE b.features IS DISTINCT FROM fs_online(b.entity, 'aon_view')) AS batch_mismatches
FROM fs_online_batch(ARRAY(SELECT fs_entity('aon_user', k) FROM generate_series(1, 41) k), 'aon_view') b;
SELECT count(*) AS batch_keys_rows,
       count(*) FILTER (WHERE b.features IS DISTINCT FROM fs_online(fs_entity('aon_user', b.key), 'aon_view')) AS batch_keys_mismatches
FROM fs_online_batch_keys('aon_view', ARRAY(SELECT k::bigint FROM generate_series(1, 41) k)) b;
SELECT fs_register_service('aon_model', ARRAY['aon_view:n_1h', 'aon_view:avg_7d', 'aon_view:sum_price']);
SELECT count(*) FILTER (WHERE fs_online_vector(fs_entity('aon_user', k), 'aon_model') IS DISTINCT FROM
         ARRAY[(o->>'n_1h')::float8, (o->>'avg_7d')::float8, (o->>'sum_price')::float8]) AS vector_mismatches
FROM generate_series(1, 41) k, LATERAL (SELECT fs_online(fs_entity('aon_user', k), 'aon_view') -> 'aon_view' AS o) x;
-- text aggregates cannot be served as float8
SELECT fs_online_vector(fs_entity('aon_user', 1), 'aon_view');
SELECT feature, status FROM fs_online_detail(fs_entity('aon_user', 999), 'aon_view') ORDER BY feature;
-- all online views of the entity: the aggregation view is among them
SELECT fs_online(fs_entity('aon_user', 999));

-- off: not served
SELECT fs_set_online_mode('aon_view', 'off');
SELECT fs_online(fs_entity('aon_user', 1));
SELECT fs_online(fs_entity('aon_user', 1), 'aon_view');
SELECT fs_set_online_mode('aon_view', 'batch');
-- nothing to materialize, schedule or validate
SELECT fs_materialize('aon_view', now() - interval '1 day', now());
SELECT fs_materialize_incremental('aon_view');

-- time passing alone changes the answer: an event leaving the 1-hour window
TRUNCATE aon_events;
INSERT INTO aon_events VALUES (7, now() - interval '59 minutes 58 seconds', NULL, 1, 1, 1, 'a');
SELECT fs_online(fs_entity('aon_user', 7), 'aon_view') -> 'aon_view' -> 'n_1h' AS n_1h_now;
SELECT pg_sleep(2.5);
SELECT fs_online(fs_entity('aon_user', 7), 'aon_view') -> 'aon_view' -> 'n_1h' AS n_1h_later;

-- Leave the database as found: the next tests create the extension themselves.
DROP FUNCTION aon_oracle, aon_same, aon_batch, aon_check_oracle, aon_check_join, aon_edges;
DROP TABLE aon_events;
DROP EXTENSION feature_store;
