-- Row-level security on a source, decided as Postgres would: a role that policies filter must
-- not read unfiltered data. Training sets apply the policies (the join reads the source through
-- the executor as the caller); the online store, materialization, validation and quarantine
-- hold every entity's rows, so they are denied (42501) to roles that RLS applies to, and stay
-- open to the source's owner (without FORCE), BYPASSRLS roles and superusers.
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS feature_store;
\i sql/include/err.sql

CREATE ROLE regress_rls_owner;
CREATE ROLE regress_rls_alice;
CREATE ROLE regress_rls_bypass BYPASSRLS;
GRANT CREATE ON SCHEMA public TO regress_rls_owner;
SET ROLE regress_rls_owner;
CREATE TABLE rls_hist (acct text, ts timestamptz, owner_role name, balance float8);
INSERT INTO rls_hist VALUES
  ('a1', '2026-01-01', 'regress_rls_alice', 10), ('a1', '2026-01-03', 'regress_rls_alice', 11),
  ('b1', '2026-01-02', 'regress_rls_owner', 99), ('a2', '2026-01-02', 'regress_rls_alice', -5);
CREATE TABLE rls_spine (acct text, ts timestamptz);
INSERT INTO rls_spine VALUES ('a1', '2026-01-05'), ('b1', '2026-01-05'), ('a2', '2026-01-05');
GRANT SELECT ON rls_hist, rls_spine TO regress_rls_alice, regress_rls_bypass;
ALTER TABLE rls_hist ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON rls_hist FOR SELECT USING (owner_role = current_user);
SELECT fs_register_entity('rls_acct', 'acct');
SELECT fs_register_view('rls_v', 'rls_hist', 'rls_acct', event_time => 'ts', features => '{balance}',
                        checks => '{"balance": {"min": 0}}');
-- The table's owner is not subject to its own policies (no FORCE): every row is materialized.
SELECT fs_materialize('rls_v', '-infinity', 'infinity');
SELECT fs_online('rls_acct:a1') AS a1, fs_online('rls_acct:b1') AS b1;
SELECT count(*) AS quarantined_seen_by_owner FROM fs_quarantine WHERE view = 'rls_v';
RESET ROLE;

-- Alice: the policy shows her only her rows.
SET ROLE regress_rls_alice;
SELECT acct, ts, balance FROM rls_hist ORDER BY acct, ts;
-- Training applies the policy: equal to the brute-force join Alice herself can write.
SELECT * FROM fs_point_in_time_join('rls_spine', '{rls_v:balance}', spine_time => 'ts')
  AS t(acct text, ts timestamptz, balance float8) ORDER BY acct;
SELECT count(*) AS mismatches FROM (
  (SELECT * FROM fs_point_in_time_join('rls_spine', '{rls_v:balance}', spine_time => 'ts') AS t(acct text, ts timestamptz, balance float8)
   EXCEPT
   SELECT s.acct, s.ts, h.balance FROM rls_spine s LEFT JOIN LATERAL (
     SELECT balance FROM rls_hist h WHERE h.acct = s.acct AND h.ts <= s.ts ORDER BY h.ts DESC LIMIT 1) h ON true)
  UNION ALL
  (SELECT s.acct, s.ts, h.balance FROM rls_spine s LEFT JOIN LATERAL (
     SELECT balance FROM rls_hist h WHERE h.acct = s.acct AND h.ts <= s.ts ORDER BY h.ts DESC LIMIT 1) h ON true
   EXCEPT
   SELECT * FROM fs_point_in_time_join('rls_spine', '{rls_v:balance}', spine_time => 'ts') AS t(acct text, ts timestamptz, balance float8))) d;
-- Everything that holds unfiltered rows is denied; the all-views forms leave the view out (as
-- for a view whose source she may not SELECT).
SELECT fs_online('rls_acct:a1') AS all_views;
SELECT count(*) AS detail_rows FROM fs_online_detail('rls_acct:a1');
SELECT * FROM pg_temp.err($$SELECT fs_online('rls_acct:a1', 'rls_v')$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_online_batch(ARRAY['rls_acct:a1']::fs_entity[], 'rls_v')$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_online_detail('rls_acct:a1', 'rls_v')$$);
SELECT * FROM pg_temp.err($$SELECT fs_online_vector('rls_acct:a1', 'rls_v')$$);
SELECT * FROM pg_temp.err($$SELECT fs_materialize('rls_v', '-infinity', 'infinity')$$);
SELECT * FROM pg_temp.err($$SELECT fs_materialize_incremental('rls_v')$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_validate('rls_v', NULL, NULL)$$);
SELECT count(*) AS quarantined_seen_by_alice FROM fs_quarantine WHERE view = 'rls_v';
SELECT rows_online IS NULL AS counts_hidden FROM fs_stat_views WHERE view = 'rls_v';
-- row_security = off does not help: her reads would still be filtered (Postgres would error).
SET row_security = off;
SELECT * FROM pg_temp.err($$SELECT fs_online('rls_acct:a1', 'rls_v')$$);
RESET row_security;
RESET ROLE;

-- A BYPASSRLS role with SELECT reads the online store.
SET ROLE regress_rls_bypass;
SELECT fs_online('rls_acct:a1') AS a1;
RESET ROLE;

-- FORCE ROW LEVEL SECURITY subjects the owner too (the cache follows the change at once).
ALTER TABLE rls_hist FORCE ROW LEVEL SECURITY;
SET ROLE regress_rls_owner;
SELECT state, message FROM pg_temp.err($$SELECT fs_online('rls_acct:b1', 'rls_v')$$);
RESET ROLE;
ALTER TABLE rls_hist NO FORCE ROW LEVEL SECURITY;
-- Without row-level security Alice reads every entity's latest value online.
ALTER TABLE rls_hist DISABLE ROW LEVEL SECURITY;
SET ROLE regress_rls_alice;
SELECT fs_online('rls_acct:b1') AS b1;
SELECT count(*) AS quarantined_seen_by_alice FROM fs_quarantine WHERE view = 'rls_v';
RESET ROLE;

SELECT fs_drop_view('rls_v');
SELECT fs_drop_entity('rls_acct');
DROP TABLE rls_hist, rls_spine;
REVOKE CREATE ON SCHEMA public FROM regress_rls_owner;
DROP ROLE regress_rls_owner, regress_rls_alice, regress_rls_bypass;
