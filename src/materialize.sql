-- Materialization (src/materialize.c, src/stream.c, src/stat_views.c): incremental runs and
-- their watermark, streaming triggers, and the per-view status view fs_stat_views.

-- Watermark of incremental materialization, one row per view version: the upper bound (created
-- time, or event time for views without one) up to which the source has been materialized.
-- Advanced in the same transaction as the write it describes. Metadata, readable by everyone.
CREATE TABLE feature_store.watermark (
    view_id     int PRIMARY KEY REFERENCES feature_store.feature_view (view_id) ON DELETE CASCADE,
    watermark   timestamptz,
    advanced_at timestamptz
);
GRANT SELECT ON feature_store.watermark TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.watermark', '');

CREATE FUNCTION fs_materialize_incremental(view text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'fs_materialize_incremental' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_materialize_incremental(text) IS
  'Materializes the rows that arrived since the view''s watermark (created time, else event time) and advances it in the same transaction; returns the rows written';

CREATE FUNCTION feature_store.stream_trigger() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_stream_trigger' LANGUAGE C;
COMMENT ON FUNCTION feature_store.stream_trigger() IS
  'Statement trigger (NEW TABLE, argument: view id) installed by fs_set_online_mode(view, ''stream'') on the source';
-- Streaming under session_replication_role = replica (0.3): a logical-replication apply worker
-- fires no statement trigger; this row trigger, enabled on replica only, streams its rows.
CREATE FUNCTION feature_store.stream_row_trigger() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_stream_row_trigger' LANGUAGE C;
COMMENT ON FUNCTION feature_store.stream_row_trigger() IS
  'Row trigger (argument: view id), enabled on replica only, installed by fs_set_online_mode(view, ''stream'') on the source';
-- A foreign partition of a streaming source would make every INSERT routed to it fail (0.3).
CREATE FUNCTION feature_store.stream_ddl_check() RETURNS event_trigger
  AS 'MODULE_PATHNAME', 'fs_stream_ddl_check' LANGUAGE C;
COMMENT ON FUNCTION feature_store.stream_ddl_check() IS
  'Refuses a foreign table in the partition tree of a streaming view''s source';
CREATE EVENT TRIGGER feature_store_stream_ddl_check ON ddl_command_end
  WHEN TAG IN ('ALTER TABLE', 'CREATE FOREIGN TABLE')
  EXECUTE FUNCTION feature_store.stream_ddl_check();

-- Online rows, newest online event time and quarantined rows of a view version; NULLs unless the
-- caller may SELECT the view's source (the same rule as fs_quarantine and serving).
CREATE FUNCTION feature_store.view_counts(view_id int, OUT rows_online bigint, OUT newest_event timestamptz,
                                          OUT quarantined bigint)
  AS 'MODULE_PATHNAME', 'fs_view_counts' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION feature_store.view_counts(int) IS
  'Online row count, newest online event time and quarantined row count of a view version (NULL unless the caller may read its source)';

CREATE VIEW fs_stat_views AS
SELECT v.name AS view, v.version, v.online_mode, w.watermark,
       ls.finished_at AS last_success_at,
       pg_catalog.now() - c.newest_event AS freshness,
       c.quarantined AS rows_quarantined,
       c.rows_online,
       c.newest_event,
       s.schedule,
       lr.outcome AS last_outcome, lr.kind AS last_kind, lr.started_at AS last_run_at, lr.error AS last_error,
       coalesce(o.hits, 0) AS hits, coalesce(o.misses, 0) AS misses,
       CASE WHEN o.hits + o.misses > 0 THEN round(o.hits::numeric / (o.hits + o.misses), 4) END AS cache_hit_rate
FROM feature_store.feature_view v
LEFT JOIN feature_store.watermark w ON w.view_id = v.view_id
LEFT JOIN feature_store.schedule s ON s.view_name = v.name AND s.kind = 'materialize'
LEFT JOIN LATERAL (SELECT m.started_at + m.duration AS finished_at FROM feature_store.materialization_run m
                   WHERE m.view_id = v.view_id AND m.outcome = 'success'
                   ORDER BY m.run_id DESC LIMIT 1) ls ON true
LEFT JOIN LATERAL (SELECT m.outcome, m.kind, m.started_at, m.error FROM feature_store.materialization_run m
                   WHERE m.view_id = v.view_id ORDER BY m.run_id DESC LIMIT 1) lr ON true
LEFT JOIN LATERAL feature_store.view_counts(v.view_id) c ON true
LEFT JOIN (SELECT f.view, f.version, f.hits, f.misses FROM fs_stat_online_fn() f WHERE f.view IS NOT NULL) o
       ON o.view = v.name AND o.version = v.version
WHERE v.version = (SELECT max(x.version) FROM feature_store.feature_view x WHERE x.name = v.name);
COMMENT ON VIEW fs_stat_views IS
  'Per feature view (latest version): online mode, watermark, last successful run, freshness (now minus the newest online event time), quarantined rows, rows online, schedule, last run, cache hit rate';
GRANT SELECT ON fs_stat_views TO PUBLIC;
