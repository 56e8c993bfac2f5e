-- Materialization run log (src/runlog.c): one row per run, successful or not. Metadata (no
-- feature values), so readable by everyone like the registry; written only by feature_store.
-- window_start / window_end are NULL for an open side. A failed run's row is written in a
-- transaction of its own, so it stays although the run's work was rolled back.
CREATE TABLE feature_store.materialization_run (
    run_id           bigserial PRIMARY KEY,
    view_id          int NOT NULL,
    view_name        text NOT NULL,
    view_version     int NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('batch', 'incremental', 'scheduled', 'stream', 'backfill')),
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
