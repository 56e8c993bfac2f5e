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
-- Per-row signal for writes under session_replication_role = replica (0.3): a logical-replication
-- apply worker fires no statement trigger, so a subscribed online table needs a row trigger.
CREATE FUNCTION feature_store.online_changed_row() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_online_changed_row_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION feature_store.online_changed_row() FROM PUBLIC;

CREATE FUNCTION feature_store.agg_changed_row() RETURNS trigger
  AS 'MODULE_PATHNAME', 'fs_agg_changed_row_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION feature_store.agg_changed_row() FROM PUBLIC;
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
