-- Checks and quarantine: fs_validate against hand-computed answers (every rule, NULLs,
-- boundaries exactly at min/max), against a brute-force SQL oracle on random data, the
-- expressions materialization uses, idempotent quarantine, privileges, bad input.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';

\i sql/include/err.sql
\i sql/include/runlog_test.sql

-- A source whose name and one feature name need quoting; composite entity key.
CREATE TABLE "Chk ""Hist""" (acct_id bigint, region text, ev timestamptz, cr timestamptz, id int,
    score float8, r4 real, cnt int, amt numeric, tier text, code int, "Flag" boolean, note text);
SELECT fs_register_entity('chk_acct', ARRAY['acct_id', 'region']);
SELECT fs_register_view('chk', '"Chk ""Hist"""', 'chk_acct', 'ev', 'cr',
    features => '{id,score,r4,cnt,amt,tier,code,Flag,note}',
    checks => '{"score": {"not_null": true, "min": 0, "max": 1},
                "r4": {"max": 0.1}, "cnt": {"min": -5.5, "max": 10}, "amt": {"min": 0.5},
                "tier": {"allowed": ["gold", "silver"]}, "code": {"allowed": [1, 2.0]},
                "Flag": {"not_null": true}, "note": {"not_null": false}}');

-- Row i has event time 2026-01-0i (day i) and created time 2026-02-0i.
-- min/max compare in the feature's type: integers exactly, real/double against the bound as
-- that type (so a real 0.1 passes max 0.1), numeric exactly.
INSERT INTO "Chk ""Hist""" VALUES
 (1, 'eu', '2026-01-01', '2026-02-01', 1, 0.5, 0.1, 10, 0.5, 'gold', 2, true, 'boundaries: cnt = max, amt = min, r4 = max as real'),
 (1, 'eu', '2026-01-02', '2026-02-02', 2, 0, NULL, -5, NULL, NULL, NULL, false, 'NULLs pass min/max/allowed; score = min; cnt -5 >= -5.5'),
 (1, 'us', '2026-01-03', '2026-02-03', 3, NULL, 0.05, 0, 1, 'silver', 1, true, 'score NULL: not_null'),
 (2, 'eu', '2026-01-04', '2026-02-04', 4, 1.0000001, 0, 11, 1, 'gold', 1, true, 'just above max twice'),
 (2, 'eu', '2026-01-05', '2026-02-05', 5, -0.0001, 0, -6, 0.49, 'gold', 1, true, 'just below min three times (cnt -6 < -5.5)'),
 (2, 'us', '2026-01-06', '2026-02-06', 6, 1, 0.11, 0, 1, 'Gold', 3, true, 'r4 max, allowed is case-sensitive, code 3 not allowed'),
 (3, 'eu', '2026-01-07', '2026-02-07', 7, 1, 0, 0, 1, 'gold', 1, NULL, 'Flag NULL: not_null'),
 (3, 'eu', '2026-01-08', '2026-02-08', 8, 'NaN', 0, 0, 1, 'gold', 1, true, 'NaN is above every max'),
 (3, 'us', '2026-01-09', '2026-02-09', 9, '-Infinity', 0, 0, 1, '', 2, true, '-Infinity below min; empty string not allowed'),
 (NULL, NULL, NULL, NULL, 10, NULL, 0, 0, 1, 'gold', 1, true, 'NULL key and times: reported by an open window only'),
 (4, 'eu', '2026-01-10', '2026-02-10', 11, 1.0000000000000002, 0, 0, 1, 'gold', 1, true, 'the double just above 1 fails max 1');

-- Hand-computed: which rows fail which checks, labels in feature then rule order.
CREATE TEMP TABLE chk_expected (id int, labels text[]);
INSERT INTO chk_expected VALUES
 (3, '{"score: not_null"}'),
 (4, '{"score: max 1","cnt: max 10"}'),
 (5, '{"score: min 0","cnt: min -5.5","amt: min 0.5"}'),
 (6, '{"r4: max 0.1","tier: allowed","code: allowed"}'),
 (7, '{"Flag: not_null"}'),
 (8, '{"score: max 1"}'),
 (9, '{"score: min 0","tier: allowed"}'),
 (10, '{"score: not_null"}'),
 (11, '{"score: max 1"}');

SELECT entity, event_ts, created_ts, failed_checks, row_data->>'note' AS note FROM fs_validate('chk');
-- exactly the hand-computed answer, both ways
SELECT (row_data->>'id')::int AS id, failed_checks FROM fs_validate('chk')
EXCEPT SELECT * FROM chk_expected;
SELECT * FROM chk_expected
EXCEPT SELECT (row_data->>'id')::int, failed_checks FROM fs_validate('chk');
-- the row as jsonb holds keys, times and features (quoted names included), nothing else
SELECT row_data FROM fs_validate('chk') WHERE row_data->>'id' = '7';

-- Windows: both bounds inclusive, on event time or (on_created) on created time.
SELECT array_agg((row_data->>'id')::int ORDER BY (row_data->>'id')::int) FROM fs_validate('chk', '2026-01-04', '2026-01-06');
SELECT array_agg((row_data->>'id')::int ORDER BY (row_data->>'id')::int) FROM fs_validate('chk', '2026-02-05', '2026-02-07', on_created => true);
SELECT array_agg((row_data->>'id')::int ORDER BY (row_data->>'id')::int) FROM fs_validate('chk', start_ts => '2026-01-08');
SELECT array_agg((row_data->>'id')::int ORDER BY (row_data->>'id')::int) FROM fs_validate('chk', end_ts => '2026-01-03');
SELECT count(*) FROM fs_validate('chk', '2026-01-04 00:00:00.000001', '2026-01-04 23:59');

-- The expressions materialization uses: over the table alias given, quoted.
SELECT failure_expr LIKE '%"S x"."Flag" IS NULL%' AS quoted_alias_and_column,
       pass_expr LIKE 'NOT (%' AS pass_expr_negates_failures
FROM feature_store.checks_sql('chk', 'S x');
-- pass_expr and failure_expr agree with the hand-computed answer
DO $$
DECLARE e record; n_pass int; n_fail int; bad int;
BEGIN
    SELECT * INTO e FROM feature_store.checks_sql('chk', 'h');
    EXECUTE format('SELECT count(*) FILTER (WHERE %s), count(*) FILTER (WHERE %s IS NOT NULL) FROM "Chk ""Hist""" h',
                   e.pass_expr, e.failure_expr) INTO n_pass, n_fail;
    EXECUTE format('SELECT count(*) FROM "Chk ""Hist""" h LEFT JOIN chk_expected x ON x.id = h.id
                    WHERE (%s) IS DISTINCT FROM x.labels OR (%s) = (x.id IS NOT NULL)', e.failure_expr, e.pass_expr) INTO bad;
    RAISE WARNING 'passing %, failing %, disagreeing with the hand-computed answer %', n_pass, n_fail, bad;
END $$;

-- Each type's comparison path (typed fast paths and the numeric / jsonb fallbacks) against
-- hand-computed answers: allowed keeps jsonb equality (the text "1" is not the number 1, an
-- integer never equals 2.5), bounds outside the type's range still compare correctly.
CREATE TABLE chk_types (k int, ev timestamptz, id int, i4 int, f8 float8, b bool, vc varchar, n numeric,
                        d date, f4 real, i2 smallint, i8 bigint);
SELECT fs_register_entity('chk_tk', 'k');
SELECT fs_register_view('chk_types', 'chk_types', 'chk_tk', 'ev', features => '{id,i4,f8,b,vc,n,d,f4,i2,i8}',
    checks => '{"i4": {"allowed": [1, 2.5, "1", true]}, "f8": {"allowed": [0.1, 1]}, "b": {"allowed": [true]},
                "vc": {"allowed": ["a", 1]}, "n": {"allowed": [1.50]}, "d": {"allowed": ["2026-01-01"]},
                "f4": {"max": 1e39}, "i2": {"min": -100000, "max": 100000.5},
                "i8": {"min": 9223372036854775807.5}}');
INSERT INTO chk_types VALUES
 (1, '2026-01-01', 1, 1, 0.1, true, 'a', 1.5, '2026-01-01', 3e38, -32768, 9223372036854775807),
 (2, '2026-01-01', 2, 2, 0.3, false, '1', 1.51, '2026-01-02', 'Infinity', 32767, NULL),
 (3, '2026-01-01', 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT (row_data->>'id')::int AS id, failed_checks FROM fs_validate('chk_types') ORDER BY 1;
SELECT failure_expr LIKE '%to_jsonb(t.d)%' AS date_as_jsonb,
       failure_expr NOT LIKE '%to_jsonb(t.i4)%' AND failure_expr NOT LIKE '%to_jsonb(t.vc)%' AS typed_allowed,
       failure_expr LIKE '%CAST(t.i8 AS pg_catalog.numeric)%' AS i8_bound_as_numeric,
       failure_expr LIKE '%CAST(t.f4 AS pg_catalog.numeric)%' AS f4_bound_as_numeric,
       failure_expr NOT LIKE '%CAST(t.i2 AS pg_catalog.numeric)%' AS i2_bound_as_integer
FROM feature_store.checks_sql('chk_types', 't');

-- A view without checks: nothing fails, expressions are trivial.
SELECT fs_register_view('chk_nochecks', '"Chk ""Hist"""', 'chk_acct', 'ev', features => '{score}');
SELECT count(*) FROM fs_validate('chk_nochecks');
SELECT * FROM feature_store.checks_sql('chk_nochecks');

-- Brute-force oracle on random data: fs_validate returns exactly the rows (and labels) that a
-- plain SQL statement finds, for open, bounded, boundary and created-time windows.
CREATE TABLE chk_rnd (k int, ev timestamptz, cr timestamptz, a float8, b int, c text);
SELECT setseed(0.5);
INSERT INTO chk_rnd
SELECT (random() * 200)::int,
       CASE WHEN random() < 0.02 THEN NULL ELSE '2026-01-01'::timestamptz + random() * interval '30 days' END,
       CASE WHEN random() < 0.1 THEN NULL ELSE '2026-02-01'::timestamptz + random() * interval '30 days' END,
       CASE WHEN random() < 0.1 THEN NULL WHEN random() < 0.05 THEN (random() * 2)::int ELSE random() * 1.2 - 0.1 END,
       CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 20)::int - 5 END,
       (ARRAY['x', 'y', 'z', NULL])[1 + (random() * 3)::int]
FROM generate_series(1, 5000);
SELECT fs_register_entity('chk_k', 'k');
SELECT fs_register_view('chk_rnd', 'chk_rnd', 'chk_k', 'ev', 'cr', features => '{a,b,c}',
    checks => '{"a": {"not_null": true, "min": 0, "max": 1}, "b": {"min": 0, "max": 10}, "c": {"allowed": ["x", "y"]}}');
CREATE FUNCTION pg_temp.oracle(lo timestamptz, hi timestamptz, on_created boolean)
RETURNS TABLE (k int, ev timestamptz, cr timestamptz, labels text[]) LANGUAGE sql AS $$
  SELECT * FROM (
    SELECT k, ev, cr, array_remove(ARRAY[
        CASE WHEN a IS NULL THEN 'a: not_null' END,
        CASE WHEN a < 0 THEN 'a: min 0' END,
        CASE WHEN a > 1 THEN 'a: max 1' END,
        CASE WHEN b < 0 THEN 'b: min 0' END,
        CASE WHEN b > 10 THEN 'b: max 10' END,
        CASE WHEN c NOT IN ('x', 'y') THEN 'c: allowed' END], NULL) AS labels
    FROM chk_rnd
    WHERE (lo IS NULL OR CASE WHEN on_created THEN cr ELSE ev END >= lo)
      AND (hi IS NULL OR CASE WHEN on_created THEN cr ELSE ev END <= hi)) o
  WHERE cardinality(labels) > 0
$$;
CREATE FUNCTION pg_temp.check_window(lo timestamptz, hi timestamptz, on_created boolean,
                                     OUT oracle_rows bigint, OUT missing bigint, OUT extra bigint)
LANGUAGE sql AS $$
  WITH f AS (SELECT (entity->>'k')::int AS k, event_ts, created_ts, failed_checks
             FROM fs_validate('chk_rnd', lo, hi, on_created)),
       o AS (SELECT * FROM pg_temp.oracle(lo, hi, on_created))
  SELECT (SELECT count(*) FROM o),
         (SELECT count(*) FROM (SELECT * FROM o EXCEPT ALL SELECT * FROM f) m),
         (SELECT count(*) FROM (SELECT * FROM f EXCEPT ALL SELECT * FROM o) e)
$$;
SELECT w, oracle_rows > 0 AS nonempty, missing, extra
FROM (VALUES ('open', NULL::timestamptz, NULL::timestamptz, false),
             ('bounded', '2026-01-05', '2026-01-20', false),
             ('from a row''s exact time', (SELECT ev FROM chk_rnd WHERE ev IS NOT NULL ORDER BY ev OFFSET 1000 LIMIT 1),
                                          (SELECT ev FROM chk_rnd WHERE ev IS NOT NULL ORDER BY ev OFFSET 3000 LIMIT 1), false),
             ('created time', '2026-02-10', '2026-02-12', true),
             ('empty', '2030-01-01', '2030-02-01', false)) AS t(w, lo, hi, oc),
     LATERAL pg_temp.check_window(lo, hi, oc);
-- per-label counts, too (the oracle is independent of the C code)
SELECT l, count(*) FILTER (WHERE src = 'fs') = count(*) FILTER (WHERE src = 'oracle') AS same_count
FROM (SELECT 'fs' AS src, unnest(failed_checks) AS l FROM fs_validate('chk_rnd')
      UNION ALL SELECT 'oracle', unnest(labels) FROM pg_temp.oracle(NULL, NULL, false)) x
GROUP BY l ORDER BY l;

-- the pass expression materialization filters with agrees with the oracle row by row
DO $$
DECLARE e record; n_pass bigint; n_oracle bigint; n_disagree bigint;
BEGIN
    SELECT * INTO e FROM feature_store.checks_sql('chk_rnd', 'r');
    EXECUTE format('SELECT count(*) FILTER (WHERE %s) FROM chk_rnd r', e.pass_expr) INTO n_pass;
    SELECT count(*) INTO n_oracle FROM chk_rnd
    WHERE a IS NOT NULL AND a >= 0 AND a <= 1 AND (b IS NULL OR b BETWEEN 0 AND 10) AND (c IS NULL OR c IN ('x', 'y'));
    EXECUTE format('SELECT count(*) FROM chk_rnd r WHERE (%s) <> (r.a IS NOT NULL AND r.a >= 0 AND r.a <= 1
                    AND (r.b IS NULL OR r.b BETWEEN 0 AND 10) AND (r.c IS NULL OR r.c IN (''x'', ''y'')))', e.pass_expr) INTO n_disagree;
    RAISE WARNING 'random data: pass_expr count equals oracle: %, rows disagreeing: %, some pass: %, some fail: %',
        n_pass = n_oracle, n_disagree, n_pass > 0, n_pass < 5000;
END $$;

-- Quarantine (through the run-log test driver, as materialization will call it):
-- every failing row once; a re-run adds nothing; new failing rows are added.
SELECT fs_test.run_logged_test('chk', 'batch', 'SELECT 1', quarantine => true);
SELECT rows_quarantined FROM fs_runs WHERE view = 'chk' ORDER BY run_id DESC LIMIT 1;
SELECT (row_data->>'id')::int AS id, failed_checks FROM fs_quarantine WHERE view = 'chk'
EXCEPT SELECT * FROM chk_expected;
SELECT count(*) AS quarantined, count(DISTINCT run_id) AS runs FROM fs_quarantine WHERE view = 'chk';
SELECT fs_test.run_logged_test('chk', 'batch', 'SELECT 1', quarantine => true);
SELECT rows_quarantined FROM fs_runs WHERE view = 'chk' ORDER BY run_id DESC LIMIT 1;
-- same key and times, different content: a different row, kept; an exact copy of a
-- quarantined row: the same row, not added twice
INSERT INTO "Chk ""Hist""" VALUES
 (2, 'eu', '2026-01-04', '2026-02-04', 4, 2.5, 0, 11, 1, 'gold', 1, true, 'just above max twice'),
 (2, 'eu', '2026-01-04', '2026-02-04', 4, 1.0000001, 0, 11, 1, 'gold', 1, true, 'just above max twice');
SELECT fs_test.run_logged_test('chk', 'batch', 'SELECT 1', quarantine => true, start_ts => '2026-01-04', end_ts => '2026-01-04');
SELECT rows_quarantined, window_start, window_end FROM fs_runs WHERE view = 'chk' ORDER BY run_id DESC LIMIT 1;
SELECT row_data->>'score' AS score, failed_checks FROM fs_quarantine WHERE view = 'chk' AND row_data->>'id' = '4' ORDER BY 1;
-- the random view: quarantine equals the oracle exactly
SELECT fs_test.run_logged_test('chk_rnd', 'batch', 'SELECT 1', quarantine => true) IS NOT NULL AS ran;
SELECT count(*) AS missing FROM (SELECT * FROM pg_temp.oracle(NULL, NULL, false)
    EXCEPT ALL SELECT (entity->>'k')::int, event_ts, created_ts, failed_checks FROM fs_quarantine WHERE view = 'chk_rnd') x;
SELECT count(*) AS extra FROM (SELECT (entity->>'k')::int, event_ts, created_ts, failed_checks FROM fs_quarantine WHERE view = 'chk_rnd'
    EXCEPT ALL SELECT * FROM pg_temp.oracle(NULL, NULL, false)) x;

-- Privileges: quarantined rows are feature data. A role sees those of views whose source
-- it may SELECT, and nothing else; the table itself is closed.
CREATE ROLE regress_chk_reader;
SET ROLE regress_chk_reader;
SELECT count(*) FROM fs_quarantine;
SELECT * FROM pg_temp.err($$SELECT * FROM feature_store.quarantine$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate('chk')$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_test.run_logged_test('chk', 'batch', 'SELECT 1')$$);
RESET ROLE;
GRANT SELECT ON chk_rnd TO regress_chk_reader;
SET ROLE regress_chk_reader;
SELECT view, count(*) > 0 AS sees_rows FROM fs_quarantine GROUP BY view;
SELECT count(*) > 0 AS validates FROM fs_validate('chk_rnd', '2026-01-01', '2026-01-02');
-- a leaky function in the caller's WHERE clause does not see rows of other views first
CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN RAISE NOTICE 'saw %', t; RETURN true; END $$;
SET client_min_messages = notice;
SELECT count(*) FROM fs_quarantine WHERE pg_temp.leak(view) AND view = 'chk';
SET client_min_messages = warning;
DROP FUNCTION pg_temp.leak(text);
RESET ROLE;

-- Bad input: SQLSTATEs and hints.
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate(NULL)$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate('no_such_view')$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate('chk@9')$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate('chk', '2026-01-02', '2026-01-01')$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate('chk_nochecks', on_created => true)$$);
SELECT * FROM pg_temp.err($$SELECT * FROM feature_store.checks_sql('chk', NULL)$$);
CREATE TABLE chk_gone (k int, ev timestamptz, a float8);
SELECT fs_register_view('chk_gone', 'chk_gone', 'chk_k', 'ev', checks => '{"a": {"min": 0}}');
SELECT * FROM feature_store.checks_sql('chk_gone', 'g');
DROP TABLE chk_gone;
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate('chk_gone')$$);
-- a source column changed type or disappeared after registration: a clear error
CREATE TABLE chk_alter (k int, ev timestamptz, a float8);
SELECT fs_register_view('chk_alter', 'chk_alter', 'chk_k', 'ev', checks => '{"a": {"min": 0}}');
INSERT INTO chk_alter VALUES (1, '2026-01-01', 1);
ALTER TABLE chk_alter ALTER COLUMN a TYPE text;
UPDATE chk_alter SET a = 'abc';
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate('chk_alter')$$);
ALTER TABLE chk_alter DROP COLUMN a;
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate('chk_alter')$$);

-- Dropping a view drops its quarantined rows (they are only readable through the view).
SELECT fs_drop_view('chk_rnd');
SELECT count(*) FROM feature_store.quarantine q WHERE q.view_name = 'chk_rnd';
SELECT fs_drop_view('chk'); SELECT fs_drop_view('chk_nochecks'); SELECT fs_drop_view('chk_types'); SELECT fs_drop_entity('chk_tk'); SELECT fs_drop_view('chk_gone'); SELECT fs_drop_view('chk_alter');
SELECT fs_drop_entity('chk_acct'); SELECT fs_drop_entity('chk_k');
DROP TABLE "Chk ""Hist""", chk_rnd, chk_alter, chk_types;
DROP ROLE regress_chk_reader;

-- Leave the database as found: the registry tests create the extension themselves.
DROP EXTENSION feature_store;
