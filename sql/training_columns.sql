-- fs_training_set_columns (src/training_columnar.c): the training set column by column. Each
-- column's bytea is decoded here with SQL's own send functions and string functions and must give
-- the rows of fs_point_in_time_join in the same order: fixed-width types as their send images,
-- other types as their text output with a zero byte after each value, NULLs flagged in `nulls`.
-- Covered: every fixed-width type, text with backslashes, tabs and non-ASCII, numeric, jsonb, an
-- array, NaN/Infinity/-0, infinite timestamps, NULLs everywhere, an aggregation view, a
-- transform, a composite key, spine_query, spine_columns => false, an empty spine, bad input.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE SCHEMA tc;
SELECT setseed(0.37);
CREATE TABLE tc.hist (user_id bigint, shop text, ts timestamptz, f8 float8, f4 real, i2 smallint, i4 int, i8 bigint,
                      b bool, d date, tsn timestamp, t text, n numeric, j jsonb, arr int[], o oid);
INSERT INTO tc.hist
SELECT 1 + floor(random() * 300)::bigint, 's' || floor(random() * 3)::int,
       '2026-01-01'::timestamptz + random() * interval '30 days',
       (ARRAY[random() * 1e6 - 5e5, 'NaN', 'Infinity', '-Infinity', '-0', NULL]::float8[])[1 + floor(random() * 6)::int * (random() < 0.3)::int],
       CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 100)::real END,
       CASE WHEN random() < 0.1 THEN NULL ELSE floor(random() * 65535 - 32768)::smallint END,
       CASE WHEN random() < 0.1 THEN NULL ELSE floor(random() * 4e9 - 2e9)::int END,
       CASE WHEN random() < 0.1 THEN NULL ELSE floor(random() * 9e18 - 4.5e18)::bigint END,
       CASE WHEN random() < 0.1 THEN NULL ELSE random() < 0.5 END,
       CASE WHEN random() < 0.1 THEN NULL WHEN random() < 0.05 THEN 'infinity'::date ELSE '2000-01-01'::date + floor(random() * 20000)::int END,
       CASE WHEN random() < 0.1 THEN NULL WHEN random() < 0.05 THEN '-infinity'::timestamp ELSE '1990-01-01'::timestamp + random() * interval '40 years' END,
       (ARRAY['plain', E'back\\slash', E'tab\there', E'new\nline', 'ünïcødé ✓', '', NULL])[1 + floor(random() * 7)::int],
       CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 1e6)::numeric, 3) END,
       CASE WHEN random() < 0.1 THEN NULL ELSE jsonb_build_object('k', floor(random() * 10)::int, 's', 'x"y') END,
       CASE WHEN random() < 0.1 THEN NULL ELSE ARRAY[floor(random() * 10)::int, NULL] END,
       floor(random() * 4e9)::bigint::oid
FROM generate_series(1, 6000);
SELECT fs_register_entity('tc_user', 'user_id');
SELECT fs_register_entity('tc_user_shop', ARRAY['user_id', 'shop']);
SELECT fs_register_view('tc_all', 'tc.hist', 'tc_user', event_time => 'ts',
                        features => ARRAY['f8', 'f4', 'i2', 'i4', 'i8', 'b', 'd', 'tsn', 't', 'n', 'j', 'arr', 'o']) > 0 AS ok;
SELECT fs_register_view('tc_agg', 'tc.hist', 'tc_user', event_time => 'ts',
                        aggregations => ARRAY['count(*) over ''2 days'' as n2d', 'avg(f4) over ''7 days'' as avg7d',
                                              'last(t) over ''3 days'' as last_t']) > 0 AS ok;
SELECT fs_register_view('tc_shop', 'tc.hist', 'tc_user_shop', event_time => 'ts', features => ARRAY['i4']) > 0 AS ok;
SELECT fs_register_transform('tc_scaled', 'f4 * 2 + factor', request => '{"factor": "float8"}',
                             inputs => ARRAY['tc_all:f4'], returns => 'float8') > 0 AS ok;
CREATE TABLE tc.spine AS
SELECT g AS request_id,
       CASE WHEN random() < 0.03 THEN NULL ELSE 1 + floor(random() * 320)::bigint END AS user_id,
       's' || floor(random() * 4)::int AS shop,
       CASE WHEN random() < 0.02 THEN NULL ELSE '2026-01-01'::timestamptz + random() * interval '35 days' END AS event_timestamp,
       random() AS factor
FROM generate_series(1, 3000) g;

-- The decoder: every column of a columnar result back into (row, value image, is null), where
-- the image is the value's send format for a fixed-width type and its text output as UTF-8 bytes
-- for any other (split at zero bytes by position, not by a pattern).
CREATE FUNCTION tc.decode(width int, vals bytea, nulls bytea, nrows bigint)
RETURNS TABLE (r bigint, img bytea, nul bool) LANGUAGE plpgsql AS $$
DECLARE
  pos int := 1;
  z int;
  rest bytea := vals;
BEGIN
  FOR i IN 0 .. nrows - 1 LOOP
    r := i + 1;
    nul := nulls IS NOT NULL AND get_byte(nulls, i::int) = 1;
    IF width > 0 THEN
      img := substr(vals, (i * width + 1)::int, width);
    ELSE
      z := position('\x00'::bytea IN rest);
      IF z = 0 THEN RAISE EXCEPTION 'row % has no terminating zero byte', r; END IF;
      img := substr(rest, 1, z - 1);
      rest := substr(rest, z + 1);
    END IF;
    IF nul THEN img := NULL; END IF;
    RETURN NEXT;
  END LOOP;
  IF width > 0 AND length(vals) <> nrows * width THEN RAISE EXCEPTION 'length % for % rows', length(vals), nrows; END IF;
  IF width = 0 AND length(rest) <> 0 THEN RAISE EXCEPTION '% bytes after the last row', length(rest); END IF;
  IF nulls IS NOT NULL AND length(nulls) <> nrows THEN RAISE EXCEPTION 'nulls: % bytes for % rows', length(nulls), nrows; END IF;
END $$;

-- The oracle side: the join's value of a column as the same image (send format or text output).
CREATE FUNCTION tc.image(v anyelement) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE pg_typeof(v)
    WHEN 'bigint'::regtype THEN int8send(v::text::bigint)
    WHEN 'integer'::regtype THEN int4send(v::text::int)
    WHEN 'smallint'::regtype THEN int2send(v::text::smallint)
    WHEN 'oid'::regtype THEN oidsend(v::text::oid)
    WHEN 'double precision'::regtype THEN float8send(v::text::float8)
    WHEN 'real'::regtype THEN float4send(v::text::real)
    WHEN 'boolean'::regtype THEN boolsend(v::text::bool)
    WHEN 'date'::regtype THEN date_send(v::text::date)
    WHEN 'timestamp without time zone'::regtype THEN timestamp_send(v::text::timestamp)
    WHEN 'timestamp with time zone'::regtype THEN timestamptz_send(v::text::timestamptz)
    ELSE convert_to(v::text, 'UTF8') END
$$;

-- Compares fs_training_set_columns with fs_point_in_time_join for one feature list: for every
-- column, the number of rows whose image or NULL flag differs (0 everywhere = equal).
CREATE FUNCTION tc.diffs(feats text[], spine_cols bool DEFAULT true, query text DEFAULT NULL)
RETURNS TABLE (col name, typ regtype, nrows bigint, diffs bigint) LANGUAGE plpgsql AS $$
DECLARE
  c record;
  cols text := fs_training_columns(CASE WHEN query IS NULL THEN 'tc.spine'::regclass END, feats, spine_query => query);
  widths jsonb := '{"bigint":8,"integer":4,"smallint":2,"oid":4,"double precision":8,"real":4,"boolean":1,"date":4,
                    "timestamp without time zone":8,"timestamp with time zone":8}';
BEGIN
  EXECUTE format('CREATE TEMP TABLE tc_join ON COMMIT DROP AS SELECT row_number() OVER () AS r, * FROM
                  fs_point_in_time_join(%L, %L, spine_query => %L) AS t(%s)',
                 CASE WHEN query IS NULL THEN 'tc.spine' END, feats, query, cols);
  FOR c IN SELECT * FROM fs_training_set_columns(CASE WHEN query IS NULL THEN 'tc.spine'::regclass END, feats,
                                                 spine_query => query, spine_columns => spine_cols) LOOP
    col := c.column_name; typ := c.column_type; nrows := c.row_count;
    EXECUTE format('SELECT count(*) FROM tc_join j FULL JOIN tc.decode(%s, $1, $2, $3) d USING (r)
                    WHERE d.r IS NULL OR j.r IS NULL OR d.nul <> (j.%I IS NULL) OR d.img IS DISTINCT FROM tc.image(j.%I)',
                   coalesce((widths ->> c.column_type::text)::int, 0), c.column_name, c.column_name)
      INTO diffs USING c."values", c.nulls, c.row_count;
    RETURN NEXT;
  END LOOP;
  DROP TABLE tc_join;
END $$;

BEGIN;
SELECT * FROM tc.diffs(ARRAY['tc_all:*']);
COMMIT;
-- an aggregation view, a composite key, a transform (its request column bound from the spine)
BEGIN;
SELECT * FROM tc.diffs(ARRAY['tc_agg:*', 'tc_shop:i4', 'tc_scaled', 'tc_all:t']);
COMMIT;
-- the spine as a query, without the spine's columns
BEGIN;
SELECT * FROM tc.diffs(ARRAY['tc_all:i8', 'tc_all:j'], false,
                       'SELECT user_id, event_timestamp FROM tc.spine WHERE request_id % 3 = 0 ORDER BY request_id DESC');
COMMIT;
-- nulls is NULL exactly when the column has no NULL: the spine's request_id has none
SELECT column_name, nulls IS NULL AS no_nulls FROM fs_training_set_columns('tc.spine', ARRAY['tc_all:f8']);
-- an empty spine: every column, zero rows, empty values
CREATE TABLE tc.empty (user_id bigint, event_timestamp timestamptz);
SELECT column_name, column_type, row_count, length("values"), nulls FROM fs_training_set_columns('tc.empty', ARRAY['tc_all:i8', 'tc_all:t']);

-- Bad input: the join's own errors, nothing returned.
\set VERBOSITY terse
SELECT * FROM fs_training_set_columns('tc.spine', ARRAY['nope:x']);
SELECT * FROM fs_training_set_columns('tc.spine', ARRAY['tc_all:f8'], spine_columns => NULL);
SELECT * FROM fs_training_set_columns('tc.spine', ARRAY['tc_all:f8'], spine_time => 'nope');
SELECT * FROM fs_training_set_columns(features => ARRAY['tc_all:f8']);
SELECT * FROM fs_training_set_columns('tc.empty', ARRAY['tc_scaled']);
\set VERBOSITY default
-- Privileges: as for the join, SELECT on the sources is needed.
CREATE ROLE tc_nobody;
GRANT USAGE ON SCHEMA tc TO tc_nobody;
GRANT SELECT ON tc.spine TO tc_nobody;
SET ROLE tc_nobody;
\set VERBOSITY terse
SELECT * FROM fs_training_set_columns('tc.spine', ARRAY['tc_all:f8']);
\set VERBOSITY default
RESET ROLE;
DROP OWNED BY tc_nobody;
DROP ROLE tc_nobody;
SELECT fs_drop_transform('tc_scaled');
SELECT fs_drop_view(v) FROM unnest(ARRAY['tc_all', 'tc_agg', 'tc_shop']) v;
SELECT fs_drop_entity(e) FROM unnest(ARRAY['tc_user', 'tc_user_shop']) e;
DROP SCHEMA tc CASCADE;
