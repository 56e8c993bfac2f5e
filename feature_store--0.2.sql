-- feature_store 0.2, frozen at its release: generated from src/*.sql; install scripts of later versions are built from src/, this one reaches them through upgrade scripts.
\echo Use "CREATE EXTENSION feature_store" to load this file. \quit
-- feature_store registry: durable state in WAL-logged tables of the extension's own schema.
-- Functions and catalog views live in the schema given to CREATE EXTENSION (public by default);
-- the tables below live in the fixed schema feature_store, which ordinary roles can read but not write:
-- every change goes through the fs_* functions, which check the caller's privileges and then write
-- as the extension owner (src/security.c).

CREATE SCHEMA feature_store;
COMMENT ON SCHEMA feature_store IS 'feature_store registry tables and per-view online tables (write only through fs_* functions)';
GRANT USAGE ON SCHEMA feature_store TO PUBLIC;

-- Entities: a named key of one or more columns. key_types stays NULL until the first view
-- (or the registration itself) fixes them; every later view must use the same types.
CREATE TABLE feature_store.entity (
    name          text PRIMARY KEY,
    join_keys     text[] NOT NULL,
    key_types     regtype[],
    description   text,
    registered_by name NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(join_keys) BETWEEN 1 AND 8),
    CHECK (key_types IS NULL OR cardinality(key_types) = cardinality(join_keys))
);

-- Feature views: one row per version. The source is stored by name (schema, relation) and
-- resolved at use: a dropped source gives a clear error, never the data of a table that
-- happened to reuse its OID.
CREATE TABLE feature_store.feature_view (
    view_id       serial PRIMARY KEY,
    name          text NOT NULL,
    version       int NOT NULL CHECK (version >= 1),
    source_schema name NOT NULL,
    source_name   name NOT NULL,
    entity        text NOT NULL REFERENCES feature_store.entity (name),
    event_time    name NOT NULL,
    created_time  name,
    ttl           interval CHECK (ttl IS NULL OR ttl > interval '0'),
    online_mode   text NOT NULL DEFAULT 'batch' CHECK (online_mode IN ('off', 'batch', 'stream')),
    checks        jsonb NOT NULL DEFAULT '{}',
    description   text,
    owner         text,
    tags          jsonb NOT NULL DEFAULT '{}',
    registered_by name NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

CREATE TABLE feature_store.view_feature (
    view_id   int NOT NULL REFERENCES feature_store.feature_view (view_id) ON DELETE CASCADE,
    position  int NOT NULL,
    name      name NOT NULL,
    type      regtype NOT NULL,
    PRIMARY KEY (view_id, position),
    UNIQUE (view_id, name)
);

-- Feature services: a named, versioned, ordered list of concrete features (view:* is expanded
-- when the service is registered, so a model's input order never changes under it).
-- view_version NULL means "the latest version of the view when used".
CREATE TABLE feature_store.feature_service (
    service_id    serial PRIMARY KEY,
    name          text NOT NULL,
    version       int NOT NULL CHECK (version >= 1),
    description   text,
    owner         text,
    tags          jsonb NOT NULL DEFAULT '{}',
    registered_by name NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

CREATE TABLE feature_store.service_feature (
    service_id   int NOT NULL REFERENCES feature_store.feature_service (service_id) ON DELETE CASCADE,
    position     int NOT NULL,
    view_name    text NOT NULL,
    view_version int,
    feature      name NOT NULL,
    PRIMARY KEY (service_id, position)
);
CREATE INDEX ON feature_store.service_feature (view_name);

-- Registry metadata is readable by everyone (as pg_catalog is); feature *data* stays private.
GRANT SELECT ON ALL TABLES IN SCHEMA feature_store TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('feature_store.entity', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.feature_view', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.feature_view_view_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.view_feature', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.feature_service', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.feature_service_service_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.service_feature', '');
-- Registry commands (C, src/registry_ddl.c) and catalog views.

-- Checks are a jsonb object: {"feature": {"not_null": true, "min": 0, "max": 1, "allowed": [..]}}.
-- Validated here because walking jsonb is simpler in SQL; errors carry SQLSTATEs like the C code.
CREATE FUNCTION feature_store.validate_checks(checks jsonb, features text[], types regtype[])
RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text; rules jsonb; rule text; val jsonb; pos int;
BEGIN
    IF checks IS NULL THEN RETURN; END IF;
    IF jsonb_typeof(checks) <> 'object' THEN
        RAISE EXCEPTION 'checks must be a jsonb object keyed by feature name'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Write checks => ''{"conv_rate": {"not_null": true, "min": 0, "max": 1}}''.';
    END IF;
    FOR f, rules IN SELECT * FROM jsonb_each(checks) LOOP
        pos := array_position(features, f);
        IF pos IS NULL THEN
            RAISE EXCEPTION 'check names feature "%", which is not a feature of this view', f
                USING ERRCODE = 'undefined_column';
        END IF;
        IF jsonb_typeof(rules) <> 'object' OR rules = '{}' THEN
            RAISE EXCEPTION 'checks of feature "%" must be a non-empty jsonb object', f
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Known rules: not_null, min, max, allowed.';
        END IF;
        FOR rule, val IN SELECT * FROM jsonb_each(rules) LOOP
            CASE rule
            WHEN 'not_null' THEN
                IF jsonb_typeof(val) <> 'boolean' THEN
                    RAISE EXCEPTION 'check "not_null" of feature "%" must be true or false', f
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            WHEN 'min', 'max' THEN
                IF jsonb_typeof(val) <> 'number' THEN
                    RAISE EXCEPTION 'check "%" of feature "%" must be a number', rule, f
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF types[pos] NOT IN ('smallint'::regtype, 'integer', 'bigint', 'real', 'double precision', 'numeric') THEN
                    RAISE EXCEPTION 'check "%" needs a numeric feature, but "%" has type %', rule, f, types[pos]
                        USING ERRCODE = 'datatype_mismatch';
                END IF;
            WHEN 'allowed' THEN
                IF jsonb_typeof(val) <> 'array' OR jsonb_array_length(val) = 0 THEN
                    RAISE EXCEPTION 'check "allowed" of feature "%" must be a non-empty jsonb array', f
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSE
                RAISE EXCEPTION 'unknown check "%" for feature "%"', rule, f
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Known rules: not_null, min, max, allowed.';
            END CASE;
        END LOOP;
        IF rules ? 'min' AND rules ? 'max' AND (rules->>'min')::numeric > (rules->>'max')::numeric THEN
            RAISE EXCEPTION 'check of feature "%" has min greater than max', f
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION fs_register_entity(name text, join_keys text[], description text DEFAULT NULL,
                                   key_types regtype[] DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'fs_register_entity' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_register_entity(text, text[], text, regtype[]) IS
  'Registers an entity (a named key of one or more columns); key types are fixed by the first view unless given';

-- One-key convenience form: fs_register_entity('driver', 'driver_id').
CREATE FUNCTION fs_register_entity(name text, join_key text, description text DEFAULT NULL,
                                   key_type regtype DEFAULT NULL)
RETURNS void LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
  SELECT @extschema@.fs_register_entity(name, ARRAY[join_key], description,
                                        CASE WHEN key_type IS NULL THEN NULL ELSE ARRAY[key_type] END);
END;
COMMENT ON FUNCTION fs_register_entity(text, text, text, regtype) IS
  'Registers an entity with a single key column';

CREATE FUNCTION fs_register_view(name text, source regclass, entity text,
                                 event_time text DEFAULT 'event_timestamp',
                                 created_time text DEFAULT NULL,
                                 features text[] DEFAULT NULL,
                                 ttl interval DEFAULT NULL,
                                 online boolean DEFAULT true,
                                 checks jsonb DEFAULT NULL,
                                 description text DEFAULT NULL,
                                 owner text DEFAULT NULL,
                                 tags jsonb DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'fs_register_view' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_register_view(text, regclass, text, text, text, text[], interval, boolean, jsonb, text, text, jsonb) IS
  'Registers a feature view over a history relation; a changed definition creates a new version, which is returned';

CREATE FUNCTION fs_register_service(name text, features text[], description text DEFAULT NULL,
                                    owner text DEFAULT NULL, tags jsonb DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'fs_register_service' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_register_service(text, text[], text, text, jsonb) IS
  'Registers a feature service: an ordered list of feature references for one model; returns its version';

CREATE FUNCTION fs_drop_view(name text, cascade boolean DEFAULT false)
RETURNS integer AS 'MODULE_PATHNAME', 'fs_drop_view' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_drop_view(text, boolean) IS
  'Drops every version of a feature view (or one, with name@N); returns the number of versions dropped';

CREATE FUNCTION fs_drop_service(name text)
RETURNS integer AS 'MODULE_PATHNAME', 'fs_drop_service' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_drop_service(text) IS
  'Drops every version of a feature service (or one, with name@N); returns the number of versions dropped';

CREATE FUNCTION fs_drop_entity(name text)
RETURNS void AS 'MODULE_PATHNAME', 'fs_drop_entity' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_drop_entity(text) IS 'Drops an entity that no feature view uses';

-- Catalog views: what a person SELECTs to see the registry.
CREATE VIEW fs_entities AS
SELECT e.name AS entity, e.join_keys, e.key_types, e.description, e.registered_by, e.created_at
FROM feature_store.entity e;

CREATE VIEW fs_views AS
SELECT v.name, v.version,
       v.version = max(v.version) OVER (PARTITION BY v.name) AS is_latest,
       format('%I.%I', v.source_schema, v.source_name) AS source,
       v.entity, e.join_keys,
       v.event_time, v.created_time, v.ttl, v.online_mode,
       (SELECT count(*) FROM feature_store.view_feature f WHERE f.view_id = v.view_id)::int AS n_features,
       v.checks, v.description, v.owner, v.tags, v.registered_by, v.created_at, v.view_id
FROM feature_store.feature_view v JOIN feature_store.entity e ON e.name = v.entity;

CREATE VIEW fs_features AS
SELECT v.name AS view, v.version, f.position, f.name AS feature, f.type,
       v.checks -> f.name::text AS checks,
       v.name || CASE WHEN v.version = (SELECT max(l.version) FROM feature_store.feature_view l WHERE l.name = v.name)
                      THEN '' ELSE '@' || v.version END || ':' || f.name AS reference
FROM feature_store.feature_view v JOIN feature_store.view_feature f USING (view_id);

CREATE VIEW fs_services AS
SELECT s.name, s.version,
       s.version = max(s.version) OVER (PARTITION BY s.name) AS is_latest,
       (SELECT array_agg(f.view_name || coalesce('@' || f.view_version, '') || ':' || f.feature ORDER BY f.position)
        FROM feature_store.service_feature f WHERE f.service_id = s.service_id) AS features,
       s.description, s.owner, s.tags, s.registered_by, s.created_at
FROM feature_store.feature_service s;

GRANT SELECT ON fs_entities, fs_views, fs_features, fs_services TO PUBLIC;
-- Online store (src/entity_type.c, src/online_*.c): the fs_entity type, the write path
-- (fs_materialize, fs_set_online_mode), the serving calls and the cache statistics.

-- fs_entity: 'driver:1001', 'user_merchant:(42,7)'; keys with separators are double-quoted.
CREATE TYPE fs_entity;
CREATE FUNCTION feature_store.fs_entity_in(cstring) RETURNS fs_entity
  AS 'MODULE_PATHNAME', 'fs_entity_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION feature_store.fs_entity_out(fs_entity) RETURNS cstring
  AS 'MODULE_PATHNAME', 'fs_entity_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE fs_entity (
  INPUT = feature_store.fs_entity_in, OUTPUT = feature_store.fs_entity_out,
  INTERNALLENGTH = VARIABLE, STORAGE = extended, ALIGNMENT = int4);
COMMENT ON TYPE fs_entity IS 'An entity key for online serving: entity:key or entity:(key1,key2)';

CREATE FUNCTION fs_entity(entity text, VARIADIC keys "any") RETURNS fs_entity
  AS 'MODULE_PATHNAME', 'fs_entity_make' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION fs_entity(text, "any") IS 'Builds an fs_entity from typed keys: fs_entity(''driver'', 1001)';
CREATE FUNCTION fs_entity_name(fs_entity) RETURNS text
  AS 'MODULE_PATHNAME', 'fs_entity_name' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fs_entity_keys(fs_entity) RETURNS text[]
  AS 'MODULE_PATHNAME', 'fs_entity_keys' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION feature_store.fs_entity_eq(fs_entity, fs_entity) RETURNS boolean
  AS 'MODULE_PATHNAME', 'fs_entity_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION feature_store.fs_entity_ne(fs_entity, fs_entity) RETURNS boolean
  AS 'MODULE_PATHNAME', 'fs_entity_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION feature_store.fs_entity_hash(fs_entity) RETURNS integer
  AS 'MODULE_PATHNAME', 'fs_entity_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OPERATOR = (LEFTARG = fs_entity, RIGHTARG = fs_entity, PROCEDURE = feature_store.fs_entity_eq,
                   COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel, HASHES);
CREATE OPERATOR <> (LEFTARG = fs_entity, RIGHTARG = fs_entity, PROCEDURE = feature_store.fs_entity_ne,
                    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR CLASS feature_store.fs_entity_hash_ops DEFAULT FOR TYPE fs_entity USING hash AS
  OPERATOR 1 = (fs_entity, fs_entity), FUNCTION 1 feature_store.fs_entity_hash(fs_entity);

-- Commit-time signals (online_table.c): online table changed / registry changed.
CREATE FUNCTION feature_store.online_changed() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_online_changed_trigger' LANGUAGE C;
CREATE FUNCTION feature_store.registry_changed() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_registry_changed_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION feature_store.online_changed(), feature_store.registry_changed() FROM PUBLIC;
-- Per-key signal of streaming views' online tables (0.2): transition tables name the changed keys.
CREATE FUNCTION feature_store.online_changed_keys() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_online_changed_keys_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION feature_store.online_changed_keys() FROM PUBLIC;
CREATE TRIGGER fs_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feature_store.entity
  FOR EACH STATEMENT EXECUTE FUNCTION feature_store.registry_changed();
CREATE TRIGGER fs_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feature_store.feature_view
  FOR EACH STATEMENT EXECUTE FUNCTION feature_store.registry_changed();
CREATE TRIGGER fs_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feature_store.view_feature
  FOR EACH STATEMENT EXECUTE FUNCTION feature_store.registry_changed();
CREATE TRIGGER fs_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feature_store.feature_service
  FOR EACH STATEMENT EXECUTE FUNCTION feature_store.registry_changed();
CREATE TRIGGER fs_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feature_store.service_feature
  FOR EACH STATEMENT EXECUTE FUNCTION feature_store.registry_changed();

-- Write path.
CREATE FUNCTION fs_materialize(view text, start_ts timestamptz, end_ts timestamptz) RETURNS bigint
  AS 'MODULE_PATHNAME', 'fs_materialize' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_materialize(text, timestamptz, timestamptz) IS
  'Writes each entity''s latest row with history in [start_ts, end_ts] (rules as of end_ts) into the view''s online table; never moves an entity backwards';
CREATE FUNCTION fs_set_online_mode(view text, mode text) RETURNS void
  AS 'MODULE_PATHNAME', 'fs_set_online_mode' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_set_online_mode(text, text) IS
  'Switches a view version online (''batch''; ''stream'' also applies committed source writes through triggers) or off (''off'' drops its online table and stream triggers and frees its cache memory)';
CREATE FUNCTION fs_online_reload(view text) RETURNS void
  AS 'MODULE_PATHNAME', 'fs_online_reload' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_online_reload(text) IS
  'Invalidates the cached rows of a view at commit; the cache worker loads them again';

-- Serving. PARALLEL UNSAFE: a read-through takes a fresh snapshot (the cache protocol), which a
-- parallel operation forbids even in the leader; sql/online_parallel.sql keeps it honest.
CREATE FUNCTION fs_online(entity fs_entity) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'fs_online_all' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_online(fs_entity) IS
  'Latest features of the entity in every online view the caller may read: {"view": {"feature": value}}; "view": null = expired';
CREATE FUNCTION fs_online(entity fs_entity, view_or_service text) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'fs_online_named' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_online(fs_entity, text) IS 'fs_online narrowed to one feature view or feature service';
CREATE FUNCTION fs_online_vector(entity fs_entity, service text) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'fs_online_vector' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_online_vector(fs_entity, text) IS
  'Features of a service (or view) as float8[] in its order; NULL elements for missing, null or expired values';
CREATE FUNCTION fs_online_batch(entities fs_entity[], view_or_service text DEFAULT NULL,
                                OUT entity fs_entity, OUT features jsonb) RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'fs_online_batch' LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 100;
COMMENT ON FUNCTION fs_online_batch(fs_entity[], text) IS 'fs_online for many entities: one row per array element, in order';
CREATE FUNCTION fs_online_detail(entity fs_entity, view_or_service text DEFAULT NULL,
                                 OUT view text, OUT version integer, OUT feature text, OUT value jsonb,
                                 OUT event_ts timestamptz, OUT status text) RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'fs_online_detail' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_online_detail(fs_entity, text) IS
  'Per feature: value, event time and status (present, null, not_found, expired)';

CREATE FUNCTION fs_stat_online_fn(OUT view text, OUT version integer, OUT entries bigint, OUT bytes_used bigint,
                                  OUT capacity_bytes bigint, OUT hits bigint, OUT misses bigint,
                                  OUT read_throughs bigint, OUT evictions bigint, OUT declined bigint,
                                  OUT worker_state text, OUT worker_pid integer, OUT last_error text,
                                  OUT last_error_at timestamptz) RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'fs_online_stat' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE VIEW fs_stat_online AS SELECT * FROM fs_stat_online_fn();
COMMENT ON VIEW fs_stat_online IS
  'Online cache per view, and a total row (view NULL) with capacity and the worker''s state';
GRANT SELECT ON fs_stat_online TO PUBLIC;

-- The fast batch forms (0.2): the entity's key values themselves, no fs_entity per element (a name of
-- their own: an overload of fs_online_batch would make fs_online_batch('{...}', 'v') ambiguous).
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
-- Scheduled incremental materialization (src/schedule.c): one pg_cron job per feature view,
-- running as the role that scheduled it. Metadata, readable by everyone.
CREATE TABLE feature_store.schedule (
    view_name    text PRIMARY KEY,
    schedule     text NOT NULL,
    job_id       bigint NOT NULL,
    job_name     text NOT NULL,
    command      text NOT NULL,
    job_role     name NOT NULL,
    scheduled_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON feature_store.schedule TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.schedule', '');

CREATE FUNCTION fs_schedule_materialization(view text, schedule text)
RETURNS bigint AS 'MODULE_PATHNAME', 'fs_schedule_materialization' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_schedule_materialization(text, text) IS
  'Creates or replaces the pg_cron job (named feature_store:<view>, run as the caller) that materializes the view incrementally; returns the job id';

CREATE FUNCTION fs_unschedule_materialization(view text)
RETURNS boolean AS 'MODULE_PATHNAME', 'fs_unschedule_materialization' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_unschedule_materialization(text) IS
  'Removes the view''s materialization job; false (with a notice) if it had none';

CREATE VIEW fs_schedules AS
SELECT s.view_name AS view, s.schedule, s.job_id, s.job_name, s.command, s.job_role, s.scheduled_at,
       r.started_at AS last_run_at, r.outcome AS last_outcome
FROM feature_store.schedule s
LEFT JOIN LATERAL (SELECT m.started_at, m.outcome FROM feature_store.materialization_run m
                   WHERE m.view_name = s.view_name AND m.kind = 'scheduled'
                   ORDER BY m.run_id DESC LIMIT 1) r ON true;
COMMENT ON VIEW fs_schedules IS 'Materialization schedule of each feature view, and its last scheduled run';
GRANT SELECT ON fs_schedules TO PUBLIC;

-- DROP EXTENSION feature_store removes the extension's pg_cron jobs too (pg_cron's job table is
-- not ours, so the jobs would otherwise outlive the functions they call).
CREATE FUNCTION feature_store.drop_extension_cleanup() RETURNS event_trigger
  AS 'MODULE_PATHNAME', 'fs_schedule_drop_extension' LANGUAGE C;
CREATE EVENT TRIGGER feature_store_drop_extension ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
  EXECUTE FUNCTION feature_store.drop_extension_cleanup();
-- Point-in-time join (src/pit_join.c, src/training_set.c) and training-set lineage.

-- One row per training set created with fs_create_training_set: what it was built from.
CREATE TABLE feature_store.training_set (
    training_set_id serial PRIMARY KEY,
    target_schema name NOT NULL,
    target_name   name NOT NULL,
    target_relid  oid NOT NULL,
    spine         text NOT NULL,
    spine_time    text NOT NULL,
    feature_refs  text[] NOT NULL,   -- as given (may name services or view:*)
    features      text[] NOT NULL,   -- resolved, one per feature column: view@N:feature
    view_versions text[] NOT NULL,   -- distinct view@N used
    view_ids      int[] NOT NULL,
    as_of_created boolean NOT NULL,
    full_names    boolean NOT NULL,
    row_count     bigint NOT NULL,
    created_by    name NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON feature_store.training_set TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.training_set', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.training_set_training_set_id_seq', '');

CREATE VIEW fs_training_sets AS
SELECT t.training_set_id, format('%I.%I', t.target_schema, t.target_name) AS target,
       t.spine, t.spine_time, t.feature_refs, t.features, t.view_versions, t.as_of_created,
       t.full_names, t.row_count, t.created_by, t.created_at
FROM feature_store.training_set t;
GRANT SELECT ON fs_training_sets TO PUBLIC;

CREATE FUNCTION fs_point_in_time_join(spine regclass, features text[],
                                      spine_time text DEFAULT 'event_timestamp',
                                      full_names boolean DEFAULT false,
                                      as_of_created boolean DEFAULT false)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'fs_point_in_time_join'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_point_in_time_join(regclass, text[], text, boolean, boolean) IS
  'Point-in-time join: one row per spine row with the features as of its time (needs AS t(...); see fs_training_columns)';

CREATE FUNCTION fs_training_columns(spine regclass, features text[],
                                    spine_time text DEFAULT 'event_timestamp',
                                    full_names boolean DEFAULT false)
RETURNS text AS 'MODULE_PATHNAME', 'fs_training_columns'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION fs_training_columns(regclass, text[], text, boolean) IS
  'The column definition list of a point-in-time join, for its AS clause';

CREATE FUNCTION fs_create_training_set(target text, spine regclass, features text[],
                                       spine_time text DEFAULT 'event_timestamp',
                                       full_names boolean DEFAULT false,
                                       as_of_created boolean DEFAULT false)
RETURNS bigint AS 'MODULE_PATHNAME', 'fs_create_training_set'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_create_training_set(text, regclass, text[], text, boolean, boolean) IS
  'Creates table target holding a point-in-time training set and records its lineage; returns the row count';

CREATE FUNCTION fs_point_in_time_join_stats(OUT spine_rows bigint, OUT batches int, OUT batch_rows bigint,
                                            OUT source_rows bigint, OUT peak_memory_bytes bigint,
                                            OUT detail text)
RETURNS record AS 'MODULE_PATHNAME', 'fs_point_in_time_join_stats'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION fs_point_in_time_join_stats() IS
  'How the last point-in-time join of this session ran: spine rows, batches, source rows read, peak memory, strategy and time per phase';
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
       o.hits, o.misses,
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
COMMENT ON VIEW fs_stat_views IS
  'Per feature view (latest version): online mode, watermark, last successful run, freshness (now minus the newest online event time), quarantined rows, rows online, schedule, last run, cache hit rate';
GRANT SELECT ON fs_stat_views TO PUBLIC;
