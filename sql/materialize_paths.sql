-- Materialization write paths against a brute-force oracle: the one-pass C path in
-- each of its forms (TID mode for a table source, copy mode for a view source; single integer
-- key and a (text, int) key; bulk insert into an empty online table, merge with the online
-- table, probing upsert), the SQL statement, and the fallback past maintenance_work_mem.
-- Randomized history (fixed seed) with many exact (event, created) ties, NULL created times,
-- NULL keys and event times, rows failing checks, TTL edges; online rows that are newer,
-- equal or older than the history's winner before the run (only strictly older ones move).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';

CREATE TABLE mp_hist (region text, uid int, ev timestamptz, cr timestamptz, a float8, b int, c text COLLATE "C");
SELECT setseed(0.17);
INSERT INTO mp_hist
SELECT CASE WHEN random() < 0.02 THEN NULL ELSE (ARRAY['eu', 'us', 'ap'])[1 + (random() * 2)::int] END,
       CASE WHEN random() < 0.02 THEN NULL ELSE (random() * 300)::int END,
       -- events on a 6-hour grid over 10 days, created times on a 1-day grid: many exact ties
       CASE WHEN random() < 0.01 THEN NULL ELSE '2026-02-01'::timestamptz + (random() * 40)::int * interval '6 hours' END,
       CASE WHEN random() < 0.2 THEN NULL ELSE '2026-02-01'::timestamptz + (random() * 12)::int * interval '1 day' END,
       CASE WHEN random() < 0.05 THEN NULL ELSE round((random() * 1.2 - 0.1)::numeric, 1)::float8 END,
       CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 3)::int END,
       CASE WHEN random() < 0.05 THEN NULL ELSE (ARRAY['x', 'y', 'Z'])[1 + (random() * 2)::int] END
FROM generate_series(1, 8000) g;
-- TTL edges, entities 7000-7003 (ttl 2 days, end 2026-02-09): exactly at end - ttl (in), 1 us before (out).
INSERT INTO mp_hist VALUES ('eu', 7000, '2026-02-07', NULL, 0.5, 1, 'x'), ('eu', 7001, '2026-02-06 23:59:59.999999', NULL, 0.5, 1, 'x'),
                           ('eu', 7002, '2026-02-09', '2026-02-20', 0.5, 1, 'x'), ('eu', 7003, '2026-02-09 00:00:00.000001', NULL, 0.5, 1, 'x');
CREATE INDEX ON mp_hist (uid, region);   -- for the oracle's LATERAL lookups
ANALYZE mp_hist;
CREATE VIEW mp_hist_v AS SELECT * FROM mp_hist;

SELECT fs_register_entity('mp_user', 'uid');
SELECT fs_register_entity('mp_pair', ARRAY['region', 'uid']);
-- checks: a in [0, 1] (NULL passes), c not null
SELECT fs_register_view('mp_t', 'mp_hist', 'mp_user', 'ev', 'cr', ttl => '2 days', features => ARRAY['a', 'b', 'c'],
                        checks => '{"a": {"min": 0, "max": 1}, "c": {"not_null": true}}') > 0 AS registered;
SELECT fs_register_view('mp_pt', 'mp_hist', 'mp_pair', 'ev', 'cr', features => ARRAY['a', 'b', 'c'],
                        checks => '{"a": {"min": 0, "max": 1}, "c": {"not_null": true}}') > 0 AS registered;
SELECT fs_register_view('mp_pv', 'mp_hist_v', 'mp_pair', 'ev', 'cr', features => ARRAY['a', 'b', 'c'],
                        checks => '{"a": {"min": 0, "max": 1}, "c": {"not_null": true}}') > 0 AS registered;
-- Without checks (a plain table, an open start: read through the table AM, not the executor).
SELECT fs_register_view('mp_nc', 'mp_hist', 'mp_user', 'ev', 'cr', ttl => '2 days', features => ARRAY['a', 'b', 'c']) > 0 AS registered;
SELECT fs_register_view('mp_nci', 'mp_hist', 'mp_pair', 'ev', 'cr', features => ARRAY['a', 'b', 'c']) > 0 AS registered;
SELECT format('feature_store.online_%s', view_id) AS t_online FROM fs_views WHERE name = 'mp_t' \gset
SELECT format('feature_store.online_%s', view_id) AS nc_online FROM fs_views WHERE name = 'mp_nc' \gset
SELECT format('feature_store.online_%s', view_id) AS nci_online FROM fs_views WHERE name = 'mp_nci' \gset
SELECT format('feature_store.online_%s', view_id) AS pt_online FROM fs_views WHERE name = 'mp_pt' \gset
SELECT format('feature_store.online_%s', view_id) AS pv_online FROM fs_views WHERE name = 'mp_pv' \gset

-- The oracle: per key, the latest passing row with event time in [s, e] (and >= e - ttl), ties
-- broken by the features in order, smallest first, NULLs last (the point-in-time join's rule).
-- Setting mp.checks = off: every row passes; mp.created = on: only rows with a created time
-- (an incremental run's window is on created time).
SET mp.checks = on;
SET mp.created = off;
CREATE FUNCTION pg_temp.oracle(pair boolean, s timestamptz, e timestamptz, ttl interval)
RETURNS TABLE (region text, uid int, ev timestamptz, cr timestamptz, a float8, b int, c text) LANGUAGE sql AS $$
  SELECT CASE WHEN pair THEN k.region END, k.uid, l.ev, l.cr, l.a, l.b, l.c
  FROM (SELECT DISTINCT CASE WHEN pair THEN h.region END AS region, h.uid FROM mp_hist h
        WHERE h.uid IS NOT NULL AND (NOT pair OR h.region IS NOT NULL)) k
  CROSS JOIN LATERAL (SELECT h.ev, h.cr, h.a, h.b, h.c FROM mp_hist h
                      WHERE h.uid = k.uid AND (NOT pair OR h.region = k.region)
                        AND h.ev BETWEEN s AND e AND (ttl IS NULL OR h.ev >= e - ttl)
                        AND (NOT current_setting('mp.checks')::boolean OR ((h.a IS NULL OR h.a BETWEEN 0 AND 1) AND h.c IS NOT NULL))
                        AND (NOT current_setting('mp.created')::boolean OR h.cr IS NOT NULL)
                      ORDER BY h.ev DESC, h.cr DESC NULLS LAST, h.a NULLS LAST, h.b NULLS LAST, h.c NULLS LAST
                      LIMIT 1) l $$;
-- Differences between an online table and an expected set (both directions, with multiplicity).
CREATE FUNCTION pg_temp.diff(tab text, pair boolean, expected text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint; cols text := CASE WHEN pair THEN 'region' ELSE 'NULL::text' END || ', uid, __event_ts, __created_ts, a, b, c';
BEGIN
  EXECUTE format('SELECT count(*) FROM ((SELECT %s FROM %s EXCEPT ALL (%s)) UNION ALL ((%s) EXCEPT ALL SELECT %s FROM %s)) d',
                 cols, tab, expected, expected, cols, tab) INTO n;
  RETURN n;
END $$;
-- The online rows planted before a run: for entities of the oracle, one newer than the winner,
-- one equal in (event, created) with other features, one older; and one entity without history.
CREATE TABLE mp_planted (region text, uid int, ev timestamptz, cr timestamptz, a float8, b int, c text);
CREATE FUNCTION pg_temp.plant(tab text, pair boolean, s timestamptz, e timestamptz, ttl interval) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('TRUNCATE %s', tab);
  TRUNCATE mp_planted;
  INSERT INTO mp_planted
  SELECT o.region, o.uid,
         CASE o.uid % 3 WHEN 0 THEN o.ev + interval '1 hour' WHEN 1 THEN o.ev ELSE o.ev - interval '1 hour' END,
         o.cr, 42, 42, 'planted'
  FROM pg_temp.oracle(pair, s, e, ttl) o WHERE o.uid % 4 = 0;
  INSERT INTO mp_planted VALUES (CASE WHEN pair THEN 'zz' END, 99999, '2026-01-01', NULL, 1, 1, 'no history');
  EXECUTE format('INSERT INTO %s SELECT %s uid, ev, cr, a, b, c FROM mp_planted', tab, CASE WHEN pair THEN 'region,' ELSE '' END);
END $$;
-- What the online table must hold after a run over planted rows: the history winner only where
-- it is strictly newer ((event, created), a NULL created time older than any).
CREATE FUNCTION pg_temp.merged(pair boolean, s timestamptz, e timestamptz, ttl interval)
RETURNS TABLE (region text, uid int, ev timestamptz, cr timestamptz, a float8, b int, c text) LANGUAGE sql AS $$
  SELECT DISTINCT ON (region, uid) region, uid, ev, cr, a, b, c
  FROM (SELECT 0 AS pri, * FROM mp_planted UNION ALL SELECT 1, * FROM pg_temp.oracle(pair, s, e, ttl)) u
  ORDER BY region, uid, ev DESC, COALESCE(cr, '-infinity') DESC, pri $$;

-- Every method, every view: into an empty online table (rows written = oracle rows, table =
-- oracle), again (writes nothing), then over planted rows (writes exactly the entities whose
-- winner is strictly newer; table = merged oracle).
CREATE TABLE mp_results (method text, view text, empty_ok boolean, empty_diff bigint, again bigint,
                         planted_ok boolean, planted_diff bigint);
CREATE FUNCTION pg_temp.run(method text, view text, tab text, pair boolean, s timestamptz, e timestamptz, ttl interval,
                            checks boolean DEFAULT true)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE n1 bigint; d1 bigint; n2 bigint; n3 bigint; d3 bigint; want3 bigint;
BEGIN
  PERFORM set_config('feature_store.materialize_method', method, true);
  PERFORM set_config('mp.checks', checks::text, true);
  IF to_regclass(tab) IS NOT NULL THEN EXECUTE format('TRUNCATE %s', tab); END IF;
  n1 := fs_materialize(view, s, e);
  d1 := pg_temp.diff(tab, pair, format('SELECT * FROM pg_temp.oracle(%L, %L, %L, %L)', pair, s, e, ttl));
  n2 := fs_materialize(view, s, e);
  PERFORM pg_temp.plant(tab, pair, s, e, ttl);
  SELECT count(*) INTO want3 FROM pg_temp.oracle(pair, s, e, ttl) o
  WHERE NOT EXISTS (SELECT 1 FROM mp_planted p WHERE p.uid = o.uid AND p.region IS NOT DISTINCT FROM o.region
                      AND (p.ev, COALESCE(p.cr, '-infinity')) >= (o.ev, COALESCE(o.cr, '-infinity')));
  n3 := fs_materialize(view, s, e);
  d3 := pg_temp.diff(tab, pair, format('SELECT * FROM pg_temp.merged(%L, %L, %L, %L)', pair, s, e, ttl));
  INSERT INTO mp_results VALUES (method, view, n1 = (SELECT count(*) FROM pg_temp.oracle(pair, s, e, ttl)), d1, n2,
                                 n3 = want3, d3);
END $$;
SELECT pg_temp.run(m, 'mp_t', :'t_online', false, '2026-02-02', '2026-02-09', '2 days'),
       pg_temp.run(m, 'mp_pt', :'pt_online', true, '-infinity', '2026-02-08', NULL),
       pg_temp.run(m, 'mp_pv', :'pv_online', true, '2026-02-03', '2026-02-10 12:00', NULL),
       pg_temp.run(m, 'mp_nc', :'nc_online', false, '-infinity', '2026-02-09', '2 days', false)
FROM unnest(ARRAY['auto', 'merge', 'probe', 'sql']) m;
SELECT * FROM mp_results ORDER BY view, method;
-- The cases are not empty: the oracle has many entities, many planted rows stay.
SELECT (SELECT count(*) FROM pg_temp.oracle(false, '2026-02-02', '2026-02-09', '2 days')) AS t_entities,
       (SELECT count(*) FROM pg_temp.oracle(true, '-infinity', '2026-02-08', NULL)) AS pt_entities,
       (SELECT count(*) FROM :pt_online WHERE c = 'planted') AS pt_planted_kept;
-- TTL edges: 7000 (at end - ttl) and 7002 (at end) are online, 7001 and 7003 are not.
SELECT uid FROM :t_online WHERE uid BETWEEN 7000 AND 7003 ORDER BY uid;
-- Exact (event, created) ties exist in the data, and the winners took the smallest features.
SELECT count(*) > 50 AS tied_groups FROM (SELECT uid FROM mp_hist WHERE uid IS NOT NULL AND ev IS NOT NULL
                                          GROUP BY uid, ev, cr HAVING count(*) > 1) t;

-- An incremental run from no watermark (window on created time, up to now; rows without a
-- created time are outside it) with each method equals the oracle; the next run writes nothing.
CREATE TABLE mp_incr (method text, rows_ok boolean, diff bigint, again bigint);
CREATE FUNCTION pg_temp.incr(method text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE n1 bigint; d1 bigint; n2 bigint;
BEGIN
  PERFORM set_config('feature_store.materialize_method', method, true);
  PERFORM set_config('mp.checks', 'off', true);
  PERFORM set_config('mp.created', 'on', true);
  IF to_regclass(current_setting('mp.nci_online')) IS NOT NULL THEN EXECUTE format('TRUNCATE %s', current_setting('mp.nci_online')); END IF;
  DELETE FROM feature_store.watermark w USING fs_views v WHERE v.view_id = w.view_id AND v.name = 'mp_nci';
  n1 := fs_materialize_incremental('mp_nci');
  d1 := pg_temp.diff(current_setting('mp.nci_online'), true, $q$SELECT * FROM pg_temp.oracle(true, '-infinity', 'infinity', NULL)$q$);
  n2 := fs_materialize_incremental('mp_nci');
  INSERT INTO mp_incr VALUES (method, n1 = (SELECT count(*) FROM pg_temp.oracle(true, '-infinity', 'infinity', NULL)), d1, n2);
END $$;
SET mp.nci_online = :'nci_online';
SELECT pg_temp.incr(m) FROM unnest(ARRAY['auto', 'merge', 'probe', 'sql']) m;
SELECT * FROM mp_incr ORDER BY method;

-- Past maintenance_work_mem the C path gives up and the SQL statement writes the same rows.
CREATE TABLE mp_big (uid int, ev timestamptz, cr timestamptz, a float8, b int, c text COLLATE "C");
INSERT INTO mp_big SELECT g % 40000, '2026-02-01'::timestamptz + (g % 7) * interval '1 hour', NULL, (g % 10) / 10.0, g % 3, 'x'
FROM generate_series(1, 80000) g;
SELECT fs_register_entity('mp_big_user', 'uid');
SELECT fs_register_view('mp_big', 'mp_big', 'mp_big_user', 'ev', 'cr', features => ARRAY['a', 'b', 'c']) > 0 AS registered;
SET maintenance_work_mem = '1MB';
SELECT fs_materialize('mp_big', '-infinity', '2026-03-01') AS big_rows;
RESET maintenance_work_mem;
SELECT format('feature_store.online_%s', view_id) AS big_online FROM fs_views WHERE name = 'mp_big' \gset
CREATE TEMP VIEW mp_big_oracle AS SELECT DISTINCT ON (uid) uid, ev, a, b FROM mp_big ORDER BY uid, ev DESC, a, b;
SELECT count(*) AS big_differences FROM (
  (SELECT uid, __event_ts, a, b FROM :big_online EXCEPT ALL SELECT * FROM mp_big_oracle)
  UNION ALL
  (SELECT * FROM mp_big_oracle EXCEPT ALL SELECT uid, __event_ts, a, b FROM :big_online)) d;

-- The run log records each run; the cache sees bulk-inserted rows (fs_online after commit).
-- (auto leaves windows estimated under 250k rows to the SQL statement; merge and probe force
-- the one-pass path, so every case above ran through it.)
SELECT count(*) > 0 AS runs_logged FROM fs_runs WHERE view = 'mp_t' AND outcome = 'success';
SET feature_store.materialize_method = merge;   -- the one-pass path even for this small window
TRUNCATE :pt_online;
SELECT fs_materialize('mp_pt', '-infinity', '2026-02-08') = (SELECT count(*) FROM pg_temp.oracle(true, '-infinity', '2026-02-08', NULL)) AS bulk_rows;
SELECT count(*) AS served_differences
FROM :pt_online o
WHERE fs_online(fs_entity('mp_pair', o.region, o.uid), 'mp_pt') -> 'mp_pt' ->> 'c' IS DISTINCT FROM o.c;

-- Incremental runs into a filled online table (the C upsert of materialize_upsert.c where it
-- can write; the tuplestore upsert or the statement otherwise, e.g. under REPEATABLE READ).
-- Per method, view (composite key without checks: TID mode; single key with checks: TID mode
-- through the executor; composite key over a view: copy mode) and isolation level: a first run
-- fills the online table; planted online rows with a created time in the future; new history
-- rows (created after the watermark) for a subset of entities: newer events with toasted text,
-- all-NULL features, older events (never backwards), the same event as a planted row with an
-- older created time (ties by created time keep the row online), several rows per entity with
-- exact ties, and new entities. The table must equal the merge of the rows online before the
-- run with the oracle of the new rows; the run writes exactly the entities that move; the same
-- window again writes nothing.
SELECT fs_register_view('mp_inc_nc', 'mp_hist', 'mp_pair', 'ev', 'cr', features => ARRAY['a', 'b', 'c']) > 0 AS registered;
SELECT fs_register_view('mp_inc_u', 'mp_hist', 'mp_user', 'ev', 'cr', features => ARRAY['a', 'b', 'c'],
                        checks => '{"a": {"min": 0, "max": 1}, "c": {"not_null": true}}') > 0 AS registered;
SELECT fs_register_view('mp_inc_v', 'mp_hist_v', 'mp_pair', 'ev', 'cr', features => ARRAY['a', 'b', 'c'],
                        checks => '{"a": {"min": 0, "max": 1}, "c": {"not_null": true}}') > 0 AS registered;
-- The oracle of the rows created after a time (no event window, no TTL).
CREATE FUNCTION pg_temp.oracle_after(pair boolean, after timestamptz)
RETURNS TABLE (region text, uid int, ev timestamptz, cr timestamptz, a float8, b int, c text) LANGUAGE sql AS $$
  SELECT CASE WHEN pair THEN k.region END, k.uid, l.ev, l.cr, l.a, l.b, l.c
  FROM (SELECT DISTINCT CASE WHEN pair THEN h.region END AS region, h.uid FROM mp_hist h
        WHERE h.uid IS NOT NULL AND (NOT pair OR h.region IS NOT NULL) AND h.cr > after) k
  CROSS JOIN LATERAL (SELECT h.ev, h.cr, h.a, h.b, h.c FROM mp_hist h
                      WHERE h.uid = k.uid AND (NOT pair OR h.region = k.region) AND h.cr > after AND h.ev IS NOT NULL
                        AND (NOT current_setting('mp.checks')::boolean OR ((h.a IS NULL OR h.a BETWEEN 0 AND 1) AND h.c IS NOT NULL))
                      ORDER BY h.ev DESC, h.cr DESC NULLS LAST, h.a NULLS LAST, h.b NULLS LAST, h.c NULLS LAST
                      LIMIT 1) l $$;
CREATE TABLE mp_before (region text, uid int, ev timestamptz, cr timestamptz, a float8, b int, c text);
CREATE TABLE mp_inc_results (method text, view text, iso text, first_diff bigint, delta_rows bigint, moved bigint,
                             rows_ok boolean, diff bigint, toasted_online bigint, again bigint, again_diff bigint);
CREATE FUNCTION pg_temp.inc_run(method text, view text, pair boolean, checks boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE tab text; d0 bigint; wm timestamptz; n2 bigint; want bigint; d2 bigint; n3 bigint; d3 bigint; nd bigint; nt bigint;
        kc text := CASE WHEN pair THEN 'region' ELSE 'NULL::text' END; tie timestamptz;
BEGIN
  PERFORM set_config('feature_store.materialize_method', method, true);
  PERFORM set_config('mp.checks', checks::text, true);
  PERFORM set_config('mp.created', 'on', true);
  SELECT format('feature_store.online_%s', view_id) INTO tab FROM fs_views WHERE name = view;
  IF to_regclass(tab) IS NOT NULL THEN EXECUTE format('TRUNCATE %s', tab); END IF;
  DELETE FROM feature_store.watermark w USING fs_views v WHERE v.view_id = w.view_id AND v.name = view;
  PERFORM fs_materialize_incremental(view);
  d0 := pg_temp.diff(tab, pair, format($q$SELECT * FROM pg_temp.oracle(%L, '-infinity', 'infinity', NULL)$q$, pair));
  SELECT w.watermark INTO wm FROM feature_store.watermark w JOIN fs_views v USING (view_id) WHERE v.name = view;
  -- planted: a created time in the future for entities uid % 6 = 3
  EXECUTE format($q$UPDATE %s SET __created_ts = '2099-01-01' WHERE uid %% 6 = 3$q$, tab);
  TRUNCATE mp_before;
  EXECUTE format('INSERT INTO mp_before SELECT %s, uid, __event_ts, __created_ts, a, b, c FROM %s', kc, tab);
  -- the new rows, created after the watermark (and before this run's upper bound)
  INSERT INTO mp_hist
  SELECT o.region, o.uid, o.ev + interval '1 hour', clock_timestamp(), 0.25, 7,
         (SELECT string_agg(md5(o.uid::text || g), '') FROM generate_series(1, 200) g)
  FROM mp_before o WHERE o.uid % 6 = 0 AND o.uid % 4 = 0;
  INSERT INTO mp_hist SELECT o.region, o.uid, o.ev, clock_timestamp(), NULL, NULL, NULL FROM mp_before o WHERE o.uid % 6 = 1 AND o.uid % 4 = 0;
  INSERT INTO mp_hist SELECT o.region, o.uid, o.ev - interval '1 hour', clock_timestamp(), 0.5, 1, 'older' FROM mp_before o WHERE o.uid % 6 = 2;
  INSERT INTO mp_hist SELECT o.region, o.uid, o.ev, clock_timestamp(), 0.5, 1, 'older created' FROM mp_before o WHERE o.uid % 6 = 3;
  tie := clock_timestamp();
  INSERT INTO mp_hist SELECT o.region, o.uid, o.ev + interval '2 hours', tie, 0.5, v.b, v.c
  FROM mp_before o, (VALUES (2, 'y'), (1, 'z'), (1, 'y'), (NULL, 'a')) v(b, c) WHERE o.uid % 6 = 4;
  INSERT INTO mp_hist SELECT o.region, o.uid, o.ev + interval '3 hours', clock_timestamp(), 0.75, 2, 'later' FROM mp_before o WHERE o.uid % 6 = 4 AND o.uid % 4 = 0;
  INSERT INTO mp_hist SELECT 'eu', g, '2026-02-05', clock_timestamp(), 0.5, g, repeat('n', 3000) FROM generate_series(6000, 6011) g;
  SELECT count(*) INTO nd FROM mp_hist WHERE cr > wm;
  SELECT count(*) INTO want FROM pg_temp.oracle_after(pair, wm) o
  WHERE NOT EXISTS (SELECT 1 FROM mp_before p WHERE p.uid = o.uid AND p.region IS NOT DISTINCT FROM o.region
                      AND (p.ev, COALESCE(p.cr, '-infinity')) >= (o.ev, COALESCE(o.cr, '-infinity')));
  n2 := fs_materialize_incremental(view);
  d2 := pg_temp.diff(tab, pair, format($q$SELECT DISTINCT ON (region, uid) region, uid, ev, cr, a, b, c
      FROM (SELECT 0 AS pri, * FROM mp_before UNION ALL SELECT 1, * FROM pg_temp.oracle_after(%L, %L)) u
      ORDER BY region, uid, ev DESC, COALESCE(cr, '-infinity') DESC, pri$q$, pair, wm));
  EXECUTE format('SELECT count(*) FROM %s WHERE length(c) >= 3000', tab) INTO nt;
  -- the same window again (watermark moved back): nothing moves
  UPDATE feature_store.watermark w SET watermark = wm FROM fs_views v WHERE v.view_id = w.view_id AND v.name = view;
  n3 := fs_materialize_incremental(view);
  d3 := pg_temp.diff(tab, pair, format($q$SELECT DISTINCT ON (region, uid) region, uid, ev, cr, a, b, c
      FROM (SELECT 0 AS pri, * FROM mp_before UNION ALL SELECT 1, * FROM pg_temp.oracle_after(%L, %L)) u
      ORDER BY region, uid, ev DESC, COALESCE(cr, '-infinity') DESC, pri$q$, pair, wm));
  INSERT INTO mp_inc_results VALUES (method, view, current_setting('transaction_isolation'), d0, nd, want, n2 = want, d2, nt, n3, d3);
  DELETE FROM mp_hist WHERE cr > wm;
END $$;
SELECT pg_temp.inc_run(m, v, pair, checks)
FROM unnest(ARRAY['auto', 'merge', 'probe', 'sql']) m,
     (VALUES ('mp_inc_nc', true, false), ('mp_inc_u', false, true), ('mp_inc_v', true, true)) x(v, pair, checks);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.inc_run(m, v, pair, checks)
FROM unnest(ARRAY['auto', 'probe']) m,
     (VALUES ('mp_inc_nc', true, false), ('mp_inc_u', false, true), ('mp_inc_v', true, true)) x(v, pair, checks);
COMMIT;
SELECT * FROM mp_inc_results ORDER BY view, iso, method;
-- The cases are not empty: entities of every kind moved or stayed.
SELECT view, bool_and(moved > 50 AND delta_rows > moved AND toasted_online > 0) AS nonempty FROM mp_inc_results GROUP BY view ORDER BY view;
SELECT count(*) AS leftover_delta_rows FROM mp_hist WHERE cr > '2026-03-01';
