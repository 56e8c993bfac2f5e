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

-- Backfill and ready versions: a new version of an online latest-value view is 'backfilling'
-- until fs_backfill completes; "name" serves the newest ready version.
ALTER TABLE feature_store.feature_view ADD COLUMN state text NOT NULL DEFAULT 'ready' CHECK (state IN ('backfilling', 'ready'));
ALTER TABLE feature_store.materialization_run DROP CONSTRAINT materialization_run_kind_check;
ALTER TABLE feature_store.materialization_run ADD CONSTRAINT materialization_run_kind_check
  CHECK (kind IN ('batch', 'incremental', 'scheduled', 'stream', 'backfill'));
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
         AS source_changed,
       -- (0.3) backfilling until fs_backfill completes; "name" serves the newest ready version
       v.state,
       v.version = coalesce(max(v.version) FILTER (WHERE v.state = 'ready') OVER (PARTITION BY v.name),
                            max(v.version) OVER (PARTITION BY v.name)) AS is_serving
FROM feature_store.feature_view v JOIN feature_store.entity e ON e.name = v.entity,
     LATERAL (SELECT pg_catalog.to_regclass(format('%I.%I', v.source_schema, v.source_name)) AS relid) s;

-- One row per backfill: its range, chunking and progress. Metadata, readable by everyone;
-- written by feature_store only.
CREATE TABLE feature_store.backfill (
    backfill_id   bigserial PRIMARY KEY,
    view_id       int NOT NULL REFERENCES feature_store.feature_view (view_id) ON DELETE CASCADE,
    view_name     text NOT NULL,
    view_version  int NOT NULL,
    range_start   timestamptz NOT NULL,
    range_end     timestamptz NOT NULL CHECK (range_end >= range_start),
    chunks_total  int NOT NULL CHECK (chunks_total >= 0),
    chunks_done   int NOT NULL DEFAULT 0 CHECK (chunks_done BETWEEN 0 AND chunks_total),
    rows_written  bigint NOT NULL DEFAULT 0,
    started       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished      timestamptz,
    resumed       int NOT NULL DEFAULT 0,
    error         text,
    sqlstate      text,
    pid           int,
    started_by    name NOT NULL
);
GRANT SELECT ON feature_store.backfill TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.backfill', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.backfill_backfill_id_seq', '');

CREATE FUNCTION feature_store.key_chunk(nchunks int, VARIADIC keys "any") RETURNS int
  AS 'MODULE_PATHNAME', 'fs_key_chunk' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION feature_store.key_chunk(int, "any") IS
  'The backfill chunk (0 .. nchunks - 1) of an entity key: materialization''s key hash, cut into nchunks equal ranges';
CREATE FUNCTION feature_store.backfill_begin(view text, start_ts timestamptz, end_ts timestamptz, chunks int,
                                             OUT backfill_id bigint, OUT chunks_total int, OUT chunks_done int)
  AS 'MODULE_PATHNAME', 'fs_backfill_begin' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION feature_store.backfill_chunk(backfill_id bigint, chunk int) RETURNS bigint
  AS 'MODULE_PATHNAME', 'fs_backfill_chunk' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION feature_store.backfill_failed(backfill_id bigint, error text, sqlstate text) RETURNS void
  AS 'MODULE_PATHNAME', 'fs_backfill_failed' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- A procedure, so that each chunk commits (no SET clause: it would forbid COMMIT; every name is
-- qualified instead). Errors are recorded on the backfill's row, then raised again.
CREATE PROCEDURE fs_backfill(view text, start_ts timestamptz DEFAULT NULL, end_ts timestamptz DEFAULT NULL,
                             chunks int DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    b record;
    err text; state text; detail text; hint text;
BEGIN
    SELECT * INTO b FROM feature_store.backfill_begin(view, start_ts, end_ts, chunks);
    COMMIT;
    FOR i IN b.chunks_done .. b.chunks_total - 1 LOOP
        BEGIN
            PERFORM feature_store.backfill_chunk(b.backfill_id, i);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE,
                                    detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
        END;
        IF err IS NOT NULL THEN
            PERFORM feature_store.backfill_failed(b.backfill_id, err, state);
            COMMIT;
            RAISE EXCEPTION USING MESSAGE = err, ERRCODE = state,
                DETAIL = COALESCE(NULLIF(detail, ''), pg_catalog.format(
                    'Backfill %s stopped at chunk %s of %s; the chunks before it are committed.',
                    b.backfill_id, i + 1, b.chunks_total)),
                HINT = COALESCE(NULLIF(hint, ''), 'CALL fs_backfill again with the same arguments to resume.');
        END IF;
        COMMIT;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE fs_backfill(text, timestamptz, timestamptz, int) IS
  'Recomputes a view version''s online rows from its history in [start_ts, end_ts] (default: the oldest event, now()), in chunks of entities committed one by one; a new version serves once it completes; a rerun resumes an interrupted one';

CREATE VIEW fs_stat_backfill AS
SELECT b.backfill_id, b.view_name AS view, b.view_version AS version, b.range_start, b.range_end,
       b.chunks_done, b.chunks_total, b.rows_written, b.started, b.finished,
       CASE WHEN b.finished IS NOT NULL THEN 'done'
            WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                         WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                           AND l.classid = 1718837862 AND l.objid = b.view_id AND l.objsubid = 2) THEN 'running'
            WHEN b.error IS NOT NULL THEN 'failed'
            ELSE 'interrupted' END AS status,
       b.error, b.sqlstate, b.resumed, b.started_by, b.pid
FROM feature_store.backfill b;
COMMENT ON VIEW fs_stat_backfill IS
  'Backfills: range, chunks done of total, rows written, times, status (running, done, failed, interrupted: CALL fs_backfill again to resume), error';
GRANT SELECT ON fs_stat_backfill TO PUBLIC;

-- On-demand features (transforms): one SQL expression over request parameters and input
-- features, the same in training sets and serving.

-- One row per transform version. Metadata, readable by everyone; written by feature_store only.
CREATE TABLE feature_store.transform (
    transform_id  serial PRIMARY KEY,
    name          text NOT NULL,
    version       int NOT NULL CHECK (version >= 1),
    expression    text NOT NULL,
    request_names text[] NOT NULL,
    request_types regtype[] NOT NULL,
    inputs        text[] NOT NULL,           -- feature references as registered (view:feature, view@N:feature)
    returns       regtype NOT NULL,
    description   text,
    owner         text,
    tags          jsonb NOT NULL DEFAULT '{}',
    registered_by name NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);
GRANT SELECT ON feature_store.transform TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.transform', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.transform_transform_id_seq', '');
CREATE TRIGGER fs_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feature_store.transform
  FOR EACH STATEMENT EXECUTE FUNCTION feature_store.registry_changed();

CREATE FUNCTION fs_register_transform(name text, expression text, request jsonb DEFAULT NULL,
                                      inputs text[] DEFAULT NULL, returns regtype DEFAULT NULL,
                                      description text DEFAULT NULL, owner text DEFAULT NULL, tags jsonb DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'fs_register_transform' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_register_transform(text, text, jsonb, text[], regtype, text, text, jsonb) IS
  'Registers an on-demand feature: one immutable SQL expression over request parameters and input features; a changed definition creates a new version, which is returned';
CREATE FUNCTION fs_drop_transform(name text) RETURNS integer
  AS 'MODULE_PATHNAME', 'fs_drop_transform' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_drop_transform(text) IS
  'Drops every version of a transform (or one, with name@N); returns the number of versions dropped';

CREATE VIEW fs_transforms AS
SELECT t.name, t.version,
       t.version = max(t.version) OVER (PARTITION BY t.name) AS is_latest,
       t.expression,
       (SELECT pg_catalog.jsonb_object_agg(r.n, pg_catalog.format_type(r.t, NULL))
          FROM unnest(t.request_names, t.request_types) AS r(n, t)) AS request,
       t.inputs, t.returns, t.description, t.owner, t.tags, t.registered_by, t.created_at, t.transform_id
FROM feature_store.transform t;
COMMENT ON VIEW fs_transforms IS 'On-demand features (transforms), one row per version';
GRANT SELECT ON fs_transforms TO PUBLIC;

-- Transforms in feature services: their positions in the service's list (shared with
-- service_feature's); NULL version = the latest when used.
CREATE TABLE feature_store.service_transform (
    service_id        int NOT NULL REFERENCES feature_store.feature_service (service_id) ON DELETE CASCADE,
    position          int NOT NULL,
    transform_name    text NOT NULL,
    transform_version int,
    PRIMARY KEY (service_id, position)
);
GRANT SELECT ON feature_store.service_transform TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.service_transform', '');
CREATE TRIGGER fs_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feature_store.service_transform
  FOR EACH STATEMENT EXECUTE FUNCTION feature_store.registry_changed();
CREATE OR REPLACE VIEW fs_services AS
SELECT s.name, s.version,
       s.version = max(s.version) OVER (PARTITION BY s.name) AS is_latest,
       (SELECT array_agg(m.ref ORDER BY m.position)
        FROM (SELECT f.position, f.view_name || coalesce('@' || f.view_version, '') || ':' || f.feature AS ref
              FROM feature_store.service_feature f WHERE f.service_id = s.service_id
              UNION ALL
              SELECT x.position, x.transform_name || coalesce('@' || x.transform_version, '')
              FROM feature_store.service_transform x WHERE x.service_id = s.service_id) m) AS features,
       s.description, s.owner, s.tags, s.registered_by, s.created_at
FROM feature_store.feature_service s;

-- Serving: a transform's value for an entity and a request (a view or service: fs_online as is).
CREATE FUNCTION fs_online(entity fs_entity, name text, request jsonb) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'fs_online_request' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_online(fs_entity, text, jsonb) IS
  'A transform''s value for the entity and the request''s parameters: {"transform": value}; for a view or service (no request), fs_online(entity, name)';
CREATE FUNCTION fs_online_vector(entity fs_entity, service text, request jsonb) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'fs_online_vector' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_online_vector(fs_entity, text, jsonb) IS
  'fs_online_vector with the request of the service''s transforms, each in its place in the service''s order';
CREATE FUNCTION fs_online_batch(entities fs_entity[], view_or_service text, requests jsonb[],
                                OUT entity fs_entity, OUT features jsonb) RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'fs_online_batch_request' LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 100;
COMMENT ON FUNCTION fs_online_batch(fs_entity[], text, jsonb[]) IS
  'fs_online with a request for many entities: one row per element, requests[i] for entities[i]';

-- The columnar form of the training set, for the Python client.
CREATE FUNCTION fs_training_set_columns(spine regclass DEFAULT NULL, features text[] DEFAULT NULL,
                                        spine_time text DEFAULT 'event_timestamp',
                                        full_names boolean DEFAULT false,
                                        as_of_created boolean DEFAULT false,
                                        spine_query text DEFAULT NULL,
                                        spine_columns boolean DEFAULT true,
                                        OUT column_name name, OUT column_type regtype,
                                        OUT row_count bigint, OUT "values" bytea, OUT nulls bytea)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'fs_training_set_columns'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_training_set_columns(regclass, text[], text, boolean, boolean, text, boolean) IS
  'A point-in-time training set column by column: one row per column, its values in spine order in one bytea (for data-frame clients)';
