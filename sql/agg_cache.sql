-- Cached answers of aggregation views (online mode 'stream'): every lookup equals a brute-force
-- SQL oracle at now(), whether the answer came from the cache or not, after committed inserts,
-- late rows, updates (also moving an event to another key), deletes and TRUNCATE; answers
-- expire when an event leaves a window or a future event enters it; the cache is bypassed while
-- the source's triggers do not fire (disabled, or enabled on origin only), under row-level
-- security, and for results whose text depends on the session; re-enabling the triggers after
-- unseen writes serves no stale answer. Hits are counted to show that the cache was used.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';

CREATE TABLE ac_events (user_id bigint, ts timestamptz, amount numeric, qty int, note text);
CREATE INDEX ON ac_events (user_id, ts);
SELECT fs_register_entity('ac_user', 'user_id');
-- events sit 30 minutes off every window edge: cached answers stay true for the whole test
INSERT INTO ac_events
SELECT k, now() - interval '30 minutes' - h * interval '1 hour', (k * 7 + h) % 50, h % 4, 'n'
FROM generate_series(1, 30) k, generate_series(0, 200, 7) h;
-- without a filter: served through the (user_id, ts) index; with one: through SQL
SELECT fs_register_view('ac_plain', 'ac_events', entity => 'ac_user', event_time => 'ts',
  aggregations => ARRAY['count(*) over ''1 day'' as n_1d', 'sum(amount) over ''7 days'' as s_7d',
                        'max(amount) as mx', 'avg(qty) over ''2 days'' as q_2d']);
SELECT fs_register_view('ac_filtered', 'ac_events', entity => 'ac_user', event_time => 'ts',
  aggregations => ARRAY['count(*) over ''1 day'' as n_1d', 'sum(amount) over ''7 days'' as s_7d'],
  filter => 'qty <> 3');

CREATE FUNCTION ac_oracle_plain(k bigint, t timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('n_1d', count(*) FILTER (WHERE ts >= t - interval '1 day'),
                            's_7d', sum(amount) FILTER (WHERE ts >= t - interval '7 days'),
                            'mx', max(amount), 'q_2d', avg(qty) FILTER (WHERE ts >= t - interval '2 days'))
  FROM ac_events WHERE user_id = k AND ts < t
$$;
CREATE FUNCTION ac_oracle_filtered(k bigint, t timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('n_1d', count(*) FILTER (WHERE ts >= t - interval '1 day'),
                            's_7d', sum(amount) FILTER (WHERE ts >= t - interval '7 days'))
  FROM ac_events WHERE user_id = k AND ts < t AND qty <> 3
$$;
-- every key 1..31 of both views against the oracle, in one read committed statement
CREATE FUNCTION ac_check() RETURNS TABLE (keys bigint, mismatches bigint) LANGUAGE sql AS $$
  SELECT count(*), count(*) FILTER (WHERE fs_online(fs_entity('ac_user', k), 'ac_plain') -> 'ac_plain'
                                          IS DISTINCT FROM ac_oracle_plain(k, now())
                                       OR fs_online(fs_entity('ac_user', k), 'ac_filtered') -> 'ac_filtered'
                                          IS DISTINCT FROM ac_oracle_filtered(k, now()))
  FROM generate_series(1, 31) k
$$;
CREATE FUNCTION ac_hits(v text) RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce(sum(hits), 0)::bigint FROM fs_stat_online WHERE view = v
$$;
CREATE FUNCTION ac_computed(v text) RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce(sum(read_throughs), 0)::bigint FROM fs_stat_online WHERE view = v
$$;

-- batch: computed at every lookup, nothing cached, no trigger on the source
SELECT * FROM ac_check();
SELECT ac_hits('ac_plain') AS hits_in_batch;
SELECT count(*) AS triggers_in_batch FROM pg_trigger WHERE tgrelid = 'ac_events'::regclass;

SELECT fs_set_online_mode('ac_plain', 'stream');
SELECT fs_set_online_mode('ac_filtered', 'stream');
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'ac_events'::regclass ORDER BY tgname;
-- first round computes (and caches) 62 answers, the second serves all of them from the cache
SELECT * FROM ac_check();
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') AS hits_after_first, ac_computed('ac_plain') + ac_computed('ac_filtered') AS computed_after_first;
SELECT * FROM ac_check();
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') AS hits_after_second;

-- committed writes to keys 1..6: an insert, a late row, an update of a value, an update moving
-- an event from key 4 to key 5, a delete, a filtered-out row; the other keys stay cached
INSERT INTO ac_events VALUES (1, now() - interval '10 minutes', 100, 1, 'new');
INSERT INTO ac_events VALUES (2, now() - interval '6 days', 100, 1, 'late');
UPDATE ac_events SET amount = amount + 1000 WHERE user_id = 3 AND ts > now() - interval '1 day';
UPDATE ac_events SET user_id = 5 WHERE user_id = 4 AND ts > now() - interval '5 hours';
DELETE FROM ac_events WHERE user_id = 6 AND ts > now() - interval '3 days';
INSERT INTO ac_events VALUES (31, now() - interval '1 hour', 5, 3, 'filtered out');
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') AS h0 \gset
SELECT * FROM ac_check();
-- 7 keys of each view changed (31 had no events: its cached answer was the empty one)
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') - :h0 AS hits_of_unchanged_keys;

-- a writing transaction sees its own writes (its lookups bypass the cache), others do not
BEGIN;
INSERT INTO ac_events VALUES (7, now() - interval '1 minute', 1, 1, 'own');
SELECT * FROM ac_check();
ROLLBACK;
SELECT * FROM ac_check();

-- many keys in one transaction: beyond the per-key limit the whole view is invalidated
INSERT INTO ac_events SELECT 1 + i % 30, now() - interval '20 minutes', 1, 1, 'bulk' FROM generate_series(1, 5000) i;
SELECT * FROM ac_check();
TRUNCATE ac_events;
SELECT * FROM ac_check();
INSERT INTO ac_events
SELECT k, now() - interval '30 minutes' - h * interval '1 hour', (k * 7 + h) % 50, h % 4, 'n'
FROM generate_series(1, 30) k, generate_series(0, 200, 7) h;
SELECT * FROM ac_check();

-- Triggers that do not fire. Disabled: every lookup is computed (no hit), and stays exact.
SELECT * FROM ac_check();
ALTER TABLE ac_events DISABLE TRIGGER USER;
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') AS h0 \gset
INSERT INTO ac_events VALUES (8, now() - interval '10 minutes', 100, 1, 'unseen');
SELECT * FROM ac_check();
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') - :h0 AS hits_while_disabled;
-- enabled on origin only (replica writes would not fire them): still not cached
ALTER TABLE ac_events ENABLE TRIGGER USER;
SELECT * FROM ac_check();
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') - :h0 AS hits_while_origin_only;
-- Enabled always again: key 9 was written unseen meanwhile, and its answer cached before that
-- must not come back (the first lookup after the triggers changed starts a new generation).
ALTER TABLE ac_events DISABLE TRIGGER USER;
INSERT INTO ac_events VALUES (9, now() - interval '10 minutes', 100, 1, 'unseen');
ALTER TABLE ac_events ENABLE ALWAYS TRIGGER fs_agg_1_keys, ENABLE ALWAYS TRIGGER fs_agg_1_truncate,
  ENABLE ALWAYS TRIGGER fs_agg_2_keys, ENABLE ALWAYS TRIGGER fs_agg_2_truncate;
SELECT * FROM ac_check();
SELECT * FROM ac_check();
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') - :h0 AS hits_after_enable_always;

-- row-level security: answers would depend on the reader; computed every time
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') AS h0 \gset
ALTER TABLE ac_events ENABLE ROW LEVEL SECURITY;
SELECT * FROM ac_check();
SELECT ac_hits('ac_plain') + ac_hits('ac_filtered') - :h0 AS hits_under_rls;
ALTER TABLE ac_events DISABLE ROW LEVEL SECURITY;

-- Time alone changes answers: an event 1.5 s ahead enters the 2-second window, one 1 s old
-- leaves it; the cached answers expire at those instants.
SELECT fs_register_view('ac_short', 'ac_events', entity => 'ac_user', event_time => 'ts',
  aggregations => ARRAY['count(*) over ''2 seconds'' as n_2s', 'sum(amount) as total']);
SELECT fs_set_online_mode('ac_short', 'stream');
INSERT INTO ac_events VALUES (40, now() + interval '1.5 seconds', 1, 1, 'future'), (41, now() - interval '1 second', 2, 1, 'leaving');
CREATE FUNCTION ac_short_check() RETURNS TABLE (n40 bigint, total40 numeric, n41 bigint, total41 numeric, mismatches bigint)
LANGUAGE sql AS $$
  SELECT (a -> 'ac_short' ->> 'n_2s')::bigint, (a -> 'ac_short' ->> 'total')::numeric,
         (b -> 'ac_short' ->> 'n_2s')::bigint, (b -> 'ac_short' ->> 'total')::numeric,
         (SELECT count(*) FROM (VALUES (40, a), (41, b)) x(k, o)
          WHERE o -> 'ac_short' IS DISTINCT FROM
                (SELECT jsonb_build_object('n_2s', count(*) FILTER (WHERE ts >= now() - interval '2 seconds'), 'total', sum(amount))
                 FROM ac_events WHERE user_id = x.k AND ts < now()))
  FROM (SELECT fs_online(fs_entity('ac_user', 40), 'ac_short') AS a, fs_online(fs_entity('ac_user', 41), 'ac_short') AS b) y
$$;
SELECT * FROM ac_short_check();
SELECT * FROM ac_short_check();
SELECT pg_sleep(2.2);
SELECT * FROM ac_short_check();
SELECT * FROM ac_short_check();

-- Hopping: answers hold until the hop ends; the key of an hourly hop is exact after writes.
SELECT fs_register_view('ac_hop', 'ac_events', entity => 'ac_user', event_time => 'ts',
  aggregations => ARRAY['count(*) over ''1 day'' as n_1d'], hop => '1 hour');
SELECT fs_set_online_mode('ac_hop', 'stream');
CREATE FUNCTION ac_hop_mismatches() RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FILTER (WHERE fs_online(fs_entity('ac_user', k), 'ac_hop') -> 'ac_hop' ->> 'n_1d' IS DISTINCT FROM
           (SELECT count(*)::text FROM ac_events WHERE user_id = k AND ts < date_bin('1 hour', now(), 'epoch')
                   AND ts >= date_bin('1 hour', now(), 'epoch') - interval '1 day'))
  FROM generate_series(1, 31) k
$$;
SELECT ac_hop_mismatches();
SELECT ac_hits('ac_hop') AS h0 \gset
SELECT ac_hop_mismatches();
INSERT INTO ac_events VALUES (3, date_bin('1 hour', now(), 'epoch') - interval '3 hours', 1, 1, 'hop');
SELECT ac_hop_mismatches();
-- 31 hits, then 30 (an hour boundary passing in between would only lower them)
SELECT ac_hits('ac_hop') - :h0 BETWEEN 1 AND 61 AS hop_hits;

-- results whose jsonb depends on the session (timestamptz: TimeZone) are never cached
SELECT fs_register_view('ac_ts', 'ac_events', entity => 'ac_user', event_time => 'ts',
  aggregations => ARRAY['last(ts) as last_ts']);
SELECT fs_set_online_mode('ac_ts', 'stream');
SELECT fs_online(fs_entity('ac_user', 1), 'ac_ts') -> 'ac_ts' ->> 'last_ts' = to_jsonb((SELECT max(ts) FROM ac_events WHERE user_id = 1 AND ts < now())) #>> '{}' AS utc_ok;
SET timezone = 'Asia/Kolkata';
SELECT fs_online(fs_entity('ac_user', 1), 'ac_ts') -> 'ac_ts' ->> 'last_ts' = to_jsonb((SELECT max(ts) FROM ac_events WHERE user_id = 1 AND ts < now())) #>> '{}' AS kolkata_ok;
RESET timezone;
SELECT ac_hits('ac_ts') AS ts_hits;

-- a source that is a SQL view carries no triggers: 'stream' says so and serves computed answers
CREATE VIEW ac_events_v AS SELECT * FROM ac_events;
SELECT fs_register_view('ac_over_view', 'ac_events_v', entity => 'ac_user', event_time => 'ts',
  aggregations => ARRAY['count(*) as n']);
SELECT fs_set_online_mode('ac_over_view', 'stream');
SELECT fs_online(fs_entity('ac_user', 1), 'ac_over_view') -> 'ac_over_view' ->> 'n' = (SELECT count(*)::text FROM ac_events WHERE user_id = 1 AND ts < now()) AS over_view_ok;

-- back to batch (or off, or dropped): the triggers go
SELECT fs_set_online_mode('ac_plain', 'batch');
SELECT fs_set_online_mode('ac_short', 'off');
SELECT fs_drop_view('ac_hop');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'ac_events'::regclass ORDER BY tgname;
SELECT * FROM ac_check();
SELECT fs_set_online_mode('ac_filtered', 'batch');
SELECT fs_set_online_mode('ac_ts', 'batch');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'ac_events'::regclass;

DROP EXTENSION feature_store;
DROP VIEW ac_events_v;
DROP TABLE ac_events;
DROP FUNCTION ac_oracle_plain(bigint, timestamptz), ac_oracle_filtered(bigint, timestamptz), ac_check(),
  ac_hits(text), ac_computed(text), ac_short_check(), ac_hop_mismatches();
