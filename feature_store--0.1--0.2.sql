-- feature_store 0.1 -> 0.2. Every change to src/*.sql since 0.1 has its ALTER/CREATE here, in the
-- same order; test/t/070_upgrade.pl compares the catalog of an updated database with a fresh install.
\echo Use "ALTER EXTENSION feature_store UPDATE TO '0.2'" to load this file. \quit

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
