-- feature_store 0.1 -> 0.2. Every change to src/*.sql since 0.1 has its ALTER/CREATE here, in the
-- same order; test/t/070_upgrade.pl compares the catalog of an updated database with a fresh install.
\echo Use "ALTER EXTENSION feature_store UPDATE TO '0.2'" to load this file. \quit

-- schedule: DROP EXTENSION removes the extension's pg_cron jobs.
CREATE FUNCTION feature_store.drop_extension_cleanup() RETURNS event_trigger
  AS 'MODULE_PATHNAME', 'fs_schedule_drop_extension' LANGUAGE C;
CREATE EVENT TRIGGER feature_store_drop_extension ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
  EXECUTE FUNCTION feature_store.drop_extension_cleanup();
