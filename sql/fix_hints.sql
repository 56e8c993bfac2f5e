-- Messages that point to the fix: each mistake a new user makes shows its SQLSTATE,
-- message, detail and hint, and changes nothing.
--   - fs_point_in_time_join in FROM without a column definition list: the parser's error gets a
--     hint naming fs_training_columns and fs_create_training_set (shown as psql prints it; a
--     caught error keeps the parser's wording, and other functions' errors get no hint);
--   - fs_register_entity('e', '{k}'), an array literal reaching the one-key form: ARRAY['k'];
--   - a missing event-time, key or spine column: the detail lists the relation's columns;
--   - a relation that cannot be a spine: the hint names spine_query.
SET client_min_messages = warning;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
CREATE EXTENSION IF NOT EXISTS feature_store;

\i sql/include/errd.sql
CREATE FUNCTION pg_temp.registry() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(e::text, ',' ORDER BY name) FROM feature_store.entity e),
    (SELECT string_agg(v::text, ',' ORDER BY view_id) FROM feature_store.feature_view v),
    (SELECT string_agg(t::text, ',' ORDER BY training_set_id) FROM feature_store.training_set t)))
$$;

CREATE TABLE fh_hist (driver_id bigint, event_ts timestamptz, trips int, "Odd Name" text);
INSERT INTO fh_hist VALUES (1, '2026-01-01', 5, 'a'), (2, '2026-01-02', 7, 'b');
CREATE TABLE fh_spine (driver_id bigint, event_timestamp timestamptz);
CREATE SEQUENCE fh_seq;
INSERT INTO fh_spine VALUES (1, '2026-01-03'), (2, '2026-01-03');
SELECT fs_register_entity('fh_driver', 'driver_id');
SELECT fs_register_view('fh_stats', 'fh_hist', 'fh_driver', event_time => 'event_ts', features => '{trips}');
CREATE TEMP TABLE fh_before AS SELECT pg_temp.registry() AS r;

-- 1. No column definition list, as psql shows it: the hint says how to get one.
\set VERBOSITY default
SELECT * FROM fs_point_in_time_join('fh_spine', '{fh_stats:trips}');
SELECT count(*) FROM public.fs_point_in_time_join('fh_spine', '{fh_stats:trips}') j;
SELECT * FROM "fs_point_in_time_join"(features => '{fh_stats:trips}', spine_query => 'TABLE fh_spine');
-- from a PL/pgSQL block that does not catch it
DO $$ BEGIN PERFORM * FROM fs_point_in_time_join('fh_spine', '{fh_stats:trips}'); END $$;
-- other record functions keep the parser's message alone
SELECT * FROM json_to_record('{"a": 1}');
SELECT * FROM fs_point_in_time_join('fh_spine', '{fh_stats:trips}') AS t(driver_id bigint, event_timestamp timestamptz, trips int)
  CROSS JOIN json_to_record('{"a": 1}');
-- the error text itself is the parser's, caught as such (no hint where the caller catches it)
SELECT * FROM pg_temp.errd($$SELECT * FROM fs_point_in_time_join('fh_spine', '{fh_stats:trips}')$$);
-- and the call outside FROM (the function itself reports it)
SELECT * FROM pg_temp.errd($$SELECT fs_point_in_time_join('fh_spine', '{fh_stats:trips}')$$);
-- with the list it works
SELECT fs_training_columns('fh_spine', '{fh_stats:trips}');
SELECT * FROM fs_point_in_time_join('fh_spine', '{fh_stats:trips}') AS t(driver_id bigint, event_timestamp timestamptz, trips int)
ORDER BY driver_id;

-- 2. The rest, each with SQLSTATE, message, detail and hint.
SELECT n, e.* FROM (VALUES
  -- an array literal reaching the one-key form
  (1, $$SELECT fs_register_entity('fh_e', '{driver_id}')$$),
  (2, $$SELECT fs_register_entity('fh_e', '{driver_id, "zone"}')$$),
  -- not an array literal: the plain invalid-name error
  (3, $$SELECT fs_register_entity('fh_e', 'driver id')$$),
  -- an array holding such a literal gets the same hint: the C function cannot tell the forms apart
  (4, $$SELECT fs_register_entity('fh_e', ARRAY['{driver_id}'])$$),
  -- registration: missing event time, created time, key, feature
  (5, $$SELECT fs_register_view('fh_v', 'fh_hist', 'fh_driver')$$),
  (6, $$SELECT fs_register_view('fh_v', 'fh_hist', 'fh_driver', event_time => 'event_ts', created_time => 'created')$$),
  (7, $$SELECT fs_register_view('fh_v', 'fh_spine', 'fh_driver', event_time => 'nope')$$),
  (8, $$SELECT fs_register_view('fh_v', 'fh_hist', 'fh_driver', event_time => 'event_ts', features => '{trip}')$$),
  -- the spine lacks the time or a key column
  (9, $$SELECT fs_training_columns('fh_spine', '{fh_stats:trips}', spine_time => 'ts')$$),
  (10, $$SELECT fs_training_columns('fh_hist', '{fh_stats:trips}')$$),
  (11, $$SELECT fs_training_columns(features => '{fh_stats:trips}', spine_query => 'SELECT event_timestamp FROM fh_spine')$$),
  -- a relation that cannot be a spine
  (12, $$SELECT fs_training_columns('fh_seq', '{fh_stats:trips}')$$)
) AS q(n, sql), LATERAL pg_temp.errd(q.sql) e ORDER BY n;
SELECT r = pg_temp.registry() AS nothing_changed FROM fh_before;
-- what the hint says works
SELECT fs_register_entity('fh_e', ARRAY['driver_id']);
SELECT join_keys FROM fs_entities WHERE entity = 'fh_e';

-- 3. A column of the source dropped after registration: the detail lists what is there now.
CREATE TABLE fh_hist2 (driver_id bigint, event_ts timestamptz, trips int);
SELECT fs_register_view('fh_stats2', 'fh_hist2', 'fh_driver', event_time => 'event_ts');
ALTER TABLE fh_hist2 RENAME COLUMN event_ts TO event_time;
SELECT * FROM pg_temp.errd($$SELECT fs_training_columns('fh_spine', '{fh_stats2:trips}')$$);

SELECT fs_drop_view('fh_stats2');
SELECT fs_drop_view('fh_stats');
SELECT fs_drop_entity('fh_driver');
SELECT fs_drop_entity('fh_e');
DROP TABLE fh_hist, fh_hist2, fh_spine;
DROP SEQUENCE fh_seq;
