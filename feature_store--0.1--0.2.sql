-- feature_store 0.1 -> 0.2. Every change to src/*.sql since 0.1 has its ALTER/CREATE here, in the
-- same order; test/t/070_upgrade.pl compares the catalog of an updated database with a fresh install.
\echo Use "ALTER EXTENSION feature_store UPDATE TO '0.2'" to load this file. \quit

-- schedule: DROP EXTENSION removes the extension's pg_cron jobs.
CREATE FUNCTION feature_store.drop_extension_cleanup() RETURNS event_trigger
  AS 'MODULE_PATHNAME', 'fs_schedule_drop_extension' LANGUAGE C;
CREATE EVENT TRIGGER feature_store_drop_extension ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
  EXECUTE FUNCTION feature_store.drop_extension_cleanup();

-- privileges: row-level security on a source that applies to the caller denies online reads,
-- materialization, validation and quarantine (they hold every entity's rows); fs_quarantine
-- follows the same rule as serving (column privileges included) through can_read_view.
CREATE FUNCTION feature_store.can_read_view(view_id int) RETURNS boolean
  AS 'MODULE_PATHNAME', 'fs_can_read_view' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION feature_store.can_read_view(int) IS
  'Whether the current role may read all of a view version''s data: SELECT on its source (or on every column it uses), and no row-level security applying to the role there';
CREATE OR REPLACE VIEW fs_quarantine WITH (security_barrier) AS
SELECT q.view_name AS view, q.view_version AS version, q.entity, q.event_ts, q.created_ts,
       q.failed_checks, q.row_data, q.run_id, q.quarantined_at, q.quarantine_id
FROM feature_store.quarantine q
JOIN feature_store.feature_view v ON v.view_id = q.view_id
WHERE feature_store.can_read_view(v.view_id);
COMMENT ON VIEW fs_quarantine IS
  'Quarantined rows (failed checks) of the feature views whose data the current role may read (see feature_store.can_read_view)';

-- online: the comment of fs_set_online_mode names all three modes.
COMMENT ON FUNCTION fs_set_online_mode(text, text) IS
  'Switches a view version online (''batch''; ''stream'' also applies committed source writes through triggers) or off (''off'' drops its online table and stream triggers and frees its cache memory)';

-- Online store (src/online.sql): per-key signal of streaming views, the fast batch forms.
CREATE FUNCTION feature_store.online_changed_keys() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_online_changed_keys_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION feature_store.online_changed_keys() FROM PUBLIC;
CREATE FUNCTION fs_online_batch_keys(view_or_service text, keys anyarray, OUT key anyelement, OUT features jsonb)
  RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'fs_online_batch_keys' LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1000;
COMMENT ON FUNCTION fs_online_batch_keys(text, anyarray) IS
  'fs_online for many keys of one entity (an array of its key type, or of rows for composite keys): one row per element, in order';
CREATE FUNCTION fs_online_batch_vector(service text, keys anyarray, OUT key anyelement, OUT features float8[])
  RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'fs_online_batch_vector' LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1000;
COMMENT ON FUNCTION fs_online_batch_vector(text, anyarray) IS
  'fs_online_vector for many keys of one entity: one row per element, in order';
