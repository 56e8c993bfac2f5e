-- feature_store 0.2 -> 0.3. Every change to src/*.sql since 0.2 has its ALTER/CREATE here, in the
-- same order; test/t/070_upgrade.pl compares the catalog of an updated database with a fresh install.
\echo Use "ALTER EXTENSION feature_store UPDATE TO '0.3'" to load this file. \quit

-- Logical replication and foreign partitions: replica-only triggers keep the
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
-- Issue 13 part 6 (messages that point to the fix): a spine given as a query (spine_query), and
-- the lineage of a spine that is gone afterwards (a temporary table, a query): its checksum.
ALTER TABLE feature_store.training_set ALTER COLUMN spine DROP NOT NULL;
ALTER TABLE feature_store.training_set ADD COLUMN spine_query text;
ALTER TABLE feature_store.training_set ADD COLUMN spine_checksum text;

CREATE OR REPLACE VIEW fs_training_sets AS
SELECT t.training_set_id, format('%I.%I', t.target_schema, t.target_name) AS target,
       t.spine, t.spine_time, t.feature_refs, t.features, t.view_versions, t.as_of_created,
       t.full_names, t.row_count, t.created_by, t.created_at, t.spine_query, t.spine_checksum
FROM feature_store.training_set t;

DROP FUNCTION fs_point_in_time_join(regclass, text[], text, boolean, boolean);
-- spine and features have defaults only so that spine may be left out when spine_query is given.
CREATE FUNCTION fs_point_in_time_join(spine regclass DEFAULT NULL, features text[] DEFAULT NULL,
                                      spine_time text DEFAULT 'event_timestamp',
                                      full_names boolean DEFAULT false,
                                      as_of_created boolean DEFAULT false,
                                      spine_query text DEFAULT NULL)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'fs_point_in_time_join'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_point_in_time_join(regclass, text[], text, boolean, boolean, text) IS
  'Point-in-time join: one row per spine row (a relation, or spine_query) with the features as of its time (needs AS t(...); see fs_training_columns)';

DROP FUNCTION fs_training_columns(regclass, text[], text, boolean);
CREATE FUNCTION fs_training_columns(spine regclass DEFAULT NULL, features text[] DEFAULT NULL,
                                    spine_time text DEFAULT 'event_timestamp',
                                    full_names boolean DEFAULT false,
                                    spine_query text DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'fs_training_columns'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION fs_training_columns(regclass, text[], text, boolean, text) IS
  'The column definition list of a point-in-time join, for its AS clause';

DROP FUNCTION fs_create_training_set(text, regclass, text[], text, boolean, boolean);
CREATE FUNCTION fs_create_training_set(target text, spine regclass DEFAULT NULL, features text[] DEFAULT NULL,
                                       spine_time text DEFAULT 'event_timestamp',
                                       full_names boolean DEFAULT false,
                                       as_of_created boolean DEFAULT false,
                                       spine_query text DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'fs_create_training_set'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_create_training_set(text, regclass, text[], text, boolean, boolean, text) IS
  'Creates table target holding a point-in-time training set and records its lineage; returns the row count';
-- Statistics belong to their database: cache figures of views without any
-- are zero, not NULL (a database the cache does not serve has none).
CREATE OR REPLACE VIEW fs_stat_views AS
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
LEFT JOIN feature_store.schedule s ON s.view_name = v.name
LEFT JOIN LATERAL (SELECT m.started_at + m.duration AS finished_at FROM feature_store.materialization_run m
                   WHERE m.view_id = v.view_id AND m.outcome = 'success'
                   ORDER BY m.run_id DESC LIMIT 1) ls ON true
LEFT JOIN LATERAL (SELECT m.outcome, m.kind, m.started_at, m.error FROM feature_store.materialization_run m
                   WHERE m.view_id = v.view_id ORDER BY m.run_id DESC LIMIT 1) lr ON true
LEFT JOIN LATERAL feature_store.view_counts(v.view_id) c ON true
LEFT JOIN (SELECT f.view, f.version, f.hits, f.misses FROM fs_stat_online_fn() f WHERE f.view IS NOT NULL) o
       ON o.view = v.name AND o.version = v.version
WHERE v.version = (SELECT max(x.version) FROM feature_store.feature_view x WHERE x.name = v.name);
-- Aggregation views (windowed aggregates computed by the store): the view's kind, filter and hop,
-- each aggregation's function, argument and window; fs_register_view takes them.
ALTER TABLE feature_store.feature_view ADD COLUMN kind text NOT NULL DEFAULT 'latest' CHECK (kind IN ('latest', 'aggregate'));
ALTER TABLE feature_store.feature_view ADD COLUMN filter text;
ALTER TABLE feature_store.feature_view ADD COLUMN hop interval CHECK (hop IS NULL OR hop > interval '0');
ALTER TABLE feature_store.view_feature ADD COLUMN agg_fn text CHECK (agg_fn IN ('count', 'sum', 'avg', 'min', 'max', 'first', 'last'));
ALTER TABLE feature_store.view_feature ADD COLUMN agg_arg name;
ALTER TABLE feature_store.view_feature ADD COLUMN agg_window interval;
DROP FUNCTION fs_register_view(text, regclass, text, text, text, text[], interval, boolean, jsonb, text, text, jsonb);
CREATE FUNCTION fs_register_view(name text, source regclass, entity text,
                                 event_time text DEFAULT 'event_timestamp',
                                 created_time text DEFAULT NULL,
                                 features text[] DEFAULT NULL,
                                 ttl interval DEFAULT NULL,
                                 online boolean DEFAULT true,
                                 checks jsonb DEFAULT NULL,
                                 description text DEFAULT NULL,
                                 owner text DEFAULT NULL,
                                 tags jsonb DEFAULT NULL,
                                 aggregations text[] DEFAULT NULL,
                                 filter text DEFAULT NULL,
                                 hop interval DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'fs_register_view' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_register_view(text, regclass, text, text, text, text[], interval, boolean, jsonb, text, text, jsonb, text[], text, interval) IS
  'Registers a feature view over a history relation (latest values, or windowed aggregations); a changed definition creates a new version, which is returned';
CREATE OR REPLACE VIEW fs_features AS
SELECT v.name AS view, v.version, f.position, f.name AS feature, f.type,
       v.checks -> f.name::text AS checks,
       v.name || CASE WHEN v.version = (SELECT max(l.version) FROM feature_store.feature_view l WHERE l.name = v.name)
                      THEN '' ELSE '@' || v.version END || ':' || f.name AS reference,
       CASE WHEN f.agg_fn IS NOT NULL
            THEN f.agg_fn || '(' || coalesce(pg_catalog.quote_ident(f.agg_arg), '*') || ')'
                 || coalesce(' over ''' || f.agg_window || '''', '') END AS aggregation
FROM feature_store.feature_view v JOIN feature_store.view_feature f USING (view_id);
-- The run log's test drivers leave the extension: the tests declare them (sql/include/runlog_test.sql).
DROP FUNCTION feature_store.run_logged_test(text, text, text, boolean, timestamptz, timestamptz);
DROP FUNCTION feature_store.stream_logged_test();

CREATE FUNCTION feature_store.agg_changed_row() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_agg_changed_row_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION feature_store.agg_changed_row() FROM PUBLIC;

-- A view's source query is part of its definition (a changed one makes a new version). Views
-- registered before record the query their source has now.
ALTER TABLE feature_store.feature_view ADD COLUMN source_def text;
-- The definition of a source that is a view or materialized view, as part of a feature view's
-- definition: its query, with every name qualified (search_path pinned), so that the text does not
-- depend on the caller's settings; NULL for tables and other relations.
CREATE FUNCTION feature_store.source_definition(relid regclass) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c WHERE c.oid = relid AND c.relkind IN ('v', 'm')
$$;

UPDATE feature_store.feature_view v
SET source_def = feature_store.source_definition(pg_catalog.to_regclass(format('%I.%I', v.source_schema, v.source_name)));
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
             ORDER BY 1) AS foreign_partitions,
       v.kind, v.filter, v.hop,
       -- (0.3) the source's query differs from the one registered: re-register for a new version
       CASE WHEN s.relid IS NOT NULL THEN v.source_def IS DISTINCT FROM feature_store.source_definition(s.relid) END
         AS source_changed
FROM feature_store.feature_view v JOIN feature_store.entity e ON e.name = v.entity,
     LATERAL (SELECT pg_catalog.to_regclass(format('%I.%I', v.source_schema, v.source_name)) AS relid) s;

-- Training–serving skew checks.

-- (0.3) Training–serving skew checks (src/skew.c): per check and feature, what was compared and
-- what differed; written by fs_skew_check only.
CREATE TABLE feature_store.skew_check (
    check_id         bigserial PRIMARY KEY,
    checked_at       timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
    target           text NOT NULL,
    sample           int NOT NULL,
    view             text NOT NULL,
    version          int NOT NULL,
    feature          text NOT NULL,
    checked          bigint NOT NULL,
    mismatches       bigint NOT NULL,
    missing          bigint NOT NULL,
    extra            bigint NOT NULL,
    max_abs_diff     float8,
    example_entities text[],
    checked_by       name NOT NULL
);
CREATE INDEX ON feature_store.skew_check (view, checked_at);
GRANT SELECT ON feature_store.skew_check TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.skew_check', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.skew_check_check_id_seq', '');

CREATE VIEW fs_stat_skew AS
SELECT s.check_id, s.checked_at, s.target, s.sample, s.view, s.version, s.feature, s.checked,
       s.mismatches, s.missing, s.extra, s.max_abs_diff, s.example_entities, s.checked_by
FROM feature_store.skew_check s;
COMMENT ON VIEW fs_stat_skew IS 'Every training-serving skew check (fs_skew_check), one row per feature checked';
GRANT SELECT ON fs_stat_skew TO PUBLIC;

CREATE FUNCTION fs_skew_check(view_or_service text, sample integer DEFAULT 1000,
                              OUT view text, OUT version integer, OUT feature text, OUT checked bigint,
                              OUT mismatches bigint, OUT missing bigint, OUT extra bigint,
                              OUT max_abs_diff double precision, OUT example_entities text[])
  RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'fs_skew_check' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_skew_check(text, integer) IS
  'Compares what fs_online serves with what the point-in-time join computes at now() for a sample of entities, per feature';

-- Scheduled skew checks share the schedule table with materialization (a kind per job).
ALTER TABLE feature_store.schedule ADD COLUMN kind text NOT NULL DEFAULT 'materialize' CHECK (kind IN ('materialize', 'skew_check'));
ALTER TABLE feature_store.schedule DROP CONSTRAINT schedule_pkey;
ALTER TABLE feature_store.schedule ADD PRIMARY KEY (view_name, kind);
CREATE FUNCTION fs_schedule_skew_check(view_or_service text, schedule text, sample integer DEFAULT 1000)
RETURNS bigint AS 'MODULE_PATHNAME', 'fs_schedule_skew_check' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_schedule_skew_check(text, text, integer) IS
  'Creates or replaces the pg_cron job (named feature_store:skew:<name>, run as the caller) that runs fs_skew_check; returns the job id';

CREATE FUNCTION fs_unschedule_skew_check(view_or_service text)
RETURNS boolean AS 'MODULE_PATHNAME', 'fs_unschedule_skew_check' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_unschedule_skew_check(text) IS
  'Removes the skew check job of a view or service; false (with a notice) if it had none';

CREATE OR REPLACE VIEW fs_schedules AS
SELECT s.view_name AS view, s.schedule, s.job_id, s.job_name, s.command, s.job_role, s.scheduled_at,
       r.started_at AS last_run_at, r.outcome AS last_outcome, s.kind
FROM feature_store.schedule s
LEFT JOIN LATERAL (SELECT m.started_at, m.outcome FROM feature_store.materialization_run m
                   WHERE m.view_name = s.view_name AND m.kind = 'scheduled' AND s.kind = 'materialize'
                   ORDER BY m.run_id DESC LIMIT 1) r ON true;
COMMENT ON VIEW fs_schedules IS 'Scheduled jobs: materialization of each feature view (and its last scheduled run), skew checks';
CREATE OR REPLACE VIEW fs_stat_views AS
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
