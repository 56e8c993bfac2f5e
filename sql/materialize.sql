-- Materialization: fs_materialize with checks, quarantine and run log against a brute-force
-- oracle; idempotency; never backwards; fs_materialize_incremental and its watermark
-- (late rows, boundaries, lag, failure keeps the watermark); errors and privileges.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- Random history (fixed seed): 200 users, events on a minute grid (ties on event time), created
-- times with NULLs, NULL keys, NULL event times; x must be NOT NULL and in [0, 1].
CREATE TABLE mat_hist (uid int, ev timestamptz, cr timestamptz, x float8, y int);
SELECT setseed(0.42);
INSERT INTO mat_hist
SELECT CASE WHEN random() < 0.01 THEN NULL ELSE (random() * 200)::int END,
       CASE WHEN random() < 0.01 THEN NULL ELSE '2026-01-01'::timestamptz + (random() * 10000)::int * interval '1 minute' END,
       CASE WHEN random() < 0.1 THEN NULL ELSE '2026-03-01'::timestamptz + (random() * 1e6)::int * interval '1 second' END,
       CASE WHEN random() < 0.05 THEN NULL ELSE random() * 1.2 - 0.1 END,
       g
FROM generate_series(1, 5000) g;
-- An exact tie on (event, created): the smallest features in order win (x, then y, NULLs last).
INSERT INTO mat_hist VALUES (999, '2026-01-04 12:00', NULL, 0.5, 1), (999, '2026-01-04 12:00', NULL, 0.3, NULL),
                            (999, '2026-01-04 12:00', NULL, 0.3, 2);
SELECT fs_register_entity('mat_user', 'uid');
SELECT fs_register_view('mat_v', 'mat_hist', 'mat_user', 'ev', 'cr', ttl => '3 days',
                        checks => '{"x": {"not_null": true, "min": 0, "max": 1}}');
SELECT format('feature_store.online_%s', view_id) AS mat_online FROM fs_views WHERE name = 'mat_v' \gset

-- The oracle: per entity with history in [s, e], the latest passing row (docs/semantics.md rules at e, TTL
-- included), ties broken by the features in order (as the point-in-time join), one LATERAL ... LIMIT 1 per entity.
CREATE FUNCTION pg_temp.oracle(s timestamptz, e timestamptz)
RETURNS TABLE (uid int, ev timestamptz, cr timestamptz, x float8, y int) LANGUAGE sql AS $$
  SELECT k.uid, l.ev, l.cr, l.x, l.y
  FROM (SELECT DISTINCT h.uid FROM mat_hist h WHERE h.uid IS NOT NULL) k
  CROSS JOIN LATERAL (SELECT h.ev, h.cr, h.x, h.y FROM mat_hist h
                      WHERE h.uid = k.uid AND h.ev BETWEEN s AND e AND h.ev >= e - interval '3 days'
                        AND h.x IS NOT NULL AND h.x BETWEEN 0 AND 1
                      ORDER BY h.ev DESC, h.cr DESC NULLS LAST, h.x, h.y LIMIT 1) l $$;
-- Rows in the online table and not expected, plus expected rows not online.
CREATE FUNCTION pg_temp.diff(tab regclass, expected text, cols text DEFAULT 'uid, __event_ts, __created_ts, x, y')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((SELECT %s FROM %s EXCEPT ALL (%s))
                  UNION ALL ((%s) EXCEPT ALL SELECT %s FROM %s)) d',
                 cols, tab, expected, expected, cols, tab) INTO n;
  RETURN n;
END $$;

-- Batch run: rows written = the oracle's rows; the online table equals the oracle.
SELECT fs_materialize('mat_v', '2026-01-03', '2026-01-05') = (SELECT count(*) FROM pg_temp.oracle('2026-01-03', '2026-01-05')) AS rows_match;
SELECT pg_temp.diff(:'mat_online', $$SELECT * FROM pg_temp.oracle('2026-01-03', '2026-01-05')$$) AS differences;
SELECT x, y FROM :mat_online WHERE uid = 999;
-- Failing rows of the window are quarantined in the same run (and counted in its log).
SELECT (SELECT count(*) FROM fs_quarantine WHERE view = 'mat_v') AS quarantined,
       (SELECT count(*) FROM mat_hist WHERE ev BETWEEN '2026-01-03' AND '2026-01-05'
          AND (x IS NULL OR x < 0 OR x > 1)) AS oracle_failing;
SELECT kind, outcome, window_start, window_end, rows_written = (SELECT count(*) FROM pg_temp.oracle('2026-01-03', '2026-01-05')) AS rows_ok,
       rows_quarantined = (SELECT count(*) FROM fs_quarantine WHERE view = 'mat_v') AS quarantined_ok
FROM fs_runs WHERE view = 'mat_v' ORDER BY run_id;
-- Entity whose latest row fails: its latest passing row is served.
SELECT count(*) > 0 AS some_entities_serve_an_older_passing_row
FROM (SELECT DISTINCT ON (uid) uid, ev, x FROM mat_hist WHERE uid IS NOT NULL AND ev BETWEEN '2026-01-03' AND '2026-01-05'
      ORDER BY uid, ev DESC, cr DESC NULLS LAST) latest
JOIN :mat_online o USING (uid) WHERE (latest.x IS NULL OR latest.x > 1 OR latest.x < 0);

-- Idempotent: a second run writes nothing and quarantines nothing new.
SELECT fs_materialize('mat_v', '2026-01-03', '2026-01-05') AS second_run;
SELECT pg_temp.diff(:'mat_online', $$SELECT * FROM pg_temp.oracle('2026-01-03', '2026-01-05')$$) AS differences,
       (SELECT rows_quarantined FROM fs_runs WHERE view = 'mat_v' ORDER BY run_id DESC LIMIT 1) AS newly_quarantined;

-- Never backwards: an older window changes nothing; a later window moves entities forward.
SELECT fs_materialize('mat_v', '2026-01-01', '2026-01-02') AS older_window;
SELECT pg_temp.diff(:'mat_online', $$SELECT * FROM pg_temp.oracle('2026-01-03', '2026-01-05')$$) AS differences;
SELECT fs_materialize('mat_v', '2026-01-04', '2026-01-07') > 0 AS later_window;
SELECT pg_temp.diff(:'mat_online', $$SELECT DISTINCT ON (uid) * FROM (SELECT * FROM pg_temp.oracle('2026-01-03', '2026-01-05')
                                      UNION ALL SELECT * FROM pg_temp.oracle('2026-01-04', '2026-01-07')) u
                                    ORDER BY uid, ev DESC, cr DESC NULLS LAST$$) AS differences;

-- Incremental runs follow created time: a view without TTL over its own table.
CREATE TABLE inc_hist (uid int, ev timestamptz, cr timestamptz DEFAULT clock_timestamp(), x float8);
SELECT fs_register_view('inc_v', 'inc_hist', 'mat_user', 'ev', 'cr', checks => '{"x": {"min": 0}}');
SELECT format('feature_store.online_%s', view_id) AS inc_online FROM fs_views WHERE name = 'inc_v' \gset
CREATE FUNCTION pg_temp.inc_oracle() RETURNS TABLE (uid int, ev timestamptz, cr timestamptz, x float8) LANGUAGE sql AS $$
  SELECT DISTINCT ON (uid) uid, ev, cr, x FROM inc_hist
  WHERE uid IS NOT NULL AND ev IS NOT NULL AND (x IS NULL OR x >= 0)
    AND cr <= (SELECT watermark FROM feature_store.watermark w JOIN fs_views v USING (view_id) WHERE v.name = 'inc_v')
  ORDER BY uid, ev DESC, cr DESC NULLS LAST, x $$;
\set inc_cols 'uid, __event_ts, __created_ts, x'
\set inc_expected 'SELECT * FROM pg_temp.inc_oracle()'
SELECT view, version, online_mode, watermark FROM fs_stat_views WHERE view = 'inc_v';
INSERT INTO inc_hist (uid, ev, cr, x)
SELECT g % 50, '2026-01-01'::timestamptz + g * interval '1 minute', now() - interval '1 day' + g * interval '1 second',
       CASE WHEN g % 17 = 0 THEN -1 ELSE g END
FROM generate_series(1, 1000) g;
INSERT INTO inc_hist (uid, ev, cr, x) VALUES (NULL, '2026-01-01', now() - interval '1 hour', 1), (1, NULL, now() - interval '1 hour', 1);
SELECT fs_materialize_incremental('inc_v') AS first_run;
SELECT pg_temp.diff(:'inc_online', :'inc_expected', :'inc_cols') AS differences,
       (SELECT count(*) FROM :inc_online) AS online_rows,
       (SELECT watermark BETWEEN now() - interval '1 minute' AND now() FROM fs_stat_views WHERE view = 'inc_v') AS watermark_near_now;
SELECT count(*) AS quarantined FROM fs_quarantine WHERE view = 'inc_v';
-- Nothing new: nothing written, quarantine unchanged.
SELECT fs_materialize_incremental('inc_v') AS again;
SELECT watermark AS wm1 FROM feature_store.watermark JOIN fs_views v USING (view_id) WHERE v.name = 'inc_v' \gset
-- Late rows (created now, old event times): an older event never overwrites a newer one online;
-- a newer event is picked up although its event time is long past. A row created exactly at the
-- watermark was counted by the run that set it (the window is (watermark, upper]) and is not read
-- again; one a microsecond later is.
INSERT INTO inc_hist (uid, ev, x) VALUES (1, '2025-06-01', 100), (2, '2027-01-01', 200);
INSERT INTO inc_hist (uid, ev, cr, x) VALUES (3, '2027-01-01', :'wm1', 300), (4, '2027-01-01', :'wm1'::timestamptz + interval '1 microsecond', 400);
-- A row created in the future is left for a later run.
INSERT INTO inc_hist (uid, ev, cr, x) VALUES (5, '2027-01-01', now() + interval '1 hour', 500);
SELECT fs_materialize_incremental('inc_v') AS late_run;
SELECT uid, x FROM :inc_online WHERE uid IN (1, 2, 3, 4, 5) ORDER BY uid;
SELECT window_start = :'wm1' AS window_starts_at_previous_watermark, kind, outcome, rows_written
FROM fs_runs WHERE view = 'inc_v' ORDER BY run_id DESC LIMIT 1;
-- The oracle of "everything created up to the watermark" differs only by the row at the old watermark.
SELECT pg_temp.diff(:'inc_online', :'inc_expected', :'inc_cols') AS differences_incl_skipped_boundary_row;
-- feature_store.watermark_lag holds the window back; a window ending before the watermark is empty.
SET feature_store.watermark_lag = '2h';
SELECT watermark AS wm2 FROM feature_store.watermark JOIN fs_views v USING (view_id) WHERE v.name = 'inc_v' \gset
SELECT fs_materialize_incremental('inc_v') AS lagged_run,
       (SELECT watermark = :'wm2' FROM feature_store.watermark JOIN fs_views v USING (view_id) WHERE v.name = 'inc_v') AS watermark_kept;
RESET feature_store.watermark_lag;
-- A failing run keeps the watermark (and its writes roll back); the failure is logged.
INSERT INTO inc_hist (uid, ev, x) VALUES (6, '2027-01-01', 600);
ALTER TABLE inc_hist ALTER COLUMN x TYPE numeric;
SELECT pg_temp.err($$SELECT fs_materialize_incremental('inc_v')$$);
SELECT (SELECT watermark = :'wm2' FROM feature_store.watermark JOIN fs_views v USING (view_id) WHERE v.name = 'inc_v') AS watermark_kept,
       (SELECT count(*) FROM :inc_online WHERE uid = 6) AS uid6_online;
SELECT kind, outcome, sqlstate FROM fs_runs WHERE view = 'inc_v' ORDER BY run_id DESC LIMIT 1;
ALTER TABLE inc_hist ALTER COLUMN x TYPE float8;
SELECT fs_materialize_incremental('inc_v') >= 1 AS recovered,
       (SELECT x FROM :inc_online WHERE uid = 6) AS uid6;

-- Without a created-time column the watermark follows event time: a late row with an old event
-- time is not picked up (documented), a newer one is.
CREATE TABLE inc_ev (uid int, ev timestamptz, x float8);
SELECT fs_register_view('inc_ev', 'inc_ev', 'mat_user', 'ev');
SELECT format('feature_store.online_%s', view_id) AS ev_online FROM fs_views WHERE name = 'inc_ev' \gset
INSERT INTO inc_ev VALUES (1, now() - interval '1 hour', 1), (1, now() - interval '2 hours', 2), (2, now() - interval '1 day', 3);
SELECT fs_materialize_incremental('inc_ev') AS ev_run;
INSERT INTO inc_ev VALUES (2, clock_timestamp(), 33), (3, now() - interval '3 hours', 4);
SELECT fs_materialize_incremental('inc_ev') AS ev_run2;
SELECT uid, x FROM :ev_online ORDER BY uid;

-- Errors.
SELECT pg_temp.err($$SELECT fs_materialize_incremental(NULL)$$);
SELECT pg_temp.err($$SELECT fs_materialize_incremental('no_such_view')$$);
SELECT pg_temp.err($$SELECT fs_materialize('mat_v', '2026-01-05', '2026-01-03')$$);
SELECT pg_temp.err($$SELECT fs_materialize('mat_v', NULL, '2026-01-03')$$);
SELECT pg_temp.err($$SELECT fs_set_online_mode('mat_v', 'sometimes')$$);
CREATE VIEW mat_hist_view AS SELECT * FROM mat_hist;
SELECT fs_register_view('mat_over_view', 'mat_hist_view', 'mat_user', 'ev', features => ARRAY['x']);
SELECT pg_temp.err($$SELECT fs_set_online_mode('mat_over_view', 'stream')$$);
SELECT fs_set_online_mode('mat_over_view', 'off');
SELECT pg_temp.err($$SELECT fs_materialize_incremental('mat_over_view')$$);
SELECT pg_temp.err($$SELECT fs_materialize('mat_over_view', '2026-01-01', '2026-01-02')$$);

-- Privileges: materializing a window needs SELECT on the source; incremental runs and mode
-- switches also need ownership of the view; streaming also needs TRIGGER on the source.
CREATE ROLE mat_bob;
SET ROLE mat_bob;
SELECT pg_temp.err($$SELECT fs_materialize('mat_v', '2026-01-03', '2026-01-05')$$);
SELECT pg_temp.err($$SELECT fs_materialize_incremental('inc_v')$$);
RESET ROLE;
GRANT SELECT ON mat_hist, inc_hist TO mat_bob;
SET ROLE mat_bob;
SELECT pg_temp.err($$SELECT fs_materialize('mat_v', '2026-01-03', '2026-01-05')$$);
SELECT pg_temp.err($$SELECT fs_materialize_incremental('inc_v')$$);
SELECT pg_temp.err($$SELECT fs_set_online_mode('inc_v', 'stream')$$);
RESET ROLE;
CREATE TABLE bob_hist (uid int, ev timestamptz, x float8);
GRANT SELECT ON bob_hist TO mat_bob;
SET ROLE mat_bob;
SELECT fs_register_view('bob_v', 'bob_hist', 'mat_user', 'ev');
SELECT pg_temp.err($$SELECT fs_set_online_mode('bob_v', 'stream')$$);
SELECT pg_temp.err($$SELECT fs_materialize_incremental('bob_v')$$);
-- fs_stat_views: readable by everyone; counts only for views whose source the role may read.
SELECT view, online_mode, rows_online IS NOT NULL AS counts_visible
FROM fs_stat_views WHERE view IN ('mat_v', 'bob_v', 'mat_over_view') ORDER BY view;
RESET ROLE;
REVOKE SELECT ON mat_hist FROM mat_bob;
SET ROLE mat_bob;
SELECT view, rows_online, rows_quarantined FROM fs_stat_views WHERE view = 'mat_v';
RESET ROLE;
SELECT view, version, online_mode, rows_online = (SELECT count(*) FROM :mat_online) AS rows_ok,
       rows_quarantined = (SELECT count(*) FROM fs_quarantine WHERE view = 'mat_v') AS quarantined_ok,
       freshness = now() - (SELECT max(__event_ts) FROM :mat_online) AS freshness_ok,
       last_outcome, last_kind, last_success_at IS NOT NULL AS has_success, watermark
FROM fs_stat_views WHERE view = 'mat_v';
SELECT view, watermark IS NOT NULL AS has_watermark, last_kind, last_outcome FROM fs_stat_views WHERE view LIKE 'inc%' ORDER BY view;
DROP OWNED BY mat_bob;
DROP ROLE mat_bob;

-- Leave the database as found.
DROP EXTENSION feature_store CASCADE;
DROP TABLE mat_hist, inc_hist, inc_ev, bob_hist CASCADE;
