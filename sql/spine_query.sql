-- A spine given as a query (spine_query => 'SELECT ...'): the same rows as the same spine given
-- as a table (oracle: the table spine, row by row), in the query's order; queries that are not one
-- read-only SELECT are refused and change nothing; the query runs with the caller's privileges.
-- Lineage of a spine that is gone afterwards (a query, a temporary table): its row count and
-- checksum, recomputed here in SQL from hash_record_extended.
SET client_min_messages = warning;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
CREATE EXTENSION IF NOT EXISTS feature_store;

\i sql/include/errd.sql

-- The checksum, independently: the sum over rows of hash_record_extended(row, 0), modulo 2^64,
-- as 16 hex digits.
CREATE FUNCTION pg_temp.checksum(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s numeric;
BEGIN
    EXECUTE format('SELECT coalesce(sum(hash_record_extended(r, 0)::numeric), 0) FROM (%s) r', q) INTO s;
    s := mod(mod(s, 18446744073709551616) + 18446744073709551616, 18446744073709551616);
    IF s >= 9223372036854775808 THEN s := s - 18446744073709551616; END IF;
    RETURN lpad(to_hex(s::bigint), 16, '0');
END $$;

-- Two views: one keyed bigint, one keyed (bigint, text); history with NULL features.
SELECT setseed(0.13);
CREATE TABLE sq_hist (driver_id bigint, event_timestamp timestamptz, trips int, note text);
INSERT INTO sq_hist
SELECT 1 + (random() * 30)::int, timestamptz '2026-01-01' + (random() * 240)::int * interval '1 hour',
       CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 100)::int END, md5(random()::text)
FROM generate_series(1, 400);
CREATE TABLE sq_zone_hist (driver_id bigint, zone text, event_timestamp timestamptz, fare numeric);
INSERT INTO sq_zone_hist
SELECT 1 + (random() * 30)::int, (ARRAY['n', 's', 'e'])[1 + (random() * 2)::int],
       timestamptz '2026-01-01' + (random() * 240)::int * interval '1 hour', round((random() * 50)::numeric, 2)
FROM generate_series(1, 400);
SELECT fs_register_entity('sq_driver', 'driver_id');
SELECT fs_register_entity('sq_driver_zone', ARRAY['driver_id', 'zone']);
SELECT fs_register_view('sq_stats', 'sq_hist', 'sq_driver');
SELECT fs_register_view('sq_zone', 'sq_zone_hist', 'sq_driver_zone');

-- The spine table: NULL keys and times, repeated keys and times, keys without history.
CREATE TABLE sq_spine (rn int, driver_id bigint, zone text, event_timestamp timestamptz);
INSERT INTO sq_spine
SELECT g, CASE WHEN g % 17 = 0 THEN NULL ELSE 1 + (random() * 35)::int END,
       (ARRAY['n', 's', 'e', 'w'])[1 + (random() * 3)::int],
       CASE WHEN g % 23 = 0 THEN NULL ELSE timestamptz '2026-01-01' + (random() * 260)::int * interval '1 hour' END
FROM generate_series(1, 300) g;

-- 1. The same spine as a table and as a query: the same rows, row by row (by rn), and in the
-- same order (both read the table in its physical order). ordinality is the output position.
CREATE TEMP TABLE sq_by_table AS
SELECT * FROM ROWS FROM (fs_point_in_time_join('sq_spine', '{sq_stats:*, sq_zone:fare}')
                         AS (rn int, driver_id bigint, zone text, event_timestamp timestamptz, trips int, note text,
                             fare numeric)) WITH ORDINALITY AS t;
CREATE TEMP TABLE sq_by_query AS
SELECT * FROM ROWS FROM (fs_point_in_time_join(features => '{sq_stats:*, sq_zone:fare}',
                                               spine_query => 'SELECT * FROM sq_spine')
                         AS (rn int, driver_id bigint, zone text, event_timestamp timestamptz, trips int, note text,
                             fare numeric)) WITH ORDINALITY AS t;
SELECT (SELECT count(*) FROM sq_by_table) AS table_rows, (SELECT count(*) FROM sq_by_query) AS query_rows,
       (SELECT count(*) FROM sq_by_table a FULL JOIN sq_by_query b USING (rn)
        WHERE a IS DISTINCT FROM b) AS rows_differing,
       (SELECT count(*) FROM sq_by_table a JOIN sq_by_query b USING (rn) WHERE a.ordinality <> b.ordinality) AS order_differing,
       (SELECT count(*) FROM sq_by_table WHERE trips IS NOT NULL) AS with_trips,
       (SELECT count(*) FROM sq_by_table WHERE fare IS NOT NULL) AS with_fare;

-- 2. A query computing the spine (renamed and cast columns, a filter, an order): the oracle is
-- the same query materialized as a table first. spine_time names a column of the query.
CREATE TABLE sq_spine_computed AS
SELECT rn, driver_id, zone, event_timestamp::timestamp AS at FROM sq_spine WHERE rn % 3 <> 0 ORDER BY rn DESC;
CREATE TEMP TABLE sq_computed_table AS
SELECT * FROM ROWS FROM (fs_point_in_time_join('sq_spine_computed', '{sq_stats:trips, sq_zone:fare}', spine_time => 'at')
                         AS (rn int, driver_id bigint, zone text, at timestamp, trips int, fare numeric))
     WITH ORDINALITY AS t(rn, driver_id, zone, at, trips, fare, o);
CREATE TEMP TABLE sq_computed_query AS
SELECT * FROM ROWS FROM (fs_point_in_time_join(
         features => '{sq_stats:trips, sq_zone:fare}', spine_time => 'at',
         spine_query => 'SELECT rn, driver_id, zone, event_timestamp::timestamp AS at FROM sq_spine WHERE rn % 3 <> 0 ORDER BY rn DESC')
                         AS (rn int, driver_id bigint, zone text, at timestamp, trips int, fare numeric))
     WITH ORDINALITY AS t(rn, driver_id, zone, at, trips, fare, o);
SELECT (SELECT count(*) FROM sq_computed_query) AS query_rows,
       (SELECT count(*) FROM sq_spine_computed) AS table_rows,
       (SELECT count(*) FROM sq_computed_table a FULL JOIN sq_computed_query b USING (rn)
        WHERE (a.driver_id, a.zone, a.at, a.trips, a.fare) IS DISTINCT FROM (b.driver_id, b.zone, b.at, b.trips, b.fare))
         AS rows_differing,
       (SELECT array_agg(rn ORDER BY o) FROM sq_computed_query)
         = (SELECT array_agg(rn ORDER BY rn DESC) FROM sq_spine WHERE rn % 3 <> 0) AS in_query_order;
SELECT fs_training_columns(features => '{sq_stats:trips}', spine_time => 'at',
                           spine_query => 'SELECT rn, driver_id, event_timestamp::timestamp AS at FROM sq_spine');

-- 3. fs_create_training_set from a query: the same table as from the table spine; lineage keeps
-- the query, the row count and the checksum (spine is NULL).
SELECT fs_create_training_set('sq_ts_table', 'sq_spine', '{sq_stats:*, sq_zone:fare}');
SELECT fs_create_training_set('sq_ts_query', features => '{sq_stats:*, sq_zone:fare}',
                              spine_query => 'SELECT * FROM sq_spine WHERE driver_id IS NOT NULL');
SELECT count(*) AS rows_differing
FROM ((TABLE sq_ts_query EXCEPT ALL (SELECT * FROM sq_ts_table WHERE driver_id IS NOT NULL))
      UNION ALL ((SELECT * FROM sq_ts_table WHERE driver_id IS NOT NULL) EXCEPT ALL TABLE sq_ts_query)) d;
SELECT target, spine, spine_query, row_count, spine_checksum IS NULL AS no_checksum
FROM fs_training_sets WHERE target = 'public.sq_ts_table';
SELECT target, spine, spine_query, row_count,
       row_count = (SELECT count(*) FROM sq_spine WHERE driver_id IS NOT NULL) AS row_count_ok,
       spine_checksum = pg_temp.checksum('SELECT * FROM sq_spine WHERE driver_id IS NOT NULL') AS checksum_ok,
       spine_checksum <> pg_temp.checksum('SELECT * FROM sq_spine') AS checksum_sees_rows
FROM fs_training_sets WHERE target = 'public.sq_ts_query';

-- 4. A temporary spine (text, NULLs, a composite-key view): its row count and checksum are
-- recorded; the checksum does not depend on the spine's row order; a permanent spine has none.
CREATE TEMP TABLE sq_tmp_spine AS SELECT * FROM sq_spine WHERE rn <= 120;
CREATE TEMP TABLE sq_tmp_spine_rev AS SELECT * FROM sq_spine WHERE rn <= 120 ORDER BY rn DESC;
SELECT fs_create_training_set('sq_ts_tmp', 'sq_tmp_spine', '{sq_zone:fare}');
SELECT fs_create_training_set('sq_ts_tmp_rev', 'sq_tmp_spine_rev', '{sq_zone:fare}');
SELECT target, spine LIKE 'pg_temp_%.sq_tmp_spine%' AS temp_name, spine_query, row_count,
       spine_checksum = pg_temp.checksum('SELECT * FROM sq_tmp_spine') AS checksum_ok
FROM fs_training_sets WHERE target LIKE 'public.sq_ts_tmp%' ORDER BY training_set_id;
SELECT count(DISTINCT spine_checksum) AS distinct_checksums FROM fs_training_sets WHERE target LIKE 'public.sq_ts_tmp%';
-- a spine column type without an extended hash function (json): no checksum, the set is made
CREATE TEMP TABLE sq_tmp_json AS SELECT rn, driver_id, event_timestamp, '{}'::json AS meta FROM sq_spine WHERE rn <= 10;
SELECT fs_create_training_set('sq_ts_json', 'sq_tmp_json', '{sq_stats:trips}');
SELECT row_count, spine_checksum IS NULL AS no_checksum FROM fs_training_sets WHERE target = 'public.sq_ts_json';
-- an empty spine: checksum of zero rows
SELECT fs_create_training_set('sq_ts_empty', features => '{sq_stats:trips}',
                              spine_query => 'SELECT * FROM sq_spine WHERE false');
SELECT row_count, spine_checksum, spine_checksum = pg_temp.checksum('SELECT * FROM sq_spine WHERE false') AS checksum_ok
FROM fs_training_sets WHERE target = 'public.sq_ts_empty';

-- 5. Refused: anything but one read-only SELECT, and both or neither spine; nothing changes.
CREATE TABLE sq_log (x int);
CREATE FUNCTION sq_writes() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO sq_log VALUES (1); RETURN 1; END $$;
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
  SELECT concat_ws(' ', (SELECT count(*) FROM sq_spine), (SELECT count(*) FROM sq_log),
                   (SELECT count(*) FROM feature_store.training_set), to_regclass('sq_made') IS NULL,
                   (SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND mode LIKE '%Exclusive%'
                      AND relation = 'sq_spine'::regclass))
$$;
CREATE TEMP TABLE sq_before AS SELECT pg_temp.state() AS s;
SELECT n, e.* FROM (VALUES
  (1, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'DELETE FROM sq_spine')$$),
  (2, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELECT * FROM sq_spine; DELETE FROM sq_spine')$$),
  (3, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'WITH d AS (DELETE FROM sq_spine RETURNING *) SELECT * FROM d')$$),
  (4, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELECT * FROM sq_spine FOR UPDATE')$$),
  (5, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELECT * FROM (SELECT * FROM sq_spine FOR SHARE) s')$$),
  (6, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELECT * INTO sq_made FROM sq_spine')$$),
  (7, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'CREATE TABLE sq_made (x int)')$$),
  (8, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => '')$$),
  (9, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELEC 1')$$),
  (10, $$SELECT count(*) FROM fs_point_in_time_join(features => '{sq_stats:trips}', spine_query => 'SELECT *, sq_writes() AS w FROM sq_spine') AS t(rn int, driver_id bigint, zone text, event_timestamp timestamptz, w int, trips int)$$),
  (11, $$SELECT fs_create_training_set('sq_made', features => '{sq_stats:trips}', spine_query => 'SELECT *, sq_writes() AS w FROM sq_spine')$$),
  (12, $$SELECT fs_create_training_set('sq_made', features => '{sq_stats:trips}', spine_query => 'UPDATE sq_spine SET rn = 0 RETURNING *')$$),
  (13, $$SELECT fs_training_columns('sq_spine', '{sq_stats:trips}', spine_query => 'SELECT * FROM sq_spine')$$),
  (14, $$SELECT fs_training_columns(features => '{sq_stats:trips}')$$),
  (15, $$SELECT fs_create_training_set('sq_made', features => '{sq_stats:trips}')$$),
  (16, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELECT rn AS driver_id, driver_id, event_timestamp FROM sq_spine')$$),
  (17, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELECT rn, event_timestamp FROM sq_spine')$$),
  (18, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELECT rn, driver_id FROM sq_spine')$$),
  (19, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELECT driver_id, ''2026-01-01'' AS event_timestamp FROM sq_spine')$$),
  (20, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => 'SELECT * FROM sq_spine WHERE rn = $1')$$),
  (21, $$SELECT fs_training_columns(features => '{sq_stats:trips}', spine_query => NULL)$$)
) AS q(n, sql), LATERAL pg_temp.errd(q.sql) e ORDER BY n;
SELECT s = pg_temp.state() AS nothing_changed FROM sq_before;
SHOW transaction_read_only;

-- 6. The query runs as the caller: a role that may read the history but not the spine table is
-- refused, and may use a spine it can read; the session is not left read-only.
CREATE ROLE sq_reader;
GRANT SELECT ON sq_hist TO sq_reader;
CREATE TABLE sq_reader_spine AS SELECT driver_id, event_timestamp FROM sq_spine WHERE rn <= 5;
GRANT SELECT ON sq_reader_spine TO sq_reader;
SET ROLE sq_reader;
SELECT * FROM pg_temp.errd($$SELECT count(*) FROM fs_point_in_time_join(features => '{sq_stats:trips}', spine_query => 'SELECT driver_id, event_timestamp FROM sq_spine') AS t(driver_id bigint, event_timestamp timestamptz, trips int)$$);
SELECT count(*) FROM fs_point_in_time_join(features => '{sq_stats:trips}', spine_query => 'SELECT * FROM sq_reader_spine')
     AS t(driver_id bigint, event_timestamp timestamptz, trips int);
RESET ROLE;
BEGIN;
SELECT count(*) FROM fs_point_in_time_join(features => '{sq_stats:trips}', spine_query => 'SELECT * FROM sq_reader_spine')
     AS t(driver_id bigint, event_timestamp timestamptz, trips int);
INSERT INTO sq_log VALUES (2);
SELECT count(*) AS written_after_join FROM sq_log;
ROLLBACK;

DROP TABLE sq_ts_table, sq_ts_query, sq_ts_tmp, sq_ts_tmp_rev, sq_ts_json, sq_ts_empty, sq_reader_spine, sq_log;
DROP FUNCTION sq_writes();
REVOKE SELECT ON sq_hist FROM sq_reader;
DROP ROLE sq_reader;
