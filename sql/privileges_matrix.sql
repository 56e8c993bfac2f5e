-- Privilege matrix. Four roles against one view:
--   regress_pm_owner    owns the source table and registered the entity and the view
--   regress_pm_reader   granted SELECT on the source
--   regress_pm_exec     only EXECUTE on the fs_* functions, no privilege on any data
--   regress_pm_stranger nothing (EXECUTE on the fs_* functions is revoked from PUBLIC here)
-- Every action is tried by every role inside a subtransaction that is always rolled back, so
-- the matrix shows who may do what without one trial changing the next. Every denial must be
-- insufficient_privilege (42501). Then: no fs_* function is SECURITY DEFINER, and objects in a
-- user schema placed before pg_catalog on the search_path (functions, operators, tables named
-- like the ones the extension uses) are never called by any fs_* function.
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS feature_store;
CREATE EXTENSION IF NOT EXISTS pg_cron;

CREATE ROLE regress_pm_owner;
CREATE ROLE regress_pm_reader;
CREATE ROLE regress_pm_exec;
CREATE ROLE regress_pm_stranger;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO regress_pm_owner, regress_pm_reader, regress_pm_exec;
GRANT USAGE ON SCHEMA cron TO regress_pm_owner, regress_pm_reader, regress_pm_exec, regress_pm_stranger;
GRANT CREATE ON SCHEMA public TO regress_pm_owner, regress_pm_reader, regress_pm_exec, regress_pm_stranger;
GRANT CREATE ON DATABASE contrib_regression TO regress_pm_owner;

SET ROLE regress_pm_owner;
CREATE TABLE pm_hist (pm_id bigint, ts timestamptz, score float8, label text);
INSERT INTO pm_hist VALUES (1, '2026-01-01', 0.5, 'a'), (2, '2026-01-02', -1, 'b'), (1, '2026-01-03', 0.7, 'c');
CREATE TABLE pm_spine (pm_id bigint, ts timestamptz);
INSERT INTO pm_spine VALUES (1, '2026-01-05'), (2, '2026-01-05');
GRANT SELECT ON pm_spine TO PUBLIC;
GRANT SELECT ON pm_hist TO regress_pm_reader;
SELECT fs_register_entity('pm_ent', 'pm_id');
SELECT fs_register_view('pm_v', 'pm_hist', 'pm_ent', event_time => 'ts', checks => '{"score": {"min": 0}}');
SELECT fs_register_service('pm_svc', '{pm_v:score}');
SELECT fs_materialize('pm_v', '2025-01-01', '2026-02-01');
RESET ROLE;

-- try(role, q): 'ok: <first value>' or the SQLSTATE and message; always rolled back.
CREATE FUNCTION pg_temp.try(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v text;
BEGIN
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', r);
        EXECUTE q INTO v;
        RAISE EXCEPTION USING ERRCODE = 'P0999', MESSAGE = coalesce(left(v, 40), 'NULL');
    EXCEPTION WHEN SQLSTATE 'P0999' THEN
        RETURN 'ok: ' || SQLERRM;
    WHEN OTHERS THEN
        RETURN SQLSTATE || ' ' || SQLERRM;
    END;
END $$;

CREATE TEMP TABLE actions (n int, action text, q text);
INSERT INTO actions VALUES
 (1, 'register view', $$SELECT fs_register_view('pm_new', 'pm_hist', 'pm_ent', event_time => 'ts')$$),
 (2, 'new version', $$SELECT fs_register_view('pm_v', 'pm_hist', 'pm_ent', event_time => 'ts', ttl => '1 day')$$),
 (3, 'drop view', $$SELECT fs_drop_view('pm_v', cascade => true)$$),
 (4, 'materialize', $$SELECT fs_materialize('pm_v', '2025-01-01', '2026-02-01')$$),
 (5, 'online mode', $$SELECT fs_set_online_mode('pm_v', 'off')$$),
 (6, 'reload', $$SELECT fs_online_reload('pm_v')$$),
 (7, 'schedule', $$SELECT fs_schedule_materialization('pm_v', '0 3 1 1 *') > 0$$),
 (8, 'validate', $$SELECT count(*) FROM fs_validate('pm_v')$$),
 (9, 'pit join', $$SELECT string_agg(score::text, ',') FROM fs_point_in_time_join('pm_spine', '{pm_v:score}', 'ts') AS t(pm_id bigint, ts timestamptz, score float8)$$),
 (10, 'training columns', $$SELECT fs_training_columns('pm_spine', '{pm_v:score}', 'ts')$$),
 (11, 'create training set', $$SELECT fs_create_training_set('pm_ts', 'pm_spine', '{pm_svc}', 'ts')$$),
 (12, 'online (view)', $$SELECT fs_online('pm_ent:1', 'pm_v')$$),
 (13, 'online (all views)', $$SELECT coalesce(fs_online('pm_ent:1')::text, 'NULL')$$),
 (14, 'online (service)', $$SELECT fs_online('pm_ent:1', 'pm_svc')$$),
 (15, 'online vector', $$SELECT fs_online_vector('pm_ent:1', 'pm_svc')$$),
 (16, 'online batch', $$SELECT string_agg(coalesce(features::text, 'NULL'), ',') FROM fs_online_batch('{pm_ent:1,pm_ent:2}', 'pm_v')$$),
 (17, 'online batch (all)', $$SELECT string_agg(coalesce(features::text, 'NULL'), ',') FROM fs_online_batch('{pm_ent:1}')$$),
 (18, 'online detail', $$SELECT string_agg(value::text, ',') FROM fs_online_detail('pm_ent:1', 'pm_v')$$),
 (19, 'quarantine rows', $$SELECT count(*) FROM fs_quarantine WHERE view = 'pm_v'$$),
 (20, 'online table', $$SELECT count(*) FROM feature_store.online_$$ || (SELECT view_id FROM fs_views WHERE name = 'pm_v')),
 (21, 'source table', $$SELECT count(*) FROM pm_hist$$),
 (22, 'quarantine table', $$SELECT count(*) FROM feature_store.quarantine$$),
 (23, 'write registry', $$DELETE FROM feature_store.feature_view$$),
 (24, 'unschedule', $$SELECT fs_unschedule_materialization('pm_v')$$),
 (25, 'drop service', $$SELECT fs_drop_service('pm_svc')$$),
 (26, 'drop entity', $$SELECT fs_drop_view('pm_v', cascade => true) > 0 AND fs_drop_entity('pm_ent') IS NULL$$);
-- The setup's materialization quarantined pm_id 2 (score -1 fails min 0); and a schedule to unschedule.
SET ROLE regress_pm_owner;
SELECT fs_schedule_materialization('pm_v', '0 3 1 1 *') > 0 AS scheduled;
RESET ROLE;
SELECT count(*) AS quarantined FROM feature_store.quarantine;

CREATE TEMP TABLE matrix AS
SELECT a.n, a.action, r.role, pg_temp.try(r.role, a.q) AS result
FROM actions a, (VALUES (1, 'regress_pm_owner'), (2, 'regress_pm_reader'), (3, 'regress_pm_exec'), (4, 'regress_pm_stranger')) r(k, role);
\pset format aligned
SELECT n, action,
       max(result) FILTER (WHERE role = 'regress_pm_owner') AS owner,
       max(result) FILTER (WHERE role = 'regress_pm_reader') AS reader,
       max(result) FILTER (WHERE role = 'regress_pm_exec') AS exec_only,
       max(result) FILTER (WHERE role = 'regress_pm_stranger') AS stranger
FROM (SELECT n, action, role, CASE WHEN result LIKE 'ok:%' THEN left(result, 60) ELSE left(result, 5) END AS result FROM matrix) m
GROUP BY n, action ORDER BY n;
-- The full denial messages, once each.
SELECT DISTINCT regexp_replace(substr(result, 7), 'online_[0-9]+', 'online_<view_id>') AS denial FROM matrix WHERE result NOT LIKE 'ok:%' ORDER BY 1;
-- Every denial is insufficient_privilege; nothing else went wrong.
SELECT count(*) FILTER (WHERE result NOT LIKE 'ok:%') AS denials,
       count(*) FILTER (WHERE result NOT LIKE 'ok:%' AND result NOT LIKE '42501 %') AS other_errors
FROM matrix;

-- No fs_* function is SECURITY DEFINER; a function that pins search_path pins it to pg_catalog.
SELECT count(*) AS security_definer_functions FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'feature_store' WHERE p.prosecdef;
SELECT p.proname, p.proconfig FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'feature_store' WHERE p.proconfig IS NOT NULL ORDER BY 1;

-- search_path hijack: the owner puts a schema of traps before pg_catalog. Every trap raises
-- 'hijacked'; every fs_* call below must succeed without touching one.
SET ROLE regress_pm_owner;
CREATE SCHEMA pm_evil;
CREATE FUNCTION pm_evil.trap() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
CREATE FUNCTION pm_evil.eq8(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT pm_evil.trap()';
CREATE FUNCTION pm_evil.eqt(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT pm_evil.trap()';
CREATE FUNCTION pm_evil.ge_tz(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS 'SELECT pm_evil.trap()';
CREATE FUNCTION pm_evil.le_tz(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS 'SELECT pm_evil.trap()';
CREATE OPERATOR pm_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = pm_evil.eq8);
CREATE OPERATOR pm_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pm_evil.eqt);
CREATE OPERATOR pm_evil.>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = pm_evil.ge_tz);
CREATE OPERATOR pm_evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = pm_evil.le_tz);
CREATE FUNCTION pm_evil.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT CASE WHEN pm_evil.trap() THEN now() END';
CREATE FUNCTION pm_evil.md5(text) RETURNS text LANGUAGE sql AS 'SELECT CASE WHEN pm_evil.trap() THEN $1 END';
CREATE FUNCTION pm_evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS 'SELECT CASE WHEN pm_evil.trap() THEN NULL::jsonb END';



CREATE FUNCTION pm_evil.quote_ident(text) RETURNS text LANGUAGE sql AS 'SELECT CASE WHEN pm_evil.trap() THEN $1 END';
CREATE FUNCTION pm_evil.lower(text) RETURNS text LANGUAGE sql AS 'SELECT CASE WHEN pm_evil.trap() THEN $1 END';
CREATE TABLE pm_evil.entity (name text);
CREATE TABLE pm_evil.feature_view (name text);
CREATE TABLE pm_evil.materialization_run (view_name text);
CREATE TEMP TABLE feature_view (name text);
CREATE TEMP TABLE entity (name text);
SELECT pm_evil.eq8(1, 1);  -- the traps work
SET search_path = pm_evil, pg_catalog, public;
SELECT 1::bigint = 1::bigint;  -- and they are in the way
SELECT fs_register_entity('pm_ent2', 'pm_id');
SELECT fs_register_view('pm_v2', 'pm_hist', 'pm_ent2', event_time => 'ts', checks => '{"score": {"min": 0}, "label": {"allowed": ["a", "c"]}}', ttl => '1000 days');
SELECT fs_materialize('pm_v2', '2025-01-01', '2026-02-01');
SELECT fs_online('pm_ent2:1', 'pm_v2');
SELECT fs_online(fs_entity('pm_ent2', 1));
SELECT fs_register_service('pm_svc2', '{pm_v2:score}');
SELECT fs_online_vector('pm_ent2:1', 'pm_svc2');
SELECT feature, value, status FROM fs_online_detail('pm_ent2:1', 'pm_v2') ORDER BY feature;
SELECT count(*) FROM fs_validate('pm_v2');
SELECT * FROM fs_point_in_time_join('pm_spine', '{pm_v2:score}', 'ts') AS t(pm_id bigint, ts timestamptz, score float8);
SELECT fs_create_training_set('public.pm_hijack_ts', 'pm_spine', '{pm_v2:score,pm_v2:label}', 'ts');
SELECT fs_schedule_materialization('pm_v2', '0 3 1 1 *') > 0 AS scheduled;
SELECT fs_unschedule_materialization('pm_v2');
SELECT fs_set_online_mode('pm_v2', 'off');
SELECT fs_drop_service('pm_svc2');
SELECT fs_drop_view('pm_v2');
SELECT fs_drop_entity('pm_ent2');
RESET search_path;
DROP TABLE pg_temp.feature_view, pg_temp.entity;
DROP TABLE pm_hijack_ts;
DROP SCHEMA pm_evil CASCADE;
SELECT fs_unschedule_materialization('pm_v');
RESET ROLE;
REVOKE CREATE ON DATABASE contrib_regression FROM regress_pm_owner;

DROP EXTENSION feature_store CASCADE;
DROP EXTENSION pg_cron;
DROP TABLE pm_hist, pm_spine;
REVOKE CREATE ON SCHEMA public FROM regress_pm_owner, regress_pm_reader, regress_pm_exec, regress_pm_stranger;
DROP ROLE regress_pm_owner, regress_pm_reader, regress_pm_exec, regress_pm_stranger;
