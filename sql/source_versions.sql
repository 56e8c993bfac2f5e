-- A source that is a view is part of its feature view's definition: when the view's query changes,
-- fs_views flags the registered version (source_changed) and re-registration creates version N+1
-- (never a silent no-op); training-set lineage names the version used. The query is compared with
-- names qualified, so the caller's search_path does not make a change of its own.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';
CREATE SCHEMA sv;
CREATE TABLE sv.purchases (user_id bigint, ts timestamptz, amount numeric);
INSERT INTO sv.purchases
SELECT g % 5, '2026-01-01'::timestamptz + g * interval '1 day', g FROM generate_series(1, 30) g;
CREATE VIEW sv.spend_src AS
SELECT p.user_id, p.ts,
       (SELECT sum(q.amount) FROM sv.purchases q WHERE q.user_id = p.user_id
          AND q.ts > p.ts - interval '7 days' AND q.ts <= p.ts) AS spend
FROM sv.purchases p;
SELECT fs_register_entity('sv_user', 'user_id');
SELECT fs_register_view('sv_spend', 'sv.spend_src', 'sv_user', 'ts', features => '{spend}') AS version;
SELECT fs_register_view('sv_spend', 'sv.spend_src', 'sv_user', 'ts', features => '{spend}') AS same_version;
SELECT version, source_changed FROM fs_views WHERE name = 'sv_spend' ORDER BY version;

-- another search_path qualifies names differently in pg_get_viewdef: not a change
SET search_path = sv, public;
SELECT fs_register_view('sv_spend', 'sv.spend_src', 'sv_user', 'ts', features => '{spend}') AS same_version_other_path;
SELECT version, source_changed FROM fs_views WHERE name = 'sv_spend' ORDER BY version;
RESET search_path;

-- the newcomer's case: 7 days become 14
CREATE OR REPLACE VIEW sv.spend_src AS
SELECT p.user_id, p.ts,
       (SELECT sum(q.amount) FROM sv.purchases q WHERE q.user_id = p.user_id
          AND q.ts > p.ts - interval '14 days' AND q.ts <= p.ts) AS spend
FROM sv.purchases p;
SELECT version, source_changed FROM fs_views WHERE name = 'sv_spend' ORDER BY version;
SELECT fs_register_view('sv_spend', 'sv.spend_src', 'sv_user', 'ts', features => '{spend}') AS new_version;
SELECT fs_register_view('sv_spend', 'sv.spend_src', 'sv_user', 'ts', features => '{spend}') AS same_again;
SELECT version, is_latest, source_changed FROM fs_views WHERE name = 'sv_spend' ORDER BY version;
SELECT version, source_def LIKE '%14 days%' AS records_14_days
FROM feature_store.feature_view WHERE name = 'sv_spend' ORDER BY version;

-- lineage names the version used, and its values are the 14-day ones (brute force)
CREATE TABLE sv.spine AS SELECT 3::bigint AS user_id, '2026-01-29'::timestamptz AS ts;
SELECT fs_create_training_set('sv_ts', 'sv.spine', '{sv_spend:spend}', 'ts');
SELECT features, view_versions FROM fs_training_sets WHERE target = 'public.sv_ts';
-- oracle: the latest row at or before the spine time, its spend over 14 days (and not over 7)
SELECT t.spend = o.d14 AS fourteen_days, o.d14 <> o.d7 AS windows_differ
FROM sv_ts t,
     LATERAL (SELECT (SELECT sum(q.amount) FROM sv.purchases q WHERE q.user_id = p.user_id
                        AND q.ts > p.ts - interval '14 days' AND q.ts <= p.ts) AS d14,
                     (SELECT sum(q.amount) FROM sv.purchases q WHERE q.user_id = p.user_id
                        AND q.ts > p.ts - interval '7 days' AND q.ts <= p.ts) AS d7
              FROM sv.purchases p WHERE p.user_id = t.user_id AND p.ts <= t.ts ORDER BY p.ts DESC LIMIT 1) o;

-- a materialized view source: REFRESH changes data, not the definition
CREATE MATERIALIZED VIEW sv.spend_mat AS SELECT user_id, ts, amount FROM sv.purchases;
SELECT fs_register_view('sv_mat', 'sv.spend_mat', 'sv_user', 'ts', features => '{amount}') AS version;
REFRESH MATERIALIZED VIEW sv.spend_mat;
SELECT fs_register_view('sv_mat', 'sv.spend_mat', 'sv_user', 'ts', features => '{amount}') AS same_after_refresh;
-- a table source has no query: never flagged
SELECT fs_register_view('sv_tab', 'sv.purchases', 'sv_user', 'ts', features => '{amount}') AS version;
SELECT name, version, source_changed FROM fs_views WHERE name IN ('sv_mat', 'sv_tab') ORDER BY name;
-- a dropped source: unknown
DROP VIEW sv.spend_src;
SELECT version, source_changed FROM fs_views WHERE name = 'sv_spend' ORDER BY version;

-- Leave the database as found: the next tests create the extension themselves.
DROP TABLE sv_ts;
DROP SCHEMA sv CASCADE;
DROP EXTENSION feature_store;
