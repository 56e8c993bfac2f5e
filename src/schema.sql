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
    -- (0.3) aggregation views: features computed by the store from the source's events
    kind          text NOT NULL DEFAULT 'latest' CHECK (kind IN ('latest', 'aggregate')),
    filter        text,              -- deparsed with qualified names; runs under a pinned search_path
    hop           interval CHECK (hop IS NULL OR hop > interval '0'),
    -- (0.3) the query of a view or materialized view source at registration
    -- (feature_store.source_definition): part of the definition, a changed one is a new version
    source_def    text,
    -- (0.3) a new version of an online latest-value view is 'backfilling' until fs_backfill
    -- completes; "name" serves the newest 'ready' version (view@N names any)
    state         text NOT NULL DEFAULT 'ready' CHECK (state IN ('backfilling', 'ready')),
    UNIQUE (name, version)
);

CREATE TABLE feature_store.view_feature (
    view_id   int NOT NULL REFERENCES feature_store.feature_view (view_id) ON DELETE CASCADE,
    position  int NOT NULL,
    name      name NOT NULL,
    type      regtype NOT NULL,
    -- (0.3) of an aggregation view: fn(arg) over window (NULL arg: count(*); NULL window: lifetime)
    agg_fn     text CHECK (agg_fn IN ('count', 'sum', 'avg', 'min', 'max', 'first', 'last')),
    agg_arg    name,
    agg_window interval,
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
