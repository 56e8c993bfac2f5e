-- Bad-input catalogue for everything besides fs_register_* / fs_drop_* (those are in
-- registry_errors.sql): training sets, materialization, online mode, serving, fs_entity I/O,
-- validation, scheduling. Each bad call shows its SQLSTATE, message and hint, and afterwards a
-- snapshot proves that none of them changed any state: registry, online tables, quarantine,
-- schedules, training-set lineage and the successful runs of the run log (the watermark).
-- (A failed materialization run is *recorded* in the run log by design, as outcome 'error';
-- the count of those rows is shown separately.)
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS feature_store;
CREATE EXTENSION IF NOT EXISTS pg_cron;

\i sql/include/err.sql
-- Every online table's rows, by view.
CREATE FUNCTION pg_temp.online_state() RETURNS text LANGUAGE plpgsql AS $$
DECLARE r record; acc text := ''; part text;
BEGIN
    FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'feature_store' AND c.relname LIKE 'online\_%' AND c.relkind = 'r' ORDER BY c.relname LOOP
        EXECUTE format('SELECT string_agg(x::text, '','' ORDER BY x::text) FROM %s x', r.t) INTO part;
        acc := acc || r.t::text || '=' || coalesce(part, '') || ';';
    END LOOP;
    RETURN acc;
END $$;
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(e::text, ',' ORDER BY name) FROM feature_store.entity e),
    (SELECT string_agg(v::text, ',' ORDER BY view_id) FROM feature_store.feature_view v),
    (SELECT string_agg(f::text, ',' ORDER BY view_id, position) FROM feature_store.view_feature f),
    (SELECT string_agg(s::text, ',' ORDER BY service_id) FROM feature_store.feature_service s),
    (SELECT string_agg(f::text, ',' ORDER BY service_id, position) FROM feature_store.service_feature f),
    pg_temp.online_state(),
    (SELECT string_agg(q::text, ',' ORDER BY quarantine_id) FROM feature_store.quarantine q),
    (SELECT string_agg(s::text, ',' ORDER BY view_name) FROM feature_store.schedule s),
    (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM feature_store.training_set t),
    (SELECT string_agg(concat_ws(' ', view_name, window_start, window_end, rows_written), ',' ORDER BY run_id)
       FROM feature_store.materialization_run WHERE outcome = 'success'),
    (SELECT string_agg(jobname || ' ' || schedule, ',' ORDER BY jobid) FROM cron.job)))
$$;

CREATE TABLE bi_hist (rider_id bigint, ts timestamptz, created timestamptz, score float8, label text);
INSERT INTO bi_hist VALUES (1, '2026-01-01', '2026-01-01', 0.5, 'a'), (2, '2026-01-02', '2026-01-02', 2.0, 'b'),
                           (1, '2026-01-03', '2026-01-03', -1, 'c');
CREATE TABLE bi_spine (rider_id bigint, ts timestamptz, note text);
INSERT INTO bi_spine VALUES (1, '2026-01-05', 'x'), (2, '2026-01-05', 'y');
CREATE TABLE bi_spine_num (rider_id numeric, ts timestamptz);
CREATE TABLE bi_spine_nokey (id bigint, ts timestamptz);
CREATE TABLE bi_spine_dtts (rider_id bigint, ts date);
CREATE TABLE bi_existing (a int);
SELECT fs_register_entity('bi_rider', 'rider_id');
SELECT fs_register_entity('bi_pair', ARRAY['a', 'b']);
SELECT fs_register_view('bi_v', 'bi_hist', 'bi_rider', event_time => 'ts', created_time => 'created',
                        checks => '{"score": {"min": 0}}');
SELECT fs_register_view('bi_v2', 'bi_hist', 'bi_rider', event_time => 'ts', features => '{score}');
SELECT fs_register_view('bi_off', 'bi_hist', 'bi_rider', event_time => 'ts', online => false);
CREATE VIEW bi_hist_view AS SELECT * FROM bi_hist;
SELECT fs_register_view('bi_over_view', 'bi_hist_view', 'bi_rider', event_time => 'ts', features => '{score}');
SELECT fs_register_service('bi_svc', '{bi_v:score,bi_v:label}');
SELECT fs_materialize('bi_v', '2025-01-01', '2026-02-01');
SELECT fs_materialize('bi_v2', '2025-01-01', '2026-02-01');
SELECT fs_create_training_set('bi_ts_ok', 'bi_spine', '{bi_v:score}');
SELECT fs_schedule_materialization('bi_v', '0 3 1 1 *') > 0 AS scheduled;
CREATE TEMP TABLE before AS SELECT pg_temp.snapshot() AS s,
    (SELECT count(*) FROM feature_store.materialization_run WHERE outcome = 'error') AS error_runs;

CREATE TEMP TABLE catalogue (n serial, fn text, call text);
INSERT INTO catalogue (fn, call) VALUES
-- point-in-time join, training columns, training sets
('pit', $$SELECT * FROM fs_point_in_time_join(NULL, '{bi_v:score}') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', NULL, 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{nope:score}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{bi_v:nope}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{bi_v@9:score}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{bi_v:score,bi_v:score}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', ARRAY[NULL]::text[], 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{{bi_v:score},{bi_v:label}}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', ARRAY[repeat('x', 100000)], 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{"bi_v:score; DROP TABLE bi_hist"}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{bi_v:score}', 'nope') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{bi_v:score}', 'note') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{bi_v:score}', NULL) AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine_nokey', '{bi_v:score}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine_num', '{bi_v:score}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine_dtts', '{bi_v:score}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{bi_v:score}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{bi_v:score,bi_v2:score}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_spine', '{bi_v:score}', 'ts')$$),
('pit', $$SELECT * FROM fs_point_in_time_join('bi_hist_seq', '{bi_v:score}', 'ts') AS t(a int)$$),
('pit', $$SELECT * FROM fs_point_in_time_join(0, '{bi_v:score}', 'ts') AS t(a int)$$),
('columns', $$SELECT fs_training_columns(4294967295, '{bi_v:score}', 'ts')$$),
('columns', $$SELECT fs_training_columns('bi_spine', '{bi_v:nope}', 'ts')$$),
('columns', $$SELECT fs_training_columns('bi_spine', '{bi_pair_view:x}', 'ts')$$),
('training', $$SELECT fs_create_training_set('bi_existing', 'bi_spine', '{bi_v:score}', 'ts')$$),
('training', $$SELECT fs_create_training_set(NULL, 'bi_spine', '{bi_v:score}', 'ts')$$),
('training', $$SELECT fs_create_training_set('', 'bi_spine', '{bi_v:score}', 'ts')$$),
('training', $$SELECT fs_create_training_set('no_such_schema.t', 'bi_spine', '{bi_v:score}', 'ts')$$),
('training', $$SELECT fs_create_training_set('bi_new', 'bi_spine', '{bi_v:score,bi_v2:score}', 'ts')$$),
('training', $$SELECT fs_create_training_set('bi_new', 'bi_spine', '{bi_v:score}', 'nope')$$),
-- materialization
('materialize', $$SELECT fs_materialize('nope', '2025-01-01', '2026-01-01')$$),
('materialize', $$SELECT fs_materialize('bi_v@9', '2025-01-01', '2026-01-01')$$),
('materialize', $$SELECT fs_materialize('', '2025-01-01', '2026-01-01')$$),
('materialize', $$SELECT fs_materialize(NULL, '2025-01-01', '2026-01-01')$$),
('materialize', $$SELECT fs_materialize('bi_v', NULL, '2026-01-01')$$),
('materialize', $$SELECT fs_materialize('bi_v', '2026-01-01', NULL)$$),
('materialize', $$SELECT fs_materialize('bi_v', '2026-02-01', '2026-01-01')$$),
('materialize', $$SELECT fs_materialize('bi_off', '2025-01-01', '2026-01-01')$$),
('materialize', $$SELECT fs_materialize('bi_svc', '2025-01-01', '2026-01-01')$$),
('materialize', $$SELECT fs_materialize('bi_v:score', '2025-01-01', '2026-01-01')$$),
-- online mode and reload
('online_mode', $$SELECT fs_set_online_mode('bi_over_view', 'stream')$$),
('online_mode', $$SELECT fs_set_online_mode('bi_v', 'fast')$$),
('online_mode', $$SELECT fs_set_online_mode('bi_v', NULL)$$),
('online_mode', $$SELECT fs_set_online_mode('nope', 'batch')$$),
('online_mode', $$SELECT fs_set_online_mode(NULL, 'off')$$),
('reload', $$SELECT fs_online_reload('nope')$$),
('reload', $$SELECT fs_online_reload(NULL)$$),
-- serving
('online', $$SELECT fs_online('bi_rider:1', 'nope')$$),
('online', $$SELECT fs_online('bi_rider:1', 'bi_off')$$),
('online', $$SELECT fs_online('bi_rider:1', '')$$),
('online', $$SELECT fs_online('bi_rider:1', 'bi_v@9')$$),
('online', $$SELECT fs_online('bi_rider:(1,2)', 'bi_v')$$),
('online', $$SELECT fs_online('bi_rider:abc', 'bi_v')$$),
('online', $$SELECT fs_online('bi_rider:99999999999999999999', 'bi_v')$$),
('online', $$SELECT fs_online('bi_pair:(1,2)', 'bi_v')$$),
('online', $$SELECT fs_online('nope:1', 'bi_v')$$),
('online', $$SELECT fs_online('bi_pair:(1,2)', 'bi_svc')$$),
('vector', $$SELECT fs_online_vector('bi_pair:(1,2)', 'bi_v2')$$),
('detail', $$SELECT * FROM fs_online_detail('nope:1', 'bi_v')$$),
('vector', $$SELECT fs_online_vector('bi_rider:1', 'bi_svc')$$),
('vector', $$SELECT fs_online_vector('bi_rider:1', 'nope')$$),
('vector', $$SELECT fs_online_vector('bi_rider:1', NULL)$$),
('batch', $$SELECT * FROM fs_online_batch(ARRAY['bi_rider:1']::fs_entity[], 'nope')$$),
('batch', $$SELECT * FROM fs_online_batch(ARRAY['bi_rider:1', 'bi_pair:(1,2)']::fs_entity[], 'bi_v')$$),
('batch', $$SELECT * FROM fs_online_batch(ARRAY['bi_rider:x']::fs_entity[], 'bi_v')$$),
('detail', $$SELECT * FROM fs_online_detail('bi_rider:1', 'nope')$$),
('detail', $$SELECT * FROM fs_online_detail('bi_rider:1', 'bi_off')$$),
-- fs_entity input and constructor
('entity', $$SELECT 'bi_rider'::fs_entity$$),
('entity', $$SELECT 'bi_rider:(1,2'::fs_entity$$),
('entity', $$SELECT '::'::fs_entity$$),
('entity', $$SELECT ('bi_rider:' || repeat('(', 1000))::fs_entity$$),
('entity', $$SELECT 'bi rider:1'::fs_entity$$),
('entity', $$SELECT fs_entity('bad name', 1)$$),
('entity', $$SELECT fs_entity('bi_rider')$$),
('entity', $$SELECT fs_entity('bi_rider', NULL::int)$$),
('entity', $$SELECT fs_entity(NULL, 1)$$),
('entity', $$SELECT fs_entity('bi_rider', 1, 2, 3, 4, 5, 6, 7, 8, 9)$$),
-- validation
('validate', $$SELECT * FROM fs_validate('nope')$$),
('validate', $$SELECT * FROM fs_validate(NULL)$$),
('validate', $$SELECT * FROM fs_validate('bi_v@9')$$),
-- scheduling
('schedule', $$SELECT fs_schedule_materialization('bi_v', 'not a schedule')$$),
('schedule', $$SELECT fs_schedule_materialization('bi_v', NULL)$$),
('schedule', $$SELECT fs_schedule_materialization('nope', '0 3 1 1 *')$$),
('schedule', $$SELECT fs_schedule_materialization('bi_v@1', '0 3 1 1 *')$$),
('schedule', $$SELECT fs_schedule_materialization('bi_v', '61 * * * *')$$),
('unschedule', $$SELECT fs_unschedule_materialization(NULL)$$),
('unschedule', $$SELECT fs_unschedule_materialization('nope')$$);

-- (messages and hints cut at 110 characters: one call names a 100000-character reference)
SELECT c.n, c.fn, e.state, left(e.message, 110) AS message, left(e.hint, 110) AS hint
FROM catalogue c, LATERAL pg_temp.err(c.call) e ORDER BY c.n;
-- Every call failed cleanly: no internal error (XX000), none succeeded (second run of the catalogue).
SELECT count(*) AS bad_calls, count(DISTINCT call) AS distinct_calls, count(DISTINCT e.state) AS sqlstates,
       count(*) FILTER (WHERE e.state = 'XX000') AS internal_errors,
       count(*) FILTER (WHERE e.state = 'no error') AS succeeded
FROM catalogue c, LATERAL pg_temp.err(c.call) e;

-- Nothing above changed any state (the catalogue ran twice).
SELECT pg_temp.snapshot() = s AS state_unchanged FROM before;
SELECT count(*) FROM bi_hist AS bi_hist_still_there;
SELECT to_regclass('bi_new') IS NULL AS no_training_table_created;
-- Failed materialization runs were recorded (by design), nothing else.
SELECT (SELECT count(*) FROM feature_store.materialization_run WHERE outcome = 'error') - error_runs AS error_runs_recorded
FROM before;

-- Crash regressions found by test/t/061_fuzz_functions.pl: a NULL entity in the non-STRICT
-- serving calls was dereferenced (segfault). Now: no features, like fs_online(NULL).
SELECT fs_online(NULL::fs_entity, 'bi_v') AS named, fs_online_vector(NULL::fs_entity, 'bi_v2') AS vector,
       (SELECT count(*) FROM fs_online_detail(NULL::fs_entity, 'bi_v')) AS detail_rows,
       (SELECT count(*) FROM fs_online_detail(NULL::fs_entity)) AS detail_all_rows;

SELECT fs_unschedule_materialization('bi_v');
DROP TABLE bi_ts_ok;
DROP EXTENSION feature_store CASCADE;
DROP EXTENSION pg_cron;
DROP VIEW bi_hist_view;
DROP TABLE bi_hist, bi_spine, bi_spine_num, bi_spine_nokey, bi_spine_dtts, bi_existing;
