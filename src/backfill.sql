-- Backfill (src/backfill.c): recompute a view version's online rows over a time range, in
-- chunks of one transaction each; a new version serves once its backfill completes.

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
