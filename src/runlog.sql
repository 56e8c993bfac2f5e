-- Materialization run log (src/runlog.c): one row per run, successful or not. Metadata (no
-- feature values), so readable by everyone like the registry; written only by feature_store.
-- window_start / window_end are NULL for an open side. A failed run's row is written in a
-- transaction of its own, so it stays although the run's work was rolled back.
CREATE TABLE feature_store.materialization_run (
    run_id           bigserial PRIMARY KEY,
    view_id          int NOT NULL,
    view_name        text NOT NULL,
    view_version     int NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('batch', 'incremental', 'scheduled', 'stream')),
    window_start     timestamptz,
    window_end       timestamptz,
    rows_written     bigint NOT NULL DEFAULT 0,
    rows_quarantined bigint NOT NULL DEFAULT 0,
    started_at       timestamptz NOT NULL,
    duration         interval NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('success', 'error')),
    error            text,
    sqlstate         text,
    run_by           name NOT NULL,
    CHECK ((outcome = 'error') = (error IS NOT NULL))
);
CREATE INDEX ON feature_store.materialization_run (view_name, started_at);
GRANT SELECT ON feature_store.materialization_run TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.materialization_run', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.materialization_run_run_id_seq', '');

CREATE VIEW fs_runs AS
SELECT r.run_id, r.view_name AS view, r.view_version AS version, r.kind, r.window_start, r.window_end,
       r.rows_written, r.rows_quarantined, r.started_at, r.duration, r.outcome, r.error, r.sqlstate, r.run_by
FROM feature_store.materialization_run r;
COMMENT ON VIEW fs_runs IS 'Every materialization run: view, window, rows written and quarantined, duration, outcome, error';
GRANT SELECT ON fs_runs TO PUBLIC;

-- Test driver of the run log's C API: runs work_sql as a logged run of the view (rows written =
-- rows work_sql processed), optionally quarantining the window's failing rows. kind NULL: what an
-- incremental run logs ('scheduled' inside a pg_cron job, else 'incremental'). Superuser only.
CREATE FUNCTION feature_store.run_logged_test(view text, kind text, work_sql text,
                                              quarantine boolean DEFAULT false,
                                              start_ts timestamptz DEFAULT NULL, end_ts timestamptz DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'fs_run_logged_test' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION feature_store.run_logged_test(text, text, text, boolean, timestamptz, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION feature_store.run_logged_test(text, text, text, boolean, timestamptz, timestamptz) IS
  'Test only: runs work_sql through the run log (fs_run_logged) and returns the rows it processed';

-- Test driver of the streaming pattern: a statement trigger that logs each statement as a
-- 'stream' run and quarantines the failing rows of its transition table. Superuser only.
CREATE FUNCTION feature_store.stream_logged_test() RETURNS trigger
AS 'MODULE_PATHNAME', 'fs_stream_logged_test' LANGUAGE C;
REVOKE ALL ON FUNCTION feature_store.stream_logged_test() FROM PUBLIC;
COMMENT ON FUNCTION feature_store.stream_logged_test() IS
  'Test only: statement trigger (NEW TABLE, argument: view) logging a stream run that quarantines failing new rows';
