-- Point-in-time join (src/pit_join.c, src/training_set.c) and training-set lineage.

-- One row per training set created with fs_create_training_set: what it was built from.
CREATE TABLE feature_store.training_set (
    training_set_id serial PRIMARY KEY,
    target_schema name NOT NULL,
    target_name   name NOT NULL,
    target_relid  oid NOT NULL,
    spine         text,              -- the spine relation; NULL for a spine_query
    spine_time    text NOT NULL,
    feature_refs  text[] NOT NULL,   -- as given (may name services or view:*)
    features      text[] NOT NULL,   -- resolved, one per feature column: view@N:feature
    view_versions text[] NOT NULL,   -- distinct view@N used
    view_ids      int[] NOT NULL,
    as_of_created boolean NOT NULL,
    full_names    boolean NOT NULL,
    row_count     bigint NOT NULL,
    created_by    name NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    spine_query   text,              -- the query of a spine given as spine_query
    spine_checksum text              -- of a temporary or query spine: see fs_create_training_set
);
GRANT SELECT ON feature_store.training_set TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.training_set', '');
SELECT pg_catalog.pg_extension_config_dump('feature_store.training_set_training_set_id_seq', '');

CREATE VIEW fs_training_sets AS
SELECT t.training_set_id, format('%I.%I', t.target_schema, t.target_name) AS target,
       t.spine, t.spine_time, t.feature_refs, t.features, t.view_versions, t.as_of_created,
       t.full_names, t.row_count, t.created_by, t.created_at, t.spine_query, t.spine_checksum
FROM feature_store.training_set t;
GRANT SELECT ON fs_training_sets TO PUBLIC;

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

CREATE FUNCTION fs_training_columns(spine regclass DEFAULT NULL, features text[] DEFAULT NULL,
                                    spine_time text DEFAULT 'event_timestamp',
                                    full_names boolean DEFAULT false,
                                    spine_query text DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'fs_training_columns'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION fs_training_columns(regclass, text[], text, boolean, text) IS
  'The column definition list of a point-in-time join, for its AS clause';

CREATE FUNCTION fs_create_training_set(target text, spine regclass DEFAULT NULL, features text[] DEFAULT NULL,
                                       spine_time text DEFAULT 'event_timestamp',
                                       full_names boolean DEFAULT false,
                                       as_of_created boolean DEFAULT false,
                                       spine_query text DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'fs_create_training_set'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_create_training_set(text, regclass, text[], text, boolean, boolean, text) IS
  'Creates table target holding a point-in-time training set and records its lineage; returns the row count';

CREATE FUNCTION fs_point_in_time_join_stats(OUT spine_rows bigint, OUT batches int, OUT batch_rows bigint,
                                            OUT source_rows bigint, OUT peak_memory_bytes bigint,
                                            OUT detail text)
RETURNS record AS 'MODULE_PATHNAME', 'fs_point_in_time_join_stats'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION fs_point_in_time_join_stats() IS
  'How the last point-in-time join of this session ran: spine rows, batches, source rows read, peak memory, strategy and time per phase';
