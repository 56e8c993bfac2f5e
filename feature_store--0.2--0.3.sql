-- feature_store 0.2 -> 0.3. Every change to src/*.sql since 0.2 has its ALTER/CREATE here, in the
-- same order; test/t/070_upgrade.pl compares the catalog of an updated database with a fresh install.
\echo Use "ALTER EXTENSION feature_store UPDATE TO '0.3'" to load this file. \quit

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
