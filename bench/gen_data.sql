-- The standard benchmark workload (docs/benchmarks.md), deterministic (hash-based, no random()):
--   psql -v users=100000 -v spine_rows=100000 -f bench/gen_data.sql      (SMALL)
--   psql -v users=1000000 -v spine_rows=1000000 -f bench/gen_data.sql    (LARGE)
-- user_stats_history: 10 rows per user over the 90 days ending 2026-01-01 00:00 UTC, stored in
-- event-time order (as an append-only history is); every 10th user's last row repeats the event
-- time of its previous row with a later created time (a correction). spine: ~5% users without
-- history, ~5% times before any history. Also creates the (user_id, event_ts DESC, created_ts DESC)
-- index the SQL baselines use, and registers nothing (benchmarks register their own views).
\set ON_ERROR_STOP 1
SET work_mem = '1GB';
SET maintenance_work_mem = '1GB';
SET synchronous_commit = off;
DROP TABLE IF EXISTS user_stats_history, spine;

CREATE TABLE user_stats_history (
    user_id    bigint,
    event_ts   timestamptz,
    created_ts timestamptz,
    f_float1   float8,
    f_float2   float8,
    f_int1     bigint,
    f_text1    text
);
INSERT INTO user_stats_history
SELECT u, ev, ev + make_interval(secs => (abs(hashint8extended(u * 16 + k, 3)) % 600) + CASE WHEN dup THEN 3600 ELSE 0 END),
       (abs(hashint8extended(u * 16 + k, 4)) % 1000000) / 1000000.0,
       (abs(hashint8extended(u * 16 + k, 5)) % 1000) / 10.0,
       abs(hashint8extended(u * 16 + k, 6)) % 10000,
       'cat_' || (abs(hashint8extended(u * 16 + k, 7)) % 100)
FROM (SELECT u, k, dup,
             to_timestamp(1767225600 - abs(hashint8extended(u * 16 + CASE WHEN dup THEN k - 1 ELSE k END, 1)) % 7776000) AS ev
      FROM generate_series(1, :users) u, generate_series(1, 10) k,
           LATERAL (SELECT k = 10 AND u % 10 = 0 AS dup) d) g
ORDER BY ev;

CREATE TABLE spine (
    row_id  bigint,
    user_id bigint,
    ts      timestamptz
);
INSERT INTO spine
SELECT r, 1 + abs(hashint8extended(r, 11)) % (:users * 20 / 19),
       CASE WHEN abs(hashint8extended(r, 12)) % 20 = 0
            THEN to_timestamp(1767225600 - 7776000 - 1 - abs(hashint8extended(r, 13)) % 864000)
            ELSE to_timestamp(1767225600 - abs(hashint8extended(r, 13)) % 7776000) END
FROM generate_series(1, :spine_rows) r;

CREATE INDEX user_stats_history_user_ts ON user_stats_history (user_id, event_ts DESC, created_ts DESC);
VACUUM (FREEZE, ANALYZE) user_stats_history, spine;
SELECT (SELECT count(*) FROM user_stats_history) AS history_rows,
       (SELECT count(DISTINCT user_id) FROM user_stats_history) AS users_with_history,
       (SELECT count(*) FROM spine) AS spine_rows,
       (SELECT count(*) FROM spine s WHERE NOT EXISTS (SELECT 1 FROM user_stats_history h WHERE h.user_id = s.user_id)) AS spine_users_without_history,
       (SELECT count(*) FROM spine WHERE ts < '2026-01-01'::timestamptz - interval '90 days') AS spine_before_history;
