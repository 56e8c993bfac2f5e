-- feature_store 0.2 -> 0.3. Every change to src/*.sql since 0.2 has its ALTER/CREATE here, in the
-- same order; test/t/070_upgrade.pl compares the catalog of an updated database with a fresh install.
\echo Use "ALTER EXTENSION feature_store UPDATE TO '0.3'" to load this file. \quit
