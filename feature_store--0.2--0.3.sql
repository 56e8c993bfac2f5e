-- feature_store 0.2 -> 0.3. Every change to src/*.sql since 0.2 has its ALTER/CREATE here, in the
-- same order; test/t/070_upgrade.pl compares the catalog of an updated database with a fresh install.
\echo Use "ALTER EXTENSION feature_store UPDATE TO '0.3'" to load this file. \quit

-- Logical replication and foreign partitions (issue 13, part 5): replica-only triggers keep the
-- cache of a subscribed online table correct and stream a subscribed source; a foreign
-- partition of a streaming source is refused; fs_views names a source's foreign partitions.
CREATE FUNCTION feature_store.online_changed_row() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_online_changed_row_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION feature_store.online_changed_row() FROM PUBLIC;
CREATE FUNCTION feature_store.stream_row_trigger() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_stream_row_trigger' LANGUAGE C;
COMMENT ON FUNCTION feature_store.stream_row_trigger() IS
  'Row trigger (argument: view id), enabled on replica only, installed by fs_set_online_mode(view, ''stream'') on the source';
CREATE FUNCTION feature_store.stream_ddl_check() RETURNS event_trigger
  AS 'MODULE_PATHNAME', 'fs_stream_ddl_check' LANGUAGE C;
COMMENT ON FUNCTION feature_store.stream_ddl_check() IS
  'Refuses a foreign table in the partition tree of a streaming view''s source';
CREATE EVENT TRIGGER feature_store_stream_ddl_check ON ddl_command_end
  WHEN TAG IN ('ALTER TABLE', 'CREATE FOREIGN TABLE')
  EXECUTE FUNCTION feature_store.stream_ddl_check();
CREATE OR REPLACE VIEW fs_views AS
SELECT v.name, v.version,
       v.version = max(v.version) OVER (PARTITION BY v.name) AS is_latest,
       format('%I.%I', v.source_schema, v.source_name) AS source,
       v.entity, e.join_keys,
       v.event_time, v.created_time, v.ttl, v.online_mode,
       (SELECT count(*) FROM feature_store.view_feature f WHERE f.view_id = v.view_id)::int AS n_features,
       v.checks, v.description, v.owner, v.tags, v.registered_by, v.created_at, v.view_id,
       -- (0.3) rows committed on a foreign server escape the watermark and cannot stream
       ARRAY(SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'f'
               AND c.oid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree(s.relid) t UNION ALL SELECT s.relid)
             ORDER BY 1) AS foreign_partitions
FROM feature_store.feature_view v JOIN feature_store.entity e ON e.name = v.entity,
     LATERAL (SELECT pg_catalog.to_regclass(format('%I.%I', v.source_schema, v.source_name)) AS relid) s;
