-- Streaming: statement triggers with transition tables write committed inserts and updates of
-- the source into the online store (one set-based write per statement), compared with a
-- brute-force oracle and with fs_online; aborted inserts never appear; mode switches;
-- partitioned sources; checks and quarantine; never backwards.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

CREATE TABLE st_hist (uid int, ev timestamptz, cr timestamptz, x float8);
SELECT fs_register_entity('st_user', 'uid');
SELECT fs_register_view('st_v', 'st_hist', 'st_user', 'ev', 'cr', checks => '{"x": {"max": 1000000}}');
SELECT format('feature_store.online_%s', view_id) AS st_online FROM fs_views WHERE name = 'st_v' \gset
-- The oracle: latest passing row per entity over the whole history.
CREATE VIEW st_oracle AS
SELECT DISTINCT ON (uid) uid, ev, cr, x FROM st_hist
WHERE uid IS NOT NULL AND ev IS NOT NULL AND (x IS NULL OR x <= 1000000)
ORDER BY uid, ev DESC, cr DESC NULLS LAST, x;
CREATE FUNCTION pg_temp.st_diff(tab regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((SELECT uid, __event_ts, __created_ts, x FROM %s EXCEPT ALL SELECT * FROM st_oracle)
                  UNION ALL (SELECT * FROM st_oracle EXCEPT ALL SELECT uid, __event_ts, __created_ts, x FROM %s)) d', tab, tab) INTO n;
  RETURN n;
END $$;

-- History before streaming starts is caught up when the view switches to 'stream'.
INSERT INTO st_hist VALUES (1, '2026-01-01', '2026-01-01', 1), (2, '2026-01-01', NULL, 2);
SELECT fs_set_online_mode('st_v', 'stream');
SELECT regexp_replace(tgname, '[0-9]+', 'N') AS tgname FROM pg_trigger WHERE tgrelid = 'st_hist'::regclass ORDER BY tgname;
SELECT pg_temp.st_diff(:'st_online') AS differences, (SELECT count(*) FROM :st_online) AS online_rows;

-- One 100,000-row INSERT: one statement, one set-based write, one 'stream' run.
INSERT INTO st_hist
SELECT g % 20000, '2026-01-01'::timestamptz + (g % 977) * interval '1 minute',
       CASE WHEN g % 11 = 0 THEN NULL ELSE '2026-02-01'::timestamptz + g * interval '1 second' END,
       CASE WHEN g % 1001 = 0 THEN 2e6 ELSE g END
FROM generate_series(1, 100000) g;
SELECT pg_temp.st_diff(:'st_online') AS differences, (SELECT count(*) FROM :st_online) AS online_rows;
SELECT kind, outcome, rows_written, rows_quarantined FROM fs_runs WHERE view = 'st_v' ORDER BY run_id;
SELECT count(*) AS quarantined, count(*) = (SELECT count(*) FROM st_hist WHERE x > 1000000) AS all_failing FROM fs_quarantine WHERE view = 'st_v';
-- fs_online serves the streamed values (sample of entities, compared with the oracle).
SELECT count(*) AS mismatches
FROM st_oracle o
WHERE o.uid % 997 = 0
  AND fs_online(fs_entity('st_user', o.uid), 'st_v') IS DISTINCT FROM jsonb_build_object('st_v', jsonb_build_object('x', o.x));

-- An aborted insert never appears online, neither in the table nor through fs_online.
BEGIN;
INSERT INTO st_hist VALUES (1, '2030-01-01', '2030-01-01', 999), (500000, '2030-01-01', NULL, 7);
SELECT fs_online(fs_entity('st_user', 500000), 'st_v') AS own_write_visible_in_xact;
ROLLBACK;
SELECT fs_online(fs_entity('st_user', 1), 'st_v') AS uid1, fs_online(fs_entity('st_user', 500000), 'st_v') AS uid500000,
       (SELECT count(*) FROM :st_online WHERE uid = 500000) AS in_table;
-- A rolled back savepoint too.
BEGIN;
INSERT INTO st_hist VALUES (3, '2030-01-01', NULL, 3);
SAVEPOINT s;
INSERT INTO st_hist VALUES (4, '2030-01-01', NULL, 4);
ROLLBACK TO s;
COMMIT;
SELECT uid, x FROM :st_online WHERE uid IN (3, 4) ORDER BY uid;

-- Never backwards: an older row does not replace a newer one; a newer one does.
INSERT INTO st_hist VALUES (3, '2020-01-01', NULL, -3), (5, '2031-01-01', NULL, 55);
SELECT uid, x FROM :st_online WHERE uid IN (3, 5) ORDER BY uid;
-- Updates stream too (the new row versions).
UPDATE st_hist SET ev = '2032-01-01', x = 66 WHERE uid = 6 AND x = (SELECT max(x) FROM st_hist WHERE uid = 6);
SELECT pg_temp.st_diff(:'st_online') AS differences;
-- A failing row is quarantined and not served; the entity keeps its latest passing row.
INSERT INTO st_hist VALUES (5, '2033-01-01', NULL, 5e6);
SELECT uid, x FROM :st_online WHERE uid = 5;
SELECT count(*) AS quarantined_uid5 FROM fs_quarantine WHERE view = 'st_v' AND entity = '{"uid": 5}';
-- Several statements in one transaction: all visible after COMMIT.
BEGIN;
INSERT INTO st_hist VALUES (7, '2034-01-01', NULL, 77);
INSERT INTO st_hist VALUES (8, '2034-01-01', NULL, 88);
COMMIT;
SELECT pg_temp.st_diff(:'st_online') AS differences;

-- 'off' drops the triggers, the online table and frees the cache; writes no longer stream.
SELECT fs_set_online_mode('st_v', 'off');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'st_hist'::regclass;
SELECT to_regclass(:'st_online') AS online_table;
INSERT INTO st_hist VALUES (9, '2035-01-01', NULL, 99);
SELECT pg_temp.err($$SELECT fs_online(fs_entity('st_user', 9), 'st_v')$$) AS not_served_when_off;
-- back to 'batch' refills from the whole history; 'stream' again installs the triggers.
SELECT fs_set_online_mode('st_v', 'batch');
SELECT pg_temp.st_diff(:'st_online') AS differences;
SELECT fs_set_online_mode('st_v', 'stream');
INSERT INTO st_hist VALUES (10, '2036-01-01', NULL, 1010);
SELECT pg_temp.st_diff(:'st_online') AS differences, fs_online(fs_entity('st_user', 10), 'st_v') AS uid10;
-- stream -> batch removes the triggers but keeps the online table.
SELECT fs_set_online_mode('st_v', 'batch');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'st_hist'::regclass;
INSERT INTO st_hist VALUES (11, '2036-01-01', NULL, 11);
SELECT count(*) AS uid11_online FROM :st_online WHERE uid = 11;
SELECT view, online_mode, rows_online, rows_quarantined, last_kind FROM fs_stat_views WHERE view = 'st_v';

-- Partitioned source: the statement trigger on the parent sees rows routed to every partition.
CREATE TABLE st_part (uid int, ev timestamptz, x float8) PARTITION BY RANGE (ev);
CREATE TABLE st_part_a PARTITION OF st_part FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE st_part_b PARTITION OF st_part FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
SELECT fs_register_view('st_part', 'st_part', 'st_user', 'ev');
SELECT fs_set_online_mode('st_part', 'stream');
INSERT INTO st_part SELECT g % 100, '2026-01-01'::timestamptz + g * interval '10 minutes', g FROM generate_series(1, 8000) g;
INSERT INTO st_part_a VALUES (1000, '2026-01-05', 1);  -- straight into a partition: no parent trigger
SELECT format('feature_store.online_%s', view_id) AS part_online FROM fs_views WHERE name = 'st_part' \gset
SELECT count(*) AS differences FROM (
  (SELECT uid, __event_ts, x FROM :part_online
   EXCEPT (SELECT DISTINCT ON (uid) uid, ev, x FROM st_part WHERE uid <> 1000 ORDER BY uid, ev DESC))
  UNION ALL
  ((SELECT DISTINCT ON (uid) uid, ev, x FROM st_part WHERE uid <> 1000 ORDER BY uid, ev DESC)
   EXCEPT SELECT uid, __event_ts, x FROM :part_online)) d;
SELECT (SELECT count(*) FROM :part_online) AS online_rows, (SELECT count(*) FROM :part_online WHERE uid = 1000) AS direct_partition_write_online;

-- Dropping a streaming view removes its triggers; the source stays writable.
SELECT fs_drop_view('st_part');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'st_part'::regclass AND tgname LIKE 'fs_stream%';
INSERT INTO st_part VALUES (1, '2026-01-02', 1);
SELECT count(*) AS stream_runs FROM fs_runs WHERE kind = 'stream' AND view = 'st_v';

-- Leave the database as found.
DROP EXTENSION feature_store CASCADE;
DROP TABLE st_hist, st_part CASCADE;
