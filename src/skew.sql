
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
