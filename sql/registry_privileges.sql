-- Registry privileges: registering needs SELECT on the source; registry tables are read-only to
-- ordinary roles; only the registering role (or a member, or a superuser) may change or drop.
CREATE EXTENSION IF NOT EXISTS feature_store;
CREATE ROLE regress_fs_alice;
CREATE ROLE regress_fs_bob;
CREATE ROLE regress_fs_carol;
CREATE TABLE priv_hist (acct_id bigint, event_timestamp timestamptz, balance numeric, secret text);
GRANT SELECT ON priv_hist TO regress_fs_alice;
GRANT SELECT (acct_id, event_timestamp, balance) ON priv_hist TO regress_fs_bob;
SET ROLE regress_fs_carol;
SELECT fs_register_entity('account', 'acct_id');
RESET ROLE;

SET ROLE regress_fs_alice;
SELECT fs_register_view('account_stats', 'priv_hist', 'account');
SELECT registered_by FROM fs_views WHERE name = 'account_stats';
-- Direct writes to the registry are refused.
INSERT INTO feature_store.entity (name, join_keys, registered_by) VALUES ('sneaky', '{k}', 'x');
UPDATE feature_store.feature_view SET ttl = '1 day';
DELETE FROM feature_store.view_feature;
RESET ROLE;

SET ROLE regress_fs_bob;
-- Bob may read only some columns: registering all of them is refused, his columns are fine.
SELECT fs_register_view('bob_stats', 'priv_hist', 'account');
SELECT fs_register_view('bob_stats', 'priv_hist', 'account', features => '{balance}');
-- Bob cannot change or drop Alice's view or entity.
SELECT fs_register_view('account_stats', 'priv_hist', 'account', features => '{balance}');
SELECT fs_drop_view('account_stats');
SELECT fs_register_entity('account', 'acct_id', description => 'mine now');
SELECT fs_drop_entity('account');
RESET ROLE;

-- Without any SELECT privilege, registration is refused.
REVOKE SELECT ON priv_hist FROM regress_fs_alice;
SET ROLE regress_fs_alice;
SELECT fs_register_view('account_stats', 'priv_hist', 'account', features => '{balance}');
-- but the registry itself stays readable
SELECT name, version, n_features FROM fs_views WHERE name IN ('account_stats', 'bob_stats') ORDER BY 1;
RESET ROLE;

-- A member of the registering role may drop; the superuser may too.
GRANT regress_fs_alice TO regress_fs_bob;
SET ROLE regress_fs_bob;
SELECT fs_drop_view('account_stats');
RESET ROLE;
SELECT fs_drop_view('bob_stats');

-- Hostile names: rejected as registry names, harmless as quoted identifiers of the source.
CREATE TABLE "we""ird; DROP TABLE priv_hist; --" ("acct_id" bigint, "event_timestamp" timestamptz, "Balance" int, "bal""ance" int);
-- a column whose name is not a plain identifier cannot become a feature (its name is used as a key and column name)
SELECT fs_register_view('weird', '"we""ird; DROP TABLE priv_hist; --"', 'account');
SELECT fs_register_view('weird', '"we""ird; DROP TABLE priv_hist; --"', 'account', features => ARRAY['bal"ance']);
SELECT fs_register_view('weird', '"we""ird; DROP TABLE priv_hist; --"', 'account', features => ARRAY['Balance']);
SELECT source, n_features FROM fs_views WHERE name = 'weird';
SELECT feature FROM fs_features WHERE view = 'weird';
SELECT fs_register_view('x"; DROP TABLE priv_hist; --', 'priv_hist', 'account');
SELECT count(*) AS priv_hist_still_there FROM priv_hist;
SELECT fs_drop_view('weird');
DROP TABLE "we""ird; DROP TABLE priv_hist; --";
DROP TABLE priv_hist;
SELECT fs_drop_entity('account');
DROP ROLE regress_fs_alice;
DROP ROLE regress_fs_bob;
DROP ROLE regress_fs_carol;
