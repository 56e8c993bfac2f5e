-- Data validation (src/checks.c): rows of a view's history that fail its checks are never
-- served; materialization puts them here, with the reason, once per row.
-- The rows are feature data: the table is not readable by PUBLIC. fs_quarantine shows each
-- role the rows of the views whose source it may SELECT.
CREATE TABLE feature_store.quarantine (
    quarantine_id  bigserial PRIMARY KEY,
    view_id        int NOT NULL REFERENCES feature_store.feature_view (view_id) ON DELETE CASCADE,
    view_name      text NOT NULL,
    view_version   int NOT NULL,
    entity         jsonb NOT NULL,
    event_ts       timestamptz,
    created_ts     timestamptz,
    failed_checks  text[] NOT NULL CHECK (cardinality(failed_checks) > 0),
    row_data       jsonb NOT NULL,
    row_md5        text GENERATED ALWAYS AS (md5(row_data::text)) STORED,
    run_id         bigint,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    -- quarantining the same row again (a re-run window) adds nothing; two different rows with
    -- the same key and times are both kept (row_md5 tells them apart)
    UNIQUE NULLS NOT DISTINCT (view_id, entity, event_ts, created_ts, row_md5)
);
CREATE INDEX ON feature_store.quarantine (run_id);
REVOKE ALL ON feature_store.quarantine FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.quarantine_quarantine_id_seq', '');

CREATE FUNCTION fs_validate(view text, start_ts timestamptz DEFAULT NULL, end_ts timestamptz DEFAULT NULL,
                            on_created boolean DEFAULT false)
RETURNS TABLE (entity jsonb, event_ts timestamptz, created_ts timestamptz, failed_checks text[], row_data jsonb)
AS 'MODULE_PATHNAME', 'fs_validate' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION fs_validate(text, timestamptz, timestamptz, boolean) IS
  'Rows of a view''s history in [start_ts, end_ts] (event time, or created time with on_created) that fail its checks; writes nothing';

-- security_barrier: the privilege filter runs before any qual a caller adds, so a leaky
-- function in the caller's WHERE clause never sees rows of views it may not read.
CREATE FUNCTION feature_store.can_read_view(view_id int) RETURNS boolean
  AS 'MODULE_PATHNAME', 'fs_can_read_view' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION feature_store.can_read_view(int) IS
  'Whether the current role may read all of a view version''s data: SELECT on its source (or on every column it uses), and no row-level security applying to the role there';
CREATE VIEW fs_quarantine WITH (security_barrier) AS
SELECT q.view_name AS view, q.view_version AS version, q.entity, q.event_ts, q.created_ts,
       q.failed_checks, q.row_data, q.run_id, q.quarantined_at, q.quarantine_id
FROM feature_store.quarantine q
JOIN feature_store.feature_view v ON v.view_id = q.view_id
WHERE feature_store.can_read_view(v.view_id);
COMMENT ON VIEW fs_quarantine IS
  'Quarantined rows (failed checks) of the feature views whose data the current role may read (see feature_store.can_read_view)';
GRANT SELECT ON fs_quarantine TO PUBLIC;

CREATE FUNCTION feature_store.checks_sql(view text, alias text DEFAULT 's',
                                         OUT failure_expr text, OUT pass_expr text)
AS 'MODULE_PATHNAME', 'fs_checks_sql' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION feature_store.checks_sql(text, text) IS
  'The SQL expressions (over table alias) that materialization uses: failed check labels (NULL = passes), and passes';
