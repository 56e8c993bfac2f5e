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
                                 tags jsonb DEFAULT NULL,
                                 aggregations text[] DEFAULT NULL,
                                 filter text DEFAULT NULL,
                                 hop interval DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'fs_register_view' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_register_view(text, regclass, text, text, text, text[], interval, boolean, jsonb, text, text, jsonb, text[], text, interval) IS
  'Registers a feature view over a history relation (latest values, or windowed aggregations); a changed definition creates a new version, which is returned';

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

-- The definition of a source that is a view or materialized view, as part of a feature view's
-- definition: its query, with every name qualified (search_path pinned), so that the text does not
-- depend on the caller's settings; NULL for tables and other relations.
CREATE FUNCTION feature_store.source_definition(relid regclass) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c WHERE c.oid = relid AND c.relkind IN ('v', 'm')
$$;

CREATE VIEW fs_views AS
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

CREATE VIEW fs_features AS
SELECT v.name AS view, v.version, f.position, f.name AS feature, f.type,
       v.checks -> f.name::text AS checks,
       v.name || CASE WHEN v.version = (SELECT max(l.version) FROM feature_store.feature_view l WHERE l.name = v.name)
                      THEN '' ELSE '@' || v.version END || ':' || f.name AS reference,
       CASE WHEN f.agg_fn IS NOT NULL
            THEN f.agg_fn || '(' || coalesce(pg_catalog.quote_ident(f.agg_arg), '*') || ')'
                 || coalesce(' over ''' || f.agg_window || '''', '') END AS aggregation
FROM feature_store.feature_view v JOIN feature_store.view_feature f USING (view_id);

CREATE VIEW fs_services AS
SELECT s.name, s.version,
       s.version = max(s.version) OVER (PARTITION BY s.name) AS is_latest,
       (SELECT array_agg(f.view_name || coalesce('@' || f.view_version, '') || ':' || f.feature ORDER BY f.position)
        FROM feature_store.service_feature f WHERE f.service_id = s.service_id) AS features,
       s.description, s.owner, s.tags, s.registered_by, s.created_at
FROM feature_store.feature_service s;

GRANT SELECT ON fs_entities, fs_views, fs_features, fs_services TO PUBLIC;
