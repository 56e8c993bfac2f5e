-- On-demand features (src/transform.c): request-time transforms, one SQL expression over request
-- parameters and input features, the same in training sets and serving.

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
