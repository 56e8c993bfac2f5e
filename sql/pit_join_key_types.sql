-- Spine key types: a spine key whose type converts to the view's key type without
-- loss (smallint/integer -> bigint, smallint -> integer, varchar/char(n)/name -> text,
-- text/name -> varchar, domains over any of these) is accepted by every training-set function,
-- on both spine paths (a table read through the table AM, a view read through SPI) and every
-- history path (a sequential scan, a key-index probe, a source view read through SPI), and gives
-- exactly what SQL gives for `h.key = s.key`: the oracle is the LATERAL join of docs/semantics.md
-- (point-in-time join), written with the columns' own types.
-- Lossy or unrelated types keep a 42804 error with a hint.
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS feature_store;
\i sql/include/err.sql

-- Keys at the edges of every integer type, and keys whose low 16 or 32 bits equal a small key
-- (65537, 4294967297): a conversion that kept only the low bits, or forgot the sign, would match
-- them. Strings with trailing and leading blanks and an empty string (ASCII only: char(n)
-- truncation must not depend on the database encoding).
SELECT setseed(0.13);
CREATE TABLE kt_hist_big (id bigint, event_ts timestamptz, f int);
INSERT INTO kt_hist_big
SELECT (ARRAY[-32768, -2147483648, -1, 0, 1, 2, 3, 32767, 2147483647, 65537, 4294967297, -4294967297,
              -9223372036854775808, 9223372036854775807]::bigint[])[1 + floor(random() * 14)::int],
       '2026-01-01'::timestamptz + floor(random() * 48) * interval '1 hour', i
FROM generate_series(1, 3000) i;
CREATE TABLE kt_hist_text (code text, event_ts timestamptz, f int);
INSERT INTO kt_hist_text
SELECT (ARRAY['a', 'a ', 'a  ', ' a', 'b', 'ab', 'ab ', '', ' ', 'e', 'ee ', 'abcd'])[1 + floor(random() * 12)::int],
       '2026-01-01'::timestamptz + floor(random() * 48) * interval '1 hour', i
FROM generate_series(1, 3000) i;
CREATE TABLE kt_hist_vc (vcode varchar(8), event_ts timestamptz, f int);
INSERT INTO kt_hist_vc SELECT code, event_ts, f FROM kt_hist_text;
CREATE TABLE kt_hist_small (sid int, event_ts timestamptz, f int);
INSERT INTO kt_hist_small SELECT id, event_ts, f FROM kt_hist_big WHERE id BETWEEN -2147483648 AND 2147483647;
-- the composite-key source is a SQL view: read through the executor
CREATE TABLE kt_hist_pair_t (id bigint, code text, event_ts timestamptz, f int);
INSERT INTO kt_hist_pair_t
SELECT b.id, t.code, b.event_ts, b.f FROM kt_hist_big b JOIN kt_hist_text t ON t.f = b.f;
CREATE VIEW kt_hist_pair AS SELECT * FROM kt_hist_pair_t;

SELECT fs_register_entity('kt_big_e', 'id');
SELECT fs_register_entity('kt_text_e', 'code');
SELECT fs_register_entity('kt_vc_e', 'vcode');
SELECT fs_register_entity('kt_small_e', 'sid');
SELECT fs_register_entity('kt_pair_e', ARRAY['id', 'code']);
SELECT fs_register_view('kt_big', 'kt_hist_big', 'kt_big_e', event_time => 'event_ts');
SELECT fs_register_view('kt_text', 'kt_hist_text', 'kt_text_e', event_time => 'event_ts');
SELECT fs_register_view('kt_vc', 'kt_hist_vc', 'kt_vc_e', event_time => 'event_ts');
SELECT fs_register_view('kt_small', 'kt_hist_small', 'kt_small_e', event_time => 'event_ts');
SELECT fs_register_view('kt_pair', 'kt_hist_pair', 'kt_pair_e', event_time => 'event_ts');

-- Spines: one base of keys (some NULL, some without history) and times (some before any history,
-- some NULL), cast into each spine's key types.
CREATE TABLE kt_base AS
SELECT i AS row_id,
       (ARRAY[-32768, -2147483648, -1, 0, 1, 2, 3, 4, 32767, 2147483647, NULL])[1 + floor(random() * 11)::int]::bigint AS id,
       (ARRAY['a', 'a ', ' a', 'b', 'ab', 'ab ', '', ' ', 'e', 'ee', 'zz', 'abcd', NULL])[1 + floor(random() * 13)::int] AS code,
       CASE WHEN random() < 0.05 THEN NULL
            ELSE '2026-01-01'::timestamptz + floor(random() * 52) * interval '1 hour' - interval '2 hours' END AS event_timestamp
FROM generate_series(1, 400) i;
CREATE DOMAIN kt_int_dom AS int CHECK (VALUE <> 5);
CREATE DOMAIN kt_vc_dom AS varchar(6);
CREATE TABLE kt_spine_i2 AS
SELECT row_id, id::smallint AS id, event_timestamp FROM kt_base WHERE id BETWEEN -32768 AND 32767 OR id IS NULL;
CREATE TABLE kt_spine_i4 AS SELECT row_id, id::int AS id, event_timestamp FROM kt_base;
CREATE TABLE kt_spine_dom AS SELECT row_id, event_timestamp, id::kt_int_dom AS id FROM kt_base;
CREATE TABLE kt_spine_sid AS SELECT row_id, id::smallint AS sid, event_timestamp FROM kt_spine_i2;
CREATE TABLE kt_spine_varchar AS SELECT row_id, code::varchar(6) AS code, event_timestamp FROM kt_base;
CREATE TABLE kt_spine_char AS SELECT row_id, code::char(3) AS code, event_timestamp FROM kt_base;
CREATE TABLE kt_spine_name AS SELECT row_id, code::name AS code, event_timestamp FROM kt_base;
CREATE TABLE kt_spine_vcdom AS SELECT row_id, code::kt_vc_dom AS code, event_timestamp FROM kt_base;
CREATE TABLE kt_spine_text AS SELECT row_id, code AS vcode, event_timestamp FROM kt_base;
CREATE TABLE kt_spine_char_vc AS SELECT row_id, code::char(4) AS vcode, event_timestamp FROM kt_base;
CREATE TABLE kt_spine_pair AS SELECT row_id, id::int AS id, code::varchar AS code, event_timestamp FROM kt_base;
CREATE TABLE kt_spine_pair2 AS
SELECT row_id, code::char(2) AS code, id::smallint AS id, event_timestamp FROM kt_base
WHERE id BETWEEN -32768 AND 32767 OR id IS NULL;

-- One case: the spine, the features, the oracle's source and key columns.
CREATE TABLE kt_case (spine text, feats text[], hist text, keys text[]);
INSERT INTO kt_case VALUES
    ('kt_spine_i2', '{kt_big:f}', 'kt_hist_big', '{id}'),
    ('kt_spine_i4', '{kt_big:f}', 'kt_hist_big', '{id}'),
    ('kt_spine_dom', '{kt_big:f}', 'kt_hist_big', '{id}'),
    ('kt_spine_sid', '{kt_small:f}', 'kt_hist_small', '{sid}'),
    ('kt_spine_varchar', '{kt_text:f}', 'kt_hist_text', '{code}'),
    ('kt_spine_char', '{kt_text:f}', 'kt_hist_text', '{code}'),
    ('kt_spine_name', '{kt_text:f}', 'kt_hist_text', '{code}'),
    ('kt_spine_vcdom', '{kt_text:f}', 'kt_hist_text', '{code}'),
    ('kt_spine_text', '{kt_vc:f}', 'kt_hist_vc', '{vcode}'),
    ('kt_spine_pair', '{kt_pair:f}', 'kt_hist_pair', '{id,code}'),
    ('kt_spine_pair2', '{kt_pair:f}', 'kt_hist_pair', '{id,code}');
-- every spine also as a view: read through SPI
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT * FROM kt_case LOOP
        EXECUTE format('CREATE VIEW %I AS SELECT * FROM %I', c.spine || '_v', c.spine);
    END LOOP;
    INSERT INTO kt_case SELECT spine || '_v', feats, hist, keys FROM kt_case;
END $$;

-- Runs one case through fs_point_in_time_join (with the list fs_training_columns prints) and
-- fs_create_training_set and compares both with the oracle, row by row on every column's text
-- (so a char(n) spine key must come back with its blanks, a domain value as it was). matched:
-- the oracle's rows with a value; matched_exists counts them another way (a qualifying history
-- row exists), so the oracle itself is cross-checked. types_kept: the created table's spine
-- columns have the spine's types and typmods.
CREATE FUNCTION kt_check(c kt_case, OUT spine_rows bigint, OUT matched bigint, OUT matched_exists bigint,
                         OUT join_mismatches bigint, OUT table_mismatches bigint, OUT types_kept boolean,
                         OUT history text)
LANGUAGE plpgsql AS $$
DECLARE
    cond text := (SELECT string_agg(format('h.%1$I = s.%1$I', k), ' AND ') FROM unnest(c.keys) k);
BEGIN
    EXECUTE format('CREATE TEMP TABLE kt_exp AS SELECT s.*, h.f FROM %I s LEFT JOIN LATERAL ('
                   'SELECT h.f FROM %I h WHERE %s AND h.event_ts <= s.event_timestamp '
                   'ORDER BY h.event_ts DESC, h.f LIMIT 1) h ON true', c.spine, c.hist, cond);
    EXECUTE format('CREATE TEMP TABLE kt_res AS SELECT * FROM fs_point_in_time_join(%L, %L) AS t(%s)',
                   c.spine, c.feats, fs_training_columns(c.spine::regclass, c.feats));
    history := (SELECT split_part(detail, ';', 1) FROM fs_point_in_time_join_stats());
    PERFORM fs_create_training_set('kt_ts', c.spine::regclass, c.feats);
    spine_rows := (SELECT count(*) FROM kt_exp);
    matched := (SELECT count(*) FROM kt_exp WHERE f IS NOT NULL);
    EXECUTE format('SELECT count(*) FROM %I s WHERE EXISTS (SELECT FROM %I h WHERE %s AND h.event_ts <= s.event_timestamp)',
                   c.spine, c.hist, cond) INTO matched_exists;
    join_mismatches := (SELECT count(*) FROM kt_res r FULL JOIN kt_exp e ON r.row_id = e.row_id
                        WHERE row_to_json(r)::text IS DISTINCT FROM row_to_json(e)::text);
    table_mismatches := (SELECT count(*) FROM kt_ts r FULL JOIN kt_exp e ON r.row_id = e.row_id
                         WHERE row_to_json(r)::text IS DISTINCT FROM row_to_json(e)::text);
    types_kept := (SELECT array_agg(format_type(atttypid, atttypmod) ORDER BY attnum) FROM pg_attribute
                   WHERE attrelid = 'kt_ts'::regclass AND attnum > 0 AND NOT attisdropped)
                  = (SELECT array_agg(format_type(atttypid, atttypmod) ORDER BY attnum) FROM pg_attribute
                     WHERE attrelid = c.spine::regclass AND attnum > 0 AND NOT attisdropped) || 'integer'::text;
    DROP TABLE kt_exp, kt_res, kt_ts;
END $$;

-- The column lists keep the spine's own types.
SELECT spine, fs_training_columns(spine::regclass, feats) FROM kt_case WHERE spine NOT LIKE '%\_v' ORDER BY spine;

-- History read by sequential scans (no index yet; sources that are views are read through SPI).
SELECT c.spine, r.* FROM kt_case c, LATERAL kt_check(c) r ORDER BY c.spine;
-- The same with key indexes: small spines probe them, with the converted keys.
CREATE INDEX ON kt_hist_big (id);
CREATE INDEX ON kt_hist_text (code);
CREATE INDEX ON kt_hist_vc (vcode);
CREATE INDEX ON kt_hist_small (sid);
ANALYZE kt_hist_big, kt_hist_text, kt_hist_vc, kt_hist_small;
SELECT c.spine, r.* FROM kt_case c, LATERAL kt_check(c) r ORDER BY c.spine;

-- Lossy or unrelated spine key types: 42804 with a hint, on every function.
CREATE TABLE kt_spine_i8 (row_id int, sid bigint, event_timestamp timestamptz);
CREATE TABLE kt_spine_num (row_id int, id numeric, event_timestamp timestamptz);
CREATE TABLE kt_spine_textid (row_id int, id text, event_timestamp timestamptz);
CREATE TABLE kt_spine_intcode (row_id int, code int, event_timestamp timestamptz);
CREATE TABLE kt_spine_pair_bad (row_id int, id bigint, code int, event_timestamp timestamptz);
CREATE DOMAIN kt_num_dom AS numeric;
CREATE TABLE kt_spine_numdom (row_id int, id kt_num_dom, event_timestamp timestamptz);
CREATE VIEW kt_spine_i8_v AS SELECT * FROM kt_spine_i8;
SELECT (pg_temp.err(q)).* FROM (VALUES
    ($$SELECT fs_training_columns('kt_spine_i8', '{kt_small:f}')$$),
    ($$SELECT * FROM fs_point_in_time_join('kt_spine_i8', '{kt_small:f}') AS t(row_id int, sid bigint, event_timestamp timestamptz, f int)$$),
    ($$SELECT * FROM fs_point_in_time_join('kt_spine_i8_v', '{kt_small:f}') AS t(row_id int, sid bigint, event_timestamp timestamptz, f int)$$),
    ($$SELECT fs_create_training_set('kt_bad', 'kt_spine_i8', '{kt_small:f}')$$),
    ($$SELECT fs_create_training_set('kt_bad', 'kt_spine_num', '{kt_big:f}')$$),
    ($$SELECT fs_create_training_set('kt_bad', 'kt_spine_numdom', '{kt_big:f}')$$),
    ($$SELECT fs_create_training_set('kt_bad', 'kt_spine_textid', '{kt_big:f}')$$),
    ($$SELECT fs_create_training_set('kt_bad', 'kt_spine_intcode', '{kt_text:f}')$$),
    ($$SELECT fs_create_training_set('kt_bad', 'kt_spine_pair_bad', '{kt_pair:f}')$$),
    ($$SELECT fs_create_training_set('kt_bad', 'kt_spine_char_vc', '{kt_vc:f}')$$)) v(q);
-- the detail says what converts; char(n) against a varchar key is refused because SQL compares
-- them as char(n), ignoring trailing blanks on both sides: what SQL gives, for the record
SELECT fs_training_columns('kt_spine_num', '{kt_big:f}');
SELECT fs_training_columns('kt_spine_char_vc', '{kt_vc:f}');
SELECT 'a '::varchar = 'a'::char(4) AS varchar_eq_char, 'a '::text = 'a'::char(4) AS text_eq_char;
SELECT count(*) AS training_sets_created_by_errors FROM fs_training_sets WHERE target LIKE '%kt_bad%';
SELECT to_regclass('kt_bad') AS kt_bad;

-- Leave the database as found.
DROP FUNCTION kt_check;
DROP EXTENSION feature_store CASCADE;
DROP TABLE kt_hist_big, kt_hist_text, kt_hist_vc, kt_hist_small, kt_hist_pair_t, kt_base, kt_case,
    kt_spine_i2, kt_spine_i4, kt_spine_dom, kt_spine_sid, kt_spine_varchar, kt_spine_char, kt_spine_name,
    kt_spine_vcdom, kt_spine_text, kt_spine_char_vc, kt_spine_pair, kt_spine_pair2,
    kt_spine_i8, kt_spine_num, kt_spine_textid, kt_spine_intcode, kt_spine_pair_bad, kt_spine_numdom CASCADE;
DROP DOMAIN kt_int_dom, kt_vc_dom, kt_num_dom;
