-- Re-registration and dropping corner cases: the online switch of an unchanged definition goes
-- through fs_set_online_mode (online table, stream triggers, cache), fs_drop_service parses
-- versions as strictly as every other reference, and dropping every version of a view needs
-- ownership of each version.
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS feature_store;
\i sql/include/err.sql

CREATE TABLE rr_hist (k int, ev timestamptz, x float8);
INSERT INTO rr_hist VALUES (1, '2026-01-01', 1.5), (2, '2026-01-02', 2.5);
SELECT fs_register_entity('rr_ent', 'k');
SELECT fs_register_view('rr_v', 'rr_hist', 'rr_ent', 'ev');
SELECT fs_set_online_mode('rr_v', 'stream');
SELECT fs_materialize('rr_v', '-infinity', 'infinity');
SELECT fs_online('rr_ent:1', 'rr_v') AS streamed_view_serves;
SELECT count(*) AS stream_triggers FROM pg_trigger WHERE tgrelid = 'rr_hist'::regclass;

-- The same definition with online => false: the view goes offline completely.
SELECT fs_register_view('rr_v', 'rr_hist', 'rr_ent', 'ev', online => false) AS version;
SELECT online_mode FROM fs_views WHERE name = 'rr_v';
SELECT count(*) AS stream_triggers FROM pg_trigger WHERE tgrelid = 'rr_hist'::regclass;
SELECT count(*) AS online_tables FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'feature_store' AND c.relname = 'online_' || (SELECT view_id FROM fs_views WHERE name = 'rr_v');
SELECT state, message FROM pg_temp.err($$SELECT fs_online('rr_ent:1', 'rr_v')$$);
-- an insert is no longer streamed: no run is logged
SELECT count(*) AS runs_before FROM fs_runs WHERE view = 'rr_v' \gset
INSERT INTO rr_hist VALUES (1, '2026-01-03', 9.5);
SELECT count(*) - :runs_before AS new_runs FROM fs_runs WHERE view = 'rr_v';

-- online => true again: batch mode, refilled with the latest rows as fs_set_online_mode does.
SELECT fs_register_view('rr_v', 'rr_hist', 'rr_ent', 'ev', online => true) AS version;
SELECT online_mode FROM fs_views WHERE name = 'rr_v';
SELECT fs_online('rr_ent:1', 'rr_v') AS before_run;
SELECT fs_materialize('rr_v', '-infinity', 'infinity');
SELECT count(*) AS mismatches FROM (SELECT DISTINCT ON (k) k, x FROM rr_hist ORDER BY k, ev DESC) h
WHERE (fs_online(fs_entity('rr_ent', h.k), 'rr_v')->'rr_v'->>'x')::float8 IS DISTINCT FROM h.x;

-- A malformed key is an error even before the view has an online table.
SELECT fs_register_view('rr_nv', 'rr_hist', 'rr_ent', 'ev');
SELECT count(*) AS online_tables FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'feature_store' AND c.relname = 'online_' || (SELECT view_id FROM fs_views WHERE name = 'rr_nv');
SELECT * FROM pg_temp.err($$SELECT fs_online('rr_ent:(1,2)', 'rr_nv')$$);
SELECT * FROM pg_temp.err($$SELECT fs_online('rr_ent:abc', 'rr_nv')$$);
SELECT fs_online('rr_ent:1', 'rr_nv') AS well_formed_key;
SELECT fs_drop_view('rr_nv');

-- fs_drop_service: versions are positive int32 literals, as in every other reference.
SELECT fs_register_service('rr_svc', '{rr_v:x}');
SELECT * FROM pg_temp.err($$SELECT fs_drop_service('rr_svc@4294967297')$$);
SELECT * FROM pg_temp.err($$SELECT fs_drop_service('rr_svc@ +1')$$);
SELECT * FROM pg_temp.err($$SELECT fs_drop_service('rr_svc@0')$$);
SELECT * FROM pg_temp.err($$SELECT fs_drop_service('rr_svc@2')$$);
SELECT name, version FROM fs_services WHERE name = 'rr_svc';
SELECT fs_drop_service('rr_svc@1');

-- Dropping every version needs ownership of each: a role that was a member of the owner when it
-- registered version 2 and no longer is may not drop version 1.
CREATE ROLE regress_rr_a;
CREATE ROLE regress_rr_b;
GRANT regress_rr_a TO regress_rr_b;
GRANT SELECT ON rr_hist TO regress_rr_a, regress_rr_b;
GRANT CREATE ON SCHEMA public TO regress_rr_a;
SET ROLE regress_rr_a;
SELECT fs_register_view('rr_w', 'rr_hist', 'rr_ent', 'ev', online => false);
RESET ROLE;
SET ROLE regress_rr_b;
SELECT fs_register_view('rr_w', 'rr_hist', 'rr_ent', 'ev', features => '{x}', ttl => '1 day', online => false);
RESET ROLE;
REVOKE regress_rr_a FROM regress_rr_b;
SET ROLE regress_rr_b;
SELECT state, message FROM pg_temp.err($$SELECT fs_drop_view('rr_w')$$);
SELECT fs_drop_view('rr_w@2');
RESET ROLE;
SELECT version, registered_by FROM fs_views WHERE name = 'rr_w';

SELECT fs_drop_view('rr_w');
SELECT fs_drop_view('rr_v');
SELECT fs_drop_entity('rr_ent');
DROP TABLE rr_hist;
REVOKE CREATE ON SCHEMA public FROM regress_rr_a;
DROP ROLE regress_rr_a, regress_rr_b;
