-- Run log: a successful run's record commits with its work; a failed run's work is rolled
-- back, its error reaches the caller, and its record is committed anyway (written by a
-- background worker in a transaction of its own).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';

\i sql/include/err.sql
\i sql/include/runlog_test.sql

CREATE TABLE rl_hist (k int, ev timestamptz, x float8);
CREATE TABLE rl_sink (n int);
INSERT INTO rl_hist VALUES (1, '2026-01-01', 0.5), (2, '2026-01-02', 5), (3, '2026-01-03', NULL);
SELECT fs_register_entity('rl_k', 'k');
SELECT fs_register_view('rl_view', 'rl_hist', 'rl_k', 'ev', checks => '{"x": {"max": 1}}');
CREATE VIEW rl_runs AS
SELECT run_id - min(run_id) OVER () + 1 AS n, view, version, kind, window_start, window_end,
       rows_written, rows_quarantined, outcome, error, sqlstate, run_by = current_user AS by_me,
       duration >= interval '0' AND started_at <= now() AS timing_sane
FROM fs_runs WHERE view = 'rl_view';

-- Success: the record is part of the run's transaction.
SELECT fs_test.run_logged_test('rl_view', 'batch', 'INSERT INTO rl_sink VALUES (1), (2)',
                                     quarantine => true, start_ts => '2026-01-01', end_ts => '2026-01-31');
SELECT * FROM rl_runs ORDER BY n;
-- ...so a successful run inside a transaction that rolls back leaves neither data nor record
BEGIN;
SELECT fs_test.run_logged_test('rl_view', 'batch', 'INSERT INTO rl_sink VALUES (3)');
ROLLBACK;
SELECT count(*) AS runs FROM rl_runs;
SELECT array_agg(n ORDER BY n) AS sink FROM rl_sink;

-- Failure: the caller's statement fails with the original error, the work is rolled back,
-- and the record is there after the caller's transaction rolled back.
BEGIN;
SELECT fs_test.run_logged_test('rl_view', 'batch', 'INSERT INTO rl_sink VALUES (4); SELECT 1/0', quarantine => true);
ROLLBACK;
SELECT array_agg(n ORDER BY n) AS sink FROM rl_sink;
SELECT * FROM rl_runs ORDER BY n;

-- Caught by the caller: the caller goes on; the failure is recorded, the caller's own writes stay.
DO $$
BEGIN
    INSERT INTO rl_sink VALUES (5);
    BEGIN
        PERFORM fs_test.run_logged_test('rl_view', 'incremental', 'INSERT INTO rl_sink VALUES (6); SELECT x::int / 0 FROM rl_hist');
    EXCEPTION WHEN division_by_zero THEN
        RAISE WARNING 'caller caught: %', SQLERRM;
    END;
    INSERT INTO rl_sink VALUES (7);
END $$;
SELECT array_agg(n ORDER BY n) AS sink FROM rl_sink;
SELECT n, kind, outcome, error, sqlstate FROM rl_runs ORDER BY n DESC LIMIT 1;

-- A cancelled run (statement_timeout) is recorded with its SQLSTATE.
SET statement_timeout = '200ms';
SELECT fs_test.run_logged_test('rl_view', 'stream', 'SELECT pg_sleep(2)');
RESET statement_timeout;
SELECT n, kind, outcome, error, sqlstate FROM rl_runs ORDER BY n DESC LIMIT 1;

-- A run whose quarantine step fails (source dropped mid-way) is recorded as failed too.
CREATE TABLE rl_hist2 (k int, ev timestamptz, x float8);
SELECT fs_register_view('rl_view', 'rl_hist2', 'rl_k', 'ev', checks => '{"x": {"min": 0}}');
SELECT * FROM pg_temp.err($$SELECT fs_test.run_logged_test('rl_view', 'batch', 'DROP TABLE rl_hist2', quarantine => true)$$)
\gset
SELECT :'state' AS state, :'message' LIKE 'relation % does not exist' AS message_ok;
SELECT n, version, outcome, error = :'message' AS same_error, sqlstate FROM rl_runs ORDER BY n DESC LIMIT 1;
SELECT count(*) AS rl_hist2_still_there FROM rl_hist2;

-- kind NULL: what an incremental run logs; outside pg_cron that is 'incremental'.
SELECT fs_test.run_logged_test('rl_view', NULL, 'SELECT 1');
SELECT n, kind, outcome FROM rl_runs ORDER BY n DESC LIMIT 1;

-- The streaming pattern: a statement trigger with a transition table logs a 'stream' run per
-- statement and quarantines the statement's failing rows (compared with a plain count).
CREATE TABLE rl_stream (k int, ev timestamptz, x float8);
SELECT fs_register_view('rl_stream', 'rl_stream', 'rl_k', 'ev', checks => '{"x": {"not_null": true, "max": 1}}');
CREATE TRIGGER rl_stream_ins AFTER INSERT ON rl_stream REFERENCING NEW TABLE AS "new ""rows"""
    FOR EACH STATEMENT EXECUTE FUNCTION fs_test.stream_logged_test('rl_stream');
INSERT INTO rl_stream SELECT g, '2026-01-01'::timestamptz + g * interval '1 hour',
    CASE WHEN g % 10 = 0 THEN NULL WHEN g % 7 = 0 THEN 2 ELSE 0.5 END FROM generate_series(1, 100) g;
INSERT INTO rl_stream VALUES (1, '2026-02-01', 3);
SELECT kind, rows_written, rows_quarantined, outcome FROM fs_runs WHERE view = 'rl_stream' ORDER BY run_id;
SELECT (SELECT count(*) FROM fs_quarantine WHERE view = 'rl_stream') AS quarantined,
       (SELECT count(*) FROM rl_stream WHERE x IS NULL OR x > 1) AS oracle;
SELECT * FROM pg_temp.err($$SELECT fs_test.stream_logged_test()$$);
SELECT fs_drop_view('rl_stream');
DROP TABLE rl_stream;

-- Bad input.
SELECT * FROM pg_temp.err($$SELECT fs_test.run_logged_test('rl_view', 'hourly', 'SELECT 1')$$);
SELECT * FROM pg_temp.err($$SELECT fs_test.run_logged_test('no_view', 'batch', 'SELECT 1')$$);
SELECT * FROM pg_temp.err($$SELECT fs_test.run_logged_test('rl_view', 'batch', NULL)$$);
SELECT count(*) AS runs FROM rl_runs;

-- The run log is metadata: everyone reads it, nobody writes it directly.
CREATE ROLE regress_rl_plain;
SET ROLE regress_rl_plain;
SELECT count(*) > 0 AS readable FROM fs_runs;
SELECT count(*) > 0 AS readable FROM feature_store.materialization_run;
SELECT * FROM pg_temp.err($$DELETE FROM feature_store.materialization_run$$);
SELECT * FROM pg_temp.err($$SELECT nextval('feature_store.materialization_run_run_id_seq')$$);
RESET ROLE;
DROP ROLE regress_rl_plain;

-- Records outlive the view (history), quarantined rows do not.
SELECT fs_drop_view('rl_view');
SELECT count(*) > 0 AS runs_kept FROM fs_runs WHERE view = 'rl_view';
SELECT fs_drop_entity('rl_k');
DROP VIEW rl_runs;
DROP TABLE rl_hist, rl_sink;

-- Leave the database as found: the registry tests create the extension themselves.
DROP EXTENSION feature_store;
